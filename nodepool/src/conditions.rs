//! Setting one condition in a list the way upstream's `meta.SetStatusCondition`
//! does: the transition time moves only when the status changes.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

/// Sets condition `type_` in `conditions`, keeping its last transition time
/// when `status` is unchanged; returns whether the status changed (or the
/// condition is new).
pub fn set(
    conditions: &mut Vec<Condition>,
    type_: &str,
    status: bool,
    reason: &str,
    message: &str,
    now: jiff::Timestamp,
) -> bool {
    let status = if status { "True" } else { "False" }.to_owned();
    let fresh = Condition {
        type_: type_.to_owned(),
        status,
        reason: reason.to_owned(),
        message: message.to_owned(),
        last_transition_time: Time(now),
        observed_generation: None,
    };
    match conditions.iter_mut().find(|c| c.type_ == type_) {
        Some(existing) if existing.status == fresh.status => {
            existing.reason = fresh.reason;
            existing.message = fresh.message;
            false
        }
        Some(existing) => {
            *existing = fresh;
            true
        }
        None => {
            conditions.push(fresh);
            true
        }
    }
}

/// Whether condition `type_` is present and True.
pub fn is_true(conditions: &[Condition], type_: &str) -> bool {
    conditions
        .iter()
        .any(|c| c.type_ == type_ && c.status == "True")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transition_time_moves_only_on_a_status_change() {
        let t0 = jiff::Timestamp::from_second(100).unwrap();
        let t1 = jiff::Timestamp::from_second(200).unwrap();
        let mut conditions = Vec::new();
        assert!(set(&mut conditions, "Ready", false, "Launching", "", t0));
        assert!(!set(
            &mut conditions,
            "Ready",
            false,
            "Registering",
            "wait",
            t1
        ));
        assert_eq!(conditions[0].last_transition_time, Time(t0));
        assert_eq!(conditions[0].reason, "Registering");
        assert!(set(&mut conditions, "Ready", true, "Ready", "", t1));
        assert_eq!(conditions[0].last_transition_time, Time(t1));
        assert!(is_true(&conditions, "Ready"));
        assert!(!is_true(&conditions, "Launched"));
    }
}
