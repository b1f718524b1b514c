//! Cluster DNS on one real node: `berth agent --runtime cri` serves
//! `cluster.local` from its watches, pods get kubelet's resolv.conf and
//! resolve Services through the `kube-dns` ClusterIP (which the service
//! proxy sends to the node's own server), and names outside the cluster go
//! to the resolver the node's resolv.conf names — here a second DNS server
//! the test starts on a loopback address, so no query leaves the machine.
//!
//! The node's DNS listens on a link-local address the test adds to the host
//! (as NodeLocal DNSCache binds 169.254.20.10): pods cannot reach the
//! host's 127.0.0.1, but they reach any other address of the host through
//! their bridge.

mod cri_node;
mod support;

use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use berth_agent::network::dns::forward::Forwarder;
use berth_agent::network::dns::handler::Handler;
use berth_agent::network::dns::records::ClusterRecords;
use berth_agent::network::dns::BoundServer;
use cri_node::{CriNode, Registry};
use hickory_proto::op::{Message, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};
use support::{wait_for, Server, KUBECTL_1_31};
use tokio_util::sync::CancellationToken;

const WORKLOADS: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: web
  labels: {app: web}
spec:
  hostname: web-0
  subdomain: web-headless
  initContainers:
  - name: page
    image: REGISTRY/web:1
    command: ["sh", "-c", "echo hello through the cluster dns > /www/index.html"]
    volumeMounts: [{name: www, mountPath: /www}]
  containers:
  - name: server
    image: REGISTRY/web:1
    volumeMounts: [{name: www, mountPath: /www}]
  volumes:
  - name: www
    emptyDir: {}
---
apiVersion: v1
kind: Pod
metadata: {name: client}
spec:
  containers:
  - name: client
    image: REGISTRY/web:1
    command: ["sleep", "3600"]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: web-headless}
spec:
  clusterIP: None
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: ext}
spec:
  type: ExternalName
  externalName: outside.corp.svc.example.test
"#;

/// An address of the node's DNS on the loopback interface (this VM's
/// kernel has no `dummy` driver), removed when dropped.
struct LoopbackAddress(String);

impl LoopbackAddress {
    fn add(address: &str) -> Self {
        let _ = Command::new("ip")
            .args(["addr", "del", address, "dev", "lo"])
            .output();
        let out = Command::new("ip")
            .args(["addr", "add", address, "dev", "lo"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ip addr add {address}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Self(address.to_owned())
    }
}

impl Drop for LoopbackAddress {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["addr", "del", &self.0, "dev", "lo"])
            .output();
    }
}

/// The "outside world": a DNS server for `example.test` on a loopback
/// address, stopped when dropped. It is berth's own server over one
/// Service, so `outside.corp.svc.example.test` answers 192.0.2.10.
struct Upstream {
    runtime: tokio::runtime::Runtime,
    cancel: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Upstream {
    fn start(address: SocketAddr) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let service = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "outside", "namespace": "corp"},
            "spec": {"clusterIP": "192.0.2.10"}
        }))
        .unwrap();
        let records = ClusterRecords::build("example.test", 1, &[service], &[]);
        let (_tx, rx) = tokio::sync::watch::channel(Arc::new(records));
        let cancel = CancellationToken::new();
        let server = runtime
            .block_on(BoundServer::bind(
                address,
                Handler::new(rx, Forwarder::new(Vec::new())),
            ))
            .unwrap();
        let task = runtime.spawn(server.serve(cancel.clone()));
        Self {
            runtime,
            cancel,
            task: Some(task),
        }
    }

    /// Asks `server` for `name`/`qtype` the way a stub resolver does.
    fn ask(&self, server: SocketAddr, name: &str, qtype: RecordType) -> Message {
        let query = Query::query(Name::from_ascii(name).unwrap(), qtype);
        self.runtime
            .block_on(Forwarder::new(vec![server]).forward(query))
            .unwrap()
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.cancel.cancel();
        if let Some(task) = self.task.take() {
            let _ = self.runtime.block_on(task);
        }
    }
}

