//! Disruption budgets: how many more of a pool's nodes may be disrupted now
//! for a given reason, the strictest applicable budget winning (Karpenter's
//! `disruption.budgets`). Pure.

use berth_api::nodepool::{budget_nodes, Budget};

/// Why a node is disrupted; the names are those budgets' `reasons` use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reason {
    /// No evictable pods.
    Empty,
    /// Its snapshot no longer matches the pool.
    Drifted,
    /// Older than `expireAfter`.
    Expired,
    /// Its pods fit on the other nodes.
    Underutilized,
}

impl Reason {
    /// The name in budgets, conditions and Events.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Empty => "Empty",
            Reason::Drifted => "Drifted",
            Reason::Expired => "Expired",
            Reason::Underutilized => "Underutilized",
        }
    }

    /// Whether a node disrupted for this reason is replaced first (drift,
    /// expiry) rather than removed (consolidation).
    pub fn replaces(self) -> bool {
        matches!(self, Reason::Drifted | Reason::Expired)
    }
}

/// How many more nodes of a pool of `pool_size` may be disrupted for
/// `reason` while `disrupting` already are: the smallest allowance of the
/// budgets that apply (no `reasons`, or `reason` among them) less those in
/// progress. A budget whose `nodes` does not parse allows nothing, so a typo
/// errs on the side of keeping nodes.
pub fn headroom(budgets: &[Budget], reason: Reason, pool_size: usize, disrupting: usize) -> usize {
    budgets
        .iter()
        .filter(|b| b.reasons.is_empty() || b.reasons.iter().any(|r| r == reason.as_str()))
        .map(|b| budget_nodes(&b.nodes, pool_size).unwrap_or(0))
        .min()
        .unwrap_or(usize::MAX)
        .saturating_sub(disrupting)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(nodes: &str, reasons: &[&str]) -> Budget {
        Budget {
            nodes: nodes.into(),
            reasons: reasons.iter().map(|r| (*r).to_owned()).collect(),
        }
    }

    #[test]
    fn the_strictest_applicable_budget_wins() {
        let budgets = [
            budget("50%", &[]),
            budget("1", &["Drifted", "Expired"]),
            budget("0", &["Underutilized"]),
        ];
        assert_eq!(headroom(&budgets, Reason::Empty, 10, 0), 5);
        assert_eq!(headroom(&budgets, Reason::Empty, 10, 3), 2);
        assert_eq!(headroom(&budgets, Reason::Drifted, 10, 0), 1);
        assert_eq!(headroom(&budgets, Reason::Expired, 10, 1), 0);
        assert_eq!(headroom(&budgets, Reason::Underutilized, 10, 0), 0);
        assert_eq!(
            headroom(&budgets, Reason::Empty, 10, 7),
            0,
            "never below zero"
        );
    }

    #[test]
    fn no_applicable_budget_is_unbounded_and_a_bad_one_allows_nothing() {
        assert_eq!(
            headroom(&[budget("1", &["Drifted"])], Reason::Empty, 3, 2),
            usize::MAX - 2
        );
        assert_eq!(headroom(&[budget("lots", &[])], Reason::Empty, 3, 0), 0);
        assert_eq!(headroom(&[budget("10%", &[])], Reason::Drifted, 3, 0), 1);
    }
}
