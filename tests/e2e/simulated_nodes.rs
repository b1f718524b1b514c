//! Simulated nodes end to end: `berth agent --runtime simulated` and
//! `berth sim` against a real `berth server`, checked with the real kubectl:
//! registration (labels, capacity, Ready), pods bound by hand running with an
//! IP, graceful deletion finished by the agent, and Lease heartbeats.

mod support;

use std::time::{Duration, Instant};

use support::{wait_for, Server, KUBECTL_1_31};

const POD: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: NAME
spec:
  nodeName: NODE
  terminationGracePeriodSeconds: 30
  containers:
  - name: app
    image: nginx:1.27
"#;

fn pod_manifest(name: &str, node: &str) -> String {
    POD.replace("NAME", name).replace("NODE", node)
}

#[test]
fn simulated_nodes_register_run_pods_and_heartbeat() {
    let server = Server::start();
    let kubectl = server.kubectl(KUBECTL_1_31);
    let mut agent = server.start_agent(
        "n1",
        &[
            "--labels",
            "disk=ssd",
            "--capacity",
            "cpu=8,memory=32Gi,nvidia.com/gpu=2",
            "--heartbeat-interval",
            "1s",
        ],
    );

    // Registered and Ready, with its labels and capacity.
    wait_for(
        "n1 Ready",
        Duration::from_secs(20),
        &server,
        &mut [&mut agent],
        || {
            let out = kubectl.run(&["get", "nodes"]);
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            text.lines()
                .any(|l| {
                    let mut cells = l.split_whitespace();
                    cells.next() == Some("n1") && cells.next() == Some("Ready")
                })
                .then_some(())
        },
    );
    let labelled = kubectl.ok(&["get", "nodes", "-l", "disk=ssd", "-o", "name"]);
    assert_eq!(labelled.trim(), "node/n1");
    let labels = kubectl.jsonpath(
        &["get", "node", "n1"],
        "{.metadata.labels.kubernetes\\.io/hostname} {.metadata.labels.kubernetes\\.io/os} {.metadata.labels.kubernetes\\.io/arch}",
    );
    assert_eq!(labels, "n1 linux amd64");
    let capacity = kubectl.jsonpath(
        &["get", "node", "n1"],
        "{.status.capacity.nvidia\\.com/gpu} {.status.capacity.cpu} {.status.allocatable.memory} {.status.capacity.pods}",
    );
    assert_eq!(capacity, "2 8 32Gi 110");
    let info = kubectl.jsonpath(
        &["get", "node", "n1"],
        "{.status.nodeInfo.kubeletVersion} {.status.nodeInfo.containerRuntimeVersion} {.status.addresses[0].type}",
    );
    assert_eq!(info, "v1.33.0-berth simulated://1.0 InternalIP");

    // A pod bound by hand runs, with an IP and ready containers.
    kubectl.ok_stdin(&["apply", "-f", "-"], &pod_manifest("web", "n1"));
    let ip = wait_for(
        "pod web Running",
        Duration::from_secs(15),
        &server,
        &mut [&mut agent],
        || {
            let status =
                kubectl.jsonpath(&["get", "pod", "web"], "{.status.phase} {.status.podIP}");
            match status.split_whitespace().collect::<Vec<_>>().as_slice() {
                ["Running", ip] => Some((*ip).to_owned()),
                _ => None,
            }
        },
    );
    assert!(ip.parse::<std::net::Ipv4Addr>().is_ok(), "pod IP {ip:?}");
    let ready = kubectl.jsonpath(
        &["get", "pod", "web"],
        "{.status.conditions[?(@.type==\"Ready\")].status} {.status.containerStatuses[0].ready} {.status.containerStatuses[0].containerID} {.status.hostIP}",
    );
    let cells: Vec<&str> = ready.split_whitespace().collect();
    assert_eq!(cells[..2], ["True", "true"], "{ready}");
    assert!(cells[2].starts_with("simulated://"), "{ready}");
    assert!(cells[3].starts_with("127."), "{ready}");
    let wide = kubectl.ok(&["get", "pod", "web", "-o", "wide"]);
    assert!(
        wide.contains("1/1") && wide.contains(&ip) && wide.contains("n1"),
        "{wide}"
    );

    // Graceful deletion: the agent stops the pod and finishes the deletion,
    // long before the 30 s grace period runs out.
    let started = Instant::now();
    kubectl.ok(&["delete", "pod", "web", "--timeout=20s"]);
    assert!(started.elapsed() < Duration::from_secs(15));
    let gone = kubectl.fails(&["get", "pod", "web"]);
    assert!(gone.contains("NotFound"), "{gone}");

    // The Lease is held by the node and renewed.
    let lease = |template: &str| {
        kubectl.jsonpath(&["get", "lease", "n1", "-n", "kube-node-lease"], template)
    };
    assert_eq!(
        lease("{.spec.holderIdentity} {.spec.leaseDurationSeconds}"),
        "n1 40"
    );
    let first = lease("{.spec.renewTime}");
    wait_for(
        "the Lease renewed",
        Duration::from_secs(10),
        &server,
        &mut [&mut agent],
        || (lease("{.spec.renewTime}") != first).then_some(()),
    );

    // Many simulated nodes in one process, all Ready, running pods through
    // the shared watch.
    let mut sim = server.start_sim(50, "sim-", &["--pool", "cpu", "--heartbeat-interval", "2s"]);
    wait_for(
        "50 sim nodes Ready",
        Duration::from_secs(30),
        &server,
        &mut [&mut sim, &mut agent],
        || {
            let out = kubectl.run(&["get", "nodes", "-l", "berth.dev/pool=cpu", "-o", "json"]);
            let list: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
            let ready = list["items"]
                .as_array()?
                .iter()
                .filter(|node| {
                    node["status"]["conditions"].as_array().is_some_and(|c| {
                        c.iter()
                            .any(|c| c["type"] == "Ready" && c["status"] == "True")
                    })
                })
                .count();
            (ready == 50).then_some(())
        },
    );
    // Node IPAM assigns sim-7 a podCIDR; wait for it so the pod's address comes from it.
    wait_for(
        "sim-7 has a podCIDR",
        Duration::from_secs(15),
        &server,
        &mut [&mut sim],
        || {
            (!kubectl
                .jsonpath(&["get", "node", "sim-7"], "{.spec.podCIDR}")
                .is_empty())
            .then_some(())
        },
    );
    kubectl.ok_stdin(&["apply", "-f", "-"], &pod_manifest("on-sim", "sim-7"));
    let sim_ip = wait_for(
        "pod on-sim Running",
        Duration::from_secs(15),
        &server,
        &mut [&mut sim],
        || {
            let status =
                kubectl.jsonpath(&["get", "pod", "on-sim"], "{.status.phase} {.status.podIP}");
            match status.split_whitespace().collect::<Vec<_>>().as_slice() {
                ["Running", ip] => Some((*ip).to_owned()),
                _ => None,
            }
        },
    );
    // Node IPAM gives sim-7 a /24 of the cluster CIDR; its pods get addresses from it.
    let cidr = kubectl.jsonpath(&["get", "node", "sim-7"], "{.spec.podCIDR}");
    let prefix = cidr.trim_end_matches("0/24");
    assert!(
        cidr.ends_with(".0/24") && sim_ip.starts_with(prefix),
        "{sim_ip} in {cidr}"
    );
    kubectl.ok(&["delete", "pod", "on-sim", "--timeout=20s"]);
    // The single agent ignores pods of other nodes and keeps running.
    agent.assert_running();
    sim.assert_running();
}
