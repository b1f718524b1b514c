//! The comparison of two versions of an object (upstream's `TypedValue.Compare`): which fields
//! the newer one added, modified and removed. Ownership moves on exactly these sets, so a
//! write that leaves a field's value alone never takes it from its owner.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::{index_items, is_empty_container, InvalidObject};
use crate::apply::fieldset::FieldSet;
use crate::apply::path::{values_equal, PathElement};
use crate::apply::schema::{field_of, items_of, ApplySchema, ListType, MapType};

/// What changed between two versions of an object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Comparison {
    /// Fields present only in the newer version (and maps or items that appeared whole).
    pub(crate) added: FieldSet,
    /// Leaf fields present in both with different values.
    pub(crate) modified: FieldSet,
    /// Fields present only in the older version.
    pub(crate) removed: FieldSet,
}

impl Comparison {
    /// The comparison without `ignored` fields and everything below them.
    pub(crate) fn excluding(&self, ignored: &FieldSet) -> Comparison {
        Comparison {
            added: self.added.recursive_difference(ignored),
            modified: self.modified.recursive_difference(ignored),
            removed: self.removed.recursive_difference(ignored),
        }
    }

    /// Added and modified fields: what the newer version set.
    pub(crate) fn changed(&self) -> FieldSet {
        self.modified.union(&self.added)
    }
}

/// What `new` added, modified and removed relative to `old`. `metadata.managedFields` is
/// never compared: ownership is not itself owned, and skipping it spares callers a copy of
/// both objects without it.
pub(crate) fn compare(
    old: &Value,
    new: &Value,
    schema: &dyn ApplySchema,
) -> Result<Comparison, InvalidObject> {
    let mut comparison = Comparison::default();
    compare_values(
        Some(old),
        Some(new),
        schema,
        &mut Vec::new(),
        &mut comparison,
    )?;
    Ok(comparison)
}

/// The shape the two sides are compared as.
enum Shape {
    Map,
    List,
    Leaf,
    /// Both sides present, non-null, and of different kinds with at least one container.
    Mismatch,
}

fn shape(lhs: Option<&Value>, rhs: Option<&Value>) -> Shape {
    let kind = |value: Option<&Value>| match value {
        None | Some(Value::Null) => 0,
        Some(Value::Object(_)) => 1,
        Some(Value::Array(_)) => 2,
        Some(_) => 3,
    };
    match (kind(lhs), kind(rhs)) {
        (1, 0 | 1) | (0, 1) => Shape::Map,
        (2, 0 | 2) | (0, 2) => Shape::List,
        (a, b) if a == b || a == 0 || b == 0 => Shape::Leaf,
        _ => Shape::Mismatch,
    }
}

