//! PodDisruptionBudgets: validation of `minAvailable`/`maxUnavailable` (one of
//! them, an integer or a percentage), the selector and the unhealthy pod
//! eviction policy, the status counters and conditions, generation tracking,
//! the status counters apps/v1 always writes, and the `kubectl get pdb` columns.

use serde_json::{json, Value};

use crate::field::FieldCause;
use crate::kinds::apps::workload::{
    non_negative_fields, too_long, validate_int_or_percent, validate_label_selector,
    zero_status_fields,
};
use crate::kinds::{KindRules, NameRule};
use crate::table::print::int_at;
use crate::table::{col, Column, AGE, NAME};

/// The rules of `policy/v1` PodDisruptionBudget.
#[derive(Debug, Clone, Copy, Default)]
pub struct PodDisruptionBudget;

impl KindRules for PodDisruptionBudget {
    /// Upstream checks no name rule of its own: any valid path segment.
    fn name_rule(&self) -> NameRule {
        NameRule::PathSegment
    }

    fn tracks_generation(&self) -> bool {
        true
    }

    fn default(&self, obj: &mut Value) {
        crate::kinds::obj_mut(obj, "spec");
        zero_status_fields(
            obj,
            &[
                "disruptionsAllowed",
                "currentHealthy",
                "desiredHealthy",
                "expectedPods",
            ],
        );
    }

    fn validate(&self, obj: &Value) -> Vec<FieldCause> {
        let mut causes = Vec::new();
        let spec = obj.get("spec").cloned().unwrap_or_else(|| json!({}));
        let min = spec.get("minAvailable").filter(|v| !v.is_null());
        let max = spec.get("maxUnavailable").filter(|v| !v.is_null());
        if min.is_some() && max.is_some() {
            causes.push(FieldCause::invalid(
                "spec",
                &spec,
                "minAvailable and maxUnavailable cannot be both set",
            ));
        }
        if let Some(min) = min {
            causes.extend(validate_int_or_percent(min, "spec.minAvailable"));
        }
        if let Some(max) = max {
            causes.extend(validate_int_or_percent(max, "spec.maxUnavailable"));
        }
        causes.extend(validate_label_selector(
            spec.get("selector"),
            "spec.selector",
        ));
        if let Some(policy) = spec
            .get("unhealthyPodEvictionPolicy")
            .and_then(Value::as_str)
        {
            if !matches!(policy, "AlwaysAllow" | "IfHealthyBudget") {
                causes.push(FieldCause::not_supported(
                    "spec.unhealthyPodEvictionPolicy",
                    &json!(policy),
                    &["AlwaysAllow", "IfHealthyBudget"],
                ));
            }
        }
        causes.extend(validate_conditions(
            obj.pointer("/status/conditions"),
            "status.conditions",
        ));
        causes.extend(non_negative_fields(
            obj,
            &[
                "status.disruptionsAllowed",
                "status.currentHealthy",
                "status.desiredHealthy",
                "status.expectedPods",
            ],
        ));
        causes
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            NAME,
            col(
                "Min Available",
                "string",
                0,
                "The minimum number of pods that must be available.",
            ),
            col(
                "Max Unavailable",
                "string",
                0,
                "The maximum number of pods that may be unavailable.",
            ),
            col(
                "Allowed Disruptions",
                "integer",
                0,
                "Calculated number of pods that may be disrupted at this time.",
            ),
            AGE,
        ]
    }

    fn cells(&self, obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        let shown = |pointer: &str| match obj.pointer(pointer) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => "N/A".to_owned(),
        };
        vec![
            crate::table::name_cell(obj),
            json!(shown("/spec/minAvailable")),
            json!(shown("/spec/maxUnavailable")),
            json!(int_at(obj, &["status", "disruptionsAllowed"])),
            crate::table::age_cell(obj, now),
        ]
    }
}

const REASON_FMT: &str = "[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?";
const MAX_REASON_LENGTH: usize = 1024;
const MAX_MESSAGE_LENGTH: usize = 32 * 1024;

fn valid_reason(reason: &str) -> bool {
    let bytes = reason.as_bytes();
    let Some((first, rest)) = bytes.split_first() else {
        return false;
    };
    first.is_ascii_alphabetic()
        && rest
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"_,:".contains(b))
        && rest
            .last()
            .is_none_or(|b| b.is_ascii_alphanumeric() || *b == b'_')
}

