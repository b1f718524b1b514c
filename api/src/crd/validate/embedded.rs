//! `x-kubernetes-embedded-resource` objects: apiVersion and kind required and
//! well-formed, metadata's names, labels and annotations valid (upstream's
//! `schema/objectmeta` validation).

use serde_json::Value;

use super::invalid_msg;
use crate::crd::{path, Additional, Node};
use crate::field::FieldCause;
use crate::validation::{
    is_dns1123_label, is_qualified_name, is_valid_label_value, is_valid_path_segment_name,
    is_valid_path_segment_prefix,
};

/// Upstream's limit on the total size of an object's annotations.
const ANNOTATIONS_MAX_BYTES: usize = 256 * 1024;

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
    if let Some(Value::Object(meta)) = map.get("metadata") {
        metadata(meta, &path::child(at, "metadata"), errors);
    }
}

/// The object-meta rules that make sense inside another object.
fn metadata(meta: &serde_json::Map<String, Value>, at: &str, errors: &mut Vec<FieldCause>) {
    let text = |key: &str| meta.get(key).and_then(Value::as_str).unwrap_or("");
    let mut each = |field: String, value: &str, problems: Vec<String>| {
        for p in problems {
            errors.push(FieldCause::invalid(&field, &Value::from(value), p));
        }
    };
    let name = text("name");
    if !name.is_empty() {
        each(
            path::child(at, "name"),
            name,
            is_valid_path_segment_name(name),
        );
    }
    let generate = text("generateName");
    if !generate.is_empty() {
        each(
            path::child(at, "generateName"),
            generate,
            is_valid_path_segment_prefix(generate),
        );
    }
    let namespace = text("namespace");
    if !namespace.is_empty() {
        each(
            path::child(at, "namespace"),
            namespace,
            is_dns1123_label(namespace),
        );
    }
    if let Some(Value::Object(labels)) = meta.get("labels") {
        let here = path::child(at, "labels");
        for (k, v) in labels {
            each(here.clone(), k, is_qualified_name(k));
            let v = v.as_str().unwrap_or("");
            each(here.clone(), v, is_valid_label_value(v));
        }
    }
    if let Some(Value::Object(annotations)) = meta.get("annotations") {
        let here = path::child(at, "annotations");
        let mut size = 0;
        for (k, v) in annotations {
            each(here.clone(), k, is_qualified_name(&k.to_lowercase()));
            size += k.len() + v.as_str().map_or(0, str::len);
        }
        if size > ANNOTATIONS_MAX_BYTES {
            errors.push(FieldCause {
                reason: "FieldValueTooLong",
                field: here,
                message: format!("Too long: may not be more than {ANNOTATIONS_MAX_BYTES} bytes"),
            });
        }
    }
}
