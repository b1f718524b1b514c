//! autoscaling/v1 ⇄ autoscaling/v2 HorizontalPodAutoscalers, with upstream's
//! conversion rules (pkg/apis/autoscaling/v1/conversion.go). v1 knows one
//! metric, `targetCPUUtilizationPercentage`; every other metric, the current
//! metrics, the conditions and the behavior travel in the
//! `autoscaling.alpha.kubernetes.io/*` annotations, as the JSON Go writes for
//! them (v1 field names, and the internal type's Go field names for the
//! behavior), so a v1 client that writes back what it read loses nothing.

use serde_json::{json, Map, Value};

/// The annotation with the metrics v1 cannot express.
pub const METRIC_SPECS: &str = "autoscaling.alpha.kubernetes.io/metrics";
/// The annotation with every current metric status.
pub const METRIC_STATUSES: &str = "autoscaling.alpha.kubernetes.io/current-metrics";
/// The annotation with the status conditions.
pub const CONDITIONS: &str = "autoscaling.alpha.kubernetes.io/conditions";
/// The annotation with the scaling behavior.
pub const BEHAVIOR: &str = "autoscaling.alpha.kubernetes.io/behavior";

/// The round-trip annotations, which no stored (v2) object keeps.
pub const ROUND_TRIP: [&str; 4] = [METRIC_SPECS, BEHAVIOR, METRIC_STATUSES, CONDITIONS];

/// The CPU utilization an autoscaler without metrics aims at.
pub const DEFAULT_CPU_UTILIZATION: i64 = 80;

fn some<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.get(key).filter(|v| !v.is_null())
}

fn put(map: &mut Map<String, Value>, key: &str, value: Option<Value>) {
    if let Some(value) = value {
        map.insert(key.to_owned(), value);
    }
}

/// A quantity as Go's `Quantity.String()` writes it (canonical), or as given
/// when it does not parse.
pub fn canonical_quantity(value: &Value) -> Value {
    match value {
        Value::String(s) => match crate::quantity::Quantity::parse(s) {
            Ok(q) => Value::String(q.to_string()),
            Err(_) => value.clone(),
        },
        Value::Number(n) => canonical_quantity(&Value::String(n.to_string())),
        other => other.clone(),
    }
}

/// A quantity that Go always writes (a non-pointer field): `"0"` when absent.
fn quantity_or_zero(value: Option<&Value>) -> Value {
    value.map_or_else(|| json!("0"), canonical_quantity)
}

/// Removes the round-trip annotations (and an annotation map left empty).
pub fn drop_round_trip_annotations(obj: &mut Value) {
    let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    let Some(annotations) = meta.get_mut("annotations").and_then(Value::as_object_mut) else {
        return;
    };
    if ROUND_TRIP.iter().any(|k| annotations.contains_key(*k)) {
        for key in ROUND_TRIP {
            annotations.remove(key);
        }
        if annotations.is_empty() {
            meta.remove("annotations");
        }
    }
}

