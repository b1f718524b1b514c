//! PodTopologySpread (hard constraints only, `whenUnsatisfiable:
//! DoNotSchedule`): placing the pod in a node's domain must keep the number
//! of matching pods within `maxSkew` of the emptiest eligible domain. Counts
//! are taken once per decision (PreFilter), over nodes that match the pod's
//! node affinity (`nodeAffinityPolicy: Honor`, the default).

use std::collections::HashMap;

use berth_api::selector::LabelSelector;
use k8s_openapi::api::core::v1::Pod;

use super::super::cache::{NodeInfo, Snapshot};
use super::super::framework::{CycleState, FilterPlugin, Status};
use super::node_affinity::NodeAffinityState;

/// Upstream's reason when placing here would exceed `maxSkew`.
pub const ERR_CONSTRAINTS: &str = "node(s) didn't match pod topology spread constraints";
/// Upstream's reason when the node lacks a constraint's topology label.
pub const ERR_MISSING_LABEL: &str =
    "node(s) didn't match pod topology spread constraints (missing required label)";

/// One hard constraint with its domain counts.
#[derive(Debug, Default)]
pub struct Constraint {
    /// The node label that defines domains.
    pub topology_key: String,
    /// How uneven domains may become.
    pub max_skew: i64,
    /// Matching pods per domain value (every eligible domain present, maybe 0).
    pub counts: HashMap<String, i64>,
    /// The smallest count (0 when fewer domains than `minDomains` exist).
    pub min: i64,
    /// 1 when the pod itself matches the selector.
    pub self_match: i64,
}

/// The PreFilter result: the pod's hard constraints with counts.
#[derive(Debug, Default)]
pub struct SpreadState {
    /// Empty when the pod has no hard constraints.
    pub constraints: Vec<Constraint>,
}

impl SpreadState {
    /// Counts matching pods per domain for each of the pod's hard constraints.
    pub fn new(pod: &Pod, snapshot: &Snapshot) -> Self {
        let specs = pod
            .spec
            .as_ref()
            .and_then(|s| s.topology_spread_constraints.as_deref())
            .unwrap_or(&[]);
        let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
        let empty = Default::default();
        let own_labels = pod.metadata.labels.as_ref().unwrap_or(&empty);
        let node_affinity = NodeAffinityState::new(pod);
        let mut constraints = Vec::new();
        for spec in specs
            .iter()
            .filter(|c| c.when_unsatisfiable == "DoNotSchedule")
        {
            let selector = spec
                .label_selector
                .as_ref()
                .and_then(|s| LabelSelector::from_label_selector(s).ok())
                .unwrap_or_else(LabelSelector::nothing);
            let mut counts: HashMap<String, i64> = HashMap::new();
            let honor_affinity = spec.node_affinity_policy.as_deref() != Some("Ignore");
            for info in snapshot.nodes() {
                let Some(node) = info.node.as_deref() else {
                    continue;
                };
                let Some(domain) = info.labels().and_then(|l| l.get(&spec.topology_key)) else {
                    continue;
                };
                if honor_affinity && !node_affinity.matches(node) {
                    continue;
                }
                let matching = info
                    .pods
                    .values()
                    .filter(|entry| {
                        let p = &entry.pod;
                        p.metadata.namespace.as_deref().unwrap_or("default") == namespace
                            && p.metadata.deletion_timestamp.is_none()
                            && selector.matches(p.metadata.labels.as_ref().unwrap_or(&empty))
                    })
                    .count() as i64;
                *counts.entry(domain.clone()).or_insert(0) += matching;
            }
            let min_domains = spec.min_domains.unwrap_or(1).max(1) as usize;
            let min = if counts.len() < min_domains {
                0
            } else {
                counts.values().copied().min().unwrap_or(0)
            };
            constraints.push(Constraint {
                topology_key: spec.topology_key.clone(),
                max_skew: i64::from(spec.max_skew),
                counts,
                min,
                self_match: i64::from(selector.matches(own_labels)),
            });
        }
        SpreadState { constraints }
    }
}

/// The PodTopologySpread plugin.
pub struct PodTopologySpread;

impl FilterPlugin for PodTopologySpread {
    fn name(&self) -> &'static str {
        "PodTopologySpread"
    }

    fn skip(&self, state: &CycleState) -> bool {
        state.spread.constraints.is_empty()
    }

    fn filter(&self, state: &CycleState, node: &NodeInfo) -> Status {
        for constraint in &state.spread.constraints {
            let Some(domain) = node.labels().and_then(|l| l.get(&constraint.topology_key)) else {
                return Status::unresolvable(ERR_MISSING_LABEL);
            };
            let here = constraint.counts.get(domain).copied().unwrap_or(0);
            if here + constraint.self_match - constraint.min > constraint.max_skew {
                return Status::unschedulable(ERR_CONSTRAINTS);
            }
        }
        Status::success()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::testing::{node, pod_with};
    use serde_json::json;

    fn placed(name: &str, node: &str, labels: serde_json::Value) -> std::sync::Arc<Pod> {
        let mut p = pod_with(name, json!({}), json!({}), labels);
        p.spec.as_mut().unwrap().node_name = Some(node.into());
        std::sync::Arc::new(p)
    }

    #[test]
    fn hard_constraints_keep_skew_within_max() {
        let mut snapshot = Snapshot::default();
        for (name, zone) in [("a1", "a"), ("a2", "a"), ("b1", "b"), ("c1", "c")] {
            snapshot.apply_node(node(name, json!({}), json!({"labels": {"zone": zone}})));
        }
        snapshot.apply_node(node("nolabel", json!({}), json!({})));
        snapshot.apply_pod(&placed("w1", "a1", json!({"app": "web"})));
        snapshot.apply_pod(&placed("w2", "a2", json!({"app": "web"})));
        snapshot.apply_pod(&placed("w3", "b1", json!({"app": "web"})));
        snapshot.apply_pod(&placed("other", "c1", json!({"app": "db"})));
        let constraint = |skew: i32, when: &str| {
            json!({"topologySpreadConstraints": [{
            "maxSkew": skew, "topologyKey": "zone", "whenUnsatisfiable": when,
            "labelSelector": {"matchLabels": {"app": "web"}}}]})
        };
        let cases = [
            (
                "zone a has 2, min 0: skew 3",
                1,
                "DoNotSchedule",
                "a1",
                Some(ERR_CONSTRAINTS),
            ),
            (
                "zone b has 1: skew 2",
                1,
                "DoNotSchedule",
                "b1",
                Some(ERR_CONSTRAINTS),
            ),
            ("zone c has 0: skew 1", 1, "DoNotSchedule", "c1", None),
            ("maxSkew 2 allows b", 2, "DoNotSchedule", "b1", None),
            (
                "missing label",
                1,
                "DoNotSchedule",
                "nolabel",
                Some(ERR_MISSING_LABEL),
            ),
            (
                "ScheduleAnyway is not a filter",
                1,
                "ScheduleAnyway",
                "a1",
                None,
            ),
        ];
        for (name, skew, when, node_name, want) in cases {
            let p = pod_with(
                "new",
                json!({}),
                constraint(skew, when),
                json!({"app": "web"}),
            );
            let state = CycleState::new(&p, &snapshot);
            let status = PodTopologySpread.filter(&state, snapshot.node(node_name).unwrap());
            match want {
                None => assert!(status.is_success(), "{name}: {status:?}"),
                Some(reason) => assert_eq!(status.reasons, vec![reason.to_string()], "{name}"),
            }
        }
    }
}
