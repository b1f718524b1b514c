//! The plugin framework, in kube-scheduler's shape: a pod's `CycleState` is
//! computed once per decision (the PreFilter step), then every node runs the
//! Filter plugins in order until one rejects it, and the feasible nodes are
//! ranked by weighted Score plugins. A decision runs the filters for hundreds
//! of nodes, so whatever depends only on the pod is worked out in
//! `CycleState` and whatever depends only on the node in `NodeInfo`; the
//! per-node work is field reads and integer arithmetic.
//! Pure: no I/O, no clocks, no globals.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Pod, Toleration};
use rand::Rng;

use super::cache::{pod_key, NodeInfo, Snapshot};
use super::message::FitError;
use super::plugins;
use super::preemption::{self, nominator::Nominator};
use super::resources::{PodRequests, Resources};

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
/// (upstream's PreFilter results in `CycleState`), so no plugin walks the
/// pod object once per node.
pub struct CycleState<'a> {
    /// The pod being scheduled.
    pub pod: &'a Pod,
    /// Its effective requests (init containers, sidecars, overhead).
    pub requests: Resources,
    /// Its CPU and memory as scoring counts them (defaults for empty requests).
    pub non_zero: (i64, i64),
    /// Its tolerations.
    pub tolerations: &'a [Toleration],
    /// The node it names in `spec.nodeName`, if any (NodeName).
    pub node_name: Option<&'a str>,
    /// Whether it tolerates the taint of cordoned nodes (NodeUnschedulable).
    pub tolerates_unschedulable: bool,
    /// Its tolerations that can tolerate PreferNoSchedule taints (TaintToleration scoring).
    pub prefer_no_schedule_tolerations: Vec<&'a Toleration>,
    /// Its nodeSelector and node affinity (NodeAffinity).
    pub node_affinity: plugins::node_affinity::NodeAffinityState<'a>,
    /// Matching-pod counts per topology domain for its hard spread constraints.
    pub spread: plugins::pod_topology_spread::SpreadState,
    /// Which nodes its required hostname anti-affinity (or that of pods already
    /// placed) rules out.
    pub anti_affinity: plugins::inter_pod_affinity::AntiAffinityState,
    /// Its claims, their volumes and classes (VolumeBinding).
    pub volumes: plugins::volume_binding::VolumeBindingState,
}

impl<'a> CycleState<'a> {
    /// Runs the PreFilter step for `pod` over `snapshot`.
    pub fn new(pod: &'a Pod, snapshot: &Snapshot) -> Self {
        let tolerations = pod
            .spec
            .as_ref()
            .and_then(|s| s.tolerations.as_deref())
            .unwrap_or(&[]);
        let PodRequests { requests, non_zero } = PodRequests::of(pod);
        CycleState {
            pod,
            requests,
            non_zero,
            tolerations,
            node_name: plugins::node_name::requested_node(pod),
            tolerates_unschedulable: plugins::node_unschedulable::tolerates_cordon(tolerations),
            prefer_no_schedule_tolerations:
                plugins::taint_toleration::prefer_no_schedule_tolerations(tolerations),
            node_affinity: plugins::node_affinity::NodeAffinityState::new(pod),
            spread: plugins::pod_topology_spread::SpreadState::new(pod, snapshot),
            anti_affinity: plugins::inter_pod_affinity::AntiAffinityState::new(pod, snapshot),
            volumes: plugins::volume_binding::VolumeBindingState::new(pod, snapshot),
        }
    }
}

/// A Filter plugin: can this node run the pod? Stateless; everything it
/// needs is in the `CycleState` and the `NodeInfo`.
pub trait FilterPlugin: Send + Sync {
    /// The upstream plugin name (`NodeResourcesFit`).
    fn name(&self) -> &'static str;
    /// True when `filter` passes every node for the pod in `state` (it asks
    /// for nothing this plugin checks), so a decision does not call it per
    /// node: upstream's PreFilter `Skip`. Never true when a node could fail.
    fn skip(&self, _state: &CycleState) -> bool {
        false
    }
    /// The verdict for one node.
    fn filter(&self, state: &CycleState, node: &NodeInfo) -> Status;
}

