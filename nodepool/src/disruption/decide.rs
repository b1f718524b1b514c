//! The disruption decision for one pool: which replacements are done (their
//! old claim may go), which claims to remove (consolidation) or replace
//! (drift, expiry) now, and which a blocker holds — within `minReplicas`
//! and the budgets. Pure; the loop in `reconcile.rs` carries it out.

use jiff::Timestamp;

use super::budget::{headroom, Reason};
use super::settings::Settings;

/// What the decision knows of one claim of the pool.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ClaimFacts {
    /// The claim's name.
    pub name: String,
    /// Being deleted already.
    pub deleting: bool,
    /// Its node is Ready without startup taints; only those are candidates.
    pub initialized: bool,
    /// Its node is Ready (a replacement is done when it is).
    pub ready: bool,
    /// The claim this one was created to replace.
    pub replaces: Option<String>,
    /// Why and since when consolidation could take it.
    pub consolidatable: Option<(Reason, Timestamp)>,
    /// Its snapshot differs from the pool.
    pub drifted: bool,
    /// It outlived `expireAfter`.
    pub expired: bool,
    /// Why it may not be disrupted now (a PDB, `do-not-disrupt`).
    pub blocker: Option<String>,
}

/// One step to take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Delete the claim (its node is drained first): consolidation.
    Remove {
        /// The claim.
        claim: String,
        /// Empty or Underutilized.
        reason: Reason,
    },
    /// Create a replacement for the claim; it is deleted once that is Ready.
    Replace {
        /// The claim.
        claim: String,
        /// Drifted or Expired.
        reason: Reason,
    },
    /// The replacement is Ready: delete the claim it replaces.
    Finish {
        /// The claim replaced.
        old: String,
        /// Its Ready replacement.
        replacement: String,
    },
    /// The claim would be disrupted but for a blocker.
    Blocked {
        /// The claim.
        claim: String,
        /// Why not (for the `DisruptionBlocked` Event).
        why: String,
    },
}

impl Action {
    /// The claim this step deletes, whose node's room is then going away.
    pub fn leaving(&self) -> Option<&str> {
        match self {
            Action::Remove { claim, .. } => Some(claim),
            Action::Finish { old, .. } => Some(old),
            Action::Replace { .. } | Action::Blocked { .. } => None,
        }
    }
}

/// How the pool's claims stand with respect to disruption in progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    /// Nodes the pool counts: live claims that are not replacements in flight.
    pub size: usize,
    /// Nodes being disrupted: claims deleting, plus replacements whose old
    /// claim is still live or that are not Ready yet.
    pub disrupting: usize,
}

/// Whether `claim` is a replacement whose old claim is still live: the pool
/// loop neither counts nor removes such a claim.
pub fn in_flight(claim: &ClaimFacts, claims: &[ClaimFacts]) -> bool {
    claim
        .replaces
        .as_deref()
        .is_some_and(|old| claims.iter().any(|c| c.name == old && !c.deleting))
}

/// The pool's size and disruptions in progress.
pub fn tally(claims: &[ClaimFacts]) -> Tally {
    let mut tally = Tally {
        size: 0,
        disrupting: 0,
    };
    for claim in claims {
        let flying = in_flight(claim, claims);
        let orphan_starting = claim
            .replaces
            .as_deref()
            .is_some_and(|old| !claim.ready && !claims.iter().any(|c| c.name == old));
        if claim.deleting || flying || orphan_starting {
            tally.disrupting += 1;
        }
        if !claim.deleting && !flying {
            tally.size += 1;
        }
    }
    tally
}

