//! PodDisruptionBudgets as preemption reads them (upstream's
//! `filterPodsWithPDBViolation`): a victim whose removal would take a
//! matching budget below zero allowed disruptions "violates" it, and is
//! reprieved first so a node needing no violation wins. Preemption never
//! refuses to violate a budget; it only prefers not to. Pure.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use berth_api::selector::LabelSelector;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;

use crate::scheduler::cache::PodEntry;

/// What preemption needs of one PodDisruptionBudget.
#[derive(Debug, Clone)]
pub struct Budget {
    /// Its namespace: it covers pods of that namespace only.
    pub namespace: String,
    /// Its selector; `None` when null, empty or invalid (upstream: matches nothing).
    pub selector: Option<LabelSelector>,
    /// `status.disruptionsAllowed`.
    pub disruptions_allowed: i32,
    /// `status.disruptedPods` names: evictions the API server already
    /// counted, which preemption must not count twice.
    pub disrupted_pods: HashSet<String>,
}

impl Budget {
    /// Reads a PodDisruptionBudget.
    pub fn from_pdb(pdb: &PodDisruptionBudget) -> Self {
        let selector = pdb
            .spec
            .as_ref()
            .and_then(|s| s.selector.as_ref())
            .and_then(|s| LabelSelector::from_label_selector(s).ok())
            .filter(|s| !s.is_empty());
        let status = pdb.status.as_ref();
        Budget {
            namespace: pdb.metadata.namespace.clone().unwrap_or_default(),
            selector,
            disruptions_allowed: status.map(|s| s.disruptions_allowed).unwrap_or(0),
            disrupted_pods: status
                .and_then(|s| s.disrupted_pods.as_ref())
                .map(|d| d.keys().cloned().collect())
                .unwrap_or_default(),
        }
    }

    /// Does this budget count a disruption of `pod`?
    fn counts(&self, pod: &Pod) -> bool {
        let Some(selector) = &self.selector else {
            return false;
        };
        let Some(labels) = pod.metadata.labels.as_ref().filter(|l| !l.is_empty()) else {
            return false;
        };
        pod.metadata.namespace.as_deref().unwrap_or("default") == self.namespace
            && selector.matches(labels as &BTreeMap<String, String>)
            && !self
                .disrupted_pods
                .contains(pod.metadata.name.as_deref().unwrap_or(""))
    }
}

/// Splits `pods` (most important first) into those whose removal would
/// violate a budget and those whose removal would not, spending each budget's
/// allowed disruptions in order, as upstream does.
pub fn split_by_violation(
    pods: Vec<Arc<PodEntry>>,
    budgets: &[Budget],
) -> (Vec<Arc<PodEntry>>, Vec<Arc<PodEntry>>) {
    let mut allowed: Vec<i32> = budgets.iter().map(|b| b.disruptions_allowed).collect();
    let mut violating = Vec::new();
    let mut non_violating = Vec::new();
    for entry in pods {
        let mut violated = false;
        for (budget, allowed) in budgets.iter().zip(allowed.iter_mut()) {
            if budget.counts(&entry.pod) {
                *allowed -= 1;
                violated |= *allowed < 0;
            }
        }
        if violated {
            violating.push(entry);
        } else {
            non_violating.push(entry);
        }
    }
    (violating, non_violating)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::testing::pod_with;
    use serde_json::{json, Value};

    fn entry(name: &str, labels: Value) -> Arc<PodEntry> {
        PodEntry::of(Arc::new(pod_with(name, json!({}), json!({}), labels)))
    }

    fn budget(spec: Value, status: Value) -> Budget {
        let pdb: PodDisruptionBudget = serde_json::from_value(json!({
            "metadata": {"name": "b", "namespace": "default"},
            "spec": spec,
            "status": status,
        }))
        .unwrap();
        Budget::from_pdb(&pdb)
    }

    fn names(list: &[Arc<PodEntry>]) -> Vec<String> {
        list.iter()
            .map(|e| e.pod.metadata.name.clone().unwrap())
            .collect()
    }

    #[test]
    fn budgets_are_spent_in_order_and_only_by_pods_they_select() {
        let web = json!({"app": "web"});
        let status = |allowed: i32| json!({"disruptionsAllowed": allowed, "currentHealthy": 0, "desiredHealthy": 0, "expectedPods": 0});
        let selects_web = json!({"selector": {"matchLabels": {"app": "web"}}});
        type Case<'a> = (&'a str, Vec<Budget>, Vec<&'a str>, Vec<&'a str>);
        let cases: Vec<Case> = vec![
            ("no budgets", vec![], vec![], vec!["w1", "w2", "db", "bare"]),
            (
                "one disruption allowed: the second web pod violates",
                vec![budget(selects_web.clone(), status(1))],
                vec!["w2"],
                vec!["w1", "db", "bare"],
            ),
            (
                "none allowed: every web pod violates",
                vec![budget(selects_web.clone(), status(0))],
                vec!["w1", "w2"],
                vec!["db", "bare"],
            ),
            (
                "an empty selector matches nothing",
                vec![budget(json!({"selector": {}}), status(0))],
                vec![],
                vec!["w1", "w2", "db", "bare"],
            ),
            (
                "a null selector matches nothing",
                vec![budget(json!({}), status(0))],
                vec![],
                vec!["w1", "w2", "db", "bare"],
            ),
            (
                "already disrupted pods are not counted again",
                vec![budget(
                    selects_web.clone(),
                    json!({"disruptionsAllowed": 0, "currentHealthy": 0, "desiredHealthy": 0,
                        "expectedPods": 0, "disruptedPods": {"w1": "2026-01-01T00:00:00Z"}}),
                )],
                vec!["w2"],
                vec!["w1", "db", "bare"],
            ),
        ];
        for (name, budgets, want_violating, want_other) in cases {
            let pods = vec![
                entry("w1", web.clone()),
                entry("w2", web.clone()),
                entry("db", json!({"app": "db"})),
                entry("bare", json!({})),
            ];
            let (violating, other) = split_by_violation(pods, &budgets);
            assert_eq!(names(&violating), want_violating, "{name}");
            assert_eq!(names(&other), want_other, "{name}");
        }
    }

    #[test]
    fn budgets_of_other_namespaces_do_not_count() {
        let mut b = budget(
            json!({"selector": {"matchLabels": {"app": "web"}}}),
            json!({"disruptionsAllowed": 0, "currentHealthy": 0, "desiredHealthy": 0, "expectedPods": 0}),
        );
        b.namespace = "other".into();
        let (violating, _) = split_by_violation(vec![entry("w", json!({"app": "web"}))], &[b]);
        assert!(violating.is_empty());
    }
}
