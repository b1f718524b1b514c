//! Job conditions as upstream writes them: types, reasons and messages, and
//! setting one so that `lastTransitionTime` moves only when its status does.
//! Pure functions over `JobStatus`, no I/O.

use jiff::Timestamp;
use k8s_openapi::api::batch::v1::{JobCondition, JobStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

/// A condition to set: type, status, reason, message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    /// `Complete`, `Failed`, `SuccessCriteriaMet`, `FailureTarget`, `Suspended`.
    pub type_: &'static str,
    /// `True` or `False`.
    pub status: &'static str,
    /// Upstream's reason, e.g. `BackoffLimitExceeded`.
    pub reason: String,
    /// Upstream's message.
    pub message: String,
}

impl Condition {
    /// A `True` condition.
    pub fn truthy(
        type_: &'static str,
        reason: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            type_,
            status: "True",
            reason: reason.into(),
            message: message.into(),
        }
    }
}

/// Why a Job failed, as the FailureTarget and Failed conditions say.
pub fn backoff_limit_exceeded() -> (&'static str, String) {
    (
        "BackoffLimitExceeded",
        "Job has reached the specified backoff limit".into(),
    )
}

/// The activeDeadlineSeconds failure.
pub fn deadline_exceeded() -> (&'static str, String) {
    (
        "DeadlineExceeded",
        "Job was active longer than specified deadline".into(),
    )
}

/// The success that completions bring.
pub fn completions_reached() -> (&'static str, String) {
    (
        "CompletionsReached",
        "Reached expected number of succeeded pods".into(),
    )
}

/// The condition of `type_` when its status is True.
pub fn true_condition<'a>(status: &'a JobStatus, type_: &str) -> Option<&'a JobCondition> {
    status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == type_ && c.status == "True")
}

/// Sets `condition`; true when anything changed. The transition time moves
/// only when the status flips (or the condition is new).
pub fn set(status: &mut JobStatus, condition: &Condition, now: Timestamp) -> bool {
    let conditions = status.conditions.get_or_insert_with(Vec::new);
    let new = JobCondition {
        type_: condition.type_.into(),
        status: condition.status.into(),
        reason: Some(condition.reason.clone()),
        message: Some(condition.message.clone()),
        last_probe_time: Some(Time(now)),
        last_transition_time: Some(Time(now)),
    };
    match conditions.iter_mut().find(|c| c.type_ == condition.type_) {
        Some(existing) => {
            if existing.status == new.status
                && existing.reason == new.reason
                && existing.message == new.message
            {
                return false;
            }
            let transition = if existing.status == new.status {
                existing.last_transition_time.clone()
            } else {
                new.last_transition_time.clone()
            };
            *existing = JobCondition {
                last_transition_time: transition,
                ..new
            };
        }
        None => conditions.push(new),
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setting_keeps_transition_time_until_the_status_flips() {
        let t0: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let t1: Timestamp = "2026-01-01T00:01:00Z".parse().unwrap();
        let mut status = JobStatus::default();
        let suspended = Condition::truthy("Suspended", "JobSuspended", "Job suspended");
        assert!(set(&mut status, &suspended, t0));
        assert!(!set(&mut status, &suspended, t1));
        let resumed = Condition {
            status: "False",
            ..Condition::truthy("Suspended", "JobResumed", "Job resumed")
        };
        assert!(set(&mut status, &resumed, t1));
        let c = &status.conditions.as_ref().unwrap()[0];
        assert_eq!(
            (c.status.as_str(), c.last_transition_time.clone().unwrap().0),
            ("False", t1)
        );
        assert!(true_condition(&status, "Suspended").is_none());
    }
}