/// The steps for a pool with `settings` and `claims` at `now`. Candidates
/// go in reason order (Empty, Drifted, Expired, Underutilized), then by
/// name; each is checked against its reason's budget, consolidation against
/// `minReplicas`, and only then against its blocker. An underutilized node
/// is taken only while nothing else is disrupted, since where its pods go
/// was judged with the other nodes still there.
pub fn decide(settings: &Settings, claims: &[ClaimFacts], now: Timestamp) -> Vec<Action> {
    let mut actions: Vec<Action> = claims
        .iter()
        .filter(|c| c.ready && !c.deleting && in_flight(c, claims))
        .filter_map(|c| {
            Some(Action::Finish {
                old: c.replaces.clone()?,
                replacement: c.name.clone(),
            })
        })
        .collect();
    let Tally {
        size,
        mut disrupting,
    } = tally(claims);
    let mut removable = if settings.autoscaled {
        size.saturating_sub(settings.min)
    } else {
        0
    };
    let being_replaced = |name: &str| {
        claims
            .iter()
            .any(|c| c.replaces.as_deref() == Some(name) && !c.deleting)
    };
    let mut candidates: Vec<(Reason, &ClaimFacts)> = claims
        .iter()
        .filter(|c| !c.deleting && c.initialized && !in_flight(c, claims))
        .filter(|c| !being_replaced(&c.name))
        .filter_map(|c| Some((reason(settings, c, now)?, c)))
        .collect();
    candidates.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.name.cmp(&b.1.name)));
    for (reason, claim) in candidates {
        if headroom(&settings.budgets, reason, size, disrupting) == 0 {
            continue;
        }
        if !reason.replaces() && removable == 0 {
            continue;
        }
        if reason == Reason::Underutilized && disrupting > 0 {
            continue;
        }
        if let Some(why) = &claim.blocker {
            actions.push(Action::Blocked {
                claim: claim.name.clone(),
                why: why.clone(),
            });
            continue;
        }
        let name = claim.name.clone();
        actions.push(if reason.replaces() {
            Action::Replace {
                claim: name,
                reason,
            }
        } else {
            removable -= 1;
            Action::Remove {
                claim: name,
                reason,
            }
        });
        disrupting += 1;
    }
    actions
}

