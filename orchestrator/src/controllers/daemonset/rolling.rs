//! One step of a DaemonSet RollingUpdate (upstream's `rollingUpdate`): with
//! no surge, delete old pods while fewer than maxUnavailable nodes lack an
//! available pod (unavailable old pods go at once); with maxSurge, create new
//! pods beside old available ones up to the surge and delete each old pod
//! once its replacement is available. Pure: pods, nodes and numbers in, the
//! pods to delete and nodes to create on out.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;

use super::manage::NodePods;
use super::placement::pod_is_updated;
use crate::controllers::deployment::rollout::scaled_value;
use crate::controllers::workload::pod_is_available;

/// `(maxSurge, maxUnavailable)` in pods for `desired` scheduled nodes, both
/// percentages rounded up; both zero means one unavailable (upstream's
/// `updatedDesiredNodeCounts`).
pub fn budget(ds: &DaemonSet, desired: i32) -> Result<(i32, i32), String> {
    let rolling = ds
        .spec
        .as_ref()
        .and_then(|s| s.update_strategy.as_ref())
        .and_then(|u| u.rolling_update.as_ref());
    let surge = scaled_value(rolling.and_then(|r| r.max_surge.as_ref()), desired, true)?;
    let unavailable = scaled_value(
        rolling.and_then(|r| r.max_unavailable.as_ref()),
        desired,
        true,
    )?;
    if desired > 0 && surge == 0 && unavailable == 0 {
        return Ok((0, 1));
    }
    Ok((surge, unavailable))
}

/// What one rolling step does.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Step {
    /// Old pods to delete, by name.
    pub delete: Vec<String>,
    /// Nodes to create a new pod on beside the old one.
    pub create_on: Vec<String>,
}

/// The current and the old pod on a node; None when there are more than one
/// of either (the manage pass cleans that up first).
fn updated_and_old<'a>(
    pods: &[&'a Pod],
    hash: &str,
    generation: Option<&str>,
) -> Option<(Option<&'a Pod>, Option<&'a Pod>)> {
    let (mut new, mut old) = (None, None);
    for pod in pods
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
    {
        let slot = if pod_is_updated(pod, hash, generation) {
            &mut new
        } else {
            &mut old
        };
        if slot.is_some() {
            return None;
        }
        *slot = Some(*pod);
    }
    Some((new, old))
}

/// What the rolling update around the node → pods map looks like now.
pub struct Rollout<'a> {
    /// Pods per node, with an empty entry for every node that should run one.
    pub pods: &'a NodePods<'a>,
    /// Whether each node (by name) should run a daemon pod.
    pub should_run: &'a BTreeMap<String, bool>,
    /// The current revision's hash and template generation.
    pub hash: &'a str,
    /// The template generation annotation.
    pub generation: Option<&'a str>,
    /// `spec.minReadySeconds`.
    pub min_ready_seconds: i32,
    /// Nodes that should run a pod.
    pub desired: i32,
    /// Now.
    pub now: jiff::Timestamp,
}

