//! The scheduler's informer: what its node, pod and PodDisruptionBudget
//! watches show, applied to the `Snapshot` (with the nominations pods carry
//! in `status.nominatedNodeName`), the store of pods pending for it, the
//! budgets preemption reads and the scheduling queue, as upstream's
//! scheduler event handlers do. Each object is trimmed
//! (`metadata.managedFields` dropped, as upstream's informers do) and put in
//! an `Arc` once, so the snapshot, the pending store and in-flight bindings
//! share one copy. Pure: no I/O; the watch loop feeds it.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, PersistentVolume, PersistentVolumeClaim, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::storage::v1::StorageClass;
use kube::runtime::watcher;

use super::cache::{pod_key, Snapshot};
use super::is_pending_for_us;
use super::preemption::{budgets::Budget, priority};
use super::queue::SchedulingQueue;

/// Drops `metadata.managedFields`: nothing in the scheduler reads them, and
/// they are often the largest part of an object (upstream's informers strip
/// them too, `TransformStripManagedFields`).
pub fn strip_managed_fields<K: kube::Resource>(object: &mut K) {
    object.meta_mut().managed_fields = None;
}

/// Which keys a (re-)list (watcher `Init` … `InitDone`) has shown so far,
/// and whether a first list has completed.
#[derive(Debug, Default)]
struct Relist {
    seen: Option<HashSet<String>>,
    listed: bool,
}

impl Relist {
    fn start(&mut self) {
        self.seen = Some(HashSet::new());
    }

    fn saw(&mut self, key: &str) {
        if let Some(seen) = self.seen.as_mut() {
            seen.insert(key.to_owned());
        }
    }

    /// Ends a list; the keys it showed, when one was in progress.
    fn finish(&mut self) -> Option<HashSet<String>> {
        self.listed = true;
        self.seen.take()
    }
}

/// The cluster as the scheduler's watches show it.
#[derive(Debug, Default)]
pub struct Informer {
    /// Every node and every placed (or assumed) pod.
    pub snapshot: Snapshot,
    /// Pending pods waiting for a decision.
    pub queue: SchedulingQueue,
    /// The pods pending for this scheduler (`is_pending_for_us`), by key.
    pending: HashMap<String, Arc<Pod>>,
    /// PodDisruptionBudgets by `namespace/name`, for preemption.
    budgets: HashMap<String, Budget>,
    nodes: Relist,
    pods: Relist,
    budget_list: Relist,
}

impl Informer {
    /// True once both watches have completed their first list (STYLE 15: no
    /// decision before that, so a half-filled cache never looks like free room).
    pub fn is_ready(&self) -> bool {
        self.nodes.listed
            && self.pods.listed
            && self.budget_list.listed
            && self.snapshot.volumes.is_ready()
    }

    /// Every PodDisruptionBudget, as preemption weighs victims against them.
    pub fn budgets(&self) -> Vec<Budget> {
        let mut keys: Vec<&String> = self.budgets.keys().collect();
        keys.sort();
        keys.into_iter().map(|k| self.budgets[k].clone()).collect()
    }

    /// Applies a PodDisruptionBudget watch event.
    pub fn on_budget(&mut self, event: watcher::Event<PodDisruptionBudget>) {
        let key = |pdb: &PodDisruptionBudget| {
            format!(
                "{}/{}",
                pdb.metadata.namespace.as_deref().unwrap_or(""),
                pdb.metadata.name.as_deref().unwrap_or("")
            )
        };
        match event {
            watcher::Event::Init => self.budget_list.start(),
            watcher::Event::InitApply(pdb) | watcher::Event::Apply(pdb) => {
                let key = key(&pdb);
                self.budget_list.saw(&key);
                self.budgets.insert(key, Budget::from_pdb(&pdb));
            }
            watcher::Event::Delete(pdb) => {
                self.budgets.remove(&key(&pdb));
            }
            watcher::Event::InitDone => {
                if let Some(seen) = self.budget_list.finish() {
                    self.budgets.retain(|key, _| seen.contains(key));
                }
            }
        }
    }

