//! The merge of an applied configuration into a live object (upstream's `TypedValue.Merge` with
//! "keep the right-hand side"): maps merge key by key, map lists item by item by key, sets by
//! value, and atomic values are replaced. The order of merged list items follows upstream, so
//! applying the same configuration twice never reorders a list.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde_json::{Map, Value};

use super::{index_items, is_empty_container, InvalidObject};
use crate::apply::path::PathElement;
use crate::apply::schema::{field_of, items_of, ApplySchema, ListType, MapType};

/// `applied` merged into `live`. Fails when `applied` has two list items with the same key, or
/// items without keys.
pub(crate) fn merge(
    live: &Value,
    applied: &Value,
    schema: &dyn ApplySchema,
) -> Result<Value, InvalidObject> {
    let merged = merge_values(Some(live), Some(applied), schema, &mut Vec::new())?;
    Ok(merged.unwrap_or(Value::Null))
}

fn merge_values(
    lhs: Option<&Value>,
    rhs: Option<&Value>,
    schema: &dyn ApplySchema,
    path: &mut Vec<PathElement>,
) -> Result<Option<Value>, InvalidObject> {
    let Some(rhs) = rhs else {
        return Ok(lhs.cloned());
    };
    match rhs {
        Value::Object(right) => {
            let left = lhs.and_then(Value::as_object);
            let leaf = schema.map_type() == MapType::Atomic
                || (is_empty_container(lhs.filter(|value| value.is_object())) && right.is_empty());
            if leaf {
                return Ok(Some(rhs.clone()));
            }
            merge_maps(left, right, schema, path).map(|map| Some(Value::Object(map)))
        }
        Value::Array(right) => {
            let left = lhs.and_then(Value::as_array);
            let list_type = schema.list_type();
            let leaf = list_type == ListType::Atomic
                || (left.is_none_or(Vec::is_empty) && right.is_empty());
            if leaf {
                return Ok(Some(rhs.clone()));
            }
            merge_lists(left, right, &list_type, schema, path)
                .map(|items| Some(Value::Array(items)))
        }
        scalar => Ok(Some(scalar.clone())),
    }
}

fn merge_maps(
    left: Option<&Map<String, Value>>,
    right: &Map<String, Value>,
    schema: &dyn ApplySchema,
    path: &mut Vec<PathElement>,
) -> Result<Map<String, Value>, InvalidObject> {
    let mut out = Map::new();
    let left_keys = left.into_iter().flat_map(|left| left.keys());
    let right_only = right
        .keys()
        .filter(|key| !left.is_some_and(|left| left.contains_key(*key)));
    for key in left_keys.chain(right_only) {
        let field = field_of(schema, key);
        path.push(PathElement::Field(key.clone()));
        let merged = merge_values(
            left.and_then(|left| left.get(key)),
            right.get(key),
            &*field.schema,
            path,
        )?;
        path.pop();
        if let Some(merged) = merged {
            out.insert(key.clone(), merged);
        }
    }
    Ok(out)
}

/// Merges two granular lists. Items only in the live list keep their place; items in the
/// applied list come in its order, with live-only items that sat between shared items kept
/// between them.
fn merge_lists(
    left: Option<&Vec<Value>>,
    right: &[Value],
    list_type: &ListType,
    schema: &dyn ApplySchema,
    path: &mut Vec<PathElement>,
) -> Result<Vec<Value>, InvalidObject> {
    let item_schema = items_of(schema);
    let right_items = index_items(right, list_type, path)?;
    let mut observed_right = BTreeMap::new();
    for (element, item) in &right_items {
        if observed_right.insert(element.clone(), *item).is_some() {
            return Err(InvalidObject::at(
                path,
                format!("duplicate entries for key {element}"),
            ));
        }
    }
    let left_items = index_items(left.map_or(&[][..], Vec::as_slice), list_type, path)?;
    // A key repeated in the live list merges as though its value were null.
    let mut observed_left: BTreeMap<PathElement, Option<&Value>> = BTreeMap::new();
    for (element, item) in &left_items {
        observed_left
            .entry(element.clone())
            .and_modify(|seen| *seen = None)
            .or_insert(Some(*item));
    }
    let left_child = |element: &PathElement| -> Option<&Value> {
        observed_left
            .get(element)
            .map(|item| item.unwrap_or(&Value::Null))
    };

    let mut shared: VecDeque<&PathElement> = right_items
        .iter()
        .map(|(element, _)| element)
        .filter(|element| observed_left.contains_key(*element))
        .collect();
    let mut next_shared = shared.pop_front();
    let mut merged_right: BTreeSet<&PathElement> = BTreeSet::new();
    let mut out = Vec::with_capacity(left_items.len().max(right_items.len()));
    let mut merge_item = |element: &PathElement,
                          lhs: Option<&Value>,
                          rhs: Option<&Value>,
                          out: &mut Vec<Value>|
     -> Result<(), InvalidObject> {
        path.push(element.clone());
        let merged = merge_values(lhs, rhs, &*item_schema, path)?;
        path.pop();
        out.extend(merged);
        Ok(())
    };

    let (mut l, mut r) = (0, 0);
    while l < left_items.len() || r < right_items.len() {
        if l < left_items.len() && r < right_items.len() {
            let element = &left_items[l].0;
            if *element == right_items[r].0 {
                merged_right.insert(element);
                merge_item(
                    element,
                    left_child(element),
                    Some(right_items[r].1),
                    &mut out,
                )?;
                l += 1;
                r += 1;
                next_shared = shared.pop_front();
                continue;
            }
            // A shared item out of the applied order: it comes when the applied list reaches it.
            if observed_right.contains_key(element)
                && next_shared.is_some_and(|next| next != element)
            {
                l += 1;
                continue;
            }
        }
        if l < left_items.len() {
            let (element, item) = &left_items[l];
            if !observed_right.contains_key(element) {
                merge_item(element, Some(item), None, &mut out)?;
                l += 1;
                continue;
            } else if merged_right.contains(element) {
                l += 1;
            }
        }
        if r < right_items.len() {
            let (element, item) = &right_items[r];
            merged_right.insert(element);
            merge_item(element, left_child(element), Some(item), &mut out)?;
            r += 1;
            if next_shared == Some(element) {
                next_shared = shared.pop_front();
            }
        }
    }
    Ok(out)
}
