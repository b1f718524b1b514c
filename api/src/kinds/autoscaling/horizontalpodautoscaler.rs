//! HorizontalPodAutoscalers, stored once in their autoscaling/v2 form and
//! served as v2 and v1: upstream's v2 defaults (one replica at least, 80% CPU
//! when no metric is given, the full scaling behavior once one is given),
//! validation of the target reference, metrics and behavior, the
//! `kubectl get hpa` columns, and the v1 resource, which converts to and from
//! the stored form with upstream's rules (see [`super::conversion`]).

use serde_json::{json, Value};

use super::conversion::{
    canonical_quantity, default_cpu_metric, drop_round_trip_annotations, v1_to_v2, v2_to_v1,
    CONDITIONS, METRIC_STATUSES,
};
use crate::field::FieldCause;
use crate::kinds::apps::workload::zero_status_fields;
use crate::kinds::{obj_mut, set_default, KindRules};
use crate::table::print::int_at;
use crate::table::{col, Column, AGE, NAME};

/// The rules of `autoscaling/v2` HorizontalPodAutoscaler (the stored version).
#[derive(Debug, Clone, Copy, Default)]
pub struct HorizontalPodAutoscaler;

/// The rules of `autoscaling/v1` HorizontalPodAutoscaler, served from the v2 form.
#[derive(Debug, Clone, Copy, Default)]
pub struct HorizontalPodAutoscalerV1;

/// The longest scaling policy period.
const MAX_PERIOD_SECONDS: i64 = 1800;
/// The longest stabilization window.
const MAX_STABILIZATION_WINDOW_SECONDS: i64 = 3600;

fn default_scale_up() -> Value {
    json!({"stabilizationWindowSeconds": 0, "selectPolicy": "Max", "policies": [
        {"type": "Pods", "value": 4, "periodSeconds": 15},
        {"type": "Percent", "value": 100, "periodSeconds": 15},
    ]})
}

fn default_scale_down() -> Value {
    json!({"selectPolicy": "Max", "policies": [
        {"type": "Percent", "value": 100, "periodSeconds": 15},
    ]})
}

/// Upstream's `copyHPAScalingRules` onto the defaults: what is set wins.
fn scaling_rules(given: Option<&Value>, mut defaults: Value) -> Value {
    if let (Some(given), Some(out)) = (given.and_then(Value::as_object), defaults.as_object_mut()) {
        for key in ["selectPolicy", "stabilizationWindowSeconds", "policies"] {
            if let Some(v) = given.get(key).filter(|v| !v.is_null()) {
                out.insert(key.into(), v.clone());
            }
        }
    }
    defaults
}

