//! Karpenter's registration TTL: a machine whose node never registers (a bad
//! image, user-data that fails, no route to the API server) is not waited
//! for forever. Its claim is removed, which terminates the machine, and the
//! pool or the provisioner asks for a new one.

use std::time::Duration;

use berth_api::nodeclaim::NodeClaimStatus;

use crate::claim::{LAUNCHED, REGISTERED};
use crate::conditions;

/// How long a launched machine's node may take to register unless
/// configured otherwise: Karpenter's 15 minutes.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// Whether a claim with `status` had its machine launched at least
/// `timeout` before `now` and its node has never registered. A node that
/// registered once and went away is not "never registered": the claim loop
/// handles that as a vanished machine.
pub fn overdue(status: &NodeClaimStatus, now: jiff::Timestamp, timeout: Duration) -> bool {
    if status.node_name.is_some() || conditions::is_true(&status.conditions, REGISTERED) {
        return false;
    }
    let Some(launched) = status
        .conditions
        .iter()
        .find(|c| c.type_ == LAUNCHED && c.status == "True")
    else {
        return false;
    };
    let Ok(timeout) = jiff::SignedDuration::try_from(timeout) else {
        return false;
    };
    now.duration_since(launched.last_transition_time.0) >= timeout
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

    fn condition(type_: &str, status: &str, at: jiff::Timestamp) -> Condition {
        Condition {
            type_: type_.into(),
            status: status.into(),
            last_transition_time: Time(at),
            message: String::new(),
            observed_generation: None,
            reason: "Test".into(),
        }
    }

    #[test]
    fn only_a_launched_machine_whose_node_never_registered_is_overdue() {
        let launched_at: jiff::Timestamp = "2026-12-07T10:00:00Z".parse().unwrap();
        let minutes = |m: i64| launched_at + jiff::SignedDuration::from_mins(m);
        let timeout = DEFAULT_TIMEOUT;
        let waiting = NodeClaimStatus {
            provider_id: Some("aws:///us-east-1a/i-1".into()),
            conditions: vec![
                condition(LAUNCHED, "True", launched_at),
                condition(REGISTERED, "False", launched_at),
            ],
            ..NodeClaimStatus::default()
        };
        assert!(!overdue(&waiting, minutes(14), timeout));
        assert!(overdue(&waiting, minutes(15), timeout));
        assert!(overdue(&waiting, minutes(60), timeout));

        let not_launched = NodeClaimStatus {
            conditions: vec![condition(LAUNCHED, "False", launched_at)],
            ..NodeClaimStatus::default()
        };
        assert!(!overdue(&not_launched, minutes(60), timeout));
        assert!(!overdue(&NodeClaimStatus::default(), minutes(60), timeout));

        let registered = NodeClaimStatus {
            conditions: vec![
                condition(LAUNCHED, "True", launched_at),
                condition(REGISTERED, "True", minutes(2)),
            ],
            ..waiting.clone()
        };
        assert!(!overdue(&registered, minutes(60), timeout));

        let registered_once = NodeClaimStatus {
            node_name: Some("np-abcde".into()),
            ..waiting
        };
        assert!(!overdue(&registered_once, minutes(60), timeout));
    }
}
