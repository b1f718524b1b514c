//! A ReplicaSet's status from the pods it controls and from how the last
//! attempt to create or delete pods went (upstream's `calculateStatus`): the
//! counts `kubectl get rs` shows and the ReplicaFailure condition that tells a
//! user (and the Deployment above) that the API refused its pods. Pure: no I/O.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetCondition, ReplicaSetStatus};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;

use crate::controllers::workload::{pod_is_available, pod_is_ready};

/// The condition type a ReplicaSet reports refused pod creations or deletions under.
pub const REPLICA_FAILURE: &str = "ReplicaFailure";

/// How this pass's attempt to bring the pods to `spec.replicas` went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Managed {
    /// Not attempted (earlier creations or deletions still unobserved, or the
    /// ReplicaSet is being deleted): the ReplicaFailure condition stays as it is.
    Skipped,
    /// Pods were created or deleted as needed (or nothing was needed).
    Succeeded,
    /// The API refused a creation or deletion.
    Failed {
        /// `FailedCreate` or `FailedDelete`.
        reason: &'static str,
        /// The API's message, as upstream copies `err.Error()`.
        message: String,
    },
}

/// The conditions after `managed`: a failure adds ReplicaFailure unless one is
/// already there (the first failure's message stays, so repeated failures do
/// not rewrite the status each pass, as upstream); a success removes it.
fn conditions_after(
    existing: Option<&Vec<ReplicaSetCondition>>,
    managed: &Managed,
    now: &Time,
) -> Option<Vec<ReplicaSetCondition>> {
    let mut conditions = existing.cloned().unwrap_or_default();
    let present = conditions.iter().any(|c| c.type_ == REPLICA_FAILURE);
    match managed {
        Managed::Failed { reason, message } if !present => {
            conditions.push(ReplicaSetCondition {
                type_: REPLICA_FAILURE.into(),
                status: "True".into(),
                reason: Some((*reason).into()),
                message: Some(message.clone()),
                last_transition_time: Some(now.clone()),
            });
        }
        Managed::Succeeded => conditions.retain(|c| c.type_ != REPLICA_FAILURE),
        Managed::Failed { .. } | Managed::Skipped => {}
    }
    (!conditions.is_empty()).then_some(conditions)
}

/// The status `owned` pods and the outcome `managed` give `rs` at `now`.
pub fn compute_status(
    rs: &ReplicaSet,
    owned: &[&Pod],
    managed: &Managed,
    now: jiff::Timestamp,
) -> ReplicaSetStatus {
    let min_ready = rs
        .spec
        .as_ref()
        .and_then(|s| s.min_ready_seconds)
        .unwrap_or(0);
    let template_labels: BTreeMap<String, String> = rs
        .spec
        .as_ref()
        .and_then(|s| s.template.as_ref())
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    let fully_labeled = owned
        .iter()
        .filter(|p| {
            let labels = p.labels();
            template_labels
                .iter()
                .all(|(k, v)| labels.get(k) == Some(v))
        })
        .count();
    let count = |n: usize| i32::try_from(n).unwrap_or(i32::MAX);
    let existing = rs.status.as_ref().and_then(|s| s.conditions.as_ref());
    ReplicaSetStatus {
        replicas: count(owned.len()),
        fully_labeled_replicas: Some(count(fully_labeled)),
        ready_replicas: Some(count(owned.iter().filter(|p| pod_is_ready(p)).count())),
        available_replicas: Some(count(
            owned
                .iter()
                .filter(|p| pod_is_available(p, min_ready, now))
                .count(),
        )),
        observed_generation: rs.metadata.generation,
        conditions: conditions_after(existing, managed, &Time(now)),
        terminating_replicas: None,
    }
}

/// The merge patch that writes `status`, clearing conditions that are gone
/// (a merge patch leaves out an absent field rather than removing it).
pub fn status_patch(status: &ReplicaSetStatus) -> serde_json::Value {
    let mut value = serde_json::to_value(status).unwrap_or_default();
    if status.conditions.is_none() {
        value["conditions"] = serde_json::Value::Null;
    }
    serde_json::json!({ "status": value })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::ReplicaSetSpec;

    fn replica_set(conditions: Option<Vec<ReplicaSetCondition>>) -> ReplicaSet {
        ReplicaSet {
            spec: Some(ReplicaSetSpec {
                replicas: Some(3),
                ..Default::default()
            }),
            status: Some(ReplicaSetStatus {
                conditions,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn failure(reason: &str, message: &str, second: i64) -> ReplicaSetCondition {
        ReplicaSetCondition {
            type_: REPLICA_FAILURE.into(),
            status: "True".into(),
            reason: Some(reason.into()),
            message: Some(message.into()),
            last_transition_time: Some(Time(jiff::Timestamp::from_second(second).unwrap())),
        }
    }

    fn failed(reason: &'static str, message: &str) -> Managed {
        Managed::Failed {
            reason,
            message: message.into(),
        }
    }

    /// Name, conditions before, how managing pods went, conditions after.
    type Case = (
        &'static str,
        Option<Vec<ReplicaSetCondition>>,
        Managed,
        Option<Vec<ReplicaSetCondition>>,
    );

    #[test]
    fn replica_failure_follows_how_managing_pods_went() {
        let now = jiff::Timestamp::from_second(200).unwrap();
        let earlier = failure("FailedCreate", "exceeded quota", 100);
        let fresh = failure("FailedCreate", "exceeded quota", 200);
        let cases: Vec<Case> = vec![
            (
                "a refusal adds it",
                None,
                failed("FailedCreate", "exceeded quota"),
                Some(vec![fresh]),
            ),
            (
                "a later refusal keeps the first",
                Some(vec![earlier.clone()]),
                failed("FailedDelete", "other"),
                Some(vec![earlier.clone()]),
            ),
            (
                "a clean pass removes it",
                Some(vec![earlier.clone()]),
                Managed::Succeeded,
                None,
            ),
            (
                "a skipped pass keeps it",
                Some(vec![earlier.clone()]),
                Managed::Skipped,
                Some(vec![earlier.clone()]),
            ),
            ("nothing to remove", None, Managed::Succeeded, None),
        ];
        for (name, before, managed, want) in cases {
            let status = compute_status(&replica_set(before), &[], &managed, now);
            assert_eq!(status.conditions, want, "{name}");
        }
    }

    #[test]
    fn a_removed_condition_is_cleared_by_the_status_patch() {
        let status = compute_status(
            &replica_set(Some(vec![failure("FailedCreate", "x", 1)])),
            &[],
            &Managed::Succeeded,
            jiff::Timestamp::from_second(2).unwrap(),
        );
        let patch = status_patch(&status);
        assert_eq!(patch["status"]["conditions"], serde_json::Value::Null);
        assert!(patch["status"]
            .as_object()
            .unwrap()
            .contains_key("conditions"));
    }
}
