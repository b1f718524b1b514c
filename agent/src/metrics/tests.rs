use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;

use super::cadvisor::{self, Labels};
use super::instrumented::InstrumentedRuntime;
use super::*;
use crate::runtime::simulated::{SimulatedConfig, SimulatedRuntime};
use crate::runtime::{ContainerConfig, PodSandboxConfig, Runtime, Termination};
use crate::stats::node::NodeUsage;
use crate::stats::{ContainerUsage, PodUsage, Usage};

fn at(seconds: i64) -> Timestamp {
    Timestamp::from_second(1_700_000_000 + seconds).unwrap()
}

fn container(name: &str, status: ContainerStatus, id: &str) -> crate::runtime::ContainerState {
    crate::runtime::ContainerState {
        name: name.into(),
        image: format!("registry.test/{name}:1"),
        image_id: String::new(),
        container_id: id.into(),
        status,
        restart_count: 0,
        last_termination: None,
    }
}

fn pod(
    uid: &str,
    phase: SandboxPhase,
    containers: Vec<crate::runtime::ContainerState>,
) -> PodState {
    PodState {
        uid: uid.into(),
        namespace: "ns".into(),
        name: format!("pod-{uid}"),
        phase,
        ip: None,
        started_at: at(0),
        init_containers: Vec::new(),
        containers,
    }
}

/// The value of the sample `series` (name and labels as served) in `text`.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map(|value| value.split(' ').next().unwrap().parse().unwrap())
}

#[test]
fn running_pods_and_containers_are_counted_by_state() {
    let metrics = KubeletMetrics::new("met-unit");
    let exited = Termination {
        container_id: "containerd://old".into(),
        started_at: at(0),
        finished_at: at(1),
        exit_code: 1,
        reason: "Error".into(),
        message: String::new(),
    };
    let mut crashing = container(
        "crash",
        ContainerStatus::Waiting {
            reason: "CrashLoopBackOff".into(),
            message: String::new(),
        },
        "containerd://c2",
    );
    crashing.last_termination = Some(exited.clone());
    metrics.observe_pods(&[
        pod(
            "a",
            SandboxPhase::Running,
            vec![
                container(
                    "web",
                    ContainerStatus::Running { started_at: at(1) },
                    "containerd://c1",
                ),
                crashing,
                container(
                    "pulling",
                    ContainerStatus::Waiting {
                        reason: "ContainerCreating".into(),
                        message: String::new(),
                    },
                    "",
                ),
            ],
        ),
        pod(
            "b",
            SandboxPhase::Stopped,
            vec![container(
                "done",
                ContainerStatus::Exited(exited),
                "containerd://c3",
            )],
        ),
    ]);
    let text = metrics.registry().encode();
    assert_eq!(sample(&text, "kubelet_running_pods"), Some(1.0), "{text}");
    for (state, want) in [
        ("running", 1.0),
        ("exited", 2.0),
        ("created", 0.0),
        ("unknown", 0.0),
    ] {
        let series = format!("kubelet_running_containers{{container_state=\"{state}\"}}");
        assert_eq!(sample(&text, &series), Some(want), "{series} in {text}");
    }
    assert_eq!(
        sample(&text, "kubelet_node_name{node=\"met-unit\"}"),
        Some(1.0),
        "{text}"
    );
    assert!(text.contains("process_cpu_seconds_total"), "{text}");
}

#[test]
fn pod_start_and_worker_durations_use_kubelets_buckets() {
    let metrics = KubeletMetrics::new("met-unit");
    metrics.observe_pod_start(Duration::from_millis(2500));
    metrics.observe_pod_worker("create", Duration::from_millis(30));
    let text = metrics.registry().encode();
    assert_eq!(
        sample(
            &text,
            "kubelet_pod_start_duration_seconds_bucket{le=\"2.0\"}"
        ),
        Some(0.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "kubelet_pod_start_duration_seconds_bucket{le=\"3.0\"}"
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "kubelet_pod_start_duration_seconds_bucket{le=\"3600.0\"}"
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "kubelet_pod_worker_duration_seconds_bucket{le=\"0.05\",operation=\"create\"}"
        ),
        Some(1.0),
        "{text}"
    );
}

