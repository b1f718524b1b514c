//! Resource metrics on a real node: `berth agent --runtime cri` reads its
//! containers' CPU and memory from their cgroups and serves kubelet's
//! `/stats/summary` and `/metrics/resource`; the API server scrapes them into
//! `metrics.k8s.io/v1beta1`, so `kubectl top` (1.33) shows a busy container's
//! CPU, an idle one near zero, and the node's usage. Read-only: writes to the
//! metrics API are refused.

mod cri_node;
mod support;

use std::time::Duration;

use cri_node::{CriNode, Registry};
use serde_json::Value;
use support::{wait_for, Server, KUBECTL_1_33};

const NODE: &str = "met-1";
const NAMESPACE: &str = "met-e2e";

const PODS: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: busy, namespace: met-e2e, labels: {load: busy}}
spec:
  containers:
  - name: spin
    image: REGISTRY/web:1
    command: ["sh", "-c", "while :; do :; done"]
---
apiVersion: v1
kind: Pod
metadata: {name: idle, namespace: met-e2e, labels: {load: idle}}
spec:
  containers:
  - name: rest
    image: REGISTRY/web:1
    command: ["sleep", "100000"]
"#;

/// Millicores from `kubectl top`'s CPU column (`123m`, or whole cores).
fn millicores(cell: &str) -> u64 {
    match cell.strip_suffix('m') {
        Some(milli) => milli.parse().unwrap(),
        None => cell.parse::<u64>().unwrap() * 1000,
    }
}

/// The rows of `kubectl top … --no-headers`, split into cells.
fn rows(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .map(|l| l.split_whitespace().map(str::to_owned).collect())
        .filter(|r: &Vec<String>| !r.is_empty())
        .collect()
}

