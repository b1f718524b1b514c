//! Whole PostFilter decisions over small clusters, and how nominations
//! steer the filters.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use serde_json::{json, Value};

use super::*;
use crate::scheduler::framework::{schedule_pod, seeded_rng};
use crate::scheduler::testing::{node, pod_with};

/// A pod on `node` asking for `cpu`, with `priority` and `labels`.
fn running(name: &str, node: &str, cpu: &str, prio: i32, labels: Value) -> Pod {
    let mut p = pod_with(
        name,
        json!({"cpu": cpu}),
        json!({"priority": prio, "nodeName": node}),
        labels,
    );
    p.status = Some(serde_json::from_value(json!({"startTime": "2026-01-01T00:00:00Z"})).unwrap());
    p
}

fn pending(name: &str, cpu: &str, prio: i32, extra: Value) -> Pod {
    let mut spec = json!({"priority": prio});
    for (k, v) in extra.as_object().unwrap() {
        spec[k] = v.clone();
    }
    pod_with(name, json!({"cpu": cpu}), spec, json!({}))
}

/// Nodes of 2 cpu named `names`, each full with one 2-cpu pod of priority 1
/// named `low-<node>` (labelled `app=<node>`).
fn full_cluster(names: &[&str]) -> Snapshot {
    let mut s = Snapshot::default();
    for name in names {
        s.apply_node(node(name, json!({"cpu": "2", "memory": "4Gi"}), json!({})));
        s.apply_pod(&Arc::new(running(
            &format!("low-{name}"),
            name,
            "2",
            1,
            json!({"app": name}),
        )));
    }
    s
}

fn budget_for(app: &str) -> Budget {
    Budget::from_pdb(
        &serde_json::from_value(json!({
            "metadata": {"name": app, "namespace": "default"},
            "spec": {"selector": {"matchLabels": {"app": app}}},
            "status": {"disruptionsAllowed": 0, "currentHealthy": 1, "desiredHealthy": 1, "expectedPods": 1},
        }))
        .unwrap(),
    )
}

fn decide(snapshot: &Snapshot, pod: &Pod, budgets: &[Budget]) -> PostFilter {
    let state = CycleState::new(pod, snapshot);
    post_filter(&Profile::default(), &state, snapshot, budgets)
}

fn victim_names(decision: &Decision) -> Vec<String> {
    decision
        .victims
        .iter()
        .map(|p| p.metadata.name.clone().unwrap())
        .collect()
}

#[test]
fn a_higher_priority_pod_is_nominated_where_victims_make_room() {
    let snapshot = full_cluster(&["a", "b"]);
    let PostFilter::Nominated(decision) =
        decide(&snapshot, &pending("high", "1", 100, json!({})), &[])
    else {
        panic!("want a nomination");
    };
    assert_eq!(&*decision.node, "a", "all equal: the first node");
    assert_eq!(victim_names(&decision), ["low-a"]);
}

#[test]
fn a_budget_protected_victim_is_avoided_when_another_node_will_do() {
    let snapshot = full_cluster(&["a", "b"]);
    let PostFilter::Nominated(decision) = decide(
        &snapshot,
        &pending("high", "1", 100, json!({})),
        &[budget_for("a")],
    ) else {
        panic!("want a nomination");
    };
    assert_eq!(&*decision.node, "b");
    assert_eq!(victim_names(&decision), ["low-b"]);
    // With every victim protected, a budget is violated all the same.
    let PostFilter::Nominated(decision) = decide(
        &snapshot,
        &pending("high", "1", 100, json!({})),
        &[budget_for("a"), budget_for("b")],
    ) else {
        panic!("budgets are preferences, not vetoes");
    };
    assert_eq!(victim_names(&decision).len(), 1);
}

#[test]
fn pods_that_cannot_preempt_say_why_as_upstream() {
    let snapshot = full_cluster(&["a"]);
    let cases: Vec<(&str, Pod, &str)> = vec![
        (
            "preemptionPolicy Never",
            pending("never", "1", 100, json!({"preemptionPolicy": "Never"})),
            "NotEligible: not eligible due to preemptionPolicy=Never.",
        ),
        (
            "nothing of lower priority anywhere",
            pending("equal", "1", 1, json!({})),
            "NoCandidates: filters",
        ),
        (
            "even without every lower pod it does not fit",
            pending("huge", "3", 100, json!({})),
            "NoCandidates: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.",
        ),
    ];
    for (name, pod, want) in cases {
        let got = match decide(&snapshot, &pod, &[]) {
            PostFilter::NotEligible(reason) => format!("NotEligible: {reason}"),
            PostFilter::NoCandidates(None) => "NoCandidates: filters".to_owned(),
            PostFilter::NoCandidates(Some(sentence)) => format!("NoCandidates: {sentence}"),
            PostFilter::Nominated(_) => "Nominated".to_owned(),
        };
        assert_eq!(got, want, "{name}");
    }
}

