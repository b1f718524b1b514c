//! Namespaces: the `kubernetes.io/metadata.name` label, the `kubernetes`
//! finalizer that holds a deleted namespace until its contents are gone, the
//! Terminating phase, and `spec.finalizers` changed only through `finalize`.

use serde_json::{json, Value};

use crate::kinds::{obj_mut, set_default, KindRules, NameRule};
use crate::table::print::str_at;
use crate::table::{col, Column, AGE, NAME};

/// The rules of `core/v1` Namespace.
#[derive(Debug, Clone, Copy, Default)]
pub struct Namespace;

fn has_spec_finalizers(obj: &Value) -> bool {
    obj.pointer("/spec/finalizers")
        .and_then(Value::as_array)
        .is_some_and(|f| !f.is_empty())
}

impl KindRules for Namespace {
    fn name_rule(&self) -> NameRule {
        NameRule::Label
    }

    fn default(&self, obj: &mut Value) {
        if let Some(Value::String(name)) = obj.pointer("/metadata/name").cloned() {
            let metadata = obj_mut(obj, "metadata");
            let labels = metadata.entry("labels").or_insert_with(|| json!({}));
            if !labels.is_object() {
                *labels = json!({});
            }
            labels["kubernetes.io/metadata.name"] = json!(name);
        }
        set_default(obj_mut(obj, "spec"), "finalizers", json!(["kubernetes"]));
        set_default(obj_mut(obj, "status"), "phase", json!("Active"));
    }

    fn prepare_for_update(&self, old: &Value, new: &mut Value) {
        match old.pointer("/spec/finalizers") {
            Some(finalizers) => {
                obj_mut(new, "spec").insert("finalizers".into(), finalizers.clone());
            }
            None => {
                if let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut) {
                    spec.remove("finalizers");
                }
            }
        }
    }

    fn begin_deletion(&self, obj: &mut Value) -> bool {
        if !has_spec_finalizers(obj) {
            return false;
        }
        obj_mut(obj, "status").insert("phase".into(), json!("Terminating"));
        true
    }

    fn deletion_held(&self, obj: &Value) -> bool {
        has_spec_finalizers(obj)
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            NAME,
            col("Status", "string", 0, "The phase of the namespace."),
            AGE,
        ]
    }

    fn cells(&self, obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        vec![
            crate::table::name_cell(obj),
            json!(str_at(obj, &["status", "phase"]).unwrap_or("Active")),
            crate::table::age_cell(obj, now),
        ]
    }

    fn field_labels(&self) -> &'static [&'static str] {
        &["status.phase"]
    }
}