#[test]
fn kubectl_top_shows_container_and_node_usage_from_the_cgroups() {
    let registry = Registry::start();
    // A cluster range of its own, so this node's bridge never overlaps another test's.
    let cidr = format!("10.{}.0.0/16", 150 + registry.port % 50);
    let server = Server::start_with(&["--cluster-cidr", &cidr]);
    let kubectl = server.kubectl(KUBECTL_1_33);
    let mut node = CriNode::start(&server, &registry, NODE);
    node.wait_ready(&server, &kubectl, Duration::from_secs(60));
    kubectl.ok(&["create", "namespace", NAMESPACE]);
    kubectl.ok_stdin(
        &["apply", "-f", "-"],
        &PODS.replace("REGISTRY", &registry.host()),
    );
    kubectl.ok(&[
        "wait",
        "-n",
        NAMESPACE,
        "--for=condition=Ready",
        "pod/busy",
        "pod/idle",
        "--timeout=60s",
    ]);

    // The kubelet API's summary, through the API server's node proxy.
    let summary_path = format!("/api/v1/nodes/{NODE}/proxy/stats/summary");
    let summary: Value = wait_for(
        "the summary reports the busy container's CPU rate",
        Duration::from_secs(30),
        &server,
        &mut [&mut node.agent],
        || {
            let summary: Value =
                serde_json::from_str(&kubectl.ok(&["get", "--raw", &summary_path])).unwrap();
            let busy = summary["pods"]
                .as_array()?
                .iter()
                .find(|p| p["podRef"]["name"] == "busy")?
                .clone();
            busy["containers"][0]["cpu"]["usageNanoCores"]
                .as_u64()
                .map(|_| summary)
        },
    );
    assert_eq!(summary["node"]["nodeName"], NODE);
    assert!(
        summary["node"]["memory"]["workingSetBytes"]
            .as_u64()
            .unwrap()
            > 0
    );
    assert!(
        summary["node"]["cpu"]["usageCoreNanoSeconds"]
            .as_u64()
            .unwrap()
            > 0
    );
    let busy = summary["pods"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["podRef"]["name"] == "busy")
        .unwrap();
    assert_eq!(busy["podRef"]["namespace"], NAMESPACE);
    let spin = &busy["containers"][0];
    assert_eq!(spin["name"], "spin");
    assert!(spin["cpu"]["usageCoreNanoSeconds"].as_u64().unwrap() > 0);
    assert!(spin["memory"]["workingSetBytes"].as_u64().unwrap() > 0);

    let metrics = kubectl.ok(&[
        "get",
        "--raw",
        &format!("/api/v1/nodes/{NODE}/proxy/metrics/resource"),
    ]);
    for wanted in [
        "container_cpu_usage_seconds_total{container=\"spin\",namespace=\"met-e2e\",pod=\"busy\"}",
        "container_memory_working_set_bytes{container=\"rest\",namespace=\"met-e2e\",pod=\"idle\"}",
        "node_cpu_usage_seconds_total ",
        "node_memory_working_set_bytes ",
        "pod_cpu_usage_seconds_total{namespace=\"met-e2e\",pod=\"busy\"}",
        "resource_scrape_error 0",
    ] {
        assert!(metrics.contains(wanted), "{wanted:?} missing in\n{metrics}");
    }

    // kubectl top, once the API server has scraped the node twice.
    let pods = wait_for(
        "kubectl top pods lists both pods",
        Duration::from_secs(90),
        &server,
        &mut [&mut node.agent],
        || {
            let out = kubectl.run(&["top", "pods", "-n", NAMESPACE, "--no-headers"]);
            let rows = rows(&String::from_utf8_lossy(&out.stdout));
            (out.status.success() && rows.len() == 2).then_some(rows)
        },
    );
    eprintln!("kubectl top pods: {pods:?}");
    let cpu_of = |name: &str| {
        let row = pods.iter().find(|r| r[0] == name).unwrap();
        millicores(&row[1])
    };
    assert!(cpu_of("busy") >= 100, "busy pod: {pods:?}");
    assert!(cpu_of("idle") <= 20, "idle pod: {pods:?}");
    let containers = kubectl.ok(&[
        "top",
        "pods",
        "-n",
        NAMESPACE,
        "-l",
        "load=busy",
        "--containers",
        "--no-headers",
    ]);
    let containers = rows(&containers);
    assert_eq!(containers.len(), 1, "{containers:?}");
    assert_eq!(containers[0][..2], ["busy", "spin"]);

    let nodes = rows(&kubectl.ok(&["top", "nodes", "--no-headers"]));
    eprintln!("kubectl top nodes: {nodes:?}");
    let row = nodes
        .iter()
        .find(|r| r[0] == NODE)
        .expect("the node is listed");
    // NAME CPU(cores) CPU% MEMORY(bytes) MEMORY%
    assert!(millicores(&row[1]) > 0, "{row:?}");
    assert!(row[2].ends_with('%') && row[4].ends_with('%'), "{row:?}");
    assert!(row[3].ends_with("Mi") || row[3].ends_with("Gi"), "{row:?}");

    // The API itself: discovery, a list that decodes, a table, and no writes.
    let discovery: Value =
        serde_json::from_str(&kubectl.ok(&["get", "--raw", "/apis/metrics.k8s.io/v1beta1"]))
            .unwrap();
    let names: Vec<&str> = discovery["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert_eq!(names, ["nodes", "pods"]);
    let list: Value =
        serde_json::from_str(&kubectl.ok(&["get", "--raw", "/apis/metrics.k8s.io/v1beta1/nodes"]))
            .unwrap();
    assert_eq!(list["kind"], "NodeMetricsList");
    let item = &list["items"][0];
    assert_eq!(item["metadata"]["name"], NODE);
    assert!(item["usage"]["cpu"].is_string() && item["usage"]["memory"].is_string());
    assert!(item["window"].as_str().unwrap().ends_with('s'));
    let table = kubectl.ok(&["get", "podmetrics.metrics.k8s.io", "-n", NAMESPACE]);
    assert!(
        table.starts_with("NAME") && table.contains("busy"),
        "{table}"
    );
    let refused = kubectl.fails(&[
        "delete",
        "--raw",
        &format!("/apis/metrics.k8s.io/v1beta1/namespaces/{NAMESPACE}/pods/busy"),
    ]);
    assert!(
        refused.contains("MethodNotAllowed") || refused.contains("not allow"),
        "{refused}"
    );
}
