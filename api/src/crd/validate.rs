//! Validation of a custom object against its structural schema, with the
//! messages of upstream's OpenAPI validator (kube-openapi) as the API server
//! turns them into field causes, plus list-type and embedded-resource rules.

use serde_json::Value;

mod embedded;
mod lists;

use super::{format, path, Additional, Node};
use crate::field::FieldCause;

/// Validates the object root: schema checks, embedded resources, then list
/// sets and maps. `old` is the object before an update: subtrees that did not change are not
/// validated again (upstream's validation ratcheting), so objects stored under
/// an older schema stay updatable.
pub(super) fn validate_root(
    root: &Node,
    obj: &Value,
    old: Option<&Value>,
    errors: &mut Vec<FieldCause>,
) {
    validate(root, obj, old, "", errors);
    // Upstream does not ratchet embedded resources; list sets and maps are
    // only checked when the old object passed them.
    embedded::walk(root, obj, "", errors);
    let old_lists_ok = old.is_none_or(|o| {
        let mut found = Vec::new();
        lists::walk(root, o, "", &mut found);
        found.is_empty()
    });
    if old_lists_ok {
        lists::walk(root, obj, "", errors);
    }
}

pub(super) fn invalid_msg(at: &str, value: &Value, msg: String) -> FieldCause {
    FieldCause {
        reason: "FieldValueInvalid",
        field: at.to_owned(),
        message: format!("Invalid value: {}: {msg}", render(value)),
    }
}

/// A bad value as Go's field errors print it: strings quoted, numbers and
/// booleans plain, null as `"null"`, compound values as Go's `%#v`.
pub(super) fn render(value: &Value) -> String {
    match value {
        Value::Null => "\"null\"".to_owned(),
        Value::String(s) => format!("{s:?}"),
        Value::Number(_) => path::go_number(value),
        Value::Bool(b) => b.to_string(),
        other => go_sharp_v(other),
    }
}

/// Go's `%#v` of a decoded JSON value (`map[string]interface {}{"a":1}`).
pub(super) fn go_sharp_v(value: &Value) -> String {
    match value {
        Value::Null => "interface {}(nil)".to_owned(),
        Value::String(s) => format!("{s:?}"),
        Value::Number(_) => path::go_number(value),
        Value::Bool(b) => b.to_string(),
        Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(go_sharp_v).collect();
            format!("[]interface {{}}{{{}}}", inner.join(", "))
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let inner: Vec<String> = keys
                .iter()
                .map(|k| format!("{k:?}:{}", go_sharp_v(&map[k.as_str()])))
                .collect();
            format!("map[string]interface {{}}{{{}}}", inner.join(", "))
        }
    }
}

/// The subject of kube-openapi's messages: the path from the object root.
fn name(at: &str) -> &str {
    at
}

fn type_invalid(at: &str, want: &str, got: &str) -> FieldCause {
    FieldCause {
        reason: "FieldValueTypeInvalid",
        field: at.to_owned(),
        message: format!(
            "Invalid value: {got:?}: {} in body must be of type {want}: {got:?}",
            name(at)
        ),
    }
}

/// The `type` a value must have (`integer,string` for int-or-string), when
/// it has the wrong one.
fn type_mismatch(s: &Node, value: &Value) -> Option<String> {
    let got = path::type_name(value);
    if s.int_or_string {
        return (!matches!(got, "integer" | "string")).then(|| "integer,string".to_owned());
    }
    let ok = s.ty.is_empty() || s.ty == got || (s.ty == "number" && got == "integer");
    (!ok).then(|| s.ty.clone())
}

/// Validates `value` at `at` against `s`, recursing into its children.
pub(super) fn validate(
    s: &Node,
    value: &Value,
    old: Option<&Value>,
    at: &str,
    errors: &mut Vec<FieldCause>,
) {
    if old == Some(value) {
        return;
    }
    // Like kube-openapi: a null only meets the type and enum checks; other
    // values meet every check that applies to their own kind, even after a
    // type mismatch.
    if value.is_null() && s.nullable {
        return;
    }
    if let Some(want) = type_mismatch(s, value) {
        errors.push(type_invalid(at, &want, path::type_name(value)));
    }
    if value.is_null() {
        enum_check(s, value, at, errors);
        return;
    }
    junctors(s, value, at, errors);
    match value {
        Value::String(text) => string_checks(s, text, value, at, errors),
        Value::Number(_) => number_checks(s, value, at, errors),
        Value::Array(items) => array_checks(s, items, old, at, errors),
        Value::Object(map) => object_checks(s, map, old, at, errors),
        _ => {}
    }
    enum_check(s, value, at, errors);
}

