//! The structural-schema rules upstream enforces on every v1 CRD schema
//! (`apiextensions-apiserver/pkg/apiserver/schema`): types everywhere, no
//! types or defaults inside `allOf`/`anyOf`/`oneOf`/`not`, metadata kept simple.

use serde_json::Value;

use super::{path, Additional, Node};
use crate::field::FieldCause;

#[derive(Clone, Copy, PartialEq)]
enum Level {
    Root,
    Item,
    Field,
}

/// Pushes every structural-schema violation of `root`, paths under `at`.
pub(super) fn check(root: &Node, at: &str, errors: &mut Vec<FieldCause>) {
    invariants(root, Level::Root, at, errors);
    openapi_rules(root, at, &Walk::root(), errors);
    completeness(root, at, errors);
}

/// What the OpenAPI checks carry down the tree.
#[derive(Clone, Default)]
struct Walk {
    is_root: bool,
    /// Below the root's (or an embedded resource's) apiVersion/kind/metadata.
    inside_meta: bool,
    /// Why defaults are forbidden here, if they are.
    forbid_defaults: Option<&'static str>,
    /// The first ancestor whose old value cannot be correlated.
    uncorrelatable: Option<String>,
}

impl Walk {
    fn root() -> Walk {
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
fn openapi_rules(s: &Node, at: &str, walk: &Walk, errors: &mut Vec<FieldCause>) {
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
            && super::fieldpath::resolve(&rule.field_path, s, true).is_err()
        {
            errors.push(FieldCause::invalid(
                path::child(
                    &path::index(&path::child(at, "x-kubernetes-validations"), i),
                    "fieldPath",
                ),
                &str_value(&rule.field_path),
                "must be a valid path",
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

fn invariants(s: &Node, lvl: Level, at: &str, errors: &mut Vec<FieldCause>) {
    if s.ty == "array" && s.items.is_none() {
        errors.push(FieldCause::required(
            path::child(at, "items"),
            "must be specified",
        ));
    }
    if let Some(items) = &s.items {
        invariants(items, Level::Item, &path::child(at, "items"), errors);
    }
    for (k, v) in &s.properties {
        let here = path::key(&path::child(at, "properties"), k);
        invariants(v, Level::Field, &here, errors);
    }
    if let Some(additional) = &s.additional {
        if lvl == Level::Root {
            errors.push(FieldCause::forbidden(
                path::child(at, "additionalProperties"),
                "must not be used at the root",
            ));
        }
        if let Additional::Schema(sub) = additional {
            invariants(
                sub,
                Level::Field,
                &path::child(at, "additionalProperties"),
                errors,
            );
        }
    }
    if s.int_or_string && s.preserve_unknown {
        errors.push(FieldCause::invalid(
            path::child(at, "x-kubernetes-preserve-unknown-fields"),
            &Value::Bool(true),
            "must be false if x-kubernetes-int-or-string is true",
        ));
    }
    if s.int_or_string && s.embedded {
        errors.push(FieldCause::invalid(
            path::child(at, "x-kubernetes-embedded-resource"),
            &Value::Bool(true),
            "must be false if x-kubernetes-int-or-string is true",
        ));
    }
    let skip_any_of = is_int_or_string_any_of(&s.any_of);
    let skip_first_all_of_any_of = s
        .all_of
        .first()
        .is_some_and(|a| is_int_or_string_any_of(&a.any_of));
    value_validation(s, skip_any_of, skip_first_all_of_any_of, true, at, errors);

    let check_metadata = lvl == Level::Root || s.embedded;
    if s.embedded && s.ty != "object" {
        if s.ty.is_empty() {
            errors.push(FieldCause::required(
                path::child(at, "type"),
                "must be object if x-kubernetes-embedded-resource is true",
            ));
        } else {
            errors.push(FieldCause::invalid(
                path::child(at, "type"),
                &Value::String(s.ty.clone()),
                "must be object if x-kubernetes-embedded-resource is true",
            ));
        }
    } else if s.ty.is_empty() && !s.int_or_string && !s.preserve_unknown {
        let detail = match lvl {
            Level::Root => "must not be empty at the root",
            Level::Item => "must not be empty for specified array items",
            Level::Field => "must not be empty for specified object fields",
        };
        errors.push(FieldCause::required(path::child(at, "type"), detail));
    }
    if s.embedded && s.additional.is_some() {
        errors.push(FieldCause::forbidden(
            path::child(at, "additionalProperties"),
            "must not be used if x-kubernetes-embedded-resource is set",
        ));
    }
    if lvl == Level::Root && !s.ty.is_empty() && s.ty != "object" {
        errors.push(FieldCause::invalid(
            path::child(at, "type"),
            &Value::String(s.ty.clone()),
            "must be object at the root",
        ));
    }
    let props = path::child(at, "properties");
    for name in ["kind", "apiVersion"] {
        if let Some(p) = s.property(name) {
            if check_metadata && p.ty != "string" {
                errors.push(FieldCause::invalid(
                    path::child(&path::key(&props, name), "type"),
                    &Value::String(p.ty.clone()),
                    "must be string",
                ));
            }
        }
    }
    if let Some(metadata) = s.property("metadata") {
        let here = path::key(&props, "metadata");
        if check_metadata && metadata.ty != "object" {
            errors.push(FieldCause::invalid(
                path::child(&here, "type"),
                &Value::String(metadata.ty.clone()),
                "must be object",
            ));
        }
        if lvl == Level::Root && !metadata_is_simple(metadata) {
            errors.push(FieldCause::forbidden(
                here,
                "must not specify anything other than name and generateName, but metadata is implicitly specified",
            ));
        }
    }
    if s.embedded && !s.preserve_unknown && s.properties.is_empty() {
        errors.push(FieldCause::required(
            path::child(at, "properties"),
            "must not be empty if x-kubernetes-embedded-resource is true without x-kubernetes-preserve-unknown-fields",
        ));
    }
}

/// Whether a root `metadata` schema says nothing beyond its type, a default,
/// and (only) `name`/`generateName` properties: all upstream lets a CRD say.
fn metadata_is_simple(m: &Node) -> bool {
    let names_only = m
        .properties
        .iter()
        .all(|(k, _)| k == "name" || k == "generateName");
    let bare = Node {
        ty: String::new(),
        default: None,
        properties: Vec::new(),
        ..m.clone()
    };
    let props_ok = m.properties.is_empty() || names_only;
    // Name and generateName schemas are only dropped when they are all there is.
    props_ok && format!("{bare:?}") == format!("{:?}", Node::default())
}

fn is_int_or_string_any_of(any_of: &[Node]) -> bool {
    let bare = |n: &Node, ty: &str| {
        format!("{n:?}")
            == format!(
                "{:?}",
                Node {
                    ty: ty.to_owned(),
                    ..Node::default()
                }
            )
    };
    any_of.len() == 2 && bare(&any_of[0], "integer") && bare(&any_of[1], "string")
}

/// Rules (`x-kubernetes-validations`) are allowed under `allOf` only.
fn value_validation(
    v: &Node,
    skip_any_of: bool,
    skip_first_all_of_any_of: bool,
    allow_rules: bool,
    at: &str,
    errors: &mut Vec<FieldCause>,
) {
    if !skip_any_of {
        for (i, n) in v.any_of.iter().enumerate() {
            nested(
                n,
                false,
                false,
                &path::index(&path::child(at, "anyOf"), i),
                errors,
            );
        }
    }
    for (i, n) in v.all_of.iter().enumerate() {
        let skip = skip_first_all_of_any_of && i == 0;
        nested(
            n,
            skip,
            allow_rules,
            &path::index(&path::child(at, "allOf"), i),
            errors,
        );
    }
    for (i, n) in v.one_of.iter().enumerate() {
        nested(
            n,
            false,
            false,
            &path::index(&path::child(at, "oneOf"), i),
            errors,
        );
    }
    if let Some(n) = &v.not {
        nested(n, false, false, &path::child(at, "not"), errors);
    }
}

fn nested(v: &Node, skip_any_of: bool, allow_rules: bool, at: &str, errors: &mut Vec<FieldCause>) {
    value_validation(v, skip_any_of, false, allow_rules, at, errors);
    if let Some(items) = &v.items {
        nested(items, false, allow_rules, &path::child(at, "items"), errors);
    }
    for (k, p) in &v.properties {
        let here = path::key(&path::child(at, "properties"), k);
        nested(p, false, allow_rules, &here, errors);
    }
    let forbid = |errors: &mut Vec<FieldCause>, name: &str, detail: &str| {
        errors.push(FieldCause::forbidden(path::child(at, name), detail));
    };
    if !v.ty.is_empty() {
        forbid(errors, "type", "must be empty to be structural");
    }
    if v.additional.is_some() {
        forbid(
            errors,
            "additionalProperties",
            "must be undefined to be structural",
        );
    }
    if v.default.is_some() {
        forbid(errors, "default", "must be undefined to be structural");
    }
    if v.title {
        forbid(errors, "title", "must be empty to be structural");
    }
    if v.description {
        forbid(errors, "description", "must be empty to be structural");
    }
    if v.nullable {
        forbid(errors, "nullable", "must be false to be structural");
    }
    if v.preserve_unknown {
        forbid(
            errors,
            "x-kubernetes-preserve-unknown-fields",
            "must be false to be structural",
        );
    }
    if v.embedded {
        forbid(
            errors,
            "x-kubernetes-embedded-resource",
            "must be false to be structural",
        );
    }
    if v.int_or_string {
        forbid(
            errors,
            "x-kubernetes-int-or-string",
            "must be false to be structural",
        );
    }
    if !v.list_map_keys.is_empty() {
        forbid(
            errors,
            "x-kubernetes-list-map-keys",
            "must be empty to be structural",
        );
    }
    if v.list_type.is_some() {
        forbid(
            errors,
            "x-kubernetes-list-type",
            "must be undefined to be structural",
        );
    }
    if v.map_type.is_some() {
        forbid(
            errors,
            "x-kubernetes-map-type",
            "must be undefined to be structural",
        );
    }
    if v.has_validations && !allow_rules {
        forbid(
            errors,
            "x-kubernetes-validations",
            "must be empty to be structural",
        );
    }
    if v.property("metadata").is_some() {
        errors.push(FieldCause::forbidden(
            path::key(&path::child(at, "properties"), "metadata"),
            "must not be specified in a nested context",
        ));
    }
}

/// Every property or items named inside the root's junctors must also be
/// specified in the structural part of the schema (upstream checks the root's
/// junctors only).
fn completeness(s: &Node, at: &str, errors: &mut Vec<FieldCause>) {
    let mut check = |v: &Node, v_at: String| junctor_complete(v, s, at, &v_at, errors);
    for (i, v) in s.all_of.iter().enumerate() {
        check(v, path::index(&path::child(at, "allOf"), i));
    }
    for (i, v) in s.any_of.iter().enumerate() {
        check(v, path::index(&path::child(at, "anyOf"), i));
    }
    for (i, v) in s.one_of.iter().enumerate() {
        check(v, path::index(&path::child(at, "oneOf"), i));
    }
    if let Some(v) = &s.not {
        check(v, path::child(at, "not"));
    }
}

fn junctor_complete(v: &Node, s: &Node, s_at: &str, v_at: &str, errors: &mut Vec<FieldCause>) {
    let mut nested = |n: &Node, n_at: String| junctor_complete(n, s, s_at, &n_at, errors);
    for (i, n) in v.all_of.iter().enumerate() {
        nested(n, path::index(&path::child(v_at, "allOf"), i));
    }
    for (i, n) in v.any_of.iter().enumerate() {
        nested(n, path::index(&path::child(v_at, "anyOf"), i));
    }
    for (i, n) in v.one_of.iter().enumerate() {
        nested(n, path::index(&path::child(v_at, "oneOf"), i));
    }
    if let Some(n) = &v.not {
        nested(n, path::child(v_at, "not"));
    }
    if let Some(items) = &v.items {
        match &s.items {
            Some(s_items) => junctor_complete(
                items,
                s_items,
                &path::child(s_at, "items"),
                &path::child(v_at, "items"),
                errors,
            ),
            None => errors.push(because(
                path::child(s_at, "items"),
                &path::child(v_at, "items"),
            )),
        }
    }
    for (k, p) in &v.properties {
        let s_here = path::key(&path::child(s_at, "properties"), k);
        let v_here = path::key(&path::child(v_at, "properties"), k);
        match s.property(k) {
            Some(sp) => junctor_complete(p, sp, &s_here, &v_here, errors),
            None => match &s.additional {
                Some(Additional::Schema(sub)) => junctor_complete(
                    p,
                    sub,
                    &path::child(s_at, "additionalProperties"),
                    &v_here,
                    errors,
                ),
                _ => errors.push(because(s_here, &v_here)),
            },
        }
    }
}

fn because(s_at: String, v_at: &str) -> FieldCause {
    FieldCause::required(s_at, format!("because it is defined in {v_at}"))
}
