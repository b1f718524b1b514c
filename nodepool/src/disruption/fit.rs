//! Whether a node's pods would fit on the cluster's other nodes, so that
//! consolidation may remove it as underutilized: a first-fit simulation of
//! the scheduler. A pod goes to a node only if its requests fit what is left
//! there, the node's labels satisfy its nodeSelector and required node
//! affinity, its taints are tolerated, and no required pod anti-affinity
//! (its own or that of the pods there, those placed earlier in the same
//! simulation included) or `DoNotSchedule` topology spread would break.
//! The predicates are the provisioner's ([`crate::constraints`]). Pure.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Node, Pod, Taint};
use kube::ResourceExt;

use super::budget::Reason;
use super::settings::Policy;
use crate::claim::node_ready;
use crate::constraints::topology::{Incoming, Member, Site};
use crate::plan::nano;
use crate::provisioning::fit::{pod_requests, Resources};

/// Free room on one node that may take pods.
#[derive(Debug, Clone, PartialEq)]
pub struct Room {
    /// The node's name.
    pub node: String,
    labels: BTreeMap<String, String>,
    taints: Vec<Taint>,
    /// Allocatable less requested, in nano units, per resource (`pods` counts pods).
    free: Resources,
    /// The pods there, for anti-affinity and topology spread.
    pods: Vec<Member>,
}

impl Room {
    fn site(&self) -> Site<'_> {
        Site {
            name: &self.node,
            labels: &self.labels,
            members: &self.pods,
        }
    }
}

/// The room left on `node` given every pod in the cluster; None when the
/// node takes no pods (not Ready, or cordoned).
pub fn room(node: &Node, pods: &[Pod]) -> Option<Room> {
    let schedulable = node.spec.as_ref().and_then(|s| s.unschedulable) != Some(true);
    if !schedulable || !node_ready(node) {
        return None;
    }
    let name = node.name_any();
    let allocatable = node
        .status
        .as_ref()
        .and_then(|s| s.allocatable.clone())
        .unwrap_or_default();
    let mut free: Resources = allocatable
        .iter()
        .map(|(resource, q)| (resource.clone(), nano(q).unwrap_or(0)))
        .collect();
    let mut members = Vec::new();
    for pod in pods.iter().filter(|p| bound_to(p, &name) && !finished(p)) {
        take(&mut free, &requests(pod));
        members.push(Member::of(pod));
    }
    Some(Room {
        node: name,
        labels: node.labels().clone(),
        taints: node
            .spec
            .as_ref()
            .and_then(|s| s.taints.clone())
            .unwrap_or_default(),
        free,
        pods: members,
    })
}

/// Why a node whose evictable pods are `pods` may be consolidated under
/// `policy`, given the room on the other nodes: `Empty` without pods,
/// `Underutilized` when they all fit `elsewhere` (WhenEmptyOrUnderutilized
/// only).
pub fn consolidation(policy: Policy, pods: &[&Pod], elsewhere: &[Room]) -> Option<Reason> {
    if pods.is_empty() {
        return Some(Reason::Empty);
    }
    (policy == Policy::WhenEmptyOrUnderutilized && all_fit(pods, elsewhere))
        .then_some(Reason::Underutilized)
}

/// Whether every pod of `pods` finds a place in `rooms` (first fit, the
/// largest pods first, each placed pod counting for the next); the rooms
/// are not changed.
pub fn all_fit(pods: &[&Pod], rooms: &[Room]) -> bool {
    let mut rooms = rooms.to_vec();
    let mut wanted: Vec<(Resources, Incoming)> = pods
        .iter()
        .map(|p| (requests(p), Incoming::of(p)))
        .collect();
    wanted
        .sort_by_key(|(r, _)| std::cmp::Reverse((r.get("cpu").copied(), r.get("memory").copied())));
    wanted.into_iter().all(|(request, pod)| {
        let sites: Vec<Site> = rooms.iter().map(Room::site).collect();
        let found = (0..rooms.len()).find(|&at| fits(&pod, &request, &rooms[at], &sites, at));
        match found {
            Some(at) => {
                take(&mut rooms[at].free, &request);
                rooms[at].pods.push(pod.member);
                true
            }
            None => false,
        }
    })
}

