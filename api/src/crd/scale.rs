//! The scale subresource's hold on custom objects: the replica counts at
//! `specReplicasPath`/`statusReplicasPath` must be int32-sized, non-negative
//! integers and the label selector a string (upstream's CR validator).

use serde_json::Value;

use crate::field::FieldCause;

/// Checks `obj` against a version's `subresources.scale` (`scale`), with
/// upstream's accessor messages and its `.spec.replicas`-style field paths.
pub fn validate_scale(scale: &Value, obj: &Value) -> Vec<FieldCause> {
    let mut errors = Vec::new();
    for key in ["specReplicasPath", "statusReplicasPath"] {
        let Some(path) = scale.get(key).and_then(Value::as_str) else {
            continue;
        };
        match nested(obj, path) {
            Err(err) => errors.push(FieldCause::invalid(path, &Value::from(0), err)),
            Ok(Some(Value::Number(n))) if n.is_i64() || n.is_u64() => {
                let n = n.as_i64().unwrap_or(i64::MAX);
                if n < 0 {
                    errors.push(FieldCause::invalid(
                        path,
                        &Value::from(n),
                        "should be a non-negative integer",
                    ));
                } else if n > i64::from(i32::MAX) {
                    errors.push(FieldCause::invalid(
                        path,
                        &Value::from(n),
                        format!("should be less than or equal to {}", i32::MAX),
                    ));
                }
            }
            Ok(Some(other)) => errors.push(FieldCause::invalid(
                path,
                &Value::from(0),
                accessor_error(path, other, "int64"),
            )),
            Ok(None) => {}
        }
    }
    if let Some(path) = scale.get("labelSelectorPath").and_then(Value::as_str) {
        let err = match nested(obj, path) {
            Err(err) => Some(err),
            Ok(Some(other)) if !other.is_string() => Some(accessor_error(path, other, "string")),
            Ok(_) => None,
        };
        if let Some(err) = err {
            errors.push(FieldCause::invalid(path, &Value::from(""), err));
        }
    }
    errors
}

/// The value at a dotted path (`Ok(None)` when absent), or Go's accessor
/// error when a step is not an object.
fn nested<'a>(obj: &'a Value, path: &str) -> Result<Option<&'a Value>, String> {
    let fields: Vec<&str> = path.trim_start_matches('.').split('.').collect();
    let mut val = obj;
    for (i, field) in fields.iter().enumerate() {
        match val {
            Value::Null => return Ok(None),
            Value::Object(map) => match map.get(*field) {
                Some(v) => val = v,
                None => return Ok(None),
            },
            other => {
                let at = format!(".{}", fields[..=i].join("."));
                return Err(format!(
                    "{at} accessor error: {} is of the type {}, expected map[string]interface{{}}",
                    go_v(other),
                    go_type(other)
                ));
            }
        }
    }
    Ok(Some(val))
}

fn accessor_error(path: &str, val: &Value, want: &str) -> String {
    format!(
        ".{} accessor error: {} is of the type {}, expected {want}",
        path.trim_start_matches('.'),
        go_v(val),
        go_type(val)
    )
}

/// Go's `%T` of a decoded JSON value.
fn go_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_i64() || n.is_u64() => "int64",
        Value::Number(_) => "float64",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

/// Go's `%v` of a decoded JSON value.
fn go_v(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".to_owned(),
        Value::String(s) => s.clone(),
        Value::Number(_) => super::path::go_number(v),
        Value::Bool(b) => b.to_string(),
        Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(go_v).collect();
            format!("[{}]", inner.join(" "))
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let inner: Vec<String> = keys
                .iter()
                .map(|k| format!("{k}:{}", go_v(&map[k.as_str()])))
                .collect();
            format!("map[{}]", inner.join(" "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn replicas_and_selector_as_upstream() {
        let scale = json!({"specReplicasPath": ".spec.replicas",
                           "statusReplicasPath": ".status.replicas",
                           "labelSelectorPath": ".status.labelSelector"});
        let cases = vec![
            (json!({"spec": {"replicas": 3}, "status": {"replicas": 2, "labelSelector": "a=b"}}), vec![]),
            (json!({}), vec![]),
            (
                json!({"spec": {"replicas": -1}, "status": {"replicas": 1.5}}),
                vec![
                    ".spec.replicas: Invalid value: -1: should be a non-negative integer",
                    ".status.replicas: Invalid value: 0: .status.replicas accessor error: 1.5 is of the type float64, expected int64",
                ],
            ),
            (
                json!({"spec": {"replicas": 3000000000_i64}, "status": "up"}),
                vec![
                    ".spec.replicas: Invalid value: 3000000000: should be less than or equal to 2147483647",
                    ".status.replicas: Invalid value: 0: .status.replicas accessor error: up is of the type string, expected map[string]interface{}",
                    ".status.labelSelector: Invalid value: \"\": .status.labelSelector accessor error: up is of the type string, expected map[string]interface{}",
                ],
            ),
            (
                json!({"status": {"labelSelector": {"matchLabels": {"a": "b"}}}}),
                vec![".status.labelSelector: Invalid value: \"\": .status.labelSelector accessor error: map[matchLabels:map[a:b]] is of the type map[string]interface {}, expected string"],
            ),
        ];
        for (obj, want) in cases {
            let got: Vec<String> = validate_scale(&scale, &obj)
                .into_iter()
                .map(|c| format!("{}: {}", c.field, c.message))
                .collect();
            assert_eq!(got, want, "{obj}");
        }
    }
}