/// `CODE TYPE DATA` per answer record, sorted.
fn summary(message: &Message) -> (ResponseCode, Vec<String>) {
    let mut lines: Vec<String> = message
        .answers()
        .iter()
        .map(|r| format!("{} {}", r.record_type(), r.data()))
        .collect();
    lines.sort();
    (message.response_code(), lines)
}

#[test]
fn pods_resolve_services_through_the_node_dns() {
    let registry = Registry::start();
    let slot = registry.port % 50;
    // Ranges of its own, so this node's bridge and Service rules never meet another test's.
    let cluster_cidr = format!("10.{}.0.0/16", 100 + slot);
    let service_cidr = format!("10.{}.0.0/16", 150 + slot);
    let dns_service_ip = format!("10.{}.0.10", 150 + slot);
    let dns_ip = format!("169.254.{}.{}", registry.port >> 8, registry.port & 0xff);
    let dns_address: SocketAddr = format!("{dns_ip}:53").parse().unwrap();
    let _address = LoopbackAddress::add(&format!("{dns_ip}/32"));
    let upstream_address: SocketAddr =
        format!("127.53.{}.{}:53", registry.port >> 8, registry.port & 0xff)
            .parse()
            .unwrap();
    let upstream = Upstream::start(upstream_address);
    let dir = tempfile::tempdir().unwrap();
    let resolv_conf = dir.path().join("resolv.conf");
    std::fs::write(
        &resolv_conf,
        format!(
            "nameserver {}\nsearch corp.example\n",
            upstream_address.ip()
        ),
    )
    .unwrap();

    let server = Server::start_with(&[
        "--cluster-cidr",
        &cluster_cidr,
        "--service-cidr",
        &service_cidr,
    ]);
    let kubectl = server.kubectl(KUBECTL_1_31);
    let resolv_conf_flag = resolv_conf.display().to_string();
    let mut node = CriNode::start_with(
        &server,
        &registry,
        "dns1",
        &[
            "--dns-listen",
            &dns_address.to_string(),
            "--resolv-conf",
            &resolv_conf_flag,
            "--cluster-dns",
            &dns_service_ip,
        ],
    );

    // The bootstrap Service sits at the tenth address, local traffic only.
    let dns_service = kubectl.jsonpath(
        &["get", "service", "kube-dns", "-n", "kube-system"],
        "{.spec.clusterIP} {.spec.internalTrafficPolicy} {.metadata.labels.k8s-app} {.spec.ports[*].name}",
    );
    assert_eq!(
        dns_service,
        format!("{dns_service_ip} Local kube-dns dns dns-tcp metrics")
    );
    wait_for(
        "the node publishes its kube-dns endpoint",
        Duration::from_secs(60),
        &server,
        &mut [&mut node.agent],
        || {
            let out = kubectl.run(&[
                "get", "endpointslice", "kube-dns-dns1", "-n", "kube-system", "-o",
                "jsonpath={.endpoints[0].addresses[0]} {.endpoints[0].nodeName} {.endpoints[0].conditions.ready} {.metadata.ownerReferences[0].kind}",
            ]);
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            (text == format!("{dns_ip} dns1 true Node")).then_some(())
        },
    );

    kubectl.ok_stdin(
        &["apply", "-f", "-"],
        &WORKLOADS.replace("REGISTRY", &registry.host()),
    );
    kubectl.ok(&[
        "wait",
        "--for=condition=Ready",
        "pod/web",
        "pod/client",
        "--timeout=90s",
    ]);
    let pod_ip = kubectl.jsonpath(&["get", "pod", "web"], "{.status.podIP}");
    let web_ip = kubectl.jsonpath(&["get", "service", "web"], "{.spec.clusterIP}");
    let ask = |name: &str, qtype| summary(&upstream.ask(dns_address, name, qtype));

    // Services by name; the headless one by its ready pods.
    let headless = wait_for(
        "the headless Service resolves to its pod",
        Duration::from_secs(30),
        &server,
        &mut [&mut node.agent],
        || {
            let answer = ask("web-headless.default.svc.cluster.local.", RecordType::A);
            (answer.0 == ResponseCode::NoError).then_some(answer)
        },
    );
    assert_eq!(headless.1, [format!("A {pod_ip}")]);
    assert_eq!(
        ask("web.default.svc.cluster.local.", RecordType::A),
        (ResponseCode::NoError, vec![format!("A {web_ip}")])
    );
    assert_eq!(
        ask(
            "web-0.web-headless.default.svc.cluster.local.",
            RecordType::A
        ),
        (ResponseCode::NoError, vec![format!("A {pod_ip}")]),
        "hostname/subdomain records"
    );
    assert_eq!(
        ask(
            "_http._tcp.web-headless.default.svc.cluster.local.",
            RecordType::SRV
        ),
        (
            ResponseCode::NoError,
            vec!["SRV 0 100 80 web-0.web-headless.default.svc.cluster.local.".to_owned()]
        )
    );
    assert_eq!(
        ask("_http._tcp.web.default.svc.cluster.local.", RecordType::SRV),
        (
            ResponseCode::NoError,
            vec!["SRV 0 100 80 web.default.svc.cluster.local.".to_owned()]
        )
    );
    // ExternalName: the CNAME, with its target resolved upstream.
    assert_eq!(
        ask("ext.default.svc.cluster.local.", RecordType::A),
        (
            ResponseCode::NoError,
            vec![
                "A 192.0.2.10".to_owned(),
                "CNAME outside.corp.svc.example.test.".to_owned()
            ]
        )
    );
    let missing = upstream.ask(
        dns_address,
        "nope.default.svc.cluster.local.",
        RecordType::A,
    );
    assert_eq!(missing.response_code(), ResponseCode::NXDomain);
    assert_eq!(
        missing.name_servers()[0]
            .data()
            .to_string()
            .split(' ')
            .take(2)
            .collect::<Vec<_>>(),
        ["ns.dns.cluster.local.", "hostmaster.cluster.local."]
    );
    // Outside the cluster: forwarded to the node's resolver.
    assert_eq!(
        ask("outside.corp.svc.example.test.", RecordType::A),
        (ResponseCode::NoError, vec!["A 192.0.2.10".to_owned()])
    );
    let reverse: Vec<&str> = web_ip.split('.').rev().collect();
    assert_eq!(
        ask(
            &format!("{}.in-addr.arpa.", reverse.join(".")),
            RecordType::PTR
        ),
        (
            ResponseCode::NoError,
            vec!["PTR web.default.svc.cluster.local.".to_owned()]
        )
    );

    // Inside a pod: kubelet's resolv.conf, and names through the kube-dns ClusterIP.
    let resolv = kubectl.ok(&["exec", "client", "--", "cat", "/etc/resolv.conf"]);
    assert_eq!(
        resolv,
        format!(
            "search default.svc.cluster.local svc.cluster.local cluster.local corp.example\nnameserver {dns_service_ip}\noptions ndots:5\n"
        )
    );
    let lookup = kubectl.ok(&[
        "exec",
        "client",
        "--",
        "busybox",
        "nslookup",
        "web.default.svc.cluster.local",
    ]);
    assert!(lookup.contains(&web_ip), "{lookup}");
    let srv = kubectl.ok(&[
        "exec",
        "client",
        "--",
        "busybox",
        "nslookup",
        "-type=srv",
        "_http._tcp.web-headless.default.svc.cluster.local",
    ]);
    assert!(
        srv.contains("web-0.web-headless.default.svc.cluster.local"),
        "{srv}"
    );
    let page = kubectl.ok(&[
        "exec",
        "client",
        "--",
        "busybox",
        "timeout",
        "10",
        "wget",
        "-qO-",
        "http://web.default.svc.cluster.local",
    ]);
    assert_eq!(page.trim(), "hello through the cluster dns");

    // Deleting the Service removes its name.
    kubectl.ok(&["delete", "service", "web"]);
    wait_for(
        "the deleted Service's name is gone",
        Duration::from_secs(30),
        &server,
        &mut [&mut node.agent],
        || {
            let answer = ask("web.default.svc.cluster.local.", RecordType::A);
            (answer.0 == ResponseCode::NXDomain).then_some(())
        },
    );

    // A clean stop withdraws the node's endpoint.
    node.agent.terminate();
    let gone = kubectl.run(&["get", "endpointslice", "kube-dns-dns1", "-n", "kube-system"]);
    assert!(
        !gone.status.success(),
        "the node's kube-dns endpoint outlived the agent"
    );
}
