//! Nodes: registered by their agent with a status of their own, the
//! `kubectl get nodes` columns (STATUS with SchedulingDisabled, ROLES from the
//! `node-role.kubernetes.io/*` labels) and the `spec.unschedulable` field selector.

use serde_json::{json, Value};

use crate::kinds::KindRules;
use crate::table::print::{age, array_at, or_none, str_at};
use crate::table::{col, Column, AGE, NAME};

/// The rules of `core/v1` Node.
#[derive(Debug, Clone, Copy, Default)]
pub struct Node;

impl KindRules for Node {
    fn keeps_status_on_create(&self) -> bool {
        true
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            NAME,
            col("Status", "string", 0, "The status of the node."),
            col("Roles", "string", 0, "The roles of the node."),
            AGE,
            col(
                "Version",
                "string",
                0,
                "Kubelet version reported by the node.",
            ),
            col("Internal-IP", "string", 1, "The node's internal address."),
            col("External-IP", "string", 1, "The node's external address."),
            col("OS-Image", "string", 1, "The operating system image."),
            col("Kernel-Version", "string", 1, "The kernel version."),
            col(
                "Container-Runtime",
                "string",
                1,
                "The container runtime and its version.",
            ),
        ]
    }

    fn cells(&self, obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        let mut row = vec![crate::table::name_cell(obj)];
        row.extend(node_cells(obj, now));
        row
    }

    fn field_labels(&self) -> &'static [&'static str] {
        &["spec.unschedulable"]
    }
}

fn node_cells(node: &Value, now: jiff::Timestamp) -> Vec<Value> {
    let conditions = array_at(node, &["status", "conditions"]);
    let ready = conditions
        .iter()
        .find(|c| str_at(c, &["type"]) == Some("Ready"));
    let mut status = match ready.and_then(|c| str_at(c, &["status"])) {
        Some("True") => "Ready".to_owned(),
        Some(_) => "NotReady".to_owned(),
        None => "Unknown".to_owned(),
    };
    if node
        .pointer("/spec/unschedulable")
        .and_then(Value::as_bool)
        .unwrap_or(false)
    {
        status.push_str(",SchedulingDisabled");
    }
    let mut roles: Vec<String> = node
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(|labels| {
            labels
                .iter()
                .filter_map(|(k, v)| {
                    if let Some(role) = k.strip_prefix("node-role.kubernetes.io/") {
                        Some(role.to_owned())
                    } else if k == "kubernetes.io/role" {
                        v.as_str().map(str::to_owned)
                    } else {
                        None
                    }
                })
                .filter(|r| !r.is_empty())
                .collect()
        })
        .unwrap_or_default();
    roles.sort();
    let address = |kind: &str| {
        array_at(node, &["status", "addresses"])
            .iter()
            .find(|a| str_at(a, &["type"]) == Some(kind))
            .and_then(|a| str_at(a, &["address"]))
            .unwrap_or("<none>")
            .to_owned()
    };
    let info = |field: &str| {
        str_at(node, &["status", "nodeInfo", field])
            .map(str::to_owned)
            .unwrap_or_else(|| "<unknown>".to_owned())
    };
    vec![
        json!(status),
        json!(or_none(roles.join(","))),
        json!(age(node, &["metadata", "creationTimestamp"], now)),
        json!(str_at(node, &["status", "nodeInfo", "kubeletVersion"]).unwrap_or_default()),
        json!(address("InternalIP")),
        json!(address("ExternalIP")),
        json!(info("osImage")),
        json!(info("kernelVersion")),
        json!(info("containerRuntimeVersion")),
    ]
}
