//! The CRD-specific OpenAPI checks of a schema (upstream's
//! `ValidateCustomResourceDefinitionOpenAPISchema`): unsupported keywords,
//! list and map types, rule shapes that depend on where the rule sits.

use serde_json::Value;

use crate::crd::{fieldpath, path, Additional, Node};
use crate::field::FieldCause;

/// What the OpenAPI checks carry down the tree.
#[derive(Clone, Default)]
pub(super) struct Walk {
    is_root: bool,
    /// Below the root's (or an embedded resource's) apiVersion/kind/metadata.
    inside_meta: bool,
    /// Why defaults are forbidden here, if they are.
    forbid_defaults: Option<&'static str>,
    /// The first ancestor whose old value cannot be correlated.
    uncorrelatable: Option<String>,
}

impl Walk {
    pub(super) fn root() -> Walk {
        Walk {
            is_root: true,
            ..Walk::default()
        }
    }

    fn child(&self) -> Walk {
        Walk {
            is_root: false,
            ..self.clone()
        }
    }

    fn uncorrelatable_at(&self, at: &str) -> Walk {
        let mut w = self.child();
        w.uncorrelatable.get_or_insert_with(|| at.to_owned());
        w
    }
}

/// The CRD-specific OpenAPI rules upstream checks before structural ones
/// (`ValidateCustomResourceDefinitionOpenAPISchema`), for the whole tree.
pub(super) fn openapi_rules(s: &Node, at: &str, walk: &Walk, errors: &mut Vec<FieldCause>) {
    let str_value = |v: &str| Value::String(v.to_owned());
    const TYPES: [&str; 6] = ["array", "boolean", "integer", "number", "object", "string"];
    if !s.ty.is_empty() && !TYPES.contains(&s.ty.as_str()) {
        errors.push(FieldCause::not_supported(
            path::child(at, "type"),
            &str_value(&s.ty),
            &TYPES,
        ));
    }
    if let (Some(reason), Some(_)) = (walk.forbid_defaults, &s.default) {
        errors.push(FieldCause::forbidden(
            path::child(at, "default"),
            format!("must not be set {reason}"),
        ));
    }
    for (name, detail) in &s.unsupported {
        errors.push(FieldCause::forbidden(path::child(at, name), *detail));
    }
    if s.ty == "null" {
        errors.push(FieldCause::forbidden(
            path::child(at, "type"),
            "type cannot be set to null, use nullable as an alternative",
        ));
    }
    if walk.inside_meta && s.embedded {
        errors.push(FieldCause::forbidden(
            path::child(at, "x-kubernetes-embedded-resource"),
            "must not be used inside of resource meta",
        ));
    }
    for (i, rule) in s.rules.iter().enumerate() {
        let rule_at = path::index(&path::child(at, "x-kubernetes-validations"), i);
        if rule.uses_old_self {
            if let Some(within) = &walk.uncorrelatable {
                errors.push(FieldCause::invalid(
                    path::child(&rule_at, "rule"),
                    &str_value(rule.source()),
                    format!("oldSelf cannot be used on the uncorrelatable portion of the schema within {within}"),
                ));
            }
        } else if let Some(optional) = rule.optional_old_self {
            errors.push(FieldCause::invalid(
                path::child(&rule_at, "optionalOldSelf"),
                &Value::Bool(optional),
                "may not be set if oldSelf is not used in rule",
            ));
        }
        if !rule.field_path.trim().is_empty()
            && fieldpath::resolve(&rule.field_path, s, true).is_err()
        {
            errors.push(FieldCause::invalid(
                path::child(
                    &path::index(&path::child(at, "x-kubernetes-validations"), i),
                    "fieldPath",
                ),
                &str_value(&rule.field_path),
                "fieldPath must be a valid path",
            ));
        }
    }
    if s.unique_items {
        errors.push(FieldCause::forbidden(
            path::child(at, "uniqueItems"),
            "uniqueItems cannot be set to true since the runtime complexity becomes quadratic",
        ));
    }
    if let Some(additional) = &s.additional {
        if !s.properties.is_empty() && !matches!(additional, Additional::Allowed(true)) {
            errors.push(FieldCause::forbidden(
                path::child(at, "additionalProperties"),
                "additionalProperties and properties are mutual exclusive",
            ));
        }
    }
    for (k, p) in &s.properties {
        let mut sub = if s
            .map_type
            .as_deref()
            .is_some_and(|m| m != "atomic" && m != "granular")
        {
            walk.uncorrelatable_at(at)
        } else {
            walk.child()
        };
        if (walk.is_root || s.embedded) && ["apiVersion", "kind", "metadata"].contains(&k.as_str())
        {
            sub.inside_meta = true;
            if walk.is_root {
                sub.forbid_defaults = Some(match k.as_str() {
                    "apiVersion" => "in top-level apiVersion",
                    "kind" => "in top-level kind",
                    _ => "in top-level metadata",
                });
            }
        }
        openapi_rules(
            p,
            &path::key(&path::child(at, "properties"), k),
            &sub,
            errors,
        );
    }
    for (name, list) in [
        ("allOf", &s.all_of),
        ("oneOf", &s.one_of),
        ("anyOf", &s.any_of),
    ] {
        for (i, n) in list.iter().enumerate() {
            openapi_rules(
                n,
                &path::index(&path::child(at, name), i),
                &walk.child(),
                errors,
            );
        }
    }
    if let Some(Additional::Schema(sub)) = &s.additional {
        let mut w = walk.child();
        if walk.inside_meta {
            w.forbid_defaults = Some("inside additionalProperties applying to object metadata");
        }
        openapi_rules(sub, &path::child(at, "additionalProperties"), &w, errors);
    }
    if let Some(n) = &s.not {
        openapi_rules(n, &path::child(at, "not"), &walk.child(), errors);
    }
    if let Some(items) = &s.items {
        let w = if s.list_type.as_deref() == Some("map") {
            walk.child()
        } else {
            walk.uncorrelatable_at(at)
        };
        openapi_rules(items, &path::child(at, "items"), &w, errors);
    }
    if s.preserve_unknown_false {
        errors.push(FieldCause::invalid(
            path::child(at, "x-kubernetes-preserve-unknown-fields"),
            &Value::Bool(false),
            "must be true or undefined",
        ));
    }
    let typed = |errors: &mut Vec<FieldCause>, want: &str, ext: &str| {
        let detail = format!("must be {want} if {ext} is specified");
        if s.ty.is_empty() {
            errors.push(FieldCause::required(path::child(at, "type"), detail));
        } else {
            errors.push(FieldCause::invalid(
                path::child(at, "type"),
                &str_value(&s.ty),
                detail,
            ));
        }
    };
    if let Some(map_type) = &s.map_type {
        if s.ty != "object" {
            typed(errors, "object", "x-kubernetes-map-type");
        }
        if map_type != "atomic" && map_type != "granular" {
            errors.push(FieldCause::not_supported(
                path::child(at, "x-kubernetes-map-type"),
                &str_value(map_type),
                &["atomic", "granular"],
            ));
        }
    }
    if let Some(list_type) = &s.list_type {
        if s.ty != "array" {
            typed(errors, "array", "x-kubernetes-list-type");
        } else if list_type == "set" {
            atomic_set_items(s, at, errors);
        }
        if !matches!(list_type.as_str(), "atomic" | "set" | "map") {
            errors.push(FieldCause::not_supported(
                path::child(at, "x-kubernetes-list-type"),
                &str_value(list_type),
                &["atomic", "set", "map"],
            ));
        }
    }
    if !s.list_map_keys.is_empty() {
        match s.list_type.as_deref() {
            None => errors.push(FieldCause::required(
                path::child(at, "x-kubernetes-list-type"),
                "must be map if x-kubernetes-list-map-keys is non-empty",
            )),
            Some("map") => {}
            Some(other) => errors.push(FieldCause::invalid(
                path::child(at, "x-kubernetes-list-type"),
                &str_value(other),
                "must be map if x-kubernetes-list-map-keys is non-empty",
            )),
        }
    }
    if s.list_type.as_deref() == Some("map") {
        list_map_rules(s, at, errors);
    }
    map_set_items(s, at, errors);
}

