//! Lists in a strategic merge patch: merging by key or as a set of primitives, the `$patch`
//! elements inside lists, and the element order that results (patch order first, server order
//! for the rest, `$setElementOrder` above both), as upstream's `mergeSlice` orders them.

use serde_json::{Map, Value};

use super::{merge_map, PatchError, PATCH_DIRECTIVE};
use crate::patch::path::{json_type, Path};
use crate::patch::schema::{MergeStrategy, NoSchema, PatchSchema};

/// Merges a patch list into the list `original` whose strategy is "merge": element-wise by `key`
/// for lists of objects, as an ordered set for lists of primitives (`key: None`).
///
/// Without `$setElementOrder`, upstream orders the result so that the elements the patch names
/// follow the patch's order and server-only elements stay before the patched elements the
/// server had after them; an element new to the list therefore lands before the server-only
/// elements that follow it, usually at the front. kube-apiserver does this, so we do too.
pub(super) fn merge_list(
    original: Vec<Value>,
    patch: &[Value],
    key: Option<&str>,
    schema: &dyn PatchSchema,
    path: &Path<'_>,
) -> Result<Vec<Value>, PatchError> {
    merge_list_tracking_storage(original, patch, key, schema, path).map(|(merged, _)| merged)
}

/// [`merge_list`], also returning the server order a following `$setElementOrder` must use.
///
/// Upstream deletes and appends elements of a keyed list in place, in the storage its caller
/// still reads the server order from, so that order sees deleted elements gone and new
/// elements filling the freed places. Results of `$setElementOrder` depend on it, so the
/// returned list replays those edits on a copy of `original` of the same length.
fn merge_list_tracking_storage(
    original: Vec<Value>,
    patch: &[Value],
    key: Option<&str>,
    schema: &dyn PatchSchema,
    path: &Path<'_>,
) -> Result<(Vec<Value>, Vec<Value>), PatchError> {
    if original.is_empty() && patch.is_empty() {
        return Ok((original, Vec::new()));
    }
    let holds_objects = check_element_types(&original, patch, path)?;
    if !holds_objects {
        if let Some(key) = key {
            return Err(PatchError::ElementNotAnObject {
                path: path.to_string(),
                key: key.to_owned(),
                found: json_type(original.first().or(patch.first()).unwrap_or(&Value::Null)),
            });
        }
        let storage = original.clone();
        return Ok((merge_primitive_set(original, patch), storage));
    }
    let Some(key) = key else {
        return Err(PatchError::NoMergeKey {
            path: path.to_string(),
        });
    };
    let item_schema = schema.items();
    let item_schema = item_schema.as_deref().unwrap_or(&NoSchema);

    // `$patch` elements first: deletions by key, or `replace` for the whole list.
    let mut storage = original;
    let mut live = storage.len();
    let mut replace = false;
    let mut plain = Vec::with_capacity(patch.len());
    for item in patch {
        let Some(directive) = item.get(PATCH_DIRECTIVE) else {
            plain.push(item);
            continue;
        };
        match directive.as_str() {
            Some("delete") => {
                let value = merge_key_value(item, key, path)?;
                while let Some(index) = storage[..live]
                    .iter()
                    .position(|element| element.get(key) == Some(value))
                {
                    // Shift the rest down, leaving the last slot holding what it held (as
                    // Go's in-place append does).
                    storage[index..live].rotate_left(1);
                    if index + 1 < live {
                        storage[live - 1] = storage[live - 2].clone();
                    }
                    live -= 1;
                }
            }
            Some("replace") => replace = true,
            Some("merge") => return Err(merge_directive_in_list(path)),
            _ => return Err(unknown_list_directive(directive, path)),
        }
    }
    let mut merged = storage[..live].to_vec();
    if replace {
        // The list becomes the patch's other elements, in the patch's order.
        merged = Vec::with_capacity(plain.len());
        for item in plain.drain(..) {
            let value = merge_key_value(item, key, path)?;
            merged.push(merge_element(
                None,
                item,
                item_schema,
                &path.keyed(key, value),
            )?);
        }
    }

    let server_order = merged.clone();
    for item in &plain {
        let value = merge_key_value(item, key, path)?;
        let element_path = path.keyed(key, value);
        match merged
            .iter()
            .position(|element| element.get(key) == Some(value))
        {
            Some(index) => {
                let existing = match merged[index].take() {
                    Value::Object(map) => map,
                    _ => Map::new(),
                };
                merged[index] = merge_element(Some(existing), item, item_schema, &element_path)?;
            }
            None => {
                merged.push(merge_element(None, item, item_schema, &element_path)?);
                if let Some(slot) = storage.get_mut(merged.len() - 1) {
                    *slot = (*item).clone();
                }
            }
        }
    }

    let mut in_patch = Vec::new();
    let mut server_only = Vec::new();
    for element in merged {
        let value = merge_key_value(&element, key, path)?;
        if position(plain.iter().copied(), value, Some(key)).is_some() {
            in_patch.push(element);
        } else {
            server_only.push(element);
        }
    }
    let ordered = normalize_order(
        in_patch,
        server_only,
        plain.iter().copied(),
        &server_order,
        Some(key),
    );
    Ok((ordered, storage))
}

