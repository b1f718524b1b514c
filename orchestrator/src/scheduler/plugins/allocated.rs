//! NodeResourcesAllocated scoring: LeastAllocated (spread pods over the
//! emptiest nodes; the default) or MostAllocated (bin-pack onto the fullest),
//! chosen per node pool by the node label `berth.dev/scoring=most-allocated`
//! (absent or `least-allocated` means LeastAllocated). CPU and memory count
//! equally, with upstream's defaults for containers that request nothing.
//! The strategy is read from the label when the node changes (`NodeInfo::scoring`),
//! not per decision.

use std::collections::BTreeMap;

use super::super::cache::NodeInfo;
use super::super::framework::{CycleState, ScorePlugin, MAX_NODE_SCORE};

/// The node label that picks the scoring strategy for a pool.
pub const SCORING_LABEL: &str = "berth.dev/scoring";

/// How a node wants to be filled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// Prefer nodes with the most room left (spreading).
    LeastAllocated,
    /// Prefer nodes with the least room left (bin packing).
    MostAllocated,
}

impl Strategy {
    /// The strategy a node's labels ask for.
    pub fn from_labels(labels: Option<&BTreeMap<String, String>>) -> Self {
        match labels
            .and_then(|l| l.get(SCORING_LABEL))
            .map(String::as_str)
        {
            Some("most-allocated") => Strategy::MostAllocated,
            _ => Strategy::LeastAllocated,
        }
    }

    /// 0–100 for one resource.
    pub fn resource_score(self, requested: i64, allocatable: i64) -> i64 {
        if allocatable <= 0 {
            return 0;
        }
        match self {
            Strategy::LeastAllocated if requested > allocatable => 0,
            Strategy::LeastAllocated => (allocatable - requested) * MAX_NODE_SCORE / allocatable,
            Strategy::MostAllocated => requested.min(allocatable) * MAX_NODE_SCORE / allocatable,
        }
    }
}

/// The NodeResourcesFit scoring plugin (named after what it scores).
pub struct NodeResourcesAllocated;

impl ScorePlugin for NodeResourcesAllocated {
    fn name(&self) -> &'static str {
        "NodeResourcesFit"
    }

    fn weight(&self) -> i64 {
        1
    }

    fn score(&self, state: &CycleState, node: &NodeInfo) -> i64 {
        let strategy = node.scoring;
        let cpu = strategy.resource_score(
            node.non_zero_requested.0 + state.non_zero.0,
            node.allocatable.milli_cpu,
        );
        let memory = strategy.resource_score(
            node.non_zero_requested.1 + state.non_zero.1,
            node.allocatable.memory,
        );
        (cpu + memory) / 2
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::cache::{PodEntry, Snapshot};
    use crate::scheduler::testing::{node, pod};
    use serde_json::json;
    use std::sync::Arc;

    #[test]
    fn resource_scores_follow_the_strategy() {
        use Strategy::*;
        let cases = [
            (LeastAllocated, 0, 100, 100),
            (LeastAllocated, 25, 100, 75),
            (LeastAllocated, 150, 100, 0),
            (MostAllocated, 25, 100, 25),
            (MostAllocated, 150, 100, 100),
            (MostAllocated, 10, 0, 0),
        ];
        for (strategy, requested, allocatable, want) in cases {
            assert_eq!(
                strategy.resource_score(requested, allocatable),
                want,
                "{strategy:?} {requested}/{allocatable}"
            );
        }
    }

    #[test]
    fn the_pool_label_turns_spreading_into_bin_packing() {
        let incoming = pod("p", json!({"cpu": "1", "memory": "1Gi"}));
        let state = CycleState::new(&incoming, &Snapshot::default());
        let mut scores = Vec::new();
        for labels in [json!({}), json!({SCORING_LABEL: "most-allocated"})] {
            let mut empty = NodeInfo::new(node(
                "empty",
                json!({"cpu": "4", "memory": "4Gi"}),
                json!({"labels": labels.clone()}),
            ));
            let mut busy = NodeInfo::new(node(
                "busy",
                json!({"cpu": "4", "memory": "4Gi"}),
                json!({"labels": labels}),
            ));
            busy.add_pod(
                "default/x".into(),
                Arc::new(PodEntry {
                    pod: Arc::new(pod("x", json!({}))),
                    requests: Default::default(),
                    non_zero: (2000, 2 << 30),
                }),
            );
            empty.pods.clear();
            scores.push((
                NodeResourcesAllocated.score(&state, &empty),
                NodeResourcesAllocated.score(&state, &busy),
            ));
        }
        assert_eq!(
            scores[0],
            (75, 25),
            "least allocated prefers the empty node"
        );
        assert_eq!(scores[1], (25, 75), "most allocated prefers the busy node");
    }
}
