//! Where a DaemonSet's pods belong and what they look like (upstream's
//! `daemon/util` and `NodeShouldRunDaemonPod`): which nodes should run a
//! daemon pod (the template's nodeName, nodeSelector, required node affinity,
//! and taints against the template's tolerations plus the automatic ones), and
//! the pod made for one node, pinned there by a `matchFields metadata.name`
//! affinity so the default scheduler places it. Pure functions only.

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{
    Affinity, Node, NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, Pod,
    PodSpec, Toleration,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::ResourceExt;

use crate::controllers::history::CONTROLLER_REVISION_HASH;
use crate::controllers::workload::controller_reference;
use crate::scheduler::plugins::node_affinity::NodeAffinityState;
use crate::scheduler::plugins::tolerated;

/// The deprecated label carrying the template generation a pod was made from.
pub const POD_TEMPLATE_GENERATION: &str = "pod-template-generation";

/// Whether a daemon pod belongs on a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fit {
    /// A daemon pod should be created there if missing.
    pub should_run: bool,
    /// A daemon pod already there may stay (only NoExecute taints evict it).
    pub should_continue_running: bool,
}

impl Fit {
    /// A fit from its two answers.
    pub const fn new(should_run: bool, should_continue_running: bool) -> Self {
        Fit {
            should_run,
            should_continue_running,
        }
    }
}

/// The DaemonSet's pod selector (empty when it has no spec).
pub fn selector(ds: &DaemonSet) -> k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector {
    ds.spec
        .as_ref()
        .map(|s| s.selector.clone())
        .unwrap_or_default()
}

/// The tolerations every daemon pod gets (upstream's
/// `AddOrUpdateDaemonPodTolerations`): it survives not-ready and unreachable
/// nodes, pressure and cordons; host-network pods also a missing network.
pub fn with_daemon_tolerations(spec: &mut PodSpec) {
    let mut automatic = vec![
        ("node.kubernetes.io/not-ready", "NoExecute"),
        ("node.kubernetes.io/unreachable", "NoExecute"),
        ("node.kubernetes.io/disk-pressure", "NoSchedule"),
        ("node.kubernetes.io/memory-pressure", "NoSchedule"),
        ("node.kubernetes.io/pid-pressure", "NoSchedule"),
        ("node.kubernetes.io/unschedulable", "NoSchedule"),
    ];
    if spec.host_network == Some(true) {
        automatic.push(("node.kubernetes.io/network-unavailable", "NoSchedule"));
    }
    let tolerations = spec.tolerations.get_or_insert_with(Vec::new);
    for (key, effect) in automatic {
        let toleration = Toleration {
            key: Some(key.into()),
            operator: Some("Exists".into()),
            effect: Some(effect.into()),
            ..Default::default()
        };
        if !tolerations.contains(&toleration) {
            tolerations.push(toleration);
        }
    }
}

/// Replaces the required node affinity by `metadata.name In [node]` (upstream's
/// `ReplaceDaemonSetPodNodeNameNodeAffinity`); preferred terms stay.
pub fn pin_to_node(affinity: Option<Affinity>, node: &str) -> Affinity {
    let required = NodeSelector {
        node_selector_terms: vec![NodeSelectorTerm {
            match_fields: Some(vec![NodeSelectorRequirement {
                key: "metadata.name".into(),
                operator: "In".into(),
                values: Some(vec![node.into()]),
            }]),
            match_expressions: None,
        }],
    };
    let mut affinity = affinity.unwrap_or_default();
    let node_affinity = affinity
        .node_affinity
        .get_or_insert_with(NodeAffinity::default);
    node_affinity.required_during_scheduling_ignored_during_execution = Some(required);
    affinity
}

