//! Metric specs and statuses between v1's annotation items and v2's fields,
//! with the Go shapes (selectors, object references) the annotations carry.

use serde_json::{json, Map, Value};

use super::{canonical_quantity, put, quantity_or_zero, some};

pub(super) fn go_selector(selector: &Value) -> Value {
    let mut out = Map::new();
    if let Some(labels) = selector.get("matchLabels").and_then(Value::as_object) {
        if !labels.is_empty() {
            let mut entries: Vec<(&String, &Value)> = labels.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            let sorted: Map<String, Value> = entries
                .into_iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            out.insert("matchLabels".into(), Value::Object(sorted));
        }
    }
    if let Some(exprs) = selector.get("matchExpressions").and_then(Value::as_array) {
        if !exprs.is_empty() {
            let exprs = exprs
                .iter()
                .map(|e| {
                    let mut m = Map::new();
                    m.insert("key".into(), e.get("key").cloned().unwrap_or(json!("")));
                    m.insert(
                        "operator".into(),
                        e.get("operator").cloned().unwrap_or(json!("")),
                    );
                    if let Some(values) = e.get("values").and_then(Value::as_array) {
                        if !values.is_empty() {
                            m.insert("values".into(), Value::Array(values.clone()));
                        }
                    }
                    Value::Object(m)
                })
                .collect();
            out.insert("matchExpressions".into(), Value::Array(exprs));
        }
    }
    Value::Object(out)
}

/// A `CrossVersionObjectReference` as Go writes it.
pub(super) fn go_reference(reference: Option<&Value>) -> Value {
    let empty = json!({});
    let reference = reference.unwrap_or(&empty);
    let mut out = Map::new();
    out.insert(
        "kind".into(),
        reference.get("kind").cloned().unwrap_or(json!("")),
    );
    out.insert(
        "name".into(),
        reference.get("name").cloned().unwrap_or(json!("")),
    );
    if let Some(v) = reference
        .get("apiVersion")
        .and_then(Value::as_str)
        .filter(|v| !v.is_empty())
    {
        out.insert("apiVersion".into(), json!(v));
    }
    Value::Object(out)
}

pub(super) fn selector_of(v: Option<&Value>, key: &str) -> Option<Value> {
    v.and_then(|v| some(v, key)).map(go_selector)
}

/// A v2 `MetricSpec` as a v1 `MetricSpec` (the annotation's items).
pub(super) fn v1_metric_spec(metric: &Value) -> Value {
    let mut out = Map::new();
    out.insert(
        "type".into(),
        metric.get("type").cloned().unwrap_or(json!("")),
    );
    if let Some(src) = some(metric, "object") {
        let target = src.get("target");
        let mut o = Map::new();
        o.insert("target".into(), go_reference(src.get("describedObject")));
        o.insert(
            "metricName".into(),
            src.pointer("/metric/name").cloned().unwrap_or(json!("")),
        );
        o.insert(
            "targetValue".into(),
            quantity_or_zero(target.and_then(|t| some(t, "value"))),
        );
        put(
            &mut o,
            "selector",
            selector_of(src.get("metric"), "selector"),
        );
        put(
            &mut o,
            "averageValue",
            target
                .and_then(|t| some(t, "averageValue"))
                .map(canonical_quantity),
        );
        out.insert("object".into(), Value::Object(o));
    }
    if let Some(src) = some(metric, "pods") {
        let mut o = Map::new();
        o.insert(
            "metricName".into(),
            src.pointer("/metric/name").cloned().unwrap_or(json!("")),
        );
        o.insert(
            "targetAverageValue".into(),
            quantity_or_zero(src.get("target").and_then(|t| some(t, "averageValue"))),
        );
        put(
            &mut o,
            "selector",
            selector_of(src.get("metric"), "selector"),
        );
        out.insert("pods".into(), Value::Object(o));
    }
    for (key, container) in [("resource", false), ("containerResource", true)] {
        if let Some(src) = some(metric, key) {
            let target = src.get("target");
            let mut o = Map::new();
            o.insert("name".into(), src.get("name").cloned().unwrap_or(json!("")));
            put(
                &mut o,
                "targetAverageUtilization",
                target.and_then(|t| some(t, "averageUtilization")).cloned(),
            );
            put(
                &mut o,
                "targetAverageValue",
                target
                    .and_then(|t| some(t, "averageValue"))
                    .map(canonical_quantity),
            );
            if container {
                o.insert(
                    "container".into(),
                    src.get("container").cloned().unwrap_or(json!("")),
                );
            }
            out.insert(key.into(), Value::Object(o));
        }
    }
    if let Some(src) = some(metric, "external") {
        let target = src.get("target");
        let mut o = Map::new();
        o.insert(
            "metricName".into(),
            src.pointer("/metric/name").cloned().unwrap_or(json!("")),
        );
        put(
            &mut o,
            "metricSelector",
            selector_of(src.get("metric"), "selector"),
        );
        put(
            &mut o,
            "targetValue",
            target
                .and_then(|t| some(t, "value"))
                .map(canonical_quantity),
        );
        put(
            &mut o,
            "targetAverageValue",
            target
                .and_then(|t| some(t, "averageValue"))
                .map(canonical_quantity),
        );
        out.insert("external".into(), Value::Object(o));
    }
    Value::Object(out)
}

