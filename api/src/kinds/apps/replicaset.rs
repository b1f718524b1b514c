//! ReplicaSets: default replicas and template, workload validation, generation
//! tracking, the `kubectl get replicasets` columns and the `status.replicas`
//! field selector.

use serde_json::{json, Value};

use super::validate_workload;
use crate::field::FieldCause;
use crate::kinds::core::pod::spec::default_template;
use crate::kinds::{immutable_fields, obj_mut, set_default, KindRules};
use crate::table::print::{containers_and_images, int_at, selector_string};
use crate::table::{col, Column, AGE, NAME};

/// The rules of `apps/v1` ReplicaSet.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReplicaSet;

impl KindRules for ReplicaSet {
    fn tracks_generation(&self) -> bool {
        true
    }

    fn default(&self, obj: &mut Value) {
        let spec = obj_mut(obj, "spec");
        set_default(spec, "replicas", json!(1));
        default_template(spec);
    }

    fn validate(&self, obj: &Value) -> Vec<FieldCause> {
        validate_workload(obj)
    }

    fn validate_update(&self, old: &Value, new: &Value) -> Vec<FieldCause> {
        immutable_fields(old, new, &["/spec/selector"])
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            NAME,
            col("Desired", "integer", 0, "Number of desired pods."),
            col("Current", "integer", 0, "Number of actual replicas."),
            col("Ready", "integer", 0, "Number of ready replicas."),
            AGE,
            col(
                "Containers",
                "string",
                1,
                "Names of each container in the template.",
            ),
            col(
                "Images",
                "string",
                1,
                "Images referenced by each container in the template.",
            ),
            col("Selector", "string", 1, "Label query over pods."),
        ]
    }

    fn cells(&self, obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        let (containers, images) =
            containers_and_images(obj.pointer("/spec/template/spec").unwrap_or(&Value::Null));
        vec![
            crate::table::name_cell(obj),
            json!(obj
                .pointer("/spec/replicas")
                .and_then(Value::as_i64)
                .unwrap_or(1)),
            json!(int_at(obj, &["status", "replicas"])),
            json!(int_at(obj, &["status", "readyReplicas"])),
            crate::table::age_cell(obj, now),
            json!(containers),
            json!(images),
            json!(selector_string(obj.pointer("/spec/selector"))),
        ]
    }

    fn field_labels(&self) -> &'static [&'static str] {
        &["status.replicas"]
    }
}
