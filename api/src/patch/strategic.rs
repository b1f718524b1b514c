//! Strategic merge patch (`application/strategic-merge-patch+json`) as kube-apiserver applies it:
//! maps merge, `null` deletes, lists merge or are replaced as the schema says, and the `$patch`,
//! `$retainKeys`, `$setElementOrder/…` and `$deleteFromPrimitiveList/…` directives are honoured.
//! This file handles maps and directives on maps; `list.rs` handles lists and element order.
//! It never guesses a strategy: whatever the [`PatchSchema`] does not know is plain JSON.

mod list;
#[cfg(test)]
mod tests;

use serde_json::{Map, Value};

use super::path::{json_type, Path};
use super::schema::{MergeStrategy, NoSchema, PatchSchema};
use super::PatchError;

/// The directive key that asks for `replace`, `delete` or `merge` of the map it sits in.
const PATCH_DIRECTIVE: &str = "$patch";
/// The directive key listing the only fields a map keeps.
const RETAIN_KEYS: &str = "$retainKeys";
/// The prefix of `$setElementOrder/<field>`, the final order of a merging list.
const SET_ELEMENT_ORDER: &str = "$setElementOrder";
/// The prefix of `$deleteFromPrimitiveList/<field>`, values to remove from a list of primitives.
const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList";

/// Applies a strategic merge patch to `target`, reading list strategies from `schema`.
///
/// `target` must be a JSON object (or `null`, read as an empty object) and so must `patch`.
/// Either the whole patch applies or `target` is left unchanged.
///
/// Element order follows kube-apiserver: elements the patch names take the patch's order (or
/// `$setElementOrder`'s), server-only elements keep their place relative to them, and an
/// element new to a list without `$setElementOrder` lands before the server-only elements
/// that follow it. Where upstream would store leftovers that its typed decoding then drops,
/// this function cleans them up front: values taken whole from the patch lose their `null`
/// fields and have their directives applied, `$patch: replace` on a map the object lacks sets
/// the map, and `$patch: merge` on a map is accepted as the default it names.
pub fn strategic_merge_patch(
    target: &mut Value,
    patch: &Value,
    schema: &dyn PatchSchema,
) -> Result<(), PatchError> {
    let Value::Object(patch) = patch else {
        return Err(PatchError::NotAnObject {
            what: "a strategic merge patch",
            found: json_type(patch),
        });
    };
    let original = match target {
        Value::Object(map) => map.clone(),
        Value::Null => Map::new(),
        other => {
            return Err(PatchError::NotAnObject {
                what: "the object being patched",
                found: json_type(other),
            })
        }
    };
    let merged = merge_map(Some(original), patch, schema, &Path::Root)?;
    *target = Value::Object(merged.unwrap_or_default());
    Ok(())
}

