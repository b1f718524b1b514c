//! `kube_node_*`: a node's identity, conditions, capacity and allocatable
//! (extended resources such as `nvidia.com/gpu` included), labelled `node`.

use k8s_openapi::api::core::v1::Node;

use super::family::{bool_value, MetricFamily};
use super::pods::{push_condition, timestamp};
use super::resources;

/// The node families.
pub fn families(nodes: &[Node]) -> Vec<MetricFamily> {
    let mut info = MetricFamily::gauge("kube_node_info", "Information about a cluster node.");
    let mut created = MetricFamily::gauge("kube_node_created", "Unix creation timestamp");
    let mut condition = MetricFamily::gauge(
        "kube_node_status_condition",
        "The condition of a cluster node.",
    );
    let mut capacity = MetricFamily::gauge(
        "kube_node_status_capacity",
        "The capacity for different resources of a node.",
    );
    let mut allocatable = MetricFamily::gauge(
        "kube_node_status_allocatable",
        "The allocatable for different resources of a node that are available for scheduling.",
    );
    let mut unschedulable = MetricFamily::gauge(
        "kube_node_spec_unschedulable",
        "Whether a node can schedule new pods.",
    );
    for node in nodes {
        let name = node.metadata.name.as_deref().unwrap_or_default();
        let base = [("node", name)];
        let spec = node.spec.as_ref();
        let status = node.status.as_ref();
        let system = status.and_then(|s| s.node_info.clone()).unwrap_or_default();
        let internal_ip = status
            .and_then(|s| s.addresses.as_ref())
            .and_then(|a| a.iter().find(|a| a.type_ == "InternalIP"))
            .map_or("", |a| a.address.as_str());
        info.push(
            &base,
            &[
                ("kernel_version", system.kernel_version.as_str()),
                ("os_image", system.os_image.as_str()),
                (
                    "container_runtime_version",
                    system.container_runtime_version.as_str(),
                ),
                ("kubelet_version", system.kubelet_version.as_str()),
                ("kubeproxy_version", system.kube_proxy_version.as_str()),
                (
                    "provider_id",
                    spec.and_then(|s| s.provider_id.as_deref())
                        .unwrap_or_default(),
                ),
                (
                    "pod_cidr",
                    spec.and_then(|s| s.pod_cidr.as_deref()).unwrap_or_default(),
                ),
                ("system_uuid", system.system_uuid.as_str()),
                ("internal_ip", internal_ip),
            ],
            1.0,
        );
        if let Some(at) = timestamp(node.metadata.creation_timestamp.as_ref()) {
            created.push(&base, &[], at);
        }
        for c in status
            .and_then(|s| s.conditions.as_ref())
            .into_iter()
            .flatten()
        {
            push_condition(
                &mut condition,
                &base,
                &[("condition", c.type_.as_str())],
                &c.status,
            );
        }
        for (family, quantities) in [
            (&mut capacity, status.and_then(|s| s.capacity.as_ref())),
            (
                &mut allocatable,
                status.and_then(|s| s.allocatable.as_ref()),
            ),
        ] {
            for (resource, unit, value) in resources::rows(quantities) {
                family.push(
                    &base,
                    &[("resource", resource.as_str()), ("unit", unit)],
                    value,
                );
            }
        }
        unschedulable.push(
            &base,
            &[],
            bool_value(spec.and_then(|s| s.unschedulable).unwrap_or(false)),
        );
    }
    vec![
        info,
        created,
        condition,
        capacity,
        allocatable,
        unschedulable,
    ]
}

#[cfg(test)]
mod tests {
    use super::super::family::value_of;
    use super::*;
    use serde_json::json;

    #[test]
    fn conditions_and_gpu_capacity_follow_kube_state_metrics() {
        let node: Node = serde_json::from_value(json!({
            "metadata": {"name": "gpu-0"},
            "spec": {"unschedulable": true, "providerID": "sim://gpu-0"},
            "status": {
                "conditions": [{"type": "Ready", "status": "True"},
                    {"type": "MemoryPressure", "status": "False"}],
                "capacity": {"cpu": "8", "memory": "32Gi", "nvidia.com/gpu": "4", "pods": "110"},
                "allocatable": {"cpu": "7500m", "nvidia.com/gpu": "3"},
                "addresses": [{"type": "InternalIP", "address": "10.0.0.5"}],
            },
        }))
        .expect("a node");
        let families = families(&[node]);
        let get = |name: &str, labels: &[(&str, &str)]| value_of(&families, name, labels);
        let ready = |status| {
            [
                ("node", "gpu-0"),
                ("condition", "Ready"),
                ("status", status),
            ]
        };
        assert_eq!(get("kube_node_status_condition", &ready("true")), Some(1.0));
        assert_eq!(
            get("kube_node_status_condition", &ready("false")),
            Some(0.0)
        );
        assert_eq!(
            get("kube_node_status_condition", &ready("unknown")),
            Some(0.0)
        );
        assert_eq!(
            get(
                "kube_node_status_condition",
                &[("condition", "MemoryPressure"), ("status", "false")]
            ),
            Some(1.0)
        );
        assert_eq!(
            get(
                "kube_node_status_capacity",
                &[("resource", "nvidia_com_gpu"), ("unit", "integer")]
            ),
            Some(4.0)
        );
        assert_eq!(
            get(
                "kube_node_status_allocatable",
                &[("resource", "nvidia_com_gpu"), ("unit", "integer")]
            ),
            Some(3.0)
        );
        assert_eq!(
            get(
                "kube_node_status_allocatable",
                &[("resource", "cpu"), ("unit", "core")]
            ),
            Some(7.5)
        );
        assert_eq!(
            get("kube_node_spec_unschedulable", &[("node", "gpu-0")]),
            Some(1.0)
        );
        assert_eq!(
            get(
                "kube_node_info",
                &[("provider_id", "sim://gpu-0"), ("internal_ip", "10.0.0.5")]
            ),
            Some(1.0)
        );
    }
}
