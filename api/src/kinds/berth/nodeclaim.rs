//! NodeClaims (the type is `crate::nodeclaim::NodeClaim`): its pool is
//! immutable, and `kubectl get nodeclaims` shows pool, node, provider id and
//! readiness.

use serde_json::{json, Value};

use crate::field::FieldCause;
use crate::kinds::{immutable_fields, KindRules};
use crate::table::print::str_or_none;
use crate::table::{col, Column, AGE, NAME};

/// The rules of `berth.dev/v1` NodeClaim.
#[derive(Debug, Clone, Copy, Default)]
pub struct NodeClaim;

impl KindRules for NodeClaim {
    fn tracks_generation(&self) -> bool {
        true
    }

    fn validate(&self, obj: &Value) -> Vec<FieldCause> {
        match obj.pointer("/spec/pool").and_then(Value::as_str) {
            None | Some("") => vec![FieldCause::required("spec.pool", "")],
            Some(_) => Vec::new(),
        }
    }

    fn validate_update(&self, old: &Value, new: &Value) -> Vec<FieldCause> {
        immutable_fields(old, new, &["/spec/pool", "/spec/provider"])
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            NAME,
            col("Pool", "string", 0, "The NodePool the claim belongs to."),
            col("Node", "string", 0, "The Node the machine registered as."),
            col("Ready", "string", 0, "Whether the node is Ready."),
            AGE,
            col("ID", "string", 1, "The provider's id of the machine."),
        ]
    }

    fn cells(&self, obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        let ready = obj
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|c| c["type"] == "Ready")
            .and_then(|c| c["status"].as_str())
            .unwrap_or("Unknown")
            .to_owned();
        vec![
            crate::table::name_cell(obj),
            json!(str_or_none(obj, &["spec", "pool"])),
            json!(str_or_none(obj, &["status", "nodeName"])),
            json!(ready),
            crate::table::age_cell(obj, now),
            json!(str_or_none(obj, &["status", "providerId"])),
        ]
    }
}