impl KindRules for HorizontalPodAutoscaler {
    fn default(&self, obj: &mut Value) {
        drop_round_trip_annotations(obj);
        let spec = obj_mut(obj, "spec");
        set_default(spec, "minReplicas", json!(1));
        if spec
            .get("metrics")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty)
        {
            spec.insert("metrics".into(), json!([default_cpu_metric()]));
        }
        if let Some(behavior) = spec.get_mut("behavior").and_then(Value::as_object_mut) {
            let up = scaling_rules(behavior.get("scaleUp"), default_scale_up());
            let down = scaling_rules(behavior.get("scaleDown"), default_scale_down());
            behavior.insert("scaleUp".into(), up);
            behavior.insert("scaleDown".into(), down);
        }
        canonical_quantities(obj);
        zero_status_fields(obj, &["desiredReplicas"]);
    }

    fn validate(&self, obj: &Value) -> Vec<FieldCause> {
        let empty = json!({});
        let spec = obj.get("spec").unwrap_or(&empty);
        let mut causes = Vec::new();
        let min = spec.get("minReplicas").and_then(Value::as_i64);
        let max = spec.get("maxReplicas").and_then(Value::as_i64).unwrap_or(0);
        if let Some(min) = min.filter(|m| *m < 1) {
            causes.push(FieldCause::invalid(
                "spec.minReplicas",
                &json!(min),
                "must be greater than or equal to 1",
            ));
        }
        if max < 1 {
            causes.push(FieldCause::invalid(
                "spec.maxReplicas",
                &json!(max),
                "must be greater than 0",
            ));
        }
        if min.is_some_and(|min| max < min) {
            causes.push(FieldCause::invalid(
                "spec.maxReplicas",
                &json!(max),
                "must be greater than or equal to `minReplicas`",
            ));
        }
        causes.extend(validate_reference(
            spec.get("scaleTargetRef"),
            "spec.scaleTargetRef",
        ));
        let metrics = spec
            .get("metrics")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        for (i, metric) in metrics.iter().enumerate() {
            causes.extend(validate_metric(metric, &format!("spec.metrics[{i}]")));
        }
        if min == Some(0) {
            let scales_to_zero = metrics.iter().any(|m| {
                matches!(
                    m.get("type").and_then(Value::as_str),
                    Some("Object" | "External")
                )
            });
            if !scales_to_zero {
                causes.push(FieldCause::forbidden(
                    "spec.metrics",
                    "must specify at least one Object or External metric to support scaling to zero replicas",
                ));
            }
        }
        if let Some(behavior) = spec.get("behavior").filter(|b| !b.is_null()) {
            for key in ["scaleUp", "scaleDown"] {
                if let Some(rules) = behavior.get(key).filter(|r| !r.is_null()) {
                    causes.extend(validate_scaling_rules(
                        rules,
                        &format!("spec.behavior.{key}"),
                    ));
                }
            }
        }
        causes.extend(crate::kinds::apps::workload::non_negative_fields(
            obj,
            &["status.currentReplicas", "status.desiredReplicas"],
        ));
        causes
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            NAME,
            col("Reference", "string", 0, "scaleTargetRef points to the target resource to scale, and is used to the pods for which metrics should be collected, as well as to actually change the replica count."),
            col("Targets", "string", 0, "metrics contains the specifications for which to use to calculate the desired replica count (the maximum replica count across all metrics will be used).  The desired replica count is calculated multiplying the ratio between the target value and the current value by the current number of pods.  Ergo, metrics used must decrease as the pod count is increased, and vice-versa.  See the individual metric source types for more information about how each type of metric must respond."),
            col("MinPods", "string", 0, "minReplicas is the lower limit for the number of replicas to which the autoscaler can scale down.  It defaults to 1 pod.  minReplicas is allowed to be 0 if the alpha feature gate HPAScaleToZero is enabled and at least one Object or External metric is configured.  Scaling is active as long as at least one metric value is available."),
            col("MaxPods", "integer", 0, "maxReplicas is the upper limit for the number of replicas to which the autoscaler can scale up. It cannot be less that minReplicas."),
            col("Replicas", "integer", 0, "currentReplicas is current number of replicas of pods managed by this autoscaler, as last seen by the autoscaler."),
            AGE,
        ]
    }

    fn cells(&self, obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        let reference = format!(
            "{}/{}",
            obj.pointer("/spec/scaleTargetRef/kind")
                .and_then(Value::as_str)
                .unwrap_or(""),
            obj.pointer("/spec/scaleTargetRef/name")
                .and_then(Value::as_str)
                .unwrap_or("")
        );
        let min = match obj.pointer("/spec/minReplicas").and_then(Value::as_i64) {
            Some(n) => n.to_string(),
            None => "<unset>".to_owned(),
        };
        vec![
            crate::table::name_cell(obj),
            json!(reference),
            json!(format_metrics(obj)),
            json!(min),
            json!(int_at(obj, &["spec", "maxReplicas"])),
            json!(int_at(obj, &["status", "currentReplicas"])),
            crate::table::age_cell(obj, now),
        ]
    }
}

impl KindRules for HorizontalPodAutoscalerV1 {
    /// v1 defaulting is v2's, seen through the conversion both ways, as
    /// upstream answers with what it stored, decoded and converted back.
    fn default(&self, obj: &mut Value) {
        let mut stored = v1_to_v2(obj);
        HorizontalPodAutoscaler.default(&mut stored);
        *obj = v2_to_v1(&stored);
    }

    /// Validation is of the stored form, with its field paths (as upstream
    /// validates the internal version).
    fn validate(&self, obj: &Value) -> Vec<FieldCause> {
        HorizontalPodAutoscaler.validate(&v1_to_v2(obj))
    }

    /// A write of the main resource keeps the stored status, and so the status
    /// annotations a v1 client sent back may not change it.
    fn prepare_for_update(&self, old: &Value, new: &mut Value) {
        let meta = obj_mut(new, "metadata");
        let annotations = meta.entry("annotations").or_insert_with(|| json!({}));
        if !annotations.is_object() {
            *annotations = json!({});
        }
        let annotations = annotations.as_object_mut().expect("an object");
        for key in [METRIC_STATUSES, CONDITIONS] {
            match old
                .pointer("/metadata/annotations")
                .and_then(|a| a.get(key))
            {
                Some(v) => {
                    annotations.insert(key.to_owned(), v.clone());
                }
                None => {
                    annotations.remove(key);
                }
            }
        }
        if annotations.is_empty() {
            meta.remove("annotations");
        }
    }

