//! What both the disruption controller and the Eviction subresource must agree
//! on about a PodDisruptionBudget (upstream's component-helpers
//! `apps/poddisruptionbudget`): which pods it selects, and the
//! `DisruptionAllowed` condition that mirrors `status.disruptionsAllowed`.
//! Pure functions over typed objects; no I/O.

use std::collections::BTreeMap;

use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use crate::selector::LabelSelector;

/// The condition type a PodDisruptionBudget reports whether evictions may go on with.
pub const DISRUPTION_ALLOWED: &str = "DisruptionAllowed";
/// Reason of `DisruptionAllowed=True`: enough healthy pods to allow a disruption.
pub const SUFFICIENT_PODS: &str = "SufficientPods";
/// Reason of `DisruptionAllowed=False`: too few healthy pods for any disruption.
pub const INSUFFICIENT_PODS: &str = "InsufficientPods";
/// Reason of `DisruptionAllowed=False` when the controller could not compute the status.
pub const SYNC_FAILED: &str = "SyncFailed";
/// The cause type of an eviction refused by a budget (`policyv1.DisruptionBudgetCause`).
pub const DISRUPTION_BUDGET_CAUSE: &str = "DisruptionBudget";
/// How long an evicted pod counts as disrupted (out of `currentHealthy`) while
/// it is not yet being deleted, as upstream's `DeletionTimeout`.
pub const DELETION_TIMEOUT: jiff::SignedDuration = jiff::SignedDuration::from_secs(120);
/// `unhealthyPodEvictionPolicy` value that lets unready pods go whatever the budget.
pub const ALWAYS_ALLOW: &str = "AlwaysAllow";

/// Whether `pdb` selects a pod with `labels` in its namespace: a null selector
/// selects nothing, an empty one (policy/v1) every pod, an invalid one nothing.
pub fn selects(pdb: &PodDisruptionBudget, labels: Option<&BTreeMap<String, String>>) -> bool {
    let Some(selector) = pdb.spec.as_ref().and_then(|s| s.selector.as_ref()) else {
        return false;
    };
    let Ok(selector) = LabelSelector::from_label_selector(selector) else {
        return false;
    };
    let none = BTreeMap::new();
    selector.matches(labels.unwrap_or(&none))
}

/// apimachinery's `SetStatusCondition`: replaces the condition of the same
/// type, keeping its `lastTransitionTime` unless the status changed (then
/// `now`), or appends it.
pub fn set_status_condition(conditions: &mut Vec<Condition>, mut condition: Condition, now: Time) {
    match conditions.iter_mut().find(|c| c.type_ == condition.type_) {
        Some(existing) => {
            if existing.status != condition.status {
                existing.status = condition.status;
                existing.last_transition_time = now;
            }
            existing.reason = condition.reason;
            existing.message = condition.message;
            existing.observed_generation = condition.observed_generation;
        }
        None => {
            condition.last_transition_time = now;
            conditions.push(condition);
        }
    }
}

/// Sets `DisruptionAllowed` from `status.disruptionsAllowed`: True with
/// SufficientPods when above zero, else False with InsufficientPods.
pub fn update_disruption_allowed_condition(pdb: &mut PodDisruptionBudget, now: Time) {
    let status = pdb.status.get_or_insert_with(Default::default);
    let (value, reason) = if status.disruptions_allowed > 0 {
        ("True", SUFFICIENT_PODS)
    } else {
        ("False", INSUFFICIENT_PODS)
    };
    let condition = Condition {
        type_: DISRUPTION_ALLOWED.into(),
        status: value.into(),
        reason: reason.into(),
        message: String::new(),
        observed_generation: status.observed_generation,
        last_transition_time: now.clone(),
    };
    set_status_condition(
        status.conditions.get_or_insert_with(Vec::new),
        condition,
        now,
    );
}

/// Whether `DisruptionAllowed` already says what `disruptionsAllowed` and the
/// observed generation imply (upstream's `ConditionsAreUpToDate`).
pub fn conditions_are_up_to_date(pdb: &PodDisruptionBudget) -> bool {
    let Some(status) = pdb.status.as_ref() else {
        return false;
    };
    let Some(condition) = status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == DISRUPTION_ALLOWED)
    else {
        return false;
    };
    if status.observed_generation != pdb.metadata.generation {
        return false;
    }
    if status.disruptions_allowed > 0 {
        condition.status == "True" && condition.reason == SUFFICIENT_PODS
    } else {
        condition.status == "False" && condition.reason == INSUFFICIENT_PODS
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pdb(value: serde_json::Value) -> PodDisruptionBudget {
        serde_json::from_value(value).unwrap()
    }

    fn at(secs: i64) -> Time {
        Time(jiff::Timestamp::from_second(secs).unwrap())
    }

    #[test]
    fn null_selector_selects_nothing_and_empty_selects_everything() {
        let labels: BTreeMap<String, String> = [("app".to_owned(), "web".to_owned())].into();
        let cases = [
            (json!({"spec": {}}), Some(&labels), false),
            (json!({"spec": {"selector": {}}}), Some(&labels), true),
            (json!({"spec": {"selector": {}}}), None, true),
            (
                json!({"spec": {"selector": {"matchLabels": {"app": "web"}}}}),
                Some(&labels),
                true,
            ),
            (
                json!({"spec": {"selector": {"matchLabels": {"app": "db"}}}}),
                Some(&labels),
                false,
            ),
            (
                json!({"spec": {"selector": {"matchExpressions": [{"key": "app", "operator": "Bogus"}]}}}),
                Some(&labels),
                false,
            ),
        ];
        for (spec, labels, expected) in cases {
            assert_eq!(selects(&pdb(spec.clone()), labels), expected, "{spec}");
        }
    }

    #[test]
    fn condition_follows_disruptions_allowed_and_keeps_transition_time() {
        let mut budget = pdb(json!({
            "metadata": {"generation": 2},
            "status": {"disruptionsAllowed": 1, "observedGeneration": 2}
        }));
        assert!(!conditions_are_up_to_date(&budget));
        update_disruption_allowed_condition(&mut budget, at(10));
        assert!(conditions_are_up_to_date(&budget));
        let condition = &budget.status.as_ref().unwrap().conditions.as_ref().unwrap()[0];
        assert_eq!(
            (condition.status.as_str(), condition.reason.as_str()),
            ("True", SUFFICIENT_PODS)
        );
        assert_eq!(condition.observed_generation, Some(2));
        // Same status later: the transition time stays.
        update_disruption_allowed_condition(&mut budget, at(20));
        let condition = &budget.status.as_ref().unwrap().conditions.as_ref().unwrap()[0];
        assert_eq!(condition.last_transition_time, at(10));
        // No disruptions left: False, InsufficientPods, new transition time.
        budget.status.as_mut().unwrap().disruptions_allowed = 0;
        assert!(!conditions_are_up_to_date(&budget));
        update_disruption_allowed_condition(&mut budget, at(30));
        let conditions = budget.status.as_ref().unwrap().conditions.as_ref().unwrap();
        assert_eq!(conditions.len(), 1);
        assert_eq!(
            (
                conditions[0].status.as_str(),
                conditions[0].reason.as_str(),
                &conditions[0].last_transition_time
            ),
            ("False", INSUFFICIENT_PODS, &at(30))
        );
        assert!(conditions_are_up_to_date(&budget));
        // A newer generation than observed is never up to date.
        budget.metadata.generation = Some(3);
        assert!(!conditions_are_up_to_date(&budget));
    }
}
