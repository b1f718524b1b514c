//! The scheduler's view of the cluster: one `NodeInfo` per node with the pods
//! assigned (or assumed) there and their summed requests, kept up to date
//! incrementally from watch events so a decision never re-adds every pod.
//! What the plugins read of a node on every decision is worked out once, when
//! the node changes. Pods are shared (`Arc`), never copied in. Pure data: the
//! watch loop feeds it, the plugins read it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Pod, Taint};

use super::plugins::allocated::Strategy;
use super::preemption::nominator::Nominator;
use super::resources::{node_allocatable, PodRequests, Resources};

/// The taint upstream's node lifecycle controller puts on nodes that are not Ready.
pub const TAINT_NOT_READY: &str = "node.kubernetes.io/not-ready";
/// The taint upstream puts on nodes whose Ready condition is Unknown.
pub const TAINT_UNREACHABLE: &str = "node.kubernetes.io/unreachable";

/// `namespace/name` of a pod.
pub fn pod_key(pod: &Pod) -> String {
    format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or("default"),
        pod.metadata.name.as_deref().unwrap_or("")
    )
}

/// A pod placed on a node, with its requests computed once.
#[derive(Debug)]
pub struct PodEntry {
    /// The pod as last seen, shared with the watch's cache and in-flight
    /// bindings. An assumed pod is the pending one: its `spec.nodeName` is
    /// still empty, the node it is on is the one it is placed on.
    pub pod: Arc<Pod>,
    /// Its effective requests.
    pub requests: Resources,
    /// Its CPU and memory as scoring counts them.
    pub non_zero: (i64, i64),
}

impl PodEntry {
    /// The entry of `pod`, its requests computed once.
    pub fn of(pod: Arc<Pod>) -> Arc<Self> {
        let PodRequests { requests, non_zero } = PodRequests::of(&pod);
        Arc::new(PodEntry {
            pod,
            requests,
            non_zero,
        })
    }
}

/// One node and what is placed on it. The fields after `node` are derived
/// from it when it changes (or from its pods when they change), because a
/// decision reads them for hundreds of nodes and must not walk Node objects.
/// A clone is shallow (pods and the node are shared): preemption filters a
/// copy with pods removed or added.
#[derive(Debug, Clone)]
pub struct NodeInfo {
    /// The node's name.
    pub name: Arc<str>,
    /// The node object; `None` while only pods bound to it are known.
    pub node: Option<Arc<Node>>,
    /// What it offers.
    pub allocatable: Resources,
    /// What its pods request in sum.
    pub requested: Resources,
    /// What its pods request as scoring counts it (cpu, memory).
    pub non_zero_requested: (i64, i64),
    /// Its pods by `namespace/name`.
    pub pods: HashMap<String, Arc<PodEntry>>,
    /// Its taints, plus `node.kubernetes.io/not-ready` (or `unreachable`) when
    /// its Ready condition is not True and the taint is not there yet — what
    /// upstream's node lifecycle controller would add.
    pub taints: Vec<Taint>,
    /// Cordoned (`spec.unschedulable`), for NodeUnschedulable.
    pub unschedulable: bool,
    /// The strategy its `berth.dev/scoring` label picks, for NodeResourcesAllocated.
    pub scoring: Strategy,
}

impl NodeInfo {
    fn placeholder(name: &str) -> Self {
        NodeInfo {
            name: Arc::from(name),
            node: None,
            allocatable: Resources::default(),
            requested: Resources::default(),
            non_zero_requested: (0, 0),
            pods: HashMap::new(),
            taints: Vec::new(),
            unschedulable: false,
            scoring: Strategy::LeastAllocated,
        }
    }

    /// A node with no pods yet (for tests and new nodes).
    pub fn new(node: Node) -> Self {
        let name = node.metadata.name.clone().unwrap_or_default();
        let mut info = NodeInfo::placeholder(&name);
        info.set_node(node);
        info
    }

    /// Replaces the node object and everything derived from it.
    fn set_node(&mut self, node: Node) {
        self.allocatable = node_allocatable(&node);
        self.taints = effective_taints(&node);
        self.unschedulable = node
            .spec
            .as_ref()
            .and_then(|s| s.unschedulable)
            .unwrap_or(false);
        self.scoring = Strategy::from_labels(node.metadata.labels.as_ref());
        self.node = Some(Arc::new(node));
    }