    fn convert_from_storage(&self, obj: &mut Value) {
        if obj.get("apiVersion").and_then(Value::as_str) == Some("autoscaling/v2") {
            *obj = v2_to_v1(obj);
        }
    }

    fn convert_to_storage(&self, obj: &Value) -> Option<Value> {
        Some(v1_to_v2(obj))
    }

    fn columns(&self) -> Vec<Column> {
        HorizontalPodAutoscaler.columns()
    }

    fn cells(&self, obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        HorizontalPodAutoscaler.cells(&v1_to_v2(obj), now)
    }
}

/// Quantities as upstream stores them (canonical: `1024Mi` is `1Gi`): the
/// metric targets, the current metric values and the behavior's tolerances.
fn canonical_quantities(obj: &mut Value) {
    const SOURCES: [&str; 5] = [
        "object",
        "pods",
        "resource",
        "containerResource",
        "external",
    ];
    let canonicalize = |list: Option<&mut Value>, section: &str| {
        for metric in list.and_then(Value::as_array_mut).into_iter().flatten() {
            for source in SOURCES {
                let Some(values) = metric
                    .get_mut(source)
                    .and_then(|s| s.get_mut(section))
                    .and_then(Value::as_object_mut)
                else {
                    continue;
                };
                for key in ["value", "averageValue"] {
                    if let Some(q) = values.get_mut(key) {
                        *q = canonical_quantity(q);
                    }
                }
            }
        }
    };
    canonicalize(obj.pointer_mut("/spec/metrics"), "target");
    canonicalize(obj.pointer_mut("/status/currentMetrics"), "current");
    for rules in ["scaleUp", "scaleDown"] {
        if let Some(q) = obj.pointer_mut(&format!("/spec/behavior/{rules}/tolerance")) {
            *q = canonical_quantity(q);
        }
    }
}

/// `ValidateCrossVersionObjectReference`.
fn validate_reference(reference: Option<&Value>, path: &str) -> Vec<FieldCause> {
    let mut causes = Vec::new();
    for key in ["kind", "name"] {
        let value = reference
            .and_then(|r| r.get(key))
            .and_then(Value::as_str)
            .unwrap_or("");
        if value.is_empty() {
            causes.push(FieldCause::required(format!("{path}.{key}"), ""));
        } else {
            for problem in crate::validation::is_valid_path_segment_name(value) {
                causes.push(FieldCause::invalid(
                    format!("{path}.{key}"),
                    &json!(value),
                    problem,
                ));
            }
        }
    }
    causes
}

const METRIC_TYPES: &[&str] = &[
    "ContainerResource",
    "External",
    "Object",
    "Pods",
    "Resource",
];

/// `validateMetricSpec`.
fn validate_metric(metric: &Value, path: &str) -> Vec<FieldCause> {
    let mut causes = Vec::new();
    let kind = metric.get("type").and_then(Value::as_str).unwrap_or("");
    if kind.is_empty() {
        causes.push(FieldCause::required(
            format!("{path}.type"),
            "must specify a metric source type",
        ));
    }
    if !METRIC_TYPES.contains(&kind) {
        causes.push(FieldCause::not_supported(
            format!("{path}.type"),
            &json!(kind),
            METRIC_TYPES,
        ));
    }
    let sources = [
        "object",
        "external",
        "pods",
        "resource",
        "containerResource",
    ];
    let present: Vec<&str> = sources
        .iter()
        .copied()
        .filter(|s| metric.get(*s).is_some_and(|v| !v.is_null()))
        .collect();
    if let Some(first) = present.first() {
        let src = &metric[*first];
        let at = format!("{path}.{first}");
        causes.extend(match *first {
            "object" => validate_object_source(src, &at),
            "external" => validate_external_source(src, &at),
            "pods" => validate_pods_source(src, &at),
            "resource" => validate_resource_source(src, &at, false),
            _ => validate_resource_source(src, &at, true),
        });
    }
    let expected = match kind {
        "Object" => "object",
        "Pods" => "pods",
        "Resource" => "resource",
        "External" => "external",
        "ContainerResource" => "containerResource",
        _ => {
            causes.push(FieldCause::not_supported(
                format!("{path}.type"),
                &json!(kind),
                METRIC_TYPES,
            ));
            ""
        }
    };
    if !expected.is_empty() && !present.contains(&expected) {
        causes.push(FieldCause::required(
            format!("{path}.{expected}"),
            "must populate information for the given metric source",
        ));
    }
    if present.len() != 1 {
        let mut extra: Vec<&str> = present.into_iter().filter(|p| *p != expected).collect();
        extra.sort();
        for source in extra {
            causes.push(FieldCause::forbidden(
                format!("{path}.{source}"),
                "must populate the given metric source only",
            ));
        }
    }
    causes
}

