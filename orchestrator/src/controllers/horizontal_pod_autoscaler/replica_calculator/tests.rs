//! Cases ported from upstream's `replica_calculator_test.go`.

use super::*;
use k8s_openapi::api::core::v1::{
    Container, PodCondition, PodSpec, PodStatus, ResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

fn now() -> Timestamp {
    "2026-06-01T12:00:00Z".parse().unwrap()
}

fn ago(seconds: i64) -> Timestamp {
    now() - jiff::SignedDuration::from_secs(seconds)
}

/// How a test pod stands.
#[derive(Clone, Copy)]
struct P {
    phase: &'static str,
    ready: bool,
    /// Seconds since start and since the Ready condition's last transition.
    started: i64,
    transition: i64,
    deleting: bool,
    request: Option<&'static str>,
}

const RUNNING: P = P {
    phase: "Running",
    ready: true,
    started: 600,
    transition: 590,
    deleting: false,
    request: Some("1"),
};

fn pod(i: usize, p: P) -> Pod {
    let requests = p.request.map(|r| {
        [("cpu".to_owned(), Quantity(r.to_owned()))]
            .into_iter()
            .collect()
    });
    Pod {
        metadata: ObjectMeta {
            name: Some(format!("pod-{i}")),
            deletion_timestamp: p.deleting.then(|| Time(now())),
            ..Default::default()
        },
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "c".into(),
                resources: Some(ResourceRequirements {
                    requests,
                    ..Default::default()
                }),
                ..Default::default()
            }],
            ..Default::default()
        }),
        status: Some(PodStatus {
            phase: Some(p.phase.into()),
            start_time: Some(Time(ago(p.started))),
            conditions: Some(vec![PodCondition {
                type_: "Ready".into(),
                status: if p.ready { "True" } else { "False" }.into(),
                last_transition_time: Some(Time(ago(p.transition))),
                ..Default::default()
            }]),
            ..Default::default()
        }),
    }
}

/// Metrics for pods by index; `None` leaves a pod without metrics.
fn metrics(levels: &[Option<i64>]) -> PodMetricsInfo {
    levels
        .iter()
        .enumerate()
        .filter_map(|(i, level)| {
            level.map(|value| {
                let metric = PodMetric {
                    timestamp: now(),
                    window: Duration::from_secs(30),
                    value,
                };
                (format!("pod-{i}"), metric)
            })
        })
        .collect()
}

