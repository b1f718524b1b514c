//! TaintToleration: a node's NoSchedule/NoExecute taints keep out pods that
//! do not tolerate them; PreferNoSchedule taints only lower the node's score.

use k8s_openapi::api::core::v1::Toleration;

use super::super::cache::NodeInfo;
use super::super::framework::{default_normalize, CycleState, FilterPlugin, ScorePlugin, Status};
use super::{tolerated, tolerates};

/// The TaintToleration plugin.
pub struct TaintToleration;

/// PreScore: the tolerations that can tolerate a PreferNoSchedule taint
/// (no effect, or that one), picked once per decision
/// (`CycleState::prefer_no_schedule_tolerations`).
pub fn prefer_no_schedule_tolerations(tolerations: &[Toleration]) -> Vec<&Toleration> {
    tolerations
        .iter()
        .filter(|t| {
            matches!(
                t.effect.as_deref(),
                None | Some("") | Some("PreferNoSchedule")
            )
        })
        .collect()
}

impl FilterPlugin for TaintToleration {
    fn name(&self) -> &'static str {
        "TaintToleration"
    }

    fn filter(&self, state: &CycleState, node: &NodeInfo) -> Status {
        let untolerated = node.taints.iter().find(|taint| {
            matches!(taint.effect.as_str(), "NoSchedule" | "NoExecute")
                && !tolerated(state.tolerations, taint)
        });
        match untolerated {
            Some(taint) => Status::unresolvable(format!(
                "node(s) had untolerated taint {{{}: {}}}",
                taint.key,
                taint.value.as_deref().unwrap_or("")
            )),
            None => Status::success(),
        }
    }
}

impl ScorePlugin for TaintToleration {
    fn name(&self) -> &'static str {
        "TaintToleration"
    }

    fn weight(&self) -> i64 {
        3
    }

    /// How many PreferNoSchedule taints the pod does not tolerate (fewer is better).
    fn score(&self, state: &CycleState, node: &NodeInfo) -> i64 {
        let preferring = &state.prefer_no_schedule_tolerations;
        node.taints
            .iter()
            .filter(|taint| {
                taint.effect == "PreferNoSchedule"
                    && !preferring.iter().any(|t| tolerates(t, taint))
            })
            .count() as i64
    }

    fn normalize(&self, scores: &mut [i64]) {
        default_normalize(scores, true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::cache::{NodeInfo, Snapshot};
    use crate::scheduler::framework::Code;
    use crate::scheduler::testing::{node, pod_with};
    use serde_json::json;

    #[test]
    fn filter_rejects_untolerated_hard_taints_only() {
        let gpu = json!([{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}]);
        let tolerate =
            json!([{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]);
        let cases = [
            ("no taints", json!([]), json!([]), None),
            (
                "untolerated NoSchedule",
                gpu.clone(),
                json!([]),
                Some("node(s) had untolerated taint {nvidia.com/gpu: present}"),
            ),
            ("tolerated", gpu.clone(), tolerate.clone(), None),
            (
                "NoExecute counts",
                json!([{"key": "k", "effect": "NoExecute"}]),
                json!([]),
                Some("node(s) had untolerated taint {k: }"),
            ),
            (
                "PreferNoSchedule never filters",
                json!([{"key": "k", "effect": "PreferNoSchedule"}]),
                json!([]),
                None,
            ),
        ];
        for (name, taints, tolerations, want) in cases {
            let info = NodeInfo::new(node("n", json!({"cpu": "1"}), json!({"taints": taints})));
            let p = pod_with(
                "p",
                json!({}),
                json!({"tolerations": tolerations}),
                json!({}),
            );
            let state = CycleState::new(&p, &Snapshot::default());
            let status = TaintToleration.filter(&state, &info);
            match want {
                None => assert!(status.is_success(), "{name}: {status:?}"),
                Some(reason) => {
                    assert_eq!(status.code, Code::UnschedulableAndUnresolvable, "{name}");
                    assert_eq!(status.reasons, vec![reason.to_string()], "{name}");
                }
            }
        }
    }

    #[test]
    fn not_ready_nodes_are_filtered_through_their_implied_taint() {
        let mut n = node("n", json!({"cpu": "1"}), json!({}));
        n.status.as_mut().unwrap().conditions = Some(vec![Default::default()]);
        let info = NodeInfo::new(n);
        let p = pod_with("p", json!({}), json!({}), json!({}));
        let state = CycleState::new(&p, &Snapshot::default());
        assert_eq!(
            TaintToleration.filter(&state, &info).reasons,
            vec!["node(s) had untolerated taint {node.kubernetes.io/not-ready: }".to_string()]
        );
    }

    #[test]
    fn score_counts_untolerated_prefer_no_schedule_taints() {
        let soft = json!([{"key": "a", "effect": "PreferNoSchedule"}, {"key": "b", "effect": "PreferNoSchedule"}]);
        let cases = [
            (json!([]), 2),
            (json!([{"key": "a", "operator": "Exists"}]), 1),
            (
                json!([{"operator": "Exists", "effect": "PreferNoSchedule"}]),
                0,
            ),
            (json!([{"operator": "Exists", "effect": "NoSchedule"}]), 2),
        ];
        let info = NodeInfo::new(node("n", json!({"cpu": "1"}), json!({"taints": soft})));
        for (tolerations, want) in cases {
            let p = pod_with(
                "p",
                json!({}),
                json!({"tolerations": tolerations.clone()}),
                json!({}),
            );
            let state = CycleState::new(&p, &Snapshot::default());
            assert_eq!(
                ScorePlugin::score(&TaintToleration, &state, &info),
                want,
                "{tolerations}"
            );
        }
    }
}
