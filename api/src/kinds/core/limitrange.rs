//! LimitRanges: upstream's container defaults (default limit from max,
//! default request from default or min), the consistency checks between
//! min, max, default and defaultRequest, and the `kubectl get limits` columns.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::field::FieldCause;
use crate::kinds::KindRules;
use crate::quantity::Quantity;
use crate::table::{col, Column, NAME};

/// The rules of `core/v1` LimitRange.
#[derive(Debug, Clone, Copy, Default)]
pub struct LimitRange;

impl KindRules for LimitRange {
    fn default(&self, obj: &mut Value) {
        let Some(limits) = obj
            .pointer_mut("/spec/limits")
            .and_then(Value::as_array_mut)
        else {
            return;
        };
        for item in limits.iter_mut().filter_map(Value::as_object_mut) {
            if item.get("type").and_then(Value::as_str) == Some("Container") {
                default_container_item(item);
            }
        }
    }

    fn validate(&self, obj: &Value) -> Vec<FieldCause> {
        validate_limits(obj)
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            NAME,
            col(
                "Created At",
                "date",
                0,
                "CreationTimestamp is a timestamp representing the server time when this object was created.",
            ),
        ]
    }

    fn cells(&self, obj: &Value, _now: jiff::Timestamp) -> Vec<Value> {
        vec![
            crate::table::name_cell(obj),
            obj.pointer("/metadata/creationTimestamp")
                .cloned()
                .unwrap_or(Value::Null),
        ]
    }
}

/// A Container item: the default limit falls back to max, the default request
/// to the default limit and then to min.
fn default_container_item(item: &mut Map<String, Value>) {
    let section = |item: &Map<String, Value>, key: &str| -> Map<String, Value> {
        item.get(key)
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default()
    };
    let (max, min) = (section(item, "max"), section(item, "min"));
    let mut default = section(item, "default");
    for (k, v) in &max {
        default.entry(k.clone()).or_insert_with(|| v.clone());
    }
    let mut request = section(item, "defaultRequest");
    for (k, v) in default.iter().chain(&min) {
        request.entry(k.clone()).or_insert_with(|| v.clone());
    }
    if !default.is_empty() {
        item.insert("default".into(), Value::Object(default));
    }
    if !request.is_empty() {
        item.insert("defaultRequest".into(), Value::Object(request));
    }
}

/// The quantities of one section of an item (`max`, `min`, …), by resource;
/// unparsable ones are reported and left out.
fn quantities(
    item: &Value,
    section: &str,
    at: &str,
    causes: &mut Vec<FieldCause>,
) -> BTreeMap<String, Quantity> {
    let mut out = BTreeMap::new();
    for (resource, value) in item
        .get(section)
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        let text = value
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| value.to_string());
        let path = format!("{at}.{section}[{resource}]");
        match Quantity::parse(&text) {
            Ok(q) if q.signum() < 0 => causes.push(FieldCause::invalid(
                path,
                &Value::String(q.to_string()),
                "must be greater than or equal to 0",
            )),
            Ok(q) => {
                out.insert(resource.clone(), q);
            }
            Err(e) => causes.push(FieldCause::invalid(
                path,
                &Value::String(text),
                e.to_string(),
            )),
        }
    }
    out
}

