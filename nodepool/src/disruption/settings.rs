//! A pool's disruption settings read once, with Karpenter's defaults:
//! consolidation `WhenEmptyOrUnderutilized` after `0s`, expiry after `720h`,
//! one budget of `10%`. Pure.

use berth_api::kinds::batch::cron::parse_duration;
use berth_api::nodepool::{Budget, NodePoolSpec};
use jiff::SignedDuration;

/// How long a machine lives when the pool says nothing (30 days).
pub const DEFAULT_EXPIRE_AFTER: &str = "720h";
/// The budget a pool has when it lists none.
pub const DEFAULT_BUDGET: &str = "10%";

/// Which nodes consolidation may remove.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// Only nodes without evictable pods.
    WhenEmpty,
    /// Also nodes whose pods all fit on the other nodes.
    WhenEmptyOrUnderutilized,
}

/// What the disruption loop needs of a pool's spec.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Whether the pool is autoscaled (no `replicas`): only those consolidate.
    pub autoscaled: bool,
    /// The fewest live machines consolidation leaves.
    pub min: usize,
    /// Which nodes consolidation may remove.
    pub policy: Policy,
    /// How long a node must stay consolidatable; None for `Never`.
    pub consolidate_after: Option<SignedDuration>,
    /// How long a machine lives; None for `Never`.
    pub expire_after: Option<SignedDuration>,
    /// The budgets, defaulted.
    pub budgets: Vec<Budget>,
}

impl Settings {
    /// The settings of `spec`; Err names the field that does not parse
    /// (the pool then is left alone and an Event says why).
    pub fn of(spec: &NodePoolSpec) -> Result<Self, String> {
        let disruption = spec.disruption.clone().unwrap_or_default();
        let policy = match disruption.consolidation_policy.as_deref() {
            None | Some("WhenEmptyOrUnderutilized") => Policy::WhenEmptyOrUnderutilized,
            Some("WhenEmpty") => Policy::WhenEmpty,
            Some(other) => {
                return Err(format!(
                    "disruption.consolidationPolicy {other:?} is not WhenEmpty or WhenEmptyOrUnderutilized"
                ))
            }
        };
        let consolidate_after = after(
            "disruption.consolidateAfter",
            disruption.consolidate_after.as_deref().unwrap_or("0s"),
        )?;
        let expire_after = after(
            "expireAfter",
            spec.expire_after.as_deref().unwrap_or(DEFAULT_EXPIRE_AFTER),
        )?;
        let mut budgets = disruption.budgets;
        if budgets.is_empty() {
            budgets.push(Budget {
                nodes: DEFAULT_BUDGET.to_owned(),
                reasons: Vec::new(),
            });
        }
        Ok(Self {
            autoscaled: spec.replicas.is_none(),
            min: spec.min_replicas.unwrap_or(0).max(0) as usize,
            policy,
            consolidate_after,
            expire_after,
            budgets,
        })
    }
}

impl Settings {
    /// Whether consolidation may take nodes of this pool at all: autoscaled,
    /// and `consolidateAfter` is not `Never`.
    pub fn consolidates(&self) -> bool {
        self.autoscaled && self.consolidate_after.is_some()
    }
}

/// Parses a duration in Go's syntax, as the API validated it and Karpenter
/// reads it (`0s`, `30s`, `1.5h`, `1h30m`), or `Never` (None).
pub fn after(field: &str, text: &str) -> Result<Option<SignedDuration>, String> {
    if text == "Never" {
        return Ok(None);
    }
    // The shared parser drops a leading sign, so a negative one is refused here.
    match parse_duration(text) {
        Ok(nanos) if nanos >= 0.0 && !text.starts_with('-') => {
            Ok(Some(SignedDuration::from_nanos(nanos as i64)))
        }
        _ => Err(format!(
            "{field} {text:?} is not a duration like 30s, 5m or 720h, nor Never"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_api::nodepool::Disruption;

    #[test]
    fn defaults_follow_karpenter() {
        let settings = Settings::of(&NodePoolSpec::default()).unwrap();
        assert!(settings.autoscaled);
        assert_eq!(settings.min, 0);
        assert_eq!(settings.policy, Policy::WhenEmptyOrUnderutilized);
        assert_eq!(settings.consolidate_after, Some(SignedDuration::ZERO));
        assert_eq!(settings.expire_after, Some(SignedDuration::from_hours(720)));
        assert_eq!(settings.budgets.len(), 1);
        assert_eq!(settings.budgets[0].nodes, "10%");
        assert!(settings.consolidates());
    }

    #[test]
    fn never_disables_and_bad_values_are_named() {
        let spec = NodePoolSpec {
            replicas: Some(2),
            min_replicas: Some(1),
            expire_after: Some("Never".into()),
            disruption: Some(Disruption {
                consolidation_policy: Some("WhenEmpty".into()),
                consolidate_after: Some("Never".into()),
                budgets: Vec::new(),
            }),
            ..NodePoolSpec::default()
        };
        let settings = Settings::of(&spec).unwrap();
        assert!(!settings.autoscaled);
        assert!(!settings.consolidates());
        assert_eq!(settings.min, 1);
        assert_eq!(settings.policy, Policy::WhenEmpty);
        assert_eq!(
            (settings.consolidate_after, settings.expire_after),
            (None, None)
        );
        assert_eq!(
            after("x", "1h30m").unwrap(),
            Some(SignedDuration::from_mins(90))
        );
        assert_eq!(
            after("x", "1.5h").unwrap(),
            Some(SignedDuration::from_mins(90))
        );
        assert_eq!(
            after("x", "300ms").unwrap(),
            Some(SignedDuration::from_millis(300))
        );
        for bad in ["soon", "-5s", ""] {
            assert!(
                after("expireAfter", bad)
                    .unwrap_err()
                    .contains("expireAfter"),
                "{bad}"
            );
        }
        let spec = NodePoolSpec {
            disruption: Some(Disruption {
                consolidation_policy: Some("Always".into()),
                ..Disruption::default()
            }),
            ..NodePoolSpec::default()
        };
        assert!(Settings::of(&spec)
            .unwrap_err()
            .contains("consolidationPolicy"));
    }
}
