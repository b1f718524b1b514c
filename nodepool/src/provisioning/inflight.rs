//! The capacity a decision starts from: every machine a claim stands for
//! (booting or Ready) with the room its bound pods leave, and every
//! autoscaled pool with how many machines it may still add. A claim whose
//! node is not yet Initialized (not Ready, startup taints left, or GPUs not
//! yet advertised) counts with its template's capacity: it is coming, so
//! the pods it will take are not provisioned for twice while it boots.

use std::sync::Arc;

use berth_api::nodeclaim::NodeClaim;
use berth_api::nodepool::NodePool;
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Pod, PodSpec};
use kube::ResourceExt;

use super::binpack::{Candidate, Existing};
use super::fit::{fits, machine_capacity, pod_requests, subtract, Shape};
use crate::claim::INITIALIZED;
use crate::conditions;
use crate::constraints::Constraints;
use crate::plan::machines_within_limits;

/// The machines of `claims` not being removed, with what `pods` bound to
/// them leave free.
pub fn existing(claims: &[NodeClaim], pods: &[Arc<Pod>]) -> Vec<Existing> {
    claims
        .iter()
        .filter(|c| c.metadata.deletion_timestamp.is_none())
        .map(|claim| {
            let status = claim.status.clone().unwrap_or_default();
            let node = status.node_name.clone().unwrap_or_else(|| claim.name_any());
            let mut shape = Shape::of_claim(claim);
            let initialized = conditions::is_true(&status.conditions, INITIALIZED);
            if initialized && !status.allocatable.is_empty() {
                shape.capacity = machine_capacity(&status.allocatable);
            }
            let mut free = shape.capacity.clone();
            let mut labels = Vec::new();
            for pod in pods.iter().filter(|p| bound_to(p, &node)) {
                if let Some(spec) = &pod.spec {
                    subtract(&mut free, &pod_requests(spec));
                }
                labels.push(pod.labels().clone());
            }
            Existing {
                claim: claim.name_any(),
                shape,
                free,
                pods: labels,
            }
        })
        .collect()
}

/// Whether `pod` holds room on `node`: bound there and not finished.
fn bound_to(pod: &Pod, node: &str) -> bool {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node)
        && !matches!(phase, Some("Succeeded" | "Failed"))
}

/// The autoscaled pools (no `replicas`, not being deleted) and how many
/// machines each may add given its live `claims`.
pub fn candidates(pools: &[NodePool], claims: &[NodeClaim]) -> Vec<Candidate> {
    pools
        .iter()
        .filter(|p| p.spec.replicas.is_none() && p.metadata.deletion_timestamp.is_none())
        .map(|pool| {
            let name = pool.name_any();
            let live = claims
                .iter()
                .filter(|c| c.spec.pool == name && c.metadata.deletion_timestamp.is_none())
                .count();
            let (room, limit) = room(pool, live);
            Candidate {
                pool: name,
                shape: Shape::of_pool(pool),
                weight: pool.spec.weight.unwrap_or(0),
                room,
                limit,
            }
        })
        .collect()
}

/// Takes from each candidate's machine what the DaemonSets that will run
/// a pod on it request (those whose pod template fits the machine), as
/// Karpenter does: a new node is never quite empty.
pub fn reserve_daemons(candidates: &mut [Candidate], daemonsets: &[DaemonSet]) {
    let daemons: Vec<(Constraints, super::fit::Resources)> = daemonsets
        .iter()
        .filter_map(|ds| {
            let template = ds.spec.as_ref()?.template.clone();
            let spec: PodSpec = template.spec?;
            let pod = Pod {
                metadata: template.metadata.unwrap_or_default(),
                spec: Some(spec.clone()),
                status: None,
            };
            Some((Constraints::of(&pod), pod_requests(&spec)))
        })
        .collect();
    for candidate in candidates {
        let shape = candidate.shape.clone();
        for (constraints, requests) in &daemons {
            if fits(constraints, requests, &shape).is_ok() {
                subtract(&mut candidate.shape.capacity, requests);
            }
        }
    }
}