/// Items of a set must be compared whole: nested lists atomic, objects
/// `x-kubernetes-map-type: atomic`.
fn atomic_set_items(s: &Node, at: &str, errors: &mut Vec<FieldCause>) {
    let Some(items) = &s.items else { return };
    let detail = "must be atomic as item of a list with x-kubernetes-list-type=set";
    let items_at = path::child(at, "items");
    let shown = |v: &Option<String>| Value::String(v.clone().unwrap_or_else(|| "null".to_owned()));
    match items.ty.as_str() {
        "array" if items.list_type.as_deref().is_some_and(|t| t != "atomic") => {
            errors.push(FieldCause::invalid(
                path::child(&items_at, "x-kubernetes-list-type"),
                &shown(&items.list_type),
                detail,
            ));
        }
        // Upstream shows the items' list type here, usually unset.
        "object" if items.map_type.as_deref() != Some("atomic") => {
            errors.push(FieldCause::invalid(
                path::child(&items_at, "x-kubernetes-map-type"),
                &shown(&items.list_type),
                detail,
            ));
        }
        _ => {}
    }
}

/// Set and map list items may not be null; map keys must be required or
/// defaulted, and not nullable.
fn map_set_items(s: &Node, at: &str, errors: &mut Vec<FieldCause>) {
    let Some(items) = &s.items else { return };
    let Some(list_type) = s
        .list_type
        .as_deref()
        .filter(|t| matches!(*t, "set" | "map"))
    else {
        return;
    };
    let items_at = path::child(at, "items");
    if items.nullable {
        errors.push(FieldCause::forbidden(
            path::child(&items_at, "nullable"),
            format!("cannot be nullable when x-kubernetes-list-type is {list_type}"),
        ));
    }
    if list_type != "map" {
        return;
    }
    for k in &s.list_map_keys {
        let Some(key) = items.property(k) else {
            continue;
        };
        let key_at = path::key(&path::child(&items_at, "properties"), k);
        if !items.required.contains(k) && key.default.is_none() {
            errors.push(FieldCause::required(
                path::child(&key_at, "default"),
                "this property is in x-kubernetes-list-map-keys, so it must have a default or be a required property",
            ));
        }
        if key.nullable {
            errors.push(FieldCause::forbidden(
                path::child(&key_at, "nullable"),
                "this property is in x-kubernetes-list-map-keys, so it cannot be nullable",
            ));
        }
    }
}