fn target_has(src: &Value, key: &str) -> bool {
    src.pointer(&format!("/target/{key}"))
        .is_some_and(|v| !v.is_null())
}

fn validate_object_source(src: &Value, path: &str) -> Vec<FieldCause> {
    let mut causes = validate_reference(
        src.get("describedObject"),
        &format!("{path}.describedObject"),
    );
    causes.extend(validate_metric_identifier(
        src.get("metric"),
        &format!("{path}.metric"),
    ));
    causes.extend(validate_metric_target(
        src.get("target"),
        &format!("{path}.target"),
    ));
    if !target_has(src, "value") && !target_has(src, "averageValue") {
        causes.push(FieldCause::required(
            format!("{path}.target.averageValue"),
            "must set either a target value or averageValue",
        ));
    }
    causes
}

fn validate_external_source(src: &Value, path: &str) -> Vec<FieldCause> {
    let mut causes = validate_metric_identifier(src.get("metric"), &format!("{path}.metric"));
    causes.extend(validate_metric_target(
        src.get("target"),
        &format!("{path}.target"),
    ));
    let (value, average) = (target_has(src, "value"), target_has(src, "averageValue"));
    if !value && !average {
        causes.push(FieldCause::required(
            format!("{path}.target.averageValue"),
            "must set either a target value for metric or a per-pod target",
        ));
    }
    if value && average {
        causes.push(FieldCause::forbidden(
            format!("{path}.target.value"),
            "may not set both a target value for metric and a per-pod target",
        ));
    }
    causes
}

fn validate_pods_source(src: &Value, path: &str) -> Vec<FieldCause> {
    let mut causes = validate_metric_identifier(src.get("metric"), &format!("{path}.metric"));
    causes.extend(validate_metric_target(
        src.get("target"),
        &format!("{path}.target"),
    ));
    if !target_has(src, "averageValue") {
        causes.push(FieldCause::required(
            format!("{path}.target.averageValue"),
            "must specify a positive target averageValue",
        ));
    }
    causes
}

fn validate_resource_source(src: &Value, path: &str, container: bool) -> Vec<FieldCause> {
    let mut causes = Vec::new();
    let name = src.get("name").and_then(Value::as_str).unwrap_or("");
    if name.is_empty() {
        causes.push(FieldCause::required(
            format!("{path}.name"),
            "must specify a resource name",
        ));
    } else if container {
        causes.extend(validate_container_resource_name(
            name,
            &format!("{path}.name"),
        ));
    }
    if container {
        let container_name = src.get("container").and_then(Value::as_str).unwrap_or("");
        if container_name.is_empty() {
            causes.push(FieldCause::required(
                format!("{path}.container"),
                "must specify a container",
            ));
        } else {
            for problem in crate::validation::is_dns1123_label(container_name) {
                causes.push(FieldCause::invalid(
                    format!("{path}.container"),
                    &json!(container_name),
                    problem,
                ));
            }
        }
    }
    causes.extend(validate_metric_target(
        src.get("target"),
        &format!("{path}.target"),
    ));
    let (utilization, average) = (
        target_has(src, "averageUtilization"),
        target_has(src, "averageValue"),
    );
    if !utilization && !average {
        causes.push(FieldCause::required(
            format!("{path}.target.averageUtilization"),
            "must set either a target raw value or a target utilization",
        ));
    }
    if utilization && average {
        causes.push(FieldCause::forbidden(
            format!("{path}.target.averageValue"),
            "may not set both a target raw value and a target utilization",
        ));
    }
    causes
}

