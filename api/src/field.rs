//! One field-level problem of an object, as upstream's `field.Error` reports it
//! in a `Status`'s `details.causes`: the reason, the field path and upstream's
//! wording. Every kind's validation speaks in these, so the API server can answer
//! 422 Invalid the same way for all of them.

use serde_json::Value;

/// One field-level problem, reported in `details.causes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldCause {
    /// Upstream cause type, e.g. `FieldValueInvalid`, `FieldValueRequired`.
    pub reason: &'static str,
    /// The offending field path, e.g. `spec.replicas`.
    pub field: String,
    /// Human-readable explanation, as upstream words it.
    pub message: String,
}

impl FieldCause {
    /// A field whose value breaks a rule (`Invalid value: …`).
    pub fn invalid(field: impl Into<String>, value: &Value, detail: impl AsRef<str>) -> Self {
        let shown = match value {
            Value::String(s) => format!("\"{s}\""),
            other => other.to_string(),
        };
        Self {
            reason: "FieldValueInvalid",
            field: field.into(),
            message: format!("Invalid value: {shown}: {}", detail.as_ref()),
        }
    }

    /// A required field that is missing.
    pub fn required(field: impl Into<String>, detail: impl AsRef<str>) -> Self {
        let detail = detail.as_ref();
        Self {
            reason: "FieldValueRequired",
            field: field.into(),
            message: if detail.is_empty() {
                "Required value".to_owned()
            } else {
                format!("Required value: {detail}")
            },
        }
    }

    /// A field that may not change after creation.
    pub fn immutable(field: impl Into<String>, value: &Value) -> Self {
        let mut cause = Self::invalid(field, value, "field is immutable");
        cause.reason = "FieldValueInvalid";
        cause
    }

    /// A field value outside an enumerated set.
    pub fn not_supported(field: impl Into<String>, value: &Value, allowed: &[&str]) -> Self {
        let allowed: Vec<String> = allowed.iter().map(|a| format!("\"{a}\"")).collect();
        Self {
            reason: "FieldValueNotSupported",
            field: field.into(),
            message: format!(
                "Unsupported value: {value}: supported values: {}",
                allowed.join(", ")
            ),
        }
    }

    /// A value that duplicates another in a list or across the cluster.
    pub fn duplicate(field: impl Into<String>, value: &Value) -> Self {
        Self {
            reason: "FieldValueDuplicate",
            field: field.into(),
            message: format!("Duplicate value: {value}"),
        }
    }

    /// A field that must not be set.
    pub fn forbidden(field: impl Into<String>, detail: impl AsRef<str>) -> Self {
        Self {
            reason: "FieldValueForbidden",
            field: field.into(),
            message: format!("Forbidden: {}", detail.as_ref()),
        }
    }
}
