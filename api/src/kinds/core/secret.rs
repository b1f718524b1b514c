//! Secrets: the `Opaque` default type, write-only `stringData` folded into
//! base64 `data`, immutable data once `immutable` is set, the TYPE and DATA
//! columns and the `type` field selector.

use serde_json::{json, Map, Value};

use super::configmap::immutable_data;
use crate::field::FieldCause;
use crate::kinds::{set_default, KindRules};
use crate::table::print::{count_map, str_at};
use crate::table::{col, Column, AGE, NAME};

/// The rules of `core/v1` Secret.
#[derive(Debug, Clone, Copy, Default)]
pub struct Secret;

impl KindRules for Secret {
    fn default(&self, obj: &mut Value) {
        if let Some(map) = obj.as_object_mut() {
            set_default(map, "type", json!("Opaque"));
            fold_string_data(map);
        }
    }

    fn validate_update(&self, old: &Value, new: &Value) -> Vec<FieldCause> {
        immutable_data(old, new)
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            NAME,
            col("Type", "string", 0, "The type of the secret."),
            col("Data", "string", 0, "Number of data entries."),
            AGE,
        ]
    }

    fn cells(&self, obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        vec![
            crate::table::name_cell(obj),
            json!(str_at(obj, &["type"]).unwrap_or("Opaque")),
            json!(count_map(obj, &["data"])),
            crate::table::age_cell(obj, now),
        ]
    }

    fn field_labels(&self) -> &'static [&'static str] {
        &["type"]
    }
}

/// Upstream folds the write-only `stringData` into base64 `data` (it wins on clashes).
fn fold_string_data(secret: &mut Map<String, Value>) {
    use base64::Engine;
    let Some(Value::Object(string_data)) = secret.remove("stringData") else {
        return;
    };
    let data = secret.entry("data").or_insert_with(|| json!({}));
    if !data.is_object() {
        *data = json!({});
    }
    let data = data.as_object_mut().expect("just made an object");
    for (key, value) in string_data {
        let text = value.as_str().unwrap_or_default();
        data.insert(
            key,
            json!(base64::engine::general_purpose::STANDARD.encode(text)),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_string_data_becomes_base64_data() {
        let mut s = json!({"data": {"a": "eA=="}, "stringData": {"password": "s3cret", "a": "y"}});
        Secret.default(&mut s);
        assert_eq!(
            s,
            json!({"data": {"a": "eQ==", "password": "czNjcmV0"}, "type": "Opaque"})
        );
    }
}