/// `enum`: the value must equal one of the listed ones.
fn enum_check(s: &Node, value: &Value, at: &str, errors: &mut Vec<FieldCause>) {
    if let Some(allowed) = &s.enumeration {
        if !allowed.contains(value) {
            let shown: Vec<String> = allowed
                .iter()
                .map(|a| match a {
                    Value::String(text) => format!("{text:?}"),
                    other => format!("{:?}", other.to_string()),
                })
                .collect();
            errors.push(FieldCause {
                reason: "FieldValueNotSupported",
                field: at.to_owned(),
                message: format!(
                    "Unsupported value: {}: supported values: {}",
                    render(value),
                    shown.join(", ")
                ),
            });
        }
    }
}

fn junctors(s: &Node, value: &Value, at: &str, errors: &mut Vec<FieldCause>) {
    let run = |n: &Node| {
        let mut errs = Vec::new();
        validate(n, value, None, at, &mut errs);
        errs
    };
    if !s.any_of.is_empty() {
        let results: Vec<Vec<FieldCause>> = s.any_of.iter().map(run).collect();
        if results.iter().all(|r| !r.is_empty()) {
            errors.push(invalid_msg(
                at,
                &Value::String(String::new()),
                format!("{:?} must validate at least one schema (anyOf)", name(at)),
            ));
            if let Some(best) = results.into_iter().min_by_key(Vec::len) {
                errors.extend(best);
            }
        }
    }
    if !s.one_of.is_empty() {
        let results: Vec<Vec<FieldCause>> = s.one_of.iter().map(run).collect();
        let valid = results.iter().filter(|r| r.is_empty()).count();
        if valid != 1 {
            let extra = if valid == 0 {
                "Found none valid".to_owned()
            } else {
                format!("Found {valid} valid alternatives")
            };
            errors.push(invalid_msg(
                at,
                &Value::String(String::new()),
                format!(
                    "{:?} must validate one and only one schema (oneOf). {extra}",
                    name(at)
                ),
            ));
            if valid == 0 {
                if let Some(best) = results.into_iter().min_by_key(Vec::len) {
                    errors.extend(best);
                }
            }
        }
    }
    if !s.all_of.is_empty() {
        let mut validated = 0;
        for n in &s.all_of {
            let errs = run(n);
            if errs.is_empty() {
                validated += 1;
            }
            errors.extend(errs);
        }
        if validated != s.all_of.len() {
            let extra = if validated == 0 {
                ". None validated"
            } else {
                ""
            };
            errors.push(invalid_msg(
                at,
                &Value::String(String::new()),
                format!(
                    "{:?} must validate all the schemas (allOf){extra}",
                    name(at)
                ),
            ));
        }
    }
    if let Some(n) = &s.not {
        if run(n).is_empty() {
            errors.push(invalid_msg(
                at,
                &Value::String(String::new()),
                format!("{:?} must not validate the schema (not)", name(at)),
            ));
        }
    }
}

fn string_checks(s: &Node, text: &str, value: &Value, at: &str, errors: &mut Vec<FieldCause>) {
    let len = text.chars().count() as u64;
    if let Some(max) = s.max_length {
        if len > max {
            // apimachinery 1.33 words it so (no singular, value omitted).
            errors.push(FieldCause {
                reason: "FieldValueTooLong",
                field: at.to_owned(),
                message: format!("Too long: may not be more than {max} bytes"),
            });
        }
    }
    if let Some(min) = s.min_length {
        if len < min {
            errors.push(invalid_msg(
                at,
                value,
                format!("{} in body should be at least {min} chars long", name(at)),
            ));
        }
    }
    if let Some((source, re)) = &s.pattern {
        if !re.is_match(text) {
            errors.push(invalid_msg(
                at,
                value,
                format!("{} in body should match '{source}'", name(at)),
            ));
        }
    }
    if !s.format.is_empty() && !format::is_valid(&s.format, text) {
        errors.push(FieldCause {
            reason: "FieldValueTypeInvalid",
            field: at.to_owned(),
            message: format!(
                "Invalid value: {text:?}: {} in body must be of type {}: {text:?}",
                name(at),
                s.format
            ),
        });
    }
}

