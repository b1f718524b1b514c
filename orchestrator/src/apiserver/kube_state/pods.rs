//! `kube_pod_*`: one row set per pod, labelled `namespace`, `pod`, `uid`
//! as kube-state-metrics labels them.

use k8s_openapi::api::core::v1::{Container, ContainerStatus, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

use super::family::{bool_value, MetricFamily};
use super::resources;

/// The phases `kube_pod_status_phase` has a series for, as upstream.
const PHASES: [&str; 5] = ["Pending", "Succeeded", "Failed", "Unknown", "Running"];

/// The pod families, each with a row set per pod.
pub fn families(pods: &[Pod]) -> Vec<MetricFamily> {
    let mut info = MetricFamily::gauge("kube_pod_info", "Information about pod.");
    let mut owner = MetricFamily::gauge("kube_pod_owner", "Information about the Pod's owner.");
    let mut created = MetricFamily::gauge("kube_pod_created", "Unix creation timestamp");
    let mut phase = MetricFamily::gauge("kube_pod_status_phase", "The pods current phase.");
    let mut ready = MetricFamily::gauge(
        "kube_pod_status_ready",
        "Describes whether the pod is ready to serve requests.",
    );
    let mut restarts = MetricFamily::counter(
        "kube_pod_container_status_restarts",
        "The number of container restarts per container.",
    );
    let mut running = MetricFamily::gauge(
        "kube_pod_container_status_running",
        "Describes whether the container is currently in running state.",
    );
    let mut waiting = MetricFamily::gauge(
        "kube_pod_container_status_waiting_reason",
        "Describes the reason the container is currently in waiting state.",
    );
    let mut requests = MetricFamily::gauge(
        "kube_pod_container_resource_requests",
        "The number of requested request resource by a container.",
    );
    let mut limits = MetricFamily::gauge(
        "kube_pod_container_resource_limits",
        "The number of requested limit resource by a container.",
    );
    for pod in pods {
        let meta = &pod.metadata;
        let (namespace, name, uid) = (
            meta.namespace.as_deref().unwrap_or_default(),
            meta.name.as_deref().unwrap_or_default(),
            meta.uid.as_deref().unwrap_or_default(),
        );
        let base = [("namespace", namespace), ("pod", name), ("uid", uid)];
        let spec = pod.spec.as_ref();
        let status = pod.status.as_ref();
        let node = spec
            .and_then(|s| s.node_name.as_deref())
            .unwrap_or_default();
        let controller = meta
            .owner_references
            .iter()
            .flatten()
            .find(|o| o.controller == Some(true));
        let host_network = spec.and_then(|s| s.host_network).unwrap_or(false);
        info.push(
            &base,
            &[
                (
                    "host_ip",
                    status
                        .and_then(|s| s.host_ip.as_deref())
                        .unwrap_or_default(),
                ),
                (
                    "pod_ip",
                    status.and_then(|s| s.pod_ip.as_deref()).unwrap_or_default(),
                ),
                ("node", node),
                (
                    "created_by_kind",
                    controller.map_or("", |o| o.kind.as_str()),
                ),
                (
                    "created_by_name",
                    controller.map_or("", |o| o.name.as_str()),
                ),
                (
                    "priority_class",
                    spec.and_then(|s| s.priority_class_name.as_deref())
                        .unwrap_or_default(),
                ),
                ("host_network", if host_network { "true" } else { "false" }),
            ],
            1.0,
        );
        push_owners(&mut owner, &base, meta);
        if let Some(at) = timestamp(meta.creation_timestamp.as_ref()) {
            created.push(&base, &[], at);
        }
        if let Some(current) = status.and_then(|s| s.phase.as_deref()) {
            for candidate in PHASES {
                phase.push(
                    &base,
                    &[("phase", candidate)],
                    bool_value(candidate == current),
                );
            }
        }
        if let Some(condition) = status
            .and_then(|s| s.conditions.as_ref())
            .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
        {
            push_condition(&mut ready, &base, &[], &condition.status);
        }
        for container in status
            .and_then(|s| s.container_statuses.as_ref())
            .into_iter()
            .flatten()
        {
            push_container_status(&mut restarts, &mut running, &mut waiting, &base, container);
        }
        for container in spec.map(|s| s.containers.as_slice()).unwrap_or_default() {
            push_resources(&mut requests, &mut limits, &base, node, container);
        }
    }
    vec![
        info, owner, created, phase, ready, restarts, running, waiting, requests, limits,
    ]
}

/// `kube_*_owner`: a row per owner reference, or one with `<none>`.
pub fn push_owners(owner: &mut MetricFamily, base: &[(&str, &str)], meta: &ObjectMeta) {
    let owners = meta.owner_references.as_deref().unwrap_or_default();
    if owners.is_empty() {
        let none = [
            ("owner_kind", "<none>"),
            ("owner_name", "<none>"),
            ("owner_is_controller", "<none>"),
        ];
        owner.push(base, &none, 1.0);
    }
    for reference in owners {
        let is_controller = if reference.controller == Some(true) {
            "true"
        } else {
            "false"
        };
        owner.push(
            base,
            &[
                ("owner_kind", reference.kind.as_str()),
                ("owner_name", reference.name.as_str()),
                ("owner_is_controller", is_controller),
            ],
            1.0,
        );
    }
}

fn push_container_status(
    restarts: &mut MetricFamily,
    running: &mut MetricFamily,
    waiting: &mut MetricFamily,
    base: &[(&str, &str)],
    container: &ContainerStatus,
) {
    let labels = [("container", container.name.as_str())];
    restarts.push(base, &labels, f64::from(container.restart_count));
    let state = container.state.as_ref();
    running.push(
        base,
        &labels,
        bool_value(state.is_some_and(|s| s.running.is_some())),
    );
    if let Some(reason) = state
        .and_then(|s| s.waiting.as_ref())
        .and_then(|w| w.reason.as_deref())
    {
        waiting.push(base, &[labels[0], ("reason", reason)], 1.0);
    }
}

fn push_resources(
    requests: &mut MetricFamily,
    limits: &mut MetricFamily,
    base: &[(&str, &str)],
    node: &str,
    container: &Container,
) {
    let wanted = container.resources.as_ref();
    for (family, quantities) in [
        (requests, wanted.and_then(|r| r.requests.as_ref())),
        (limits, wanted.and_then(|r| r.limits.as_ref())),
    ] {
        for (resource, unit, value) in resources::rows(quantities) {
            family.push(
                base,
                &[
                    ("container", container.name.as_str()),
                    ("node", node),
                    ("resource", resource.as_str()),
                    ("unit", unit),
                ],
                value,
            );
        }
    }
}

/// Three rows per condition, `condition="true|false|unknown"`, 1 on the
/// one the status holds, as kube-state-metrics encodes conditions.
pub fn push_condition(
    family: &mut MetricFamily,
    base: &[(&str, &str)],
    extra: &[(&str, &str)],
    status: &str,
) {
    for (label, matches) in [("true", "True"), ("false", "False"), ("unknown", "Unknown")] {
        let mut labels = extra.to_vec();
        labels.push((status_label(family), label));
        family.push(base, &labels, bool_value(status == matches));
    }
}

/// kube-state-metrics names the value label `condition` for pod and job
/// conditions and `status` where `condition` already names the type.
fn status_label(family: &MetricFamily) -> &'static str {
    if family.name.ends_with("_status_condition") {
        "status"
    } else {
        "condition"
    }
}

