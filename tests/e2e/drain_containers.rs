//! `kubectl drain` (1.33) on two real containerd nodes: a Deployment of two
//! busybox pods on node A under a PodDisruptionBudget of minAvailable 2 stops
//! the drain with upstream's "Cannot evict pod as it would violate the pod's
//! disruption budget"; once the budget is relaxed to 1 the drain completes,
//! the pods run again as real containers on node B, their containers on A are
//! gone, A stays unschedulable until uncordoned, and the DaemonSet's pod on A
//! is left alone (`--ignore-daemonsets`).

mod cri_node;
mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use cri_node::{CriNode, Registry};
use support::{wait_for, BerthProcess, Kubectl, Server, KUBECTL_1_33};

const NS: &str = "dr-e2e";
const WAIT: Duration = Duration::from_secs(90);

fn workloads(image: &str) -> String {
    format!(
        r#"
apiVersion: apps/v1
kind: Deployment
metadata: {{name: app, namespace: {NS}}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: app}}}}
  template:
    metadata: {{labels: {{app: app}}}}
    spec:
      terminationGracePeriodSeconds: 1
      containers: [{{name: app, image: "{image}", command: [sleep, "3600"]}}]
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {{name: agent, namespace: {NS}}}
spec:
  selector: {{matchLabels: {{app: agent}}}}
  template:
    metadata: {{labels: {{app: agent}}}}
    spec:
      terminationGracePeriodSeconds: 1
      containers: [{{name: agent, image: "{image}", command: [sleep, "3600"]}}]
"#
    )
}

/// `(pod, node, containerID)` of the Running, Ready pods labelled `selector`
/// that are not being deleted.
fn running(k: &Kubectl, selector: &str) -> Vec<(String, String, String)> {
    let out = k.jsonpath(
        &["get", "pods", "-n", NS, "-l", selector],
        "{range .items[*]}{.metadata.name} {.spec.nodeName} {.status.phase} {.status.containerStatuses[0].ready} {.status.containerStatuses[0].containerID} {.metadata.deletionTimestamp}{\"\\n\"}{end}",
    );
    out.lines()
        .filter_map(
            |line| match line.split_whitespace().collect::<Vec<_>>()[..] {
                [name, node, "Running", "true", id] => Some((
                    name.to_owned(),
                    node.to_owned(),
                    id.trim_start_matches("containerd://").to_owned(),
                )),
                _ => None,
            },
        )
        .collect()
}