/// The node a daemon pod is on or meant for: its nodeName, else the single
/// name of its `matchFields metadata.name In` affinity (upstream's `GetTargetNodeName`).
pub fn target_node(pod: &Pod) -> Option<String> {
    let spec = pod.spec.as_ref()?;
    if let Some(name) = spec.node_name.as_ref().filter(|n| !n.is_empty()) {
        return Some(name.clone());
    }
    let terms = &spec
        .affinity
        .as_ref()?
        .node_affinity
        .as_ref()?
        .required_during_scheduling_ignored_during_execution
        .as_ref()?
        .node_selector_terms;
    terms.iter().find_map(|term| {
        term.match_fields.as_deref()?.iter().find_map(|r| {
            let values = r.values.as_deref()?;
            (r.key == "metadata.name" && r.operator == "In" && values.len() == 1)
                .then(|| values[0].clone())
        })
    })
}

/// The template's pod spec with the automatic tolerations, as upstream's `NewPod`.
fn template_spec(ds: &DaemonSet) -> PodSpec {
    let mut spec = ds
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.clone())
        .unwrap_or_default();
    with_daemon_tolerations(&mut spec);
    spec
}

/// Whether `ds` should run (and keep running) a pod on `node`.
pub fn node_should_run(ds: &DaemonSet, node: &Node) -> Fit {
    let no = Fit::new(false, false);
    let spec = template_spec(ds);
    let node_name = node.metadata.name.as_deref().unwrap_or_default();
    if spec
        .node_name
        .as_deref()
        .is_some_and(|n| !n.is_empty() && n != node_name)
    {
        return no;
    }
    let pod = Pod {
        spec: Some(spec),
        ..Default::default()
    };
    if !NodeAffinityState::new(&pod).matches(node) {
        return no;
    }
    let tolerations = pod
        .spec
        .as_ref()
        .and_then(|s| s.tolerations.as_deref())
        .unwrap_or_default();
    let taints = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.as_deref())
        .unwrap_or_default();
    let untolerated = |effects: &[&str]| {
        taints
            .iter()
            .any(|t| effects.contains(&t.effect.as_str()) && !tolerated(tolerations, t))
    };
    Fit::new(
        !untolerated(&["NoSchedule", "NoExecute"]),
        !untolerated(&["NoExecute"]),
    )
}

/// What of a node can change where daemon pods belong: its labels, taints,
/// cordon and conditions (type and status, not heartbeat times). A node update
/// that leaves these alone wakes no DaemonSet (upstream's `shouldIgnoreNodeUpdate`).
#[derive(Debug, Clone, PartialEq)]
pub struct NodeFacts {
    labels: std::collections::BTreeMap<String, String>,
    taints: Vec<k8s_openapi::api::core::v1::Taint>,
    unschedulable: bool,
    conditions: Vec<(String, String)>,
}

impl NodeFacts {
    /// The facts of `node`.
    pub fn of(node: &Node) -> Self {
        let spec = node.spec.as_ref();
        NodeFacts {
            labels: node.labels().clone(),
            taints: spec.and_then(|s| s.taints.clone()).unwrap_or_default(),
            unschedulable: spec.and_then(|s| s.unschedulable).unwrap_or(false),
            conditions: node
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_deref())
                .unwrap_or_default()
                .iter()
                .map(|c| (c.type_.clone(), c.status.clone()))
                .collect(),
        }
    }
}

/// The template generation of `ds` (its `deprecated.daemonset.template.generation` annotation).
pub fn template_generation(ds: &DaemonSet) -> Option<String> {
    ds.annotations()
        .get(berth_api::kinds::apps::daemonset::TEMPLATE_GENERATION)
        .cloned()
}

/// Whether `pod` was made from the current template: its revision hash or
/// its template generation matches (upstream's `IsPodUpdated`).
pub fn pod_is_updated(pod: &Pod, hash: &str, generation: Option<&str>) -> bool {
    let labels = pod.labels();
    let hash_matches =
        !hash.is_empty() && labels.get(CONTROLLER_REVISION_HASH).map(String::as_str) == Some(hash);
    let generation_matches = generation.is_some()
        && labels.get(POD_TEMPLATE_GENERATION).map(String::as_str) == generation;
    hash_matches || generation_matches
}

