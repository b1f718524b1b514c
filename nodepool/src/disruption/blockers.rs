//! What forbids a voluntary disruption of a node right now: the
//! `berth.dev/do-not-disrupt` annotation on the node or one of its pods, or
//! a PodDisruptionBudget of one of its pods that allows no disruption (its
//! `status.disruptionsAllowed`, as Karpenter checks). Pure.

use berth_api::selector::LabelSelector;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::ResourceExt;

/// The annotation that keeps a node (or the node a pod runs on) from
/// voluntary disruption (Karpenter's `karpenter.sh/do-not-disrupt`).
pub const DO_NOT_DISRUPT: &str = "berth.dev/do-not-disrupt";

/// Why `node`, whose evictable pods are `pods`, may not be disrupted now,
/// as an Event message; None when nothing stands in the way.
pub fn blocker(node: Option<&Node>, pods: &[&Pod], pdbs: &[PodDisruptionBudget]) -> Option<String> {
    if let Some(node) = node.filter(|n| do_not_disrupt(n.annotations().get(DO_NOT_DISRUPT))) {
        return Some(format!("node {} has {DO_NOT_DISRUPT}", node.name_any()));
    }
    if let Some(pod) = pods
        .iter()
        .find(|p| do_not_disrupt(p.annotations().get(DO_NOT_DISRUPT)))
    {
        return Some(format!(
            "pod {}/{} has {DO_NOT_DISRUPT}",
            pod.namespace().unwrap_or_default(),
            pod.name_any()
        ));
    }
    pods.iter()
        .find_map(|pod| blocking_pdb(pod, pdbs))
        .map(|pdb| format!("pdb {pdb} prevents disruption"))
}

fn do_not_disrupt(value: Option<&String>) -> bool {
    value.is_some_and(|v| v == "true")
}

/// The first PodDisruptionBudget (`namespace/name`) selecting `pod` that
/// allows no disruption now. A budget the disruption controller has not
/// yet given a status counts as allowing none.
fn blocking_pdb(pod: &Pod, pdbs: &[PodDisruptionBudget]) -> Option<String> {
    let namespace = pod.namespace().unwrap_or_default();
    let labels = pod.labels();
    pdbs.iter()
        .filter(|pdb| pdb.namespace().as_deref() == Some(namespace.as_str()))
        .filter(|pdb| {
            let selector = pdb.spec.as_ref().and_then(|s| s.selector.as_ref());
            selector
                .and_then(|s| LabelSelector::from_label_selector(s).ok())
                .is_some_and(|s| s.matches(labels))
        })
        .find(|pdb| pdb.status.as_ref().map_or(0, |s| s.disruptions_allowed) < 1)
        .map(|pdb| format!("{namespace}/{}", pdb.name_any()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::policy::v1::{PodDisruptionBudgetSpec, PodDisruptionBudgetStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector as Selector, ObjectMeta};
    use std::collections::BTreeMap;

    fn meta(name: &str, labels: &[(&str, &str)], annotations: &[(&str, &str)]) -> ObjectMeta {
        let map = |kv: &[(&str, &str)]| {
            Some(
                kv.iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect::<BTreeMap<_, _>>(),
            )
        };
        ObjectMeta {
            name: Some(name.into()),
            namespace: Some("ns".into()),
            labels: map(labels),
            annotations: map(annotations),
            ..ObjectMeta::default()
        }
    }

    fn pdb(name: &str, app: &str, allowed: i32) -> PodDisruptionBudget {
        PodDisruptionBudget {
            metadata: meta(name, &[], &[]),
            spec: Some(PodDisruptionBudgetSpec {
                selector: Some(Selector {
                    match_labels: Some(BTreeMap::from([("app".to_owned(), app.to_owned())])),
                    ..Selector::default()
                }),
                ..PodDisruptionBudgetSpec::default()
            }),
            status: Some(PodDisruptionBudgetStatus {
                disruptions_allowed: allowed,
                ..PodDisruptionBudgetStatus::default()
            }),
        }
    }

    fn pod(app: &str, annotations: &[(&str, &str)]) -> Pod {
        Pod {
            metadata: meta(app, &[("app", app)], annotations),
            ..Pod::default()
        }
    }

    #[test]
    fn a_pdb_allowing_nothing_blocks_its_pods_node() {
        let web = pod("web", &[]);
        let pdbs = [pdb("other", "db", 0), pdb("web", "web", 0)];
        assert_eq!(
            blocker(None, &[&web], &pdbs).as_deref(),
            Some("pdb ns/web prevents disruption")
        );
        assert_eq!(blocker(None, &[&web], &[pdb("web", "web", 1)]), None);
        assert_eq!(
            blocker(None, &[], &pdbs),
            None,
            "an empty node has nothing to protect"
        );
        let mut elsewhere = pdb("web", "web", 0);
        elsewhere.metadata.namespace = Some("other".into());
        assert_eq!(blocker(None, &[&web], &[elsewhere]), None);
    }

    #[test]
    fn do_not_disrupt_on_the_node_or_a_pod_blocks() {
        let node = Node {
            metadata: meta("n1", &[], &[(DO_NOT_DISRUPT, "true")]),
            ..Node::default()
        };
        assert_eq!(
            blocker(Some(&node), &[], &[]).as_deref(),
            Some("node n1 has berth.dev/do-not-disrupt")
        );
        let pinned = pod("batch", &[(DO_NOT_DISRUPT, "true")]);
        assert_eq!(
            blocker(None, &[&pinned], &[]).as_deref(),
            Some("pod ns/batch has berth.dev/do-not-disrupt")
        );
        let unpinned = pod("batch", &[(DO_NOT_DISRUPT, "false")]);
        assert_eq!(blocker(None, &[&unpinned], &[]), None);
    }
}
