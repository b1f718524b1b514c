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
mod annotations;
mod metrics;

pub use annotations::go_json;
use annotations::*;
use metrics::*;

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
mod tests;