/// A list taken from the patch as it is (absent before, or replaced): nulls and directives in
/// its maps are resolved as if merged into nothing, and its `$patch` elements are dropped.
pub(super) fn sanitize_list(
    patch: &[Value],
    schema: &dyn PatchSchema,
    path: &Path<'_>,
) -> Result<Vec<Value>, PatchError> {
    let item_schema = schema.items();
    let item_schema = item_schema.as_deref().unwrap_or(&NoSchema);
    let mut list = Vec::with_capacity(patch.len());
    for item in patch {
        match item {
            Value::Object(map) => match map.get(PATCH_DIRECTIVE) {
                None => {
                    let merged = merge_map(None, map, item_schema, path)?;
                    list.push(Value::Object(merged.unwrap_or_default()));
                }
                Some(directive) => match directive.as_str() {
                    // Nothing to delete, and the list is replaced anyway.
                    Some("delete" | "replace") => {}
                    Some("merge") => return Err(merge_directive_in_list(path)),
                    _ => return Err(unknown_list_directive(directive, path)),
                },
            },
            Value::Array(inner) => list.push(Value::Array(sanitize_list(inner, &NoSchema, path)?)),
            other => list.push(other.clone()),
        }
    }
    Ok(list)
}

/// `$setElementOrder/<field>`: merges the patch's list for `field` (if any) into the object's,
/// then orders the result as the directive lists it, keeping server-only elements where they
/// were relative to the others.
pub(super) fn merge_with_order(
    original: &mut Map<String, Value>,
    field: &str,
    order: &Value,
    patch_list: Option<&Value>,
    schema: &dyn PatchSchema,
    path: &Path<'_>,
) -> Result<(), PatchError> {
    let invalid = |reason: String| PatchError::InvalidSetElementOrder {
        path: path.to_string(),
        reason,
    };
    let Value::Array(order) = order else {
        return Err(invalid(format!(
            "`$setElementOrder/{field}` must be a list, but it is a {}",
            json_type(order)
        )));
    };
    let strategy = schema.strategy();
    let key = strategy.merge_key();
    if let Some(key) = key {
        if let Some(element) = order.iter().find(|element| element.get(key).is_none()) {
            return Err(invalid(format!(
                "every element of `$setElementOrder/{field}` must set the merge key `{key}`, but {element} does not"
            )));
        }
    }

    let original_list = match original.get(field) {
        None | Some(Value::Null) => None,
        Some(Value::Array(_)) => match original.get_mut(field).map(Value::take) {
            Some(Value::Array(items)) => Some(items),
            _ => None,
        },
        Some(other) => {
            return Err(PatchError::InvalidType {
                path: path.to_string(),
                expected: "list",
                actual: json_type(other),
            })
        }
    };
    let patch_list = match patch_list {
        None => None,
        Some(Value::Null) => {
            // The patch deletes the list; there is nothing left to order.
            original.shift_remove(field);
            return Ok(());
        }
        Some(Value::Array(items)) => Some(items.as_slice()),
        Some(other) => {
            return Err(PatchError::InvalidType {
                path: path.to_string(),
                expected: "list",
                actual: json_type(other),
            })
        }
    };
    if let Some(patch_list) = patch_list {
        check_patch_follows_order(patch_list, order, key, path)?;
    }

    let (merged, server_order) = match (original_list, patch_list) {
        (None, None) => return Ok(()),
        (Some(items), None) => (items.clone(), items),
        (None, Some(patch_items)) => (sanitize_list(patch_items, schema, path)?, Vec::new()),
        (Some(items), Some(patch_items)) => match &strategy.merge {
            MergeStrategy::Merge { key } => {
                merge_list_tracking_storage(items, patch_items, key.as_deref(), schema, path)?
            }
            _ => (sanitize_list(patch_items, schema, path)?, items),
        },
    };

    let mut in_order = Vec::new();
    let mut server_only = Vec::new();
    for element in merged {
        let probe = match key {
            Some(key) => merge_key_value(&element, key, path)?,
            None => &element,
        };
        if position(order, probe, key).is_some() {
            in_order.push(element);
        } else {
            server_only.push(element);
        }
    }
    let ordered = normalize_order(in_order, server_only, order, &server_order, key);
    original.insert(field.to_owned(), Value::Array(ordered));
    Ok(())
}

