//! InterPodAffinity, required anti-affinity only: a pod whose
//! `podAntiAffinity.requiredDuringScheduling…` term matches pods in a
//! topology domain (typically `kubernetes.io/hostname`) stays out of that
//! domain, and so does a pod matched by an anti-affinity term of a pod
//! already there. Domains are worked out once per decision (PreFilter).

use std::collections::{BTreeMap, HashSet};

use berth_api::selector::LabelSelector;
use k8s_openapi::api::core::v1::{Pod, PodAffinityTerm};

use super::super::cache::{NodeInfo, Snapshot};
use super::super::framework::{CycleState, FilterPlugin, Status};

/// Upstream's reason when the incoming pod's anti-affinity rules out the node.
pub const ERR_ANTI_AFFINITY: &str = "node(s) didn't match pod anti-affinity rules";
/// Upstream's reason when a placed pod's anti-affinity rules out the node.
pub const ERR_EXISTING_ANTI_AFFINITY: &str =
    "node(s) didn't satisfy existing pods anti-affinity rules";

/// The PreFilter result: `(topology key, value)` domains the pod must avoid.
#[derive(Debug, Default)]
pub struct AntiAffinityState {
    /// Domains holding pods the incoming pod's own terms match.
    pub own: HashSet<(String, String)>,
    /// Domains whose placed pods' terms match the incoming pod.
    pub existing: HashSet<(String, String)>,
}

fn required_anti_affinity(pod: &Pod) -> &[PodAffinityTerm] {
    pod.spec
        .as_ref()
        .and_then(|s| s.affinity.as_ref())
        .and_then(|a| a.pod_anti_affinity.as_ref())
        .and_then(|a| {
            a.required_during_scheduling_ignored_during_execution
                .as_deref()
        })
        .unwrap_or(&[])
}

/// Does `term` (declared by a pod in `owner_namespace`) select `candidate`?
fn term_selects(term: &PodAffinityTerm, owner_namespace: &str, candidate: &Pod) -> bool {
    let namespace = candidate.metadata.namespace.as_deref().unwrap_or("default");
    let all_namespaces = term
        .namespace_selector
        .as_ref()
        .is_some_and(|s| s.match_labels.is_none() && s.match_expressions.is_none());
    let in_scope = all_namespaces
        || match term.namespaces.as_deref() {
            Some(list) if !list.is_empty() => list.iter().any(|n| n == namespace),
            _ => namespace == owner_namespace,
        };
    if !in_scope {
        return false;
    }
    let Some(selector) = term
        .label_selector
        .as_ref()
        .and_then(|s| LabelSelector::from_label_selector(s).ok())
    else {
        return false;
    };
    let empty = BTreeMap::new();
    selector.matches(candidate.metadata.labels.as_ref().unwrap_or(&empty))
}

impl AntiAffinityState {
    /// True when no domain is ruled out (the common case, checked first).
    pub fn is_empty(&self) -> bool {
        self.own.is_empty() && self.existing.is_empty()
    }

    /// Finds the domains `pod` must avoid.
    pub fn new(pod: &Pod, snapshot: &Snapshot) -> Self {
        let mut state = AntiAffinityState::default();
        let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
        let terms = required_anti_affinity(pod);
        if !terms.is_empty() {
            for info in snapshot.nodes() {
                for term in terms {
                    let Some(value) = info.labels().and_then(|l| l.get(&term.topology_key)) else {
                        continue;
                    };
                    if info
                        .pods
                        .values()
                        .any(|e| term_selects(term, namespace, &e.pod))
                    {
                        state.own.insert((term.topology_key.clone(), value.clone()));
                    }
                }
            }
        }
        for (entry, info) in snapshot.pods_with_anti_affinity() {
            let owner_namespace = entry.pod.metadata.namespace.as_deref().unwrap_or("default");
            for term in required_anti_affinity(&entry.pod) {
                if !term_selects(term, owner_namespace, pod) {
                    continue;
                }
                if let Some(value) = info.labels().and_then(|l| l.get(&term.topology_key)) {
                    state
                        .existing
                        .insert((term.topology_key.clone(), value.clone()));
                }
            }
        }
        state
    }
}