/// Upstream's `ValidateLimitRange` (the rules between the sections).
fn validate_limits(obj: &Value) -> Vec<FieldCause> {
    let mut causes = Vec::new();
    let mut seen_types = Vec::new();
    let items = obj
        .pointer("/spec/limits")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    for (i, item) in items.iter().enumerate() {
        let at = format!("spec.limits[{i}]");
        let kind = item.get("type").and_then(Value::as_str).unwrap_or_default();
        if kind.is_empty() {
            causes.push(FieldCause::required(format!("{at}.type"), ""));
        } else if seen_types.contains(&kind) {
            causes.push(FieldCause::duplicate(format!("{at}.type"), &json!(kind)));
        } else {
            seen_types.push(kind);
        }
        let max = quantities(item, "max", &at, &mut causes);
        let min = quantities(item, "min", &at, &mut causes);
        let default = quantities(item, "default", &at, &mut causes);
        let request = quantities(item, "defaultRequest", &at, &mut causes);
        quantities(item, "maxLimitRequestRatio", &at, &mut causes);
        if kind == "Pod" {
            if !default.is_empty() {
                causes.push(FieldCause::forbidden(
                    format!("{at}.default"),
                    "may not be specified when `type` is 'Pod'",
                ));
            }
            if !request.is_empty() {
                causes.push(FieldCause::forbidden(
                    format!("{at}.defaultRequest"),
                    "may not be specified when `type` is 'Pod'",
                ));
            }
        }
        for (k, low) in &min {
            if let Some(high) = max.get(k).filter(|high| low > *high) {
                causes.push(FieldCause::invalid(
                    format!("{at}.min[{k}]"),
                    &Value::String(low.to_string()),
                    format!("min value {low} is greater than max value {high}"),
                ));
            }
        }
        for (k, q) in &request {
            let path = format!("{at}.defaultRequest[{k}]");
            let shown = Value::String(q.to_string());
            if let Some(low) = min.get(k).filter(|low| *low > q) {
                causes.push(FieldCause::invalid(
                    &path,
                    &shown,
                    format!("min value {low} is greater than default request value {q}"),
                ));
            }
            if let Some(high) = max.get(k).filter(|high| q > *high) {
                causes.push(FieldCause::invalid(
                    &path,
                    &shown,
                    format!("default request value {q} is greater than max value {high}"),
                ));
            }
            if let Some(limit) = default.get(k).filter(|limit| q > *limit) {
                causes.push(FieldCause::invalid(
                    &path,
                    &shown,
                    format!(
                        "default request value {q} is greater than default limit value {limit}"
                    ),
                ));
            }
        }
        for (k, q) in &default {
            let path = format!("{at}.default[{k}]");
            let shown = Value::String(q.to_string());
            if let Some(low) = min.get(k).filter(|low| *low > q) {
                causes.push(FieldCause::invalid(
                    &path,
                    &shown,
                    format!("min value {low} is greater than default value {q}"),
                ));
            }
            if let Some(high) = max.get(k).filter(|high| q > *high) {
                causes.push(FieldCause::invalid(
                    &path,
                    &shown,
                    format!("default value {q} is greater than max value {high}"),
                ));
            }
        }
    }
    causes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(items: Value) -> Value {
        json!({"metadata": {"name": "limits"}, "spec": {"limits": items}})
    }

    #[test]
    fn container_defaults_follow_max_then_default_then_min() {
        let mut obj =
            range(json!([{"type": "Container", "max": {"cpu": "1"}, "min": {"memory": "100Mi"}}]));
        LimitRange.default(&mut obj);
        let item = &obj["spec"]["limits"][0];
        assert_eq!(item["default"], json!({"cpu": "1"}));
        assert_eq!(
            item["defaultRequest"],
            json!({"cpu": "1", "memory": "100Mi"})
        );
        let mut pod = range(json!([{"type": "Pod", "max": {"cpu": "1"}}]));
        LimitRange.default(&mut pod);
        assert!(pod["spec"]["limits"][0].get("default").is_none());
    }

    #[test]
    fn inconsistent_ranges_are_refused_with_upstream_words() {
        let cases = [
            (
                json!([{"type": "Container", "min": {"cpu": "2"}, "max": {"cpu": "1"}}]),
                "spec.limits[0].min[cpu]",
                "Invalid value: \"2\": min value 2 is greater than max value 1",
            ),
            (
                json!([{"type": "Container", "default": {"memory": "1Gi"}, "max": {"memory": "512Mi"}}]),
                "spec.limits[0].default[memory]",
                "Invalid value: \"1Gi\": default value 1Gi is greater than max value 512Mi",
            ),
            (
                json!([{"type": "Container", "default": {"cpu": "500m"}, "defaultRequest": {"cpu": "1"}}]),
                "spec.limits[0].defaultRequest[cpu]",
                "Invalid value: \"1\": default request value 1 is greater than default limit value 500m",
            ),
            (
                json!([{"type": "Pod", "default": {"cpu": "1"}}]),
                "spec.limits[0].default",
                "Forbidden: may not be specified when `type` is 'Pod'",
            ),
            (
                json!([{"type": "Pod"}, {"type": "Pod"}]),
                "spec.limits[1].type",
                "Duplicate value: \"Pod\"",
            ),
        ];
        for (items, field, message) in cases {
            let causes = LimitRange.validate(&range(items));
            assert!(
                causes
                    .iter()
                    .any(|c| c.field == field && c.message == message),
                "{field}: {causes:?}"
            );
        }
        let good = range(
            json!([{"type": "Container", "default": {"cpu": "500m"}, "defaultRequest": {"cpu": "250m"}}]),
        );
        assert!(LimitRange.validate(&good).is_empty());
    }
}