/// (case, current, pods, metrics, target %, replicas, utilization, raw average)
type UtilizationCase = (
    &'static str,
    i32,
    Vec<P>,
    Vec<Option<i64>>,
    i32,
    i32,
    i32,
    i64,
);
/// (case, pods, metrics, error text)
type ErrorCase = (&'static str, Vec<P>, Vec<Option<i64>>, &'static str);
/// (case, current, metrics, target milli, replicas, average)
type AverageCase = (&'static str, i32, Vec<Option<i64>>, i64, i32, i64);

#[test]
fn utilization_targets_give_upstreams_replica_counts() {
    let unready = P {
        ready: false,
        ..RUNNING
    };
    let hot = P {
        started: 60,
        transition: 20,
        ..RUNNING
    };
    let pending = P {
        phase: "Pending",
        ..RUNNING
    };
    let deleting = P {
        deleting: true,
        ..RUNNING
    };
    let never_ready = P {
        ready: false,
        started: 600,
        transition: 590,
        ..RUNNING
    };
    let r = RUNNING;
    // (case, current, pods, metrics, target %, expected replicas, utilization, raw average)
    let cases: Vec<UtilizationCase> = vec![
        (
            "scale up",
            3,
            vec![r, r, r],
            vec![Some(300), Some(500), Some(700)],
            30,
            5,
            50,
            500,
        ),
        (
            "scale up, unready pods count as 0 %",
            3,
            vec![unready, r, r],
            vec![Some(300), Some(500), Some(700)],
            30,
            4,
            60,
            600,
        ),
        (
            "scale up, hot CPU of a starting pod ignored",
            3,
            vec![hot, r, r],
            vec![Some(300), Some(500), Some(700)],
            30,
            4,
            60,
            600,
        ),
        (
            "scale up, pending pods count as 0 %",
            3,
            vec![pending, r, r],
            vec![None, Some(500), Some(700)],
            30,
            4,
            60,
            600,
        ),
        (
            "unready pods would reverse the scale-up",
            3,
            vec![r, unready, unready],
            vec![Some(400), Some(500), Some(700)],
            30,
            3,
            40,
            400,
        ),
        (
            "scale down",
            5,
            vec![r; 5],
            vec![Some(100), Some(300), Some(500), Some(250), Some(250)],
            50,
            3,
            28,
            280,
        ),
        (
            "scale down ignores unready pods",
            5,
            vec![r, r, r, never_ready, never_ready],
            vec![Some(100), Some(300), Some(500), Some(250), Some(250)],
            50,
            2,
            30,
            300,
        ),
        (
            "scale down ignores pods being deleted",
            5,
            vec![r, r, r, deleting, deleting],
            vec![Some(100), Some(300), Some(500), Some(250), Some(250)],
            50,
            2,
            30,
            300,
        ),
        (
            "within tolerance",
            3,
            vec![r; 3],
            vec![Some(1010), Some(1030), Some(1020)],
            100,
            3,
            102,
            1020,
        ),
        (
            "missing metrics, ratio exactly 1",
            2,
            vec![r; 2],
            vec![Some(1000), None],
            100,
            2,
            100,
            1000,
        ),
        (
            "missing metrics assumed 0 % on a scale-up",
            2,
            vec![r; 2],
            vec![Some(1900), None],
            100,
            2,
            190,
            1900,
        ),
        (
            "missing metrics assumed 100 % on a scale-down",
            2,
            vec![r; 2],
            vec![Some(600), None],
            100,
            2,
            60,
            600,
        ),
        (
            "missing metrics, scale down still",
            4,
            vec![r, r, r, unready],
            vec![Some(100), Some(100), Some(100), None],
            50,
            3,
            10,
            100,
        ),
        (
            "missing metrics, scale up still",
            2,
            vec![r; 3],
            vec![Some(5000), Some(5000), None],
            100,
            10,
            500,
            5000,
        ),
    ];
    let config = CalculatorConfig::default();
    for (case, current, pods, levels, target, replicas, utilization, raw) in cases {
        let pods: Vec<Pod> = pods
            .into_iter()
            .enumerate()
            .map(|(i, p)| pod(i, p))
            .collect();
        let got = resource_replicas(
            current,
            target,
            "cpu",
            None,
            &pods,
            metrics(&levels),
            &config,
            now(),
        )
        .unwrap_or_else(|e| panic!("{case}: {e}"));
        assert_eq!(
            got,
            UtilizationProposal {
                replicas,
                utilization,
                raw_average: raw
            },
            "{case}"
        );
    }
}

#[test]
fn utilization_errors_carry_upstreams_texts() {
    let config = CalculatorConfig::default();
    let no_request = P {
        request: None,
        ..RUNNING
    };
    let unready = P {
        ready: false,
        ..RUNNING
    };
    let cases: Vec<ErrorCase> = vec![
        (
            "no pods",
            vec![],
            vec![],
            "no pods returned by selector while calculating replica count",
        ),
        (
            "no request",
            vec![no_request],
            vec![Some(100)],
            "missing request for cpu in container c of Pod pod-0",
        ),
        (
            "only unready pods",
            vec![unready],
            vec![Some(100)],
            "did not receive metrics for targeted pods (pods might be unready)",
        ),
    ];
    for (case, pods, levels, text) in cases {
        let pods: Vec<Pod> = pods
            .into_iter()
            .enumerate()
            .map(|(i, p)| pod(i, p))
            .collect();
        let got = resource_replicas(1, 50, "cpu", None, &pods, metrics(&levels), &config, now());
        assert_eq!(got.unwrap_err().to_string(), text, "{case}");
    }
}

#[test]
fn average_value_targets_give_upstreams_replica_counts() {
    let r = RUNNING;
    let config = CalculatorConfig::default();
    // (case, current, metrics, target milli, expected replicas, average)
    let cases: Vec<AverageCase> = vec![
        (
            "scale up",
            3,
            vec![Some(300), Some(500), Some(700)],
            200,
            8,
            500,
        ),
        (
            "scale down",
            3,
            vec![Some(100), Some(100), Some(100)],
            200,
            2,
            100,
        ),
        (
            "within tolerance",
            3,
            vec![Some(195), Some(200), Some(205)],
            200,
            3,
            200,
        ),
        (
            "missing pod taken at the target on a scale-down",
            3,
            vec![Some(50), Some(50), None],
            200,
            2,
            50,
        ),
    ];
    for (case, current, levels, target, replicas, average) in cases {
        let pods: Vec<Pod> = (0..levels.len()).map(|i| pod(i, r)).collect();
        let got = raw_resource_replicas(
            current,
            target,
            "cpu",
            &pods,
            metrics(&levels),
            &config,
            now(),
        )
        .unwrap_or_else(|e| panic!("{case}: {e}"));
        assert_eq!(got, (replicas, average), "{case}");
    }
}

#[test]
fn requests_sum_containers_and_sidecars_or_one_container() {
    let mut p = pod(0, RUNNING);
    let spec = p.spec.as_mut().unwrap();
    let mut second = spec.containers[0].clone();
    second.name = "d".into();
    second.resources.as_mut().unwrap().requests = Some(
        [("cpu".to_owned(), Quantity("250m".into()))]
            .into_iter()
            .collect(),
    );
    spec.containers.push(second.clone());
    let mut sidecar = second;
    sidecar.name = "s".into();
    sidecar.restart_policy = Some("Always".into());
    let mut plain_init = sidecar.clone();
    plain_init.name = "init".into();
    plain_init.restart_policy = None;
    spec.init_containers = Some(vec![sidecar, plain_init]);
    let pods = [p];
    assert_eq!(pod_requests(&pods, None, "cpu").unwrap()["pod-0"], 1500);
    assert_eq!(pod_requests(&pods, Some("d"), "cpu").unwrap()["pod-0"], 250);
    assert!(pod_requests(&pods, None, "memory").is_err());
}