    /// The node's labels.
    pub fn labels(&self) -> Option<&BTreeMap<String, String>> {
        self.node.as_ref().and_then(|n| n.metadata.labels.as_ref())
    }

    /// Adds a pod's requests.
    pub fn add_pod(&mut self, key: String, entry: Arc<PodEntry>) {
        self.requested.add(&entry.requests);
        self.non_zero_requested.0 += entry.non_zero.0;
        self.non_zero_requested.1 += entry.non_zero.1;
        if let Some(old) = self.pods.insert(key, entry) {
            self.subtract(&old);
        }
    }

    /// Removes a pod's requests.
    pub fn remove_pod(&mut self, key: &str) {
        if let Some(old) = self.pods.remove(key) {
            self.subtract(&old);
        }
    }

    fn subtract(&mut self, entry: &PodEntry) {
        self.requested.sub(&entry.requests);
        self.non_zero_requested.0 -= entry.non_zero.0;
        self.non_zero_requested.1 -= entry.non_zero.1;
    }
}

/// The node's taints plus the not-ready/unreachable taint its Ready
/// condition implies.
pub fn effective_taints(node: &Node) -> Vec<Taint> {
    let mut taints = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default();
    let ready = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
        .map(|c| c.status.as_str());
    let implied = match ready {
        Some("True") => None,
        Some("Unknown") => Some(TAINT_UNREACHABLE),
        _ => Some(TAINT_NOT_READY),
    };
    if let Some(key) = implied {
        let present = taints
            .iter()
            .any(|t| t.key == TAINT_NOT_READY || t.key == TAINT_UNREACHABLE);
        if !present {
            taints.push(Taint {
                key: key.to_owned(),
                effect: "NoSchedule".to_owned(),
                ..Default::default()
            });
        }
    }
    taints
}

/// What of a node matters to scheduling; a change in it can make a pending pod fit.
fn scheduling_signature(info: &NodeInfo) -> impl PartialEq {
    (
        info.allocatable.clone(),
        info.taints.clone(),
        info.labels().cloned(),
        info.unschedulable,
    )
}

/// All nodes and placed pods; the snapshot every decision reads.
#[derive(Debug, Default)]
pub struct Snapshot {
    nodes: Vec<NodeInfo>,
    index: HashMap<Arc<str>, usize>,
    /// Pods bound to nodes the cache has not seen (yet).
    orphans: HashMap<String, NodeInfo>,
    /// Which node each placed pod is on.
    placement: HashMap<String, Arc<str>>,
    /// Placed pods that declare required pod anti-affinity.
    anti_affinity: HashSet<String>,
    /// Pods assumed on a node before the watch has shown them bound.
    assumed: HashSet<String>,
    /// Pending pods nominated to nodes by preemption.
    nominator: Nominator,
    /// Pods this scheduler chose as preemption victims, until they are gone.
    preempted: HashSet<String>,
    /// Claims, volumes and StorageClasses, for VolumeBinding.
    pub volumes: super::plugins::volume_binding::objects::VolumeObjects,
}

fn has_required_anti_affinity(pod: &Pod) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.affinity.as_ref())
        .and_then(|a| a.pod_anti_affinity.as_ref())
        .and_then(|a| {
            a.required_during_scheduling_ignored_during_execution
                .as_ref()
        })
        .is_some_and(|terms| !terms.is_empty())
}

