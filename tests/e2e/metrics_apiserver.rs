//! The API server's `/metrics`: kubectl reads kube-apiserver's metric names
//! behind authentication and RBAC, promtool accepts the output, and
//! Debian's Prometheus scrapes it with the admin credentials and answers
//! queries on `apiserver_request_total`.

mod support;

use std::process::Command;
use std::time::Duration;

use support::prometheus::{scrape_config, Prometheus};
use support::{eventually, Server, KUBECTL_1_33};

#[test]
fn kubectl_reads_the_api_servers_metrics_with_upstream_names() {
    let server = Server::start();
    let k = server.kubectl(KUBECTL_1_33);
    k.ok(&["create", "configmap", "metrics-e2e", "--from-literal=a=b"]);
    k.ok(&["get", "configmap", "metrics-e2e"]);
    k.ok(&["get", "configmaps", "-n", "kube-system"]);
    let mut watch = k.spawn(&["get", "pods", "-A", "--watch"]);

    let text = eventually(Duration::from_secs(30), || {
        let text = k.ok(&["get", "--raw", "/metrics"]);
        let watching = text.lines().any(|l| {
            l.starts_with("apiserver_longrunning_requests{verb=\"WATCH\"")
                && l.contains("resource=\"pods\"")
                && !l.ends_with(" 0")
        });
        watching.then_some(text)
    });
    let _ = watch.kill();
    let _ = watch.wait();
    for wanted in [
        "apiserver_request_total{verb=\"POST\",dry_run=\"\",group=\"\",version=\"v1\",resource=\"configmaps\",subresource=\"\",scope=\"resource\",component=\"apiserver\",code=\"201\"} 1",
        "apiserver_request_total{verb=\"GET\",dry_run=\"\",group=\"\",version=\"v1\",resource=\"configmaps\",subresource=\"\",scope=\"resource\",component=\"apiserver\",code=\"200\"}",
        "apiserver_request_total{verb=\"LIST\",dry_run=\"\",group=\"\",version=\"v1\",resource=\"configmaps\",subresource=\"\",scope=\"namespace\",component=\"apiserver\",code=\"200\"}",
        "apiserver_request_duration_seconds_count{verb=\"POST\",dry_run=\"\",group=\"\",version=\"v1\",resource=\"configmaps\",subresource=\"\",scope=\"resource\",component=\"apiserver\"} 1",
        "apiserver_registered_watchers{group=\"\",version=\"v1\",kind=\"Pod\"}",
        "apiserver_current_inflight_requests{request_kind=\"readOnly\"}",
        "apiserver_current_inflight_requests{request_kind=\"mutating\"}",
        "apiserver_storage_objects{resource=\"namespaces\"}",
        "etcd_request_duration_seconds_count{operation=\"create\",type=\"configmaps\"}",
        "process_start_time_seconds",
    ] {
        assert!(text.contains(wanted), "no {wanted} in:\n{text}");
    }
    assert!(
        !text.contains("apiserver_request_duration_seconds_count{verb=\"WATCH\""),
        "watches are not timed:\n{text}"
    );
}

#[test]
fn the_in_process_scheduler_reports_its_attempts_and_queue() {
    // No node: the pod is tried, found unschedulable and parked.
    let server = Server::start();
    let k = server.kubectl(KUBECTL_1_33);
    k.ok(&[
        "run",
        "metrics-e2e-pending",
        "--image=registry.invalid/none",
        "--restart=Never",
    ]);
    let text = eventually(Duration::from_secs(30), || {
        let text = k.ok(&["get", "--raw", "/metrics"]);
        text.contains(
            "scheduler_schedule_attempts_total{result=\"unschedulable\",profile=\"default-scheduler\"}",
        )
        .then_some(text)
    });
    for wanted in [
        "scheduler_scheduling_attempt_duration_seconds_count{result=\"unschedulable\",profile=\"default-scheduler\"}",
        "scheduler_pending_pods{queue=\"active\"}",
        "scheduler_pending_pods{queue=\"backoff\"}",
        "scheduler_pending_pods{queue=\"unschedulable\"}",
        "scheduler_preemption_attempts_total",
    ] {
        assert!(text.contains(wanted), "no {wanted} in:\n{text}");
    }
    // The gauges follow the queue within its 250 ms flush tick.
    eventually(Duration::from_secs(10), || {
        let text = k.ok(&["get", "--raw", "/metrics"]);
        let parked: u64 = ["backoff", "unschedulable"]
            .iter()
            .filter_map(|queue| {
                let prefix = format!("scheduler_pending_pods{{queue=\"{queue}\"}} ");
                text.lines()
                    .find_map(|l| l.strip_prefix(&prefix)?.trim().parse::<u64>().ok())
            })
            .sum();
        (parked == 1).then_some(())
    });
}