/// The daemon pod of `ds` for `node`, labelled with the revision `hash`.
pub fn new_pod(ds: &DaemonSet, node: &str, hash: &str) -> Pod {
    let template = ds
        .spec
        .as_ref()
        .map(|s| s.template.clone())
        .unwrap_or_default();
    let meta = template.metadata.unwrap_or_default();
    let mut labels = meta.labels.unwrap_or_default();
    if let Some(generation) = template_generation(ds) {
        labels.insert(POD_TEMPLATE_GENERATION.into(), generation);
    }
    if !hash.is_empty() {
        labels.insert(CONTROLLER_REVISION_HASH.into(), hash.into());
    }
    let mut spec = template_spec(ds);
    spec.affinity = Some(pin_to_node(spec.affinity.take(), node));
    Pod {
        metadata: ObjectMeta {
            generate_name: Some(format!("{}-", ds.name_any())),
            namespace: ds.namespace(),
            labels: Some(labels),
            annotations: meta.annotations,
            finalizers: meta.finalizers,
            owner_references: Some(vec![controller_reference(ds)]),
            ..Default::default()
        },
        spec: Some(spec),
        status: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn daemonset(spec: serde_json::Value) -> DaemonSet {
        serde_json::from_value(json!({
            "metadata": {"name": "logs", "namespace": "ns", "uid": "u",
                "annotations": {"deprecated.daemonset.template.generation": "3"}},
            "spec": {"selector": {"matchLabels": {"app": "logs"}},
                "template": {"metadata": {"labels": {"app": "logs"}}, "spec": spec}}
        }))
        .unwrap()
    }

    fn node(name: &str, labels: serde_json::Value, taints: serde_json::Value) -> Node {
        serde_json::from_value(json!({
            "metadata": {"name": name, "labels": labels},
            "spec": {"taints": taints}
        }))
        .unwrap()
    }

    #[test]
    fn nodes_are_chosen_by_selector_affinity_name_and_taints() {
        let containers = json!([{"name": "c", "image": "i"}]);
        let plain = daemonset(json!({"containers": containers}));
        let selecting =
            daemonset(json!({"containers": containers, "nodeSelector": {"disk": "ssd"}}));
        let affine = daemonset(
            json!({"containers": containers, "affinity": {"nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}]}}}}),
        );
        let named = daemonset(json!({"containers": containers, "nodeName": "other"}));
        let tolerant = daemonset(json!({"containers": containers,
            "tolerations": [{"key": "gpu", "operator": "Exists"}]}));
        let ssd = node("n1", json!({"disk": "ssd", "zone": "a"}), json!([]));
        let hdd = node("n1", json!({"disk": "hdd"}), json!([]));
        let no_schedule = node(
            "n1",
            json!({}),
            json!([{"key": "gpu", "effect": "NoSchedule"}]),
        );
        let no_execute = node(
            "n1",
            json!({}),
            json!([{"key": "gpu", "effect": "NoExecute"}]),
        );
        let cordoned = node(
            "n1",
            json!({}),
            json!([{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}]),
        );
        let not_ready = node(
            "n1",
            json!({}),
            json!([{"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"}]),
        );
        let cases = [
            ("plain on any node", &plain, &hdd, Fit::new(true, true)),
            (
                "nodeSelector matches",
                &selecting,
                &ssd,
                Fit::new(true, true),
            ),
            (
                "nodeSelector does not",
                &selecting,
                &hdd,
                Fit::new(false, false),
            ),
            ("affinity matches", &affine, &ssd, Fit::new(true, true)),
            ("affinity does not", &affine, &hdd, Fit::new(false, false)),
            ("another nodeName", &named, &ssd, Fit::new(false, false)),
            (
                "NoSchedule keeps new pods out only",
                &plain,
                &no_schedule,
                Fit::new(false, true),
            ),
            (
                "NoExecute evicts",
                &plain,
                &no_execute,
                Fit::new(false, false),
            ),
            (
                "tolerated taint",
                &tolerant,
                &no_execute,
                Fit::new(true, true),
            ),
            (
                "cordon is tolerated",
                &plain,
                &cordoned,
                Fit::new(true, true),
            ),
            (
                "not-ready is tolerated",
                &plain,
                &not_ready,
                Fit::new(true, true),
            ),
        ];
        for (name, ds, node, expected) in cases {
            assert_eq!(node_should_run(ds, node), expected, "{name}");
        }
    }

    #[test]
    fn heartbeats_leave_node_facts_alone_but_labels_and_taints_change_them() {
        let base = node("n1", json!({"role": "logs"}), json!([]));
        let mut heartbeat = base.clone();
        heartbeat.status = Some(
            serde_json::from_value(json!({"conditions": [
            {"type": "Ready", "status": "True", "lastHeartbeatTime": "2026-01-01T00:00:09Z"}]}))
            .unwrap(),
        );
        let mut beat_again = heartbeat.clone();
        beat_again
            .status
            .as_mut()
            .unwrap()
            .conditions
            .as_mut()
            .unwrap()[0]
            .last_heartbeat_time = None;
        assert_eq!(NodeFacts::of(&heartbeat), NodeFacts::of(&beat_again));
        assert_ne!(NodeFacts::of(&base), NodeFacts::of(&heartbeat));
        let relabelled = node("n1", json!({"role": "other"}), json!([]));
        assert_ne!(NodeFacts::of(&base), NodeFacts::of(&relabelled));
        let tainted = node(
            "n1",
            json!({"role": "logs"}),
            json!([{"key": "k", "effect": "NoExecute"}]),
        );
        assert_ne!(NodeFacts::of(&base), NodeFacts::of(&tainted));
    }

    #[test]
    fn daemon_pods_get_automatic_tolerations_once_and_network_unavailable_for_host_network() {
        let mut spec = PodSpec {
            host_network: Some(true),
            ..Default::default()
        };
        with_daemon_tolerations(&mut spec);
        with_daemon_tolerations(&mut spec);
        let keys: Vec<_> = spec
            .tolerations
            .unwrap()
            .into_iter()
            .map(|t| format!("{}:{}", t.key.unwrap(), t.effect.unwrap()))
            .collect();
        assert_eq!(
            keys,
            [
                "node.kubernetes.io/not-ready:NoExecute",
                "node.kubernetes.io/unreachable:NoExecute",
                "node.kubernetes.io/disk-pressure:NoSchedule",
                "node.kubernetes.io/memory-pressure:NoSchedule",
                "node.kubernetes.io/pid-pressure:NoSchedule",
                "node.kubernetes.io/unschedulable:NoSchedule",
                "node.kubernetes.io/network-unavailable:NoSchedule",
            ]
        );
    }

    #[test]
    fn new_pods_are_pinned_labelled_and_owned() {
        let ds = daemonset(json!({"containers": [{"name": "c", "image": "i"}],
            "affinity": {"nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "zone", "operator": "Exists"}]}]},
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {"weight": 1, "preference": {"matchExpressions": [{"key": "x", "operator": "Exists"}]}}]}}}));
        let pod = new_pod(&ds, "n7", "abc");
        assert_eq!(pod.metadata.generate_name.as_deref(), Some("logs-"));
        assert_eq!(pod.labels()["app"], "logs");
        assert_eq!(pod.labels()[CONTROLLER_REVISION_HASH], "abc");
        assert_eq!(pod.labels()[POD_TEMPLATE_GENERATION], "3");
        assert_eq!(pod.owner_references()[0].kind, "DaemonSet");
        assert_eq!(target_node(&pod).as_deref(), Some("n7"));
        let affinity = pod.spec.as_ref().unwrap().affinity.as_ref().unwrap();
        let node_affinity = affinity.node_affinity.as_ref().unwrap();
        assert_eq!(
            node_affinity
                .preferred_during_scheduling_ignored_during_execution
                .as_ref()
                .map(Vec::len),
            Some(1)
        );
        assert!(pod_is_updated(&pod, "abc", None));
        assert!(pod_is_updated(&pod, "other", Some("3")));
        assert!(!pod_is_updated(&pod, "other", Some("4")));
    }
}