/// Checks that the patch list's elements appear in `order` in the same relative order
/// (`$patch` elements aside): upstream rejects a patch whose two orders disagree.
fn check_patch_follows_order(
    patch: &[Value],
    order: &[Value],
    key: Option<&str>,
    path: &Path<'_>,
) -> Result<(), PatchError> {
    if patch.is_empty() || order.is_empty() {
        return Ok(());
    }
    let mut remaining = order.iter();
    for item in patch
        .iter()
        .filter(|item| item.get(PATCH_DIRECTIVE).is_none())
    {
        let probe = match key {
            Some(key) => merge_key_value(item, key, path)?,
            None => item,
        };
        let found = remaining.any(|candidate| same_element(candidate, probe, key));
        if !found {
            return Err(PatchError::SetElementOrderMismatch {
                path: path.to_string(),
                patch: Value::from(patch.to_vec()).to_string(),
                order: Value::from(order.to_vec()).to_string(),
            });
        }
    }
    Ok(())
}

/// Merges one patch element of a keyed list into the matching element (or into nothing).
fn merge_element(
    original: Option<Map<String, Value>>,
    patch: &Value,
    schema: &dyn PatchSchema,
    path: &Path<'_>,
) -> Result<Value, PatchError> {
    let patch = patch.as_object().expect("element types were checked");
    Ok(Value::Object(
        merge_map(original, patch, schema, path)?.unwrap_or_default(),
    ))
}

/// The union of two lists of primitives without duplicates, ordered like upstream: patch
/// elements in patch order, the others where the server had them.
fn merge_primitive_set(original: Vec<Value>, patch: &[Value]) -> Vec<Value> {
    let mut union: Vec<Value> = Vec::with_capacity(original.len() + patch.len());
    for value in original.iter().chain(patch) {
        if !union.contains(value) {
            union.push(value.clone());
        }
    }
    let (in_patch, server_only) = union.into_iter().partition(|value| patch.contains(value));
    normalize_order(in_patch, server_only, patch, &original, None)
}