/// A Score plugin: how good is this feasible node, 0–100 after normalizing.
pub trait ScorePlugin: Send + Sync {
    /// The upstream plugin name.
    fn name(&self) -> &'static str;
    /// How much this plugin counts against the others.
    fn weight(&self) -> i64;
    /// True when every node's normalized score is 0 for the pod in `state`,
    /// so a decision does not score nodes with it: upstream's PreScore
    /// `Skip`. Never true when the plugin could tell nodes apart.
    fn skip(&self, _state: &CycleState) -> bool {
        false
    }
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
                Box::new(volume_binding::VolumeBinding),
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

/// Runs the filters for one node with the pods nominated there that the pod
/// must leave room for (equal or higher priority) counted as placed, as
/// upstream's `RunFilterPluginsWithNominatedPods`.
pub fn run_filters_with_claims(
    profile: &Profile,
    state: &CycleState,
    snapshot: &Snapshot,
    node: &NodeInfo,
) -> Status {
    match with_claims(state, snapshot.nominator(), node, None) {
        Some(claimed) => run_filters(profile, state, &claimed),
        None => run_filters(profile, state, node),
    }
}

/// `node` with the claims of pods nominated there added, or `None` when
/// there are none for this pod (the node is then filtered as it is).
fn with_claims(
    state: &CycleState,
    nominator: &Nominator,
    node: &NodeInfo,
    key: Option<&str>,
) -> Option<NodeInfo> {
    if nominator.is_empty() {
        return None;
    }
    let own_key;
    let key = match key {
        Some(key) => key,
        None => {
            own_key = pod_key(state.pod);
            &own_key
        }
    };
    let claims = nominator.claims_on(&node.name, preemption::priority(state.pod), key);
    if claims.is_empty() {
        return None;
    }
    let mut claimed = node.clone();
    for claim in claims {
        claimed.add_pod(pod_key(&claim.pod), claim);
    }
    Some(claimed)
}

/// The first filter rejection of `node`, `None` when every filter passes,
/// or the error of a plugin that failed (which abandons the decision).
fn first_rejection(
    filters: &[&dyn FilterPlugin],
    state: &CycleState,
    node: &NodeInfo,
) -> Result<Option<Status>, ScheduleError> {
    for plugin in filters {
        let status = plugin.filter(state, node);
        match status.code {
            Code::Success => {}
            Code::Error => {
                return Err(ScheduleError::Plugin {
                    plugin: plugin.name(),
                    reason: status.reasons.join(", "),
                })
            }
            Code::Unschedulable | Code::UnschedulableAndUnresolvable => return Ok(Some(status)),
        }
    }
    Ok(None)
}

/// What the Filter phase found (upstream's `findNodesThatPassFilters`).
struct Filtered<'n> {
    /// Nodes every filter passed, in the order visited.
    feasible: Vec<&'n NodeInfo>,
    /// The rejections, for the message when no node is feasible.
    failures: Vec<Status>,
    /// How many nodes were visited, to start the next decision after them.
    processed: usize,
}

