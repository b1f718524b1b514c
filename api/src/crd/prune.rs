//! Pruning and defaulting of custom objects (`pkg/apiserver/schema/pruning`
//! and `defaulting` upstream): drop what the schema does not specify, then
//! fill in `default`s.

use serde_json::Value;

use super::{Additional, Node};

const META_FIELDS: [&str; 3] = ["apiVersion", "kind", "metadata"];

/// Prunes a whole object: the root is treated as an embedded resource, so its
/// apiVersion, kind and metadata stay. Paths come back sorted.
pub(super) fn prune_root(root: &Node, obj: &mut Value, pruned: &mut Vec<String>) {
    let mut root = root.clone();
    root.embedded = true;
    prune(Some(&root), obj, "", pruned);
    pruned.sort();
}

/// Prunes a value under one node (not the object root), discarding the paths.
pub(super) fn prune_node(s: &Node, x: &mut Value) {
    prune(Some(s), x, "", &mut Vec::new());
}

fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_owned()
    } else {
        format!("{parent}.{key}")
    }
}

/// The schema under which a map key's value is pruned, if it is kept.
enum Keep<'a> {
    Schema(Option<&'a Node>),
    Drop,
}

fn lookup<'a>(s: &'a Node, key: &str) -> Keep<'a> {
    if let Some(prop) = s.property(key) {
        return Keep::Schema(Some(prop));
    }
    match &s.additional {
        Some(Additional::Schema(sub)) => Keep::Schema(Some(sub)),
        Some(Additional::Allowed(_)) => Keep::Schema(None),
        None => Keep::Drop,
    }
}

fn prune(s: Option<&Node>, x: &mut Value, at: &str, pruned: &mut Vec<String>) {
    if let Some(s) = s {
        if s.preserve_unknown {
            skip_prune(s, x, at, pruned);
            return;
        }
    }
    match x {
        Value::Object(map) => {
            let Some(s) = s else {
                for key in map.keys() {
                    pruned.push(join(at, key));
                }
                map.clear();
                return;
            };
            map.retain(|key, value| {
                if s.embedded && META_FIELDS.contains(&key.as_str()) {
                    return true;
                }
                match lookup(s, key) {
                    Keep::Schema(sub) => {
                        prune(sub, value, &join(at, key), pruned);
                        true
                    }
                    Keep::Drop => {
                        if !META_FIELDS.contains(&key.as_str()) || !at.is_empty() {
                            pruned.push(join(at, key));
                        }
                        false
                    }
                }
            });
        }
        Value::Array(items) => {
            let item_schema = s.and_then(|s| s.items.as_deref());
            for (i, item) in items.iter_mut().enumerate() {
                prune(item_schema, item, &format!("{at}[{i}]"), pruned);
            }
        }
        _ => {}
    }
}

/// Under `x-kubernetes-preserve-unknown-fields`: unknown fields stay, known
/// ones are still pruned by their own schema.
fn skip_prune(s: &Node, x: &mut Value, at: &str, pruned: &mut Vec<String>) {
    match x {
        Value::Object(map) => {
            for (key, value) in map.iter_mut() {
                if s.embedded && META_FIELDS.contains(&key.as_str()) {
                    continue;
                }
                if let Keep::Schema(sub) = lookup(s, key) {
                    prune(sub, value, &join(at, key), pruned);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = s.items.as_deref() {
                for (i, item) in items.iter_mut().enumerate() {
                    skip_prune(item_schema, item, &format!("{at}[{i}]"), pruned);
                }
            }
        }
        _ => {}
    }
}

/// Whether a null must be replaced by the schema's default.
fn non_nullable_null(x: &Value, s: &Node) -> bool {
    x.is_null() && !s.nullable
}

/// Applies `default`s below `x`: absent properties and non-nullable nulls
/// (properties, additionalProperties values, array items) get a copy.
pub(super) fn default_node(s: &Node, x: &mut Value) {
    match x {
        Value::Object(map) => {
            for (key, prop) in &s.properties {
                let Some(default) = &prop.default else {
                    continue;
                };
                let missing = match map.get(key) {
                    None => true,
                    Some(v) => non_nullable_null(v, prop),
                };
                if missing {
                    map.insert(key.clone(), default.clone());
                }
            }
            for (key, value) in map.iter_mut() {
                if let Some(prop) = s.property(key) {
                    default_node(prop, value);
                } else if let Some(Additional::Schema(sub)) = &s.additional {
                    if non_nullable_null(value, sub) {
                        if let Some(default) = &sub.default {
                            *value = default.clone();
                        }
                    }
                    default_node(sub, value);
                }
            }
        }
        Value::Array(items) => {
            let Some(item_schema) = s.items.as_deref() else {
                return;
            };
            for item in items.iter_mut() {
                if non_nullable_null(item, item_schema) {
                    if let Some(default) = &item_schema.default {
                        *item = default.clone();
                    }
                }
                default_node(item_schema, item);
            }
        }
        _ => {}
    }
}
