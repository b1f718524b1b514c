//! The removal of a field set from an object (upstream's `TypedValue.RemoveItems`), which
//! pruning uses to drop fields an applier stopped applying. A map or list emptied by the removal
//! becomes null, as upstream leaves it; the caller strips nulls from what it stores.

use serde_json::{Map, Value};

use super::item_element;
use crate::apply::fieldset::FieldSet;
use crate::apply::path::PathElement;
use crate::apply::schema::{field_of, items_of, ApplySchema, ListType, MapType};

/// `value` without the paths in `to_remove` (a member removes the whole value at its path).
pub(crate) fn remove_items(value: &Value, to_remove: &FieldSet, schema: &dyn ApplySchema) -> Value {
    match value {
        Value::Object(map) if !map.is_empty() && schema.map_type() == MapType::Granular => {
            let mut out = Map::new();
            for (key, child) in map {
                let element = PathElement::Field(key.clone());
                if to_remove.has_member(&element) {
                    continue;
                }
                let kept = match to_remove.with_prefix(&element) {
                    Some(below) => remove_items(child, below, &*field_of(schema, key).schema),
                    None => child.clone(),
                };
                out.insert(key.clone(), kept);
            }
            if out.is_empty() {
                Value::Null
            } else {
                Value::Object(out)
            }
        }
        Value::Array(items) if !items.is_empty() => {
            let list_type = schema.list_type();
            if list_type == ListType::Atomic {
                return value.clone();
            }
            let item_schema = items_of(schema);
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                // An item without a key cannot be named, so nothing can remove it.
                let Ok(element) = item_element(item, &list_type) else {
                    out.push(item.clone());
                    continue;
                };
                if to_remove.has_member(&element) {
                    continue;
                }
                out.push(match to_remove.with_prefix(&element) {
                    Some(below) => remove_items(item, below, &*item_schema),
                    None => item.clone(),
                });
            }
            if out.is_empty() {
                Value::Null
            } else {
                Value::Array(out)
            }
        }
        _ => value.clone(),
    }
}
