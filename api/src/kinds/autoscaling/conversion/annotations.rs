//! Conditions and scaling behavior as v1 carries them in annotations: the JSON
//! Go writes for them (internal field names for the behavior) and back.

use serde_json::{json, Map, Value};

use super::{canonical_quantity, put};

/// A condition as Go writes `HorizontalPodAutoscalerCondition` (v1 and v2 agree).
pub(super) fn go_condition(condition: &Value) -> Value {
    let mut m = Map::new();
    m.insert(
        "type".into(),
        condition.get("type").cloned().unwrap_or(json!("")),
    );
    m.insert(
        "status".into(),
        condition.get("status").cloned().unwrap_or(json!("")),
    );
    m.insert(
        "lastTransitionTime".into(),
        condition
            .get("lastTransitionTime")
            .cloned()
            .unwrap_or(Value::Null),
    );
    for key in ["reason", "message"] {
        if let Some(v) = condition
            .get(key)
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
        {
            m.insert(key.into(), json!(v));
        }
    }
    Value::Object(m)
}

/// A condition read back from the annotation: what v2 serializes of it.
pub(super) fn v2_condition(condition: &Value) -> Value {
    let mut m = go_condition(condition);
    if let Some(map) = m.as_object_mut() {
        map.retain(|_, v| !v.is_null());
    }
    m
}

/// The v2 behavior as the internal Go type marshals it (Go field names, every field).
pub(super) fn internal_behavior(behavior: &Value) -> Value {
    let rules = |rules: Option<&Value>| -> Value {
        let Some(rules) = rules.filter(|r| !r.is_null()) else {
            return Value::Null;
        };
        let policies = match rules.get("policies").and_then(Value::as_array) {
            Some(policies) => Value::Array(
                policies
                    .iter()
                    .map(|p| {
                        json!({
                            "Type": p.get("type").cloned().unwrap_or(json!("")),
                            "Value": p.get("value").cloned().unwrap_or(json!(0)),
                            "PeriodSeconds": p.get("periodSeconds").cloned().unwrap_or(json!(0)),
                        })
                    })
                    .collect(),
            ),
            None => Value::Null,
        };
        json!({
            "StabilizationWindowSeconds": rules.get("stabilizationWindowSeconds").cloned().unwrap_or(Value::Null),
            "SelectPolicy": rules.get("selectPolicy").cloned().unwrap_or(Value::Null),
            "Policies": policies,
            "Tolerance": rules.get("tolerance").map(canonical_quantity).unwrap_or(Value::Null),
        })
    };
    json!({
        "ScaleUp": rules(behavior.get("scaleUp")),
        "ScaleDown": rules(behavior.get("scaleDown")),
    })
}

/// A field of a Go-unmarshalled object: Go matches names case-insensitively.
pub(super) fn go_field<'a>(obj: &'a Value, name: &str) -> Option<&'a Value> {
    let map = obj.as_object()?;
    map.get(name)
        .or_else(|| {
            map.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v)
        })
        .filter(|v| !v.is_null())
}

/// The annotation's behavior as v2's, None when it does not parse or is empty.
pub(super) fn behavior_from_annotation(text: &str) -> Option<Value> {
    let parsed: Value = serde_json::from_str(text).ok()?;
    if !parsed.is_object() {
        return None;
    }
    let rules = |rules: Option<&Value>| -> Option<Value> {
        let rules = rules.filter(|r| r.is_object())?;
        let mut out = Map::new();
        put(
            &mut out,
            "stabilizationWindowSeconds",
            go_field(rules, "StabilizationWindowSeconds").cloned(),
        );
        put(
            &mut out,
            "selectPolicy",
            go_field(rules, "SelectPolicy").cloned(),
        );
        if let Some(policies) = go_field(rules, "Policies").and_then(Value::as_array) {
            let policies = policies
                .iter()
                .map(|p| {
                    json!({
                        "type": go_field(p, "Type").cloned().unwrap_or(json!("")),
                        "value": go_field(p, "Value").cloned().unwrap_or(json!(0)),
                        "periodSeconds": go_field(p, "PeriodSeconds").cloned().unwrap_or(json!(0)),
                    })
                })
                .collect();
            out.insert("policies".into(), Value::Array(policies));
        }
        put(&mut out, "tolerance", go_field(rules, "Tolerance").cloned());
        Some(Value::Object(out))
    };
    let up = rules(go_field(&parsed, "ScaleUp"));
    let down = rules(go_field(&parsed, "ScaleDown"));
    if up.is_none() && down.is_none() {
        return None;
    }
    let mut behavior = Map::new();
    put(&mut behavior, "scaleUp", up);
    put(&mut behavior, "scaleDown", down);
    Some(Value::Object(behavior))
}

/// JSON as Go's `json.Marshal` writes it: compact, with `<`, `>`, `&`,
/// U+2028 and U+2029 escaped.
pub fn go_json(value: &Value) -> String {
    let text = serde_json::to_string(value).expect("JSON values serialize");
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}
