use super::*;
use serde_json::{json, Value};

/// Workloads from a table of objects (kind, JSON).
#[derive(Default)]
struct Table(Vec<(&'static str, Value)>);

impl Table {
    fn find<T: serde::de::DeserializeOwned>(&self, kind: &str, ns: &str, name: &str) -> Option<T> {
        self.0
            .iter()
            .find(|(k, v)| {
                *k == kind && v["metadata"]["namespace"] == ns && v["metadata"]["name"] == name
            })
            .map(|(_, v)| serde_json::from_value(v.clone()).unwrap())
    }
}

impl Workloads for Table {
    fn replica_set(&self, namespace: &str, name: &str) -> Option<ReplicaSet> {
        self.find("ReplicaSet", namespace, name)
    }
    fn deployment(&self, namespace: &str, name: &str) -> Option<Deployment> {
        self.find("Deployment", namespace, name)
    }
    fn stateful_set(&self, namespace: &str, name: &str) -> Option<StatefulSet> {
        self.find("StatefulSet", namespace, name)
    }
    fn replication_controller(&self, namespace: &str, name: &str) -> Option<ReplicationController> {
        self.find("ReplicationController", namespace, name)
    }
}

fn owner(api_version: &str, kind: &str, name: &str) -> Value {
    json!([{"apiVersion": api_version, "kind": kind, "name": name, "uid": format!("{name}-uid"), "controller": true}])
}

fn workload(kind: &'static str, name: &str, replicas: i32, owners: Value) -> (&'static str, Value) {
    (
        kind,
        json!({"metadata": {"name": name, "namespace": "ns", "uid": format!("{name}-uid"), "ownerReferences": owners}, "spec": {"replicas": replicas}}),
    )
}

/// A pod: name, ready, being deleted, controller reference (or null).
fn pod(name: &str, ready: bool, deleting: bool, owners: Value) -> Pod {
    let mut value = json!({
        "metadata": {"name": name, "namespace": "ns", "ownerReferences": owners},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]}
    });
    if deleting {
        value["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
    }
    serde_json::from_value(value).unwrap()
}

fn pdb(spec: Value, status: Value) -> PodDisruptionBudget {
    serde_json::from_value(json!({
        "metadata": {"name": "web", "namespace": "ns", "generation": 1},
        "spec": spec,
        "status": status
    }))
    .unwrap()
}

fn now() -> jiff::Timestamp {
    "2026-01-01T12:00:00Z".parse().unwrap()
}

fn ago(seconds: i64) -> Time {
    Time(now() - jiff::SignedDuration::from_secs(seconds))
}

/// (name, spec, pods, expected (expectedPods, desiredHealthy, unmanaged)).
type CountCase<'a> = (
    &'a str,
    Value,
    &'a [Pod],
    Result<(i32, i32, Vec<String>), SyncError>,
);

/// (spec, pods, currentHealthy, desiredHealthy, expectedPods, disruptionsAllowed, reason).
type StatusCase<'a> = (Value, &'a [Pod], i32, i32, i32, i32, &'a str);

#[test]
fn scaled_values_round_percentages_up() {
    let cases = [
        (IntOrString::Int(2), 10, Ok(2)),
        (IntOrString::String("50%".into()), 3, Ok(2)),
        (IntOrString::String("34%".into()), 3, Ok(2)),
        (IntOrString::String("33%".into()), 3, Ok(1)),
        (IntOrString::String("100%".into()), 4, Ok(4)),
        (IntOrString::String("0%".into()), 4, Ok(0)),
        (
            IntOrString::String("half".into()),
            4,
            Err(SyncError::BadIntOrPercent("half".into())),
        ),
    ];
    for (value, total, expected) in cases {
        assert_eq!(
            scaled_value(&value, total),
            expected,
            "{value:?} of {total}"
        );
    }
}