    /// Applies a PersistentVolumeClaim watch event; a change may let parked pods fit.
    pub fn on_claim(&mut self, event: watcher::Event<PersistentVolumeClaim>) {
        if self.snapshot.volumes.claims.apply(event) {
            self.queue.cluster_changed();
        }
    }

    /// Applies a PersistentVolume watch event; a change may let parked pods fit.
    pub fn on_volume(&mut self, event: watcher::Event<PersistentVolume>) {
        if self.snapshot.volumes.volumes.apply(event) {
            self.queue.cluster_changed();
        }
    }

    /// Applies a StorageClass watch event; a change may let parked pods fit.
    pub fn on_storage_class(&mut self, event: watcher::Event<StorageClass>) {
        if self.snapshot.volumes.classes.apply(event) {
            self.queue.cluster_changed();
        }
    }

    /// The pending pod with `key`, as last seen.
    pub fn pending_pod(&self, key: &str) -> Option<Arc<Pod>> {
        self.pending.get(key).cloned()
    }

    /// Applies a node watch event.
    pub fn on_node(&mut self, event: watcher::Event<Node>) {
        match event {
            watcher::Event::Init => self.nodes.start(),
            watcher::Event::InitApply(node) | watcher::Event::Apply(node) => self.apply_node(node),
            watcher::Event::Delete(node) => {
                self.snapshot
                    .delete_node(node.metadata.name.as_deref().unwrap_or(""));
            }
            watcher::Event::InitDone => {
                if let Some(seen) = self.nodes.finish() {
                    for name in self.snapshot.node_names() {
                        if !seen.contains(&name) {
                            self.snapshot.delete_node(&name);
                        }
                    }
                }
            }
        }
    }

    /// Applies a pod watch event.
    pub fn on_pod(&mut self, event: watcher::Event<Pod>) {
        match event {
            watcher::Event::Init => self.pods.start(),
            watcher::Event::InitApply(pod) | watcher::Event::Apply(pod) => self.apply_pod(pod),
            watcher::Event::Delete(pod) => self.delete_pod(&pod_key(&pod)),
            watcher::Event::InitDone => {
                if let Some(seen) = self.pods.finish() {
                    self.forget_unlisted_pods(&seen);
                }
            }
        }
    }

    fn apply_node(&mut self, mut node: Node) {
        strip_managed_fields(&mut node);
        self.nodes
            .saw(node.metadata.name.as_deref().unwrap_or_default());
        if self.snapshot.apply_node(node) {
            self.queue.cluster_changed();
        }
    }

    fn apply_pod(&mut self, mut pod: Pod) {
        strip_managed_fields(&mut pod);
        let pod = Arc::new(pod);
        let key = pod_key(&pod);
        self.pods.saw(&key);
        if self.snapshot.apply_pod(&pod) {
            self.queue.cluster_changed();
        }
        if is_pending_for_us(&pod) {
            if !self.snapshot.is_assumed(&key) {
                self.queue.add(&key, priority(&pod));
            }
            // A nomination seen in the status is taken; an empty one leaves
            // a nomination this scheduler made and has not seen written yet.
            let nominated = pod
                .status
                .as_ref()
                .and_then(|s| s.nominated_node_name.as_deref())
                .filter(|n| !n.is_empty());
            if let Some(node) = nominated.filter(|_| !self.snapshot.is_assumed(&key)) {
                self.snapshot
                    .nominator_mut()
                    .nominate(&key, pod.clone(), node);
            }
            self.pending.insert(key, pod);
        } else {
            self.snapshot.nominator_mut().remove(&key);
            self.pending.remove(&key);
            self.queue.remove(&key);
        }
    }

    fn delete_pod(&mut self, key: &str) {
        self.snapshot.delete_pod(key);
        self.snapshot.nominator_mut().remove(key);
        self.pending.remove(key);
        self.queue.remove(key);
        self.queue.cluster_changed();
    }

