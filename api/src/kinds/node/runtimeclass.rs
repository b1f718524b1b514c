//! RuntimeClasses: the handler (a DNS label, immutable), overhead and
//! scheduling checks, and the HANDLER column.

use serde_json::{json, Value};

use crate::field::FieldCause;
use crate::kinds::{immutable_fields, KindRules};
use crate::table::print::str_at;
use crate::table::{col, Column, AGE, NAME};

/// The rules of `node.k8s.io/v1` RuntimeClass.
#[derive(Debug, Clone, Copy, Default)]
pub struct RuntimeClass;

impl KindRules for RuntimeClass {
    fn validate(&self, obj: &Value) -> Vec<FieldCause> {
        let handler = str_at(obj, &["handler"]).unwrap_or("");
        let mut causes: Vec<FieldCause> = crate::validation::is_dns1123_label(handler)
            .into_iter()
            .map(|msg| FieldCause::invalid("handler", &json!(handler), msg))
            .collect();
        if let Some(tolerations) = obj
            .pointer("/scheduling/tolerations")
            .and_then(Value::as_array)
        {
            for (i, t) in tolerations.iter().enumerate() {
                if let Some(op) = str_at(t, &["operator"]) {
                    if !matches!(op, "Equal" | "Exists") {
                        causes.push(FieldCause::not_supported(
                            format!("scheduling.tolerations[{i}].operator"),
                            &json!(op),
                            &["Equal", "Exists"],
                        ));
                    }
                }
            }
        }
        causes
    }

    fn validate_update(&self, old: &Value, new: &Value) -> Vec<FieldCause> {
        immutable_fields(old, new, &["/handler"])
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            NAME,
            col("Handler", "string", 0, "Handler specifies the underlying runtime and configuration that the CRI implementation will use to handle pods of this class."),
            AGE,
        ]
    }

    fn cells(&self, obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        vec![
            crate::table::name_cell(obj),
            json!(str_at(obj, &["handler"]).unwrap_or_default()),
            crate::table::age_cell(obj, now),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handler_must_be_a_label_and_is_immutable() {
        let ok = json!({"handler": "runc"});
        assert!(RuntimeClass.validate(&ok).is_empty());
        let bad = RuntimeClass.validate(&json!({"handler": "Bad_Handler"}));
        assert_eq!(bad[0].field, "handler");
        assert!(
            bad[0]
                .message
                .starts_with("Invalid value: \"Bad_Handler\": a lowercase RFC 1123 label"),
            "{bad:?}"
        );
        assert_eq!(RuntimeClass.validate(&json!({}))[0].field, "handler");
        assert_eq!(
            RuntimeClass.validate_update(&ok, &json!({"handler": "kata"}))[0].field,
            "handler"
        );
    }
}
