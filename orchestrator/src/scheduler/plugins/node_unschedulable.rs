//! NodeUnschedulable: cordoned nodes (`spec.unschedulable`) take no new pods
//! unless the pod tolerates `node.kubernetes.io/unschedulable:NoSchedule`.
//! Both halves are worked out ahead: the cordon when the node changes
//! (`NodeInfo::unschedulable`), the toleration once per decision.

use k8s_openapi::api::core::v1::{Taint, Toleration};

use super::super::cache::NodeInfo;
use super::super::framework::{CycleState, FilterPlugin, Status};
use super::tolerated;

/// The taint key a pod tolerates to land on a cordoned node.
pub const TAINT_UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";

/// The NodeUnschedulable plugin.
pub struct NodeUnschedulable;

/// PreFilter: do `tolerations` let the pod onto cordoned nodes
/// (`CycleState::tolerates_unschedulable`)?
pub fn tolerates_cordon(tolerations: &[Toleration]) -> bool {
    if tolerations.is_empty() {
        return false;
    }
    let taint = Taint {
        key: TAINT_UNSCHEDULABLE.into(),
        effect: "NoSchedule".into(),
        ..Default::default()
    };
    tolerated(tolerations, &taint)
}

impl FilterPlugin for NodeUnschedulable {
    fn name(&self) -> &'static str {
        "NodeUnschedulable"
    }

    fn skip(&self, state: &CycleState) -> bool {
        state.tolerates_unschedulable
    }

    fn filter(&self, state: &CycleState, node: &NodeInfo) -> Status {
        if !node.unschedulable || state.tolerates_unschedulable {
            Status::success()
        } else {
            Status::unresolvable("node(s) were unschedulable")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::cache::Snapshot;
    use crate::scheduler::testing::{node, pod_with};
    use serde_json::json;

    #[test]
    fn cordoned_nodes_need_a_toleration() {
        let tolerate =
            json!([{"key": TAINT_UNSCHEDULABLE, "operator": "Exists", "effect": "NoSchedule"}]);
        let cases = [
            (false, json!([]), true),
            (true, json!([]), false),
            (true, tolerate, true),
        ];
        for (unschedulable, tolerations, want) in cases {
            let info = NodeInfo::new(node(
                "n",
                json!({}),
                json!({"unschedulable": unschedulable}),
            ));
            let p = pod_with(
                "p",
                json!({}),
                json!({"tolerations": tolerations}),
                json!({}),
            );
            let state = CycleState::new(&p, &Snapshot::default());
            let status = NodeUnschedulable.filter(&state, &info);
            assert_eq!(status.is_success(), want, "{unschedulable} {tolerations}");
            if !want {
                assert_eq!(
                    status.reasons,
                    vec!["node(s) were unschedulable".to_string()]
                );
            }
        }
    }
}