/// `ValidateContainerResourceName`: a standard container resource, or an
/// extended resource (`vendor.example/gpu`).
fn validate_container_resource_name(name: &str, path: &str) -> Vec<FieldCause> {
    let mut causes: Vec<FieldCause> = crate::validation::is_qualified_name(name)
        .into_iter()
        .map(|p| FieldCause::invalid(path, &json!(name), p))
        .collect();
    if !name.contains('/') {
        let standard = matches!(name, "cpu" | "memory" | "ephemeral-storage")
            || name.starts_with("hugepages-");
        if !standard {
            causes.push(FieldCause::invalid(
                path,
                &json!(name),
                "must be a standard resource for containers",
            ));
        }
    } else if !name.contains("kubernetes.io/") && name.starts_with("requests.") {
        causes.push(FieldCause::invalid(
            path,
            &json!(name),
            "doesn't follow extended resource name standard",
        ));
    }
    causes
}

fn quantity_sign(value: &Value) -> i32 {
    value
        .as_str()
        .and_then(|s| crate::quantity::Quantity::parse(s).ok())
        .map_or(0, |q| q.signum())
}

/// `validateMetricTarget`.
fn validate_metric_target(target: Option<&Value>, path: &str) -> Vec<FieldCause> {
    let mut causes = Vec::new();
    let empty = json!({});
    let target = target.unwrap_or(&empty);
    let kind = target.get("type").and_then(Value::as_str).unwrap_or("");
    if kind.is_empty() {
        causes.push(FieldCause::required(
            format!("{path}.type"),
            "must specify a metric target type",
        ));
    }
    if !matches!(kind, "Utilization" | "Value" | "AverageValue") {
        causes.push(FieldCause::invalid(
            format!("{path}.type"),
            &json!(kind),
            "must be either Utilization, Value, or AverageValue",
        ));
    }
    for key in ["value", "averageValue"] {
        if let Some(q) = target.get(key).filter(|v| !v.is_null()) {
            if quantity_sign(q) != 1 {
                causes.push(FieldCause::invalid(
                    format!("{path}.{key}"),
                    &canonical_quantity(q),
                    "must be positive",
                ));
            }
        }
    }
    if let Some(u) = target
        .get("averageUtilization")
        .and_then(Value::as_i64)
        .filter(|u| *u < 1)
    {
        causes.push(FieldCause::invalid(
            format!("{path}.averageUtilization"),
            &json!(u),
            "must be greater than 0",
        ));
    }
    causes
}

