//! The cloud-controller's service controller end to end with the `haproxy`
//! provider writing a file: `berth server` and `berth cloud-controller`
//! driven by kubectl 1.33. A LoadBalancer Service gets the finalizer, the
//! pool's first address in `kubectl get svc` and a frontend in haproxy.cfg
//! with its node's NodePort as a server (accepted by `haproxy -c` where
//! installed); a second Service gets the next address; excluding
//! the node takes the server out; a Service of another class is left
//! alone; an address outside the pool is a `SyncLoadBalancerFailed` event
//! in `kubectl describe`; a Service patched to ClusterIP loses its
//! balancer and the finalizer; a controller killed and restarted gives a
//! Service made meanwhile a free address, not one in use; deleted Services
//! lose their frontends and the finalizer in one pass. Nodes here are API objects only: no traffic.

mod support;

use std::path::Path;
use std::time::Duration;

use support::{wait_for, BerthProcess, Kubectl, Server, KUBECTL_1_33};

const NODE: &str = r#"
apiVersion: v1
kind: Node
metadata:
  name: lbh-e2e-node
"#;

const SERVICES: &str = r#"
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: lbh-e2e
spec:
  type: LoadBalancer
  selector:
    app: web
  ports:
  - name: http
    port: 80
    targetPort: 8080
---
apiVersion: v1
kind: Service
metadata:
  name: elsewhere
  namespace: lbh-e2e
spec:
  type: LoadBalancer
  loadBalancerClass: example.com/other
  selector:
    app: web
  ports:
  - port: 81
"#;

const API: &str = r#"
apiVersion: v1
kind: Service
metadata:
  name: api
  namespace: lbh-e2e
spec:
  type: LoadBalancer
  selector:
    app: api
  ports:
  - port: 8080
"#;

const LATE: &str = r#"
apiVersion: v1
kind: Service
metadata:
  name: late
  namespace: lbh-e2e
spec:
  type: LoadBalancer
  selector:
    app: late
  ports:
  - port: 9090
"#;

const OUTSIDE_POOL: &str = r#"
apiVersion: v1
kind: Service
metadata:
  name: outside
  namespace: lbh-e2e
  annotations:
    berth.dev/load-balancer-ips: 10.9.9.9
spec:
  type: LoadBalancer
  selector:
    app: web
  ports:
  - port: 82
"#;

const TIMEOUT: Duration = Duration::from_secs(60);

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// `haproxy -c` on the written file, where Debian's haproxy is installed.
fn haproxy_accepts(path: &Path) {
    let haproxy = Path::new("/usr/sbin/haproxy");
    if !haproxy.exists() {
        eprintln!("haproxy not installed: skipping the syntax check");
        return;
    }
    let out = std::process::Command::new(haproxy)
        .arg("-c")
        .arg("-f")
        .arg(path)
        .output()
        .unwrap();
    assert!(out.status.success(), "haproxy -c: {out:?}\n{}", read(path));
}

fn svc_field(k: &Kubectl, name: &str, template: &str) -> String {
    k.jsonpath(&["-n", "lbh-e2e", "get", "svc", name], template)
}