/// Orders a merged list: the elements named by the patch sorted by `patch_order`, the others by
/// `server_order`, then interleaved so each server-only element stays before the patch elements
/// the server had after it.
fn normalize_order<'p>(
    mut in_patch: Vec<Value>,
    mut server_only: Vec<Value>,
    patch_order: impl IntoIterator<Item = &'p Value> + Clone,
    server_order: &[Value],
    key: Option<&str>,
) -> Vec<Value> {
    let in_server_order = |element: &Value| position(server_order, identity(element, key), key);
    in_patch.sort_by_key(|element| {
        position(patch_order.clone(), identity(element, key), key).unwrap_or(usize::MAX)
    });
    server_only.sort_by_key(|element| in_server_order(element).unwrap_or(usize::MAX));

    let mut ordered = Vec::with_capacity(in_patch.len() + server_only.len());
    let mut in_patch = in_patch.into_iter().peekable();
    let mut server_only = server_only.into_iter().peekable();
    loop {
        let take_server = match (server_only.peek(), in_patch.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(server), Some(patched)) => {
                match (in_server_order(server), in_server_order(patched)) {
                    (Some(server_index), Some(patched_index)) => server_index < patched_index,
                    _ => false,
                }
            }
        };
        let next = if take_server {
            server_only.next()
        } else {
            in_patch.next()
        };
        ordered.extend(next);
    }
    ordered
}

/// What identifies an element: its merge key's value, or the element itself.
fn identity<'v>(element: &'v Value, key: Option<&str>) -> &'v Value {
    match key {
        Some(key) => element.get(key).unwrap_or(&Value::Null),
        None => element,
    }
}

/// Index of the first element of `list` identified by `probe` (a merge key value when `key` is
/// set, else a whole value).
fn position<'v>(
    list: impl IntoIterator<Item = &'v Value>,
    probe: &Value,
    key: Option<&str>,
) -> Option<usize> {
    list.into_iter()
        .position(|candidate| same_element(candidate, probe, key))
}

/// Whether `candidate` is the element identified by `probe`.
fn same_element(candidate: &Value, probe: &Value, key: Option<&str>) -> bool {
    match key {
        Some(key) => candidate.get(key) == Some(probe),
        None => candidate == probe,
    }
}

/// The value of the merge key of a list element, which must be an object that sets it.
fn merge_key_value<'v>(
    element: &'v Value,
    key: &str,
    path: &Path<'_>,
) -> Result<&'v Value, PatchError> {
    let Value::Object(map) = element else {
        return Err(PatchError::ElementNotAnObject {
            path: path.to_string(),
            key: key.to_owned(),
            found: json_type(element),
        });
    };
    map.get(key).ok_or_else(|| PatchError::MissingMergeKey {
        path: path.to_string(),
        key: key.to_owned(),
        element: element.to_string(),
    })
}

/// Checks that all elements of the two lists have one JSON type and none is a list; returns
/// whether that type is "object".
fn check_element_types(
    original: &[Value],
    patch: &[Value],
    path: &Path<'_>,
) -> Result<bool, PatchError> {
    let mut first: Option<&'static str> = None;
    for element in original.iter().chain(patch) {
        if element.is_array() {
            return Err(PatchError::ListOfLists {
                path: path.to_string(),
            });
        }
        let found = json_type(element);
        match first {
            None => first = Some(found),
            Some(first) if first != found => {
                return Err(PatchError::MixedElementTypes {
                    path: path.to_string(),
                    first,
                    second: found,
                })
            }
            Some(_) => {}
        }
    }
    Ok(first == Some("object"))
}

fn merge_directive_in_list(path: &Path<'_>) -> PatchError {
    PatchError::MergeDirectiveInList {
        path: path.to_string(),
    }
}

fn unknown_list_directive(directive: &Value, path: &Path<'_>) -> PatchError {
    PatchError::UnknownDirective {
        path: path.to_string(),
        directive: directive.to_string(),
        allowed: "\"replace\" or \"delete\" inside a list",
    }
}