/// `validateMetricIdentifier`.
fn validate_metric_identifier(identifier: Option<&Value>, path: &str) -> Vec<FieldCause> {
    let mut causes = Vec::new();
    let name = identifier
        .and_then(|i| i.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("");
    if name.is_empty() {
        causes.push(FieldCause::required(
            format!("{path}.name"),
            "must specify a metric name",
        ));
    } else {
        for problem in crate::validation::is_valid_path_segment_name(name) {
            causes.push(FieldCause::invalid(
                format!("{path}.name"),
                &json!(name),
                problem,
            ));
        }
    }
    causes
}

/// `validateScalingRules` and `validateScalingPolicy`.
fn validate_scaling_rules(rules: &Value, path: &str) -> Vec<FieldCause> {
    let mut causes = Vec::new();
    if let Some(window) = rules
        .get("stabilizationWindowSeconds")
        .and_then(Value::as_i64)
    {
        if window < 0 {
            causes.push(FieldCause::invalid(
                format!("{path}.stabilizationWindowSeconds"),
                &json!(window),
                "must be greater than or equal to zero",
            ));
        }
        if window > MAX_STABILIZATION_WINDOW_SECONDS {
            causes.push(FieldCause::invalid(
                format!("{path}.stabilizationWindowSeconds"),
                &json!(window),
                format!("must be less than or equal to {MAX_STABILIZATION_WINDOW_SECONDS}"),
            ));
        }
    }
    if let Some(select) = rules.get("selectPolicy").and_then(Value::as_str) {
        if !matches!(select, "Disabled" | "Max" | "Min") {
            causes.push(FieldCause::not_supported(
                format!("{path}.selectPolicy"),
                &json!(select),
                &["Disabled", "Max", "Min"],
            ));
        }
    }
    let policies = rules
        .get("policies")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    if policies.is_empty() {
        causes.push(FieldCause::required(
            format!("{path}.policies"),
            "must specify at least one Policy",
        ));
    }
    for (i, policy) in policies.iter().enumerate() {
        let at = format!("{path}.policies[{i}]");
        let kind = policy.get("type").and_then(Value::as_str).unwrap_or("");
        if !matches!(kind, "Pods" | "Percent") {
            causes.push(FieldCause::not_supported(
                format!("{at}.type"),
                &json!(kind),
                &["Percent", "Pods"],
            ));
        }
        let value = policy.get("value").and_then(Value::as_i64).unwrap_or(0);
        if value <= 0 {
            causes.push(FieldCause::invalid(
                format!("{at}.value"),
                &json!(value),
                "must be greater than zero",
            ));
        }
        let period = policy
            .get("periodSeconds")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        if period <= 0 {
            causes.push(FieldCause::invalid(
                format!("{at}.periodSeconds"),
                &json!(period),
                "must be greater than zero",
            ));
        }
        if period > MAX_PERIOD_SECONDS {
            causes.push(FieldCause::invalid(
                format!("{at}.periodSeconds"),
                &json!(period),
                format!("must be less than or equal to {MAX_PERIOD_SECONDS}"),
            ));
        }
    }
    causes
}

fn quantity_text(value: Option<&Value>) -> Option<String> {
    value
        .filter(|v| !v.is_null())
        .map(canonical_quantity)
        .and_then(|v| v.as_str().map(str::to_owned))
}

/// Upstream's `formatHPAMetrics`: each metric's current value against its
/// target (the status at the same index, when of the same source), two at most.
fn format_metrics(obj: &Value) -> String {
    let specs = obj
        .pointer("/spec/metrics")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    if specs.is_empty() {
        return "<none>".to_owned();
    }
    let statuses = obj
        .pointer("/status/currentMetrics")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let mut list: Vec<String> = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        let status = statuses.get(i);
        let source_status =
            |source: &str| status.and_then(|s| s.get(source)).filter(|v| !v.is_null());
        // A status amount Go dereferences without checking prints `<nil>`.
        let amount = |source: &str, field: &str, checked: bool| -> String {
            match source_status(source) {
                None => "<unknown>".to_owned(),
                Some(s) => match quantity_text(s.pointer(&format!("/current/{field}"))) {
                    Some(v) => v,
                    None if checked => "<unknown>".to_owned(),
                    None => "<nil>".to_owned(),
                },
            }
        };
        let target = |source: &str, field: &str| {
            quantity_text(spec.pointer(&format!("/{source}/target/{field}")))
                .unwrap_or_else(|| "<nil>".to_owned())
        };
        match spec.get("type").and_then(Value::as_str).unwrap_or("") {
            kind @ ("Resource" | "ContainerResource") => {
                let source = if kind == "Resource" {
                    "resource"
                } else {
                    "containerResource"
                };
                let name = spec
                    .pointer(&format!("/{source}/name"))
                    .and_then(Value::as_str)
                    .unwrap_or("");
                if spec
                    .pointer(&format!("/{source}/target/averageValue"))
                    .is_some_and(|v| !v.is_null())
                {
                    list.push(format!(
                        "{name}: {}/{}",
                        amount(source, "averageValue", false),
                        target(source, "averageValue")
                    ));
                } else {
                    let current = source_status(source)
                        .and_then(|s| s.pointer("/current/averageUtilization"))
                        .and_then(Value::as_i64)
                        .map_or_else(|| "<unknown>".to_owned(), |u| format!("{u}%"));
                    let goal = spec
                        .pointer(&format!("/{source}/target/averageUtilization"))
                        .and_then(Value::as_i64)
                        .map_or_else(|| "<auto>".to_owned(), |u| format!("{u}%"));
                    list.push(format!("{name}: {current}/{goal}"));
                }
            }
            "Pods" => list.push(format!(
                "{}/{}",
                amount("pods", "averageValue", false),
                target("pods", "averageValue")
            )),
            kind @ ("Object" | "External") => {
                let source = if kind == "Object" {
                    "object"
                } else {
                    "external"
                };
                if spec
                    .pointer(&format!("/{source}/target/averageValue"))
                    .is_some_and(|v| !v.is_null())
                {
                    list.push(format!(
                        "{}/{} (avg)",
                        amount(source, "averageValue", true),
                        target(source, "averageValue")
                    ));
                } else {
                    list.push(format!(
                        "{}/{}",
                        amount(source, "value", false),
                        target(source, "value")
                    ));
                }
            }
            _ => list.push("<unknown type>".to_owned()),
        }
    }
    if list.len() > 2 {
        return format!("{} + {} more...", list[..2].join(", "), list.len() - 2);
    }
    list.join(", ")
}

#[cfg(test)]
mod tests;