#[test]
fn haproxy_load_balancer_follows_service_and_nodes() {
    let server = Server::start();
    let k = server.kubectl(KUBECTL_1_33);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("haproxy.cfg");
    k.ok_stdin(&["apply", "-f", "-"], NODE);
    k.ok(&[
        "patch",
        "node",
        "lbh-e2e-node",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"addresses":[{"type":"InternalIP","address":"10.231.0.7"}]}}"#,
    ]);
    k.ok(&["create", "namespace", "lbh-e2e"]);
    let args = [
        "cloud-controller",
        "--identity",
        "lbh-e2e",
        "--haproxy-config",
        config.to_str().unwrap(),
        "--address-pool",
        "198.18.231.10-198.18.231.12",
    ];
    let mut controller: BerthProcess = server.spawn_berth("lbh-cloud-controller", &args);
    k.ok_stdin(&["apply", "-f", "-"], SERVICES);

    let ip = wait_for(
        "the Service's ingress address",
        TIMEOUT,
        &server,
        &mut [&mut controller],
        || {
            Some(svc_field(&k, "web", "{.status.loadBalancer.ingress[0].ip}"))
                .filter(|ip| !ip.is_empty())
        },
    );
    assert_eq!(ip, "198.18.231.10");
    let listed = k.ok(&["-n", "lbh-e2e", "get", "svc", "web"]);
    assert!(listed.contains("198.18.231.10"), "{listed}");
    assert_eq!(
        svc_field(&k, "web", "{.metadata.finalizers}"),
        r#"["service.kubernetes.io/load-balancer-cleanup"]"#
    );
    let node_port = svc_field(&k, "web", "{.spec.ports[0].nodePort}");
    let server_line = format!("server lbh-e2e-node 10.231.0.7:{node_port} check");
    let text = read(&config);
    assert!(
        text.contains("bind 198.18.231.10:80") && text.contains(&server_line),
        "{text}"
    );
    haproxy_accepts(&config);
    let described = k.ok(&["-n", "lbh-e2e", "describe", "svc", "web"]);
    assert!(described.contains("EnsuredLoadBalancer"), "{described}");

    k.ok_stdin(&["apply", "-f", "-"], API);
    let api_ip = wait_for(
        "the second Service's address",
        TIMEOUT,
        &server,
        &mut [&mut controller],
        || {
            Some(svc_field(&k, "api", "{.status.loadBalancer.ingress[0].ip}"))
                .filter(|ip| !ip.is_empty())
        },
    );
    assert_eq!(api_ip, "198.18.231.11");
    wait_for(
        "both frontends in the file",
        TIMEOUT,
        &server,
        &mut [&mut controller],
        || {
            let text = read(&config);
            (text.contains("bind 198.18.231.10:80") && text.contains("bind 198.18.231.11:8080"))
                .then_some(())
        },
    );

    // Killed, and a Service created while no controller runs: the new
    // controller adopts the addresses in the Services' status before it
    // hands one out, so the late Service cannot take web's or api's.
    controller.kill9();
    k.ok_stdin(&["apply", "-f", "-"], LATE);
    let mut controller: BerthProcess = server.spawn_berth("lbh-cloud-controller", &args);
    let late_ip = wait_for(
        "the address of a Service made while the controller was down",
        TIMEOUT,
        &server,
        &mut [&mut controller],
        || {
            Some(svc_field(
                &k,
                "late",
                "{.status.loadBalancer.ingress[0].ip}",
            ))
            .filter(|ip| !ip.is_empty())
        },
    );
    assert_eq!(late_ip, "198.18.231.12");
    let text = read(&config);
    assert!(
        text.contains("bind 198.18.231.10:80")
            && text.contains("bind 198.18.231.11:8080")
            && text.contains("bind 198.18.231.12:9090"),
        "{text}"
    );
    haproxy_accepts(&config);

    k.ok(&[
        "label",
        "node",
        "lbh-e2e-node",
        "node.kubernetes.io/exclude-from-external-load-balancers=",
    ]);
    wait_for(
        "the excluded node to leave the backend",
        TIMEOUT,
        &server,
        &mut [&mut controller],
        || (!read(&config).contains("server lbh-e2e-node")).then_some(()),
    );
    k.ok(&[
        "label",
        "node",
        "lbh-e2e-node",
        "node.kubernetes.io/exclude-from-external-load-balancers-",
    ]);
    wait_for(
        "the node to come back",
        TIMEOUT,
        &server,
        &mut [&mut controller],
        || read(&config).contains(&server_line).then_some(()),
    );

    assert_eq!(
        svc_field(&k, "elsewhere", "{.status.loadBalancer.ingress}"),
        "",
        "another class's"
    );
    assert_eq!(svc_field(&k, "elsewhere", "{.metadata.finalizers}"), "");
    assert!(!read(&config).contains(":81\n"));

    k.ok_stdin(&["apply", "-f", "-"], OUTSIDE_POOL);
    wait_for(
        "the failure in kubectl describe",
        TIMEOUT,
        &server,
        &mut [&mut controller],
        || {
            let described = k.ok(&["-n", "lbh-e2e", "describe", "svc", "outside"]);
            (described.contains("SyncLoadBalancerFailed") && described.contains("not in the pool"))
                .then_some(())
        },
    );
    assert_eq!(
        svc_field(&k, "outside", "{.status.loadBalancer.ingress}"),
        ""
    );

    // A plain type change: the API server drops the LoadBalancer's own
    // fields and the controller takes the balancer down as for a deletion.
    k.ok(&[
        "-n",
        "lbh-e2e",
        "patch",
        "svc",
        "api",
        "-p",
        r#"{"spec":{"type":"ClusterIP"}}"#,
    ]);
    wait_for(
        "the balancer of a Service that became ClusterIP to go",
        TIMEOUT,
        &server,
        &mut [&mut controller],
        || {
            let gone = !read(&config).contains("bind 198.18.231.11:8080")
                && svc_field(&k, "api", "{.metadata.finalizers}").is_empty()
                && svc_field(&k, "api", "{.status.loadBalancer.ingress}").is_empty();
            gone.then_some(())
        },
    );

    k.ok(&[
        "-n",
        "lbh-e2e",
        "delete",
        "svc",
        "web",
        "api",
        "late",
        "outside",
        "--timeout=60s",
    ]);
    let emptied = read(&config);
    assert!(!emptied.contains("frontend lbh-e2e"), "{emptied}");
    // Without a stats socket, an idle listener keeps the empty file valid.
    assert!(emptied.contains("frontend berth_idle"), "{emptied}");
    haproxy_accepts(&config);
    // Clean-up took one pass: the finalizer's removal named the
    // resourceVersion the status write left, not the stale one (a 409).
    let failures = k.jsonpath(
        &["-n", "lbh-e2e", "get", "events"],
        r#"{range .items[?(@.reason=="SyncLoadBalancerFailed")]}{.involvedObject.name}: {.message}{"\n"}{end}"#,
    );
    assert!(
        failures.lines().all(|l| l.starts_with("outside: ")),
        "{failures}"
    );
    controller.assert_running();
    k.ok(&["delete", "node", "lbh-e2e-node"]);
}
