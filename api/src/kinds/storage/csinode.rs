//! CSINodes: the drivers a node's kubelet registered (name and node ID
//! required, no duplicates) and the DRIVERS count column.

use serde_json::{json, Value};

use crate::field::FieldCause;
use crate::kinds::KindRules;
use crate::table::print::{array_at, str_at};
use crate::table::{col, Column, AGE, NAME};

/// The rules of `storage.k8s.io/v1` CSINode.
#[derive(Debug, Clone, Copy, Default)]
pub struct CsiNode;

impl KindRules for CsiNode {
    fn validate(&self, obj: &Value) -> Vec<FieldCause> {
        let mut causes = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (i, driver) in array_at(obj, &["spec", "drivers"]).iter().enumerate() {
            let at = format!("spec.drivers[{i}]");
            let name = str_at(driver, &["name"]).unwrap_or("");
            if name.is_empty() {
                causes.push(FieldCause::required(format!("{at}.name"), ""));
            } else if !seen.insert(name) {
                causes.push(FieldCause::duplicate(format!("{at}.name"), &json!(name)));
            }
            let node_id = str_at(driver, &["nodeID"]).unwrap_or("");
            if node_id.is_empty() {
                causes.push(FieldCause::required(format!("{at}.nodeID"), ""));
            } else if node_id.len() > 192 {
                causes.push(FieldCause::invalid(
                    format!("{at}.nodeID"),
                    &json!(node_id),
                    "must be 192 characters or less",
                ));
            }
            if let Some(count) = driver.pointer("/allocatable/count").and_then(Value::as_i64) {
                if count < 0 {
                    causes.push(FieldCause::invalid(
                        format!("{at}.allocatable.count"),
                        &json!(count),
                        "must be greater than or equal to 0",
                    ));
                }
            }
        }
        causes
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            NAME,
            col(
                "Drivers",
                "integer",
                0,
                "Drivers indicates the number of CSI drivers registered on the node",
            ),
            AGE,
        ]
    }

    fn cells(&self, obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        vec![
            crate::table::name_cell(obj),
            json!(array_at(obj, &["spec", "drivers"]).len()),
            crate::table::age_cell(obj, now),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drivers_need_a_name_and_node_id() {
        let cases = [
            (
                json!({"spec": {"drivers": [{"name": "a", "nodeID": "n"}]}}),
                vec![],
            ),
            (
                json!({"spec": {"drivers": [{"name": "a"}]}}),
                vec!["spec.drivers[0].nodeID"],
            ),
            (
                json!({"spec": {"drivers": [{"name": "a", "nodeID": "n"}, {"name": "a", "nodeID": "n"}]}}),
                vec!["spec.drivers[1].name"],
            ),
        ];
        for (obj, fields) in cases {
            let got: Vec<String> = CsiNode
                .validate(&obj)
                .into_iter()
                .map(|c| c.field)
                .collect();
            assert_eq!(got, fields);
        }
    }
}
