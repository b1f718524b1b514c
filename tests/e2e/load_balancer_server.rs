//! The service controller inside `berth server`: with `--haproxy-config`
//! and `--address-pool` alone the server gives a LoadBalancer Service an
//! address from the pool and a frontend in the file, holding the
//! `kube-system/berth-cloud-controller` Lease itself; with `--disable
//! cloud-controller` it leaves the Lease to a `berth cloud-controller` and
//! Services stay `<pending>` when that one takes no classless Services.
//! Nodes are API objects only: no traffic.

mod support;

use std::path::Path;
use std::time::Duration;

use support::{lease_holder, wait_for, Kubectl, Server, KUBECTL_1_33};

const NODE_AND_SERVICE: &str = r#"
apiVersion: v1
kind: Node
metadata:
  name: lbsv-e2e-node
---
apiVersion: v1
kind: Namespace
metadata:
  name: lbsv-e2e
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: lbsv-e2e
spec:
  type: LoadBalancer
  selector:
    app: web
  ports:
  - port: 80
"#;

const TIMEOUT: Duration = Duration::from_secs(60);
const POOL: &str = "198.18.232.10-198.18.232.11";
const LEASE: &str = "berth-cloud-controller";

fn svc_field(k: &Kubectl, template: &str) -> String {
    k.jsonpath(&["-n", "lbsv-e2e", "get", "svc", "web"], template)
}

/// The server flags turning the `haproxy` provider on, writing `config`.
fn provider_flags(config: &Path) -> Vec<String> {
    vec![
        "--haproxy-config".into(),
        config.display().to_string(),
        "--address-pool".into(),
        POOL.into(),
    ]
}

fn apply(k: &Kubectl) {
    k.ok_stdin(&["apply", "-f", "-"], NODE_AND_SERVICE);
}

#[test]
fn berth_server_runs_the_service_controller() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("haproxy.cfg");
    let flags = provider_flags(&config);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let server = Server::start_with(&flags);
    let k = server.kubectl(KUBECTL_1_33);
    apply(&k);
    let ip = wait_for(
        "the Service's ingress address",
        TIMEOUT,
        &server,
        &mut [],
        || Some(svc_field(&k, "{.status.loadBalancer.ingress[0].ip}")).filter(|ip| !ip.is_empty()),
    );
    assert_eq!(ip, "198.18.232.10");
    assert_eq!(
        svc_field(&k, "{.metadata.finalizers}"),
        r#"["service.kubernetes.io/load-balancer-cleanup"]"#
    );
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.contains("bind 198.18.232.10:80"), "{text}");
    let holder = lease_holder(&k, &[], LEASE);
    assert!(holder.is_some(), "the server holds the Lease");
}

#[test]
fn disabled_in_the_server_services_stay_pending() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("haproxy.cfg");
    let mut flags = provider_flags(&config);
    flags.extend(["--disable".into(), "cloud-controller".into()]);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let server = Server::start_with(&flags);
    let k = server.kubectl(KUBECTL_1_33);
    apply(&k);
    // A standalone copy that leaves classless Services alone: it can take
    // the Lease only because the server does not hold it.
    let other = dir.path().join("other.cfg");
    let other = other.display().to_string();
    let args = [
        "cloud-controller",
        "--identity",
        "lbsv-e2e-standalone",
        "--haproxy-config",
        &other,
        "--address-pool",
        POOL,
        "--default-provider",
        "none",
    ];
    let mut standalone = server.spawn_berth("lbsv-cloud-controller", &args);
    wait_for(
        "the standalone controller to hold the Lease",
        TIMEOUT,
        &server,
        &mut [&mut standalone],
        || lease_holder(&k, &[], LEASE).filter(|h| h == "lbsv-e2e-standalone"),
    );
    assert_eq!(svc_field(&k, "{.status.loadBalancer}"), "{}");
    assert_eq!(svc_field(&k, "{.metadata.finalizers}"), "");
    let listed = k.ok(&["-n", "lbsv-e2e", "get", "svc", "web"]);
    assert!(listed.contains("<pending>"), "{listed}");
    assert!(!config.exists(), "the server wrote no haproxy.cfg");
}
