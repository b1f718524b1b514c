//! Builders for plugin tests: nodes and pods from compact JSON.

use k8s_openapi::api::core::v1::{Node, Pod};
use serde_json::{json, Value};

/// A Ready node with `allocatable` (and the same capacity); `extra` may hold
/// `labels`, `taints` and `unschedulable`.
pub fn node(name: &str, allocatable: Value, extra: Value) -> Node {
    let mut allocatable = allocatable;
    if allocatable.get("pods").is_none() {
        allocatable["pods"] = json!("110");
    }
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": extra.get("labels").cloned().unwrap_or(json!({}))},
        "spec": {
            "taints": extra.get("taints").cloned().unwrap_or(json!([])),
            "unschedulable": extra.get("unschedulable").cloned().unwrap_or(json!(false)),
        },
        "status": {
            "capacity": allocatable.clone(),
            "allocatable": allocatable,
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }))
    .unwrap()
}

/// A pending pod in `default` with one container requesting `requests`.
pub fn pod(name: &str, requests: Value) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"containers": [{"name": "c", "resources": {"requests": requests}}]},
    }))
    .unwrap()
}

/// A pod with extra spec fields merged over `pod(name, requests)`.
pub fn pod_with(name: &str, requests: Value, spec: Value, labels: Value) -> Pod {
    let mut value = serde_json::to_value(pod(name, requests)).unwrap();
    for (k, v) in spec.as_object().unwrap() {
        value["spec"][k] = v.clone();
    }
    value["metadata"]["labels"] = labels;
    serde_json::from_value(value).unwrap()
}
