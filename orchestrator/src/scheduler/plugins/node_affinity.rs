//! NodeAffinity: `spec.nodeSelector` and required node affinity filter nodes
//! (terms ORed, expressions within a term ANDed; In/NotIn/Exists/
//! DoesNotExist/Gt/Lt on labels, In/NotIn on `metadata.name` fields);
//! preferred node affinity adds the weights of the terms a node matches.
//! The pod's side is looked up once per decision (`NodeAffinityState`), so a
//! pod that asks for nothing costs one check per node.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Node, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, Pod, PreferredSchedulingTerm,
};

use super::super::cache::NodeInfo;
use super::super::framework::{default_normalize, CycleState, FilterPlugin, ScorePlugin, Status};

/// The NodeAffinity plugin.
pub struct NodeAffinity;

/// The message upstream prints for a node that fails nodeSelector or required affinity.
pub const ERR_REASON: &str = "node(s) didn't match Pod's node affinity/selector";

fn requirement_matches(requirement: &NodeSelectorRequirement, value: Option<&str>) -> bool {
    let values = requirement.values.as_deref().unwrap_or(&[]);
    let integer = |v: Option<&str>| v.and_then(|v| v.parse::<i64>().ok());
    match requirement.operator.as_str() {
        "In" => value.is_some_and(|v| values.iter().any(|x| x == v)),
        "NotIn" => !value.is_some_and(|v| values.iter().any(|x| x == v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        "Gt" | "Lt" => {
            let (Some(actual), [bound]) = (integer(value), values) else {
                return false;
            };
            let Ok(bound) = bound.parse::<i64>() else {
                return false;
            };
            if requirement.operator == "Gt" {
                actual > bound
            } else {
                actual < bound
            }
        }
        _ => false,
    }
}

/// Does `node` match one node selector term? An empty term matches nothing.
pub fn term_matches(term: &NodeSelectorTerm, node: &Node) -> bool {
    let expressions = term.match_expressions.as_deref().unwrap_or(&[]);
    let fields = term.match_fields.as_deref().unwrap_or(&[]);
    if expressions.is_empty() && fields.is_empty() {
        return false;
    }
    let empty = BTreeMap::new();
    let labels = node.metadata.labels.as_ref().unwrap_or(&empty);
    expressions
        .iter()
        .all(|r| requirement_matches(r, labels.get(&r.key).map(String::as_str)))
        && fields.iter().all(|r| {
            r.key == "metadata.name"
                && matches!(r.operator.as_str(), "In" | "NotIn")
                && requirement_matches(r, node.metadata.name.as_deref())
        })
}

/// The PreFilter result: what of the pod's spec constrains or prefers nodes.
#[derive(Debug, Default)]
pub struct NodeAffinityState<'a> {
    /// `spec.nodeSelector`.
    pub node_selector: Option<&'a BTreeMap<String, String>>,
    /// Required node affinity.
    pub required: Option<&'a NodeSelector>,
    /// Preferred node affinity terms (empty when none).
    pub preferred: &'a [PreferredSchedulingTerm],
}

impl<'a> NodeAffinityState<'a> {
    /// Looks up the pod's node selector and node affinity.
    pub fn new(pod: &'a Pod) -> Self {
        let Some(spec) = pod.spec.as_ref() else {
            return Self::default();
        };
        let affinity = spec
            .affinity
            .as_ref()
            .and_then(|a| a.node_affinity.as_ref());
        NodeAffinityState {
            node_selector: spec.node_selector.as_ref(),
            required: affinity.and_then(|a| {
                a.required_during_scheduling_ignored_during_execution
                    .as_ref()
            }),
            preferred: affinity
                .and_then(|a| {
                    a.preferred_during_scheduling_ignored_during_execution
                        .as_deref()
                })
                .unwrap_or(&[]),
        }
    }

    /// True when neither a nodeSelector nor required node affinity narrows
    /// the nodes (every node object matches).
    pub fn requires_nothing(&self) -> bool {
        self.node_selector.is_none_or(BTreeMap::is_empty) && self.required.is_none()
    }

    /// Does `node` satisfy the nodeSelector and required node affinity?
    pub fn matches(&self, node: &Node) -> bool {
        if let Some(selector) = self.node_selector {
            let labels = node.metadata.labels.as_ref();
            let all = selector
                .iter()
                .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v));
            if !all {
                return false;
            }
        }
        match self.required {
            Some(selector) => selector
                .node_selector_terms
                .iter()
                .any(|term| term_matches(term, node)),
            None => true,
        }
    }

    /// The summed weights of the preferred terms `node` matches.
    pub fn preferred_weight(&self, node: &Node) -> i64 {
        self.preferred
            .iter()
            .filter(|t| t.weight != 0 && term_matches(&t.preference, node))
            .map(|t| i64::from(t.weight))
            .sum()
    }
}

impl FilterPlugin for NodeAffinity {
    fn name(&self) -> &'static str {
        "NodeAffinity"
    }

    /// Every node a decision visits has its node object (`Snapshot::nodes`),
    /// so a pod that requires nothing passes them all.
    fn skip(&self, state: &CycleState) -> bool {
        state.node_affinity.requires_nothing()
    }

    fn filter(&self, state: &CycleState, node: &NodeInfo) -> Status {
        match &node.node {
            Some(n) if state.node_affinity.matches(n) => Status::success(),
            _ => Status::unresolvable(ERR_REASON),
        }
    }
}