/// Why `claim` is a candidate now, if it is: consolidation (autoscaled
/// pools, once consolidatable for `consolidateAfter`) before drift before expiry.
fn reason(settings: &Settings, claim: &ClaimFacts, now: Timestamp) -> Option<Reason> {
    let consolidate = match (
        settings.autoscaled,
        settings.consolidate_after,
        claim.consolidatable,
    ) {
        (true, Some(after), Some((reason, since))) if now.duration_since(since) >= after => {
            Some(reason)
        }
        _ => None,
    };
    consolidate
        .or(claim.drifted.then_some(Reason::Drifted))
        .or(claim.expired.then_some(Reason::Expired))
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_api::nodepool::{Budget, NodePoolSpec};
    use jiff::SignedDuration;

    fn at(s: i64) -> Timestamp {
        Timestamp::from_second(s).unwrap()
    }

    fn settings(autoscaled: bool, min: usize, budget: &str) -> Settings {
        Settings {
            autoscaled,
            min,
            consolidate_after: Some(SignedDuration::from_secs(5)),
            budgets: vec![Budget {
                nodes: budget.into(),
                reasons: Vec::new(),
            }],
            ..Settings::of(&NodePoolSpec::default()).unwrap()
        }
    }

    fn claim(name: &str) -> ClaimFacts {
        ClaimFacts {
            name: name.into(),
            initialized: true,
            ready: true,
            ..ClaimFacts::default()
        }
    }

    fn empty_since(name: &str, since: i64) -> ClaimFacts {
        ClaimFacts {
            consolidatable: Some((Reason::Empty, at(since))),
            ..claim(name)
        }
    }

    fn remove(name: &str, reason: Reason) -> Action {
        Action::Remove {
            claim: name.into(),
            reason,
        }
    }

    #[test]
    fn consolidation_waits_for_consolidate_after_and_stops_at_min() {
        let s = settings(true, 1, "100%");
        let claims = [
            empty_since("a", 100),
            empty_since("b", 100),
            empty_since("c", 103),
        ];
        assert_eq!(decide(&s, &claims, at(104)), []);
        assert_eq!(
            decide(&s, &claims, at(105)),
            [remove("a", Reason::Empty), remove("b", Reason::Empty)]
        );
        assert_eq!(
            decide(&s, &claims, at(200)),
            [remove("a", Reason::Empty), remove("b", Reason::Empty)],
            "one of three stays: the minimum"
        );
        let never = Settings {
            consolidate_after: None,
            ..s.clone()
        };
        assert_eq!(decide(&never, &claims, at(10_000)), []);
        let fixed = settings(false, 0, "100%");
        assert_eq!(
            decide(&fixed, &claims, at(10_000)),
            [],
            "fixed pools never consolidate"
        );
    }

    #[test]
    fn budgets_count_disruptions_in_progress() {
        let s = settings(true, 0, "1");
        let mut claims = vec![
            empty_since("a", 0),
            empty_since("b", 0),
            empty_since("c", 0),
        ];
        assert_eq!(decide(&s, &claims, at(100)), [remove("a", Reason::Empty)]);
        assert_eq!(remove("a", Reason::Empty).leaving(), Some("a"));
        claims[0].deleting = true;
        assert_eq!(decide(&s, &claims, at(100)), [], "a is still being removed");
        claims.remove(0);
        assert_eq!(decide(&s, &claims, at(100)), [remove("b", Reason::Empty)]);
        let ten_percent = settings(true, 0, "10%");
        assert_eq!(
            decide(&ten_percent, &claims, at(100)).len(),
            1,
            "10% of 2 rounds up to 1"
        );
        let zero = settings(true, 0, "0");
        assert_eq!(decide(&zero, &claims, at(100)), []);
    }

    #[test]
    fn uninitialized_claims_are_not_candidates() {
        let s = settings(true, 0, "100%");
        let starting = ClaimFacts {
            initialized: false,
            drifted: true,
            ..empty_since("a", 0)
        };
        assert_eq!(decide(&s, &[starting], at(100)), []);
    }

    #[test]
    fn a_blocked_candidate_is_reported_and_skipped() {
        let s = settings(true, 0, "1");
        let blocked = ClaimFacts {
            blocker: Some("pdb ns/web prevents disruption".into()),
            ..empty_since("a", 0)
        };
        assert_eq!(
            decide(&s, &[blocked.clone(), empty_since("b", 0)], at(100)),
            [
                Action::Blocked {
                    claim: "a".into(),
                    why: "pdb ns/web prevents disruption".into()
                },
                remove("b", Reason::Empty)
            ]
        );
    }

    #[test]
    fn underutilized_goes_alone_and_after_empty_ones() {
        let s = settings(true, 0, "100%");
        let under = ClaimFacts {
            consolidatable: Some((Reason::Underutilized, at(0))),
            ..claim("a")
        };
        assert_eq!(
            decide(&s, &[under.clone(), empty_since("z", 0)], at(100)),
            [remove("z", Reason::Empty)]
        );
        assert_eq!(
            decide(&s, &[under.clone(), claim("z")], at(100)),
            [remove("a", Reason::Underutilized)]
        );
        let leaving = ClaimFacts {
            deleting: true,
            ..claim("z")
        };
        assert_eq!(decide(&s, &[under, leaving], at(100)), []);
    }

    #[test]
    fn drift_replaces_one_budget_at_a_time_then_finishes() {
        let s = settings(false, 0, "1");
        let drifted = |name: &str| ClaimFacts {
            drifted: true,
            ..claim(name)
        };
        let replace = |name: &str, reason| Action::Replace {
            claim: name.into(),
            reason,
        };
        let mut claims = vec![drifted("a"), drifted("b"), drifted("c")];
        assert_eq!(decide(&s, &claims, at(0)), [replace("a", Reason::Drifted)]);
        assert_eq!(decide(&s, &claims, at(0))[0].leaving(), None);
        claims.push(ClaimFacts {
            replaces: Some("a".into()),
            ready: false,
            initialized: false,
            ..claim("r1")
        });
        assert_eq!(
            tally(&claims),
            Tally {
                size: 3,
                disrupting: 1
            }
        );
        assert_eq!(decide(&s, &claims, at(0)), [], "r1 is not Ready yet");
        claims[3].ready = true;
        claims[3].initialized = true;
        assert_eq!(
            decide(&s, &claims, at(0)),
            [Action::Finish {
                old: "a".into(),
                replacement: "r1".into()
            }]
        );
        assert_eq!(decide(&s, &claims, at(0))[0].leaving(), Some("a"));
        claims[0].deleting = true;
        assert_eq!(
            tally(&claims),
            Tally {
                size: 3,
                disrupting: 1
            }
        );
        assert_eq!(decide(&s, &claims, at(0)), [], "a is still draining");
        claims.remove(0);
        assert_eq!(
            tally(&claims),
            Tally {
                size: 3,
                disrupting: 0
            }
        );
        assert_eq!(decide(&s, &claims, at(0)), [replace("b", Reason::Drifted)]);
        let expired = ClaimFacts {
            expired: true,
            ..claim("x")
        };
        assert_eq!(
            decide(&s, &[expired], at(0)),
            [replace("x", Reason::Expired)]
        );
    }

    #[test]
    fn reason_specific_budgets() {
        let s = Settings {
            budgets: vec![
                Budget {
                    nodes: "100%".into(),
                    reasons: Vec::new(),
                },
                Budget {
                    nodes: "0".into(),
                    reasons: vec!["Drifted".into()],
                },
            ],
            ..settings(true, 0, "100%")
        };
        let drifted = ClaimFacts {
            drifted: true,
            ..claim("a")
        };
        assert_eq!(
            decide(&s, &[drifted, empty_since("b", 0)], at(100)),
            [remove("b", Reason::Empty)]
        );
    }
}