/// A label selector as Go writes a `metav1.LabelSelector`: sorted labels, then expressions.
fn go_selector(selector: &Value) -> Value {
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
fn go_reference(reference: Option<&Value>) -> Value {
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

fn selector_of(v: Option<&Value>, key: &str) -> Option<Value> {
    v.and_then(|v| some(v, key)).map(go_selector)
}

/// A v2 `MetricSpec` as a v1 `MetricSpec` (the annotation's items).
fn v1_metric_spec(metric: &Value) -> Value {
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

fn identifier(name: Option<&Value>, selector: Option<&Value>) -> Value {
    let mut m = Map::new();
    m.insert("name".into(), name.cloned().unwrap_or(json!("")));
    put(
        &mut m,
        "selector",
        selector.filter(|s| !s.is_null()).cloned(),
    );
    Value::Object(m)
}

fn target(kind: &str, fields: &[(&str, Option<&Value>)]) -> Value {
    let mut m = Map::new();
    m.insert("type".into(), json!(kind));
    for (key, value) in fields {
        put(&mut m, key, value.filter(|v| !v.is_null()).cloned());
    }
    Value::Object(m)
}

/// A v1 `MetricSpec` (from the annotation) as a v2 one.
fn v2_metric_spec(metric: &Value) -> Value {
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
fn v1_metric_status(metric: &Value) -> Value {
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

fn value_status(fields: &[(&str, Option<&Value>)]) -> Value {
    let mut m = Map::new();
    for (key, value) in fields {
        put(&mut m, key, value.filter(|v| !v.is_null()).cloned());
    }
    Value::Object(m)
}

/// A v1 `MetricStatus` (from the annotation) as a v2 one.
fn v2_metric_status(metric: &Value) -> Value {
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

/// A condition as Go writes `HorizontalPodAutoscalerCondition` (v1 and v2 agree).
fn go_condition(condition: &Value) -> Value {
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
fn v2_condition(condition: &Value) -> Value {
    let mut m = go_condition(condition);
    if let Some(map) = m.as_object_mut() {
        map.retain(|_, v| !v.is_null());
    }
    m
}

/// The v2 behavior as the internal Go type marshals it (Go field names, every field).
fn internal_behavior(behavior: &Value) -> Value {
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
fn go_field<'a>(obj: &'a Value, name: &str) -> Option<&'a Value> {
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
fn behavior_from_annotation(text: &str) -> Option<Value> {
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

fn parse_list(text: Option<&str>) -> Option<Vec<Value>> {
    let parsed: Value = serde_json::from_str(text?).ok()?;
    match parsed {
        Value::Array(items) if items.iter().all(Value::is_object) => Some(items),
        Value::Null => Some(Vec::new()),
        _ => None,
    }
}

fn is_cpu_utilization(metric: &Value) -> bool {
    metric.get("type").and_then(Value::as_str) == Some("Resource")
        && metric.pointer("/resource/name").and_then(Value::as_str) == Some("cpu")
        && metric
            .pointer("/resource/target/averageUtilization")
            .is_some_and(|v| !v.is_null())
}

fn cpu_metric(utilization: &Value) -> Value {
    json!({"type": "Resource", "resource": {"name": "cpu",
        "target": {"type": "Utilization", "averageUtilization": utilization}}})
}

/// The default metric of an autoscaler without any: 80% CPU utilization.
pub fn default_cpu_metric() -> Value {
    cpu_metric(&json!(DEFAULT_CPU_UTILIZATION))
}

/// An autoscaling/v1 object in its autoscaling/v2 (stored) form.
pub fn v1_to_v2(v1: &Value) -> Value {
    let mut meta = v1.get("metadata").cloned().unwrap_or_else(|| json!({}));
    let annotation = |key: &str| -> Option<String> {
        meta.get("annotations")
            .and_then(|a| a.get(key))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let (metric_specs, metric_statuses, conditions, behavior) = (
        annotation(METRIC_SPECS),
        annotation(METRIC_STATUSES),
        annotation(CONDITIONS),
        annotation(BEHAVIOR),
    );
    let mut holder = json!({"metadata": meta});
    drop_round_trip_annotations(&mut holder);
    meta = holder["metadata"].take();

    let empty = json!({});
    let spec_in = v1.get("spec").unwrap_or(&empty);
    let mut spec = Map::new();
    spec.insert(
        "scaleTargetRef".into(),
        spec_in
            .get("scaleTargetRef")
            .cloned()
            .unwrap_or_else(|| json!({})),
    );
    put(
        &mut spec,
        "minReplicas",
        some(spec_in, "minReplicas").cloned(),
    );
    spec.insert(
        "maxReplicas".into(),
        spec_in.get("maxReplicas").cloned().unwrap_or(json!(0)),
    );
    let mut metrics: Vec<Value> = Vec::new();
    if metric_specs.is_some() {
        if let Some(others) = parse_list(metric_specs.as_deref()) {
            metrics.extend(others.iter().map(v2_metric_spec));
        }
    }
    if let Some(cpu) = some(spec_in, "targetCPUUtilizationPercentage") {
        metrics.push(cpu_metric(cpu));
    }
    if metrics.is_empty() {
        metrics.push(default_cpu_metric());
    }
    spec.insert("metrics".into(), Value::Array(metrics));
    put(
        &mut spec,
        "behavior",
        behavior.as_deref().and_then(behavior_from_annotation),
    );

    let status_in = v1.get("status").unwrap_or(&empty);
    let mut status = Map::new();
    let current_replicas = status_in
        .get("currentReplicas")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    if current_replicas != 0 {
        status.insert("currentReplicas".into(), json!(current_replicas));
    }
    status.insert(
        "desiredReplicas".into(),
        json!(status_in
            .get("desiredReplicas")
            .and_then(Value::as_i64)
            .unwrap_or(0)),
    );
    let mut current: Vec<Value> = Vec::new();
    if let Some(cpu) = some(status_in, "currentCPUUtilizationPercentage") {
        current.push(json!({"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": cpu}}}));
    }
    if metric_statuses.is_some() {
        if let Some(all) = parse_list(metric_statuses.as_deref()) {
            current = all.iter().map(v2_metric_status).collect();
        }
    }
    if !current.is_empty() {
        status.insert("currentMetrics".into(), Value::Array(current));
    }
    if let Some(conditions) = parse_list(conditions.as_deref()).filter(|c| !c.is_empty()) {
        status.insert(
            "conditions".into(),
            Value::Array(conditions.iter().map(v2_condition).collect()),
        );
    }
    put(
        &mut status,
        "lastScaleTime",
        some(status_in, "lastScaleTime").cloned(),
    );
    put(
        &mut status,
        "observedGeneration",
        some(status_in, "observedGeneration").cloned(),
    );

    let mut out = Map::new();
    out.insert("kind".into(), json!("HorizontalPodAutoscaler"));
    out.insert("apiVersion".into(), json!("autoscaling/v2"));
    out.insert("metadata".into(), meta);
    out.insert("spec".into(), Value::Object(spec));
    out.insert("status".into(), Value::Object(status));
    Value::Object(out)
}

/// An autoscaling/v2 object as autoscaling/v1 serves it.
pub fn v2_to_v1(v2: &Value) -> Value {
    let mut holder = json!({"metadata": v2.get("metadata").cloned().unwrap_or_else(|| json!({}))});
    drop_round_trip_annotations(&mut holder);
    let mut meta = holder["metadata"].take();

    let empty = json!({});
    let spec_in = v2.get("spec").unwrap_or(&empty);
    let status_in = v2.get("status").unwrap_or(&empty);
    let metrics = spec_in
        .get("metrics")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let others: Vec<Value> = metrics
        .iter()
        .filter(|m| !is_cpu_utilization(m))
        .map(v1_metric_spec)
        .collect();
    let current = status_in
        .get("currentMetrics")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let conditions = status_in
        .get("conditions")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let mut added: Vec<(&str, String)> = Vec::new();
    if !others.is_empty() {
        added.push((METRIC_SPECS, go_json(&Value::Array(others))));
    }
    if !current.is_empty() {
        let statuses: Vec<Value> = current.iter().map(v1_metric_status).collect();
        added.push((METRIC_STATUSES, go_json(&Value::Array(statuses))));
    }
    if let Some(behavior) = some(spec_in, "behavior") {
        added.push((BEHAVIOR, go_json(&internal_behavior(behavior))));
    }
    if !conditions.is_empty() {
        let conditions: Vec<Value> = conditions.iter().map(go_condition).collect();
        added.push((CONDITIONS, go_json(&Value::Array(conditions))));
    }
    if !added.is_empty() {
        let meta_map = crate::kinds::obj_mut(&mut meta, "annotations");
        for (key, value) in added {
            meta_map.insert(key.to_owned(), json!(value));
        }
    }

    let mut spec = Map::new();
    spec.insert(
        "scaleTargetRef".into(),
        spec_in
            .get("scaleTargetRef")
            .cloned()
            .unwrap_or_else(|| json!({})),
    );
    put(
        &mut spec,
        "minReplicas",
        some(spec_in, "minReplicas").cloned(),
    );
    spec.insert(
        "maxReplicas".into(),
        spec_in.get("maxReplicas").cloned().unwrap_or(json!(0)),
    );
    put(
        &mut spec,
        "targetCPUUtilizationPercentage",
        metrics
            .iter()
            .find(|m| is_cpu_utilization(m))
            .and_then(|m| m.pointer("/resource/target/averageUtilization"))
            .cloned(),
    );

    let mut status = Map::new();
    put(
        &mut status,
        "observedGeneration",
        some(status_in, "observedGeneration").cloned(),
    );
    put(
        &mut status,
        "lastScaleTime",
        some(status_in, "lastScaleTime").cloned(),
    );
    status.insert(
        "currentReplicas".into(),
        json!(status_in
            .get("currentReplicas")
            .and_then(Value::as_i64)
            .unwrap_or(0)),
    );
    status.insert(
        "desiredReplicas".into(),
        json!(status_in
            .get("desiredReplicas")
            .and_then(Value::as_i64)
            .unwrap_or(0)),
    );
    let cpu = current
        .iter()
        .rev()
        .filter(|m| {
            m.get("type").and_then(Value::as_str) == Some("Resource")
                && m.pointer("/resource/name").and_then(Value::as_str) == Some("cpu")
        })
        .filter_map(|m| m.pointer("/resource/current/averageUtilization"))
        .find(|v| !v.is_null());
    put(&mut status, "currentCPUUtilizationPercentage", cpu.cloned());

    let mut out = Map::new();
    out.insert("kind".into(), json!("HorizontalPodAutoscaler"));
    out.insert("apiVersion".into(), json!("autoscaling/v1"));
    out.insert("metadata".into(), meta);
    out.insert("spec".into(), Value::Object(spec));
    out.insert("status".into(), Value::Object(status));
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v2() -> Value {
        json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "web", "namespace": "default", "annotations": {"team": "a"}},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                "minReplicas": 1, "maxReplicas": 5,
                "metrics": [
                    {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "1024Mi"}}},
                    {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 60}}},
                    {"type": "Pods", "pods": {"metric": {"name": "qps"}, "target": {"type": "AverageValue", "averageValue": "1k"}}},
                ],
                "behavior": {"scaleDown": {"selectPolicy": "Max", "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]}}},
            "status": {"currentReplicas": 2, "desiredReplicas": 3,
                "currentMetrics": [{"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 42, "averageValue": "120m"}}}],
                "conditions": [{"type": "AbleToScale", "status": "True", "lastTransitionTime": "2026-01-01T11:00:00Z", "reason": "ReadyForNewScale", "message": "a <b> & c"}]}})
    }

    #[test]
    fn v2_to_v1_keeps_the_rest_in_annotations() {
        let v1 = v2_to_v1(&v2());
        assert_eq!(v1["apiVersion"], "autoscaling/v1");
        assert_eq!(v1["spec"]["targetCPUUtilizationPercentage"], 60);
        assert_eq!(v1["status"]["currentCPUUtilizationPercentage"], 42);
        assert_eq!(v1["status"]["currentReplicas"], 2);
        let annotations = &v1["metadata"]["annotations"];
        assert_eq!(annotations["team"], "a");
        assert_eq!(
            annotations[METRIC_SPECS],
            "[{\"type\":\"Resource\",\"resource\":{\"name\":\"memory\",\"targetAverageValue\":\"1Gi\"}},{\"type\":\"Pods\",\"pods\":{\"metricName\":\"qps\",\"targetAverageValue\":\"1k\"}}]"
        );
        assert_eq!(
            annotations[METRIC_STATUSES],
            "[{\"type\":\"Resource\",\"resource\":{\"name\":\"cpu\",\"currentAverageUtilization\":42,\"currentAverageValue\":\"120m\"}}]"
        );
        assert_eq!(
            annotations[BEHAVIOR],
            "{\"ScaleUp\":null,\"ScaleDown\":{\"StabilizationWindowSeconds\":null,\"SelectPolicy\":\"Max\",\"Policies\":[{\"Type\":\"Percent\",\"Value\":100,\"PeriodSeconds\":15}],\"Tolerance\":null}}"
        );
        assert_eq!(
            annotations[CONDITIONS],
            "[{\"type\":\"AbleToScale\",\"status\":\"True\",\"lastTransitionTime\":\"2026-01-01T11:00:00Z\",\"reason\":\"ReadyForNewScale\",\"message\":\"a \\u003cb\\u003e \\u0026 c\"}]"
        );
    }

    #[test]
    fn round_trip_through_v1() {
        let original = v2();
        let back = v1_to_v2(&v2_to_v1(&original));
        assert_eq!(back["metadata"], original["metadata"]);
        assert_eq!(back["spec"]["behavior"], original["spec"]["behavior"]);
        assert_eq!(
            back["status"]["conditions"],
            original["status"]["conditions"]
        );
        let metrics = back["spec"]["metrics"].as_array().unwrap();
        // The CPU utilization metric moves to the end, as upstream's conversion puts it.
        assert_eq!(metrics[0]["resource"]["target"]["averageValue"], "1Gi");
        assert_eq!(metrics[1]["pods"]["target"]["averageValue"], "1k");
        assert_eq!(metrics[2], original["spec"]["metrics"][1]);
        assert_eq!(
            back["status"]["currentMetrics"],
            original["status"]["currentMetrics"]
        );
    }

    #[test]
    fn plain_v1_objects() {
        let v1 = json!({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "web"},
            "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "maxReplicas": 3}});
        let v2 = v1_to_v2(&v1);
        assert_eq!(v2["spec"]["metrics"], json!([default_cpu_metric()]));
        assert_eq!(v2["status"], json!({"desiredReplicas": 0}));
        assert!(v2["metadata"].get("annotations").is_none());
        let with_cpu = json!({"metadata": {"name": "web", "annotations": {METRIC_SPECS: "not json"}},
            "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "maxReplicas": 3, "targetCPUUtilizationPercentage": 50},
            "status": {"currentCPUUtilizationPercentage": 20}});
        let v2 = v1_to_v2(&with_cpu);
        assert_eq!(
            v2["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"],
            50
        );
        assert_eq!(
            v2["status"]["currentMetrics"][0]["resource"]["current"],
            json!({"averageUtilization": 20})
        );
        assert!(v2["metadata"].get("annotations").is_none());
        let behavior =
            behavior_from_annotation("{\"scaleUp\":{\"selectPolicy\":\"Min\",\"Policies\":null}}")
                .unwrap();
        assert_eq!(behavior, json!({"scaleUp": {"selectPolicy": "Min"}}));
        assert!(behavior_from_annotation("{}").is_none());
    }
}
