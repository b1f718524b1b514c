//! What a DaemonSet sync does to its pods, node by node (upstream's `manage`
//! and `podsShouldBeOnNode`): create a pod where one should run and none is,
//! delete failed (behind a per-node backoff) and succeeded pods, surplus pods
//! (all but the oldest; with surge, the oldest old and new), pods on nodes they
//! may no longer stay on, and unscheduled pods meant for nodes that are gone.
//! Pure: the caller carries the plan out.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;

use super::placement::Fit;
use crate::controllers::history::CONTROLLER_REVISION_HASH;
use crate::controllers::workload::pod_is_ready;

/// The pods of one DaemonSet grouped by the node they are on or meant for.
pub type NodePods<'a> = BTreeMap<String, Vec<&'a Pod>>;

/// What to do to the pods.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Nodes that need a daemon pod.
    pub create_on: Vec<String>,
    /// Pods to delete, by name.
    pub delete: Vec<String>,
    /// Failed pods among `delete` as `(pod, node)`, for the FailedDaemonPod event and the backoff.
    pub failed: Vec<(String, String)>,
    /// Nodes whose failed pod waits out its backoff (come back later).
    pub backing_off: Vec<String>,
}

fn phase(pod: &Pod) -> Option<&str> {
    pod.status.as_ref().and_then(|s| s.phase.as_deref())
}

/// Oldest first, as upstream's `podByCreationTimestampAndPhase` (then by name).
pub fn oldest_first(pods: &mut [&Pod]) {
    pods.sort_by(|a, b| {
        let at = |p: &Pod| p.metadata.creation_timestamp.as_ref().map(|t| t.0);
        at(a)
            .cmp(&at(b))
            .then_with(|| a.name_any().cmp(&b.name_any()))
    });
}

/// The plan for every node: `nodes` maps each existing node to its fit,
/// `in_backoff(node)` says a failed pod there was deleted too recently.
pub fn plan(
    nodes: &BTreeMap<String, Fit>,
    pods: &NodePods,
    hash: &str,
    allow_surge: bool,
    in_backoff: impl Fn(&str) -> bool,
) -> Plan {
    let mut plan = Plan::default();
    let none = Vec::new();
    for (node, fit) in nodes {
        let on_node = pods.get(node).unwrap_or(&none);
        if fit.should_run && on_node.is_empty() {
            plan.create_on.push(node.clone());
        } else if fit.should_continue_running {
            let mut running = Vec::new();
            for pod in on_node
                .iter()
                .filter(|p| p.metadata.deletion_timestamp.is_none())
            {
                match phase(pod) {
                    Some("Failed") if in_backoff(node) => {
                        if !plan.backing_off.contains(node) {
                            plan.backing_off.push(node.clone());
                        }
                    }
                    Some("Failed") => {
                        plan.failed.push((pod.name_any(), node.clone()));
                        plan.delete.push(pod.name_any());
                    }
                    Some("Succeeded") => plan.delete.push(pod.name_any()),
                    _ => running.push(*pod),
                }
            }
            plan.delete.extend(surplus(running, hash, allow_surge));
        } else {
            plan.delete.extend(
                on_node
                    .iter()
                    .filter(|p| p.metadata.deletion_timestamp.is_none())
                    .map(|p| p.name_any()),
            );
        }
    }
    for (node, on_node) in pods {
        if nodes.contains_key(node) {
            continue;
        }
        plan.delete.extend(
            on_node
                .iter()
                .filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_none())
                .map(|p| p.name_any()),
        );
    }
    plan
}

