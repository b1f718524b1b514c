//! `events.k8s.io/v1` Events: stored as core/v1 Events (upstream's conversion:
//! note ↔ message, regarding ↔ involvedObject, reportingController ↔
//! reportingComponent, the `deprecated*` fields ↔ the legacy ones), with the
//! strict validation upstream gives creates through this group.

use serde_json::{json, Map, Value};

use crate::field::FieldCause;
use crate::kinds::KindRules;
use crate::table::print::str_at;
use crate::table::Column;

/// The rules of `events.k8s.io/v1` Event.
#[derive(Debug, Clone, Copy, Default)]
pub struct Event;

/// Field names that differ: (core/v1, events.k8s.io/v1).
const RENAMED: &[(&str, &str)] = &[
    ("involvedObject", "regarding"),
    ("message", "note"),
    ("reportingComponent", "reportingController"),
    ("source", "deprecatedSource"),
    ("firstTimestamp", "deprecatedFirstTimestamp"),
    ("lastTimestamp", "deprecatedLastTimestamp"),
    ("count", "deprecatedCount"),
];

/// Field names both versions share.
const SHARED: &[&str] = &[
    "metadata",
    "related",
    "reportingInstance",
    "action",
    "reason",
    "type",
    "eventTime",
    "series",
];

/// Renames fields of `obj` from one version's names to the other's, and sets its type meta.
fn convert(obj: &Value, to_events: bool) -> Value {
    let Some(from) = obj.as_object() else {
        return obj.clone();
    };
    let mut out = Map::new();
    let (api_version, kind) = if to_events {
        ("events.k8s.io/v1", "Event")
    } else {
        ("v1", "Event")
    };
    out.insert("apiVersion".into(), json!(api_version));
    out.insert("kind".into(), json!(kind));
    for field in SHARED {
        if let Some(v) = from.get(*field) {
            out.insert((*field).to_owned(), v.clone());
        }
    }
    for (core, events) in RENAMED {
        let (src, dst) = if to_events {
            (core, events)
        } else {
            (events, core)
        };
        if let Some(v) = from.get(*src) {
            out.insert((*dst).to_owned(), v.clone());
        }
    }
    Value::Object(out)
}

/// A core/v1 Event in `events.k8s.io/v1` form.
pub fn from_core(obj: &Value) -> Value {
    convert(obj, true)
}

/// An `events.k8s.io/v1` Event in core/v1 form.
pub fn to_core(obj: &Value) -> Value {
    convert(obj, false)
}

fn unset(obj: &Value, field: &str) -> bool {
    match obj.get(field) {
        None | Some(Value::Null) => true,
        Some(Value::Number(n)) => n.as_i64() == Some(0),
        Some(Value::String(s)) => s.is_empty(),
        Some(Value::Object(m)) => m.values().all(|v| v.as_str().is_none_or(str::is_empty)),
        Some(_) => false,
    }
}

impl KindRules for Event {
    fn convert_from_storage(&self, obj: &mut Value) {
        if obj.get("apiVersion").and_then(Value::as_str) == Some("v1") {
            *obj = from_core(obj);
        }
    }

    fn convert_to_storage(&self, obj: &Value) -> Option<Value> {
        Some(to_core(obj))
    }