impl Rollout<'_> {
    fn available(&self, pod: &Pod) -> bool {
        pod_is_available(pod, self.min_ready_seconds, self.now)
    }

    /// The next step within `max_surge` / `max_unavailable`.
    pub fn step(&self, max_surge: i32, max_unavailable: i32) -> Step {
        if max_surge == 0 {
            self.without_surge(max_unavailable)
        } else {
            self.with_surge(max_surge)
        }
    }

    fn without_surge(&self, max_unavailable: i32) -> Step {
        let mut unavailable = 0;
        let (mut replace_now, mut candidates) = (Vec::new(), Vec::new());
        for pods in self.pods.values() {
            let Some((new, old)) = updated_and_old(pods, self.hash, self.generation) else {
                unavailable += 1;
                continue;
            };
            match (new, old) {
                (None, None) | (Some(_), Some(_)) => unavailable += 1,
                (Some(new), None) => {
                    if !self.available(new) {
                        unavailable += 1;
                    }
                }
                (None, Some(old)) => {
                    if !self.available(old) {
                        replace_now.push(old.name_any());
                    } else if unavailable < max_unavailable {
                        candidates.push(old.name_any());
                    }
                }
            }
        }
        let remaining = (max_unavailable - unavailable).clamp(0, candidates.len() as i32) as usize;
        replace_now.extend(candidates.into_iter().take(remaining));
        Step {
            delete: replace_now,
            create_on: Vec::new(),
        }
    }

    fn with_surge(&self, max_surge: i32) -> Step {
        let mut step = Step::default();
        let (mut surging, mut available) = (0, 0);
        let (mut candidates, mut not_fitting) = (Vec::new(), Vec::new());
        for (node, pods) in self.pods {
            let Some((new, old)) = updated_and_old(pods, self.hash, self.generation) else {
                surging += 1;
                continue;
            };
            if old.or(new).is_some_and(|p| self.available(p)) {
                available += 1;
            }
            let should_run = self.should_run.get(node).copied().unwrap_or(false);
            match (new, old) {
                (_, None) => {}
                (None, Some(old)) if !self.available(old) => {
                    if should_run {
                        step.create_on.push(node.clone());
                    } else {
                        step.delete.push(old.name_any());
                    }
                }
                (None, Some(old)) => {
                    if !should_run {
                        not_fitting.push(old.name_any());
                    } else if surging < max_surge {
                        candidates.push(node.clone());
                    }
                }
                (Some(new), Some(old)) => {
                    if self.available(new) {
                        step.delete.push(old.name_any());
                    } else {
                        surging += 1;
                    }
                }
            }
        }
        // Pods on nodes that no longer fit go only while enough others are available.
        let deletable = (available - self.desired).clamp(0, not_fitting.len() as i32) as usize;
        step.delete.extend(not_fitting.into_iter().take(deletable));
        let remaining = (max_surge - surging).clamp(0, candidates.len() as i32) as usize;
        step.create_on
            .extend(candidates.into_iter().take(remaining));
        step
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(name: &str, hash: &str, available: bool) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": name, "labels": {"controller-revision-hash": hash}},
            "status": {"phase": "Running", "conditions": [
                {"type": "Ready", "status": if available { "True" } else { "False" },
                 "lastTransitionTime": "2026-01-01T00:00:00Z"}]}
        }))
        .unwrap()
    }

    fn run(pods: &NodePods, surge: i32, unavailable: i32) -> Step {
        let should_run = pods.keys().map(|n| (n.clone(), true)).collect();
        Rollout {
            pods,
            should_run: &should_run,
            hash: "new",
            generation: None,
            min_ready_seconds: 0,
            desired: pods.len() as i32,
            now: "2026-01-01T01:00:00Z".parse().unwrap(),
        }
        .step(surge, unavailable)
    }

    fn nodes<'a>(entries: Vec<(&str, Vec<&'a Pod>)>) -> NodePods<'a> {
        entries
            .into_iter()
            .map(|(n, p)| (n.to_string(), p))
            .collect()
    }

    #[test]
    fn max_unavailable_bounds_the_nodes_without_an_available_pod() {
        let old: Vec<Pod> = (0..4)
            .map(|i| pod(&format!("old{i}"), "old", true))
            .collect();
        let unready_old = pod("sick", "old", false);
        let new_unready = pod("n-unready", "new", false);
        let new_ready = pod("n-ready", "new", true);
        let cases: [(&str, NodePods, i32, Vec<&str>); 5] = [
            (
                "one at a time",
                nodes(vec![
                    ("a", vec![&old[0]]),
                    ("b", vec![&old[1]]),
                    ("c", vec![&old[2]]),
                ]),
                1,
                vec!["old0"],
            ),
            (
                "two at a time",
                nodes(vec![
                    ("a", vec![&old[0]]),
                    ("b", vec![&old[1]]),
                    ("c", vec![&old[2]]),
                ]),
                2,
                vec!["old0", "old1"],
            ),
            (
                "a new pod not yet available uses the budget",
                nodes(vec![("a", vec![&new_unready]), ("b", vec![&old[1]])]),
                1,
                vec![],
            ),
            (
                "an available new pod frees it",
                nodes(vec![("a", vec![&new_ready]), ("b", vec![&old[1]])]),
                1,
                vec!["old1"],
            ),
            (
                "an unavailable old pod is replaced at once",
                nodes(vec![
                    ("a", vec![&new_unready]),
                    ("b", vec![&unready_old]),
                    ("c", vec![&old[3]]),
                ]),
                1,
                vec!["sick"],
            ),
        ];
        for (name, pods, max_unavailable, expected) in cases {
            let step = run(&pods, 0, max_unavailable);
            assert_eq!(step.delete, expected, "{name}");
            assert!(step.create_on.is_empty(), "{name}");
        }
    }

    #[test]
    fn surge_creates_beside_available_old_pods_and_deletes_them_once_replaced() {
        let old_a = pod("old-a", "old", true);
        let old_b = pod("old-b", "old", true);
        let old_c = pod("old-c", "old", true);
        let new_ready = pod("new-a", "new", true);
        let new_unready = pod("new-b", "new", false);
        let pods: NodePods = [
            ("a".to_string(), vec![&old_a, &new_ready]),
            ("b".to_string(), vec![&old_b, &new_unready]),
            ("c".to_string(), vec![&old_c]),
        ]
        .into();
        assert_eq!(
            run(&pods, 1, 0),
            Step {
                delete: vec!["old-a".into()],
                create_on: vec![],
            },
            "b's surge pod uses the one surge"
        );
        assert_eq!(
            run(&pods, 2, 0),
            Step {
                delete: vec!["old-a".into()],
                create_on: vec!["c".into()],
            }
        );
    }

    #[test]
    fn budget_rounds_percentages_up_and_never_stalls() {
        let ds = |surge: serde_json::Value, unavailable: serde_json::Value| -> DaemonSet {
            serde_json::from_value(json!({"metadata": {"name": "d"}, "spec": {
                "selector": {}, "template": {},
                "updateStrategy": {"type": "RollingUpdate",
                    "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}}}}))
            .unwrap()
        };
        let cases = [
            (ds(json!(0), json!(1)), 10, Ok((0, 1))),
            (ds(json!(0), json!("25%")), 10, Ok((0, 3))),
            (ds(json!("10%"), json!(0)), 5, Ok((1, 0))),
            (ds(json!(0), json!(0)), 3, Ok((0, 1))),
            (ds(json!(0), json!(0)), 0, Ok((0, 0))),
        ];
        for (ds, desired, expected) in cases {
            assert_eq!(budget(&ds, desired), expected);
        }
    }
}