pub(super) fn identifier(name: Option<&Value>, selector: Option<&Value>) -> Value {
    let mut m = Map::new();
    m.insert("name".into(), name.cloned().unwrap_or(json!("")));
    put(
        &mut m,
        "selector",
        selector.filter(|s| !s.is_null()).cloned(),
    );
    Value::Object(m)
}

pub(super) fn target(kind: &str, fields: &[(&str, Option<&Value>)]) -> Value {
    let mut m = Map::new();
    m.insert("type".into(), json!(kind));
    for (key, value) in fields {
        put(&mut m, key, value.filter(|v| !v.is_null()).cloned());
    }
    Value::Object(m)
}

/// A v1 `MetricSpec` (from the annotation) as a v2 one.
pub(super) fn v2_metric_spec(metric: &Value) -> Value {
    let mut out = Map::new();
    out.insert(
        "type".into(),
        metric.get("type").cloned().unwrap_or(json!("")),
    );
    if let Some(src) = some(metric, "object") {
        let average = some(src, "averageValue");
        let kind = if average.is_some() {
            "AverageValue"
        } else {
            "Value"
        };
        let zero = json!("0");
        let value = some(src, "targetValue").unwrap_or(&zero);
        out.insert(
            "object".into(),
            json!({
                "describedObject": go_reference(src.get("target")),
                "target": target(kind, &[("value", Some(value)), ("averageValue", average)]),
                "metric": identifier(src.get("metricName"), src.get("selector")),
            }),
        );
    }
    if let Some(src) = some(metric, "pods") {
        let zero = json!("0");
        let average = some(src, "targetAverageValue").unwrap_or(&zero);
        out.insert(
            "pods".into(),
            json!({
                "metric": identifier(src.get("metricName"), src.get("selector")),
                "target": target("AverageValue", &[("averageValue", Some(average))]),
            }),
        );
    }
    for (key, container) in [("resource", false), ("containerResource", true)] {
        if let Some(src) = some(metric, key) {
            let utilization = some(src, "targetAverageUtilization");
            let kind = if utilization.is_some() {
                "Utilization"
            } else {
                "AverageValue"
            };
            let mut o = Map::new();
            o.insert("name".into(), src.get("name").cloned().unwrap_or(json!("")));
            o.insert(
                "target".into(),
                target(
                    kind,
                    &[
                        ("averageValue", some(src, "targetAverageValue")),
                        ("averageUtilization", utilization),
                    ],
                ),
            );
            if container {
                o.insert(
                    "container".into(),
                    src.get("container").cloned().unwrap_or(json!("")),
                );
            }
            out.insert(key.into(), Value::Object(o));
        }
    }
    if let Some(src) = some(metric, "external") {
        let value = some(src, "targetValue");
        let kind = if value.is_none() {
            "AverageValue"
        } else {
            "Value"
        };
        out.insert(
            "external".into(),
            json!({
                "metric": identifier(src.get("metricName"), src.get("metricSelector")),
                "target": target(kind, &[("value", value), ("averageValue", some(src, "targetAverageValue"))]),
            }),
        );
    }
    Value::Object(out)
}

