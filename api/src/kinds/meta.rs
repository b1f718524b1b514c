//! Object metadata rules every kind shares: names, labels and annotations.

use serde_json::Value;

use super::NameRule;
use crate::field::FieldCause;
use crate::validation as names;

/// Upstream's `ValidateObjectMeta`: the name under the kind's rule, label keys and
/// values, annotation keys and their total size.
pub fn validate_metadata(rule: NameRule, obj: &Value) -> Vec<FieldCause> {
    let mut causes = Vec::new();
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    if name.is_empty() {
        causes.push(FieldCause::required(
            "metadata.name",
            "name or generateName is required",
        ));
    } else {
        for problem in rule
            .check(name)
            .into_iter()
            .chain(names::is_valid_path_segment_name(name))
        {
            causes.push(FieldCause::invalid(
                "metadata.name",
                &Value::String(name.to_owned()),
                problem,
            ));
        }
    }
    if let Some(labels) = obj.pointer("/metadata/labels").and_then(Value::as_object) {
        for (key, value) in labels {
            for problem in names::is_qualified_name(key) {
                causes.push(FieldCause::invalid(
                    "metadata.labels",
                    &Value::String(key.clone()),
                    problem,
                ));
            }
            let value = value.as_str().unwrap_or_default();
            for problem in names::is_valid_label_value(value) {
                causes.push(FieldCause::invalid(
                    "metadata.labels",
                    &Value::String(value.to_owned()),
                    problem,
                ));
            }
        }
    }
    if let Some(annotations) = obj
        .pointer("/metadata/annotations")
        .and_then(Value::as_object)
    {
        let total: usize = annotations
            .iter()
            .map(|(k, v)| k.len() + v.as_str().map_or(0, str::len))
            .sum();
        for key in annotations.keys() {
            for problem in names::is_qualified_name(&key.to_lowercase()) {
                causes.push(FieldCause::invalid(
                    "metadata.annotations",
                    &Value::String(key.clone()),
                    problem,
                ));
            }
        }
        if total > 256 * 1024 {
            causes.push(FieldCause {
                reason: "FieldValueTooLong",
                field: "metadata.annotations".into(),
                message: "Too long: must have at most 262144 bytes".into(),
            });
        }
    }
    causes
}
