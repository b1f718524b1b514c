//! Events: the `kubectl get events` columns (LAST SEEN first, no NAME) and the
//! field selectors `kubectl describe` uses to find an object's events.

use serde_json::{json, Value};

use crate::kinds::{field_value_at, KindRules};
use crate::table::col;
use crate::table::print::{age, str_at};
use crate::table::Column;

/// The rules of `core/v1` Event.
#[derive(Debug, Clone, Copy, Default)]
pub struct Event;

impl KindRules for Event {
    fn columns(&self) -> Vec<Column> {
        vec![
            col(
                "Last Seen",
                "string",
                0,
                "Time since the event was last seen.",
            ),
            col("Type", "string", 0, "Type of the event."),
            col("Reason", "string", 0, "Why the event happened."),
            col("Object", "string", 0, "The object the event is about."),
            col("Message", "string", 0, "What happened."),
        ]
    }

    fn cells(&self, obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        let last = ["lastTimestamp", "eventTime"]
            .iter()
            .find(|f| str_at(obj, &[f]).is_some())
            .map_or_else(|| "<unknown>".to_owned(), |f| age(obj, &[f], now));
        let object = format!(
            "{}/{}",
            str_at(obj, &["involvedObject", "kind"])
                .unwrap_or_default()
                .to_lowercase(),
            str_at(obj, &["involvedObject", "name"]).unwrap_or_default()
        );
        vec![
            json!(last),
            json!(str_at(obj, &["type"]).unwrap_or_default()),
            json!(str_at(obj, &["reason"]).unwrap_or_default()),
            json!(object),
            json!(str_at(obj, &["message"]).unwrap_or_default()),
        ]
    }

    fn field_labels(&self) -> &'static [&'static str] {
        &[
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        ]
    }

    /// `source` selects by `source.component`.
    fn field_value(&self, obj: &Value, field: &str) -> String {
        if field == "source" {
            return str_at(obj, &["source", "component"])
                .unwrap_or_default()
                .to_owned();
        }
        field_value_at(obj, field)
    }
}