fn list_map_rules(s: &Node, at: &str, errors: &mut Vec<FieldCause>) {
    if s.list_map_keys.is_empty() {
        errors.push(FieldCause::required(
            path::child(at, "x-kubernetes-list-map-keys"),
            "must not be empty if x-kubernetes-list-type is map",
        ));
    }
    let Some(items) = &s.items else {
        errors.push(FieldCause::required(
            path::child(at, "items"),
            "must have a schema if x-kubernetes-list-type is map",
        ));
        return;
    };
    let items_at = path::child(at, "items");
    if items.ty != "object" {
        errors.push(FieldCause::invalid(
            path::child(&items_at, "type"),
            &Value::String(items.ty.clone()),
            "must be object if parent array's x-kubernetes-list-type is map",
        ));
        return;
    }
    // Go prints the keys as `[]string{"a", "b"}`.
    let quoted: Vec<String> = s.list_map_keys.iter().map(|k| format!("{k:?}")).collect();
    let keys_error = |detail: &str| FieldCause {
        reason: "FieldValueInvalid",
        field: path::child(at, "x-kubernetes-list-map-keys"),
        message: format!("Invalid value: []string{{{}}}: {detail}", quoted.join(", ")),
    };
    let mut seen = std::collections::HashSet::new();
    for k in &s.list_map_keys {
        match items.property(k) {
            Some(p) if matches!(p.ty.as_str(), "array" | "object") => {
                errors.push(FieldCause::invalid(
                    path::child(&path::key(&path::child(&items_at, "properties"), k), "type"),
                    &Value::String(items.ty.clone()),
                    "must be a scalar type if parent array's x-kubernetes-list-type is map",
                ));
            }
            Some(_) => {}
            None => errors.push(keys_error("entries must all be names of item properties")),
        }
        if !seen.insert(k) {
            errors.push(keys_error("must not contain duplicate entries"));
        }
    }
}