/// Filters `nodes` round robin from `start` until `wanted` feasible ones are
/// found or every node was visited. Only the filters that can reject a node
/// for this pod run; the others would pass every node.
fn find_feasible<'n>(
    profile: &Profile,
    state: &CycleState,
    snapshot: &'n Snapshot,
    start: usize,
    wanted: usize,
) -> Result<Filtered<'n>, ScheduleError> {
    let nodes = snapshot.nodes();
    let nominator = snapshot.nominator();
    let key = (!nominator.is_empty()).then(|| pod_key(state.pod));
    let filters: Vec<&dyn FilterPlugin> = profile
        .filters
        .iter()
        .map(Box::as_ref)
        .filter(|plugin| !plugin.skip(state))
        .collect();
    let mut found = Filtered {
        feasible: Vec::with_capacity(wanted),
        failures: Vec::new(),
        processed: 0,
    };
    // Round robin as two slices, not an index modulo the node count per node.
    let (before, after) = nodes.split_at(start);
    for node in after.iter().chain(before) {
        found.processed += 1;
        // Only when some pod is nominated somewhere is a node copied with its claims.
        let rejection = match key.as_deref() {
            None => first_rejection(&filters, state, node)?,
            Some(key) => match with_claims(state, nominator, node, Some(key)) {
                Some(claimed) => first_rejection(&filters, state, &claimed)?,
                None => first_rejection(&filters, state, node)?,
            },
        };
        match rejection {
            Some(status) => found.failures.push(status),
            None => {
                found.feasible.push(node);
                if found.feasible.len() >= wanted {
                    break;
                }
            }
        }
    }
    Ok(found)
}

/// Each feasible node's weighted score summed over the Score plugins
/// (upstream's `prioritizeNodes`); plugins that would score every node 0 are
/// not asked.
fn prioritize(profile: &Profile, state: &CycleState, feasible: &[&NodeInfo]) -> Vec<i64> {
    let mut totals = vec![0i64; feasible.len()];
    let mut scores = vec![0i64; feasible.len()];
    for plugin in profile.scores.iter().filter(|plugin| !plugin.skip(state)) {
        for (score, node) in scores.iter_mut().zip(feasible) {
            *score = plugin.score(state, node);
        }
        plugin.normalize(&mut scores);
        let weight = plugin.weight();
        for (total, score) in totals.iter_mut().zip(&scores) {
            *total += score * weight;
        }
    }
    totals
}