    fn validate(&self, obj: &Value) -> Vec<FieldCause> {
        let mut causes = Vec::new();
        let text = |field: &str| obj.get(field).and_then(Value::as_str).unwrap_or("");
        let event_ns = str_at(obj, &["metadata", "namespace"]).unwrap_or("");
        let regarding_ns = str_at(obj, &["regarding", "namespace"]).unwrap_or("");
        if regarding_ns.is_empty() && !matches!(event_ns, "default" | "kube-system") {
            causes.push(FieldCause::invalid(
                "involvedObject.namespace",
                &json!(regarding_ns),
                "does not match event.namespace",
            ));
        }
        if text("reportingController").is_empty() {
            causes.push(FieldCause::required("reportingController", ""));
        } else {
            for msg in crate::validation::is_qualified_name(text("reportingController")) {
                causes.push(FieldCause::invalid(
                    "reportingController",
                    &json!(text("reportingController")),
                    msg,
                ));
            }
        }
        for (field, limit) in [("reportingInstance", 128), ("action", 128), ("reason", 128)] {
            if text(field).is_empty() {
                causes.push(FieldCause::required(field, ""));
            } else if text(field).len() > limit {
                causes.push(FieldCause::invalid(
                    field,
                    &json!(""),
                    format!("can have at most {limit} characters"),
                ));
            }
        }
        if text("note").len() > 1024 {
            causes.push(FieldCause::invalid(
                "message",
                &json!(""),
                "can have at most 1024 characters",
            ));
        }
        if let Some(series) = obj.get("series") {
            if series.get("count").and_then(Value::as_i64).unwrap_or(0) < 2 {
                causes.push(FieldCause::invalid(
                    "series.count",
                    &json!(""),
                    "should be at least 2",
                ));
            }
            if series.get("lastObservedTime").is_none() {
                causes.push(FieldCause::required("series.lastObservedTime", ""));
            }
        }
        if text("eventTime").is_empty() {
            causes.push(FieldCause::required("eventTime", ""));
        }
        if !matches!(text("type"), "Normal" | "Warning") {
            causes.push(FieldCause::invalid(
                "type",
                &json!(""),
                format!("has invalid value: {}", text("type")),
            ));
        }
        for field in [
            "deprecatedFirstTimestamp",
            "deprecatedLastTimestamp",
            "deprecatedCount",
            "deprecatedSource",
        ] {
            if !unset(obj, field) {
                causes.push(FieldCause::invalid(field, &json!(""), "needs to be unset"));
            }
        }
        causes
    }

    fn columns(&self) -> Vec<Column> {
        crate::kinds::core::event::Event.columns()
    }

    fn cells(&self, obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        crate::kinds::core::event::Event.cells(&to_core(obj), now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn core_event() -> Value {
        json!({"apiVersion": "v1", "kind": "Event",
            "metadata": {"name": "e1", "namespace": "default"},
            "involvedObject": {"kind": "Pod", "name": "p", "namespace": "default"},
            "related": {"kind": "Node", "name": "n"},
            "message": "pulled", "reason": "Pulled", "type": "Normal", "action": "Pull",
            "reportingComponent": "kubelet", "reportingInstance": "n1",
            "source": {"component": "kubelet", "host": "n1"},
            "firstTimestamp": "2025-01-01T00:00:00Z", "lastTimestamp": "2025-01-01T00:01:00Z", "count": 3,
            "eventTime": "2025-01-01T00:00:00.000000Z",
            "series": {"count": 3, "lastObservedTime": "2025-01-01T00:01:00.000000Z"}})
    }

    #[test]
    fn conversion_renames_every_field_and_round_trips() {
        let mut obj = core_event();
        Event.convert_from_storage(&mut obj);
        assert_eq!(obj["apiVersion"], "events.k8s.io/v1");
        assert_eq!(obj["note"], "pulled");
        assert_eq!(obj["regarding"]["name"], "p");
        assert_eq!(obj["reportingController"], "kubelet");
        assert_eq!(obj["deprecatedSource"]["host"], "n1");
        assert_eq!(obj["deprecatedCount"], 3);
        assert_eq!(obj["deprecatedFirstTimestamp"], "2025-01-01T00:00:00Z");
        assert_eq!(obj["series"]["count"], 3);
        assert_eq!(obj["related"]["kind"], "Node");
        assert!(obj.get("message").is_none());
        assert_eq!(Event.convert_to_storage(&obj).unwrap(), core_event());
        let mut again = obj.clone();
        Event.convert_from_storage(&mut again);
        assert_eq!(again, obj, "converting an events.k8s.io object is a no-op");
    }

    #[test]
    fn creates_through_events_k8s_io_are_strict() {
        let good = json!({"metadata": {"name": "e", "namespace": "default"}, "eventTime": "2025-01-01T00:00:00.000000Z",
            "reportingController": "example.com/c", "reportingInstance": "i", "action": "A", "reason": "R",
            "type": "Normal", "regarding": {"kind": "Pod", "name": "p", "namespace": "default"}});
        assert!(
            Event.validate(&good).is_empty(),
            "{:?}",
            Event.validate(&good)
        );
        let mut bad = good.clone();
        bad["type"] = json!("Loud");
        bad["deprecatedCount"] = json!(2);
        bad.as_object_mut().unwrap().remove("eventTime");
        let got: Vec<String> = Event
            .validate(&bad)
            .into_iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect();
        assert_eq!(
            got,
            [
                "eventTime: Required value",
                "type: Invalid value: \"\": has invalid value: Loud",
                "deprecatedCount: Invalid value: \"\": needs to be unset",
            ]
        );
    }
}