impl ScorePlugin for NodeAffinity {
    fn name(&self) -> &'static str {
        "NodeAffinity"
    }

    fn weight(&self) -> i64 {
        2
    }

    fn skip(&self, state: &CycleState) -> bool {
        state.node_affinity.preferred.is_empty()
    }

    /// The summed weights of the preferred terms the node matches.
    fn score(&self, state: &CycleState, node: &NodeInfo) -> i64 {
        match &node.node {
            Some(n) => state.node_affinity.preferred_weight(n),
            None => 0,
        }
    }

    fn normalize(&self, scores: &mut [i64]) {
        default_normalize(scores, false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::cache::Snapshot;
    use crate::scheduler::testing::{node, pod_with};
    use serde_json::{json, Value};

    fn required(terms: Value) -> Value {
        json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}}})
    }

    #[test]
    fn filter_applies_node_selector_and_required_terms() {
        let labels = json!({"berth.dev/pool": "gpu", "gpus": "4", "zone": "a"});
        let expr = |key: &str, op: &str, values: Value| json!([{"matchExpressions": [{"key": key, "operator": op, "values": values}]}]);
        let cases: Vec<(&str, Value, Value, bool)> = vec![
            ("nothing asked", json!(null), json!(null), true),
            (
                "selector matches",
                json!({"berth.dev/pool": "gpu"}),
                json!(null),
                true,
            ),
            (
                "selector differs",
                json!({"berth.dev/pool": "cpu"}),
                json!(null),
                false,
            ),
            (
                "selector key missing",
                json!({"other": "x"}),
                json!(null),
                false,
            ),
            (
                "In",
                json!(null),
                required(expr("zone", "In", json!(["a", "b"]))),
                true,
            ),
            (
                "In misses",
                json!(null),
                required(expr("zone", "In", json!(["b"]))),
                false,
            ),
            (
                "NotIn",
                json!(null),
                required(expr("zone", "NotIn", json!(["b"]))),
                true,
            ),
            (
                "NotIn on a missing label",
                json!(null),
                required(expr("nope", "NotIn", json!(["b"]))),
                true,
            ),
            (
                "Exists",
                json!(null),
                required(expr("zone", "Exists", json!(null))),
                true,
            ),
            (
                "DoesNotExist",
                json!(null),
                required(expr("zone", "DoesNotExist", json!(null))),
                false,
            ),
            (
                "Gt",
                json!(null),
                required(expr("gpus", "Gt", json!(["3"]))),
                true,
            ),
            (
                "Gt equal",
                json!(null),
                required(expr("gpus", "Gt", json!(["4"]))),
                false,
            ),
            (
                "Lt",
                json!(null),
                required(expr("gpus", "Lt", json!(["5"]))),
                true,
            ),
            (
                "Lt on a non-integer",
                json!(null),
                required(expr("zone", "Lt", json!(["5"]))),
                false,
            ),
            (
                "terms are ORed",
                json!(null),
                required(json!([
                {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["z"]}]},
                {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}])),
                true,
            ),
            (
                "expressions are ANDed",
                json!(null),
                required(json!([
                {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}, {"key": "gpus", "operator": "Lt", "values": ["2"]}]}])),
                false,
            ),
            (
                "an empty term matches nothing",
                json!(null),
                required(json!([{}])),
                false,
            ),
            (
                "matchFields on the name",
                json!(null),
                required(
                    json!([{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}]),
                ),
                true,
            ),
            (
                "matchFields on another name",
                json!(null),
                required(
                    json!([{"matchFields": [{"key": "metadata.name", "operator": "NotIn", "values": ["n1"]}]}]),
                ),
                false,
            ),
        ];
        let info = NodeInfo::new(node("n1", json!({}), json!({"labels": labels})));
        for (name, selector, affinity, fits) in cases {
            let p = pod_with(
                "p",
                json!({}),
                json!({"nodeSelector": selector, "affinity": affinity}),
                json!({}),
            );
            let state = CycleState::new(&p, &Snapshot::default());
            let status = FilterPlugin::filter(&NodeAffinity, &state, &info);
            assert_eq!(status.is_success(), fits, "{name}");
            if !fits {
                assert_eq!(status.reasons, vec![ERR_REASON.to_string()], "{name}");
            }
        }
    }

    #[test]
    fn score_sums_matching_preferred_weights() {
        let affinity = json!({"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 10, "preference": {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}},
            {"weight": 5, "preference": {"matchExpressions": [{"key": "disk", "operator": "Exists"}]}}]}});
        let p = pod_with("p", json!({}), json!({"affinity": affinity}), json!({}));
        let state = CycleState::new(&p, &Snapshot::default());
        let cases = [
            (json!({"zone": "a", "disk": "ssd"}), 15),
            (json!({"zone": "a"}), 10),
            (json!({"disk": "ssd"}), 5),
            (json!({}), 0),
        ];
        for (labels, want) in cases {
            let info = NodeInfo::new(node("n", json!({}), json!({"labels": labels.clone()})));
            assert_eq!(
                ScorePlugin::score(&NodeAffinity, &state, &info),
                want,
                "{labels}"
            );
        }
    }
}