#[test]
fn a_node_whose_lower_pods_free_too_little_reports_the_filter_reason() {
    let mut snapshot = Snapshot::default();
    snapshot.apply_node(node("a", json!({"cpu": "4", "memory": "4Gi"}), json!({})));
    snapshot.apply_pod(&Arc::new(running("high", "a", "3", 500, json!({}))));
    snapshot.apply_pod(&Arc::new(running("low", "a", "1", 1, json!({}))));
    snapshot.apply_node(node(
        "tainted",
        json!({"cpu": "4", "memory": "4Gi"}),
        json!({"taints": [{"key": "gpu", "effect": "NoSchedule"}]}),
    ));
    let PostFilter::NoCandidates(Some(sentence)) =
        decide(&snapshot, &pending("mid", "2", 100, json!({})), &[])
    else {
        panic!("want no candidates");
    };
    assert_eq!(
        sentence,
        "0/2 nodes are available: 1 Insufficient cpu, 1 Preemption is not helpful for scheduling."
    );
}

#[test]
fn a_preemptor_waits_for_its_victims_instead_of_preempting_again() {
    let mut snapshot = full_cluster(&["a", "b"]);
    let mut high = pending("high", "1", 100, json!({}));
    high.status = Some(serde_json::from_value(json!({"nominatedNodeName": "a"})).unwrap());
    snapshot.mark_preempted("default/low-a");
    match decide(&snapshot, &high, &[]) {
        PostFilter::NotEligible(reason) => assert_eq!(reason, NOT_ELIGIBLE_TERMINATING),
        other => panic!("want to wait, got {other:?}"),
    }
    // The same seen through the watch: deleting, with the condition.
    let mut snapshot = full_cluster(&["b"]);
    snapshot.apply_node(node("a", json!({"cpu": "2", "memory": "4Gi"}), json!({})));
    let mut victim = running("low-a", "a", "2", 1, json!({}));
    victim.metadata.deletion_timestamp = Some(
        k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::now()),
    );
    victim.status.as_mut().unwrap().conditions = Some(vec![serde_json::from_value(
        json!({"type": "DisruptionTarget", "status": "True", "reason": "PreemptionByScheduler"}),
    )
    .unwrap()]);
    snapshot.apply_pod(&Arc::new(victim));
    assert!(matches!(
        decide(&snapshot, &high, &[]),
        PostFilter::NotEligible(NOT_ELIGIBLE_TERMINATING)
    ));
}

#[test]
fn preempting_clears_lower_priority_nominations_on_the_node() {
    let mut snapshot = full_cluster(&["a"]);
    let lower = Arc::new(pending("lower", "1", 50, json!({})));
    snapshot
        .nominator_mut()
        .nominate("default/lower", lower, "a");
    let PostFilter::Nominated(decision) =
        decide(&snapshot, &pending("high", "1", 100, json!({})), &[])
    else {
        panic!("want a nomination");
    };
    let cleared: Vec<&str> = decision.cleared.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(cleared, ["default/lower"]);
}

#[test]
fn room_freed_for_a_nominated_pod_is_kept_from_lower_priority_pods() {
    let mut snapshot = Snapshot::default();
    snapshot.apply_node(node("a", json!({"cpu": "2", "memory": "4Gi"}), json!({})));
    let nominated = Arc::new(pending("high", "2", 100, json!({})));
    snapshot
        .nominator_mut()
        .nominate("default/high", nominated.clone(), "a");
    let mut rng = seeded_rng(1);
    let profile = Profile::default();
    let low = pending("low", "1", 1, json!({}));
    assert!(
        schedule_pod(&profile, &snapshot, &low, &mut 0, &mut rng).is_err(),
        "a lower-priority pod leaves the room to the nominated one"
    );
    let higher = pending("higher", "1", 1000, json!({}));
    assert!(schedule_pod(&profile, &snapshot, &higher, &mut 0, &mut rng).is_ok());
    let chosen = schedule_pod(&profile, &snapshot, &nominated, &mut 0, &mut rng).unwrap();
    assert_eq!(&*chosen, "a", "the nominated pod itself fits its own room");
}
