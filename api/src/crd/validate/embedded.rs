//! `x-kubernetes-embedded-resource` objects: apiVersion and kind required and
//! well-formed (upstream's `schema/objectmeta` validation, metadata aside).

use serde_json::Value;

use super::invalid_msg;
use crate::crd::{path, Additional, Node};
use crate::field::FieldCause;

/// Checks every embedded resource in `value`; map values are named `[key]`.
pub(super) fn walk(s: &Node, value: &Value, at: &str, errors: &mut Vec<FieldCause>) {
    match value {
        Value::Object(map) => {
            if s.embedded {
                embedded(map, at, errors);
            }
            for (key, child) in map {
                if let Some(prop) = s.property(key) {
                    walk(prop, child, &path::child(at, key), errors);
                } else if let Some(Additional::Schema(sub)) = &s.additional {
                    walk(sub, child, &path::key(at, key), errors);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = &s.items {
                for (i, item) in items.iter().enumerate() {
                    walk(item_schema, item, &path::index(at, i), errors);
                }
            }
        }
        _ => {}
    }
}

/// apiVersion and kind of an `x-kubernetes-embedded-resource` object.
fn embedded(map: &serde_json::Map<String, Value>, at: &str, errors: &mut Vec<FieldCause>) {
    let api_version = path::child(at, "apiVersion");
    let kind = path::child(at, "kind");
    if !map.contains_key("apiVersion") {
        errors.push(FieldCause::required(&api_version, "must not be empty"));
    }
    if !map.contains_key("kind") {
        errors.push(FieldCause::required(&kind, "must not be empty"));
    }
    match map.get("apiVersion") {
        Some(Value::String(v)) if v.is_empty() => errors.push(invalid_msg(
            &api_version,
            &Value::from(""),
            "must not be empty".into(),
        )),
        Some(Value::String(v)) if v.split('/').count() > 2 => errors.push(invalid_msg(
            &api_version,
            &Value::from(v.as_str()),
            format!("unexpected GroupVersion string: {v}"),
        )),
        Some(Value::String(_)) | None => {}
        Some(other) => errors.push(invalid_msg(&api_version, other, "must be a string".into())),
    }
    match map.get("kind") {
        Some(Value::String(v)) if v.is_empty() => errors.push(invalid_msg(
            &kind,
            &Value::from(""),
            "must not be empty".into(),
        )),
        Some(Value::String(v)) => {
            let errs = crate::validation::is_dns1035_label(&v.to_lowercase());
            if !errs.is_empty() {
                errors.push(invalid_msg(
                    &kind,
                    &Value::from(v.as_str()),
                    format!(
                        "may have mixed case, but should otherwise match: {}",
                        errs.join(",")
                    ),
                ));
            }
        }
        None => {}
        Some(other) => errors.push(invalid_msg(&kind, other, "must be a string".into())),
    }
}