#[test]
fn the_in_process_controllers_report_their_workqueues() {
    let server = Server::start();
    let k = server.kubectl(KUBECTL_1_33);
    k.ok(&[
        "create",
        "deployment",
        "metrics-e2e-workqueue",
        "--image=registry.invalid/none",
    ]);
    let adds = |text: &str, queue: &str| -> u64 {
        let prefix = format!("workqueue_adds_total{{name=\"{queue}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix)?.trim().parse().ok())
            .unwrap_or(0)
    };
    // The Deployment's ReplicaSet is the deployment controller's work; its
    // duration is observed once that reconcile has returned.
    let text = eventually(Duration::from_secs(30), || {
        let text = k.ok(&["get", "--raw", "/metrics"]);
        (adds(&text, "deployment") > 0
            && adds(&text, "replicaset") > 0
            && text.contains("workqueue_work_duration_seconds_count{name=\"deployment\"}"))
        .then_some(text)
    });
    for wanted in [
        "workqueue_depth{name=\"deployment\"}",
        "workqueue_queue_duration_seconds_count{name=\"deployment\"}",
        "workqueue_retries_total{name=\"deployment\"}",
        "workqueue_unfinished_work_seconds{name=\"deployment\"}",
        "workqueue_longest_running_processor_seconds{name=\"deployment\"}",
        "workqueue_adds_total{name=\"job\"}",
        "workqueue_adds_total{name=\"endpoint_slice\"}",
    ] {
        assert!(text.contains(wanted), "no {wanted} in:\n{text}");
    }
}

#[test]
fn metrics_need_credentials_and_rbac_rights() {
    let server = Server::start();
    let k = server.kubectl(KUBECTL_1_33);
    let anonymous = Command::new("curl")
        .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}", "--cacert"])
        .arg(server.data_dir().join("tls/ca.crt"))
        .arg(format!("{}/metrics", server.url()))
        .output()
        .expect("curl");
    let code = String::from_utf8_lossy(&anonymous.stdout).into_owned();
    assert!(
        matches!(code.as_str(), "401" | "403"),
        "anonymous got {code}"
    );

    let refused = k.fails(&["get", "--raw", "/metrics", "--as=metrics-e2e-nobody"]);
    assert!(refused.contains("Forbidden"), "{refused}");

    k.ok(&[
        "create",
        "clusterrole",
        "metrics-e2e-reader",
        "--verb=get",
        "--non-resource-url=/metrics",
    ]);
    k.ok(&[
        "create",
        "clusterrolebinding",
        "metrics-e2e-reader",
        "--clusterrole=metrics-e2e-reader",
        "--user=metrics-e2e-reader",
    ]);
    let text = k.ok(&["get", "--raw", "/metrics", "--as=metrics-e2e-reader"]);
    assert!(text.contains("apiserver_request_total"), "{text}");
}

#[test]
fn promtool_accepts_the_metrics() {
    let server = Server::start();
    let k = server.kubectl(KUBECTL_1_33);
    k.ok(&["get", "namespaces"]);
    let text = k.ok(&["get", "--raw", "/metrics"]);
    support::assert_promtool_accepts(&text);
}

#[test]
fn debians_prometheus_scrapes_the_api_server() {
    let server = Server::start();
    let k = server.kubectl(KUBECTL_1_33);
    k.ok(&["get", "namespaces"]);
    let dir = tempfile::tempdir().expect("temp dir");
    let prometheus = Prometheus::start(
        dir.path(),
        &scrape_config(&server, "kubernetes-apiservers", ""),
    );

    let health = eventually(Duration::from_secs(60), || {
        let targets = prometheus.api("/api/v1/targets")?;
        let target = targets
            .pointer("/data/activeTargets")?
            .as_array()?
            .iter()
            .find(|t| t["labels"]["job"] == "kubernetes-apiservers")?
            .clone();
        (target["health"] == "up").then_some(target)
    });
    assert_eq!(health["scrapeUrl"], format!("{}/metrics", server.url()));

    let up = eventually(Duration::from_secs(60), || {
        let answer = prometheus.api("/api/v1/query?query=up{job=\"kubernetes-apiservers\"}")?;
        let value = answer
            .pointer("/data/result/0/value/1")?
            .as_str()?
            .to_owned();
        (value == "1").then_some(value)
    });
    assert_eq!(up, "1", "{}", prometheus.log());

    let series = eventually(Duration::from_secs(60), || {
        let answer = prometheus.api(
            "/api/v1/query?query=apiserver_request_total{resource=\"namespaces\",verb=\"LIST\"}",
        )?;
        let result = answer.pointer("/data/result")?.as_array()?.clone();
        (!result.is_empty()).then_some(result)
    });
    assert_eq!(series[0]["metric"]["component"], "apiserver", "{series:?}");
    assert_eq!(series[0]["metric"]["scope"], "cluster", "{series:?}");
}