/// What one key of a patch map asks for.
enum PatchKey<'a> {
    /// `$patch`: handled before the fields.
    Directive,
    /// `$retainKeys`: handled before the fields.
    RetainKeys,
    /// `$setElementOrder/<field>`.
    SetElementOrder(&'a str),
    /// `$deleteFromPrimitiveList/<field>`.
    DeleteFromPrimitiveList(&'a str),
    /// An ordinary field (including ones that start with `$`, such as a schema's `$ref`).
    Field(&'a str),
}

impl<'a> PatchKey<'a> {
    fn classify(key: &'a str, path: &Path<'_>) -> Result<PatchKey<'a>, PatchError> {
        if key == PATCH_DIRECTIVE {
            return Ok(PatchKey::Directive);
        }
        if key == RETAIN_KEYS {
            return Ok(PatchKey::RetainKeys);
        }
        if key.starts_with(SET_ELEMENT_ORDER) {
            return match key.split_once('/') {
                Some((SET_ELEMENT_ORDER, field)) => Ok(PatchKey::SetElementOrder(field)),
                _ => Err(PatchError::InvalidSetElementOrder {
                    path: path.to_string(),
                    reason: format!("`{key}` must have the form `{SET_ELEMENT_ORDER}/<field>`"),
                }),
            };
        }
        if key.starts_with(DELETE_FROM_PRIMITIVE_LIST) {
            return match key.split_once('/') {
                Some((DELETE_FROM_PRIMITIVE_LIST, field)) => {
                    Ok(PatchKey::DeleteFromPrimitiveList(field))
                }
                _ => Err(PatchError::InvalidDeleteFromPrimitiveList {
                    path: path.to_string(),
                    reason: format!(
                        "`{key}` must have the form `{DELETE_FROM_PRIMITIVE_LIST}/<field>`"
                    ),
                }),
            };
        }
        Ok(PatchKey::Field(key))
    }
}

/// Merges a patch map into the map `original` (`None` when there is none, or when the value
/// there is not a map). Returns `None` when the result is that there is no map.
fn merge_map(
    original: Option<Map<String, Value>>,
    patch: &Map<String, Value>,
    schema: &dyn PatchSchema,
    path: &Path<'_>,
) -> Result<Option<Map<String, Value>>, PatchError> {
    if let Some(directive) = patch.get(PATCH_DIRECTIVE) {
        match directive.as_str() {
            // The map becomes the patch's own fields, merged into nothing so that its nulls
            // and nested directives do not end up in the object.
            Some("replace") => return merge_fields(Map::new(), patch, schema, path).map(Some),
            // Upstream leaves an empty map where there was one.
            Some("delete") => return Ok(original.map(|_| Map::new())),
            // The default, spelled out.
            Some("merge") => {}
            _ => {
                return Err(PatchError::UnknownDirective {
                    path: path.to_string(),
                    directive: directive.to_string(),
                    allowed: "\"replace\", \"delete\" or \"merge\"",
                })
            }
        }
    }
    merge_fields(original.unwrap_or_default(), patch, schema, path).map(Some)
}

/// Merges the fields and field-level directives of a patch map into `original`.
fn merge_fields(
    mut original: Map<String, Value>,
    patch: &Map<String, Value>,
    schema: &dyn PatchSchema,
    path: &Path<'_>,
) -> Result<Map<String, Value>, PatchError> {
    if let Some(retain_keys) = patch.get(RETAIN_KEYS) {
        apply_retain_keys(&mut original, retain_keys, patch, path)?;
    }

    // `$setElementOrder/<field>` merges its list together with the patch's value for it.
    let mut ordered_fields = Vec::new();
    for (key, order) in patch {
        if let PatchKey::SetElementOrder(field) = PatchKey::classify(key, path)? {
            let field_schema = schema.field(field);
            let field_schema = field_schema.as_deref().unwrap_or(&NoSchema);
            list::merge_with_order(
                &mut original,
                field,
                order,
                patch.get(field),
                field_schema,
                &path.field(field),
            )?;
            ordered_fields.push(field);
        }
    }

    for (key, patch_value) in patch {
        match PatchKey::classify(key, path)? {
            PatchKey::Directive | PatchKey::RetainKeys | PatchKey::SetElementOrder(_) => {}
            PatchKey::DeleteFromPrimitiveList(field) => {
                delete_from_primitive_list(&mut original, field, patch_value, &path.field(field))?
            }
            PatchKey::Field(field) if ordered_fields.contains(&field) => {}
            PatchKey::Field(field) => {
                let field_schema = schema.field(field);
                let field_schema = field_schema.as_deref().unwrap_or(&NoSchema);
                let existing = original.get_mut(field).map(Value::take);
                match merge_value(existing, patch_value, field_schema, &path.field(field))? {
                    Some(merged) => {
                        original.insert(field.to_owned(), merged);
                    }
                    None => {
                        original.shift_remove(field);
                    }
                }
            }
        }
    }
    Ok(original)
}

/// Merges one patch value into the value at its position (`None`: absent). Returns `None`
/// when the field should be removed.
fn merge_value(
    original: Option<Value>,
    patch: &Value,
    schema: &dyn PatchSchema,
    path: &Path<'_>,
) -> Result<Option<Value>, PatchError> {
    let strategy = schema.strategy();
    match patch {
        Value::Null => Ok(None),
        Value::Object(patch_map) => {
            let existing = match original {
                Some(Value::Object(map)) if strategy.merge != MergeStrategy::Replace => Some(map),
                _ => None,
            };
            Ok(merge_map(existing, patch_map, schema, path)?.map(Value::Object))
        }
        Value::Array(patch_items) => match (original, &strategy.merge) {
            (Some(Value::Array(items)), MergeStrategy::Merge { key }) => {
                list::merge_list(items, patch_items, key.as_deref(), schema, path)
                    .map(|merged| Some(Value::Array(merged)))
            }
            _ => {
                list::sanitize_list(patch_items, schema, path).map(|list| Some(Value::Array(list)))
            }
        },
        scalar => Ok(Some(scalar.clone())),
    }
}

/// `$retainKeys`: drops every field of `original` the list does not name, after checking that
/// the patch itself only sets listed fields.
fn apply_retain_keys(
    original: &mut Map<String, Value>,
    retain_keys: &Value,
    patch: &Map<String, Value>,
    path: &Path<'_>,
) -> Result<(), PatchError> {
    let invalid = |reason: String| PatchError::InvalidRetainKeys {
        path: path.to_string(),
        reason,
    };
    let Value::Array(keys) = retain_keys else {
        return Err(invalid(format!(
            "`{RETAIN_KEYS}` must be a list of field names, but it is a {}",
            json_type(retain_keys)
        )));
    };
    let keys = keys
        .iter()
        .map(|key| {
            key.as_str().ok_or_else(|| {
                invalid(format!(
                    "`{RETAIN_KEYS}` must be a list of field names, but it holds a {}",
                    json_type(key)
                ))
            })
        })
        .collect::<Result<Vec<&str>, _>>()?;
    for (key, value) in patch {
        if value.is_null() || !matches!(PatchKey::classify(key, path)?, PatchKey::Field(_)) {
            continue;
        }
        if !keys.contains(&key.as_str()) {
            return Err(invalid(format!(
                "the patch sets `{key}`, which `{RETAIN_KEYS}` does not list"
            )));
        }
    }
    original.retain(|key, _| keys.contains(&key.as_str()));
    Ok(())
}

/// `$deleteFromPrimitiveList/<field>`: removes every occurrence of the given values from the
/// list of primitives at `field`, whatever that list's strategy. Nothing happens when the
/// object has no such list.
fn delete_from_primitive_list(
    original: &mut Map<String, Value>,
    field: &str,
    to_delete: &Value,
    path: &Path<'_>,
) -> Result<(), PatchError> {
    let invalid = |reason: String| PatchError::InvalidDeleteFromPrimitiveList {
        path: path.to_string(),
        reason,
    };
    let to_delete = match to_delete {
        Value::Array(values) => values,
        Value::Null => return Ok(()),
        other => {
            return Err(invalid(format!(
                "`{DELETE_FROM_PRIMITIVE_LIST}/{field}` must be a list of values to remove, but it is a {}",
                json_type(other)
            )))
        }
    };
    if let Some(value) = to_delete.iter().find(|value| is_composite(value)) {
        return Err(invalid(format!(
            "`{DELETE_FROM_PRIMITIVE_LIST}/{field}` may only list primitive values, but it holds a {}",
            json_type(value)
        )));
    }
    let Some(Value::Array(current)) = original.get_mut(field) else {
        return Ok(());
    };
    if let Some(value) = current.iter().find(|value| is_composite(value)) {
        return Err(invalid(format!(
            "`{DELETE_FROM_PRIMITIVE_LIST}` applies to lists of primitives, but this list holds a {}",
            json_type(value)
        )));
    }
    current.retain(|value| !to_delete.contains(value));
    Ok(())
}

/// Whether a value is a map or a list (not a primitive).
fn is_composite(value: &Value) -> bool {
    matches!(value, Value::Object(_) | Value::Array(_))
}
