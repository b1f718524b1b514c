//! ComponentStatuses: the read-only health report of the control plane's
//! parts (computed by the API server, never stored), and its
//! `kubectl get cs` columns.

use serde_json::{json, Value};

use crate::kinds::KindRules;
use crate::table::print::array_at;
use crate::table::{col, Column, NAME};

/// The rules of `core/v1` ComponentStatus.
#[derive(Debug, Clone, Copy, Default)]
pub struct ComponentStatus;

impl KindRules for ComponentStatus {
    fn columns(&self) -> Vec<Column> {
        vec![
            NAME,
            col("Status", "string", 0, "Status of the component conditions"),
            col(
                "Message",
                "string",
                0,
                "Message of the component conditions",
            ),
            col("Error", "string", 0, "Error of the component conditions"),
        ]
    }

    fn cells(&self, obj: &Value, _now: jiff::Timestamp) -> Vec<Value> {
        let (mut status, mut message, mut error) = ("Unknown", "", "");
        for condition in array_at(obj, &["conditions"]) {
            if condition.get("type").and_then(Value::as_str) == Some("Healthy") {
                status = match condition.get("status").and_then(Value::as_str) {
                    Some("True") => "Healthy",
                    _ => "Unhealthy",
                };
                message = condition
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                error = condition
                    .get("error")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                break;
            }
        }
        vec![
            crate::table::name_cell(obj),
            json!(status),
            json!(message),
            json!(error),
        ]
    }
}

/// A ComponentStatus as upstream's `componentstatuses` REST reports one.
pub fn component_status(name: &str, healthy: bool, message: &str, error: &str) -> Value {
    let mut condition = json!({
        "type": "Healthy",
        "status": if healthy { "True" } else { "False" },
        "message": message,
    });
    if !error.is_empty() {
        condition["error"] = json!(error);
    }
    json!({
        "kind": "ComponentStatus",
        "apiVersion": "v1",
        "metadata": {"name": name},
        "conditions": [condition],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_say_healthy_or_unhealthy() {
        let ok = component_status("etcd-0", true, "ok", "");
        let row = ComponentStatus.cells(&ok, jiff::Timestamp::UNIX_EPOCH);
        assert_eq!(
            row,
            [json!("etcd-0"), json!("Healthy"), json!("ok"), json!("")]
        );
        let bad = component_status("scheduler", false, "", "no leader");
        let row = ComponentStatus.cells(&bad, jiff::Timestamp::UNIX_EPOCH);
        assert_eq!(row[1], "Unhealthy");
        assert_eq!(row[3], "no leader");
    }
}