fn in_any(node: &NodeInfo, domains: &HashSet<(String, String)>) -> bool {
    domains
        .iter()
        .any(|(key, value)| node.labels().and_then(|l| l.get(key)) == Some(value))
}

/// The InterPodAffinity plugin (required anti-affinity).
pub struct InterPodAffinity;

impl FilterPlugin for InterPodAffinity {
    fn name(&self) -> &'static str {
        "InterPodAffinity"
    }

    fn skip(&self, state: &CycleState) -> bool {
        state.anti_affinity.is_empty()
    }

    fn filter(&self, state: &CycleState, node: &NodeInfo) -> Status {
        let domains = &state.anti_affinity;
        if domains.is_empty() {
            return Status::success();
        }
        if in_any(node, &domains.existing) {
            return Status::unschedulable(ERR_EXISTING_ANTI_AFFINITY);
        }
        if in_any(node, &domains.own) {
            return Status::unschedulable(ERR_ANTI_AFFINITY);
        }
        Status::success()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::testing::{node, pod_with};
    use serde_json::{json, Value};

    const HOSTNAME: &str = "kubernetes.io/hostname";

    fn anti(app: &str) -> Value {
        json!({"affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"topologyKey": HOSTNAME, "labelSelector": {"matchLabels": {"app": app}}}]}}})
    }

    fn placed(name: &str, node: &str, spec: Value, labels: Value) -> Pod {
        let mut p = pod_with(name, json!({}), spec, labels);
        p.spec.as_mut().unwrap().node_name = Some(node.into());
        p
    }

    fn apply(snapshot: &mut Snapshot, pod: Pod) {
        snapshot.apply_pod(&std::sync::Arc::new(pod));
    }

    #[test]
    fn required_anti_affinity_on_hostname() {
        let mut snapshot = Snapshot::default();
        for name in ["n1", "n2", "n3"] {
            snapshot.apply_node(node(name, json!({}), json!({"labels": {HOSTNAME: name}})));
        }
        apply(
            &mut snapshot,
            placed("web-1", "n1", json!({}), json!({"app": "web"})),
        );
        apply(
            &mut snapshot,
            placed("db-1", "n2", anti("cache"), json!({"app": "db"})),
        );
        let mut other_ns = placed("web-x", "n3", json!({}), json!({"app": "web"}));
        other_ns.metadata.namespace = Some("other".into());
        apply(&mut snapshot, other_ns);
        let cases = [
            (
                "own term matches a pod there",
                anti("web"),
                json!({"app": "web"}),
                "n1",
                Some(ERR_ANTI_AFFINITY),
            ),
            (
                "own term, other node",
                anti("web"),
                json!({"app": "web"}),
                "n2",
                None,
            ),
            (
                "pods of other namespaces do not count",
                anti("web"),
                json!({"app": "web"}),
                "n3",
                None,
            ),
            (
                "an existing pod's term matches the newcomer",
                json!({}),
                json!({"app": "cache"}),
                "n2",
                Some(ERR_EXISTING_ANTI_AFFINITY),
            ),
            (
                "an existing pod's term does not match",
                json!({}),
                json!({"app": "other"}),
                "n2",
                None,
            ),
        ];
        for (name, spec, labels, node_name, want) in cases {
            let p = pod_with("new", json!({}), spec, labels);
            let state = CycleState::new(&p, &snapshot);
            let status = InterPodAffinity.filter(&state, snapshot.node(node_name).unwrap());
            match want {
                None => assert!(status.is_success(), "{name}: {status:?}"),
                Some(reason) => assert_eq!(status.reasons, vec![reason.to_string()], "{name}"),
            }
        }
    }
}
