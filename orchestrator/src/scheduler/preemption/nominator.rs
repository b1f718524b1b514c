//! The nominator (upstream's `nominator` in the scheduling queue): which
//! pending pod was nominated to which node by preemption, so the room its
//! victims free is kept for it. Filters count a node's nominated pods of equal
//! or higher priority as if they ran there. Pure data; the informer feeds it
//! from `status.nominatedNodeName`, preemption from its decisions.

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;

use super::priority;
use crate::scheduler::cache::PodEntry;

/// Pending pods nominated to nodes.
#[derive(Debug, Default)]
pub struct Nominator {
    /// Per node: the nominated pods by `namespace/name`.
    by_node: HashMap<String, HashMap<String, Arc<PodEntry>>>,
    /// Per pod key: the node it is nominated to.
    node_of: HashMap<String, String>,
}

impl Nominator {
    /// True when no pod is nominated anywhere (the common case: filters then
    /// look no further).
    pub fn is_empty(&self) -> bool {
        self.node_of.is_empty()
    }

    /// Nominates `pod` (key `key`) to `node`, replacing an earlier nomination.
    pub fn nominate(&mut self, key: &str, pod: Arc<Pod>, node: &str) {
        self.remove(key);
        let entry = PodEntry::of(pod);
        self.by_node
            .entry(node.to_owned())
            .or_default()
            .insert(key.to_owned(), entry);
        self.node_of.insert(key.to_owned(), node.to_owned());
    }

    /// Forgets the nomination of `key` (bound, deleted, or cleared).
    pub fn remove(&mut self, key: &str) {
        let Some(node) = self.node_of.remove(key) else {
            return;
        };
        if let Some(pods) = self.by_node.get_mut(&node) {
            pods.remove(key);
            if pods.is_empty() {
                self.by_node.remove(&node);
            }
        }
    }

    /// The node `key` is nominated to.
    pub fn node_of(&self, key: &str) -> Option<&str> {
        self.node_of.get(key).map(String::as_str)
    }

    /// The pods nominated to `node` that a pod of `priority` (key `except`)
    /// must leave room for: those of equal or higher priority, itself excluded.
    pub fn claims_on(&self, node: &str, priority_of_pod: i32, except: &str) -> Vec<Arc<PodEntry>> {
        let Some(pods) = self.by_node.get(node) else {
            return Vec::new();
        };
        pods.iter()
            .filter(|(key, entry)| *key != except && priority(&entry.pod) >= priority_of_pod)
            .map(|(_, entry)| entry.clone())
            .collect()
    }

    /// The pods nominated to `node` with a priority below `priority_of_pod`,
    /// whose nominations a preemption there clears.
    pub fn lower_than(&self, node: &str, priority_of_pod: i32) -> Vec<(String, Arc<Pod>)> {
        let Some(pods) = self.by_node.get(node) else {
            return Vec::new();
        };
        let mut lower: Vec<(String, Arc<Pod>)> = pods
            .iter()
            .filter(|(_, entry)| priority(&entry.pod) < priority_of_pod)
            .map(|(key, entry)| (key.clone(), entry.pod.clone()))
            .collect();
        lower.sort_by(|a, b| a.0.cmp(&b.0));
        lower
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::testing::pod_with;
    use serde_json::json;

    fn pending(name: &str, priority: i32) -> Arc<Pod> {
        Arc::new(pod_with(
            name,
            json!({"cpu": "1"}),
            json!({"priority": priority}),
            json!({}),
        ))
    }

    #[test]
    fn claims_count_equal_or_higher_priority_pods_but_not_the_pod_itself() {
        let mut n = Nominator::default();
        assert!(n.is_empty());
        n.nominate("default/high", pending("high", 100), "n1");
        n.nominate("default/same", pending("same", 10), "n1");
        n.nominate("default/low", pending("low", 1), "n1");
        n.nominate("default/elsewhere", pending("elsewhere", 100), "n2");
        let mut claims: Vec<String> = n
            .claims_on("n1", 10, "default/same")
            .iter()
            .map(|e| e.pod.metadata.name.clone().unwrap())
            .collect();
        claims.sort();
        assert_eq!(claims, ["high"]);
        assert_eq!(n.claims_on("n1", 0, "x").len(), 3);
        assert_eq!(n.claims_on("n3", 0, "x").len(), 0);
        let lower: Vec<String> = n.lower_than("n1", 10).into_iter().map(|(k, _)| k).collect();
        assert_eq!(lower, ["default/low"]);
    }

    #[test]
    fn a_new_nomination_replaces_the_old_and_removal_forgets_it() {
        let mut n = Nominator::default();
        n.nominate("default/p", pending("p", 5), "n1");
        n.nominate("default/p", pending("p", 5), "n2");
        assert_eq!(n.node_of("default/p"), Some("n2"));
        assert!(n.claims_on("n1", 0, "x").is_empty());
        assert_eq!(n.claims_on("n2", 0, "x").len(), 1);
        n.remove("default/p");
        assert!(n.is_empty());
        assert!(n.claims_on("n2", 0, "x").is_empty());
    }
}
