//! PriorityClasses: upstream's limits on user-defined values, the reserved
//! `system-` names, the immutable value and preemption policy, the columns,
//! and the two system classes the API server creates at start. The store-reading
//! half (one global default, pods' priority) is the API server's admission.

use serde_json::{json, Value};

use crate::field::FieldCause;
use crate::kinds::{immutable_fields, KindRules};
use crate::table::print::str_at;
use crate::table::{col, Column, AGE, NAME};

/// The rules of `scheduling.k8s.io/v1` PriorityClass.
#[derive(Debug, Clone, Copy, Default)]
pub struct PriorityClass;

/// The highest value a user-defined class may have (upstream's `HighestUserDefinablePriority`).
pub const HIGHEST_USER_DEFINABLE_PRIORITY: i64 = 1_000_000_000;

/// The prefix reserved for the system classes.
pub const SYSTEM_PREFIX: &str = "system-";

/// The system classes: name, value, description.
pub const SYSTEM_CLASSES: &[(&str, i64, &str)] = &[
    (
        "system-node-critical",
        2_000_001_000,
        "Used for system critical pods that must not be moved from their current node.",
    ),
    (
        "system-cluster-critical",
        2_000_000_000,
        "Used for system critical pods that must run in the cluster, but can be moved to another node if necessary.",
    ),
];

/// The system classes as objects, for the API server to create at start.
pub fn system_classes() -> Vec<Value> {
    SYSTEM_CLASSES
        .iter()
        .map(|(name, value, description)| {
            json!({
                "apiVersion": "scheduling.k8s.io/v1",
                "kind": "PriorityClass",
                "metadata": {"name": name},
                "value": value,
                "description": description,
            })
        })
        .collect()
}

/// Why a `system-` class is not one of upstream's (None when it is).
fn known_system_class(name: &str, value: i64, global_default: bool) -> Option<String> {
    match SYSTEM_CLASSES.iter().find(|(n, _, _)| *n == name) {
        None => Some(format!("{name} is not a known system priority class")),
        Some((_, v, _)) if *v != value => {
            Some(format!("value of {name} PriorityClass must be {v}"))
        }
        Some(_) if global_default => Some(format!(
            "globalDefault of {name} PriorityClass must be false"
        )),
        Some(_) => None,
    }
}

impl KindRules for PriorityClass {
    fn default(&self, obj: &mut Value) {
        if let Some(map) = obj.as_object_mut() {
            crate::kinds::set_default(map, "preemptionPolicy", json!("PreemptLowerPriority"));
        }
    }

    fn validate(&self, obj: &Value) -> Vec<FieldCause> {
        let mut causes = Vec::new();
        let name = str_at(obj, &["metadata", "name"]).unwrap_or("");
        let value = obj.get("value").and_then(Value::as_i64).unwrap_or(0);
        let global = obj
            .get("globalDefault")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        if name.starts_with(SYSTEM_PREFIX) {
            if let Some(err) = known_system_class(name, value, global) {
                causes.push(FieldCause::forbidden(
                    "metadata.name",
                    format!("priority class names with '{SYSTEM_PREFIX}' prefix are reserved for system use only. error: {err}"),
                ));
            }
        } else if value > HIGHEST_USER_DEFINABLE_PRIORITY {
            causes.push(FieldCause::forbidden(
                "value",
                format!("maximum allowed value of a user defined priority is {HIGHEST_USER_DEFINABLE_PRIORITY}"),
            ));
        }
        if let Some(policy) = str_at(obj, &["preemptionPolicy"]) {
            if !matches!(policy, "Never" | "PreemptLowerPriority") {
                causes.push(FieldCause::not_supported(
                    "preemptionPolicy",
                    &json!(policy),
                    &["Never", "PreemptLowerPriority"],
                ));
            }
        }
        causes
    }

    fn validate_update(&self, old: &Value, new: &Value) -> Vec<FieldCause> {
        let mut causes = Vec::new();
        if old.get("value") != new.get("value") {
            causes.push(FieldCause::forbidden(
                "value",
                "may not be changed in an update.",
            ));
        }
        causes.extend(immutable_fields(old, new, &["/preemptionPolicy"]));
        causes
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            NAME,
            col("Value", "integer", 0, "value represents the integer value of this priority class. This is the actual priority that pods receive when they have the name of this class in their pod spec."),
            col("Global-Default", "boolean", 0, "globalDefault specifies whether this PriorityClass should be considered as the default priority for pods that do not have any priority class. Only one PriorityClass can be marked as `globalDefault`. However, if more than one PriorityClasses exists with their `globalDefault` field set to true, the smallest value of such global default PriorityClasses will be used as the default priority."),
            AGE,
            col("PreemptionPolicy", "string", 0, "preemptionPolicy is the Policy for preempting pods with lower priority. One of Never, PreemptLowerPriority. Defaults to PreemptLowerPriority if unset."),
        ]
    }

    fn cells(&self, obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        vec![
            crate::table::name_cell(obj),
            json!(obj.get("value").and_then(Value::as_i64).unwrap_or(0)),
            json!(obj
                .get("globalDefault")
                .and_then(Value::as_bool)
                .unwrap_or(false)),
            crate::table::age_cell(obj, now),
            json!(str_at(obj, &["preemptionPolicy"]).unwrap_or_default()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_and_system_classes_follow_upstream_rules() {
        let class = |name: &str, value: i64| json!({"metadata": {"name": name}, "value": value});
        let cases = [
            (class("high-priority", 1_000_000), None),
            (class("too-high", 1_000_000_001), Some(("value", "Forbidden: maximum allowed value of a user defined priority is 1000000000"))),
            (class("system-foo", 1), Some(("metadata.name", "Forbidden: priority class names with 'system-' prefix are reserved for system use only. error: system-foo is not a known system priority class"))),
            (class("system-node-critical", 5), Some(("metadata.name", "Forbidden: priority class names with 'system-' prefix are reserved for system use only. error: value of system-node-critical PriorityClass must be 2000001000"))),
            (class("system-node-critical", 2_000_001_000), None),
        ];
        for (obj, want) in cases {
            let got = PriorityClass.validate(&obj);
            match want {
                None => assert!(got.is_empty(), "{obj}: {got:?}"),
                Some((field, message)) => {
                    assert_eq!(
                        (got[0].field.as_str(), got[0].message.as_str()),
                        (field, message)
                    )
                }
            }
        }
        for system in system_classes() {
            assert!(PriorityClass.validate(&system).is_empty());
        }
    }

    #[test]
    fn value_and_preemption_policy_are_fixed() {
        let mut old = json!({"metadata": {"name": "a"}, "value": 5});
        PriorityClass.default(&mut old);
        assert_eq!(old["preemptionPolicy"], "PreemptLowerPriority");
        let mut new = old.clone();
        new["value"] = json!(6);
        new["preemptionPolicy"] = json!("Never");
        let got = PriorityClass.validate_update(&old, &new);
        assert_eq!(
            got[0].message,
            "Forbidden: may not be changed in an update."
        );
        assert_eq!(got[1].field, "preemptionPolicy");
    }
}
