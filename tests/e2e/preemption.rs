//! Priority and preemption end to end: `berth server` (scheduler and
//! controllers in-process) with simulated agents of 2 cpu and one real
//! containerd node of 1 cpu, driven by kubectl 1.33. Low-priority pods fill
//! a node; a high-priority pod preempts one of them (the victim is deleted
//! with upstream's `Preempted` event, the preemptor is nominated to the node
//! and then runs there); a `preemptionPolicy: Never` pod stays Pending with
//! upstream's message; a victim protected by a PodDisruptionBudget is
//! avoided when another node will do; on real containers a high-priority pod
//! takes the place of a low-priority one.

mod cri_node;
mod support;

use std::time::{Duration, Instant};

use cri_node::{CriNode, Registry};
use serde_json::{json, Value};
use support::{wait_for, BerthProcess, Kubectl, Server, KUBECTL_1_33};

const NS: &str = "pre-e2e";
const WAIT: Duration = Duration::from_secs(60);

/// A pod of priority class `class` asking for `cpu`, placed by the
/// scheduler on the nodes labelled `pre-pool=POOL`, or pinned to `node`.
fn pod(name: &str, class: &str, cpu: &str, pool: &str, labels: Value, node: Option<&str>) -> Value {
    let mut spec = json!({
        "priorityClassName": class,
        "terminationGracePeriodSeconds": 1,
        "containers": [{"name": "c", "image": "busybox",
            "resources": {"requests": {"cpu": cpu, "memory": "64Mi"}}}],
    });
    match node {
        Some(node) => spec["nodeName"] = json!(node),
        None => spec["nodeSelector"] = json!({"pre-pool": pool}),
    }
    json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": NS, "labels": labels}, "spec": spec})
}

fn create(k: &Kubectl, pod: &Value) {
    k.ok_stdin(&["create", "-f", "-"], &pod.to_string());
}

/// Low-priority pods of 1 cpu labelled `app=APP`, pinned to `node`.
fn pin(k: &Kubectl, names: &[&str], app: &str, node: &str) {
    for name in names {
        let labels = json!({ "app": app });
        create(k, &pod(name, "pre-low", "1", "sim", labels, Some(node)));
    }
}

