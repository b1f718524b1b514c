//! Priority preemption, as upstream's DefaultPreemption PostFilter plugin:
//! when a pod fits nowhere, find the nodes where removing pods of lower
//! priority would let it pass the filters (nodes whose rejection preemption
//! cannot resolve are skipped), choose the fewest and least important victims
//! on each (`victims`), pick one node by upstream's rules (`choice`), and
//! nominate the pod there. The scheduler loop then deletes the victims
//! (`writes`) and the pod is placed once they are gone; meanwhile the
//! `nominator` keeps the freed room for it. Pods with `preemptionPolicy:
//! Never` never preempt. Pure apart from `writes`: decisions are functions
//! of the snapshot, the budgets and the pod.

pub mod budgets;
pub mod choice;
pub mod nominator;
pub mod victims;
pub mod writes;

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;

use super::cache::{pod_key, NodeInfo, Snapshot};
use super::framework::{run_filters_with_claims, Code, CycleState, Profile, Status};
use super::message::{histogram, PREEMPTION_NOT_HELPFUL};
use budgets::Budget;
use choice::{pick_one_node, Candidate};

/// The condition reason upstream puts on a pod it preempts.
pub const REASON_PREEMPTION_BY_SCHEDULER: &str = "PreemptionByScheduler";
/// Why a pod with `preemptionPolicy: Never` does not preempt.
pub const NOT_ELIGIBLE_NEVER: &str = "not eligible due to preemptionPolicy=Never.";
/// Why a pod whose earlier victims are still terminating does not preempt again.
pub const NOT_ELIGIBLE_TERMINATING: &str =
    "not eligible due to a terminating pod on the nominated node.";
/// Upstream's floor on how many candidate nodes a dry run looks for.
const MIN_CANDIDATE_NODES_ABSOLUTE: usize = 100;
/// Upstream's share of the nodes a dry run looks for candidates on.
const MIN_CANDIDATE_NODES_PERCENTAGE: usize = 10;

/// A pod's `spec.priority` (0 when unset, as upstream's `PodPriority`).
pub fn priority(pod: &Pod) -> i32 {
    pod.spec.as_ref().and_then(|s| s.priority).unwrap_or(0)
}

/// The node a pending pod is nominated to: its `status.nominatedNodeName`,
/// or the nomination this scheduler made and has not seen written yet.
pub fn nominated_node<'a>(pod: &'a Pod, snapshot: &'a Snapshot) -> Option<&'a str> {
    let from_status = pod
        .status
        .as_ref()
        .and_then(|s| s.nominated_node_name.as_deref())
        .filter(|n| !n.is_empty());
    if from_status.is_some() || snapshot.nominator().is_empty() {
        return from_status;
    }
    snapshot.nominator().node_of(&pod_key(pod))
}

/// Is `pod` being deleted because the scheduler preempted it (the
/// `DisruptionTarget` condition with reason `PreemptionByScheduler`), or
/// chosen as a victim by this scheduler and not yet seen deleted?
fn terminating_by_preemption(pod: &Pod, snapshot: &Snapshot) -> bool {
    if snapshot.is_preempted(&pod_key(pod)) {
        return true;
    }
    pod.metadata.deletion_timestamp.is_some()
        && pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| {
                c.iter().any(|c| {
                    c.type_ == "DisruptionTarget"
                        && c.reason.as_deref() == Some(REASON_PREEMPTION_BY_SCHEDULER)
                })
            })
}

/// Upstream's `PodEligibleToPreemptOthers`: `Err` with the sentence when the
/// pod may not preempt now.
pub fn eligible(
    profile: &Profile,
    state: &CycleState,
    snapshot: &Snapshot,
) -> Result<(), &'static str> {
    let pod = state.pod;
    if pod
        .spec
        .as_ref()
        .and_then(|s| s.preemption_policy.as_deref())
        == Some("Never")
    {
        return Err(NOT_ELIGIBLE_NEVER);
    }
    let Some(info) = nominated_node(pod, snapshot).and_then(|n| snapshot.node(n)) else {
        return Ok(());
    };
    // A nominated node preemption cannot help on is no reason to wait.
    let status = run_filters_with_claims(profile, state, snapshot, info);
    if status.code == Code::UnschedulableAndUnresolvable {
        return Ok(());
    }
    let own = priority(pod);
    let waiting = info
        .pods
        .values()
        .any(|e| priority(&e.pod) < own && terminating_by_preemption(&e.pod, snapshot));
    if waiting {
        return Err(NOT_ELIGIBLE_TERMINATING);
    }
    Ok(())
}

