//! `/metrics/kube-state`: the API server serves kube-state-metrics' object
//! metrics itself. A Deployment applied with kubectl shows its available
//! replicas and its pods' phase there, a simulated GPU node its
//! `nvidia.com/gpu` capacity, promtool accepts the output, and reading it
//! takes the same non-resource RBAC right as `/metrics`. Debian's
//! Prometheus scrapes it with the README's `kube-state-metrics` job.

mod support;

use std::time::Duration;

use support::prometheus::{scrape_config, Prometheus};
use support::{wait_for, Server, KUBECTL_1_33};

const TIMEOUT: Duration = Duration::from_secs(120);

const WEB: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: ksm-e2e}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: ksm-web, namespace: ksm-e2e}
spec:
  replicas: 2
  selector: {matchLabels: {app: ksm-web}}
  template:
    metadata: {labels: {app: ksm-web}}
    spec:
      containers:
        - name: web
          image: "127.0.0.1:5000/web:v1"
          resources: {requests: {cpu: 250m}}
"#;

#[test]
fn a_deployments_replicas_and_pods_show_in_kube_state_metrics() {
    let server = Server::start();
    let mut nodes = server.start_sim(
        1,
        "ksm-gpu-",
        &["--capacity", "cpu=8,memory=32Gi,pods=110,nvidia.com/gpu=2"],
    );
    let k = server.kubectl(KUBECTL_1_33);
    k.ok_stdin(&["apply", "-f", "-"], WEB);

    let text = wait_for(
        "ksm-web's two available replicas in /metrics/kube-state",
        TIMEOUT,
        &server,
        &mut [&mut nodes],
        || {
            let text = k.ok(&["get", "--raw", "/metrics/kube-state"]);
            let available = text.lines().any(|l| {
                l == "kube_deployment_status_replicas_available{namespace=\"ksm-e2e\",deployment=\"ksm-web\"} 2"
            });
            let running = text
                .lines()
                .filter(|l| {
                    l.starts_with("kube_pod_status_phase{namespace=\"ksm-e2e\",pod=\"ksm-web-")
                        && l.ends_with(",phase=\"Running\"} 1")
                })
                .count();
            (available && running == 2).then_some(text)
        },
    );
    for wanted in [
        "kube_deployment_spec_replicas{namespace=\"ksm-e2e\",deployment=\"ksm-web\"} 2",
        "kube_namespace_status_phase{namespace=\"ksm-e2e\",phase=\"Active\"} 1",
        "resource=\"nvidia_com_gpu\",unit=\"integer\"} 2",
        "condition=\"Ready\",status=\"true\"} 1",
        "container=\"web\",node=\"ksm-gpu-",
        "# TYPE kube_pod_container_status_restarts_total counter",
    ] {
        assert!(text.contains(wanted), "no {wanted} in:\n{text}");
    }
    assert!(
        text.lines()
            .any(|l| l.starts_with("kube_pod_info{namespace=\"ksm-e2e\"")
                && l.contains("created_by_kind=\"ReplicaSet\"")),
        "no kube_pod_info for ksm-web's pods in:\n{text}"
    );

    support::assert_promtool_accepts(&text);
}

#[test]
fn kube_state_metrics_need_the_non_resource_rbac_right() {
    let server = Server::start();
    let k = server.kubectl(KUBECTL_1_33);
    let refused = k.fails(&["get", "--raw", "/metrics/kube-state", "--as=ksm-e2e-nobody"]);
    assert!(refused.contains("Forbidden"), "{refused}");

    k.ok(&[
        "create",
        "clusterrole",
        "ksm-e2e-reader",
        "--verb=get",
        "--non-resource-url=/metrics/kube-state",
    ]);
    k.ok(&[
        "create",
        "clusterrolebinding",
        "ksm-e2e-reader",
        "--clusterrole=ksm-e2e-reader",
        "--user=ksm-e2e-reader",
    ]);
    // The right to /metrics/kube-state is not the right to /metrics.
    let other = k.fails(&["get", "--raw", "/metrics", "--as=ksm-e2e-reader"]);
    assert!(other.contains("Forbidden"), "{other}");
    let text = wait_for(
        "the namespaces in /metrics/kube-state",
        TIMEOUT,
        &server,
        &mut [],
        || {
            let text = k.ok(&["get", "--raw", "/metrics/kube-state", "--as=ksm-e2e-reader"]);
            text.contains("kube_namespace_status_phase{namespace=\"default\",phase=\"Active\"} 1")
                .then_some(text)
        },
    );
    assert!(text.contains("# TYPE kube_node_info gauge"), "{text}");
}

#[test]
fn debians_prometheus_scrapes_kube_state_metrics_with_the_objects_labels() {
    let server = Server::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let prometheus = Prometheus::start(
        dir.path(),
        &scrape_config(
            &server,
            "kube-state-metrics",
            "    honor_labels: true\n    metrics_path: /metrics/kube-state\n",
        ),
    );
    let query = "/api/v1/query?query=kube_namespace_status_phase{namespace=\"kube-system\",phase=\"Active\"}";
    let series = wait_for(
        "kube_namespace_status_phase in Prometheus",
        TIMEOUT,
        &server,
        &mut [],
        || {
            let answer = prometheus.api(query)?;
            let first = answer.pointer("/data/result/0")?.clone();
            (first.pointer("/value/1")?.as_str()? == "1").then_some(first)
        },
    );
    // honor_labels: the object's namespace, not the target's, and the job's name.
    assert_eq!(series["metric"]["job"], "kube-state-metrics", "{series}");
    assert_eq!(series["metric"]["namespace"], "kube-system", "{series}");
    let targets = prometheus.api("/api/v1/targets").expect("targets");
    let target = &targets["data"]["activeTargets"][0];
    assert_eq!(target["health"], "up", "{target}\n{}", prometheus.log());
    assert_eq!(
        target["scrapeUrl"],
        format!("{}/metrics/kube-state", server.url())
    );
}
