//! `spec.podFailurePolicy`: which rule, if any, a failed pod matches, by the
//! exit codes of its containers or by its conditions, as upstream's
//! `matchPodFailurePolicy` decides. Pure functions over the pod, no I/O.

use k8s_openapi::api::batch::v1::{PodFailurePolicy, PodFailurePolicyRule};
use k8s_openapi::api::core::v1::{ContainerStatus, Pod};

/// What a matched rule tells the controller to do with the failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Fail the whole Job at once (condition reason `PodFailurePolicy`).
    FailJob,
    /// Fail the pod's index (backoffLimitPerIndex jobs).
    FailIndex,
    /// Do not count the failure against any limit.
    Ignore,
    /// Count the failure as usual.
    Count,
}

/// The first rule a failed pod matches, with the message upstream writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    /// The rule's action.
    pub action: Action,
    /// Why, e.g. `Container main for pod ns/p failed with exit code 42 matching FailJob rule at index 0`.
    pub message: String,
}

fn action_of(rule: &PodFailurePolicyRule) -> Option<Action> {
    match rule.action.as_str() {
        "FailJob" => Some(Action::FailJob),
        "FailIndex" => Some(Action::FailIndex),
        "Ignore" => Some(Action::Ignore),
        "Count" => Some(Action::Count),
        _ => None,
    }
}

/// The first container (regular, then init) that exited non-zero with a code
/// the requirement selects.
fn matching_container<'a>(
    rule: &PodFailurePolicyRule,
    statuses: impl Iterator<Item = &'a ContainerStatus>,
) -> Option<(&'a str, i32)> {
    let requirement = rule.on_exit_codes.as_ref()?;
    statuses
        .filter(|s| {
            requirement
                .container_name
                .as_deref()
                .is_none_or(|n| n == s.name)
        })
        .filter_map(|s| {
            let code = s.state.as_ref()?.terminated.as_ref()?.exit_code;
            Some((s.name.as_str(), code))
        })
        .filter(|(_, code)| *code != 0)
        .find(|(_, code)| match requirement.operator.as_str() {
            "In" => requirement.values.contains(code),
            "NotIn" => !requirement.values.contains(code),
            _ => false,
        })
}

/// The rule `pod` (which failed) matches, if any.
pub fn matching_rule(policy: &PodFailurePolicy, pod: &Pod) -> Option<Match> {
    let key = format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or_default(),
        pod.metadata.name.as_deref().unwrap_or_default()
    );
    let status = pod.status.as_ref();
    for (index, rule) in policy.rules.iter().enumerate() {
        let Some(action) = action_of(rule) else {
            continue;
        };
        let containers = status
            .into_iter()
            .flat_map(|s| s.container_statuses.iter().flatten())
            .chain(
                status
                    .into_iter()
                    .flat_map(|s| s.init_container_statuses.iter().flatten()),
            );
        if let Some((name, code)) = matching_container(rule, containers) {
            return Some(Match {
                message: format!(
                    "Container {name} for pod {key} failed with exit code {code} matching {} rule at index {index}",
                    rule.action
                ),
                action,
            });
        }
        for pattern in rule.on_pod_conditions.iter().flatten() {
            let wanted = if pattern.status.is_empty() {
                "True"
            } else {
                pattern.status.as_str()
            };
            let matched = status
                .and_then(|s| s.conditions.as_ref())
                .into_iter()
                .flatten()
                .any(|c| c.type_ == pattern.type_ && c.status == wanted);
            if matched {
                return Some(Match {
                    message: format!(
                        "Pod {key} has condition {} matching {} rule at index {index}",
                        pattern.type_, rule.action
                    ),
                    action,
                });
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn failed_pod(exit_code: i32, conditions: serde_json::Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "ns"},
            "status": {
                "phase": "Failed",
                "conditions": conditions,
                "containerStatuses": [{
                    "name": "main", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
                    "state": {"terminated": {"exitCode": exit_code}}
                }]
            }
        }))
        .unwrap()
    }

    #[test]
    fn first_matching_rule_wins() {
        let policy: PodFailurePolicy = serde_json::from_value(json!({"rules": [
            {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
            {"action": "FailJob", "onExitCodes": {"containerName": "main", "operator": "In", "values": [42]}},
            {"action": "Count", "onExitCodes": {"operator": "NotIn", "values": [1]}}
        ]}))
        .unwrap();
        let disrupted = json!([{"type": "DisruptionTarget", "status": "True"}]);
        let cases = [
            (failed_pod(42, json!([])), Some(Action::FailJob), "Container main for pod ns/p failed with exit code 42 matching FailJob rule at index 1"),
            (failed_pod(42, disrupted), Some(Action::Ignore), "Pod ns/p has condition DisruptionTarget matching Ignore rule at index 0"),
            (failed_pod(3, json!([])), Some(Action::Count), "Container main for pod ns/p failed with exit code 3 matching Count rule at index 2"),
            (failed_pod(1, json!([])), None, ""),
        ];
        for (pod, action, message) in cases {
            let got = matching_rule(&policy, &pod);
            assert_eq!(got.as_ref().map(|m| m.action.clone()), action);
            assert_eq!(got.map(|m| m.message).unwrap_or_default(), message);
        }
    }
}
