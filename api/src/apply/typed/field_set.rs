//! The set of fields an object sets (upstream's `ToFieldSet`), and the widening of a set to
//! include the struct fields its paths pass through (`EnsureNamedFieldsAreMembers`), which
//! pruning uses so a struct emptied by an apply goes away with its last field.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::{index_items, InvalidObject};
use crate::apply::fieldset::FieldSet;
use crate::apply::path::PathElement;
use crate::apply::schema::{field_of, items_of, ApplySchema, DeducedSchema, ListType, MapType};

/// The leaf fields `object` sets under `schema`.
pub(crate) fn field_set(
    object: &Value,
    schema: &dyn ApplySchema,
) -> Result<FieldSet, InvalidObject> {
    let mut set = FieldSet::new();
    walk(object, schema, &mut Vec::new(), &mut set)?;
    Ok(set)
}

fn walk(
    value: &Value,
    schema: &dyn ApplySchema,
    path: &mut Vec<PathElement>,
    set: &mut FieldSet,
) -> Result<(), InvalidObject> {
    match value {
        Value::Object(map) => {
            if schema.map_type() == MapType::Atomic {
                set.insert(path);
                return Ok(());
            }
            for (key, child) in map {
                let field = field_of(schema, key);
                path.push(PathElement::Field(key.clone()));
                walk(child, &*field.schema, path, set)?;
                let empty = child.is_null() || child.as_object().is_some_and(|map| map.is_empty());
                // Struct fields are owned through what they hold; plain-map keys and empty or
                // null values are owned themselves.
                if empty || !field.declared {
                    set.insert(path);
                }
                path.pop();
            }
        }
        Value::Array(items) => {
            let list_type = schema.list_type();
            if list_type == ListType::Atomic {
                set.insert(path);
                return Ok(());
            }
            let item_schema = items_of(schema);
            let indexed = index_items(items, &list_type, path)?;
            let mut seen = BTreeSet::new();
            let mut duplicates = BTreeSet::new();
            for (element, _) in &indexed {
                if !seen.insert(element) {
                    duplicates.insert(element);
                }
            }
            // Items whose key repeats (allowed in stored objects, e.g. env vars) are owned as
            // whole items: their fields cannot be told apart.
            for element in &duplicates {
                path.push((*element).clone());
                set.insert(path);
                path.pop();
            }
            for (element, item) in &indexed {
                if duplicates.contains(element) {
                    continue;
                }
                path.push(element.clone());
                walk(item, &*item_schema, path, set)?;
                set.insert(path);
                path.pop();
            }
        }
        // A null is recorded by the map that holds it.
        Value::Null => {}
        _ => set.insert(path),
    }
    Ok(())
}

/// `set` plus every declared struct field that one of its paths passes through.
pub(crate) fn ensure_named_fields_are_members(
    set: &FieldSet,
    schema: &dyn ApplySchema,
) -> FieldSet {
    let mut out = FieldSet {
        members: set.members.clone(),
        children: BTreeMap::new(),
    };
    for (element, child) in set.children() {
        let child_schema: Box<dyn ApplySchema + '_> = match element {
            PathElement::Field(name) => {
                let field = field_of(schema, name);
                if field.declared {
                    out.members.insert(element.clone());
                }
                field.schema
            }
            PathElement::Key(_) => items_of(schema),
            PathElement::Value(_) | PathElement::Index(_) => Box::new(DeducedSchema),
        };
        out.children.insert(
            element.clone(),
            ensure_named_fields_are_members(child, &*child_schema),
        );
    }
    out
}
