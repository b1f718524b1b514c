//! The words a user reads when a pod cannot be placed, exactly as
//! kube-scheduler prints them (`FitError.Error()` plus the DefaultPreemption
//! post-filter message): reasons counted across nodes, `"{count} {reason}"`
//! sorted as strings, joined with `, `; the post-filter part ends in two
//! periods, as upstream's does.

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::api::core::v1::Pod;

use super::framework::{Code, Status};

/// Why preemption would not help on a node whose filters said "unresolvable".
pub const PREEMPTION_NOT_HELPFUL: &str = "Preemption is not helpful for scheduling";
/// Why preemption found nothing on a node that holds no pod of lower
/// priority than the incoming one.
pub const NO_PREEMPTION_VICTIMS: &str = "No preemption victims found for incoming pod";

/// Every node rejected the pod: how many nodes, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FitError {
    /// How many nodes were considered.
    pub num_all_nodes: usize,
    /// Filter reasons with how many nodes gave each.
    pub reasons: BTreeMap<String, usize>,
    /// The post-filter (preemption) sentence, without its `preemption: `
    /// prefix; `None` when preemption nominated a node (upstream then
    /// prints no post-filter part).
    pub preemption: Option<String>,
}

/// `"0/N nodes are available: 2 a, 3 b."` with reasons sorted as strings, as upstream.
pub(crate) fn histogram(num_all_nodes: usize, counts: &BTreeMap<String, usize>) -> String {
    let mut lines: Vec<String> = counts
        .iter()
        .map(|(reason, count)| format!("{count} {reason}"))
        .collect();
    lines.sort();
    let mut message = format!("0/{num_all_nodes} nodes are available:");
    if !lines.is_empty() {
        message.push_str(&format!(" {}.", lines.join(", ")));
    }
    message
}

impl FitError {
    /// The diagnosis of a failed decision: each rejected node's status.
    pub fn new(pod: &Pod, num_all_nodes: usize, statuses: &[Status]) -> Self {
        let mut reasons = BTreeMap::new();
        let mut preemption = BTreeMap::new();
        for status in statuses {
            for reason in &status.reasons {
                *reasons.entry(reason.clone()).or_insert(0) += 1;
            }
            let verdict = if status.code == Code::Unschedulable {
                NO_PREEMPTION_VICTIMS
            } else {
                PREEMPTION_NOT_HELPFUL
            };
            *preemption.entry(verdict.to_owned()).or_insert(0) += 1;
        }
        let never = pod
            .spec
            .as_ref()
            .and_then(|s| s.preemption_policy.as_deref())
            == Some("Never");
        let preemption = if never {
            super::preemption::NOT_ELIGIBLE_NEVER.to_owned()
        } else {
            histogram(num_all_nodes, &preemption)
        };
        FitError {
            num_all_nodes,
            reasons,
            preemption: Some(preemption),
        }
    }
}

impl fmt::Display for FitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", histogram(self.num_all_nodes, &self.reasons))?;
        match &self.preemption {
            // Upstream appends its separator's period to a sentence that
            // ends in one already: `…for incoming pod..`.
            Some(sentence) => write!(f, " preemption: {sentence}."),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::testing::pod;
    use serde_json::json;

    fn statuses(list: &[(Code, &str, usize)]) -> Vec<Status> {
        let mut out = Vec::new();
        for (code, reason, count) in list {
            for _ in 0..*count {
                out.push(Status {
                    code: *code,
                    reasons: vec![reason.to_string()],
                });
            }
        }
        out
    }

    #[test]
    fn messages_count_and_sort_reasons_as_upstream() {
        use Code::*;
        let taint = "node(s) had untolerated taint {nvidia.com/gpu: present}";
        let cases: Vec<(&str, Vec<Status>, usize, &str)> = vec![
            (
                "gpu request on a mixed cluster",
                statuses(&[(UnschedulableAndUnresolvable, "Insufficient nvidia.com/gpu", 3), (UnschedulableAndUnresolvable, taint, 2)]),
                5,
                "0/5 nodes are available: 2 node(s) had untolerated taint {nvidia.com/gpu: present}, 3 Insufficient nvidia.com/gpu. preemption: 0/5 nodes are available: 5 Preemption is not helpful for scheduling..",
            ),
            (
                "resolvable shortage counts as no victims",
                statuses(&[(Unschedulable, "Insufficient cpu", 2), (UnschedulableAndUnresolvable, "node(s) didn't match Pod's node affinity/selector", 1)]),
                3,
                "0/3 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, 2 Insufficient cpu. preemption: 0/3 nodes are available: 1 Preemption is not helpful for scheduling, 2 No preemption victims found for incoming pod..",
            ),
            (
                "several reasons from one node each count",
                vec![Status { code: Unschedulable, reasons: vec!["Insufficient cpu".into(), "Insufficient memory".into()] }],
                1,
                "0/1 nodes are available: 1 Insufficient cpu, 1 Insufficient memory. preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod..",
            ),
            (
                "counts sort as strings, like Go's sort.Strings",
                statuses(&[(UnschedulableAndUnresolvable, "b", 10), (UnschedulableAndUnresolvable, "a", 9)]),
                19,
                "0/19 nodes are available: 10 b, 9 a. preemption: 0/19 nodes are available: 19 Preemption is not helpful for scheduling..",
            ),
        ];
        let p = pod("p", json!({}));
        for (name, statuses, all, want) in cases {
            assert_eq!(
                FitError::new(&p, all, &statuses).to_string(),
                want,
                "{name}"
            );
        }
    }

    #[test]
    fn preemption_policy_never_says_not_eligible() {
        let mut p = pod("p", json!({}));
        p.spec.as_mut().unwrap().preemption_policy = Some("Never".into());
        let s = statuses(&[(Code::Unschedulable, "Insufficient cpu", 1)]);
        assert_eq!(
            FitError::new(&p, 1, &s).to_string(),
            "0/1 nodes are available: 1 Insufficient cpu. preemption: not eligible due to preemptionPolicy=Never.."
        );
    }
}