fn number_checks(s: &Node, value: &Value, at: &str, errors: &mut Vec<FieldCause>) {
    let Some(n) = value.as_f64() else { return };
    if let Some(factor) = s.multiple_of {
        if factor > 0.0 {
            let q = n / factor;
            if (q - q.round()).abs() > 1e-9 {
                errors.push(invalid_msg(
                    at,
                    value,
                    format!(
                        "{} in body should be a multiple of {}",
                        name(at),
                        path::go_float(factor)
                    ),
                ));
            }
        }
    }
    if let Some(max) = s.maximum {
        let bad = if s.exclusive_maximum {
            n >= max
        } else {
            n > max
        };
        if bad {
            let how = if s.exclusive_maximum {
                "less than"
            } else {
                "less than or equal to"
            };
            errors.push(invalid_msg(
                at,
                value,
                format!(
                    "{} in body should be {how} {}",
                    name(at),
                    path::go_float(max)
                ),
            ));
        }
    }
    if let Some(min) = s.minimum {
        let bad = if s.exclusive_minimum {
            n <= min
        } else {
            n < min
        };
        if bad {
            let how = if s.exclusive_minimum {
                "greater than"
            } else {
                "greater than or equal to"
            };
            errors.push(invalid_msg(
                at,
                value,
                format!(
                    "{} in body should be {how} {}",
                    name(at),
                    path::go_float(min)
                ),
            ));
        }
    }
}

fn array_checks(
    s: &Node,
    items: &[Value],
    old: Option<&Value>,
    at: &str,
    errors: &mut Vec<FieldCause>,
) {
    if let Some(item_schema) = &s.items {
        for (i, item) in items.iter().enumerate() {
            let old_item = old.and_then(|o| super::rules::correlate(s, item, o));
            validate(item_schema, item, old_item, &path::index(at, i), errors);
        }
    }
    let size = items.len() as u64;
    if let Some(min) = s.min_items {
        if size < min {
            errors.push(invalid_msg(
                at,
                &Value::from(size),
                format!("{} in body should have at least {min} items", name(at)),
            ));
        }
    }
    if let Some(max) = s.max_items {
        if size > max {
            errors.push(too_many(at, size, max));
        }
    }
    if s.unique_items {
        let mut seen = std::collections::HashSet::new();
        if !items.iter().all(|i| seen.insert(canonical(i))) {
            errors.push(invalid_msg(
                at,
                &Value::String(String::new()),
                format!("{} in body shouldn't contain duplicates", name(at)),
            ));
        }
    }
}

fn too_many(at: &str, actual: u64, max: u64) -> FieldCause {
    FieldCause {
        reason: "FieldValueTooMany",
        field: at.to_owned(),
        message: format!("Too many: {actual}: must have at most {max} items"),
    }
}

fn object_checks(
    s: &Node,
    map: &serde_json::Map<String, Value>,
    old: Option<&Value>,
    at: &str,
    errors: &mut Vec<FieldCause>,
) {
    let size = map.len() as u64;
    if let Some(min) = s.min_properties {
        if size < min {
            errors.push(invalid_msg(
                at,
                &Value::from(size),
                format!("{} in body should have at least {min} properties", name(at)),
            ));
        }
    }
    if let Some(max) = s.max_properties {
        if size > max {
            errors.push(too_many(at, size, max));
        }
    }
    for required in &s.required {
        if !map.contains_key(required) {
            errors.push(FieldCause::required(path::child(at, required), ""));
        }
    }
    for (key, child) in map {
        let here = path::child(at, key);
        if let Some(prop) = s.property(key) {
            validate(prop, child, old.and_then(|o| o.get(key)), &here, errors);
        } else if let Some(Additional::Schema(sub)) = &s.additional {
            validate(sub, child, old.and_then(|o| o.get(key)), &here, errors);
        } else if let Some(Additional::Allowed(false)) = &s.additional {
            errors.push(invalid_msg(
                at,
                &Value::from(key.as_str()),
                format!("{}.{key} in body is a forbidden property", name(at)),
            ));
        }
    }
}

/// JSON as Go's encoder writes it (object keys sorted, Go's numbers), so
/// equal values compare equal as text.
pub(super) fn canonical(value: &Value) -> String {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .iter()
                .map(|k| {
                    format!(
                        "{}:{}",
                        Value::from(k.as_str()),
                        canonical(&map[k.as_str()])
                    )
                })
                .collect();
            format!("{{{}}}", parts.join(","))
        }
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(canonical).collect();
            format!("[{}]", parts.join(","))
        }
        Value::Number(_) => path::go_json_number(value),
        other => other.to_string(),
    }
}
