//! Whether a node's pods would fit on the cluster's other nodes, so that
//! consolidation may remove it as underutilized. A deliberately simple
//! first fit: resource requests against allocatable less what is already
//! requested there, NoSchedule/NoExecute taints against tolerations, and
//! `nodeSelector`. Affinity, topology spread and host ports are not
//! considered (documented in the README). Pure.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Node, Pod, Taint, Toleration};
use kube::ResourceExt;

use super::budget::Reason;
use super::settings::Policy;
use crate::claim::node_ready;
use crate::plan::nano;

/// Free room on one node that may take pods.
#[derive(Debug, Clone, PartialEq)]
pub struct Room {
    /// The node's name.
    pub node: String,
    labels: BTreeMap<String, String>,
    taints: Vec<Taint>,
    /// Allocatable less requested, in nano units, per resource (`pods` counts pods).
    free: BTreeMap<String, i128>,
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
    let mut free: BTreeMap<String, i128> = allocatable
        .iter()
        .map(|(resource, q)| (resource.clone(), nano(q).unwrap_or(0)))
        .collect();
    for pod in pods.iter().filter(|p| bound_to(p, &name) && !finished(p)) {
        take(&mut free, &requests(pod));
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
/// largest pods first); the rooms are not changed.
pub fn all_fit(pods: &[&Pod], rooms: &[Room]) -> bool {
    let mut rooms = rooms.to_vec();
    let mut wanted: Vec<(BTreeMap<String, i128>, &Pod)> =
        pods.iter().map(|p| (requests(p), *p)).collect();
    wanted
        .sort_by_key(|(r, _)| std::cmp::Reverse((r.get("cpu").copied(), r.get("memory").copied())));
    wanted.into_iter().all(|(request, pod)| {
        match rooms.iter_mut().find(|room| fits(pod, &request, room)) {
            Some(room) => {
                take(&mut room.free, &request);
                true
            }
            None => false,
        }
    })
}

/// What a pod asks for: its containers' requests summed (init containers
/// run before and are ignored), plus one `pods` slot.
fn requests(pod: &Pod) -> BTreeMap<String, i128> {
    let mut total = BTreeMap::from([("pods".to_owned(), 1_000_000_000)]);
    let containers = pod.spec.iter().flat_map(|s| s.containers.iter());
    for requests in containers.filter_map(|c| c.resources.as_ref()?.requests.as_ref()) {
        for (resource, q) in requests {
            *total.entry(resource.clone()).or_default() += nano(q).unwrap_or(0);
        }
    }
    total
}

fn take(free: &mut BTreeMap<String, i128>, request: &BTreeMap<String, i128>) {
    for (resource, amount) in request {
        if let Some(left) = free.get_mut(resource) {
            *left -= amount;
        }
    }
}

/// Whether `pod` asking `request` may go to `room`. A resource the node
/// does not list is only fine when none of it is asked for (`pods` aside:
/// a node that lists no pod count takes any).
fn fits(pod: &Pod, request: &BTreeMap<String, i128>, room: &Room) -> bool {
    let spec = pod.spec.clone().unwrap_or_default();
    let selected = spec
        .node_selector
        .iter()
        .flatten()
        .all(|(k, v)| room.labels.get(k) == Some(v));
    let tolerated = room
        .taints
        .iter()
        .filter(|t| t.effect != "PreferNoSchedule")
        .all(|t| {
            spec.tolerations
                .iter()
                .flatten()
                .any(|tol| tolerates(tol, t))
        });
    let resources = request
        .iter()
        .all(|(resource, amount)| match room.free.get(resource) {
            Some(left) => amount <= left,
            None => *amount == 0 || resource == "pods",
        });
    selected && tolerated && resources
}

/// Upstream's toleration matching: an empty key with `Exists` tolerates
/// everything; otherwise keys match, values match unless `Exists`, and an
/// empty effect matches every effect.
fn tolerates(toleration: &Toleration, taint: &Taint) -> bool {
    let key = toleration.key.as_deref().unwrap_or_default();
    let exists = toleration.operator.as_deref() == Some("Exists");
    let effect_ok = toleration
        .effect
        .as_deref()
        .is_none_or(|e| e.is_empty() || e == taint.effect);
    if key.is_empty() {
        return exists && effect_ok;
    }
    let value_ok = exists
        || toleration.value.as_deref().unwrap_or_default()
            == taint.value.as_deref().unwrap_or_default();
    key == taint.key && value_ok && effect_ok
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
        Container, NodeCondition, NodeSpec, NodeStatus, PodSpec, ResourceRequirements,
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
}
