//! The agent's Prometheus metrics on its kubelet port, read through the API
//! server's node proxy as upstream's `kubectl get --raw
//! /api/v1/nodes/NODE/proxy/metrics[/cadvisor]`: on a real containerd node a
//! pod burning CPU shows in cAdvisor's `container_cpu_usage_seconds_total`,
//! growing between scrapes, and kubelet's `kubelet_running_pods` counts it;
//! a simulated node answers `/metrics` too. Debian's `promtool check
//! metrics` accepts every answer.

mod cri_node;
mod support;

use std::process::Command;
use std::time::Duration;

use cri_node::{CriNode, Registry};
use support::{
    free_port, spawn_with_stdin, wait_for, wait_pod_ready, Kubectl, Server, KUBECTL_1_33,
};

const NODE: &str = "metag-1";
const SIM_NODE: &str = "metag-sim";

const BUSY_POD: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: burn}
spec:
  containers:
  - name: spin
    image: REGISTRY/web:1
    command: ["sh", "-c", "while :; do :; done"]
"#;

const SIM_POD: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: sim-web}
spec:
  nodeName: metag-sim
  containers:
  - name: app
    image: registry.test/app:1
"#;

/// `kubectl get --raw` of the node's kubelet `path` through the node proxy.
fn node_get(kubectl: &Kubectl, node: &str, path: &str) -> String {
    kubectl.ok(&["get", "--raw", &format!("/api/v1/nodes/{node}/proxy{path}")])
}

/// The value of the first sample of `name` whose labels contain every one
/// of `labels` (`key="value"`).
fn sample(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(name)?;
        let (labels_part, value) = match rest.strip_prefix('{') {
            Some(rest) => rest.split_once("} ")?,
            None => ("", rest.strip_prefix(' ')?),
        };
        labels
            .iter()
            .all(|l| labels_part.split(',').any(|have| have == *l))
            .then(|| value.split(' ').next()?.parse().ok())?
    })
}

/// Runs `promtool check metrics` on `text` and fails with its verdict
/// unless it finds nothing wrong.
fn promtool_accepts(what: &str, text: &str) {
    let child = spawn_with_stdin(Command::new("promtool").args(["check", "metrics"]), text);
    let output = child.wait_with_output().unwrap();
    let verdict = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success() && verdict.trim().is_empty(),
        "promtool check metrics on {what}: {verdict}\n{text}"
    );
}