#[test]
fn expected_pods_and_desired_healthy_follow_the_spec_and_the_controllers_scale() {
    let rs_of_deploy = owner("apps/v1", "ReplicaSet", "web-abc");
    let table = Table(vec![
        workload("Deployment", "web", 4, json!(null)),
        workload(
            "ReplicaSet",
            "web-abc",
            3,
            owner("apps/v1", "Deployment", "web"),
        ),
        workload("ReplicaSet", "lone", 5, json!(null)),
        workload("StatefulSet", "db", 3, json!(null)),
        workload("ReplicationController", "old", 2, json!(null)),
    ]);
    let deploy_pods = [
        pod("a", true, false, rs_of_deploy.clone()),
        pod("b", true, false, rs_of_deploy.clone()),
        pod("c", true, false, rs_of_deploy),
    ];
    let mixed = [
        pod("r", true, false, owner("apps/v1", "ReplicaSet", "lone")),
        pod("s", true, false, owner("apps/v1", "StatefulSet", "db")),
        pod(
            "o",
            true,
            false,
            owner("v1", "ReplicationController", "old"),
        ),
    ];
    let orphans = [
        pod("x", true, false, json!(null)),
        pod("y", true, false, json!(null)),
    ];
    let cases: Vec<CountCase> = vec![
        // Integer minAvailable counts the pods themselves.
        (
            "int min",
            json!({"minAvailable": 2}),
            &deploy_pods,
            Ok((3, 2, vec![])),
        ),
        (
            "int min orphans",
            json!({"minAvailable": 1}),
            &orphans,
            Ok((2, 1, vec![])),
        ),
        // A percentage uses the Deployment's scale (4), not the ReplicaSet's (3).
        (
            "percent min",
            json!({"minAvailable": "50%"}),
            &deploy_pods,
            Ok((4, 2, vec![])),
        ),
        (
            "max int",
            json!({"maxUnavailable": 1}),
            &deploy_pods,
            Ok((4, 3, vec![])),
        ),
        (
            "max percent",
            json!({"maxUnavailable": "30%"}),
            &deploy_pods,
            Ok((4, 2, vec![])),
        ),
        (
            "max beyond scale",
            json!({"maxUnavailable": 9}),
            &deploy_pods,
            Ok((4, 0, vec![])),
        ),
        // Each kind's scale, summed: 5 + 3 + 2.
        (
            "kinds summed",
            json!({"maxUnavailable": 1}),
            &mixed,
            Ok((10, 9, vec![])),
        ),
        (
            "unmanaged pods are listed, not counted",
            json!({"maxUnavailable": 1}),
            &orphans,
            Ok((0, 0, vec!["x".into(), "y".into()])),
        ),
        ("neither", json!({}), &deploy_pods, Ok((0, 0, vec![]))),
    ];
    for (name, spec, pods, expected) in cases {
        let refs: Vec<&Pod> = pods.iter().collect();
        let got = expected_pod_count(&pdb(spec, json!({})), &refs, &table);
        assert_eq!(got, expected, "{name}");
    }
}

#[test]
fn a_controller_of_unknown_kind_or_uid_fails_the_sync() {
    let table = Table(vec![workload("ReplicaSet", "web-abc", 3, json!(null))]);
    let cases = [
        owner("batch/v1", "Job", "nightly"),
        owner("apps/v1", "ReplicaSet", "gone"),
        // A ReplicaSet owned by a Deployment that is not there.
        json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-abc", "uid": "other-uid", "controller": true}]),
    ];
    for owners in cases {
        let pods = [pod("p", true, false, owners.clone())];
        let refs: Vec<&Pod> = pods.iter().collect();
        let got = expected_pod_count(
            &pdb(json!({"minAvailable": "50%"}), json!({})),
            &refs,
            &table,
        );
        assert_eq!(got, Err(SyncError::NoController("p".into())), "{owners}");
        assert_eq!(
            got.unwrap_err().to_string(),
            "found no controllers for pod \"p\""
        );
    }
}

#[test]
fn disrupted_pods_expire_after_two_minutes_and_leave_once_deleting() {
    let pods = [
        pod("fresh", true, false, json!(null)),
        pod("old", true, false, json!(null)),
        pod("deleting", false, true, json!(null)),
        pod("untouched", true, false, json!(null)),
    ];
    let refs: Vec<&Pod> = pods.iter().collect();
    let budget = pdb(
        json!({"minAvailable": 1}),
        json!({"disruptedPods": {
            "fresh": ago(30).0.to_string(),
            "old": ago(121).0.to_string(),
            "deleting": ago(10).0.to_string(),
            "vanished": ago(10).0.to_string()
        }}),
    );
    let (kept, recheck, lapsed) = disrupted_pods(&budget, &refs, now());
    assert_eq!(kept.keys().collect::<Vec<_>>(), ["fresh"]);
    assert_eq!(recheck, Some(now() + jiff::SignedDuration::from_secs(90)));
    assert_eq!(lapsed, ["old"]);
    // "fresh" is out of the count, "deleting" too; "old" and "untouched" count.
    assert_eq!(count_healthy(&refs, &kept, now()), 2);
}

