//! Stale `DisruptionTarget` conditions (upstream's `syncStalePodDisruption`):
//! a pod the Eviction API marked but that was not deleted after all (its delete
//! failed a precondition) gets the condition reset to False after two minutes,
//! so it no longer reads as about to go. Pure: the caller patches.

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;

/// How long a `DisruptionTarget=True` may stand on a pod that is not being deleted.
pub const STALE_POD_DISRUPTION_TIMEOUT: Duration = Duration::from_secs(120);

/// The reason kubelet gives its own disruption conditions, which never go stale.
const TERMINATION_BY_KUBELET: &str = "TerminationByKubelet";

/// Whether the pod carries a `DisruptionTarget=True` that may go stale, and
/// how long until it is (zero: reset it now). Pods being deleted, in a
/// terminal phase, or marked by kubelet are left alone.
pub fn stale_disruption_in(pod: &Pod, now: jiff::Timestamp) -> Option<Duration> {
    if pod.metadata.deletion_timestamp.is_some() {
        return None;
    }
    let status = pod.status.as_ref()?;
    if matches!(status.phase.as_deref(), Some("Succeeded" | "Failed")) {
        return None;
    }
    let condition = status
        .conditions
        .as_deref()?
        .iter()
        .find(|c| c.type_ == "DisruptionTarget")?;
    if condition.status != "True" || condition.reason.as_deref() == Some(TERMINATION_BY_KUBELET) {
        return None;
    }
    let since = condition
        .last_transition_time
        .as_ref()
        .map_or(jiff::Timestamp::UNIX_EPOCH, |t| t.0);
    let elapsed = now.duration_since(since).as_secs().max(0).unsigned_abs();
    Some(STALE_POD_DISRUPTION_TIMEOUT.saturating_sub(Duration::from_secs(elapsed)))
}

/// The status patch (strategic merge, keyed by condition type) that resets
/// the condition to False at `now`.
pub fn reset_patch(now: jiff::Timestamp) -> serde_json::Value {
    serde_json::json!({"status": {"conditions": [{
        "type": "DisruptionTarget",
        "status": "False",
        "lastTransitionTime": now.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
    }]}})
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> jiff::Timestamp {
        "2026-01-01T12:00:00Z".parse().unwrap()
    }

    fn pod(phase: &str, deleting: bool, condition: serde_json::Value) -> Pod {
        let mut value = json!({
            "metadata": {"name": "p"},
            "status": {"phase": phase, "conditions": [condition]}
        });
        if deleting {
            value["metadata"]["deletionTimestamp"] = json!("2026-01-01T11:00:00Z");
        }
        serde_json::from_value(value).unwrap()
    }

    fn marked(status: &str, reason: &str, at: &str) -> serde_json::Value {
        json!({"type": "DisruptionTarget", "status": status, "reason": reason, "lastTransitionTime": at})
    }

    #[test]
    fn only_api_evictions_left_standing_go_stale_after_two_minutes() {
        let api = "EvictionByEvictionAPI";
        let cases = [
            (
                pod(
                    "Running",
                    false,
                    marked("True", api, "2026-01-01T11:57:00Z"),
                ),
                Some(0),
            ),
            (
                pod(
                    "Running",
                    false,
                    marked("True", api, "2026-01-01T11:59:30Z"),
                ),
                Some(90),
            ),
            (
                pod("Running", true, marked("True", api, "2026-01-01T11:00:00Z")),
                None,
            ),
            (
                pod("Failed", false, marked("True", api, "2026-01-01T11:00:00Z")),
                None,
            ),
            (
                pod(
                    "Running",
                    false,
                    marked("False", api, "2026-01-01T11:00:00Z"),
                ),
                None,
            ),
            (
                pod(
                    "Running",
                    false,
                    marked("True", "TerminationByKubelet", "2026-01-01T11:00:00Z"),
                ),
                None,
            ),
            (
                pod("Running", false, json!({"type": "Ready", "status": "True"})),
                None,
            ),
        ];
        for (pod, expected) in cases {
            assert_eq!(
                stale_disruption_in(&pod, now()).map(|d| d.as_secs()),
                expected,
                "{:?}",
                pod.status
            );
        }
    }
}
