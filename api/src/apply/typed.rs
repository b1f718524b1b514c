//! Walks over objects guided by an [`ApplySchema`], mirroring structured-merge-diff's typed
//! values: the field set an object sets, the merge of an applied configuration into a live
//! object, the comparison of two objects and the removal of a field set from an object. These
//! are the building blocks of apply and update; they never look at `managedFields`.

mod compare;
mod field_set;
mod merge;
mod remove;

use serde_json::Value;

use super::path::PathElement;
use super::schema::ListType;

pub(crate) use compare::{compare, Comparison};
pub(crate) use field_set::{ensure_named_fields_are_members, field_set};
pub(crate) use merge::merge;
pub(crate) use remove::remove_items;

/// Why an object does not fit its schema: a map-list item without its key fields, a null item,
/// a set holding maps, or (in an applied configuration) two items with the same key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct InvalidObject {
    /// Where, in upstream's path notation (`.spec.template.spec.containers`).
    pub path: String,
    /// What is wrong there.
    pub reason: String,
}

impl InvalidObject {
    fn at(path: &[PathElement], reason: impl Into<String>) -> Self {
        let path: String = path.iter().map(ToString::to_string).collect();
        InvalidObject {
            path: if path.is_empty() {
                ".".to_owned()
            } else {
                path
            },
            reason: reason.into(),
        }
    }
}

/// The path element naming `item` in a list of type `list_type`: its key fields for a map list
/// (with schema defaults for absent ones), its value for a set.
pub(crate) fn item_element(item: &Value, list_type: &ListType) -> Result<PathElement, String> {
    match list_type {
        ListType::Map(keys) => {
            let fields = match item {
                Value::Object(fields) => fields,
                Value::Null => {
                    return Err("associative list with keys may not have a null element".into())
                }
                _ => return Err("associative list with keys may not have non-map elements".into()),
            };
            let key: Vec<(String, Value)> = keys
                .iter()
                .filter_map(|key| {
                    let value = fields.get(&key.name).or(key.default.as_ref())?;
                    Some((key.name.clone(), value.clone()))
                })
                .collect();
            if key.is_empty() && !keys.is_empty() {
                let names: Vec<&str> = keys.iter().map(|key| key.name.as_str()).collect();
                return Err(format!(
                    "associative list with keys has an element that omits all key fields {names:?} \
                     (and doesn't have default values for any key fields)"
                ));
            }
            Ok(PathElement::key(key))
        }
        ListType::Set => match item {
            Value::Object(_) => {
                Err("associative list without keys has an element that's a map type".into())
            }
            Value::Array(_) => Err("not supported: associative list with lists as elements".into()),
            Value::Null => {
                Err("associative list without keys has an element that's an explicit null".into())
            }
            scalar => Ok(PathElement::Value(scalar.clone())),
        },
        ListType::Atomic => Err("invalid indexing of non-associative list".into()),
    }
}

/// The items of a granular list with their path elements, failing on the first item that has
/// none.
fn index_items<'v>(
    items: &'v [Value],
    list_type: &ListType,
    path: &[PathElement],
) -> Result<Vec<(PathElement, &'v Value)>, InvalidObject> {
    items
        .iter()
        .enumerate()
        .map(|(index, item)| {
            item_element(item, list_type)
                .map(|element| (element, item))
                .map_err(|reason| InvalidObject::at(path, format!("element {index}: {reason}")))
        })
        .collect()
}

/// Whether a value is absent, null or an empty map or list: what upstream treats as "nothing
/// to descend into" when deciding whether a container is a leaf.
fn is_empty_container(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) => true,
        Some(Value::Object(map)) => map.is_empty(),
        Some(Value::Array(items)) => items.is_empty(),
        Some(_) => false,
    }
}
