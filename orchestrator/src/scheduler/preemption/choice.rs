//! Which candidate node to preempt on (upstream's
//! `pickOneNodeForPreemption`): each rule keeps only the nodes that score
//! best on it, in order — fewest PodDisruptionBudget violations, lowest
//! priority of the most important victim, smallest sum of victim priorities,
//! fewest victims, latest start of the earliest-started most important
//! victim — and the first node left wins. A node needing no victims wins at
//! once. Pure.

use super::priority;
use super::victims::{start_time, Victims};

/// One node where preemption makes room, with its victims.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// The node.
    pub node: std::sync::Arc<str>,
    /// What must go there.
    pub victims: Victims,
}

/// The start (as nanoseconds) of the earliest-started victim among those of
/// the highest priority; the least preferred value when unknown.
fn earliest_start_of_most_important(victims: &Victims) -> i128 {
    let Some(first) = victims.pods.first() else {
        return i128::MIN;
    };
    let top = priority(&first.pod);
    victims
        .pods
        .iter()
        .filter(|e| priority(&e.pod) == top)
        .map(|e| start_time(&e.pod))
        .try_fold(None::<i128>, |earliest, start| {
            let start = start?.as_nanosecond();
            Some(Some(earliest.map_or(start, |e: i128| e.min(start))))
        })
        .flatten()
        .unwrap_or(i128::MIN)
}

/// The scores of one candidate, higher is better, in the order the rules apply.
fn scores(victims: &Victims) -> [i128; 5] {
    let highest = victims
        .pods
        .first()
        .map(|e| priority(&e.pod) as i128)
        .unwrap_or(i128::MIN);
    // Upstream shifts each priority by MaxInt32+1 so the sum counts victims too.
    let sum: i128 = victims
        .pods
        .iter()
        .map(|e| priority(&e.pod) as i128 + i32::MAX as i128 + 1)
        .sum();
    [
        -(victims.num_pdb_violations as i128),
        -highest,
        -sum,
        -(victims.pods.len() as i128),
        earliest_start_of_most_important(victims),
    ]
}

/// The index of the candidate to preempt on; `None` when there is none.
pub fn pick_one_node(candidates: &[Candidate]) -> Option<usize> {
    if let Some(free) = candidates.iter().position(|c| c.victims.pods.is_empty()) {
        return Some(free);
    }
    // The rules apply in order, each deciding only between nodes tied on
    // the ones before: a lexicographic maximum, the first node on ties.
    candidates
        .iter()
        .enumerate()
        .rev()
        .max_by_key(|(_, c)| scores(&c.victims))
        .map(|(index, _)| index)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::cache::PodEntry;
    use crate::scheduler::testing::pod_with;
    use serde_json::json;
    use std::sync::Arc;

    /// A victim with a priority and a start second (`None`: not started).
    fn victim(prio: i32, started: Option<u32>) -> Arc<PodEntry> {
        let mut pod = pod_with("v", json!({}), json!({"priority": prio}), json!({}));
        if let Some(s) = started {
            pod.status = Some(
                serde_json::from_value(json!({"startTime": format!("2026-01-01T00:00:{s:02}Z")}))
                    .unwrap(),
            );
        }
        PodEntry::of(Arc::new(pod))
    }

    fn candidate(node: &str, victims: Vec<(i32, Option<u32>)>, violations: usize) -> Candidate {
        let mut pods: Vec<_> = victims.into_iter().map(|(p, s)| victim(p, s)).collect();
        pods.sort_by(|a, b| super::super::victims::more_important_first(&a.pod, &b.pod));
        Candidate {
            node: Arc::from(node),
            victims: Victims {
                pods,
                num_pdb_violations: violations,
            },
        }
    }

    #[test]
    fn nodes_are_chosen_by_upstream_rules_in_order() {
        let cases: Vec<(&str, Vec<Candidate>, &str)> = vec![
            (
                "fewest budget violations first",
                vec![
                    candidate("a", vec![(1, Some(1))], 1),
                    candidate("b", vec![(5, Some(1)), (5, Some(1))], 0),
                ],
                "b",
            ),
            (
                "then the lowest most important victim",
                vec![
                    candidate("a", vec![(5, Some(1))], 0),
                    candidate("b", vec![(1, Some(1)), (4, Some(1)), (1, Some(1))], 0),
                ],
                "b",
            ),
            (
                "then the smallest priority sum",
                vec![
                    candidate("a", vec![(3, Some(1)), (3, Some(1))], 0),
                    candidate("b", vec![(3, Some(1)), (1, Some(1))], 0),
                ],
                "b",
            ),
            (
                "the shifted sum counts victims: two beat three of lower priority",
                vec![
                    candidate("a", vec![(2, Some(1)), (-5, Some(1)), (-5, Some(1))], 0),
                    candidate("b", vec![(2, Some(1)), (2, Some(1))], 0),
                ],
                "b",
            ),
            (
                "then the fewest victims",
                vec![
                    candidate("a", vec![(2, Some(1)), (2, Some(1))], 0),
                    candidate("b", vec![(2, Some(1))], 0),
                ],
                "b",
            ),
            (
                "then the latest start of the most important victims",
                vec![
                    candidate("a", vec![(2, Some(1))], 0),
                    candidate("b", vec![(2, Some(9))], 0),
                ],
                "b",
            ),
            (
                "an unknown start is least preferred",
                vec![
                    candidate("a", vec![(2, None)], 0),
                    candidate("b", vec![(2, Some(1))], 0),
                ],
                "b",
            ),
            (
                "all equal: the first",
                vec![
                    candidate("a", vec![(2, Some(1))], 0),
                    candidate("b", vec![(2, Some(1))], 0),
                ],
                "a",
            ),
            (
                "a node needing no victims wins at once",
                vec![
                    candidate("a", vec![(0, Some(1))], 0),
                    candidate("b", vec![], 3),
                ],
                "b",
            ),
        ];
        for (name, candidates, want) in cases {
            let chosen = pick_one_node(&candidates).unwrap();
            assert_eq!(&*candidates[chosen].node, want, "{name}");
        }
        assert_eq!(pick_one_node(&[]), None);
    }
}
