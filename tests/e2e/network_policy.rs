//! NetworkPolicy on a real node: `berth server`, `berth agent --runtime cri`
//! and busybox web pods in two namespaces, policies applied with kubectl 1.33
//! as upstream's documentation writes them. Checks with real traffic (wget
//! from one pod to another, bridged on the node, and through a ClusterIP)
//! that default deny blocks, that allow rules by pod label, by namespace
//! label, by named port and by ipBlock with except open exactly what they
//! name, that the node itself always gets in, that egress deny blocks DNS
//! until a rule allows UDP 53, and that deleting policies restores traffic
//! at once.

mod cri_node;
mod support;

use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cri_node::{CriNode, Registry};
use support::{wait_for, Kubectl, Server, KUBECTL_1_33};

const NODE: &str = "netpol1";

const WORKLOADS: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: np-a, labels: {team: a}}
---
apiVersion: v1
kind: Namespace
metadata: {name: np-b, labels: {team: b}}
---
apiVersion: v1
kind: Pod
metadata: {name: server, namespace: np-a, labels: {app: server}}
spec:
  containers:
  - name: web
    image: REGISTRY/web:1
    command: ["sh", "-c", "httpd -p 8080 -h /www && exec httpd -f -p 80 -h /www"]
    ports:
    - {name: http, containerPort: 80}
    - {name: alt, containerPort: 8080}
---
apiVersion: v1
kind: Service
metadata: {name: server, namespace: np-a}
spec:
  selector: {app: server}
  ports: [{port: 80, targetPort: http}]
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: np-a, labels: {app: client}}
spec:
  containers: [{name: web, image: REGISTRY/web:1}]
---
apiVersion: v1
kind: Pod
metadata: {name: other, namespace: np-a, labels: {app: other}}
spec:
  containers: [{name: web, image: REGISTRY/web:1}]
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: np-b, labels: {app: client}}
spec:
  containers: [{name: web, image: REGISTRY/web:1}]
"#;

const DEFAULT_DENY_INGRESS: &str = r#"
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: default-deny-ingress, namespace: np-a}
spec:
  podSelector: {}
  policyTypes: [Ingress]
"#;

const ALLOW_CLIENTS: &str = r#"
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-clients, namespace: np-a}
spec:
  podSelector: {matchLabels: {app: server}}
  ingress:
  - from:
    - podSelector: {matchLabels: {app: client}}
"#;

const ALLOW_TEAM_B: &str = r#"
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-team-b, namespace: np-a}
spec:
  podSelector: {matchLabels: {app: server}}
  ingress:
  - from:
    - namespaceSelector: {matchLabels: {team: b}}
"#;

const ALLOW_ALT_PORT: &str = r#"
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-alt-port, namespace: np-a}
spec:
  podSelector: {matchLabels: {app: server}}
  ingress:
  - ports:
    - port: alt
"#;

const ALLOW_BLOCK: &str = r#"
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-block, namespace: np-a}
spec:
  podSelector: {matchLabels: {app: server}}
  ingress:
  - from:
    - ipBlock:
        cidr: CIDR
        except: [EXCEPT/32]
"#;

const DEFAULT_DENY_EGRESS: &str = r#"
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: default-deny-egress, namespace: np-b}
spec:
  podSelector: {}
  policyTypes: [Egress]
"#;

const ALLOW_DNS: &str = r#"
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-dns, namespace: np-b}
spec:
  podSelector: {}
  policyTypes: [Egress]
  egress:
  - ports:
    - {protocol: UDP, port: 53}
"#;

const ALLOW_TO_SERVER: &str = r#"
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-to-server, namespace: np-b}
spec:
  podSelector: {matchLabels: {app: client}}
  policyTypes: [Egress]
  egress:
  - to:
    - namespaceSelector: {matchLabels: {team: a}}
      podSelector: {matchLabels: {app: server}}
    ports:
    - {protocol: TCP, port: 80}
"#;

/// A DNS responder on the node's bridge address (port 53) that answers
/// every query NXDOMAIN and counts them, stopped when dropped.
struct DnsResponder {
    queries: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl DnsResponder {
    fn start(address: &str) -> Self {
        let socket = UdpSocket::bind((address, 53)).expect("binding UDP port 53 on the bridge");
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let queries = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (queries, stop) = (queries.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut buffer = [0u8; 512];
                while !stop.load(Ordering::Relaxed) {
                    let Ok((len, peer)) = socket.recv_from(&mut buffer) else {
                        continue;
                    };
                    if len < 12 {
                        continue;
                    }
                    queries.fetch_add(1, Ordering::Relaxed);
                    // The query back with QR, RA and NXDOMAIN, no records.
                    let mut answer = buffer[..len].to_vec();
                    answer[2] = 0x81;
                    answer[3] = 0x83;
                    answer[6..12].fill(0);
                    let _ = socket.send_to(&answer, peer);
                }
            })
        };
        Self {
            queries,
            stop,
            thread: Some(thread),
        }
    }

    fn queries(&self) -> usize {
        self.queries.load(Ordering::Relaxed)
    }
}