/// How many machines `pool` may add beside its `live` ones, and the bound
/// that decides it (`maxReplicas=3`, `nvidia.com/gpu=2`).
fn room(pool: &NodePool, live: usize) -> (usize, String) {
    let spec = &pool.spec;
    let per_machine = spec
        .template
        .as_ref()
        .map(|t| t.capacity.clone())
        .unwrap_or_default();
    let mut bounds: Vec<(usize, String)> = Vec::new();
    if let Some(max) = spec.max_replicas {
        bounds.push((max.max(0) as usize, format!("maxReplicas={max}")));
    }
    for (resource, limit) in &spec.limits {
        let one = std::collections::BTreeMap::from([(resource.clone(), limit.clone())]);
        let machines = machines_within_limits(&one, &per_machine);
        if machines != usize::MAX {
            bounds.push((machines, format!("{resource}={}", limit.0)));
        }
    }
    bounds
        .into_iter()
        .min_by_key(|(machines, _)| *machines)
        .map_or((usize::MAX - live, String::new()), |(machines, why)| {
            (machines.saturating_sub(live), why)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pool(spec: serde_json::Value) -> NodePool {
        serde_json::from_value(json!({"metadata": {"name": "gpu"}, "spec": spec})).unwrap()
    }

    fn claim(name: &str, status: serde_json::Value) -> NodeClaim {
        serde_json::from_value(json!({
            "metadata": {"name": name},
            "spec": {"pool": "gpu", "resources": {"cpu": "4", "nvidia.com/gpu": "2"}},
            "status": status,
        }))
        .unwrap()
    }

    #[test]
    fn pools_offer_what_their_bounds_leave() {
        let claims = [claim("gpu-a", json!({})), claim("gpu-b", json!({}))];
        let template = json!({"capacity": {"cpu": "4", "nvidia.com/gpu": "2"}});
        let cases = [
            (json!({"template": template}), usize::MAX - 2, ""),
            (
                json!({"template": template, "maxReplicas": 5}),
                3,
                "maxReplicas=5",
            ),
            (
                json!({"template": template, "maxReplicas": 5, "limits": {"nvidia.com/gpu": "6"}}),
                1,
                "nvidia.com/gpu=6",
            ),
            (
                json!({"template": template, "limits": {"nvidia.com/gpu": "2"}}),
                0,
                "nvidia.com/gpu=2",
            ),
        ];
        for (spec, room, limit) in cases {
            let c = &candidates(&[pool(spec.clone())], &claims)[0];
            assert_eq!((c.room, c.limit.as_str()), (room, limit), "{spec}");
        }
        assert!(candidates(&[pool(json!({"replicas": 2}))], &claims).is_empty());
    }

    #[test]
    fn daemonsets_that_fit_a_machine_take_their_share() {
        let template = json!({"capacity": {"cpu": "4", "pods": "10"}});
        let mut pools = candidates(
            &[
                pool(json!({"template": template})),
                serde_json::from_value(
                    json!({"metadata": {"name": "tainted"}, "spec": {"template": template,
                    "taints": [{"key": "dedicated", "effect": "NoSchedule"}]}}),
                )
                .unwrap(),
            ],
            &[],
        );
        let ds: DaemonSet = serde_json::from_value(json!({"metadata": {"name": "agent"}, "spec": {
            "selector": {"matchLabels": {"app": "agent"}},
            "template": {"metadata": {"labels": {"app": "agent"}}, "spec": {"containers": [
                {"name": "c", "resources": {"requests": {"cpu": "500m"}}}]}}}}))
        .unwrap();
        reserve_daemons(&mut pools, &[ds]);
        assert_eq!(pools[0].shape.capacity["cpu"], 3_500_000_000);
        assert_eq!(pools[0].shape.capacity["pods"], 9_000_000_000);
        assert_eq!(
            pools[1].shape.capacity["cpu"], 4_000_000_000,
            "the taint keeps it off"
        );
    }

    #[test]
    fn booting_claims_count_with_their_template_and_ready_ones_with_their_room() {
        let booting = claim(
            "gpu-a",
            json!({"nodeName": "gpu-a", "allocatable": {"cpu": "4"}}),
        );
        let ready = claim(
            "gpu-b",
            json!({"nodeName": "gpu-b", "allocatable": {"cpu": "3", "nvidia.com/gpu": "2"},
                   "conditions": [{"type": "Initialized", "status": "True", "reason": "Initialized", "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}),
        );
        let pod: Pod = serde_json::from_value(json!({"metadata": {"name": "p", "labels": {"app": "x"}},
            "spec": {"nodeName": "gpu-b", "containers": [{"name": "c", "resources": {"limits": {"nvidia.com/gpu": "1"}}}]}}))
        .unwrap();
        let got = existing(&[booting, ready], &[Arc::new(pod)]);
        let gpus =
            |e: &Existing| e.free.get("nvidia.com/gpu").copied().unwrap_or(0) / 1_000_000_000;
        assert_eq!(gpus(&got[0]), 2, "a booting machine counts its template");
        assert_eq!(gpus(&got[1]), 1, "a Ready machine counts what is left");
        assert_eq!(got[1].free["cpu"], 3_000_000_000);
        assert_eq!(got[1].pods.len(), 1);
    }
}