/// A v2 `MetricStatus` as a v1 one (the annotation's items).
pub(super) fn v1_metric_status(metric: &Value) -> Value {
    let mut out = Map::new();
    out.insert(
        "type".into(),
        metric.get("type").cloned().unwrap_or(json!("")),
    );
    if let Some(src) = some(metric, "object") {
        let current = src.get("current");
        let mut o = Map::new();
        o.insert("target".into(), go_reference(src.get("describedObject")));
        o.insert(
            "metricName".into(),
            src.pointer("/metric/name").cloned().unwrap_or(json!("")),
        );
        o.insert(
            "currentValue".into(),
            quantity_or_zero(current.and_then(|c| some(c, "value"))),
        );
        put(
            &mut o,
            "selector",
            selector_of(src.get("metric"), "selector"),
        );
        put(
            &mut o,
            "averageValue",
            current
                .and_then(|c| some(c, "averageValue"))
                .map(canonical_quantity),
        );
        out.insert("object".into(), Value::Object(o));
    }
    if let Some(src) = some(metric, "pods") {
        let mut o = Map::new();
        o.insert(
            "metricName".into(),
            src.pointer("/metric/name").cloned().unwrap_or(json!("")),
        );
        o.insert(
            "currentAverageValue".into(),
            quantity_or_zero(src.get("current").and_then(|c| some(c, "averageValue"))),
        );
        put(
            &mut o,
            "selector",
            selector_of(src.get("metric"), "selector"),
        );
        out.insert("pods".into(), Value::Object(o));
    }
    for (key, container) in [("resource", false), ("containerResource", true)] {
        if let Some(src) = some(metric, key) {
            let current = src.get("current");
            let mut o = Map::new();
            o.insert("name".into(), src.get("name").cloned().unwrap_or(json!("")));
            put(
                &mut o,
                "currentAverageUtilization",
                current.and_then(|c| some(c, "averageUtilization")).cloned(),
            );
            o.insert(
                "currentAverageValue".into(),
                quantity_or_zero(current.and_then(|c| some(c, "averageValue"))),
            );
            if container {
                o.insert(
                    "container".into(),
                    src.get("container").cloned().unwrap_or(json!("")),
                );
            }
            out.insert(key.into(), Value::Object(o));
        }
    }
    if let Some(src) = some(metric, "external") {
        let current = src.get("current");
        let mut o = Map::new();
        o.insert(
            "metricName".into(),
            src.pointer("/metric/name").cloned().unwrap_or(json!("")),
        );
        put(
            &mut o,
            "metricSelector",
            selector_of(src.get("metric"), "selector"),
        );
        o.insert(
            "currentValue".into(),
            quantity_or_zero(current.and_then(|c| some(c, "value"))),
        );
        put(
            &mut o,
            "currentAverageValue",
            current
                .and_then(|c| some(c, "averageValue"))
                .map(canonical_quantity),
        );
        out.insert("external".into(), Value::Object(o));
    }
    Value::Object(out)
}

pub(super) fn value_status(fields: &[(&str, Option<&Value>)]) -> Value {
    let mut m = Map::new();
    for (key, value) in fields {
        put(&mut m, key, value.filter(|v| !v.is_null()).cloned());
    }
    Value::Object(m)
}

/// A v1 `MetricStatus` (from the annotation) as a v2 one.
pub(super) fn v2_metric_status(metric: &Value) -> Value {
    let zero = json!("0");
    let mut out = Map::new();
    out.insert(
        "type".into(),
        metric.get("type").cloned().unwrap_or(json!("")),
    );
    if let Some(src) = some(metric, "object") {
        out.insert(
            "object".into(),
            json!({
                "metric": identifier(src.get("metricName"), src.get("selector")),
                "current": value_status(&[("value", Some(some(src, "currentValue").unwrap_or(&zero))), ("averageValue", some(src, "averageValue"))]),
                "describedObject": go_reference(src.get("target")),
            }),
        );
    }
    if let Some(src) = some(metric, "pods") {
        out.insert(
            "pods".into(),
            json!({
                "metric": identifier(src.get("metricName"), src.get("selector")),
                "current": value_status(&[("averageValue", Some(some(src, "currentAverageValue").unwrap_or(&zero)))]),
            }),
        );
    }
    for (key, container) in [("resource", false), ("containerResource", true)] {
        if let Some(src) = some(metric, key) {
            let mut o = Map::new();
            o.insert("name".into(), src.get("name").cloned().unwrap_or(json!("")));
            o.insert(
                "current".into(),
                value_status(&[
                    (
                        "averageValue",
                        Some(some(src, "currentAverageValue").unwrap_or(&zero)),
                    ),
                    ("averageUtilization", some(src, "currentAverageUtilization")),
                ]),
            );
            if container {
                o.insert(
                    "container".into(),
                    src.get("container").cloned().unwrap_or(json!("")),
                );
            }
            out.insert(key.into(), Value::Object(o));
        }
    }
    if let Some(src) = some(metric, "external") {
        out.insert(
            "external".into(),
            json!({
                "metric": identifier(src.get("metricName"), src.get("metricSelector")),
                "current": value_status(&[("value", Some(some(src, "currentValue").unwrap_or(&zero))), ("averageValue", some(src, "currentAverageValue"))]),
            }),
        );
    }
    Value::Object(out)
}
