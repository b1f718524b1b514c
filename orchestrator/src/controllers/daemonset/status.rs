//! A DaemonSet's status from its nodes and pods (upstream's
//! `updateDaemonSetStatus`): desired, current, misscheduled, ready, available,
//! updated and unavailable counts, judged on each node's oldest pod, as
//! `kubectl get ds` and `kubectl rollout status` read them. Pure: no I/O.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{DaemonSet, DaemonSetStatus};

use super::manage::{oldest_first, NodePods};
use super::placement::{pod_is_updated, Fit};
use crate::controllers::workload::{pod_is_available, pod_is_ready};

/// The status of `ds` given each node's fit and the pods per node;
/// `observed` says whether this pass acted on the current generation.
pub fn compute_status(
    ds: &DaemonSet,
    nodes: &BTreeMap<String, Fit>,
    pods: &NodePods,
    hash: &str,
    observed: bool,
    now: jiff::Timestamp,
) -> DaemonSetStatus {
    let previous = ds.status.clone().unwrap_or_default();
    let min_ready = ds
        .spec
        .as_ref()
        .and_then(|s| s.min_ready_seconds)
        .unwrap_or(0);
    let generation = super::placement::template_generation(ds);
    let mut status = DaemonSetStatus {
        collision_count: previous.collision_count,
        conditions: previous.conditions.clone(),
        observed_generation: if observed {
            ds.metadata.generation
        } else {
            previous.observed_generation
        },
        ..Default::default()
    };
    let none = Vec::new();
    for (node, fit) in nodes {
        let mut on_node = pods.get(node).unwrap_or(&none).clone();
        if !fit.should_run {
            if !on_node.is_empty() {
                status.number_misscheduled += 1;
            }
            continue;
        }
        status.desired_number_scheduled += 1;
        if on_node.is_empty() {
            continue;
        }
        status.current_number_scheduled += 1;
        oldest_first(&mut on_node);
        let pod = on_node[0];
        if pod_is_ready(pod) {
            status.number_ready += 1;
            if pod_is_available(pod, min_ready, now) {
                *status.number_available.get_or_insert(0) += 1;
            }
        }
        if pod_is_updated(pod, hash, generation.as_deref()) {
            *status.updated_number_scheduled.get_or_insert(0) += 1;
        }
    }
    let available = status.number_available.unwrap_or(0);
    status.number_unavailable =
        Some(status.desired_number_scheduled - available).filter(|n| *n != 0);
    status.number_available = status.number_available.filter(|n| *n != 0);
    status.updated_number_scheduled = status.updated_number_scheduled.filter(|n| *n != 0);
    status
}

/// A merge patch writing `status` whole (fields that went to zero are
/// removed, as upstream's omitempty leaves them out).
pub fn status_patch(status: &DaemonSetStatus) -> serde_json::Value {
    let mut value = serde_json::to_value(status).unwrap_or_default();
    for optional in [
        "numberAvailable",
        "numberUnavailable",
        "updatedNumberScheduled",
        "observedGeneration",
        "collisionCount",
        "conditions",
    ] {
        if value.get(optional).is_none() {
            value[optional] = serde_json::Value::Null;
        }
    }
    serde_json::json!({ "status": value })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Pod;
    use serde_json::json;

    fn pod(hash: &str, ready: bool) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "p", "labels": {"controller-revision-hash": hash}},
            "status": {"conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" },
                "lastTransitionTime": "2026-01-01T00:00:00Z"}]}
        }))
        .unwrap()
    }

    #[test]
    fn counts_per_node_as_upstream() {
        let ds: DaemonSet = serde_json::from_value(json!({
            "metadata": {"name": "d", "generation": 4},
            "spec": {"selector": {}, "template": {}, "minReadySeconds": 0},
            "status": {"observedGeneration": 3, "collisionCount": 1,
                "currentNumberScheduled": 0, "desiredNumberScheduled": 0,
                "numberMisscheduled": 0, "numberReady": 0}
        }))
        .unwrap();
        let fits = |run| Fit::new(run, run);
        let nodes = BTreeMap::from([
            ("a".to_string(), fits(true)),
            ("b".to_string(), fits(true)),
            ("c".to_string(), fits(true)),
            ("d".to_string(), fits(false)),
        ]);
        let (new_ready, old_unready, stray) = (pod("h", true), pod("g", false), pod("h", true));
        let pods = NodePods::from([
            ("a".to_string(), vec![&new_ready]),
            ("b".to_string(), vec![&old_unready]),
            ("d".to_string(), vec![&stray]),
        ]);
        let now = "2026-01-01T01:00:00Z".parse().unwrap();
        let status = compute_status(&ds, &nodes, &pods, "h", true, now);
        assert_eq!(
            (
                status.desired_number_scheduled,
                status.current_number_scheduled,
                status.number_misscheduled,
                status.number_ready,
                status.number_available,
                status.updated_number_scheduled,
                status.number_unavailable,
                status.observed_generation,
                status.collision_count,
            ),
            (3, 2, 1, 1, Some(1), Some(1), Some(2), Some(4), Some(1))
        );
        let unobserved = compute_status(&ds, &nodes, &pods, "h", false, now);
        assert_eq!(unobserved.observed_generation, Some(3));
        let patch = status_patch(&unobserved);
        assert_eq!(patch["status"]["conditions"], serde_json::Value::Null);
        assert_eq!(patch["status"]["numberUnavailable"], json!(2));
    }
}
