//! The structural-schema rules upstream enforces on every v1 CRD schema
//! (`apiextensions-apiserver/pkg/apiserver/schema`): types everywhere, no
//! types or defaults inside `allOf`/`anyOf`/`oneOf`/`not`, metadata kept simple.

use serde_json::Value;

mod openapi;

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
    openapi::openapi_rules(root, at, &openapi::Walk::root(), errors);
    completeness(root, at, errors);
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
