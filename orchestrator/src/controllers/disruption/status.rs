//! The arithmetic of a PodDisruptionBudget's status, as upstream's disruption
//! controller does it: expected pods (from the pods' controllers' scale when a
//! percentage or `maxUnavailable` needs it), desired and current healthy pods,
//! the disrupted-pods map and its two-minute expiry, and the status to write.
//! Pure: the workloads are read through [`Workloads`], time is passed in.

use std::collections::BTreeMap;

use berth_api::kinds::policy::disruption::{
    conditions_are_up_to_date, set_status_condition, update_disruption_allowed_condition,
    DELETION_TIMEOUT, DISRUPTION_ALLOWED, SYNC_FAILED,
};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{Pod, ReplicationController};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, ObjectMeta, OwnerReference, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::controllers::workload::{controller_of, pod_is_ready};

/// The workload objects a pod's controller reference may point at, looked up
/// by namespace and name (the controller's caches; a table in tests).
pub trait Workloads {
    /// The ReplicaSet `namespace/name`.
    fn replica_set(&self, namespace: &str, name: &str) -> Option<ReplicaSet>;
    /// The Deployment `namespace/name`.
    fn deployment(&self, namespace: &str, name: &str) -> Option<Deployment>;
    /// The StatefulSet `namespace/name`.
    fn stateful_set(&self, namespace: &str, name: &str) -> Option<StatefulSet>;
    /// The ReplicationController `namespace/name`.
    fn replication_controller(&self, namespace: &str, name: &str) -> Option<ReplicationController>;
}

/// Why a budget's status could not be computed; its text becomes the
/// `SyncFailed` condition's message, as upstream's error does.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyncError {
    /// A selected pod's controller is none of the kinds with a known scale.
    #[error("found no controllers for pod {0:?}")]
    NoController(String),
    /// A controller reference whose apiVersion does not parse.
    #[error("{0}")]
    BadApiVersion(String),
    /// `minAvailable`/`maxUnavailable` is a string that is not a percentage.
    #[error("invalid value for IntOrString: invalid value {0:?}")]
    BadIntOrPercent(String),
}

/// What one pass over a budget found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Computed {
    /// Ready pods, not being deleted and not recently evicted.
    pub current_healthy: i32,
    /// How many healthy pods the budget requires.
    pub desired_healthy: i32,
    /// The pods the budget counts against (its pods, or its controllers' scale).
    pub expected_pods: i32,
    /// Evicted pods still within [`DELETION_TIMEOUT`] and not yet being deleted.
    pub disrupted_pods: BTreeMap<String, Time>,
    /// When the earliest of those entries expires: the budget is synced again then.
    pub recheck_at: Option<jiff::Timestamp>,
    /// Selected pods without a controller (they make percentages undefined).
    pub unmanaged_pods: Vec<String>,
    /// Evicted pods that were not deleted within [`DELETION_TIMEOUT`].
    pub not_deleted: Vec<String>,
}

/// Upstream's `GetScaledValueFromIntOrPercent(value, total, roundUp=true)`.
pub fn scaled_value(value: &IntOrString, total: i32) -> Result<i32, SyncError> {
    match value {
        IntOrString::Int(n) => Ok(*n),
        IntOrString::String(s) => {
            let percent: i64 = s
                .strip_suffix('%')
                .and_then(|p| p.parse().ok())
                .ok_or_else(|| SyncError::BadIntOrPercent(s.clone()))?;
            let scaled = (percent * i64::from(total) + 99).div_euclid(100);
            Ok(i32::try_from(scaled).unwrap_or(i32::MAX))
        }
    }
}

/// The group of an `apiVersion` (`apps/v1` → `apps`, `v1` → ``).
fn group_of(api_version: &str) -> Result<&str, SyncError> {
    match api_version.split('/').collect::<Vec<_>>().as_slice() {
        [_] => Ok(""),
        [group, _] => Ok(group),
        _ => Err(SyncError::BadApiVersion(format!(
            "unexpected GroupVersion string: {api_version}"
        ))),
    }
}

/// Whether the reference names `kind` in one of `groups` (upstream's `verifyGroupKind`).
fn is_kind(reference: &OwnerReference, kind: &str, groups: &[&str]) -> Result<bool, SyncError> {
    let group = group_of(&reference.api_version)?;
    Ok(reference.kind == kind && groups.contains(&group))
}

/// `(uid, replicas)` of a controller found by name, if it is the one the
/// reference means (same uid); unset replicas default to 1.
fn scale_if_same(
    reference: &OwnerReference,
    meta: &ObjectMeta,
    replicas: Option<i32>,
) -> Option<(String, i32)> {
    (meta.uid.as_deref() == Some(reference.uid.as_str()))
        .then(|| (reference.uid.clone(), replicas.unwrap_or(1)))
}

