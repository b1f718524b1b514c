//! The CRD object's own rules (`apiextensions/validation` upstream).

use serde_json::Value;

use crate::field::FieldCause;

/// Validates a new CRD (placeholder until the CRD rules land).
pub fn validate_crd(_crd: &Value) -> Vec<FieldCause> {
    Vec::new()
}

/// Validates an update of a CRD.
pub fn validate_crd_update(_old: &Value, _new: &Value) -> Vec<FieldCause> {
    Vec::new()
}

/// Applies upstream's defaults to a CRD.
pub fn default_crd(_crd: &mut Value) {}
