//! ConfigMaps: immutable data once `immutable` is set, and the DATA column.

use serde_json::{json, Value};

use crate::field::FieldCause;
use crate::kinds::KindRules;
use crate::table::print::count_map;
use crate::table::{col, Column, AGE, NAME};

/// The rules of `core/v1` ConfigMap.
#[derive(Debug, Clone, Copy, Default)]
pub struct ConfigMap;

impl KindRules for ConfigMap {
    fn validate_update(&self, old: &Value, new: &Value) -> Vec<FieldCause> {
        immutable_data(old, new)
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            NAME,
            col("Data", "string", 0, "Number of data entries."),
            AGE,
        ]
    }

    fn cells(&self, obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        vec![
            crate::table::name_cell(obj),
            json!(count_map(obj, &["data"]) + count_map(obj, &["binaryData"])),
            crate::table::age_cell(obj, now),
        ]
    }
}

/// Upstream forbids changing the data of a ConfigMap or Secret marked `immutable`.
pub(crate) fn immutable_data(old: &Value, new: &Value) -> Vec<FieldCause> {
    if old.get("immutable") != Some(&Value::Bool(true)) {
        return Vec::new();
    }
    ["data", "binaryData", "stringData"]
        .into_iter()
        .filter(|field| old.get(*field) != new.get(*field))
        .map(|field| FieldCause::forbidden(field, "field is immutable when `immutable` is set"))
        .collect()
}
