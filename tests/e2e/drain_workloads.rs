//! `kubectl drain` (1.33) over the workload controllers, on two simulated
//! nodes: a StatefulSet of 3 under a PodDisruptionBudget of maxUnavailable 1,
//! a DaemonSet and a running Job. Draining the node that holds two of the
//! StatefulSet's pods evicts one, is refused (429, retried by kubectl) for the
//! other until the StatefulSet has recreated the first under its own name on
//! the other node, then goes on; the Job's pod is replaced on the other node;
//! the DaemonSet's pod stays (`--ignore-daemonsets`).

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use support::{wait_for, Kubectl, LogsOnFailure, Server, KUBECTL_1_33};

const NAMESPACE: &str = "dw";

const WORKLOADS: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: db, namespace: dw}
spec:
  clusterIP: None
  selector: {app: db}
  ports: [{port: 5432}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db, namespace: dw}
spec:
  serviceName: db
  replicas: 3
  podManagementPolicy: Parallel
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      containers: [{name: db, image: postgres:16}]
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: db, namespace: dw}
spec:
  maxUnavailable: 1
  selector: {matchLabels: {app: db}}
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: logs, namespace: dw}
spec:
  selector: {matchLabels: {app: logs}}
  template:
    metadata: {labels: {app: logs}}
    spec:
      containers: [{name: logs, image: fluent-bit:3}]
---
apiVersion: batch/v1
kind: Job
metadata: {name: batch, namespace: dw}
spec:
  parallelism: 2
  completions: 2
  template:
    spec:
      restartPolicy: Never
      containers: [{name: work, image: busybox}]
"#;

/// `node → names of the pods on it` for the pods not being deleted, among
/// those labelled `selector`.
fn pods_by_node(kubectl: &Kubectl, selector: &str) -> BTreeMap<String, Vec<String>> {
    let out = kubectl.jsonpath(
        &["get", "pods", "-n", NAMESPACE, "-l", selector],
        "{range .items[?(@.spec.nodeName)]}{.spec.nodeName} {.metadata.name} {.metadata.deletionTimestamp} {.status.phase}{\"\\n\"}{end}",
    );
    let mut by_node: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in out.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        // A deleted pod carries a deletion timestamp: a fourth field.
        if let [node, name, "Running"] = fields[..] {
            by_node
                .entry(node.to_owned())
                .or_default()
                .push(name.to_owned());
        }
    }
    by_node
}

#[test]
fn drain_waits_for_the_statefulset_under_its_budget_and_replaces_job_pods() {
    let server = Server::start();
    let kubectl = server.kubectl(KUBECTL_1_33);
    let heartbeat = ["--heartbeat-interval", "2s"];
    let mut a = server.start_agent("dw-a", &heartbeat);
    let mut b = server.start_agent("dw-b", &heartbeat);
    let _logs = LogsOnFailure::new(&server, &[&a, &b]);
    kubectl.ok(&["create", "namespace", NAMESPACE]);
    kubectl.ok_stdin(&["apply", "-f", "-"], WORKLOADS);

    // Three database pods on two nodes: one node holds two of them.
    let db = wait_for(
        "db is 3 ready, the DaemonSet 2, the Job 2 active, budget allows 1",
        Duration::from_secs(60),
        &server,
        &mut [&mut a, &mut b],
        || {
            let ready = kubectl.jsonpath(
                &["get", "statefulset", "db", "-n", NAMESPACE],
                "{.status.readyReplicas}",
            );
            let daemons = kubectl.jsonpath(
                &["get", "daemonset", "logs", "-n", NAMESPACE],
                "{.status.numberReady}",
            );
            let active = kubectl.jsonpath(
                &["get", "job", "batch", "-n", NAMESPACE],
                "{.status.active}",
            );
            let allowed = kubectl.jsonpath(
                &["get", "pdb", "db", "-n", NAMESPACE],
                "{.status.disruptionsAllowed}",
            );
            let db = pods_by_node(&kubectl, "app=db");
            (ready == "3"
                && daemons == "2"
                && active == "2"
                && allowed == "1"
                && db.values().map(Vec::len).sum::<usize>() == 3)
                .then_some(db)
        },
    );
    let (crowded, two) = db
        .iter()
        .find(|(_, pods)| pods.len() == 2)
        .map(|(node, pods)| (node.clone(), pods.clone()))
        .expect("one node holds two db pods");
    let other = if crowded == "dw-a" { "dw-b" } else { "dw-a" };

    let drain = kubectl.run(&["drain", &crowded, "--ignore-daemonsets", "--timeout=90s"]);
    let stdout = String::from_utf8_lossy(&drain.stdout);
    let stderr = String::from_utf8_lossy(&drain.stderr);
    assert!(drain.status.success(), "drain failed\n{stdout}\n{stderr}");
    // kubectl retries the second database pod on upstream's 429 until the
    // first is back on the other node.
    assert!(
        stderr.contains("Cannot evict pod as it would violate the pod's disruption budget."),
        "the budget never held the drain back:\n{stdout}\n{stderr}"
    );
    for pod in &two {
        assert!(
            stdout.contains(&format!("pod/{pod} evicted")),
            "{pod} was not evicted:\n{stdout}\n{stderr}"
        );
    }
    assert!(
        stdout.contains(&format!("node/{crowded} drained")),
        "{stdout}"
    );

    // Everything but the DaemonSet's pod now runs on the other node, the
    // database pods under their own names.
    wait_for(
        "db 3 ready and the Job 2 active on the other node",
        Duration::from_secs(60),
        &server,
        &mut [&mut a, &mut b],
        || {
            let db = pods_by_node(&kubectl, "app=db");
            let jobs = pods_by_node(&kubectl, "job-name=batch");
            let ready = kubectl.jsonpath(
                &["get", "statefulset", "db", "-n", NAMESPACE],
                "{.status.readyReplicas}",
            );
            let mut names = db.get(other).cloned().unwrap_or_default();
            names.sort();
            (ready == "3"
                && db.len() == 1
                && names == ["db-0", "db-1", "db-2"]
                && jobs.len() == 1
                && jobs.get(other).map(Vec::len) == Some(2))
            .then_some(())
        },
    );
    let daemons = pods_by_node(&kubectl, "app=logs");
    assert_eq!(
        daemons.get(&crowded).map(Vec::len),
        Some(1),
        "the DaemonSet's pod stays on the drained node: {daemons:?}"
    );
    let unschedulable = kubectl.jsonpath(&["get", "node", &crowded], "{.spec.unschedulable}");
    assert_eq!(unschedulable, "true");
    kubectl.ok(&["uncordon", &crowded]);
}