#[test]
fn a_real_nodes_kubelet_and_cadvisor_metrics_show_a_busy_pod() {
    let registry = Registry::start();
    // A cluster range of its own, so this node's bridge never overlaps another test's.
    let cidr = format!("10.{}.0.0/16", 200 + registry.port % 50);
    let server = Server::start_with(&["--cluster-cidr", &cidr]);
    let kubectl = server.kubectl(KUBECTL_1_33);
    let mut node = CriNode::start(&server, &registry, NODE);
    node.wait_ready(&server, &kubectl, Duration::from_secs(60));
    kubectl.ok_stdin(
        &["apply", "-f", "-"],
        &BUSY_POD.replace("REGISTRY", &registry.host()),
    );
    wait_pod_ready(
        &kubectl,
        &server,
        &mut [&mut node.agent],
        "burn",
        Duration::from_secs(150),
    );

    let spin = [
        "container=\"spin\"",
        "pod=\"burn\"",
        "namespace=\"default\"",
    ];
    let cpu = |text: &str| sample(text, "container_cpu_usage_seconds_total", &spin);
    let first = wait_for(
        "cAdvisor's metrics list the busy container",
        Duration::from_secs(30),
        &server,
        &mut [&mut node.agent],
        || {
            let text = node_get(&kubectl, NODE, "/metrics/cadvisor");
            cpu(&text).map(|value| (value, text))
        },
    );
    let (first_cpu, cadvisor) = first;
    for line_start in [
        "container_memory_working_set_bytes{container=\"spin\"",
        "container_memory_rss{container=\"spin\"",
        "container_memory_usage_bytes{container=\"spin\"",
        "container_start_time_seconds{container=\"spin\"",
        // The pod's own cgroup row.
        "container_cpu_usage_seconds_total{container=\"\",pod=\"burn\"",
    ] {
        assert!(
            cadvisor.lines().any(|l| l.starts_with(line_start)),
            "{line_start:?} missing in\n{cadvisor}"
        );
    }
    let spin_row = cadvisor
        .lines()
        .find(|l| l.starts_with("container_cpu_usage_seconds_total{container=\"spin\""))
        .unwrap();
    assert!(
        spin_row.contains("image=\"") && !spin_row.contains("image=\"\""),
        "no image in {spin_row}"
    );
    eprintln!("cAdvisor row of the busy container: {spin_row}");
    promtool_accepts("/metrics/cadvisor", &cadvisor);
    wait_for(
        "the busy container's CPU time grows",
        Duration::from_secs(30),
        &server,
        &mut [&mut node.agent],
        || {
            let text = node_get(&kubectl, NODE, "/metrics/cadvisor");
            cpu(&text).filter(|now| *now > first_cpu)
        },
    );

    let kubelet = node_get(&kubectl, NODE, "/metrics");
    let running = sample(&kubelet, "kubelet_running_pods", &[]).unwrap_or(0.0);
    assert!(
        running >= 1.0,
        "kubelet_running_pods {running} in\n{kubelet}"
    );
    let node_label = format!("node=\"{NODE}\"");
    assert_eq!(
        sample(&kubelet, "kubelet_node_name", &[&node_label]),
        Some(1.0)
    );
    assert!(
        sample(
            &kubelet,
            "kubelet_running_containers",
            &["container_state=\"running\""]
        )
        .unwrap_or(0.0)
            >= 1.0,
        "{kubelet}"
    );
    assert!(
        sample(&kubelet, "kubelet_pod_start_duration_seconds_count", &[]).unwrap_or(0.0) >= 1.0,
        "{kubelet}"
    );
    assert!(
        sample(
            &kubelet,
            "kubelet_runtime_operations_total",
            &["operation_type=\"sync_pod\""]
        )
        .unwrap_or(0.0)
            >= 1.0,
        "{kubelet}"
    );
    for name in [
        "kubelet_pod_worker_duration_seconds_bucket{",
        "kubelet_runtime_operations_duration_seconds_bucket{",
        "process_cpu_seconds_total ",
    ] {
        assert!(kubelet.contains(name), "{name:?} missing in\n{kubelet}");
    }
    promtool_accepts("/metrics", &kubelet);

    kubectl.ok(&["delete", "pod", "burn", "--wait=false"]);
}

#[test]
fn a_simulated_node_answers_metrics_with_its_pods() {
    let server = Server::start();
    let kubectl = server.kubectl(KUBECTL_1_33);
    let port = free_port().to_string();
    let mut agent = server.start_agent(
        SIM_NODE,
        &["--heartbeat-interval", "1s", "--kubelet-port", &port],
    );
    let node_label = format!("node=\"{SIM_NODE}\"");
    let text = wait_for(
        "the simulated node's /metrics answers",
        Duration::from_secs(60),
        &server,
        &mut [&mut agent],
        || {
            let out = kubectl.run(&[
                "get",
                "--raw",
                &format!("/api/v1/nodes/{SIM_NODE}/proxy/metrics"),
            ]);
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            (out.status.success() && text.contains(&node_label)).then_some(text)
        },
    );
    assert!(
        sample(&text, "kubelet_running_pods", &[]).is_some(),
        "no kubelet_running_pods in\n{text}"
    );
    kubectl.ok_stdin(&["apply", "-f", "-"], SIM_POD);
    let text = wait_for(
        "the simulated node counts its pod",
        Duration::from_secs(60),
        &server,
        &mut [&mut agent],
        || {
            let text = node_get(&kubectl, SIM_NODE, "/metrics");
            (sample(&text, "kubelet_running_pods", &[]) == Some(1.0)).then_some(text)
        },
    );
    assert_eq!(
        sample(
            &text,
            "kubelet_running_containers",
            &["container_state=\"running\""]
        ),
        Some(1.0),
        "{text}"
    );
    promtool_accepts("a simulated node's /metrics", &text);
    let cadvisor = node_get(&kubectl, SIM_NODE, "/metrics/cadvisor");
    promtool_accepts("a simulated node's /metrics/cadvisor", &cadvisor);
}