#[tokio::test]
async fn every_runtime_call_through_the_wrapper_is_counted_and_failures_too() {
    let metrics = KubeletMetrics::new("met-unit");
    let inner = Arc::new(SimulatedRuntime::new(SimulatedConfig::default()).unwrap());
    let runtime = InstrumentedRuntime::new(inner, metrics.clone());
    let config = PodSandboxConfig {
        uid: "u1".into(),
        namespace: "ns".into(),
        name: "web".into(),
        containers: vec![ContainerConfig {
            name: "app".into(),
            image: "registry.test/app:1".into(),
            ..ContainerConfig::default()
        }],
        ..PodSandboxConfig::default()
    };
    runtime.sync_pod(&config).await.unwrap();
    runtime.list_pods().await.unwrap();
    runtime.list_pods().await.unwrap();
    // The simulated runtime runs no processes to exec into.
    assert!(runtime
        .exec_sync("u1", "app", &["true".into()], Duration::from_secs(1))
        .await
        .is_err());
    let text = metrics.registry().encode();
    let ops = |name: &str, op: &str| sample(&text, &format!("{name}{{operation_type=\"{op}\"}}"));
    assert_eq!(
        ops("kubelet_runtime_operations_total", "sync_pod"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        ops("kubelet_runtime_operations_total", "list_podsandbox"),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        ops("kubelet_runtime_operations_total", "exec_sync"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        ops("kubelet_runtime_operations_errors_total", "exec_sync"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        ops("kubelet_runtime_operations_errors_total", "list_podsandbox"),
        None,
        "{text}"
    );
    assert_eq!(
        ops(
            "kubelet_runtime_operations_duration_seconds_count",
            "list_podsandbox"
        ),
        Some(2.0),
        "{text}"
    );
    // Calls that are not runtime operations pass through uncounted.
    assert_eq!(
        runtime.version(),
        SimulatedRuntime::new(SimulatedConfig::default())
            .unwrap()
            .version()
    );
}

fn snapshot() -> crate::stats::Snapshot {
    let usage = |cpu: u64, memory: u64| Usage {
        cpu_usage_nanos: cpu,
        memory_usage_bytes: memory * 2,
        memory_working_set_bytes: memory,
        memory_rss_bytes: memory / 2,
    };
    crate::stats::Snapshot {
        node_name: "met-unit".into(),
        time: at(10),
        node: NodeUsage::default(),
        pods: vec![PodUsage {
            uid: "u1".into(),
            namespace: "ns".into(),
            name: "web".into(),
            started_at: at(0),
            containers: vec![
                ContainerUsage {
                    name: "app".into(),
                    started_at: at(1),
                    usage: usage(1_500_000_000, 4096),
                },
                ContainerUsage {
                    name: "side".into(),
                    started_at: at(2),
                    usage: usage(500_000_000, 1024),
                },
            ],
        }],
        nano_cores: HashMap::new(),
    }
}

#[test]
fn cadvisor_rows_carry_the_container_labels_and_a_pod_row() {
    let states = [pod(
        "u1",
        SandboxPhase::Running,
        vec![container(
            "app",
            ContainerStatus::Running { started_at: at(1) },
            "containerd://abc",
        )],
    )];
    let rows = cadvisor::rows(&snapshot(), &states);
    let labels: Vec<&Labels> = rows.iter().map(|r| &r.labels).collect();
    assert_eq!(
        labels,
        [
            &Labels {
                container: "app".into(),
                pod: "web".into(),
                namespace: "ns".into(),
                id: "/kubepods/podu1/abc".into(),
                image: "registry.test/app:1".into(),
                name: "abc".into(),
            },
            // A container the runtime no longer lists keeps its usage, keyed by name.
            &Labels {
                container: "side".into(),
                pod: "web".into(),
                namespace: "ns".into(),
                id: "/kubepods/podu1/side".into(),
                ..Labels::default()
            },
            &Labels {
                pod: "web".into(),
                namespace: "ns".into(),
                id: "/kubepods/podu1".into(),
                ..Labels::default()
            },
        ]
    );
    assert_eq!(rows[2].usage.cpu_usage_nanos, 2_000_000_000);
    assert_eq!(rows[2].start_time_seconds, 1_700_000_000.0);

    let text = cadvisor::render(rows);
    let app = "container=\"app\",pod=\"web\",namespace=\"ns\",id=\"/kubepods/podu1/abc\",image=\"registry.test/app:1\",name=\"abc\"";
    let whole =
        "container=\"\",pod=\"web\",namespace=\"ns\",id=\"/kubepods/podu1\",image=\"\",name=\"\"";
    for (series, want) in [
        (format!("container_cpu_usage_seconds_total{{{app}}}"), 1.5),
        (
            format!("container_memory_working_set_bytes{{{app}}}"),
            4096.0,
        ),
        (format!("container_memory_rss{{{app}}}"), 2048.0),
        (format!("container_memory_usage_bytes{{{app}}}"), 8192.0),
        (
            format!("container_start_time_seconds{{{app}}}"),
            1_700_000_001.0,
        ),
        (format!("container_cpu_usage_seconds_total{{{whole}}}"), 2.0),
        (
            format!("container_memory_working_set_bytes{{{whole}}}"),
            5120.0,
        ),
    ] {
        assert_eq!(sample(&text, &series), Some(want), "{series} in {text}");
    }
}

#[test]
fn a_node_without_pods_serves_no_cadvisor_rows() {
    let mut empty = snapshot();
    empty.pods.clear();
    assert_eq!(cadvisor::render(cadvisor::rows(&empty, &[])), "# EOF\n");
}

#[test]
fn the_resolved_image_stands_in_when_the_runtime_lost_the_spec_image() {
    let mut app = container(
        "app",
        ContainerStatus::Running { started_at: at(1) },
        "containerd://abc",
    );
    app.image = String::new();
    app.image_id = "registry.test/app@sha256:0123".into();
    let rows = cadvisor::rows(&snapshot(), &[pod("u1", SandboxPhase::Running, vec![app])]);
    assert_eq!(rows[0].labels.image, "registry.test/app@sha256:0123");
}
