//! CustomResourceDefinitions: upstream's defaults and validation (names,
//! versions, structural schemas, subresources, printer columns; immutable
//! group, plural and established scope and kind), generation tracking and
//! the `kubectl get crd` columns. Serving what a CRD defines is the API
//! server's business.

use serde_json::{json, Value};

use crate::crd;
use crate::field::FieldCause;
use crate::kinds::KindRules;
use crate::table::{col, Column, NAME};

/// The finalizer that holds a deleted CRD until its custom objects are gone.
pub const CLEANUP_FINALIZER: &str = "customresourcecleanup.apiextensions.k8s.io";

/// The rules of `apiextensions.k8s.io/v1` CustomResourceDefinition.
#[derive(Debug, Clone, Copy, Default)]
pub struct CustomResourceDefinition;

impl KindRules for CustomResourceDefinition {
    fn tracks_generation(&self) -> bool {
        true
    }

    fn default(&self, obj: &mut Value) {
        crd::default_crd(obj);
    }

    fn validate(&self, obj: &Value) -> Vec<FieldCause> {
        crd::validate_crd(obj)
    }

    fn validate_update(&self, old: &Value, new: &Value) -> Vec<FieldCause> {
        crd::validate_crd_update(old, new)
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            NAME,
            col(
                "Created At",
                "date",
                0,
                "CreationTimestamp is a timestamp representing the server time when this object was created.",
            ),
        ]
    }

    fn cells(&self, obj: &Value, _now: jiff::Timestamp) -> Vec<Value> {
        vec![
            crate::table::name_cell(obj),
            obj.pointer("/metadata/creationTimestamp")
                .cloned()
                .unwrap_or(json!(null)),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_shows_when_the_definition_was_created() {
        let definition = json!({"metadata": {"name": "crontabs.stable.example.com",
            "creationTimestamp": "2026-01-01T10:00:00Z"}});
        let row = CustomResourceDefinition.cells(&definition, jiff::Timestamp::now());
        assert_eq!(
            row,
            [
                json!("crontabs.stable.example.com"),
                json!("2026-01-01T10:00:00Z")
            ]
        );
        assert_eq!(
            CustomResourceDefinition.columns().len(),
            row.len(),
            "one cell per column"
        );
    }
}