/// `phase nodeName deleting nominatedNodeName` of pod `name`; `None` when gone.
fn state(k: &Kubectl, name: &str) -> Option<(String, String, bool, String)> {
    let out = k.run(&[
        "get",
        "pod",
        name,
        "-n",
        NS,
        "-o",
        "json",
        "--ignore-not-found",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    if text.trim().is_empty() {
        return None;
    }
    let pod: Value = serde_json::from_str(&text).unwrap();
    let field = |p: &str| {
        pod.pointer(p)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    Some((
        field("/status/phase"),
        field("/spec/nodeName"),
        pod.pointer("/metadata/deletionTimestamp").is_some(),
        field("/status/nominatedNodeName"),
    ))
}

fn running_on(k: &Kubectl, name: &str) -> Option<String> {
    state(k, name)
        .filter(|(phase, _, deleting, _)| phase == "Running" && !deleting)
        .map(|(_, node, _, _)| node)
}

fn wait_running(server: &Server, k: &Kubectl, procs: &mut [&mut BerthProcess], names: &[&str]) {
    for name in names {
        wait_for(&format!("{name} running"), WAIT, server, procs, || {
            running_on(k, name)
        });
    }
}

/// Events in the namespace with `reason` about pod `name`: their messages.
fn events(k: &Kubectl, reason: &str, name: &str) -> Vec<String> {
    let out = k.ok(&["get", "events", "-n", NS, "-o", "json"]);
    let list: Value = serde_json::from_str(&out).unwrap();
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["reason"] == reason && e["involvedObject"]["name"] == name)
        .map(|e| e["message"].as_str().unwrap_or("").to_owned())
        .collect()
}

fn uid(k: &Kubectl, name: &str) -> String {
    k.jsonpath(&["get", "pod", name, "-n", NS], "{.metadata.uid}")
}

/// Creates `preemptor` and waits until it runs on `node`, with the
/// nomination to `node` seen on the way; returns the victims (of
/// `candidates`, those deleted).
fn preempt(
    server: &Server,
    k: &Kubectl,
    procs: &mut [&mut BerthProcess],
    preemptor: &Value,
    node: &str,
    candidates: &[&str],
) -> Vec<String> {
    let name = preemptor["metadata"]["name"].as_str().unwrap();
    create(k, preemptor);
    let mut nominated = false;
    wait_for(
        &format!("{name} runs on {node}"),
        WAIT,
        server,
        procs,
        || {
            let (phase, on, _, nomination) = state(k, name)?;
            nominated |= nomination == node;
            (phase == "Running" && on == node).then_some(())
        },
    );
    assert!(
        nominated,
        "{name}: status.nominatedNodeName={node} was never seen"
    );
    let victims: Vec<String> = candidates
        .iter()
        .filter(|c| state(k, c).is_none_or(|(_, _, deleting, _)| deleting))
        .map(|c| c.to_string())
        .collect();
    let uid = uid(k, name);
    for victim in &victims {
        let want = format!("Preempted by pod {uid} on node {node}");
        wait_for(
            &format!("Preempted event on {victim}"),
            WAIT,
            server,
            procs,
            || events(k, "Preempted", victim).contains(&want).then_some(()),
        );
    }
    victims
}

#[test]
fn high_priority_pods_preempt_lower_ones_as_upstream() {
    let registry = Registry::start();
    // A cluster range of its own, so the real node's bridge overlaps no other test's.
    let cidr = format!("10.{}.0.0/16", 150 + registry.port % 50);
    let server = Server::start_with(&["--cluster-cidr", &cidr]);
    let k = server.kubectl(KUBECTL_1_33);
    k.ok(&["create", "namespace", NS]);
    k.ok(&["create", "priorityclass", "pre-low", "--value=10"]);
    k.ok(&["create", "priorityclass", "pre-high", "--value=1000"]);
    k.ok(&[
        "create",
        "priorityclass",
        "pre-high-never",
        "--value=1000",
        "--preemption-policy=Never",
    ]);
    let node_flags = ["--capacity", "cpu=2", "--labels", "pre-pool=sim"];
    let mut a = server.start_agent("pre-a", &node_flags);

    // A full node: two low pods of 1 cpu on 2 cpu.
    create(&k, &pod("low-1", "pre-low", "1", "sim", json!({}), None));
    create(&k, &pod("low-2", "pre-low", "1", "sim", json!({}), None));
    wait_running(&server, &k, &mut [&mut a], &["low-1", "low-2"]);

    // A high-priority pod preempts exactly one of them.
    let high = pod("high", "pre-high", "1", "sim", json!({}), None);
    let victims = preempt(
        &server,
        &k,
        &mut [&mut a],
        &high,
        "pre-a",
        &["low-1", "low-2"],
    );
    assert_eq!(victims.len(), 1, "one victim is enough: {victims:?}");
    let survivor = if victims[0] == "low-1" {
        "low-2"
    } else {
        "low-1"
    };
    assert_eq!(running_on(&k, survivor).as_deref(), Some("pre-a"));
    let failed = events(&k, "FailedScheduling", "high");
    assert!(
        failed
            .iter()
            .any(|m| m == "0/1 nodes are available: 1 Insufficient cpu."),
        "upstream prints no preemption part when it nominated a node: {failed:?}"
    );

    // preemptionPolicy: Never waits, however high its priority.
    create(
        &k,
        &pod("never", "pre-high-never", "1", "sim", json!({}), None),
    );
    let want = "0/1 nodes are available: 1 Insufficient cpu. preemption: not eligible due to preemptionPolicy=Never..";
    wait_for(
        "the Never pod's FailedScheduling",
        WAIT,
        &server,
        &mut [&mut a],
        || {
            events(&k, "FailedScheduling", "never")
                .iter()
                .any(|m| m == want)
                .then_some(())
        },
    );
    std::thread::sleep(Duration::from_secs(2));
    let (phase, node, _, _) = state(&k, "never").unwrap();
    assert_eq!((phase.as_str(), node.as_str()), ("Pending", ""));
    assert_eq!(running_on(&k, survivor).as_deref(), Some("pre-a"));
    k.ok(&["delete", "pods", "--all", "-n", NS, "--wait=true"]);

    // Two full nodes; the victims on pre-a started later (so upstream's last
    // rule would pick pre-a), but a budget guards them: pre-b is chosen.
    let mut b = server.start_agent("pre-b", &node_flags);
    pin(&k, &["free-1", "free-2"], "free", "pre-b");
    wait_running(&server, &k, &mut [&mut a, &mut b], &["free-1", "free-2"]);
    std::thread::sleep(Duration::from_millis(1500));
    pin(&k, &["guarded-1", "guarded-2"], "guarded", "pre-a");
    wait_running(
        &server,
        &k,
        &mut [&mut a, &mut b],
        &["guarded-1", "guarded-2"],
    );
    k.ok(&[
        "create",
        "poddisruptionbudget",
        "guarded",
        "-n",
        NS,
        "--selector=app=guarded",
        "--min-available=2",
    ]);
    wait_for(
        "the budget allows no disruption",
        WAIT,
        &server,
        &mut [&mut a, &mut b],
        || {
            let status = k.jsonpath(
                &["get", "pdb", "guarded", "-n", NS],
                "{.status.currentHealthy} {.status.disruptionsAllowed}",
            );
            (status == "2 0").then_some(())
        },
    );
    let high = pod("high-2", "pre-high", "1", "sim", json!({}), None);
    let candidates = ["free-1", "free-2", "guarded-1", "guarded-2"];
    let victims = preempt(
        &server,
        &k,
        &mut [&mut a, &mut b],
        &high,
        "pre-b",
        &candidates,
    );
    assert_eq!(victims.len(), 1, "{victims:?}");
    assert!(victims[0].starts_with("free-"), "{victims:?}");
    for name in ["guarded-1", "guarded-2"] {
        assert_eq!(
            running_on(&k, name).as_deref(),
            Some("pre-a"),
            "{name} kept"
        );
    }
    k.ok(&["delete", "pods", "--all", "-n", NS, "--wait=true"]);
    drop(b);

    // Real containers: a node of 1 cpu holds one of two 600m pods.
    let mut node = CriNode::start_with(
        &server,
        &registry,
        "pre-cri",
        &["--capacity", "cpu=1", "--labels", "pre-pool=cri"],
    );
    let real = |name: &str, class: &str| {
        let mut p = pod(name, class, "600m", "cri", json!({}), None);
        p["spec"]["containers"][0]["image"] = json!(registry.image("web:1"));
        p["spec"]["containers"][0]["command"] = json!(["sleep", "3600"]);
        p
    };
    create(&k, &real("cri-low", "pre-low"));
    wait_running(&server, &k, &mut [&mut a, &mut node.agent], &["cri-low"]);
    let started = Instant::now();
    let victims = preempt(
        &server,
        &k,
        &mut [&mut a, &mut node.agent],
        &real("cri-high", "pre-high"),
        "pre-cri",
        &["cri-low"],
    );
    assert_eq!(victims, ["cri-low"]);
    eprintln!("real preemption to running: {:?}", started.elapsed());
}
