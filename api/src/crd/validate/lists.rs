//! `x-kubernetes-list-type: set|map`: no duplicate items or keys (upstream's
//! `schema/listtype` validation), reported at the repeated item.

use std::collections::HashMap;

use serde_json::Value;

use super::{canonical, invalid_msg, render};
use crate::crd::{path, Additional, Node};
use crate::field::FieldCause;

/// `x-kubernetes-list-type: set|map` uniqueness, everywhere in the object.
pub(super) fn walk(s: &Node, value: &Value, at: &str, errors: &mut Vec<FieldCause>) {
    match value {
        Value::Array(items) => {
            match s.list_type.as_deref() {
                Some("set") => {
                    for i in second_occurrences(items.iter().map(Some)) {
                        errors.push(duplicate(&path::index(at, i), &items[i]));
                    }
                }
                Some("map") => list_map(s, items, at, errors),
                _ => {}
            }
            if let Some(item_schema) = &s.items {
                for (i, item) in items.iter().enumerate() {
                    walk(item_schema, item, &path::index(at, i), errors);
                }
            }
        }
        Value::Object(map) => {
            for (key, child) in map {
                if let Some(prop) = s.property(key) {
                    walk(prop, child, &path::child(at, key), errors);
                } else if let Some(Additional::Schema(sub)) = &s.additional {
                    walk(sub, child, &path::key(at, key), errors);
                }
            }
        }
        _ => {}
    }
}

fn list_map(s: &Node, items: &[Value], at: &str, errors: &mut Vec<FieldCause>) {
    for (i, item) in items.iter().enumerate() {
        if !item.is_object() && !item.is_null() {
            errors.push(invalid_msg(
                &path::index(at, i),
                item,
                "must be an object for an array of list-type map".into(),
            ));
            return;
        }
    }
    let keys: Vec<Value> = items
        .iter()
        .map(|item| {
            let mut key = serde_json::Map::new();
            for k in &s.list_map_keys {
                if let Some(v) = item.get(k) {
                    key.insert(k.clone(), v.clone());
                }
            }
            Value::Object(key)
        })
        .collect();
    for i in second_occurrences(keys.iter().map(Some)) {
        errors.push(duplicate(&path::index(at, i), &keys[i]));
    }
}

/// Indices of the second occurrence of each repeated value (upstream reports
/// a value once, at its first repetition).
fn second_occurrences<'a>(values: impl Iterator<Item = Option<&'a Value>>) -> Vec<usize> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut out = Vec::new();
    for (i, v) in values.enumerate() {
        let key = v.map(canonical).unwrap_or_default();
        let count = seen.entry(key).or_insert(0);
        *count += 1;
        if *count == 2 {
            out.push(i);
        }
    }
    out
}

fn duplicate(at: &str, value: &Value) -> FieldCause {
    FieldCause {
        reason: "FieldValueDuplicate",
        field: at.to_owned(),
        message: format!("Duplicate value: {}", render(value)),
    }
}