#[test]
fn status_allows_what_is_healthy_beyond_desired_and_only_with_expected_pods() {
    let owned = owner("apps/v1", "ReplicaSet", "lone");
    let table = Table(vec![workload("ReplicaSet", "lone", 3, json!(null))]);
    let ready3 = [
        pod("a", true, false, owned.clone()),
        pod("b", true, false, owned.clone()),
        pod("c", true, false, owned.clone()),
    ];
    let one_unready = [
        pod("a", true, false, owned.clone()),
        pod("b", true, false, owned.clone()),
        pod("c", false, false, owned.clone()),
    ];
    let one_deleting = [
        pod("a", true, false, owned.clone()),
        pod("b", true, false, owned.clone()),
        pod("c", true, true, owned),
    ];
    // (spec, pods, currentHealthy, desiredHealthy, expectedPods, disruptionsAllowed, condition reason)
    let cases: Vec<StatusCase> = vec![
        (
            json!({"minAvailable": 2}),
            &ready3,
            3,
            2,
            3,
            1,
            "SufficientPods",
        ),
        (
            json!({"minAvailable": 2}),
            &one_unready,
            2,
            2,
            3,
            0,
            "InsufficientPods",
        ),
        (
            json!({"minAvailable": 2}),
            &one_deleting,
            2,
            2,
            3,
            0,
            "InsufficientPods",
        ),
        (
            json!({"minAvailable": 4}),
            &ready3,
            3,
            4,
            3,
            0,
            "InsufficientPods",
        ),
        (
            json!({"maxUnavailable": 1}),
            &ready3,
            3,
            2,
            3,
            1,
            "SufficientPods",
        ),
        (
            json!({"maxUnavailable": "100%"}),
            &ready3,
            3,
            0,
            3,
            3,
            "SufficientPods",
        ),
        (
            json!({"minAvailable": 0}),
            &[],
            0,
            0,
            0,
            0,
            "InsufficientPods",
        ),
    ];
    for (spec, pods, current, desired, expected, allowed, reason) in cases {
        let refs: Vec<&Pod> = pods.iter().collect();
        let budget = pdb(spec.clone(), json!({}));
        let computed = compute(&budget, &refs, &table, now()).unwrap();
        let next = with_status(&budget, &computed, now()).expect("a first status is written");
        let status = next.status.as_ref().unwrap();
        assert_eq!(
            (
                status.current_healthy,
                status.desired_healthy,
                status.expected_pods,
                status.disruptions_allowed
            ),
            (current, desired, expected, allowed),
            "{spec}"
        );
        assert_eq!(status.observed_generation, Some(1));
        let condition = &status.conditions.as_ref().unwrap()[0];
        assert_eq!(condition.type_, "DisruptionAllowed");
        assert_eq!(condition.reason, reason, "{spec}");
        assert_eq!(condition.status, if allowed > 0 { "True" } else { "False" });
        // Written once: the same computation over the new status changes nothing.
        assert!(with_status(&next, &computed, now()).is_none(), "{spec}");
    }
}

#[test]
fn a_failed_sync_allows_no_disruption_and_says_why() {
    let budget = pdb(
        json!({"minAvailable": "50%"}),
        json!({"disruptionsAllowed": 2, "conditions": [{"type": "DisruptionAllowed", "status": "True", "reason": "SufficientPods", "message": "", "lastTransitionTime": "2026-01-01T11:00:00Z"}]}),
    );
    let failed = fail_safe(&budget, &SyncError::NoController("p".into()), now());
    let status = failed.status.unwrap();
    assert_eq!(status.disruptions_allowed, 0);
    let conditions = status.conditions.unwrap();
    assert_eq!(conditions.len(), 1);
    assert_eq!(
        (
            conditions[0].status.as_str(),
            conditions[0].reason.as_str(),
            conditions[0].message.as_str()
        ),
        ("False", "SyncFailed", "found no controllers for pod \"p\"")
    );
    assert_eq!(conditions[0].last_transition_time, Time(now()));
    // Failing again later changes nothing, so nothing is written again.
    let failed = fail_safe(&budget, &SyncError::NoController("p".into()), now());
    let again = fail_safe(
        &failed,
        &SyncError::NoController("p".into()),
        now() + jiff::SignedDuration::from_secs(60),
    );
    assert_eq!(again.status, failed.status);
}