/// What preemption decided for a pod no node fits.
#[derive(Debug)]
pub enum PostFilter {
    /// Preempt `victims` on `node` and nominate the pod there.
    Nominated(Decision),
    /// The pod may not preempt now; its nomination stays as it is.
    NotEligible(&'static str),
    /// No node would fit even without lower-priority pods; the sentence
    /// says why per node (`None`: no pod anywhere has a lower priority, so
    /// the filters' verdicts say it), and the pod's nomination is cleared.
    NoCandidates(Option<String>),
}

/// A preemption to carry out.
#[derive(Debug)]
pub struct Decision {
    /// Where the preemptor is nominated.
    pub node: Arc<str>,
    /// The pods to delete, most important first.
    pub victims: Vec<Arc<Pod>>,
    /// Lower-priority pods nominated to the same node, whose nominations are cleared.
    pub cleared: Vec<(String, Arc<Pod>)>,
}

/// How many candidates a dry run looks for before it stops (upstream's
/// `GetOffsetAndNumCandidates`, without the random offset).
fn num_candidates(nodes: usize) -> usize {
    (nodes * MIN_CANDIDATE_NODES_PERCENTAGE / 100)
        .max(MIN_CANDIDATE_NODES_ABSOLUTE)
        .min(nodes)
}

/// Upstream's `DryRunPreemption`: the candidates, and each rejected node's
/// status for the message when there are none.
fn dry_run(
    profile: &Profile,
    state: &CycleState,
    snapshot: &Snapshot,
    budgets: &[Budget],
) -> (Vec<Candidate>, Vec<Status>) {
    let key = pod_key(state.pod);
    let own = priority(state.pod);
    let wanted = num_candidates(snapshot.nodes().len());
    let mut candidates = Vec::new();
    let mut statuses = Vec::new();
    for info in snapshot.nodes() {
        if candidates.len() >= wanted {
            break;
        }
        let status = run_filters_with_claims(profile, state, snapshot, info);
        if status.code != Code::Unschedulable {
            statuses.push(Status::unresolvable(PREEMPTION_NOT_HELPFUL));
            continue;
        }
        match victims_on(profile, state, snapshot, info, &key, own, budgets) {
            Ok(victims) => candidates.push(Candidate {
                node: info.name.clone(),
                victims,
            }),
            Err(status) => statuses.push(status),
        }
    }
    (candidates, statuses)
}

fn victims_on(
    profile: &Profile,
    state: &CycleState,
    snapshot: &Snapshot,
    info: &NodeInfo,
    key: &str,
    own: i32,
    budgets: &[Budget],
) -> Result<victims::Victims, Status> {
    if !info.pods.values().any(|e| priority(&e.pod) < own) {
        // Checked before copying the node: the common case on a busy cluster.
        return Err(Status::unresolvable(super::message::NO_PREEMPTION_VICTIMS));
    }
    let claims = snapshot.nominator().claims_on(&info.name, own, key);
    victims::select_victims_on_node(profile, state, info, &claims, budgets)
}

/// Upstream's `Evaluator.Preempt` up to the choice of node: the whole
/// PostFilter decision for `state`'s pod, which no node fits.
pub fn post_filter(
    profile: &Profile,
    state: &CycleState,
    snapshot: &Snapshot,
    budgets: &[Budget],
) -> PostFilter {
    if let Err(reason) = eligible(profile, state, snapshot) {
        return PostFilter::NotEligible(reason);
    }
    let own = priority(state.pod);
    let anything_lower = snapshot
        .nodes()
        .iter()
        .any(|n| n.pods.values().any(|e| priority(&e.pod) < own));
    if !anything_lower {
        return PostFilter::NoCandidates(None);
    }
    let (candidates, statuses) = dry_run(profile, state, snapshot, budgets);
    let Some(best) = pick_one_node(&candidates) else {
        let mut counts = BTreeMap::new();
        for status in &statuses {
            for reason in &status.reasons {
                *counts.entry(reason.clone()).or_insert(0) += 1;
            }
        }
        return PostFilter::NoCandidates(Some(histogram(snapshot.nodes().len(), &counts)));
    };
    let candidate = &candidates[best];
    PostFilter::Nominated(Decision {
        node: candidate.node.clone(),
        victims: candidate
            .victims
            .pods
            .iter()
            .map(|e| e.pod.clone())
            .collect(),
        cleared: snapshot.nominator().lower_than(&candidate.node, own),
    })
}

#[cfg(test)]
mod tests;