impl Drop for DnsResponder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// `namespace/pod` fetching `url` with busybox wget, at most 3 seconds.
fn fetches(kubectl: &Kubectl, from: &str, url: &str) -> bool {
    let (namespace, pod) = from.split_once('/').unwrap();
    let out = kubectl.run(&[
        "exec", "-n", namespace, pod, "--", "timeout", "3", "wget", "-qO-", url,
    ]);
    out.status.success() && String::from_utf8_lossy(&out.stdout).contains("hello from berth")
}

/// Waits until every `(from, url, reaches)` holds at once (policies apply
/// asynchronously), failing with the ones that did not.
fn expect(
    server: &Server,
    node: &mut CriNode,
    kubectl: &Kubectl,
    what: &str,
    cases: &[(&str, &str, bool)],
) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let last: Vec<String> = cases
            .iter()
            .filter(|(from, url, reaches)| fetches(kubectl, from, url) != *reaches)
            .map(|(from, url, reaches)| format!("{from} -> {url}: expected reaches={reaches}"))
            .collect();
        if last.is_empty() {
            return;
        }
        node.agent.assert_running();
        if Instant::now() > deadline {
            let table = nft_table();
            panic!(
                "{what}: {last:?}\nnft table:\n{table}\nagent log:\n{}\nserver log:\n{}",
                node.agent.log(),
                server.log()
            );
        }
    }
}

