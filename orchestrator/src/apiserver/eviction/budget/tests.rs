use super::*;
use serde_json::json;

fn pdb(spec: Value, status: Value) -> PodDisruptionBudget {
    serde_json::from_value(json!({
        "metadata": {"name": "web", "namespace": "ns", "generation": 2},
        "spec": spec,
        "status": status
    }))
    .unwrap()
}

fn now() -> jiff::Timestamp {
    "2026-01-01T12:00:00Z".parse().unwrap()
}

#[test]
fn budgets_are_skipped_for_finished_pending_and_terminating_pods() {
    // (pod, can ignore budgets, enforce resourceVersion)
    let cases = [
        (json!({"status": {"phase": "Running"}}), false, true),
        (json!({"status": {"phase": "Pending"}}), true, true),
        (json!({"status": {"phase": "Succeeded"}}), true, false),
        (json!({"status": {"phase": "Failed"}}), true, false),
        (
            json!({"metadata": {"deletionTimestamp": "2026-01-01T00:00:00Z"}, "status": {"phase": "Running"}}),
            true,
            false,
        ),
        (json!({}), false, true),
    ];
    for (pod, ignore, enforce) in cases {
        assert_eq!(can_ignore_budgets(&pod), ignore, "{pod}");
        assert_eq!(should_enforce_resource_version(&pod), enforce, "{pod}");
    }
}

#[test]
fn covering_budgets_share_the_namespace_and_select_the_labels() {
    let budget = |name: &str, ns: &str, selector: Value| -> PodDisruptionBudget {
        serde_json::from_value(
            json!({"metadata": {"name": name, "namespace": ns}, "spec": {"selector": selector}}),
        )
        .unwrap()
    };
    let budgets = vec![
        budget("web", "ns", json!({"matchLabels": {"app": "web"}})),
        budget(
            "other-ns",
            "elsewhere",
            json!({"matchLabels": {"app": "web"}}),
        ),
        budget("db", "ns", json!({"matchLabels": {"app": "db"}})),
        budget("everything", "ns", json!({})),
        budget("null", "ns", json!(null)),
    ];
    let pod = json!({"metadata": {"namespace": "ns", "labels": {"app": "web"}}});
    let names: Vec<String> = covering(&pod, budgets)
        .into_iter()
        .map(|b| b.metadata.name.unwrap())
        .collect();
    assert_eq!(names, ["web", "everything"]);
}

#[test]
fn unready_pods_follow_the_unhealthy_pod_eviction_policy() {
    let cases = [
        (
            json!({}),
            json!({"currentHealthy": 2, "desiredHealthy": 2}),
            Unready::DeleteUnguarded,
        ),
        (
            json!({}),
            json!({"currentHealthy": 1, "desiredHealthy": 2}),
            Unready::CheckBudget,
        ),
        (
            json!({}),
            json!({"currentHealthy": 0, "desiredHealthy": 0}),
            Unready::CheckBudget,
        ),
        (
            json!({"unhealthyPodEvictionPolicy": "IfHealthyBudget"}),
            json!({"currentHealthy": 3, "desiredHealthy": 2}),
            Unready::DeleteUnguarded,
        ),
        (
            json!({"unhealthyPodEvictionPolicy": "AlwaysAllow"}),
            json!({"currentHealthy": 0, "desiredHealthy": 2}),
            Unready::DeleteUnguarded,
        ),
    ];
    for (spec, status, expected) in cases {
        assert_eq!(
            unready_verdict(&pdb(spec.clone(), status.clone())),
            expected,
            "{spec} {status}"
        );
    }
}

#[test]
fn check_and_decrement_refuses_exactly_as_upstream() {
    // (status, expected code, expected cause message or forbidden text)
    let cases = [
        (
            json!({"observedGeneration": 1, "disruptionsAllowed": 1}),
            429,
            "The disruption budget web is still being processed by the server.",
        ),
        (
            json!({"observedGeneration": 2, "disruptionsAllowed": 0, "desiredHealthy": 2, "currentHealthy": 2}),
            429,
            "The disruption budget web needs 2 healthy pods and has 2 currently",
        ),
        (
            json!({"observedGeneration": 2, "disruptionsAllowed": -1}),
            403,
            "poddisruptionbudget.policy \"web\" is forbidden: pdb disruptions allowed is negative",
        ),
    ];
    for (status, code, text) in cases {
        let err = check_and_decrement(pdb(json!({}), status.clone()), "web-1", false, now())
            .expect_err("refused");
        let body = err.to_status();
        assert_eq!(body["code"], code, "{status}");
        if code == 429 {
            assert_eq!(body["reason"], "TooManyRequests");
            assert_eq!(body["message"], VIOLATES_BUDGET);
            assert_eq!(body["details"]["causes"][0]["reason"], "DisruptionBudget");
            assert_eq!(body["details"]["causes"][0]["message"], text);
        } else {
            assert_eq!(body["message"], text);
        }
    }
}

#[test]
fn check_and_decrement_spends_one_disruption_and_records_the_pod() {
    let budget = pdb(
        json!({}),
        json!({"observedGeneration": 2, "disruptionsAllowed": 1, "currentHealthy": 3, "desiredHealthy": 2,
               "conditions": [{"type": "DisruptionAllowed", "status": "True", "reason": "SufficientPods", "message": "", "lastTransitionTime": "2026-01-01T11:00:00Z"}]}),
    );
    assert!(check_and_decrement(budget.clone(), "web-1", true, now())
        .unwrap()
        .is_none());
    let spent = check_and_decrement(budget, "web-1", false, now())
        .unwrap()
        .expect("written back");
    let status = spent.status.unwrap();
    assert_eq!(status.disruptions_allowed, 0);
    assert_eq!(
        status.disrupted_pods.unwrap().get("web-1"),
        Some(&Time(now()))
    );
    let condition = &status.conditions.unwrap()[0];
    assert_eq!(
        (condition.status.as_str(), condition.reason.as_str()),
        ("False", "InsufficientPods")
    );
}
