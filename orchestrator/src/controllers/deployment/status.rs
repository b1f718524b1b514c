//! The Deployment's status and its Progressing/Available conditions, computed
//! from its ReplicaSets as upstream's `syncRolloutStatus` does, in the wording
//! `kubectl rollout status` and `describe` expect. Pure: no I/O.

use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet};
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
