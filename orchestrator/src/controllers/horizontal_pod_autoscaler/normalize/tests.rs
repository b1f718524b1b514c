//! Cases after upstream's `horizontal_test.go` normalization tests.

use super::*;
use k8s_openapi::api::autoscaling::v2::HPAScalingPolicy;

fn now() -> Timestamp {
    "2026-06-01T12:00:00Z".parse().unwrap()
}

fn ago(seconds: i64) -> Timestamp {
    now() - jiff::SignedDuration::from_secs(seconds)
}

fn history(recommendations: &[(i32, i64)], up: &[(i32, i64)], down: &[(i32, i64)]) -> History {
    let events = |list: &[(i32, i64)]| {
        list.iter()
            .map(|&(change, seconds)| ScaleEvent {
                change,
                at: ago(seconds),
            })
            .collect()
    };
    History {
        recommendations: recommendations
            .iter()
            .map(|&(replicas, seconds)| Recommendation {
                replicas,
                at: ago(seconds),
            })
            .collect(),
        scale_up_events: events(up),
        scale_down_events: events(down),
    }
}

fn rules(window: i32, select: &str, policies: &[(&str, i32, i32)]) -> HPAScalingRules {
    HPAScalingRules {
        stabilization_window_seconds: Some(window),
        select_policy: Some(select.into()),
        policies: Some(
            policies
                .iter()
                .map(|&(type_, value, period_seconds)| HPAScalingPolicy {
                    type_: type_.into(),
                    value,
                    period_seconds,
                })
                .collect(),
        ),
        ..Default::default()
    }
}

/// Upstream's defaults: up at most max(100 %, 4 pods) per 15 s with no
/// window; down 100 % per 15 s after 300 s.
fn default_behavior() -> HorizontalPodAutoscalerBehavior {
    HorizontalPodAutoscalerBehavior {
        scale_up: Some(rules(0, "Max", &[("Pods", 4, 15), ("Percent", 100, 15)])),
        scale_down: Some(rules(300, "Max", &[("Percent", 100, 15)])),
    }
}

