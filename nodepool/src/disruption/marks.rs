//! The disruption conditions a claim carries: `Consolidatable` (with the
//! reason, Empty or Underutilized, and since when in its lastTransitionTime,
//! so a restarted controller neither resets nor skips `consolidateAfter`),
//! `Drifted` and `Expired`. A condition that no longer holds is removed, as
//! Karpenter clears them. Pure.

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

use super::budget::Reason;
use crate::conditions;

/// The node may be consolidated; lastTransitionTime says since when.
pub const CONSOLIDATABLE: &str = "Consolidatable";
/// The claim no longer matches its pool.
pub const DRIFTED: &str = "Drifted";
/// The claim outlived `expireAfter`.
pub const EXPIRED: &str = "Expired";

/// What holds for a claim now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Marks {
    /// Empty or Underutilized, when consolidation could take it.
    pub consolidatable: Option<Reason>,
    /// Its snapshot differs from the pool.
    pub drifted: bool,
    /// It is past `expireAfter`.
    pub expired: bool,
}

/// Brings `conditions` in line with `marks` at `now`; returns whether they changed.
pub fn apply(conditions: &mut Vec<Condition>, marks: Marks, now: Timestamp) -> bool {
    let before = conditions.clone();
    let wanted = [
        (CONSOLIDATABLE, marks.consolidatable.map(Reason::as_str)),
        (DRIFTED, marks.drifted.then_some("Drifted")),
        (EXPIRED, marks.expired.then_some("Expired")),
    ];
    for (type_, reason) in wanted {
        match reason {
            Some(reason) => {
                conditions::set(conditions, type_, true, reason, "", now);
            }
            None => conditions.retain(|c| c.type_ != type_),
        }
    }
    *conditions != before
}

/// Since when, and why, the claim has been consolidatable.
pub fn consolidatable_since(conditions: &[Condition]) -> Option<(Reason, Timestamp)> {
    let condition = conditions
        .iter()
        .find(|c| c.type_ == CONSOLIDATABLE && c.status == "True")?;
    let reason = match condition.reason.as_str() {
        "Underutilized" => Reason::Underutilized,
        _ => Reason::Empty,
    };
    Some((reason, condition.last_transition_time.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_survives_reason_changes_and_resets_after_a_gap() {
        let at = |s| Timestamp::from_second(s).unwrap();
        let mut conditions = Vec::new();
        let empty = Marks {
            consolidatable: Some(Reason::Empty),
            ..Marks::default()
        };
        assert!(apply(&mut conditions, empty, at(10)));
        assert!(!apply(&mut conditions, empty, at(20)), "nothing new");
        assert_eq!(
            consolidatable_since(&conditions),
            Some((Reason::Empty, at(10)))
        );
        let under = Marks {
            consolidatable: Some(Reason::Underutilized),
            drifted: true,
            ..Marks::default()
        };
        assert!(apply(&mut conditions, under, at(30)));
        assert_eq!(
            consolidatable_since(&conditions),
            Some((Reason::Underutilized, at(10)))
        );
        assert!(conditions::is_true(&conditions, DRIFTED));
        assert!(apply(&mut conditions, Marks::default(), at(40)));
        assert!(conditions.is_empty(), "{conditions:?}");
        assert_eq!(consolidatable_since(&conditions), None);
        apply(&mut conditions, empty, at(50));
        assert_eq!(
            consolidatable_since(&conditions),
            Some((Reason::Empty, at(50)))
        );
    }

    #[test]
    fn other_conditions_are_kept() {
        let now = Timestamp::from_second(1).unwrap();
        let mut conditions = Vec::new();
        conditions::set(&mut conditions, "Ready", true, "Ready", "", now);
        apply(
            &mut conditions,
            Marks {
                expired: true,
                ..Marks::default()
            },
            now,
        );
        apply(&mut conditions, Marks::default(), now);
        assert_eq!(conditions.len(), 1);
        assert_eq!(conditions[0].type_, "Ready");
    }
}