/// Running pods beyond what one node keeps: all but the oldest; with surge,
/// the oldest new and oldest old pod may both stay while the new one is not
/// Ready and the old one is.
fn surplus(mut running: Vec<&Pod>, hash: &str, allow_surge: bool) -> Vec<String> {
    if running.len() <= 1 {
        return Vec::new();
    }
    oldest_first(&mut running);
    if !allow_surge {
        return running[1..].iter().map(|p| p.name_any()).collect();
    }
    let mut delete = Vec::new();
    let (mut oldest_new, mut oldest_old): (Option<&Pod>, Option<&Pod>) = (None, None);
    for pod in running {
        let is_new = pod
            .labels()
            .get(CONTROLLER_REVISION_HASH)
            .map(String::as_str)
            == Some(hash);
        let slot = if is_new {
            &mut oldest_new
        } else {
            &mut oldest_old
        };
        if slot.is_none() {
            *slot = Some(pod);
        } else {
            delete.push(pod.name_any());
        }
    }
    if let (Some(new), Some(old)) = (oldest_new, oldest_old) {
        if !pod_is_ready(old) || pod_is_ready(new) {
            delete.push(old.name_any());
        }
    }
    delete
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(name: &str, age: u32, hash: &str, phase: &str, ready: bool) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": name, "labels": {"controller-revision-hash": hash},
                "creationTimestamp": format!("2026-01-01T00:{age:02}:00Z")},
            "spec": {"nodeName": "n", "containers": []},
            "status": {"phase": phase, "conditions": [
                {"type": "Ready", "status": if ready { "True" } else { "False" }}]}
        }))
        .unwrap()
    }

    #[test]
    fn plans_per_node_as_upstream() {
        let old_ready = pod("old", 1, "h1", "Running", true);
        let new_unready = pod("new", 2, "h2", "Running", false);
        let new_ready = pod("new-ready", 3, "h2", "Running", true);
        let failed = pod("failed", 1, "h2", "Failed", false);
        let done = pod("done", 1, "h2", "Succeeded", false);
        let mut unscheduled = pod("unscheduled", 1, "h2", "Pending", false);
        unscheduled.spec.as_mut().unwrap().node_name = None;
        struct Case<'a> {
            name: &'a str,
            fit: Fit,
            pods: Vec<&'a Pod>,
            surge: bool,
            backoff: bool,
            expected: Plan,
        }
        let plan_of = |create: &[&str], delete: &[&str]| Plan {
            create_on: create.iter().map(|s| s.to_string()).collect(),
            delete: delete.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
        let cases = [
            Case {
                name: "missing pod is created",
                fit: Fit::new(true, true),
                pods: vec![],
                surge: false,
                backoff: false,
                expected: plan_of(&["n"], &[]),
            },
            Case {
                name: "node no longer fits",
                fit: Fit::new(false, false),
                pods: vec![&old_ready],
                surge: false,
                backoff: false,
                expected: plan_of(&[], &["old"]),
            },
            Case {
                name: "NoSchedule taint keeps the pod",
                fit: Fit::new(false, true),
                pods: vec![&old_ready],
                surge: false,
                backoff: false,
                expected: plan_of(&[], &[]),
            },
            Case {
                name: "all but the oldest without surge",
                fit: Fit::new(true, true),
                pods: vec![&new_unready, &old_ready],
                surge: false,
                backoff: false,
                expected: plan_of(&[], &["new"]),
            },
            Case {
                name: "surge keeps a Ready old pod beside an unready new one",
                fit: Fit::new(true, true),
                pods: vec![&new_unready, &old_ready],
                surge: true,
                backoff: false,
                expected: plan_of(&[], &[]),
            },
            Case {
                name: "surge drops the old pod once the new is Ready",
                fit: Fit::new(true, true),
                pods: vec![&new_ready, &old_ready],
                surge: true,
                backoff: false,
                expected: plan_of(&[], &["old"]),
            },
            Case {
                name: "succeeded pod is deleted",
                fit: Fit::new(true, true),
                pods: vec![&done],
                surge: false,
                backoff: false,
                expected: plan_of(&[], &["done"]),
            },
            Case {
                name: "failed pod in backoff waits",
                fit: Fit::new(true, true),
                pods: vec![&failed],
                surge: false,
                backoff: true,
                expected: Plan {
                    backing_off: vec!["n".into()],
                    ..Default::default()
                },
            },
            Case {
                name: "failed pod is deleted",
                fit: Fit::new(true, true),
                pods: vec![&failed],
                surge: false,
                backoff: false,
                expected: Plan {
                    delete: vec!["failed".into()],
                    failed: vec![("failed".into(), "n".into())],
                    ..Default::default()
                },
            },
        ];
        for case in cases {
            let nodes = BTreeMap::from([("n".to_string(), case.fit)]);
            let pods = NodePods::from([("n".to_string(), case.pods)]);
            let got = plan(&nodes, &pods, "h2", case.surge, |_| case.backoff);
            assert_eq!(got, case.expected, "{}", case.name);
        }
        let nodes = BTreeMap::new();
        let pods = NodePods::from([("gone".to_string(), vec![&unscheduled, &old_ready])]);
        assert_eq!(
            plan(&nodes, &pods, "h2", false, |_| false),
            plan_of(&[], &["unscheduled"]),
            "unscheduled pods for a node that is gone"
        );
    }
}