/// The IDs of the containers the containerd at `socket` holds.
fn containers(socket: &Path) -> String {
    let output = Command::new("ctr")
        .arg("--address")
        .arg(socket)
        .args(["--namespace", "k8s.io", "containers", "list", "--quiet"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn budget(k: &Kubectl) -> String {
    k.jsonpath(
        &["get", "pdb", "app", "-n", NS],
        "{.status.currentHealthy} {.status.desiredHealthy} {.status.disruptionsAllowed}",
    )
}

fn wait_budget(server: &Server, k: &Kubectl, procs: &mut [&mut BerthProcess], want: &str) {
    wait_for(&format!("budget {want}"), WAIT, server, procs, || {
        (budget(k) == want).then_some(())
    });
}

#[test]
fn drain_stops_at_a_budget_and_continues_when_allowed_on_real_containers() {
    let registry = Registry::start();
    // A cluster range of its own, so the nodes' bridges overlap no other test's.
    let cidr = format!("10.{}.0.0/16", 150 + registry.port % 50);
    let server = Server::start_with(&["--cluster-cidr", &cidr]);
    let k = server.kubectl(KUBECTL_1_33);
    let mut a = CriNode::start(&server, &registry, "dr-a");
    let mut b = CriNode::start(&server, &registry, "dr-b");
    let a_socket = a.socket();
    k.ok(&["create", "namespace", NS]);
    wait_for(
        "both nodes Ready",
        WAIT,
        &server,
        &mut [&mut a.agent, &mut b.agent],
        || {
            let ready = k.jsonpath(
                &["get", "nodes"],
                "{.items[*].status.conditions[?(@.type==\"Ready\")].status}",
            );
            (ready == "True True").then_some(())
        },
    );

    // B cordoned: the Deployment's pods both land on A; the DaemonSet's on both.
    k.ok(&["cordon", "dr-b"]);
    k.ok_stdin(&["apply", "-f", "-"], &workloads(&registry.image("web:1")));
    let before = wait_for(
        "two app pods on dr-a and two daemon pods",
        WAIT,
        &server,
        &mut [&mut a.agent, &mut b.agent],
        || {
            let app = running(&k, "app=app");
            let daemons = running(&k, "app=agent");
            (app.len() == 2 && app.iter().all(|(_, n, _)| n == "dr-a") && daemons.len() == 2)
                .then_some(app)
        },
    );
    let on_a = containers(&a_socket);
    for (pod, _, id) in &before {
        assert!(
            on_a.contains(id),
            "{pod}'s container {id} not on dr-a: {on_a}"
        );
    }
    k.ok(&["uncordon", "dr-b"]);

    // minAvailable 2 of 2: no disruption allowed, the drain stops.
    k.ok(&[
        "create",
        "poddisruptionbudget",
        "app",
        "-n",
        NS,
        "--selector=app=app",
        "--min-available=2",
    ]);
    wait_budget(&server, &k, &mut [&mut a.agent, &mut b.agent], "2 2 0");
    let drain = [
        "drain",
        "dr-a",
        "--ignore-daemonsets",
        "--delete-emptydir-data",
    ];
    let stalled = k.run(&[&drain[..], &["--timeout=8s"][..]].concat());
    let stderr = String::from_utf8_lossy(&stalled.stderr);
    assert!(
        !stalled.status.success(),
        "drain passed the budget: {stderr}"
    );
    assert!(
        stderr.contains("Cannot evict pod as it would violate the pod's disruption budget."),
        "{stderr}"
    );
    assert_eq!(
        k.jsonpath(&["get", "node", "dr-a"], "{.spec.unschedulable}"),
        "true"
    );
    let still: Vec<_> = running(&k, "app=app").into_iter().map(|p| p.0).collect();
    let mut names: Vec<_> = before.iter().map(|p| p.0.clone()).collect();
    names.sort();
    let mut still_sorted = still.clone();
    still_sorted.sort();
    assert_eq!(still_sorted, names, "the budget kept both pods");

    // minAvailable 1: the drain goes on, one pod at a time.
    k.ok(&[
        "patch",
        "pdb",
        "app",
        "-n",
        NS,
        "--type=merge",
        "-p",
        r#"{"spec":{"minAvailable":1}}"#,
    ]);
    wait_budget(&server, &k, &mut [&mut a.agent, &mut b.agent], "2 1 1");
    let done = k.run(&[&drain[..], &["--timeout=90s"][..]].concat());
    let stdout = String::from_utf8_lossy(&done.stdout);
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert!(
        done.status.success(),
        "drain failed\n{stdout}\n{stderr}\n{}",
        server.log()
    );
    for (pod, _, _) in &before {
        assert!(
            stdout.contains(&format!("pod/{pod} evicted")),
            "{pod}: {stdout}"
        );
    }
    assert!(stdout.contains("node/dr-a drained"), "{stdout}");

    // Both replicas run on B as real containers; A's are torn down.
    let after = wait_for(
        "two app pods Running on dr-b",
        WAIT,
        &server,
        &mut [&mut a.agent, &mut b.agent],
        || {
            let app = running(&k, "app=app");
            (app.len() == 2 && app.iter().all(|(_, n, _)| n == "dr-b")).then_some(app)
        },
    );
    let on_b = containers(&b.socket());
    for (pod, _, id) in &after {
        assert!(
            on_b.contains(id),
            "{pod}'s container {id} not on dr-b: {on_b}"
        );
    }
    wait_for(
        "the evicted containers gone from dr-a",
        WAIT,
        &server,
        &mut [&mut a.agent, &mut b.agent],
        || {
            let on_a = containers(&a_socket);
            before
                .iter()
                .all(|(_, _, id)| !on_a.contains(id))
                .then_some(())
        },
    );
    let daemons = running(&k, "app=agent");
    assert!(
        daemons.iter().any(|(_, n, _)| n == "dr-a"),
        "the DaemonSet's pod stays on dr-a: {daemons:?}"
    );
    assert_eq!(
        k.jsonpath(&["get", "node", "dr-a"], "{.spec.unschedulable}"),
        "true"
    );
    k.ok(&["uncordon", "dr-a"]);
    assert_eq!(
        k.jsonpath(&["get", "node", "dr-a"], "{.spec.unschedulable}"),
        ""
    );
    k.ok(&["delete", "namespace", NS, "--timeout=60s"]);
}
