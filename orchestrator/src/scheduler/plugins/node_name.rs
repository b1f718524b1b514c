//! NodeName: a pod that names its node (`spec.nodeName`) fits only there.

use k8s_openapi::api::core::v1::Pod;

use super::super::cache::NodeInfo;
use super::super::framework::{CycleState, FilterPlugin, Status};

/// The NodeName plugin.
pub struct NodeName;

/// PreFilter: the node the pod names, if any (`CycleState::node_name`).
pub fn requested_node(pod: &Pod) -> Option<&str> {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .filter(|n| !n.is_empty())
}

impl FilterPlugin for NodeName {
    fn name(&self) -> &'static str {
        "NodeName"
    }

    fn skip(&self, state: &CycleState) -> bool {
        state.node_name.is_none()
    }

    fn filter(&self, state: &CycleState, node: &NodeInfo) -> Status {
        match state.node_name {
            Some(wanted) if wanted != &*node.name => {
                Status::unresolvable("node(s) didn't match the requested node name")
            }
            _ => Status::success(),
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
    fn only_the_named_node_fits() {
        let info = NodeInfo::new(node("n1", json!({}), json!({})));
        for (wanted, fits) in [
            (json!(null), true),
            (json!("n1"), true),
            (json!("n2"), false),
        ] {
            let p = pod_with("p", json!({}), json!({"nodeName": wanted}), json!({}));
            let state = CycleState::new(&p, &Snapshot::default());
            assert_eq!(
                NodeName.filter(&state, &info).is_success(),
                fits,
                "{wanted}"
            );
        }
    }
}