/// The controller (uid) behind a pod's controller reference and its desired
/// scale, trying upstream's finders in order: a ReplicaSet not owned by a
/// Deployment, the Deployment owning a ReplicaSet, a ReplicationController, a
/// StatefulSet. `None` when no finder knows it.
pub fn controller_scale(
    reference: &OwnerReference,
    namespace: &str,
    workloads: &impl Workloads,
) -> Result<Option<(String, i32)>, SyncError> {
    if is_kind(reference, "ReplicaSet", &["apps", "extensions"])? {
        let Some(rs) = workloads.replica_set(namespace, &reference.name) else {
            return Ok(None);
        };
        return match controller_of(&rs.metadata) {
            _ if rs.metadata.uid.as_deref() != Some(reference.uid.as_str()) => Ok(None),
            Some(owner) if owner.kind == "Deployment" => {
                if !is_kind(owner, "Deployment", &["apps", "extensions"])? {
                    return Ok(None);
                }
                let deployment = workloads.deployment(namespace, &owner.name);
                Ok(deployment.and_then(|d| {
                    scale_if_same(owner, &d.metadata, d.spec.and_then(|s| s.replicas))
                }))
            }
            _ => Ok(scale_if_same(
                reference,
                &rs.metadata,
                rs.spec.as_ref().and_then(|s| s.replicas),
            )),
        };
    }
    if is_kind(reference, "ReplicationController", &[""])? {
        let rc = workloads.replication_controller(namespace, &reference.name);
        return Ok(rc.and_then(|rc| {
            scale_if_same(reference, &rc.metadata, rc.spec.and_then(|s| s.replicas))
        }));
    }
    if is_kind(reference, "StatefulSet", &["apps"])? {
        let sts = workloads.stateful_set(namespace, &reference.name);
        return Ok(sts.and_then(|sts| {
            scale_if_same(reference, &sts.metadata, sts.spec.and_then(|s| s.replicas))
        }));
    }
    Ok(None)
}

/// The sum of the scales of the pods' controllers, each counted once, and
/// the pods without a controller (upstream's `getExpectedScale`).
fn expected_scale(
    pods: &[&Pod],
    workloads: &impl Workloads,
) -> Result<(i32, Vec<String>), SyncError> {
    let mut scales: BTreeMap<String, i32> = BTreeMap::new();
    let mut seen_references: BTreeMap<String, ()> = BTreeMap::new();
    let mut unmanaged = Vec::new();
    for pod in pods {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let Some(reference) = controller_of(&pod.metadata) else {
            unmanaged.push(name);
            continue;
        };
        if seen_references.insert(reference.uid.clone(), ()).is_some() {
            continue;
        }
        let namespace = pod.metadata.namespace.as_deref().unwrap_or_default();
        match controller_scale(reference, namespace, workloads)? {
            Some((uid, scale)) => {
                scales.insert(uid, scale);
            }
            None => return Err(SyncError::NoController(name)),
        }
    }
    Ok((scales.values().sum(), unmanaged))
}

/// `(expectedPods, desiredHealthy, unmanaged pods)` for `pdb` over its pods
/// (upstream's `getExpectedPodCount`): an integer `minAvailable` counts the
/// pods themselves; a percentage or `maxUnavailable` the controllers' scale.
pub fn expected_pod_count(
    pdb: &PodDisruptionBudget,
    pods: &[&Pod],
    workloads: &impl Workloads,
) -> Result<(i32, i32, Vec<String>), SyncError> {
    let spec = pdb.spec.as_ref();
    if let Some(max) = spec.and_then(|s| s.max_unavailable.as_ref()) {
        let (expected, unmanaged) = expected_scale(pods, workloads)?;
        let max = scaled_value(max, expected)?;
        return Ok((expected, (expected - max).max(0), unmanaged));
    }
    match spec.and_then(|s| s.min_available.as_ref()) {
        Some(IntOrString::Int(n)) => Ok((len_i32(pods.len()), *n, Vec::new())),
        Some(percent @ IntOrString::String(_)) => {
            let (expected, unmanaged) = expected_scale(pods, workloads)?;
            Ok((expected, scaled_value(percent, expected)?, unmanaged))
        }
        None => Ok((0, 0, Vec::new())),
    }
}

