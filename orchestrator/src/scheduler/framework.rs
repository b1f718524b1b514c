//! The plugin framework, in kube-scheduler's shape: a pod's `CycleState` is
//! computed once per decision (the PreFilter step), then every node runs the
//! Filter plugins in order until one rejects it, and the feasible nodes are
//! ranked by weighted Score plugins. Pure: no I/O, no clocks, no globals.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Pod, Toleration};
use rand::Rng;

use super::cache::{NodeInfo, Snapshot};
use super::message::FitError;
use super::plugins;
use super::resources::{pod_non_zero_requests, pod_requests, Resources};

/// What a plugin decided, as upstream's `framework.Code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Code {
    /// The node can run the pod.
    Success,
    /// The node cannot run the pod now, but preempting pods on it might help.
    Unschedulable,
    /// The node cannot run the pod and preemption would not change that.
    UnschedulableAndUnresolvable,
    /// The plugin failed; the scheduling attempt is abandoned.
    Error,
}

/// A plugin's verdict with the reasons that end up in the pod's condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// The verdict.
    pub code: Code,
    /// Human-readable reasons (`Insufficient cpu`), counted across nodes in the message.
    pub reasons: Vec<String>,
}

impl Status {
    /// The node passes.
    pub fn success() -> Self {
        Status {
            code: Code::Success,
            reasons: Vec::new(),
        }
    }

    /// Rejected; preemption might help.
    pub fn unschedulable(reason: impl Into<String>) -> Self {
        Status {
            code: Code::Unschedulable,
            reasons: vec![reason.into()],
        }
    }

    /// Rejected; preemption cannot help.
    pub fn unresolvable(reason: impl Into<String>) -> Self {
        Status {
            code: Code::UnschedulableAndUnresolvable,
            reasons: vec![reason.into()],
        }
    }

    /// The plugin could not decide.
    pub fn error(reason: impl Into<String>) -> Self {
        Status {
            code: Code::Error,
            reasons: vec![reason.into()],
        }
    }

    /// True when the node passes.
    pub fn is_success(&self) -> bool {
        self.code == Code::Success
    }
}

/// Everything computed once per pod per decision and shared by the plugins
/// (upstream's PreFilter results in `CycleState`).
pub struct CycleState<'a> {
    /// The pod being scheduled.
    pub pod: &'a Pod,
    /// Its effective requests (init containers, sidecars, overhead).
    pub requests: Resources,
    /// Its CPU and memory as scoring counts them (defaults for empty requests).
    pub non_zero: (i64, i64),
    /// Its tolerations.
    pub tolerations: &'a [Toleration],
    /// Matching-pod counts per topology domain for its hard spread constraints.
    pub spread: plugins::pod_topology_spread::SpreadState,
    /// Which nodes its required hostname anti-affinity (or that of pods already
    /// placed) rules out.
    pub anti_affinity: plugins::inter_pod_affinity::AntiAffinityState,
}

impl<'a> CycleState<'a> {
    /// Runs the PreFilter step for `pod` over `snapshot`.
    pub fn new(pod: &'a Pod, snapshot: &Snapshot) -> Self {
        let tolerations = pod
            .spec
            .as_ref()
            .and_then(|s| s.tolerations.as_deref())
            .unwrap_or(&[]);
        CycleState {
            pod,
            requests: pod_requests(pod),
            non_zero: pod_non_zero_requests(pod),
            tolerations,
            spread: plugins::pod_topology_spread::SpreadState::new(pod, snapshot),
            anti_affinity: plugins::inter_pod_affinity::AntiAffinityState::new(pod, snapshot),
        }
    }
}

/// A Filter plugin: can this node run the pod? Stateless; everything it
/// needs is in the `CycleState` and the `NodeInfo`.
pub trait FilterPlugin: Send + Sync {
    /// The upstream plugin name (`NodeResourcesFit`).
    fn name(&self) -> &'static str;
    /// The verdict for one node.
    fn filter(&self, state: &CycleState, node: &NodeInfo) -> Status;
}

/// A Score plugin: how good is this feasible node, 0–100 after normalizing.
pub trait ScorePlugin: Send + Sync {
    /// The upstream plugin name.
    fn name(&self) -> &'static str;
    /// How much this plugin counts against the others.
    fn weight(&self) -> i64;
    /// The raw score of one node.
    fn score(&self, state: &CycleState, node: &NodeInfo) -> i64;
    /// Maps raw scores onto 0–100 (default: already in range).
    fn normalize(&self, _scores: &mut [i64]) {}
}

