//! `kube_nodepool_*`: berth's NodePools named and labelled in
//! kube-state-metrics' style (`nodepool` as the object's label, conditions
//! as `condition`/`status` rows, quantities with `resource`/`unit`).

use berth_api::nodepool::NodePool;

use super::family::MetricFamily;
use super::pods::{push_condition, timestamp};
use super::resources;

/// The NodePool families.
pub fn families(pools: &[NodePool]) -> Vec<MetricFamily> {
    let mut info = MetricFamily::gauge("kube_nodepool_info", "Information about a NodePool.");
    let mut created = MetricFamily::gauge("kube_nodepool_created", "Unix creation timestamp");
    let mut generation = MetricFamily::gauge(
        "kube_nodepool_metadata_generation",
        "Sequence number representing a specific generation of the desired state.",
    );
    let mut observed = MetricFamily::gauge(
        "kube_nodepool_status_observed_generation",
        "The generation observed by the NodePool controller.",
    );
    let mut replicas = MetricFamily::gauge(
        "kube_nodepool_spec_replicas",
        "Number of desired nodes for a NodePool kept at a fixed size.",
    );
    let mut min = MetricFamily::gauge(
        "kube_nodepool_spec_min_replicas",
        "Lower limit for the number of nodes the NodePool autoscales to.",
    );
    let mut max = MetricFamily::gauge(
        "kube_nodepool_spec_max_replicas",
        "Upper limit for the number of nodes the NodePool autoscales to.",
    );
    let mut limits = MetricFamily::gauge(
        "kube_nodepool_spec_limits",
        "The most of each resource the NodePool's nodes may add up to.",
    );
    let mut current = MetricFamily::gauge(
        "kube_nodepool_status_replicas",
        "The number of machines (NodeClaims) that exist for the NodePool.",
    );
    let mut ready = MetricFamily::gauge(
        "kube_nodepool_status_ready_replicas",
        "The number of the NodePool's nodes that are Ready.",
    );
    let mut resources_now = MetricFamily::gauge(
        "kube_nodepool_status_resources",
        "What the NodePool's nodes add up to per resource.",
    );
    let mut condition = MetricFamily::gauge(
        "kube_nodepool_status_condition",
        "The condition of a NodePool.",
    );
    for pool in pools {
        let base = [(
            "nodepool",
            pool.metadata.name.as_deref().unwrap_or_default(),
        )];
        let spec = &pool.spec;
        info.push(
            &base,
            &[
                ("provider", spec.provider_name()),
                (
                    "machine_class",
                    spec.machine_class.as_deref().unwrap_or_default(),
                ),
            ],
            1.0,
        );
        if let Some(at) = timestamp(pool.metadata.creation_timestamp.as_ref()) {
            created.push(&base, &[], at);
        }
        if let Some(g) = pool.metadata.generation {
            generation.push(&base, &[], g as f64);
        }
        for (family, value) in [
            (&mut replicas, spec.replicas),
            (&mut min, spec.min_replicas),
            (&mut max, spec.max_replicas),
        ] {
            if let Some(v) = value {
                family.push(&base, &[], f64::from(v));
            }
        }
        for (resource, unit, value) in resources::rows(Some(&spec.limits)) {
            limits.push(
                &base,
                &[("resource", resource.as_str()), ("unit", unit)],
                value,
            );
        }
        let Some(status) = &pool.status else {
            continue;
        };
        current.push(&base, &[], f64::from(status.replicas));
        ready.push(&base, &[], f64::from(status.ready_replicas));
        if let Some(g) = status.observed_generation {
            observed.push(&base, &[], g as f64);
        }
        for (resource, unit, value) in resources::rows(Some(&status.resources)) {
            resources_now.push(
                &base,
                &[("resource", resource.as_str()), ("unit", unit)],
                value,
            );
        }
        for c in &status.conditions {
            push_condition(
                &mut condition,
                &base,
                &[("condition", c.type_.as_str())],
                &c.status,
            );
        }
    }
    vec![
        info,
        created,
        generation,
        observed,
        replicas,
        min,
        max,
        limits,
        current,
        ready,
        resources_now,
        condition,
    ]
}

#[cfg(test)]
mod tests {
    use super::super::family::value_of;
    use super::*;
    use serde_json::json;

    #[test]
    fn a_pool_reports_its_bounds_size_and_conditions() {
        let pool: NodePool = serde_json::from_value(json!({
            "apiVersion": "berth.dev/v1", "kind": "NodePool",
            "metadata": {"name": "gpus", "generation": 2},
            "spec": {"minReplicas": 1, "maxReplicas": 4, "provider": "aws",
                "limits": {"nvidia.com/gpu": "16"}},
            "status": {"replicas": 2, "readyReplicas": 1, "observedGeneration": 2,
                "resources": {"cpu": "16", "nvidia.com/gpu": "8"},
                "conditions": [{"type": "Ready", "status": "False", "reason": "Launching",
                    "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"}]},
        }))
        .expect("a pool");
        let families = families(&[pool]);
        let get = |name: &str, labels: &[(&str, &str)]| value_of(&families, name, labels);
        let pool = [("nodepool", "gpus")];
        assert_eq!(get("kube_nodepool_spec_min_replicas", &pool), Some(1.0));
        assert_eq!(get("kube_nodepool_spec_max_replicas", &pool), Some(4.0));
        assert_eq!(get("kube_nodepool_spec_replicas", &pool), None);
        assert_eq!(get("kube_nodepool_status_replicas", &pool), Some(2.0));
        assert_eq!(get("kube_nodepool_status_ready_replicas", &pool), Some(1.0));
        assert_eq!(get("kube_nodepool_info", &[("provider", "aws")]), Some(1.0));
        assert_eq!(
            get(
                "kube_nodepool_status_condition",
                &[("condition", "Ready"), ("status", "false")]
            ),
            Some(1.0)
        );
        assert_eq!(
            get(
                "kube_nodepool_status_resources",
                &[("resource", "nvidia_com_gpu"), ("unit", "integer")]
            ),
            Some(8.0)
        );
        assert_eq!(
            get(
                "kube_nodepool_spec_limits",
                &[("resource", "nvidia_com_gpu")]
            ),
            Some(16.0)
        );
    }
}