/// Seconds since the epoch of an object's timestamp.
pub fn timestamp(time: Option<&Time>) -> Option<f64> {
    time.map(|t| t.0.as_second() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(value: serde_json::Value) -> Pod {
        serde_json::from_value(value).expect("a pod")
    }

    fn family<'a>(families: &'a [MetricFamily], name: &str) -> &'a MetricFamily {
        families.iter().find(|f| f.name == name).expect(name)
    }

    #[test]
    fn each_phase_has_a_series_and_only_the_current_one_is_1() {
        for current in PHASES {
            let pods = [pod(json!({
                "metadata": {"name": "p", "namespace": "ns", "uid": "u"},
                "status": {"phase": current},
            }))];
            let families = families(&pods);
            let phase = family(&families, "kube_pod_status_phase");
            assert_eq!(phase.rows.len(), PHASES.len());
            for candidate in PHASES {
                let want = bool_value(candidate == current);
                assert_eq!(
                    phase.value(&[("pod", "p"), ("uid", "u"), ("phase", candidate)]),
                    Some(want),
                    "{current}/{candidate}"
                );
            }
        }
    }

    #[test]
    fn containers_show_running_waiting_and_restarts() {
        let pods = [pod(json!({
            "metadata": {"name": "p", "namespace": "ns", "uid": "u",
                "creationTimestamp": "2026-01-01T00:00:00Z",
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                    "name": "web-1", "uid": "r", "controller": true}]},
            "spec": {"nodeName": "n1", "containers": [
                {"name": "app", "resources": {"requests": {"cpu": "500m", "nvidia.com/gpu": "1"},
                    "limits": {"memory": "1Mi"}}},
                {"name": "side"}]},
            "status": {"phase": "Running",
                "conditions": [{"type": "Ready", "status": "False"}],
                "containerStatuses": [
                    {"name": "app", "image": "i", "imageID": "", "ready": true, "restartCount": 3,
                        "state": {"running": {}}},
                    {"name": "side", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
                        "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]},
        }))];
        let families = families(&pods);
        let get = |name, labels: &[(&str, &str)]| family(&families, name).value(labels);
        assert_eq!(
            get(
                "kube_pod_container_status_restarts",
                &[("container", "app")]
            ),
            Some(3.0)
        );
        assert_eq!(
            get("kube_pod_container_status_running", &[("container", "app")]),
            Some(1.0)
        );
        assert_eq!(
            get(
                "kube_pod_container_status_running",
                &[("container", "side")]
            ),
            Some(0.0)
        );
        assert_eq!(
            get(
                "kube_pod_container_status_waiting_reason",
                &[("container", "side"), ("reason", "CrashLoopBackOff")]
            ),
            Some(1.0)
        );
        assert_eq!(
            family(&families, "kube_pod_container_status_waiting_reason")
                .rows
                .len(),
            1
        );
        assert_eq!(
            get("kube_pod_status_ready", &[("condition", "false")]),
            Some(1.0)
        );
        assert_eq!(
            get("kube_pod_status_ready", &[("condition", "true")]),
            Some(0.0)
        );
        assert_eq!(
            get(
                "kube_pod_container_resource_requests",
                &[("resource", "cpu"), ("unit", "core"), ("node", "n1")]
            ),
            Some(0.5)
        );
        assert_eq!(
            get(
                "kube_pod_container_resource_requests",
                &[("resource", "nvidia_com_gpu"), ("unit", "integer")]
            ),
            Some(1.0)
        );
        assert_eq!(
            get(
                "kube_pod_container_resource_limits",
                &[("resource", "memory"), ("unit", "byte")]
            ),
            Some(1048576.0)
        );
        assert_eq!(
            get(
                "kube_pod_info",
                &[
                    ("created_by_kind", "ReplicaSet"),
                    ("created_by_name", "web-1"),
                    ("node", "n1")
                ]
            ),
            Some(1.0)
        );
        assert_eq!(
            get(
                "kube_pod_owner",
                &[
                    ("owner_kind", "ReplicaSet"),
                    ("owner_is_controller", "true")
                ]
            ),
            Some(1.0)
        );
        assert_eq!(get("kube_pod_created", &[("pod", "p")]), Some(1767225600.0));
    }

    #[test]
    fn a_pod_without_owners_has_a_none_owner_row() {
        let pods = [pod(
            json!({"metadata": {"name": "p", "namespace": "ns", "uid": "u"}}),
        )];
        let families = families(&pods);
        assert_eq!(
            family(&families, "kube_pod_owner").value(&[("owner_kind", "<none>")]),
            Some(1.0)
        );
        assert!(family(&families, "kube_pod_status_phase").rows.is_empty());
    }
}