/// Highest score a node can get from one plugin.
pub const MAX_NODE_SCORE: i64 = 100;

/// The plugins of the default profile, in upstream's order.
pub struct Profile {
    /// Filters, run in order; the first rejection decides for a node.
    pub filters: Vec<Box<dyn FilterPlugin>>,
    /// Scores, summed with their weights.
    pub scores: Vec<Box<dyn ScorePlugin>>,
}

impl Default for Profile {
    fn default() -> Self {
        use plugins::*;
        Profile {
            filters: vec![
                Box::new(node_unschedulable::NodeUnschedulable),
                Box::new(node_name::NodeName),
                Box::new(taint_toleration::TaintToleration),
                Box::new(node_affinity::NodeAffinity),
                Box::new(node_resources_fit::NodeResourcesFit),
                Box::new(pod_topology_spread::PodTopologySpread),
                Box::new(inter_pod_affinity::InterPodAffinity),
            ],
            scores: vec![
                Box::new(allocated::NodeResourcesAllocated),
                Box::new(node_affinity::NodeAffinity),
                Box::new(taint_toleration::TaintToleration),
            ],
        }
    }
}

/// How many feasible nodes to find before scoring, as upstream's adaptive
/// `percentageOfNodesToScore`: all of a small cluster, a shrinking share of a
/// big one (never fewer than 100), so one decision does not cost O(nodes).
pub fn num_feasible_nodes_to_find(all: usize) -> usize {
    const MIN_FEASIBLE: usize = 100;
    if all < MIN_FEASIBLE {
        return all;
    }
    let percentage = (50i64 - all as i64 / 125).max(5) as usize;
    (all * percentage / 100).max(MIN_FEASIBLE)
}

/// Runs the filters for one node: the first rejection decides.
pub fn run_filters(profile: &Profile, state: &CycleState, node: &NodeInfo) -> Status {
    for plugin in &profile.filters {
        let status = plugin.filter(state, node);
        if !status.is_success() {
            return status;
        }
    }
    Status::success()
}

/// Why a decision found no node.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// The cluster has no nodes at all.
    #[error("no nodes available to schedule pods")]
    NoNodes,
    /// Every node was rejected; the message is upstream's `0/N nodes are available: …`.
    #[error("{0}")]
    Unschedulable(FitError),
    /// A plugin failed.
    #[error("{plugin}: {reason}")]
    Plugin {
        /// Which plugin.
        plugin: &'static str,
        /// What went wrong.
        reason: String,
    },
}

/// Picks a node for `pod`: filters from `*next_start` round-robin until
/// enough feasible nodes are found, scores them, and returns the best (ties
/// broken at random, so equal nodes share the load).
pub fn schedule_pod(
    profile: &Profile,
    snapshot: &Snapshot,
    pod: &Pod,
    next_start: &mut usize,
    rng: &mut impl Rng,
) -> Result<Arc<str>, ScheduleError> {
    let nodes = snapshot.schedulable_nodes();
    let all = nodes.len();
    if all == 0 {
        return Err(ScheduleError::NoNodes);
    }
    let state = CycleState::new(pod, snapshot);
    let wanted = num_feasible_nodes_to_find(all);
    let mut feasible: Vec<&NodeInfo> = Vec::with_capacity(wanted);
    let mut failures: Vec<Status> = Vec::new();
    let start = *next_start % all;
    let mut processed = 0;
    for offset in 0..all {
        let node = nodes[(start + offset) % all];
        processed += 1;
        let mut rejected = None;
        for plugin in &profile.filters {
            let status = plugin.filter(&state, node);
            if status.code == Code::Error {
                return Err(ScheduleError::Plugin {
                    plugin: plugin.name(),
                    reason: status.reasons.join(", "),
                });
            }
            if !status.is_success() {
                rejected = Some(status);
                break;
            }
        }
        match rejected {
            Some(status) => failures.push(status),
            None => {
                feasible.push(node);
                if feasible.len() >= wanted {
                    break;
                }
            }
        }
    }
    *next_start = (start + processed) % all;
    if feasible.is_empty() {
        return Err(ScheduleError::Unschedulable(FitError::new(
            pod, all, &failures,
        )));
    }
    if feasible.len() == 1 {
        return Ok(feasible[0].name.clone());
    }
    let mut totals = vec![0i64; feasible.len()];
    let mut scores = vec![0i64; feasible.len()];
    for plugin in &profile.scores {
        for (score, node) in scores.iter_mut().zip(&feasible) {
            *score = plugin.score(&state, node);
        }
        plugin.normalize(&mut scores);
        for (total, score) in totals.iter_mut().zip(&scores) {
            *total += score * plugin.weight();
        }
    }
    let mut best = 0;
    let mut ties = 0u32;
    for (index, total) in totals.iter().enumerate() {
        if *total > totals[best] {
            best = index;
            ties = 1;
        } else if *total == totals[best] {
            ties += 1;
            if rng.random_range(0..ties) == 0 {
                best = index;
            }
        }
    }
    Ok(feasible[best].name.clone())
}

