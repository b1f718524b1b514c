//! The Deployment's status and its Progressing/Available conditions, computed
//! from its ReplicaSets as upstream's `syncRolloutStatus` does, in the wording
//! `kubectl rollout status` and `describe` expect, plus the ReplicaFailure
//! condition copied from its ReplicaSets. Pure: no I/O.

use std::time::Duration;

use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet, ReplicaSetCondition,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;

use super::counts;

fn condition<'a>(
    status: Option<&'a DeploymentStatus>,
    kind: &str,
) -> Option<&'a DeploymentCondition> {
    status?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == kind)
}

/// A condition, keeping lastTransitionTime when the status did not change.
fn set_condition(
    conditions: &mut Vec<DeploymentCondition>,
    kind: &str,
    status: &str,
    reason: &str,
    message: String,
    now: &Time,
) {
    let existing = conditions.iter().position(|c| c.type_ == kind);
    if let Some(i) = existing {
        let c = &mut conditions[i];
        if c.status == status
            && c.reason.as_deref() == Some(reason)
            && c.message.as_deref() == Some(message.as_str())
        {
            return;
        }
        let transition = if c.status == status {
            c.last_transition_time.clone()
        } else {
            Some(now.clone())
        };
        *c = DeploymentCondition {
            type_: kind.into(),
            status: status.into(),
            reason: Some(reason.into()),
            message: Some(message),
            last_update_time: Some(now.clone()),
            last_transition_time: transition,
        };
    } else {
        conditions.push(DeploymentCondition {
            type_: kind.into(),
            status: status.into(),
            reason: Some(reason.into()),
            message: Some(message),
            last_update_time: Some(now.clone()),
            last_transition_time: Some(now.clone()),
        });
    }
}

/// The condition type a ReplicaSet (and its Deployment) reports pod
/// creation or deletion failures under.
const REPLICA_FAILURE: &str = "ReplicaFailure";

/// The ReplicaFailure condition to show on the Deployment: the new
/// ReplicaSet's first, else any ReplicaSet's (upstream's `getReplicaFailures`).
fn replica_failure(new: Option<&ReplicaSet>, all: &[ReplicaSet]) -> Option<ReplicaSetCondition> {
    let failure = |rs: &ReplicaSet| {
        rs.status
            .as_ref()?
            .conditions
            .as_ref()?
            .iter()
            .find(|c| c.type_ == REPLICA_FAILURE)
            .cloned()
    };
    new.and_then(failure)
        .or_else(|| all.iter().find_map(failure))
}

/// Copies a ReplicaSet's ReplicaFailure condition onto the Deployment, or
/// removes the Deployment's when no ReplicaSet has one (upstream's
/// `syncRolloutStatus`). An existing condition with the same status and reason
/// is kept as it is, as upstream's `SetDeploymentCondition` does.
fn sync_replica_failure(
    conditions: &mut Vec<DeploymentCondition>,
    failure: Option<ReplicaSetCondition>,
) {
    let Some(failure) = failure else {
        conditions.retain(|c| c.type_ != REPLICA_FAILURE);
        return;
    };
    let existing = conditions.iter().position(|c| c.type_ == REPLICA_FAILURE);
    let mut copied = DeploymentCondition {
        type_: REPLICA_FAILURE.into(),
        status: failure.status,
        reason: failure.reason,
        message: failure.message,
        last_update_time: failure.last_transition_time.clone(),
        last_transition_time: failure.last_transition_time,
    };
    match existing.map(|i| &mut conditions[i]) {
        Some(c) if c.status == copied.status && c.reason == copied.reason => {}
        Some(c) => {
            if c.status == copied.status {
                copied.last_transition_time = c.last_transition_time.clone();
            }
            *c = copied;
        }
        None => conditions.push(copied),
    }
}