/// The node's NetworkPolicy table as `nft list` prints it.
fn nft_table() -> String {
    let table = berth_agent::network::network_policy::table_name(NODE);
    std::process::Command::new("nft")
        .args(["list", "table", "ip", &table])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

/// `namespace/pod` sends a DNS query to `dns` (answered or not, at most 3 s).
fn query_dns(kubectl: &Kubectl, from: &str, dns: &str) {
    let (namespace, pod) = from.split_once('/').unwrap();
    kubectl.run(&[
        "exec",
        "-n",
        namespace,
        pod,
        "--",
        "timeout",
        "3",
        "nslookup",
        "probe.example",
        dns,
    ]);
}

#[test]
fn network_policies_allow_exactly_what_they_name_and_deny_the_rest() {
    let registry = Registry::start();
    // A cluster range of its own, so this node's bridge never overlaps another test's.
    let cidr = format!("10.{}.0.0/16", 160 + registry.port % 30);
    let server = Server::start_with(&["--cluster-cidr", &cidr]);
    let kubectl = server.kubectl(KUBECTL_1_33);
    let mut node = CriNode::start(&server, &registry, NODE);
    node.wait_ready(&server, &kubectl, Duration::from_secs(60));
    let apply = |manifest: &str| {
        kubectl.ok_stdin(&["apply", "-f", "-"], manifest);
    };
    apply(&WORKLOADS.replace("REGISTRY", &registry.host()));
    for namespace in ["np-a", "np-b"] {
        kubectl.ok(&[
            "wait",
            "-n",
            namespace,
            "--for=condition=Ready",
            "pod",
            "--all",
            "--timeout=90s",
        ]);
    }
    let ip = |namespace: &str, pod: &str| {
        kubectl.jsonpath(&["get", "pod", "-n", namespace, pod], "{.status.podIP}")
    };
    let server_ip = ip("np-a", "server");
    let client_ip = ip("np-a", "client");
    let web = format!("http://{server_ip}/");
    let alt = format!("http://{server_ip}:8080/");
    let cluster_ip = kubectl.jsonpath(
        &["get", "service", "-n", "np-a", "server"],
        "{.spec.clusterIP}",
    );
    let service = format!("http://{cluster_ip}/");
    let mut check = |what: &str, cases: &[(&str, &str, bool)]| {
        expect(&server, &mut node, &kubectl, what, cases)
    };

    check(
        "with no policy every pod is open",
        &[
            ("np-a/client", &web, true),
            ("np-a/other", &alt, true),
            ("np-b/client", &web, true),
            ("np-a/other", &service, true),
        ],
    );

    apply(DEFAULT_DENY_INGRESS);
    check(
        "default deny in np-a blocks every client",
        &[
            ("np-a/client", &web, false),
            ("np-a/other", &alt, false),
            ("np-b/client", &web, false),
            ("np-a/client", &service, false),
            // A pod through its own Service: the hairpin counts as the node.
            ("np-a/server", &service, true),
        ],
    );
    let table = nft_table();
    assert!(
        table.contains("set ingress_isolated") && table.contains(&server_ip),
        "the node's policy table isolates the server:\n{table}"
    );
    let from_node = std::process::Command::new("curl")
        .args(["-s", "-m", "5", &web])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&from_node.stdout).contains("hello from berth"),
        "the pod's own node always gets in"
    );

    apply(ALLOW_CLIENTS);
    check(
        "a pod-label rule opens the server to its namespace's clients only",
        &[
            ("np-a/client", &web, true),
            ("np-a/client", &service, true),
            ("np-a/other", &web, false),
            ("np-a/other", &service, false),
            ("np-b/client", &web, false),
        ],
    );

    apply(ALLOW_TEAM_B);
    check(
        "a namespace-label rule adds np-b's pods",
        &[
            ("np-b/client", &web, true),
            ("np-a/client", &web, true),
            ("np-a/other", &web, false),
        ],
    );

    kubectl.ok(&[
        "delete",
        "-n",
        "np-a",
        "networkpolicy",
        "allow-clients",
        "allow-team-b",
    ]);
    apply(ALLOW_ALT_PORT);
    check(
        "a named-port rule opens that port only",
        &[
            ("np-a/other", &alt, true),
            ("np-a/other", &web, false),
            ("np-b/client", &alt, true),
            ("np-b/client", &web, false),
        ],
    );

    kubectl.ok(&["delete", "-n", "np-a", "networkpolicy", "allow-alt-port"]);
    apply(
        &ALLOW_BLOCK
            .replace("CIDR", &cidr)
            .replace("EXCEPT", &client_ip),
    );
    check(
        "an ipBlock opens its range less the except block",
        &[
            ("np-a/other", &web, true),
            ("np-b/client", &alt, true),
            ("np-a/client", &web, false),
        ],
    );

    kubectl.ok(&[
        "delete",
        "-n",
        "np-a",
        "networkpolicy",
        "default-deny-ingress",
        "allow-block",
    ]);
    let deleted = Instant::now();
    while !fetches(&kubectl, "np-a/client", &web) {
        assert!(
            deleted.elapsed() < Duration::from_secs(10),
            "traffic never came back"
        );
    }
    let restored = deleted.elapsed();
    assert!(
        restored < Duration::from_secs(2),
        "deleting the policies restored traffic only after {restored:?}"
    );
    eprintln!("traffic restored {restored:?} after the delete");

    // Egress: the node's bridge address answers DNS for this test.
    let gateway = {
        let (network, _) = server_ip.rsplit_once('.').unwrap();
        format!("{network}.1")
    };
    let dns = DnsResponder::start(&gateway);
    query_dns(&kubectl, "np-b/client", &gateway);
    assert!(
        dns.queries() > 0,
        "the DNS responder answers without policies"
    );

    apply(DEFAULT_DENY_EGRESS);
    check(
        "egress deny in np-b blocks its pods' connections",
        &[("np-b/client", &web, false), ("np-a/client", &web, true)],
    );
    let before = dns.queries();
    query_dns(&kubectl, "np-b/client", &gateway);
    assert_eq!(dns.queries(), before, "egress deny blocks DNS");

    apply(ALLOW_DNS);
    wait_for(
        "a UDP 53 egress rule opens DNS",
        Duration::from_secs(30),
        &server,
        &mut [&mut node.agent],
        || {
            let before = dns.queries();
            query_dns(&kubectl, "np-b/client", &gateway);
            (dns.queries() > before).then_some(())
        },
    );
    let mut check = |what: &str, cases: &[(&str, &str, bool)]| {
        expect(&server, &mut node, &kubectl, what, cases)
    };
    check(
        "allowing DNS opens nothing else",
        &[("np-b/client", &web, false)],
    );

    apply(ALLOW_TO_SERVER);
    check(
        "an egress rule to a pod in a labelled namespace opens that port",
        &[("np-b/client", &web, true), ("np-b/client", &alt, false)],
    );

    kubectl.ok(&["delete", "networkpolicy", "-n", "np-b", "--all"]);
    check(
        "deleting the egress policies opens everything again",
        &[("np-b/client", &web, true), ("np-b/client", &alt, true)],
    );
    kubectl.ok(&["delete", "namespace", "np-a", "np-b", "--timeout=60s"]);
}