/// Scales raw scores so the highest becomes `MAX_NODE_SCORE` (upstream's
/// `DefaultNormalizeScore`); with `reverse`, the lowest raw score wins.
pub fn default_normalize(scores: &mut [i64], reverse: bool) {
    let max = scores.iter().copied().max().unwrap_or(0);
    if max == 0 {
        if reverse {
            scores.iter_mut().for_each(|s| *s = MAX_NODE_SCORE);
        }
        return;
    }
    for score in scores.iter_mut() {
        *score = MAX_NODE_SCORE * *score / max;
        if reverse {
            *score = MAX_NODE_SCORE - *score;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::testing::{node, pod};
    use rand::SeedableRng;
    use serde_json::json;

    #[test]
    fn feasible_nodes_to_find_follows_upstream_adaptive_percentage() {
        let cases = [
            (0, 0),
            (50, 50),
            (100, 100),
            (1000, 420),
            (5000, 500),
            (10000, 500),
        ];
        for (all, want) in cases {
            assert_eq!(num_feasible_nodes_to_find(all), want, "{all} nodes");
        }
    }

    #[test]
    fn normalize_scales_to_max_and_reverses() {
        let mut s = vec![0, 5, 10];
        default_normalize(&mut s, false);
        assert_eq!(s, vec![0, 50, 100]);
        let mut s = vec![0, 5, 10];
        default_normalize(&mut s, true);
        assert_eq!(s, vec![100, 50, 0]);
        let mut s = vec![0, 0];
        default_normalize(&mut s, true);
        assert_eq!(s, vec![100, 100]);
    }

    #[test]
    fn schedule_pod_picks_the_least_allocated_feasible_node() {
        let mut snapshot = Snapshot::default();
        snapshot.apply_node(node(
            "busy",
            json!({"cpu": "4", "memory": "8Gi", "pods": "10"}),
            json!({}),
        ));
        snapshot.apply_node(node(
            "idle",
            json!({"cpu": "4", "memory": "8Gi", "pods": "10"}),
            json!({}),
        ));
        snapshot.apply_node(node(
            "small",
            json!({"cpu": "100m", "memory": "8Gi", "pods": "10"}),
            json!({}),
        ));
        let mut running = pod("running", json!({"cpu": "2"}));
        running.spec.as_mut().unwrap().node_name = Some("busy".into());
        snapshot.apply_pod(&running);
        let incoming = pod("new", json!({"cpu": "1"}));
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let mut start = 0;
        for _ in 0..5 {
            let chosen = schedule_pod(
                &Profile::default(),
                &snapshot,
                &incoming,
                &mut start,
                &mut rng,
            )
            .unwrap();
            assert_eq!(&*chosen, "idle");
        }
    }

    #[test]
    fn schedule_pod_reports_every_rejection() {
        let mut snapshot = Snapshot::default();
        snapshot.apply_node(node(
            "a",
            json!({"cpu": "1", "memory": "1Gi", "pods": "10"}),
            json!({}),
        ));
        let incoming = pod("new", json!({"cpu": "2"}));
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let err =
            schedule_pod(&Profile::default(), &snapshot, &incoming, &mut 0, &mut rng).unwrap_err();
        assert_eq!(
            err.to_string(),
            "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling."
        );
        let empty = Snapshot::default();
        assert_eq!(
            schedule_pod(&Profile::default(), &empty, &incoming, &mut 0, &mut rng),
            Err(ScheduleError::NoNodes)
        );
    }
}