/// (case, recommendations, current, min, max, desired, replicas, AbleToScale
/// reason, ScalingLimited status and reason)
type LegacyCase = (
    &'static str,
    Vec<(i32, i64)>,
    i32,
    i32,
    i32,
    i32,
    i32,
    &'static str,
    (bool, &'static str),
);

#[test]
fn legacy_normalization_limits_and_stabilizes() {
    let window = Duration::from_secs(300);
    // (case, history of recommendations, current, min, max, desired → replicas, AbleToScale reason, ScalingLimited (status, reason))
    let cases: Vec<LegacyCase> = vec![
        (
            "scale up at most 2x or 4",
            vec![],
            3,
            1,
            20,
            10,
            6,
            "ReadyForNewScale",
            (true, "ScaleUpLimit"),
        ),
        (
            "scale up to max",
            vec![],
            3,
            1,
            5,
            10,
            5,
            "ReadyForNewScale",
            (true, "TooManyReplicas"),
        ),
        (
            "within range",
            vec![],
            3,
            1,
            10,
            4,
            4,
            "ReadyForNewScale",
            (false, "DesiredWithinRange"),
        ),
        (
            "a recent higher recommendation holds a scale-down",
            vec![(3, 60)],
            3,
            1,
            10,
            1,
            3,
            "ScaleDownStabilized",
            (false, "DesiredWithinRange"),
        ),
        (
            "an old one does not",
            vec![(3, 400)],
            3,
            1,
            10,
            1,
            1,
            "ReadyForNewScale",
            (false, "DesiredWithinRange"),
        ),
        (
            "never below min",
            vec![(3, 400)],
            3,
            2,
            10,
            0,
            2,
            "ReadyForNewScale",
            (true, "TooFewReplicas"),
        ),
    ];
    for (case, recs, current, min, max, desired, replicas, able, (status, reason)) in cases {
        let mut h = history(&recs, &[], &[]);
        let got = normalize_legacy(&mut h, Bounds { current, min, max }, desired, window, now());
        assert_eq!(got.replicas, replicas, "{case}");
        assert_eq!(got.able_to_scale.reason, able, "{case}");
        assert_eq!(
            (got.scaling_limited.status, got.scaling_limited.reason),
            (status, reason),
            "{case}"
        );
        assert!(
            h.recommendations
                .iter()
                .any(|r| r.replicas == desired && r.at == now()),
            "{case}"
        );
    }
}

#[test]
fn behavior_normalization_follows_windows_and_policies() {
    let window = Duration::from_secs(300);
    let fast_down = HorizontalPodAutoscalerBehavior {
        scale_down: Some(rules(0, "Max", &[("Percent", 100, 15)])),
        ..default_behavior()
    };
    let one_pod_down = HorizontalPodAutoscalerBehavior {
        scale_down: Some(rules(0, "Max", &[("Pods", 1, 60)])),
        ..default_behavior()
    };
    let min_policy_down = HorizontalPodAutoscalerBehavior {
        scale_down: Some(rules(0, "Min", &[("Pods", 1, 60), ("Percent", 50, 60)])),
        ..default_behavior()
    };
    let disabled_down = HorizontalPodAutoscalerBehavior {
        scale_down: Some(rules(0, "Disabled", &[("Percent", 100, 15)])),
        ..default_behavior()
    };
    let slow_up = HorizontalPodAutoscalerBehavior {
        scale_up: Some(rules(60, "Max", &[("Percent", 100, 15)])),
        ..default_behavior()
    };
    let min_policy_up = HorizontalPodAutoscalerBehavior {
        scale_up: Some(rules(0, "Min", &[("Pods", 4, 15), ("Percent", 100, 15)])),
        ..default_behavior()
    };
    struct Case<'a> {
        name: &'a str,
        behavior: &'a HorizontalPodAutoscalerBehavior,
        recommendations: Vec<(i32, i64)>,
        up_events: Vec<(i32, i64)>,
        down_events: Vec<(i32, i64)>,
        bounds: (i32, i32, i32),
        desired: i32,
        replicas: i32,
        able: &'a str,
        limited: (bool, &'a str),
    }
    let default = default_behavior();
    let cases = [
        Case {
            name: "default scale-up: max of 4 pods and 100 %",
            behavior: &default,
            recommendations: vec![],
            up_events: vec![],
            down_events: vec![],
            bounds: (1, 1, 20),
            desired: 10,
            replicas: 5,
            able: "ReadyForNewScale",
            limited: (true, "ScaleUpLimit"),
        },
        Case {
            name: "default scale-up from 10: 100 %",
            behavior: &default,
            recommendations: vec![],
            up_events: vec![],
            down_events: vec![],
            bounds: (10, 1, 50),
            desired: 40,
            replicas: 20,
            able: "ReadyForNewScale",
            limited: (true, "ScaleUpLimit"),
        },
        Case {
            name: "scale-up counted from the period's start",
            behavior: &default,
            recommendations: vec![],
            up_events: vec![(4, 5)],
            down_events: vec![],
            bounds: (5, 1, 20),
            desired: 10,
            replicas: 5,
            able: "ReadyForNewScale",
            limited: (true, "ScaleUpLimit"),
        },
        Case {
            name: "scale-up events older than the period are forgotten",
            behavior: &default,
            recommendations: vec![],
            up_events: vec![(4, 20)],
            down_events: vec![],
            bounds: (5, 1, 20),
            desired: 10,
            replicas: 10,
            able: "ReadyForNewScale",
            limited: (false, "DesiredWithinRange"),
        },
        Case {
            name: "scale-up to max",
            behavior: &default,
            recommendations: vec![],
            up_events: vec![],
            down_events: vec![],
            bounds: (2, 1, 3),
            desired: 10,
            replicas: 3,
            able: "ReadyForNewScale",
            limited: (true, "TooManyReplicas"),
        },
        Case {
            name: "Min select policy picks the smaller step up",
            behavior: &min_policy_up,
            recommendations: vec![],
            up_events: vec![],
            down_events: vec![],
            bounds: (2, 1, 20),
            desired: 10,
            replicas: 4,
            able: "ReadyForNewScale",
            limited: (true, "ScaleUpLimit"),
        },
        Case {
            name: "default scale-down waits for the 300 s window",
            behavior: &default,
            recommendations: vec![(5, 60)],
            up_events: vec![],
            down_events: vec![],
            bounds: (5, 1, 10),
            desired: 1,
            replicas: 5,
            able: "ScaleDownStabilized",
            limited: (false, "DesiredWithinRange"),
        },
        Case {
            name: "no window: straight to min",
            behavior: &fast_down,
            recommendations: vec![(5, 60)],
            up_events: vec![],
            down_events: vec![],
            bounds: (5, 1, 10),
            desired: 0,
            replicas: 1,
            able: "ReadyForNewScale",
            limited: (true, "TooFewReplicas"),
        },
        Case {
            name: "one pod per minute",
            behavior: &one_pod_down,
            recommendations: vec![],
            up_events: vec![],
            down_events: vec![],
            bounds: (5, 1, 10),
            desired: 1,
            replicas: 4,
            able: "ReadyForNewScale",
            limited: (true, "ScaleDownLimit"),
        },
        Case {
            name: "one pod per minute, one already removed",
            behavior: &one_pod_down,
            recommendations: vec![],
            up_events: vec![],
            down_events: vec![(1, 30)],
            bounds: (4, 1, 10),
            desired: 1,
            replicas: 4,
            able: "ReadyForNewScale",
            limited: (true, "ScaleDownLimit"),
        },
        Case {
            name: "Min select policy picks the smaller step down",
            behavior: &min_policy_down,
            recommendations: vec![],
            up_events: vec![],
            down_events: vec![],
            bounds: (10, 1, 10),
            desired: 1,
            replicas: 9,
            able: "ReadyForNewScale",
            limited: (true, "ScaleDownLimit"),
        },
        Case {
            name: "scale-down disabled",
            behavior: &disabled_down,
            recommendations: vec![],
            up_events: vec![],
            down_events: vec![],
            bounds: (5, 1, 10),
            desired: 1,
            replicas: 5,
            able: "ReadyForNewScale",
            limited: (true, "ScaleDownLimit"),
        },
        Case {
            name: "scale-up window holds the lowest recent recommendation",
            behavior: &slow_up,
            recommendations: vec![(2, 30)],
            up_events: vec![],
            down_events: vec![],
            bounds: (2, 1, 10),
            desired: 6,
            replicas: 2,
            able: "ScaleUpStabilized",
            limited: (false, "DesiredWithinRange"),
        },
        Case {
            name: "scale-up window over",
            behavior: &slow_up,
            recommendations: vec![(2, 90)],
            up_events: vec![],
            down_events: vec![],
            bounds: (2, 1, 10),
            desired: 4,
            replicas: 4,
            able: "ReadyForNewScale",
            limited: (false, "DesiredWithinRange"),
        },
    ];
    for c in cases {
        let mut h = history(&c.recommendations, &c.up_events, &c.down_events);
        let (current, min, max) = c.bounds;
        let got = normalize_with_behavior(
            &mut h,
            c.behavior,
            Bounds { current, min, max },
            c.desired,
            window,
            now(),
        );
        assert_eq!(got.replicas, c.replicas, "{}", c.name);
        assert_eq!(got.able_to_scale.reason, c.able, "{}", c.name);
        assert_eq!(
            (got.scaling_limited.status, got.scaling_limited.reason),
            c.limited,
            "{}",
            c.name
        );
    }
}

#[test]
fn scale_events_are_kept_for_the_longest_period_under_a_behavior_only() {
    let behavior = default_behavior();
    let mut h = history(&[], &[(1, 20), (2, 5)], &[]);
    h.record_scale(Some(&behavior), 3, 5, now());
    let kept: Vec<i32> = h.scale_up_events.iter().map(|e| e.change).collect();
    assert_eq!(kept, [2, 2]);
    h.record_scale(Some(&behavior), 5, 2, now());
    assert_eq!(h.scale_down_events.len(), 1);
    assert_eq!(h.scale_down_events[0].change, 3);
    let mut legacy = History::default();
    legacy.record_scale(None, 1, 3, now());
    assert!(legacy.scale_up_events.is_empty());
    legacy.record_initial(3, now());
    legacy.record_initial(5, now());
    assert_eq!(legacy.recommendations.len(), 1);
}