/// The Deployment's status from its ReplicaSets; returns it and, while a
/// progress deadline runs, when to look again.
pub(super) fn compute_status(
    d: &Deployment,
    new: Option<&ReplicaSet>,
    all: &[ReplicaSet],
    max_unavailable: i32,
    created_new: bool,
) -> (DeploymentStatus, Option<Duration>) {
    let spec = d.spec.clone().unwrap_or_default();
    let replicas = spec.replicas.unwrap_or(1);
    let sum = |f: &dyn Fn(&ReplicaSet) -> i32| all.iter().map(f).sum::<i32>();
    let current = sum(&|rs| counts(rs).current);
    let ready = sum(&|rs| {
        rs.status
            .as_ref()
            .and_then(|s| s.ready_replicas)
            .unwrap_or(0)
    });
    let available = sum(&|rs| counts(rs).available);
    let updated = new.map(|rs| counts(rs).current).unwrap_or(0);
    let old = d.status.as_ref();
    let mut conditions = old.and_then(|s| s.conditions.clone()).unwrap_or_default();
    let now = Time(jiff::Timestamp::now());
    if available >= replicas - max_unavailable {
        set_condition(
            &mut conditions,
            "Available",
            "True",
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.".into(),
            &now,
        );
    } else {
        set_condition(
            &mut conditions,
            "Available",
            "False",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.".into(),
            &now,
        );
    }
    let new_name = new.map(|rs| rs.name_any()).unwrap_or_default();
    let mut recheck = None;
    let progressing = condition(old, "Progressing").cloned();
    if spec.paused == Some(true) {
        set_condition(
            &mut conditions,
            "Progressing",
            "Unknown",
            "DeploymentPaused",
            "Deployment is paused".into(),
            &now,
        );
    } else if progressing.as_ref().and_then(|c| c.reason.as_deref()) == Some("DeploymentPaused") {
        set_condition(
            &mut conditions,
            "Progressing",
            "Unknown",
            "DeploymentResumed",
            "Deployment is resumed".into(),
            &now,
        );
    }
    let complete =
        updated == replicas && current == replicas && available == replicas && new.is_some();
    let old_progress = (
        old.and_then(|s| s.updated_replicas).unwrap_or(0),
        old.and_then(|s| s.ready_replicas).unwrap_or(0),
        old.and_then(|s| s.available_replicas).unwrap_or(0),
        old.and_then(|s| s.replicas).unwrap_or(0),
    );
    let moved = updated > old_progress.0
        || ready > old_progress.1
        || available > old_progress.2
        || current < old_progress.3;
    if spec.paused != Some(true) {
        let progressing = condition(
            Some(&DeploymentStatus {
                conditions: Some(conditions.clone()),
                ..Default::default()
            }),
            "Progressing",
        )
        .cloned();
        if complete {
            set_condition(
                &mut conditions,
                "Progressing",
                "True",
                "NewReplicaSetAvailable",
                format!("ReplicaSet \"{new_name}\" has successfully progressed."),
                &now,
            );
        } else if created_new {
            set_condition(
                &mut conditions,
                "Progressing",
                "True",
                "NewReplicaSetCreated",
                format!("Created new replica set \"{new_name}\""),
                &now,
            );
        } else if progressing.is_none() && new.is_some() {
            set_condition(
                &mut conditions,
                "Progressing",
                "True",
                "FoundNewReplicaSet",
                format!("Found new replica set \"{new_name}\""),
                &now,
            );
        } else if moved
            || progressing.as_ref().and_then(|c| c.reason.as_deref())
                == Some("NewReplicaSetAvailable")
            || progressing.as_ref().and_then(|c| c.reason.as_deref()) == Some("DeploymentResumed")
        {
            // Progress (or the start of a new rollout) restarts the deadline.
            let message = format!("ReplicaSet \"{new_name}\" is progressing.");
            set_condition(
                &mut conditions,
                "Progressing",
                "True",
                "ReplicaSetUpdated",
                message.clone(),
                &now,
            );
            if let Some(c) = conditions.iter_mut().find(|c| c.type_ == "Progressing") {
                c.last_update_time = Some(now.clone());
            }
        }
        if let (Some(deadline), false) = (spec.progress_deadline_seconds, complete) {
            let c = conditions
                .iter()
                .find(|c| c.type_ == "Progressing")
                .cloned();
            if let Some(c) = c.filter(|c| c.reason.as_deref() != Some("ProgressDeadlineExceeded")) {
                let since = c.last_update_time.map(|t| t.0).unwrap_or(now.0);
                let due = since + jiff::SignedDuration::from_secs(i64::from(deadline));
                if due <= now.0 {
                    set_condition(
                        &mut conditions,
                        "Progressing",
                        "False",
                        "ProgressDeadlineExceeded",
                        format!("ReplicaSet \"{new_name}\" has timed out progressing."),
                        &now,
                    );
                } else {
                    let left = due.duration_since(now.0).as_secs_f64().max(1.0);
                    recheck = Some(Duration::from_secs_f64(left));
                }
            }
        }
    }
    sync_replica_failure(&mut conditions, replica_failure(new, all));
    let status = DeploymentStatus {
        observed_generation: d.metadata.generation,
        replicas: Some(current),
        updated_replicas: Some(updated),
        ready_replicas: Some(ready),
        available_replicas: Some(available),
        unavailable_replicas: Some((replicas - available).max(0)),
        collision_count: old.and_then(|s| s.collision_count),
        conditions: Some(conditions),
        terminating_replicas: None,
    };
    (status, recheck)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::{DeploymentSpec, ReplicaSetSpec, ReplicaSetStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn at(seconds: i64) -> Time {
        Time(jiff::Timestamp::from_second(seconds).unwrap())
    }

    fn deployment(conditions: Vec<DeploymentCondition>) -> Deployment {
        Deployment {
            metadata: ObjectMeta {
                name: Some("web".into()),
                ..Default::default()
            },
            spec: Some(DeploymentSpec {
                replicas: Some(3),
                ..Default::default()
            }),
            status: Some(DeploymentStatus {
                conditions: Some(conditions),
                ..Default::default()
            }),
        }
    }

    fn replica_set(name: &str, failure: Option<(&str, &str)>) -> ReplicaSet {
        ReplicaSet {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            spec: Some(ReplicaSetSpec {
                replicas: Some(3),
                ..Default::default()
            }),
            status: Some(ReplicaSetStatus {
                replicas: 1,
                conditions: failure.map(|(reason, message)| {
                    vec![ReplicaSetCondition {
                        type_: REPLICA_FAILURE.into(),
                        status: "True".into(),
                        reason: Some(reason.into()),
                        message: Some(message.into()),
                        last_transition_time: Some(at(100)),
                    }]
                }),
                ..Default::default()
            }),
        }
    }

    fn failure_of(status: &DeploymentStatus) -> Option<DeploymentCondition> {
        status
            .conditions
            .as_ref()?
            .iter()
            .find(|c| c.type_ == REPLICA_FAILURE)
            .cloned()
    }

    #[test]
    fn the_new_replica_sets_failure_is_copied_onto_the_deployment() {
        let old = replica_set("web-old", Some(("FailedDelete", "old trouble")));
        let new = replica_set("web-new", Some(("FailedCreate", "quota exceeded")));
        let all = [old.clone(), new.clone()];
        let (status, _) = compute_status(&deployment(vec![]), Some(&new), &all, 1, false);
        let c = failure_of(&status).expect("copied");
        assert_eq!(
            (c.status.as_str(), c.reason.as_deref(), c.message.as_deref()),
            ("True", Some("FailedCreate"), Some("quota exceeded"))
        );
        assert_eq!(c.last_transition_time, Some(at(100)));
        assert_eq!(c.last_update_time, Some(at(100)));

        // Without one on the new ReplicaSet, an old one's is shown.
        let healthy = replica_set("web-new", None);
        let all = [old, healthy.clone()];
        let (status, _) = compute_status(&deployment(vec![]), Some(&healthy), &all, 1, false);
        assert_eq!(
            failure_of(&status).and_then(|c| c.reason),
            Some("FailedDelete".into())
        );
    }

    #[test]
    fn the_deployments_failure_goes_once_no_replica_set_has_one() {
        let stale = DeploymentCondition {
            type_: REPLICA_FAILURE.into(),
            status: "True".into(),
            reason: Some("FailedCreate".into()),
            message: Some("quota exceeded".into()),
            last_update_time: Some(at(50)),
            last_transition_time: Some(at(50)),
        };
        let new = replica_set("web-new", None);
        let (status, _) = compute_status(
            &deployment(vec![stale.clone()]),
            Some(&new),
            std::slice::from_ref(&new),
            1,
            false,
        );
        assert_eq!(failure_of(&status), None);

        // Same status and reason: the condition is left as it was.
        let failing = replica_set("web-new", Some(("FailedCreate", "another message")));
        let (status, _) = compute_status(
            &deployment(vec![stale.clone()]),
            Some(&failing),
            std::slice::from_ref(&failing),
            1,
            false,
        );
        assert_eq!(failure_of(&status), Some(stale));
    }
}