/// What a pod asks of a node, as the provisioner counts it.
fn requests(pod: &Pod) -> Resources {
    pod.spec.as_ref().map(pod_requests).unwrap_or_default()
}

fn take(free: &mut Resources, request: &Resources) {
    for (resource, amount) in request {
        if let Some(left) = free.get_mut(resource) {
            *left -= amount;
        }
    }
}

/// Whether `pod` asking `request` may go to `room`, which is `sites[at]`.
/// A resource the node does not list is only fine when none of it is asked
/// for (`pods` aside: a node that lists no pod count takes any).
fn fits(pod: &Incoming, request: &Resources, room: &Room, sites: &[Site], at: usize) -> bool {
    let resources = request
        .iter()
        .all(|(resource, amount)| match room.free.get(resource) {
            Some(left) => amount <= left,
            None => *amount == 0 || resource == "pods",
        });
    resources && pod.constraints.admit(&room.labels, &room.taints).is_ok() && pod.allowed(sites, at)
}

fn bound_to(pod: &Pod, node: &str) -> bool {
    pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node)
}

fn finished(pod: &Pod) -> bool {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    matches!(phase, Some("Succeeded" | "Failed"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        Container, NodeCondition, NodeSpec, NodeStatus, PodSpec, ResourceRequirements, Toleration,
    };
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn q(map: &[(&str, &str)]) -> BTreeMap<String, Quantity> {
        map.iter()
            .map(|(k, v)| ((*k).to_owned(), Quantity((*v).to_owned())))
            .collect()
    }

    fn node(name: &str, cpu: &str, taints: Vec<Taint>, ready: bool, cordoned: bool) -> Node {
        Node {
            metadata: ObjectMeta {
                name: Some(name.into()),
                labels: Some(BTreeMap::from([("zone".to_owned(), name.to_owned())])),
                ..ObjectMeta::default()
            },
            spec: Some(NodeSpec {
                taints: Some(taints),
                unschedulable: Some(cordoned),
                ..NodeSpec::default()
            }),
            status: Some(NodeStatus {
                allocatable: Some(q(&[("cpu", cpu), ("memory", "4Gi"), ("pods", "2")])),
                conditions: Some(vec![NodeCondition {
                    type_: "Ready".into(),
                    status: if ready { "True" } else { "False" }.into(),
                    ..NodeCondition::default()
                }]),
                ..NodeStatus::default()
            }),
        }
    }

    fn pod(node: &str, cpu: &str) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(format!("p-{cpu}")),
                ..ObjectMeta::default()
            },
            spec: Some(PodSpec {
                node_name: Some(node.into()),
                containers: vec![Container {
                    name: "c".into(),
                    resources: Some(ResourceRequirements {
                        requests: Some(q(&[("cpu", cpu)])),
                        ..ResourceRequirements::default()
                    }),
                    ..Container::default()
                }],
                ..PodSpec::default()
            }),
            ..Pod::default()
        }
    }

    #[test]
    fn room_is_allocatable_less_requests_and_only_on_schedulable_ready_nodes() {
        let pods = [pod("a", "1500m"), pod("b", "1")];
        let a = room(&node("a", "2", vec![], true, false), &pods).unwrap();
        assert_eq!(a.free["cpu"], 500_000_000);
        assert_eq!(a.free["pods"], 1_000_000_000);
        assert!(room(&node("a", "2", vec![], false, false), &pods).is_none());
        assert!(room(&node("a", "2", vec![], true, true), &pods).is_none());
    }

    #[test]
    fn pods_fit_by_requests_first_fit_largest_first() {
        let rooms = [
            room(&node("a", "1", vec![], true, false), &[]).unwrap(),
            room(&node("b", "2", vec![], true, false), &[]).unwrap(),
        ];
        let (big, small, medium) = (pod("x", "2"), pod("x", "500m"), pod("x", "1"));
        assert!(all_fit(&[&small, &big], &rooms), "2 goes to b, 500m to a");
        assert!(all_fit(&[&medium, &medium], &rooms));
        assert!(
            !all_fit(&[&big, &medium, &small], &rooms),
            "3.5 cpu do not fit in 3"
        );
        assert!(all_fit(&[], &[]), "no pods always fit");
        assert!(!all_fit(&[&small], &[]), "no room, no fit");
    }

    #[test]
    fn the_policy_decides_whether_underutilized_counts() {
        let rooms = [room(&node("b", "2", vec![], true, false), &[]).unwrap()];
        let (small, big) = (pod("a", "1"), pod("a", "3"));
        let both = Policy::WhenEmptyOrUnderutilized;
        assert_eq!(consolidation(both, &[], &[]), Some(Reason::Empty));
        assert_eq!(
            consolidation(Policy::WhenEmpty, &[], &[]),
            Some(Reason::Empty)
        );
        assert_eq!(
            consolidation(both, &[&small], &rooms),
            Some(Reason::Underutilized)
        );
        assert_eq!(consolidation(Policy::WhenEmpty, &[&small], &rooms), None);
        assert_eq!(consolidation(both, &[&big], &rooms), None, "does not fit");
    }

    #[test]
    fn taints_and_node_selectors_are_honoured() {
        let taint = Taint {
            key: "dedicated".into(),
            value: Some("gpu".into()),
            effect: "NoSchedule".into(),
            ..Taint::default()
        };
        let rooms = [room(&node("a", "4", vec![taint], true, false), &[]).unwrap()];
        let mut p = pod("x", "1");
        assert!(!all_fit(&[&p], &rooms), "untolerated taint");
        let spec = p.spec.as_mut().unwrap();
        spec.tolerations = Some(vec![Toleration {
            key: Some("dedicated".into()),
            value: Some("cpu".into()),
            ..Toleration::default()
        }]);
        assert!(!all_fit(&[&p], &rooms), "wrong value");
        p.spec.as_mut().unwrap().tolerations = Some(vec![Toleration {
            key: Some("dedicated".into()),
            operator: Some("Exists".into()),
            ..Toleration::default()
        }]);
        assert!(all_fit(&[&p], &rooms));
        p.spec.as_mut().unwrap().node_selector =
            Some(BTreeMap::from([("zone".into(), "b".into())]));
        assert!(!all_fit(&[&p], &rooms), "selector names another zone");
        p.spec.as_mut().unwrap().node_selector =
            Some(BTreeMap::from([("zone".into(), "a".into())]));
        assert!(all_fit(&[&p], &rooms));
    }

    #[test]
    fn unlisted_resources_and_pod_slots() {
        let rooms = [room(
            &node("a", "4", vec![], true, false),
            &[pod("a", "0"), pod("a", "0")],
        )
        .unwrap()];
        assert!(!all_fit(&[&pod("x", "0")], &rooms), "both pod slots taken");
        let mut gpu = pod("x", "1");
        let requests = gpu.spec.as_mut().unwrap().containers[0]
            .resources
            .as_mut()
            .unwrap();
        requests
            .requests
            .as_mut()
            .unwrap()
            .insert("nvidia.com/gpu".into(), Quantity("1".into()));
        let free = [room(&node("b", "4", vec![], true, false), &[]).unwrap()];
        assert!(!all_fit(&[&gpu], &free), "node lists no GPUs");
    }

    /// A pod of app `w` in `default` bound to `node`, asking 100m, with
    /// `extra` merged into its spec.
    fn w(node: &str, name: &str, extra: serde_json::Value) -> Pod {
        let mut spec = serde_json::json!({
            "nodeName": node,
            "containers": [{"name": "c", "resources": {"requests": {"cpu": "100m"}}}]
        });
        if let (Some(spec), serde_json::Value::Object(extra)) = (spec.as_object_mut(), extra) {
            spec.extend(extra);
        }
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "namespace": "default", "labels": {"app": "w"}},
            "spec": spec
        }))
        .unwrap()
    }

    fn none() -> serde_json::Value {
        serde_json::json!({})
    }

    fn apart() -> serde_json::Value {
        serde_json::json!({"affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": {"app": "w"}}}]}}})
    }

    fn spread(key: &str, when: &str) -> serde_json::Value {
        serde_json::json!({"topologySpreadConstraints": [{"topologyKey": key, "maxSkew": 1,
            "whenUnsatisfiable": when, "labelSelector": {"matchLabels": {"app": "w"}}}]})
    }

    fn rooms(nodes: &[&str], pods: &[Pod]) -> Vec<Room> {
        nodes
            .iter()
            .map(|n| room(&node(n, "4", vec![], true, false), pods).unwrap())
            .collect()
    }

    const BOTH: Policy = Policy::WhenEmptyOrUnderutilized;

    #[test]
    fn a_node_selector_only_the_candidate_matches_keeps_it() {
        let elsewhere = rooms(&["b"], &[]);
        let pinned = w("a", "x", serde_json::json!({"nodeSelector": {"zone": "a"}}));
        assert_eq!(consolidation(BOTH, &[&pinned], &elsewhere), None);
        let affinity = w(
            "a",
            "x",
            serde_json::json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "zone", "operator": "NotIn", "values": ["b"]}]}]}}}}),
        );
        assert_eq!(consolidation(BOTH, &[&affinity], &elsewhere), None);
        let free = w("a", "x", none());
        assert_eq!(
            consolidation(BOTH, &[&free], &elsewhere),
            Some(Reason::Underutilized)
        );
    }

    #[test]
    fn hostname_anti_affinity_keeps_pods_apart_both_ways_and_within_the_simulation() {
        let (x, y) = (w("a", "x", apart()), w("a", "y", apart()));
        let there = [w("b", "t", apart())];
        assert!(!all_fit(&[&x], &rooms(&["b"], &there)), "t is on b");
        assert!(!all_fit(&[&x, &y], &rooms(&["b"], &[])), "x and y together");
        assert!(all_fit(&[&x, &y], &rooms(&["b", "c"], &[])), "one each");
        let plain = w("a", "x", none());
        assert!(
            !all_fit(&[&plain], &rooms(&["b"], &there)),
            "t keeps app=w off b"
        );
        assert!(all_fit(&[&plain], &rooms(&["b"], &[w("b", "t", none())])));
        let other = w("a", "x", apart());
        let mut elsewhere: Pod = w("b", "t", none());
        elsewhere.metadata.namespace = Some("other".into());
        assert!(
            all_fit(&[&other], &rooms(&["b"], &[elsewhere])),
            "the term counts its own namespace"
        );
    }

    #[test]
    fn do_not_schedule_spread_that_would_break_keeps_the_node() {
        // b already has a pod of w; c has none but no cpu left.
        let busy = pod("c", "4");
        let cluster = |extra: serde_json::Value| vec![w("b", "t", extra), busy.clone()];
        let elsewhere = |pods: &[Pod]| rooms(&["b", "c"], pods);
        let by_host = spread("kubernetes.io/hostname", "DoNotSchedule");
        let x = w("a", "x", by_host.clone());
        assert_eq!(
            consolidation(BOTH, &[&x], &elsewhere(&cluster(by_host))),
            None,
            "b would hold 2 against c's 0"
        );
        let by_zone = spread("zone", "DoNotSchedule");
        let x = w("a", "x", by_zone.clone());
        assert_eq!(
            consolidation(BOTH, &[&x], &elsewhere(&cluster(by_zone))),
            None
        );
        let soft = spread("zone", "ScheduleAnyway");
        let x = w("a", "x", soft.clone());
        assert_eq!(
            consolidation(BOTH, &[&x], &elsewhere(&cluster(soft))),
            Some(Reason::Underutilized),
            "ScheduleAnyway only scores"
        );
        let x = w("a", "x", none());
        assert_eq!(
            consolidation(BOTH, &[&x], &elsewhere(&cluster(none()))),
            Some(Reason::Underutilized)
        );
        let x = w("a", "x", spread("kubernetes.io/hostname", "DoNotSchedule"));
        let balanced = [w("b", "t", none())];
        assert!(
            all_fit(&[&x], &rooms(&["b", "c"], &balanced)),
            "goes to c, the emptier domain"
        );
    }
}