    /// After a re-list: pods it did not show were deleted while the watch
    /// was down (assumed ones wait for their binding's outcome).
    fn forget_unlisted_pods(&mut self, seen: &HashSet<String>) {
        for key in self.snapshot.placed_pods() {
            if !seen.contains(&key) && !self.snapshot.is_assumed(&key) {
                self.snapshot.delete_pod(&key);
                self.queue.cluster_changed();
            }
        }
        let gone: Vec<String> = self
            .pending
            .keys()
            .filter(|key| !seen.contains(*key))
            .cloned()
            .collect();
        for key in gone {
            self.snapshot.nominator_mut().remove(&key);
            self.pending.remove(&key);
            self.queue.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::testing::{node, pod};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry;
    use serde_json::json;

    fn with_managed_fields<K: kube::Resource>(mut object: K) -> K {
        object.meta_mut().managed_fields = Some(vec![ManagedFieldsEntry {
            manager: Some("test".into()),
            ..Default::default()
        }]);
        object
    }

    fn bound(name: &str, node: &str) -> Pod {
        let mut p = pod(name, json!({"cpu": "1"}));
        p.spec.as_mut().unwrap().node_name = Some(node.into());
        p
    }

    fn listed(nodes: Vec<Node>, pods: Vec<Pod>) -> Informer {
        let mut informer = Informer::default();
        informer.on_node(watcher::Event::Init);
        for n in nodes {
            informer.on_node(watcher::Event::InitApply(n));
        }
        informer.on_node(watcher::Event::InitDone);
        informer.on_pod(watcher::Event::Init);
        for p in pods {
            informer.on_pod(watcher::Event::InitApply(p));
        }
        informer.on_pod(watcher::Event::InitDone);
        informer.on_budget(watcher::Event::Init);
        informer.on_budget(watcher::Event::InitDone);
        list_volumes(&mut informer);
        informer
    }

    fn list_volumes(informer: &mut Informer) {
        informer.on_claim(watcher::Event::Init);
        informer.on_claim(watcher::Event::InitDone);
        informer.on_volume(watcher::Event::Init);
        informer.on_volume(watcher::Event::InitDone);
        informer.on_storage_class(watcher::Event::Init);
        informer.on_storage_class(watcher::Event::InitDone);
    }

    #[test]
    fn ready_only_after_both_first_lists() {
        let mut informer = Informer::default();
        informer.on_node(watcher::Event::Init);
        informer.on_node(watcher::Event::InitDone);
        assert!(!informer.is_ready(), "pods not listed yet");
        informer.on_pod(watcher::Event::Init);
        informer.on_pod(watcher::Event::InitApply(pod("a", json!({}))));
        assert!(!informer.is_ready(), "pod list still in progress");
        informer.on_pod(watcher::Event::InitDone);
        assert!(!informer.is_ready(), "budgets not listed yet");
        informer.on_budget(watcher::Event::Init);
        informer.on_budget(watcher::Event::InitDone);
        assert!(!informer.is_ready(), "volumes not listed yet");
        list_volumes(&mut informer);
        assert!(informer.is_ready());
    }

    #[test]
    fn cached_objects_have_no_managed_fields() {
        let informer = listed(
            vec![with_managed_fields(node(
                "n1",
                json!({"cpu": "4"}),
                json!({}),
            ))],
            vec![
                with_managed_fields(pod("pending", json!({}))),
                with_managed_fields(bound("running", "n1")),
            ],
        );
        let n1 = informer.snapshot.node("n1").unwrap();
        assert!(n1.node.as_ref().unwrap().metadata.managed_fields.is_none());
        assert!(n1.pods["default/running"]
            .pod
            .metadata
            .managed_fields
            .is_none());
        let pending = informer.pending_pod("default/pending").unwrap();
        assert!(pending.metadata.managed_fields.is_none());
    }

    #[test]
    fn pending_pods_are_queued_and_forgotten_once_bound_or_deleted() {
        let mut informer = listed(
            vec![node("n1", json!({"cpu": "4"}), json!({}))],
            vec![pod("a", json!({})), pod("b", json!({}))],
        );
        assert_eq!(informer.queue.pop().as_deref(), Some("default/a"));
        let a = informer.pending_pod("default/a").unwrap();
        informer.snapshot.assume(&a, "n1");
        informer.on_pod(watcher::Event::Apply(pod("a", json!({}))));
        assert_eq!(
            informer.queue.pop().as_deref(),
            Some("default/b"),
            "an assumed pod is not queued again"
        );
        informer.on_pod(watcher::Event::Apply(bound("a", "n1")));
        assert!(informer.pending_pod("default/a").is_none());
        assert!(!informer.snapshot.is_assumed("default/a"));
        informer.on_pod(watcher::Event::Delete(pod("b", json!({}))));
        assert!(informer.pending_pod("default/b").is_none());
        assert!(!informer.queue.has_active());
    }

    #[test]
    fn nominations_follow_the_pods_status_until_bound() {
        let mut informer = listed(vec![node("n1", json!({"cpu": "4"}), json!({}))], vec![]);
        let mut nominated = pod("high", json!({"cpu": "1"}));
        nominated.status =
            Some(serde_json::from_value(json!({"nominatedNodeName": "n1"})).unwrap());
        informer.on_pod(watcher::Event::Apply(nominated));
        let nominator = informer.snapshot.nominator();
        assert_eq!(nominator.node_of("default/high"), Some("n1"));
        informer.on_pod(watcher::Event::Apply(pod("high", json!({"cpu": "1"}))));
        assert_eq!(
            informer.snapshot.nominator().node_of("default/high"),
            Some("n1"),
            "an empty status leaves a nomination in flight"
        );
        informer.on_pod(watcher::Event::Apply(bound("high", "n1")));
        assert!(
            informer.snapshot.nominator().is_empty(),
            "bound: no claim left"
        );
    }

    #[test]
    fn budgets_follow_their_watch() {
        let mut informer = listed(vec![], vec![]);
        let pdb: PodDisruptionBudget = serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"selector": {"matchLabels": {"app": "web"}}},
            "status": {"disruptionsAllowed": 1, "currentHealthy": 2, "desiredHealthy": 1, "expectedPods": 2},
        }))
        .unwrap();
        informer.on_budget(watcher::Event::Apply(pdb.clone()));
        assert_eq!(informer.budgets().len(), 1);
        assert_eq!(informer.budgets()[0].disruptions_allowed, 1);
        informer.on_budget(watcher::Event::Init);
        informer.on_budget(watcher::Event::InitDone);
        assert!(
            informer.budgets().is_empty(),
            "a relist without it forgets it"
        );
    }

    #[test]
    fn a_relist_forgets_what_it_no_longer_shows() {
        let mut informer = listed(
            vec![
                node("n1", json!({"cpu": "4"}), json!({})),
                node("n2", json!({"cpu": "4"}), json!({})),
            ],
            vec![
                pod("gone", json!({})),
                pod("kept", json!({})),
                bound("ran", "n1"),
            ],
        );
        let relisted = listed_again(&mut informer, vec![pod("kept", json!({}))]);
        assert!(relisted.pending_pod("default/gone").is_none());
        assert!(relisted.pending_pod("default/kept").is_some());
        assert_eq!(relisted.snapshot.placement("default/ran"), None);
        assert_eq!(relisted.queue.pop().as_deref(), Some("default/kept"));
        assert_eq!(relisted.queue.pop(), None, "the deleted pod left the queue");
        relisted.on_node(watcher::Event::Init);
        relisted.on_node(watcher::Event::InitApply(node(
            "n2",
            json!({"cpu": "4"}),
            json!({}),
        )));
        relisted.on_node(watcher::Event::InitDone);
        assert!(relisted.snapshot.node("n1").is_none());
        assert!(relisted.snapshot.node("n2").is_some());
    }

    fn listed_again(informer: &mut Informer, pods: Vec<Pod>) -> &mut Informer {
        informer.on_pod(watcher::Event::Init);
        for p in pods {
            informer.on_pod(watcher::Event::InitApply(p));
        }
        informer.on_pod(watcher::Event::InitDone);
        informer
    }
}
