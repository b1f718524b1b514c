//! A lost node end to end: `berth server` (scheduler and controllers
//! in-process) with short node-lifecycle periods and two simulated agents.
//! Node IPAM gives each node its own /24 of 10.42.0.0/16 and pods get IPs in
//! it; killing one agent makes its node Unknown and tainted unreachable, its
//! pods are evicted and replaced on the other node; restarting the agent
//! clears the taint.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use support::{wait_for, Kubectl, Server, KUBECTL_1_31};

/// `name → podCIDR` of every node.
fn pod_cidrs(kubectl: &Kubectl) -> BTreeMap<String, String> {
    kubectl
        .jsonpath(
            &["get", "nodes"],
            r#"{range .items[*]}{.metadata.name}={.spec.podCIDR}{"\n"}{end}"#,
        )
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(n, c)| (n.to_owned(), c.to_owned()))
        .collect()
}

/// `(name, node, podIP, deleting)` of every pod of the `web` deployment.
fn web_pods(kubectl: &Kubectl) -> Vec<(String, String, String, bool)> {
    kubectl
        .jsonpath(
            &["get", "pods", "-l", "app=web"],
            r#"{range .items[*]}{.metadata.name} {.spec.nodeName} {.status.podIP} {.metadata.deletionTimestamp}{"\n"}{end}"#,
        )
        .lines()
        .map(|l| {
            let fields: Vec<&str> = l.split(' ').collect();
            let field = |i: usize| fields.get(i).copied().unwrap_or("").to_owned();
            (field(0), field(1), field(2), !field(3).is_empty())
        })
        .collect()
}

fn available_replicas(kubectl: &Kubectl) -> String {
    kubectl.jsonpath(&["get", "deployment", "web"], "{.status.availableReplicas}")
}

/// `key:effect` of the node's taints and its Ready condition status.
fn node_state(kubectl: &Kubectl, node: &str) -> (BTreeSet<String>, String) {
    let taints = kubectl
        .jsonpath(
            &["get", "node", node],
            r#"{range .spec.taints[*]}{.key}:{.effect}{"\n"}{end}"#,
        )
        .lines()
        .map(str::to_owned)
        .collect();
    let ready = kubectl.jsonpath(
        &["get", "node", node],
        r#"{.status.conditions[?(@.type=="Ready")].status}"#,
    );
    (taints, ready)
}

/// Whether `ip` lies in the /24 `cidr` (the test uses the default mask).
fn in_slash_24(ip: &str, cidr: &str) -> bool {
    let network = cidr.trim_end_matches("0/24");
    cidr.ends_with(".0/24") && ip.starts_with(network)
}

#[test]
fn lost_node_pods_are_replaced_and_taint_clears_when_it_returns() {
    let server = Server::start_with(&[
        "--node-monitor-grace-period",
        "6s",
        "--default-unreachable-toleration-seconds",
        "2",
        "--default-not-ready-toleration-seconds",
        "2",
    ]);
    let kubectl = server.kubectl(KUBECTL_1_31);
    let heartbeat = ["--heartbeat-interval", "2s"];
    let mut n1 = server.start_agent("n1", &heartbeat);
    let mut n2 = server.start_agent("n2", &heartbeat);

    let cidrs = wait_for(
        "both nodes get a podCIDR",
        Duration::from_secs(20),
        &server,
        &mut [&mut n1, &mut n2],
        || {
            let cidrs = pod_cidrs(&kubectl);
            (cidrs.len() == 2 && cidrs.values().all(|c| !c.is_empty())).then_some(cidrs)
        },
    );
    let distinct: BTreeSet<&String> = cidrs.values().collect();
    assert_eq!(distinct.len(), 2, "{cidrs:?}");
    for cidr in cidrs.values() {
        assert!(
            cidr.starts_with("10.42.") && cidr.ends_with(".0/24"),
            "{cidrs:?}"
        );
    }

    kubectl.ok(&[
        "create",
        "deployment",
        "web",
        "--image=nginx:1.27",
        "--replicas=4",
    ]);
    let pods = wait_for(
        "web reaches 4 available replicas on both nodes",
        Duration::from_secs(30),
        &server,
        &mut [&mut n1, &mut n2],
        || {
            // Availability first: a pod listed before it is counted may
            // still be waiting for its sandbox (no IP yet).
            if available_replicas(&kubectl) != "4" {
                return None;
            }
            let pods = web_pods(&kubectl);
            let nodes: BTreeSet<&str> = pods.iter().map(|p| p.1.as_str()).collect();
            let all_have_ips = pods.iter().all(|p| !p.2.is_empty());
            (nodes.len() == 2 && pods.len() == 4 && all_have_ips).then_some(pods)
        },
    );
    for (name, node, ip, _) in &pods {
        assert!(
            in_slash_24(ip, &cidrs[node]),
            "pod {name} on {node} has IP {ip}, outside {}",
            cidrs[node]
        );
    }
    let tolerations = kubectl.jsonpath(
        &["get", "pod", &pods[0].0],
        r#"{range .spec.tolerations[*]}{.key}:{.effect}:{.tolerationSeconds}{"\n"}{end}"#,
    );
    assert!(
        tolerations.contains("node.kubernetes.io/unreachable:NoExecute:2")
            && tolerations.contains("node.kubernetes.io/not-ready:NoExecute:2"),
        "default tolerations missing: {tolerations}"
    );

    let lost_at = Instant::now();
    n1.kill9();
    wait_for(
        "n1 becomes Unknown and tainted unreachable",
        Duration::from_secs(20),
        &server,
        &mut [&mut n2],
        || {
            let (taints, ready) = node_state(&kubectl, "n1");
            (ready == "Unknown"
                && taints.contains("node.kubernetes.io/unreachable:NoExecute")
                && taints.contains("node.kubernetes.io/unreachable:NoSchedule"))
            .then_some(())
        },
    );
    wait_for(
        "n1's pods are replaced on n2 and web is back to 4 available",
        Duration::from_secs(40),
        &server,
        &mut [&mut n2],
        || {
            let pods = web_pods(&kubectl);
            (pods.len() == 4
                && pods.iter().all(|p| p.1 == "n2" && !p.3)
                && available_replicas(&kubectl) == "4")
                .then_some(())
        },
    );
    let recovered_in = lost_at.elapsed();
    assert!(
        recovered_in < Duration::from_secs(40),
        "recovery took {recovered_in:?}"
    );
    let reasons = kubectl.jsonpath(&["get", "events", "-A"], "{.items[*].reason}");
    assert!(reasons.contains("NodeNotReady"), "events: {reasons}");
    assert!(
        reasons.contains("TaintManagerEviction"),
        "events: {reasons}"
    );

    let mut n1 = server.start_agent("n1", &heartbeat);
    wait_for(
        "n1 is Ready again without the unreachable taints",
        Duration::from_secs(20),
        &server,
        &mut [&mut n1, &mut n2],
        || {
            let (taints, ready) = node_state(&kubectl, "n1");
            (ready == "True" && !taints.iter().any(|t| t.starts_with("node.kubernetes.io/")))
                .then_some(())
        },
    );
}
