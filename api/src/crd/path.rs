//! Field paths and value renderings shared by the CRD modules, spelled as
//! upstream's `field.Path` and Go's `%v` print them, so messages match.

use serde_json::Value;

/// `parent.name`, or `name` at the root.
pub(super) fn child(parent: &str, name: &str) -> String {
    if parent.is_empty() {
        name.to_owned()
    } else {
        format!("{parent}.{name}")
    }
}

/// `parent[key]`, upstream's spelling of a map key.
pub(super) fn key(parent: &str, key: &str) -> String {
    format!("{parent}[{key}]")
}

/// `parent[i]`, a list index.
pub(super) fn index(parent: &str, i: usize) -> String {
    format!("{parent}[{i}]")
}

/// The OpenAPI type name of a JSON value, as upstream's validators name it.
pub(super) fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(n) if n.as_f64().is_some_and(|f| f.fract() == 0.0) => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// A float as Go's `%v` prints it (`1`, `1.5`, `1e+06`), for messages that
/// quote a schema bound.
pub(super) fn go_float(f: f64) -> String {
    if f == 0.0 {
        return "0".to_owned();
    }
    let exp = f.abs().log10().floor() as i32;
    if (-4..6).contains(&exp) {
        return format!("{f}");
    }
    // Go switches to exponent form from 1e+06 on (shortest %g, precision 6).
    let s = format!("{f:e}");
    let (mantissa, e) = s.split_once('e').unwrap_or((&s, "0"));
    let e: i32 = e.parse().unwrap_or(0);
    let sign = if e < 0 { '-' } else { '+' };
    format!("{mantissa}e{sign}{:02}", e.abs())
}

/// A JSON number as Go prints the decoded value (`int64` or `float64`).
pub(super) fn go_number(value: &Value) -> String {
    match value {
        Value::Number(n) if n.is_i64() || n.is_u64() => n.to_string(),
        Value::Number(n) => go_float(n.as_f64().unwrap_or(0.0)),
        other => other.to_string(),
    }
}

/// A JSON number as Go's `encoding/json` writes a decoded value: integers
/// plain, floats without exponent between 1e-6 and 1e21 (`1e-7`, `1e+21`
/// outside).
pub(super) fn go_json_number(value: &Value) -> String {
    let Value::Number(n) = value else {
        return value.to_string();
    };
    if n.is_i64() || n.is_u64() {
        return n.to_string();
    }
    let f = n.as_f64().unwrap_or(0.0);
    let abs = f.abs();
    if abs == 0.0 || (1e-6..1e21).contains(&abs) {
        return format!("{f}");
    }
    let s = format!("{f:e}");
    match s.split_once('e') {
        Some((mantissa, exp)) if !exp.starts_with('-') => format!("{mantissa}e+{exp}"),
        _ => s,
    }
}
