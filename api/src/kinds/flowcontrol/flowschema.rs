//! FlowSchemas: upstream's default matching precedence, validation of the
//! precedence, level reference and distinguisher, and the columns (MISSINGPL
//! from the Dangling condition).

use serde_json::{json, Value};

use crate::field::FieldCause;
use crate::kinds::{obj_mut, set_default, KindRules};
use crate::table::print::{array_at, str_at};
use crate::table::{col, Column, AGE, NAME};

/// The rules of `flowcontrol.apiserver.k8s.io/v1` FlowSchema.
#[derive(Debug, Clone, Copy, Default)]
pub struct FlowSchema;

/// The highest matching precedence upstream allows.
const MAX_PRECEDENCE: i64 = 10000;

impl KindRules for FlowSchema {
    fn tracks_generation(&self) -> bool {
        true
    }

    fn default(&self, obj: &mut Value) {
        set_default(obj_mut(obj, "spec"), "matchingPrecedence", json!(1000));
    }

    fn validate(&self, obj: &Value) -> Vec<FieldCause> {
        let mut causes = Vec::new();
        let precedence = obj
            .pointer("/spec/matchingPrecedence")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        if precedence <= 0 {
            causes.push(FieldCause::invalid(
                "spec.matchingPrecedence",
                &json!(precedence),
                "must be a positive value",
            ));
        } else if precedence > MAX_PRECEDENCE {
            causes.push(FieldCause::invalid(
                "spec.matchingPrecedence",
                &json!(precedence),
                format!("must not be greater than {MAX_PRECEDENCE}"),
            ));
        }
        if str_at(obj, &["spec", "priorityLevelConfiguration", "name"])
            .unwrap_or("")
            .is_empty()
        {
            causes.push(FieldCause::required(
                "spec.priorityLevelConfiguration.name",
                "must reference a priority level",
            ));
        }
        if let Some(method) = str_at(obj, &["spec", "distinguisherMethod", "type"]) {
            if !matches!(method, "ByNamespace" | "ByUser") {
                causes.push(FieldCause::not_supported(
                    "spec.distinguisherMethod.type",
                    &json!(method),
                    &["ByNamespace", "ByUser"],
                ));
            }
        }
        for (i, rule) in array_at(obj, &["spec", "rules"]).iter().enumerate() {
            if array_at(rule, &["subjects"]).is_empty() {
                causes.push(FieldCause::required(
                    format!("spec.rules[{i}].subjects"),
                    "subjects must contain at least one value",
                ));
            }
            if array_at(rule, &["resourceRules"]).is_empty()
                && array_at(rule, &["nonResourceRules"]).is_empty()
            {
                causes.push(FieldCause::required(
                    format!("spec.rules[{i}]"),
                    "at least one of resourceRules and nonResourceRules has to be non-empty",
                ));
            }
        }
        causes
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            NAME,
            col("PriorityLevel", "string", 0, "priorityLevelConfiguration should reference a PriorityLevelConfiguration in the cluster. If the reference cannot be resolved, the FlowSchema will be ignored and marked as invalid in its status. Required."),
            col("MatchingPrecedence", "string", 0, "matchingPrecedence is used to choose among the FlowSchemas that match a given request. The chosen FlowSchema is among those with the numerically lowest (which we take to be logically highest) MatchingPrecedence.  Each MatchingPrecedence value must be ranged in [1,10000]. Note that if the precedence is not specified, it will be set to 1000 as default."),
            col("DistinguisherMethod", "string", 0, "`distinguisherMethod` defines how to compute the flow distinguisher for requests that match this schema. `nil` specifies that the distinguisher is disabled and thus will always be the empty string."),
            AGE,
            col("MissingPL", "string", 0, "indicates if the priority level referenced by the FlowSchema is missing"),
        ]
    }

    fn cells(&self, obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        let missing = array_at(obj, &["status", "conditions"])
            .iter()
            .find(|c| str_at(c, &["type"]) == Some("Dangling"))
            .and_then(|c| str_at(c, &["status"]))
            .unwrap_or("?");
        vec![
            crate::table::name_cell(obj),
            json!(str_at(obj, &["spec", "priorityLevelConfiguration", "name"]).unwrap_or_default()),
            json!(obj
                .pointer("/spec/matchingPrecedence")
                .and_then(Value::as_i64)
                .unwrap_or(0)),
            json!(str_at(obj, &["spec", "distinguisherMethod", "type"]).unwrap_or("<none>")),
            crate::table::age_cell(obj, now),
            json!(missing),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence_defaults_and_is_bounded() {
        let mut obj = json!({"spec": {"priorityLevelConfiguration": {"name": "global-default"}}});
        FlowSchema.default(&mut obj);
        assert_eq!(obj["spec"]["matchingPrecedence"], 1000);
        assert!(FlowSchema.validate(&obj).is_empty());
        let cases = [
            (
                json!({"spec": {"matchingPrecedence": 20000, "priorityLevelConfiguration": {"name": "a"}}}),
                "spec.matchingPrecedence",
                "Invalid value: 20000: must not be greater than 10000",
            ),
            (
                json!({"spec": {"matchingPrecedence": 5}}),
                "spec.priorityLevelConfiguration.name",
                "Required value: must reference a priority level",
            ),
        ];
        for (obj, field, message) in cases {
            let got = FlowSchema.validate(&obj);
            assert!(
                got.iter().any(|c| c.field == field && c.message == message),
                "{got:?}"
            );
        }
    }
}