/// The index of the highest total, ties broken uniformly at random by
/// reservoir sampling (upstream's `selectHost`), so equal nodes share the load.
fn select_host(totals: &[i64], rng: &mut impl Rng) -> usize {
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
    best
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

/// A tie-breaker seeded with `seed`, for decisions that must repeat exactly
/// (tests and benchmarks); the scheduler itself seeds from the OS.
pub fn seeded_rng(seed: u64) -> rand::rngs::StdRng {
    rand::SeedableRng::seed_from_u64(seed)
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
    let nodes = snapshot.nodes();
    let all = nodes.len();
    if all == 0 {
        return Err(ScheduleError::NoNodes);
    }
    let state = CycleState::new(pod, snapshot);
    // Upstream's `evaluateNominatedNode`: a pod nominated by preemption goes
    // to that node when it fits there now.
    if let Some(nominated) =
        preemption::nominated_node(pod, snapshot).and_then(|n| snapshot.node(n))
    {
        if run_filters_with_claims(profile, &state, snapshot, nominated).is_success() {
            return Ok(nominated.name.clone());
        }
    }
    let start = *next_start % all;
    let filtered = find_feasible(
        profile,
        &state,
        snapshot,
        start,
        num_feasible_nodes_to_find(all),
    )?;
    *next_start = (start + filtered.processed) % all;
    match filtered.feasible.as_slice() {
        [] => Err(ScheduleError::Unschedulable(FitError::new(
            pod,
            all,
            &filtered.failures,
        ))),
        [only] => Ok(only.name.clone()),
        feasible => {
            let totals = prioritize(profile, &state, feasible);
            Ok(feasible[select_host(&totals, rng)].name.clone())
        }
    }
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
    use crate::scheduler::testing::{node, pod, pod_with};
    use rand::SeedableRng;
    use serde_json::{json, Value};

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
        snapshot.apply_pod(&Arc::new(running));
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
            "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.."
        );
        let empty = Snapshot::default();
        assert_eq!(
            schedule_pod(&Profile::default(), &empty, &incoming, &mut 0, &mut rng),
            Err(ScheduleError::NoNodes)
        );
    }

    /// A cluster with something for every plugin to tell apart: cordoned,
    /// tainted (hard and soft), labelled and nearly full nodes.
    fn varied_snapshot() -> Snapshot {
        let mut snapshot = Snapshot::default();
        let cases = [
            ("plain", json!({})),
            ("cordoned", json!({"unschedulable": true})),
            (
                "gpu",
                json!({"taints": [{"key": "gpu", "effect": "NoSchedule"}]}),
            ),
            (
                "spot",
                json!({"taints": [{"key": "spot", "effect": "PreferNoSchedule"}]}),
            ),
            (
                "zone-a",
                json!({"labels": {"zone": "a", "kubernetes.io/hostname": "zone-a"}}),
            ),
        ];
        for (name, extra) in cases {
            snapshot.apply_node(node(name, json!({"cpu": "2", "memory": "4Gi"}), extra));
        }
        let mut web = pod_with(
            "web-1",
            json!({"cpu": "1"}),
            json!({}),
            json!({"app": "web"}),
        );
        web.spec.as_mut().unwrap().node_name = Some("zone-a".into());
        snapshot.apply_pod(&Arc::new(web));
        snapshot
    }

    #[test]
    fn plugins_skip_only_when_every_node_would_pass_or_score_zero() {
        let snapshot = varied_snapshot();
        let pods: Vec<(&str, Value)> = vec![
            ("nothing asked", json!({})),
            ("named node", json!({"nodeName": "plain"})),
            (
                "tolerates cordons",
                json!({"tolerations": [{"key": "node.kubernetes.io/unschedulable", "operator": "Exists"}]}),
            ),
            ("node selector", json!({"nodeSelector": {"zone": "a"}})),
            ("empty node selector", json!({"nodeSelector": {}})),
            (
                "required affinity",
                json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [{"matchExpressions": [{"key": "zone", "operator": "Exists"}]}]}}}}),
            ),
            (
                "preferred affinity",
                json!({"affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                    {"weight": 5, "preference": {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}}]}}}),
            ),
            (
                "spread",
                json!({"topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "zone",
                    "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {"matchLabels": {"app": "web"}}}]}),
            ),
            (
                "anti-affinity",
                json!({"affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                    {"topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": {"app": "web"}}}]}}}),
            ),
        ];
        let profile = Profile::default();
        for (name, spec) in pods {
            let p = pod_with("new", json!({"cpu": "500m"}), spec, json!({"app": "web"}));
            let state = CycleState::new(&p, &snapshot);
            for plugin in profile.filters.iter().filter(|f| f.skip(&state)) {
                for info in snapshot.nodes() {
                    assert!(
                        plugin.filter(&state, info).is_success(),
                        "{name}: {} skipped but rejects {}",
                        plugin.name(),
                        info.name
                    );
                }
            }
            let all: Vec<&NodeInfo> = snapshot.nodes().iter().collect();
            for plugin in profile.scores.iter().filter(|s| s.skip(&state)) {
                let mut scores: Vec<i64> = all.iter().map(|n| plugin.score(&state, n)).collect();
                plugin.normalize(&mut scores);
                assert!(
                    scores.iter().all(|s| *s == 0),
                    "{name}: {} skipped but scores {scores:?}",
                    plugin.name()
                );
            }
        }
    }

    #[test]
    fn a_pod_that_asks_for_nothing_runs_only_the_filters_that_can_reject_it() {
        let snapshot = varied_snapshot();
        let p = pod("new", json!({"cpu": "500m"}));
        let state = CycleState::new(&p, &snapshot);
        let profile = Profile::default();
        let running: Vec<&str> = profile
            .filters
            .iter()
            .filter(|f| !f.skip(&state))
            .map(|f| f.name())
            .collect();
        assert_eq!(
            running,
            ["NodeUnschedulable", "TaintToleration", "NodeResourcesFit"]
        );
        let scoring: Vec<&str> = profile
            .scores
            .iter()
            .filter(|s| !s.skip(&state))
            .map(|s| s.name())
            .collect();
        assert_eq!(scoring, ["NodeResourcesFit", "TaintToleration"]);
    }
}