fn is_terminated(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

impl Snapshot {
    /// The nodes a pod may be placed on (every node object the cache knows;
    /// each has its `node`), in a stable order a decision walks round robin.
    pub fn nodes(&self) -> &[NodeInfo] {
        &self.nodes
    }

    /// One node by name.
    pub fn node(&self, name: &str) -> Option<&NodeInfo> {
        self.index.get(name).map(|i| &self.nodes[*i])
    }

    /// Placed pods that carry required anti-affinity terms, with their node.
    pub fn pods_with_anti_affinity(&self) -> impl Iterator<Item = (&PodEntry, &NodeInfo)> + '_ {
        self.anti_affinity.iter().filter_map(|key| {
            let node = self.node(self.placement.get(key)?)?;
            Some((node.pods.get(key)?.as_ref(), node))
        })
    }

    /// The pods nominated to nodes by preemption.
    pub fn nominator(&self) -> &Nominator {
        &self.nominator
    }

    /// The nominations, to change.
    pub fn nominator_mut(&mut self) -> &mut Nominator {
        &mut self.nominator
    }

    /// Records that this scheduler preempted `key`: until the pod is gone,
    /// its preemptor waits instead of preempting again.
    pub fn mark_preempted(&mut self, key: &str) {
        self.preempted.insert(key.to_owned());
    }

    /// Forgets that `key` was preempted (its deletion failed).
    pub fn unmark_preempted(&mut self, key: &str) {
        self.preempted.remove(key);
    }

    /// Was `key` preempted by this scheduler and is it not gone yet?
    pub fn is_preempted(&self, key: &str) -> bool {
        self.preempted.contains(key)
    }

    /// Is this pod assumed (placed locally, binding not yet seen)?
    pub fn is_assumed(&self, key: &str) -> bool {
        self.assumed.contains(key)
    }

    /// Which node a pod is placed (or assumed) on.
    pub fn placement(&self, key: &str) -> Option<&str> {
        self.placement.get(key).map(|n| &**n)
    }

    fn node_mut(&mut self, name: &str) -> &mut NodeInfo {
        match self.index.get(name) {
            Some(i) => &mut self.nodes[*i],
            None => self
                .orphans
                .entry(name.to_owned())
                .or_insert_with(|| NodeInfo::placeholder(name)),
        }
    }

    /// Adds or updates a node; true when something scheduling depends on
    /// changed (a new node, allocatable, labels, taints, readiness, cordon).
    pub fn apply_node(&mut self, node: Node) -> bool {
        let name = node.metadata.name.clone().unwrap_or_default();
        if let Some(i) = self.index.get(name.as_str()) {
            let info = &mut self.nodes[*i];
            let before = scheduling_signature(info);
            info.set_node(node);
            return before != scheduling_signature(info);
        }
        let mut info = self
            .orphans
            .remove(&name)
            .unwrap_or_else(|| NodeInfo::placeholder(&name));
        info.set_node(node);
        self.index.insert(info.name.clone(), self.nodes.len());
        self.nodes.push(info);
        true
    }

    /// Forgets a node; its pods stay accounted in case it comes back.
    pub fn delete_node(&mut self, name: &str) {
        let Some(i) = self.index.remove(name) else {
            return;
        };
        let mut info = self.nodes.swap_remove(i);
        if let Some(moved) = self.nodes.get(i) {
            self.index.insert(moved.name.clone(), i);
        }
        info.node = None;
        if !info.pods.is_empty() {
            self.orphans.insert(name.to_owned(), info);
        }
    }

    /// Names of every node object known.
    pub fn node_names(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.name.to_string()).collect()
    }

    fn place(&mut self, key: String, pod: Arc<Pod>, node: &str) {
        if self.placement.get(&key).is_some_and(|n| &**n != node) {
            self.unplace(&key);
        }
        let entry = PodEntry::of(pod.clone());
        if has_required_anti_affinity(&pod) {
            self.anti_affinity.insert(key.clone());
        } else {
            self.anti_affinity.remove(&key);
        }
        let info = self.node_mut(node);
        let name = info.name.clone();
        info.add_pod(key.clone(), entry);
        self.placement.insert(key, name);
    }

    fn unplace(&mut self, key: &str) -> bool {
        self.preempted.remove(key);
        let Some(node) = self.placement.remove(key) else {
            return false;
        };
        self.anti_affinity.remove(key);
        if let Some(i) = self.index.get(&node) {
            self.nodes[*i].remove_pod(key);
        } else if let Some(orphan) = self.orphans.get_mut(&*node) {
            orphan.remove_pod(key);
            if orphan.pods.is_empty() {
                self.orphans.remove(&*node);
            }
        }
        true
    }

    /// Applies a pod as the watch shows it: bound and running pods are
    /// placed, terminated or unbound ones removed (an assumed pod stays until
    /// the watch confirms or its binding fails). True when resources were freed.
    /// The snapshot keeps the `Arc`, not a copy.
    pub fn apply_pod(&mut self, pod: &Arc<Pod>) -> bool {
        let key = pod_key(pod);
        let node = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .filter(|n| !n.is_empty());
        match node {
            Some(node) if !is_terminated(pod) => {
                self.assumed.remove(&key);
                self.place(key, pod.clone(), node);
                false
            }
            _ if is_terminated(pod) => {
                self.assumed.remove(&key);
                self.unplace(&key)
            }
            _ if self.assumed.contains(&key) => false,
            _ => self.unplace(&key),
        }
    }

    /// Removes a deleted pod; true when it held resources somewhere.
    pub fn delete_pod(&mut self, key: &str) -> bool {
        self.assumed.remove(key);
        self.unplace(key)
    }

    /// Places `pod` on `node` before the binding is visible (upstream's
    /// assume). The pending pod itself is kept, unchanged: nothing reads a
    /// placed pod's `spec.nodeName`, so copying it to set that is not needed.
    pub fn assume(&mut self, pod: &Arc<Pod>, node: &str) {
        let key = pod_key(pod);
        self.place(key.clone(), pod.clone(), node);
        self.assumed.insert(key);
    }

    /// Undoes `assume` after a failed binding.
    pub fn forget(&mut self, key: &str) {
        if self.assumed.remove(key) {
            self.unplace(key);
        }
    }

    /// Keys of every placed pod (for re-list reconciliation).
    pub fn placed_pods(&self) -> Vec<String> {
        self.placement.keys().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::testing::{node, pod};
    use serde_json::json;

    fn bound(name: &str, node: &str, cpu: &str) -> Arc<Pod> {
        let mut p = pod(name, json!({"cpu": cpu}));
        p.spec.as_mut().unwrap().node_name = Some(node.into());
        Arc::new(p)
    }

    #[test]
    fn requested_sums_follow_pod_events_incrementally() {
        let mut s = Snapshot::default();
        s.apply_node(node("n1", json!({"cpu": "4"}), json!({})));
        s.apply_node(node("n2", json!({"cpu": "4"}), json!({})));
        s.apply_pod(&bound("a", "n1", "1"));
        s.apply_pod(&bound("b", "n1", "500m"));
        assert_eq!(s.node("n1").unwrap().requested.milli_cpu, 1500);
        s.apply_pod(&bound("a", "n1", "1"));
        assert_eq!(
            s.node("n1").unwrap().requested.milli_cpu,
            1500,
            "update is not double-counted"
        );
        s.apply_pod(&bound("a", "n2", "1"));
        assert_eq!(s.node("n1").unwrap().requested.milli_cpu, 500);
        assert_eq!(s.node("n2").unwrap().requested.milli_cpu, 1000);
        assert!(s.delete_pod("default/b"));
        assert_eq!(s.node("n1").unwrap().requested.milli_cpu, 0);
        let mut done = Arc::unwrap_or_clone(bound("a", "n2", "1"));
        done.status = Some(k8s_openapi::api::core::v1::PodStatus {
            phase: Some("Succeeded".into()),
            ..Default::default()
        });
        assert!(
            s.apply_pod(&Arc::new(done)),
            "a finished pod frees its resources"
        );
        assert_eq!(s.node("n2").unwrap().requested.milli_cpu, 0);
    }

    #[test]
    fn assumed_pods_count_until_confirmed_or_forgotten() {
        let mut s = Snapshot::default();
        s.apply_node(node("n1", json!({"cpu": "4"}), json!({})));
        let p = Arc::new(pod("a", json!({"cpu": "1"})));
        s.assume(&p, "n1");
        assert_eq!(s.node("n1").unwrap().requested.milli_cpu, 1000);
        s.apply_pod(&p);
        assert_eq!(
            s.node("n1").unwrap().requested.milli_cpu,
            1000,
            "stale unbound event keeps the assumption"
        );
        s.forget("default/a");
        assert_eq!(s.node("n1").unwrap().requested.milli_cpu, 0);
        s.assume(&p, "n1");
        s.apply_pod(&bound("a", "n1", "1"));
        assert!(!s.is_assumed("default/a"));
        s.forget("default/a");
        assert_eq!(
            s.node("n1").unwrap().requested.milli_cpu,
            1000,
            "confirmed pods are not forgotten"
        );
    }

    #[test]
    fn pods_seen_before_their_node_are_kept() {
        let mut s = Snapshot::default();
        s.apply_pod(&bound("a", "late", "1"));
        assert!(s.nodes().is_empty());
        s.apply_node(node("late", json!({"cpu": "4"}), json!({})));
        assert_eq!(s.node("late").unwrap().requested.milli_cpu, 1000);
        s.delete_node("late");
        assert!(s.node("late").is_none());
    }

    #[test]
    fn node_updates_report_only_scheduling_changes() {
        let mut s = Snapshot::default();
        assert!(s.apply_node(node("n", json!({"cpu": "4"}), json!({}))));
        assert!(!s.apply_node(node("n", json!({"cpu": "4"}), json!({}))));
        assert!(s.apply_node(node("n", json!({"cpu": "8"}), json!({}))));
        assert!(s.apply_node(node(
            "n",
            json!({"cpu": "8"}),
            json!({"labels": {"a": "b"}})
        )));
    }

    #[test]
    fn derived_node_fields_follow_node_updates() {
        let mut s = Snapshot::default();
        s.apply_node(node("n", json!({"cpu": "4"}), json!({})));
        let info = s.node("n").unwrap();
        assert!(!info.unschedulable);
        assert_eq!(info.scoring, Strategy::LeastAllocated);
        assert_eq!(info.allocatable.milli_cpu, 4000);
        assert!(s.apply_node(node(
            "n",
            json!({"cpu": "8"}),
            json!({"unschedulable": true, "labels": {"berth.dev/scoring": "most-allocated"}})
        )));
        let info = s.node("n").unwrap();
        assert!(info.unschedulable, "cordoning is seen");
        assert_eq!(info.scoring, Strategy::MostAllocated, "relabeling is seen");
        assert_eq!(info.allocatable.milli_cpu, 8000);
        assert!(s.apply_node(node("n", json!({"cpu": "8"}), json!({}))));
        let info = s.node("n").unwrap();
        assert!(!info.unschedulable, "uncordoning is seen");
        assert_eq!(
            info.scoring,
            Strategy::LeastAllocated,
            "removing the label is seen"
        );
    }

    #[test]
    fn a_node_that_comes_back_gets_fresh_derived_fields() {
        let mut s = Snapshot::default();
        s.apply_node(node(
            "n",
            json!({"cpu": "4"}),
            json!({"unschedulable": true}),
        ));
        s.apply_pod(&bound("a", "n", "1"));
        s.delete_node("n");
        s.apply_node(node(
            "n",
            json!({"cpu": "2"}),
            json!({"labels": {"berth.dev/scoring": "most-allocated"}}),
        ));
        let info = s.node("n").unwrap();
        assert!(!info.unschedulable);
        assert_eq!(info.scoring, Strategy::MostAllocated);
        assert_eq!(info.allocatable.milli_cpu, 2000);
        assert_eq!(info.requested.milli_cpu, 1000, "its pods were kept");
    }

    #[test]
    fn placed_and_assumed_pods_are_shared_not_copied() {
        let mut s = Snapshot::default();
        s.apply_node(node("n1", json!({"cpu": "4"}), json!({})));
        let pending = Arc::new(pod("a", json!({"cpu": "1"})));
        s.assume(&pending, "n1");
        let entry = &s.node("n1").unwrap().pods["default/a"];
        assert!(Arc::ptr_eq(&entry.pod, &pending));
        assert_eq!(entry.requests.milli_cpu, 1000);
        let confirmed = bound("a", "n1", "2");
        s.apply_pod(&confirmed);
        let entry = &s.node("n1").unwrap().pods["default/a"];
        assert!(
            Arc::ptr_eq(&entry.pod, &confirmed),
            "the watch's pod replaces it"
        );
        assert_eq!(s.node("n1").unwrap().requested.milli_cpu, 2000);
    }

    #[test]
    fn not_ready_nodes_get_the_upstream_taint() {
        let cases = [
            (json!([{"type": "Ready", "status": "True"}]), None),
            (
                json!([{"type": "Ready", "status": "False"}]),
                Some(TAINT_NOT_READY),
            ),
            (
                json!([{"type": "Ready", "status": "Unknown"}]),
                Some(TAINT_UNREACHABLE),
            ),
            (json!([]), Some(TAINT_NOT_READY)),
        ];
        for (conditions, want) in cases {
            let mut n = node("n", json!({"cpu": "1"}), json!({}));
            n.status.as_mut().unwrap().conditions =
                Some(serde_json::from_value(conditions.clone()).unwrap());
            let taints = effective_taints(&n);
            assert_eq!(taints.first().map(|t| t.key.as_str()), want, "{conditions}");
        }
    }
}