fn compare_values(
    lhs: Option<&Value>,
    rhs: Option<&Value>,
    schema: &dyn ApplySchema,
    path: &mut Vec<PathElement>,
    out: &mut Comparison,
) -> Result<(), InvalidObject> {
    // Nothing below two equal values changed: most of an updated object is left alone, and
    // one equality walk is far cheaper than comparing field by field.
    if let (Some(lhs), Some(rhs)) = (lhs, rhs) {
        if lhs == rhs {
            return Ok(());
        }
    }
    match shape(lhs, rhs) {
        Shape::Leaf => compare_leaf(lhs, rhs, path, out),
        Shape::Map => {
            let left = lhs.and_then(Value::as_object);
            let right = rhs.and_then(Value::as_object);
            if schema.map_type() == MapType::Atomic
                || (is_empty_container(lhs) && is_empty_container(rhs))
            {
                compare_leaf(lhs, rhs, path, out);
                return Ok(());
            }
            compare_maps(left, right, schema, path, out)?;
            mark_container(lhs, rhs, path, out);
        }
        Shape::List => {
            let left = lhs.and_then(Value::as_array);
            let right = rhs.and_then(Value::as_array);
            let list_type = schema.list_type();
            if list_type == ListType::Atomic || (is_empty_container(lhs) && is_empty_container(rhs))
            {
                compare_leaf(lhs, rhs, path, out);
                return Ok(());
            }
            compare_lists(left, right, &list_type, schema, path, out)?;
            mark_container(lhs, rhs, path, out);
        }
        Shape::Mismatch => {
            // A value that changed kind: modified here, and whatever either side held below
            // appeared or went away.
            out.modified.insert(path);
            let (lhs, rhs) = (lhs.expect("present"), rhs.expect("present"));
            for (side, is_old) in [(lhs, true), (rhs, false)] {
                match side {
                    Value::Object(map) => {
                        let (left, right) = if is_old {
                            (Some(map), None)
                        } else {
                            (None, Some(map))
                        };
                        compare_maps(left, right, schema, path, out)?;
                    }
                    Value::Array(items) => {
                        let list_type = schema.list_type();
                        if list_type != ListType::Atomic {
                            let (left, right) = if is_old {
                                (Some(items), None)
                            } else {
                                (None, Some(items))
                            };
                            compare_lists(left, right, &list_type, schema, path, out)?;
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    Ok(())
}

fn compare_leaf(
    lhs: Option<&Value>,
    rhs: Option<&Value>,
    path: &[PathElement],
    out: &mut Comparison,
) {
    match (lhs, rhs) {
        (None, Some(_)) => out.added.insert(path),
        (Some(_), None) => out.removed.insert(path),
        (Some(lhs), Some(rhs)) if !values_equal(lhs, rhs) => out.modified.insert(path),
        _ => {}
    }
}

/// A map or list that appeared or went away whole is itself added or removed.
fn mark_container(
    lhs: Option<&Value>,
    rhs: Option<&Value>,
    path: &[PathElement],
    out: &mut Comparison,
) {
    if lhs.is_none() {
        out.added.insert(path);
    } else if rhs.is_none() {
        out.removed.insert(path);
    }
}

fn compare_maps(
    left: Option<&Map<String, Value>>,
    right: Option<&Map<String, Value>>,
    schema: &dyn ApplySchema,
    path: &mut Vec<PathElement>,
    out: &mut Comparison,
) -> Result<(), InvalidObject> {
    let left_keys = left.into_iter().flat_map(|left| left.keys());
    let right_only = right
        .into_iter()
        .flat_map(|right| right.keys())
        .filter(|key| !left.is_some_and(|left| left.contains_key(*key)));
    let in_metadata = matches!(path.as_slice(), [PathElement::Field(f)] if f == "metadata");
    for key in left_keys.chain(right_only) {
        if in_metadata && key == "managedFields" {
            continue;
        }
        let field = field_of(schema, key);
        path.push(PathElement::Field(key.clone()));
        compare_values(
            left.and_then(|left| left.get(key)),
            right.and_then(|right| right.get(key)),
            &*field.schema,
            path,
            out,
        )?;
        path.pop();
    }
    Ok(())
}

fn compare_lists(
    left: Option<&Vec<Value>>,
    right: Option<&Vec<Value>>,
    list_type: &ListType,
    schema: &dyn ApplySchema,
    path: &mut Vec<PathElement>,
    out: &mut Comparison,
) -> Result<(), InvalidObject> {
    let item_schema = items_of(schema);
    let left = index_items(left.map_or(&[][..], Vec::as_slice), list_type, path)?;
    let right = index_items(right.map_or(&[][..], Vec::as_slice), list_type, path)?;
    // Every key in order of first appearance, with the items carrying it on each side.
    let mut order: Vec<&PathElement> = Vec::new();
    let mut sides: BTreeMap<&PathElement, (Vec<&Value>, Vec<&Value>)> = BTreeMap::new();
    for (element, item) in &left {
        let entry = sides.entry(element).or_insert_with(|| {
            order.push(element);
            Default::default()
        });
        entry.0.push(item);
    }
    for (element, item) in &right {
        let entry = sides.entry(element).or_insert_with(|| {
            order.push(element);
            Default::default()
        });
        entry.1.push(item);
    }
    for element in order {
        let (lhs, rhs) = &sides[element];
        path.push(element.clone());
        match (lhs.len(), rhs.len()) {
            (0..=1, 0..=1) => compare_values(
                lhs.first().copied(),
                rhs.first().copied(),
                &*item_schema,
                path,
                out,
            )?,
            // Repeated keys on both sides: the items changed unless they are all equal.
            (2.., 2..) => {
                let same = lhs.len() == rhs.len()
                    && lhs.iter().zip(rhs).all(|(lhs, rhs)| values_equal(lhs, rhs));
                if !same {
                    out.modified.insert(path);
                }
            }
            (2.., _) => {
                if let Some(rhs) = rhs.first() {
                    compare_values(None, Some(rhs), &*item_schema, path, out)?;
                }
                out.removed.insert(path);
            }
            (_, _) => {
                if let Some(lhs) = lhs.first() {
                    compare_values(Some(lhs), None, &*item_schema, path, out)?;
                }
                out.added.insert(path);
            }
        }
        path.pop();
    }
    Ok(())
}
