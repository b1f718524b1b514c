//! NodeResourcesFit: the pod's requests must fit in what the node's
//! allocatable leaves after the pods already placed there (cpu, memory,
//! ephemeral-storage, every extended resource such as `nvidia.com/gpu`, and
//! the pod count). A request larger than the whole node is unresolvable.
//! Requests and allocatable are integers worked out ahead (per decision and
//! per node change), so a node costs a few comparisons.

use super::super::cache::NodeInfo;
use super::super::framework::{Code, CycleState, FilterPlugin, Status};

/// The NodeResourcesFit plugin.
pub struct NodeResourcesFit;

impl FilterPlugin for NodeResourcesFit {
    fn name(&self) -> &'static str {
        "NodeResourcesFit"
    }

    fn filter(&self, state: &CycleState, node: &NodeInfo) -> Status {
        let mut reasons = Vec::new();
        let mut code = Code::Unschedulable;
        if node.pods.len() as i64 + 1 > node.allocatable.pods {
            reasons.push("Too many pods".to_owned());
        }
        let (request, allocatable, requested) =
            (&state.requests, &node.allocatable, &node.requested);
        let mut check = |name: &str, wanted: i64, allocatable: i64, requested: i64| {
            if wanted > 0 && wanted > allocatable - requested {
                reasons.push(format!("Insufficient {name}"));
                if wanted > allocatable {
                    code = Code::UnschedulableAndUnresolvable;
                }
            }
        };
        check(
            "cpu",
            request.milli_cpu,
            allocatable.milli_cpu,
            requested.milli_cpu,
        );
        check(
            "memory",
            request.memory,
            allocatable.memory,
            requested.memory,
        );
        check(
            "ephemeral-storage",
            request.ephemeral_storage,
            allocatable.ephemeral_storage,
            requested.ephemeral_storage,
        );
        for (name, wanted) in &request.scalar {
            check(name, *wanted, allocatable.get(name), requested.get(name));
        }
        if reasons.is_empty() {
            Status::success()
        } else {
            Status { code, reasons }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::cache::{PodEntry, Snapshot};
    use crate::scheduler::resources::pod_requests;
    use crate::scheduler::testing::{node, pod};
    use serde_json::json;
    use std::sync::Arc;

    #[test]
    fn requests_must_fit_what_is_left() {
        use Code::*;
        let allocatable = json!({"cpu": "4", "memory": "8Gi", "ephemeral-storage": "10Gi", "pods": "3", "nvidia.com/gpu": "2"});
        let used = json!({"cpu": "2", "memory": "4Gi", "nvidia.com/gpu": "1"});
        let cases: Vec<(&str, serde_json::Value, usize, Code, Vec<&str>)> = vec![
            (
                "fits",
                json!({"cpu": "2", "memory": "4Gi", "nvidia.com/gpu": "1"}),
                1,
                Success,
                vec![],
            ),
            ("nothing requested fits", json!({}), 1, Success, vec![]),
            (
                "cpu short",
                json!({"cpu": "3"}),
                1,
                Unschedulable,
                vec!["Insufficient cpu"],
            ),
            (
                "cpu beyond the node",
                json!({"cpu": "5"}),
                1,
                UnschedulableAndUnresolvable,
                vec!["Insufficient cpu"],
            ),
            (
                "memory and gpu short",
                json!({"memory": "5Gi", "nvidia.com/gpu": "2"}),
                1,
                Unschedulable,
                vec!["Insufficient memory", "Insufficient nvidia.com/gpu"],
            ),
            (
                "more gpus than the node has",
                json!({"nvidia.com/gpu": "8"}),
                1,
                UnschedulableAndUnresolvable,
                vec!["Insufficient nvidia.com/gpu"],
            ),
            (
                "an extended resource the node lacks",
                json!({"example.com/fpga": "1"}),
                1,
                UnschedulableAndUnresolvable,
                vec!["Insufficient example.com/fpga"],
            ),
            (
                "ephemeral storage",
                json!({"ephemeral-storage": "11Gi"}),
                1,
                UnschedulableAndUnresolvable,
                vec!["Insufficient ephemeral-storage"],
            ),
            (
                "pod count",
                json!({}),
                3,
                Unschedulable,
                vec!["Too many pods"],
            ),
        ];
        for (name, request, placed, code, reasons) in cases {
            let mut info = NodeInfo::new(node("n", allocatable.clone(), json!({})));
            for i in 0..placed {
                let p = if i == 0 {
                    pod("used", used.clone())
                } else {
                    pod(&format!("p{i}"), json!({}))
                };
                info.add_pod(
                    format!("default/p{i}"),
                    Arc::new(PodEntry {
                        requests: pod_requests(&p),
                        non_zero: (0, 0),
                        pod: Arc::new(p),
                    }),
                );
            }
            let incoming = pod("incoming", request);
            let state = CycleState::new(&incoming, &Snapshot::default());
            let status = NodeResourcesFit.filter(&state, &info);
            assert_eq!(status.code, code, "{name}");
            assert_eq!(status.reasons, reasons, "{name}");
        }
    }
}
