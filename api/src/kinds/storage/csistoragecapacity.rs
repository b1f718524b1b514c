//! CSIStorageCapacities: what a CSI driver reports it can still provision for
//! one storage class in one topology segment. Upstream's validation (a valid
//! class name, a non-negative capacity, a valid node topology selector, the
//! class and topology fixed once set) and the `kubectl get` columns.

use serde_json::{json, Value};

use crate::field::FieldCause;
use crate::kinds::apps::workload::validate_label_selector;
use crate::kinds::{immutable_fields, KindRules};
use crate::quantity::Quantity;
use crate::table::print::str_at;
use crate::table::{col, Column, NAME};
use crate::validation::is_dns1123_subdomain;

/// The rules of `storage.k8s.io/v1` CSIStorageCapacity.
#[derive(Debug, Clone, Copy, Default)]
pub struct CsiStorageCapacity;

/// Upstream's `ValidateNonnegativeQuantity` of the quantity at `field`.
fn non_negative_quantity(obj: &Value, field: &str) -> Option<FieldCause> {
    let text = obj.get(field)?.as_str()?;
    match Quantity::parse(text) {
        Ok(q) if q.signum() < 0 => Some(FieldCause::invalid(
            field,
            &json!(q.to_string()),
            "must be greater than or equal to 0",
        )),
        Ok(_) => None,
        Err(e) => Some(FieldCause::invalid(field, &json!(text), e.to_string())),
    }
}

impl KindRules for CsiStorageCapacity {
    fn validate(&self, obj: &Value) -> Vec<FieldCause> {
        let mut causes = validate_label_selector(obj.get("nodeTopology"), "nodeTopology");
        let class = str_at(obj, &["storageClassName"]).unwrap_or("");
        for problem in is_dns1123_subdomain(class) {
            causes.push(FieldCause::invalid(
                "storageClassName",
                &json!(class),
                problem,
            ));
        }
        // Upstream checks only the capacity (maximumVolumeSize is unchecked).
        causes.extend(non_negative_quantity(obj, "capacity"));
        causes
    }

    fn validate_update(&self, old: &Value, new: &Value) -> Vec<FieldCause> {
        let mut causes = Vec::new();
        // The inputs of the CSI GetCapacity call never change; an unset topology
        // may not become set either.
        if old.get("nodeTopology") != new.get("nodeTopology") {
            causes.push(FieldCause::immutable(
                "nodeTopology",
                new.get("nodeTopology").unwrap_or(&Value::Null),
            ));
        }
        causes.extend(immutable_fields(old, new, &["/storageClassName"]));
        causes
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            NAME,
            col(
                "StorageClassName",
                "string",
                0,
                "storageClassName represents the name of the StorageClass that the reported capacity applies to. It must meet the same requirements as the name of a StorageClass object (non-empty, DNS subdomain). If that object no longer exists, the CSIStorageCapacity object is obsolete and should be removed by its creator. This field is immutable.",
            ),
            col(
                "Capacity",
                "string",
                0,
                "capacity is the value reported by the CSI driver in its GetCapacityResponse for a GetCapacityRequest with topology and parameters that match the previous fields.",
            ),
        ]
    }

    fn cells(&self, obj: &Value, _now: jiff::Timestamp) -> Vec<Value> {
        let capacity = str_at(obj, &["capacity"])
            .map(|c| Quantity::parse(c).map_or_else(|_| c.to_owned(), |q| q.to_string()))
            .unwrap_or_else(|| "<unset>".to_owned());
        vec![
            crate::table::name_cell(obj),
            json!(str_at(obj, &["storageClassName"]).unwrap_or_default()),
            json!(capacity),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn capacity(extra: Value) -> Value {
        let mut obj = json!({"metadata": {"name": "one", "namespace": "default"},
            "storageClassName": "standard", "capacity": "1Gi",
            "nodeTopology": {"matchLabels": {"topology.kubernetes.io/zone": "us-east1"}}});
        for (k, v) in extra.as_object().unwrap() {
            obj[k] = v.clone();
        }
        obj
    }

    #[test]
    fn validation_follows_upstream() {
        assert!(CsiStorageCapacity.validate(&capacity(json!({}))).is_empty());
        let cases = [
            (
                json!({"storageClassName": ""}),
                "storageClassName",
                "Invalid value: \"\": a lowercase RFC 1123 subdomain",
            ),
            (
                json!({"storageClassName": "Bad_Name"}),
                "storageClassName",
                "Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain",
            ),
            (
                json!({"capacity": "-1Gi"}),
                "capacity",
                "Invalid value: \"-1Gi\": must be greater than or equal to 0",
            ),
            (
                json!({"nodeTopology": {"matchExpressions": [{"key": "zone", "operator": "Foo"}]}}),
                "nodeTopology.matchExpressions[0].operator",
                "Invalid value: \"Foo\": not a valid selector operator",
            ),
        ];
        for (extra, field, message) in cases {
            let got = CsiStorageCapacity.validate(&capacity(extra));
            assert!(
                got.iter()
                    .any(|c| c.field == field && c.message.starts_with(message)),
                "{field}: {got:?}"
            );
        }
    }

    #[test]
    fn class_and_topology_are_immutable_capacity_is_not() {
        let old = capacity(json!({}));
        let grown = capacity(json!({"capacity": "2Gi"}));
        assert!(CsiStorageCapacity.validate_update(&old, &grown).is_empty());
        let moved = capacity(json!({"storageClassName": "fast", "nodeTopology": {}}));
        let fields: Vec<String> = CsiStorageCapacity
            .validate_update(&old, &moved)
            .into_iter()
            .map(|c| c.field)
            .collect();
        assert_eq!(fields, ["nodeTopology", "storageClassName"]);
    }

    #[test]
    fn capacity_column_is_canonical_or_unset() {
        let now = jiff::Timestamp::now();
        let cells = CsiStorageCapacity.cells(&capacity(json!({"capacity": "1024Mi"})), now);
        assert_eq!(cells, vec![json!("one"), json!("standard"), json!("1Gi")]);
        let mut unset = capacity(json!({}));
        unset.as_object_mut().unwrap().remove("capacity");
        assert_eq!(CsiStorageCapacity.cells(&unset, now)[2], json!("<unset>"));
    }
}