/// apimachinery's `ValidateConditions` of a `[]metav1.Condition`.
pub fn validate_conditions(conditions: Option<&Value>, field: &str) -> Vec<FieldCause> {
    let mut causes = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (i, condition) in conditions
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let at = format!("{field}[{i}]");
        let kind = condition.get("type").and_then(Value::as_str).unwrap_or("");
        for problem in crate::validation::is_qualified_name(kind) {
            causes.push(FieldCause::invalid(
                format!("{at}.type"),
                &json!(kind),
                problem,
            ));
        }
        if !seen.insert(kind.to_owned()) {
            causes.push(FieldCause::duplicate(format!("{at}.type"), &json!(kind)));
        }
        let status = condition
            .get("status")
            .and_then(Value::as_str)
            .unwrap_or("");
        if !matches!(status, "True" | "False" | "Unknown") {
            causes.push(FieldCause::not_supported(
                format!("{at}.status"),
                &json!(status),
                &["False", "True", "Unknown"],
            ));
        }
        if let Some(generation) = condition
            .get("observedGeneration")
            .and_then(Value::as_i64)
            .filter(|g| *g < 0)
        {
            causes.push(FieldCause::invalid(
                format!("{at}.observedGeneration"),
                &json!(generation),
                "must be greater than or equal to zero",
            ));
        }
        if condition
            .get("lastTransitionTime")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            causes.push(FieldCause::required(
                format!("{at}.lastTransitionTime"),
                "must be set",
            ));
        }
        let reason = condition
            .get("reason")
            .and_then(Value::as_str)
            .unwrap_or("");
        if reason.is_empty() {
            causes.push(FieldCause::required(format!("{at}.reason"), "must be set"));
        } else {
            if !valid_reason(reason) {
                causes.push(FieldCause::invalid(
                    format!("{at}.reason"),
                    &json!(reason),
                    crate::validation::regex_error(
                        "a condition reason must start with alphabetic character, optionally followed by a string of alphanumeric characters or '_,:', and must end with an alphanumeric character or '_'",
                        REASON_FMT,
                        &["my_name", "MY_NAME", "MyName", "ReasonA,ReasonB", "ReasonA:ReasonB"],
                    ),
                ));
            }
            if reason.len() > MAX_REASON_LENGTH {
                causes.push(too_long(format!("{at}.reason"), MAX_REASON_LENGTH));
            }
        }
        let message = condition
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("");
        if message.len() > MAX_MESSAGE_LENGTH {
            causes.push(too_long(format!("{at}.message"), MAX_MESSAGE_LENGTH));
        }
    }
    causes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pdb(spec: Value) -> Value {
        json!({"metadata": {"name": "web", "creationTimestamp": "2026-01-01T11:00:00Z"}, "spec": spec})
    }

    #[test]
    fn one_of_min_and_max() {
        let mut ok =
            pdb(json!({"minAvailable": "50%", "selector": {"matchLabels": {"app": "web"}}}));
        PodDisruptionBudget.default(&mut ok);
        assert_eq!(
            ok["status"],
            json!({"disruptionsAllowed": 0, "currentHealthy": 0, "desiredHealthy": 0, "expectedPods": 0})
        );
        assert!(PodDisruptionBudget.validate(&ok).is_empty());
        let both = pdb(json!({"minAvailable": 1, "maxUnavailable": "120%"}));
        let causes = PodDisruptionBudget.validate(&both);
        assert_eq!(causes[0].field, "spec");
        assert!(causes[0]
            .message
            .ends_with("minAvailable and maxUnavailable cannot be both set"));
        assert_eq!(causes[1].field, "spec.maxUnavailable");
        let row = PodDisruptionBudget.cells(&ok, "2026-01-01T12:00:00Z".parse().unwrap());
        assert_eq!(
            row,
            [
                json!("web"),
                json!("50%"),
                json!("N/A"),
                json!(0),
                json!("60m")
            ]
        );
    }

    #[test]
    fn conditions_are_checked() {
        let mut bad = pdb(json!({}));
        bad["status"] = json!({"conditions": [{"type": "DisruptionAllowed", "status": "Maybe", "reason": "no good"}]});
        let fields: Vec<String> = PodDisruptionBudget
            .validate(&bad)
            .into_iter()
            .map(|c| c.field)
            .collect();
        assert_eq!(
            fields,
            [
                "status.conditions[0].status",
                "status.conditions[0].lastTransitionTime",
                "status.conditions[0].reason"
            ]
        );
    }
}
