//! The decisions of upstream's `registry/core/pod/storage/eviction.go`, as
//! plain functions: when budgets do not apply to a pod, which budgets cover
//! it, what an unready pod may do, and the check-and-decrement of a budget
//! with the exact refusals (429 with upstream's message and a
//! `DisruptionBudget` cause). No I/O: the caller reads and writes.

use std::collections::BTreeMap;

use berth_api::kinds::policy::disruption::{
    selects, update_disruption_allowed_condition, ALWAYS_ALLOW, DISRUPTION_BUDGET_CAUSE,
};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde_json::Value;

use crate::apiserver::errors::{ApiError, Target};

/// Upstream's message of every budget refusal.
pub const VIOLATES_BUDGET: &str =
    "Cannot evict pod as it would violate the pod's disruption budget.";
/// Upstream's message when several budgets cover the pod (answered with code 500).
pub const MORE_THAN_ONE_BUDGET: &str =
    "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.";
/// How many unconfirmed evictions a budget may record (`MaxDisruptedPodSize`).
pub const MAX_DISRUPTED_PODS: usize = 2000;

fn phase(pod: &Value) -> &str {
    pod.pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn terminating(pod: &Value) -> bool {
    pod.pointer("/metadata/deletionTimestamp")
        .is_some_and(|t| !t.is_null())
}

/// Whether the pod may be deleted without consulting any budget: it has
/// finished, never started (Pending) or is already being deleted.
pub fn can_ignore_budgets(pod: &Value) -> bool {
    matches!(phase(pod), "Succeeded" | "Failed" | "Pending") || terminating(pod)
}

/// Whether the deletion must be pinned to the pod's resourceVersion so the
/// pod cannot turn ready (and guarded) between the check and the delete.
pub fn should_enforce_resource_version(pod: &Value) -> bool {
    !(matches!(phase(pod), "Succeeded" | "Failed") || terminating(pod))
}

/// Whether the pod's Ready condition is True (upstream's `IsPodReady`).
pub fn pod_is_ready(pod: &Value) -> bool {
    pod.pointer("/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True")
}

/// The budgets among `budgets` (one namespace's) that cover `pod`.
pub fn covering(pod: &Value, budgets: Vec<PodDisruptionBudget>) -> Vec<PodDisruptionBudget> {
    let labels: BTreeMap<String, String> = pod
        .pointer("/metadata/labels")
        .cloned()
        .and_then(|l| serde_json::from_value(l).ok())
        .unwrap_or_default();
    let namespace = pod.pointer("/metadata/namespace").and_then(Value::as_str);
    budgets
        .into_iter()
        .filter(|b| b.metadata.namespace.as_deref() == namespace)
        .filter(|b| selects(b, Some(&labels)))
        .collect()
}

/// What an eviction of an unready pod may do under its budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unready {
    /// Delete it without spending the budget (pinned to its resourceVersion):
    /// policy `AlwaysAllow`, or the guarded application is healthy enough.
    DeleteUnguarded,
    /// Only if the budget allows a disruption, as for a ready pod.
    CheckBudget,
}

/// The `unhealthyPodEvictionPolicy` verdict for an unready pod: `AlwaysAllow`
/// lets it go; the default `IfHealthyBudget` only while
/// `currentHealthy >= desiredHealthy > 0`.
pub fn unready_verdict(pdb: &PodDisruptionBudget) -> Unready {
    let policy = pdb
        .spec
        .as_ref()
        .and_then(|s| s.unhealthy_pod_eviction_policy.as_deref());
    if policy == Some(ALWAYS_ALLOW) {
        return Unready::DeleteUnguarded;
    }
    let status = pdb.status.clone().unwrap_or_default();
    if status.current_healthy >= status.desired_healthy && status.desired_healthy > 0 {
        Unready::DeleteUnguarded
    } else {
        Unready::CheckBudget
    }
}

/// The 429 of a budget whose status the controller has not caught up with.
pub fn still_processing(pdb_name: &str) -> ApiError {
    ApiError::TooManyRequests(
        VIOLATES_BUDGET.into(),
        vec![(
            DISRUPTION_BUDGET_CAUSE,
            format!("The disruption budget {pdb_name} is still being processed by the server."),
        )],
    )
}

fn budget_target(name: &str) -> Target {
    Target {
        group: "policy".into(),
        resource: "poddisruptionbudget".into(),
        kind: "PodDisruptionBudget".into(),
        name: name.into(),
    }
}

/// Checks that `pdb` allows one more disruption and spends it: the budget to
/// write back (one fewer allowed disruption, the pod recorded under
/// `disruptedPods` at `now`), or `None` for a dry run, which writes nothing.
pub fn check_and_decrement(
    mut pdb: PodDisruptionBudget,
    pod_name: &str,
    dry_run: bool,
    now: jiff::Timestamp,
) -> Result<Option<PodDisruptionBudget>, ApiError> {
    let name = pdb.metadata.name.clone().unwrap_or_default();
    let status = pdb.status.clone().unwrap_or_default();
    if status.observed_generation.unwrap_or(0) < pdb.metadata.generation.unwrap_or(0) {
        return Err(still_processing(&name));
    }
    if status.disruptions_allowed < 0 {
        return Err(ApiError::forbidden(
            &budget_target(&name),
            "pdb disruptions allowed is negative",
        ));
    }
    if status.disrupted_pods.as_ref().map_or(0, BTreeMap::len) > MAX_DISRUPTED_PODS {
        return Err(ApiError::forbidden(
            &budget_target(&name),
            "DisruptedPods map too big - too many evictions not confirmed by PDB controller",
        ));
    }
    if status.disruptions_allowed == 0 {
        return Err(ApiError::TooManyRequests(
            VIOLATES_BUDGET.into(),
            vec![(
                DISRUPTION_BUDGET_CAUSE,
                format!(
                    "The disruption budget {name} needs {} healthy pods and has {} currently",
                    status.desired_healthy, status.current_healthy
                ),
            )],
        ));
    }
    let next = pdb.status.get_or_insert_with(Default::default);
    next.disruptions_allowed -= 1;
    if next.disruptions_allowed == 0 {
        update_disruption_allowed_condition(&mut pdb, Time(now));
    }
    if dry_run {
        return Ok(None);
    }
    pdb.status
        .get_or_insert_with(Default::default)
        .disrupted_pods
        .get_or_insert_with(BTreeMap::new)
        .insert(pod_name.to_owned(), Time(now));
    Ok(Some(pdb))
}

#[cfg(test)]
mod tests;