fn len_i32(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// The entries of `status.disruptedPods` still in force at `now` (pods not
/// yet being deleted and evicted less than [`DELETION_TIMEOUT`] ago), when the
/// earliest of them lapses, and the pods whose entries lapsed.
pub fn disrupted_pods(
    pdb: &PodDisruptionBudget,
    pods: &[&Pod],
    now: jiff::Timestamp,
) -> (BTreeMap<String, Time>, Option<jiff::Timestamp>, Vec<String>) {
    let mut kept = BTreeMap::new();
    let mut recheck: Option<jiff::Timestamp> = None;
    let mut lapsed = Vec::new();
    let Some(recorded) = pdb.status.as_ref().and_then(|s| s.disrupted_pods.as_ref()) else {
        return (kept, recheck, lapsed);
    };
    for pod in pods {
        if pod.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let name = pod.metadata.name.clone().unwrap_or_default();
        let Some(at) = recorded.get(&name) else {
            continue;
        };
        let expected_deletion = at.0 + DELETION_TIMEOUT;
        if expected_deletion < now {
            lapsed.push(name);
        } else {
            recheck = Some(recheck.map_or(expected_deletion, |r| r.min(expected_deletion)));
            kept.insert(name, at.clone());
        }
    }
    (kept, recheck, lapsed)
}

/// Ready pods that are neither being deleted nor recently evicted.
pub fn count_healthy(
    pods: &[&Pod],
    disrupted: &BTreeMap<String, Time>,
    now: jiff::Timestamp,
) -> i32 {
    let healthy = pods.iter().filter(|pod| {
        if pod.metadata.deletion_timestamp.is_some() {
            return false;
        }
        let name = pod.metadata.name.as_deref().unwrap_or_default();
        if disrupted
            .get(name)
            .is_some_and(|at| at.0 + DELETION_TIMEOUT > now)
        {
            return false;
        }
        pod_is_ready(pod)
    });
    len_i32(healthy.count())
}

/// One full computation over a budget's selected pods (upstream's `trySync`
/// up to the status update).
pub fn compute(
    pdb: &PodDisruptionBudget,
    pods: &[&Pod],
    workloads: &impl Workloads,
    now: jiff::Timestamp,
) -> Result<Computed, SyncError> {
    let (expected_pods, desired_healthy, unmanaged_pods) =
        expected_pod_count(pdb, pods, workloads)?;
    let (disrupted_pods, recheck_at, not_deleted) = disrupted_pods(pdb, pods, now);
    let current_healthy = count_healthy(pods, &disrupted_pods, now);
    Ok(Computed {
        current_healthy,
        desired_healthy,
        expected_pods,
        disrupted_pods,
        recheck_at,
        unmanaged_pods,
        not_deleted,
    })
}

/// The budget with its new status, or `None` when the stored status already
/// says it all (upstream's `updatePdbStatus`). No disruption is allowed while
/// no pod is expected, so a budget whose pods appear before its first sync is safe.
pub fn with_status(
    pdb: &PodDisruptionBudget,
    computed: &Computed,
    now: jiff::Timestamp,
) -> Option<PodDisruptionBudget> {
    let mut allowed = computed.current_healthy - computed.desired_healthy;
    if computed.expected_pods <= 0 || allowed <= 0 {
        allowed = 0;
    }
    let old = pdb.status.clone().unwrap_or_default();
    let old_disrupted = old.disrupted_pods.clone().unwrap_or_default();
    if old.current_healthy == computed.current_healthy
        && old.desired_healthy == computed.desired_healthy
        && old.expected_pods == computed.expected_pods
        && old.disruptions_allowed == allowed
        && old_disrupted == computed.disrupted_pods
        && old.observed_generation == pdb.metadata.generation
        && conditions_are_up_to_date(pdb)
    {
        return None;
    }
    let mut next = pdb.clone();
    next.status = Some(PodDisruptionBudgetStatus {
        current_healthy: computed.current_healthy,
        desired_healthy: computed.desired_healthy,
        expected_pods: computed.expected_pods,
        disruptions_allowed: allowed,
        disrupted_pods: Some(computed.disrupted_pods.clone()),
        observed_generation: pdb.metadata.generation,
        conditions: old.conditions,
    });
    update_disruption_allowed_condition(&mut next, Time(now));
    Some(next)
}

/// The budget after a failed sync (upstream's `failSafe`): no disruptions
/// allowed and `DisruptionAllowed=False` with reason SyncFailed and the error,
/// so the eviction handler refuses while the status cannot be trusted.
pub fn fail_safe(
    pdb: &PodDisruptionBudget,
    error: &SyncError,
    now: jiff::Timestamp,
) -> PodDisruptionBudget {
    let mut next = pdb.clone();
    let status = next.status.get_or_insert_with(Default::default);
    status.disruptions_allowed = 0;
    let condition = Condition {
        type_: DISRUPTION_ALLOWED.into(),
        status: "False".into(),
        reason: SYNC_FAILED.into(),
        message: error.to_string(),
        observed_generation: status.observed_generation,
        last_transition_time: Time(now),
    };
    set_status_condition(
        status.conditions.get_or_insert_with(Vec::new),
        condition,
        Time(now),
    );
    next
}

#[cfg(test)]
mod tests;
