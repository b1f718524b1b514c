//! VolumeBinding (upstream's `volumebinding` plugin): a pod's claims must
//! exist and not be going away; a claim bound to a volume admits only the
//! nodes the volume's node affinity names; an unbound claim of an Immediate
//! class makes the pod wait for the PV controller; an unbound claim of a
//! `WaitForFirstConsumer` class needs, on the node, an Available volume that
//! fits it or a class that can provision there. The claims' side is worked
//! out once per decision (`VolumeBindingState`); the PreBind step ([`plan`],
//! then [`prebind`]) binds the chosen volumes or asks for provisioning on the
//! chosen node, and waits for the claims to be Bound before the pod is.

pub mod objects;
pub mod prebind;

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, PersistentVolume, PersistentVolumeClaim, Pod};

use super::super::cache::{NodeInfo, Snapshot};
use super::super::framework::{CycleState, FilterPlugin, Status};
use crate::controllers::persistent_volume::local_path::SELECTED_NODE;
use crate::controllers::persistent_volume::matching::{
    claim_class, find_matching_volume, is_delay_binding, node_affinity_matches,
};

/// The VolumeBinding plugin.
pub struct VolumeBinding;

/// Upstream's reason for a node a bound volume's node affinity excludes.
pub const ERR_NODE_CONFLICT: &str = "node(s) had volume node affinity conflict";
/// Upstream's reason for a node where a delayed claim can neither bind nor be provisioned.
pub const ERR_BIND_CONFLICT: &str = "node(s) didn't find available persistent volumes to bind";
/// Upstream's reason when a bound claim's volume does not exist.
pub const ERR_PV_NOT_EXIST: &str =
    "node(s) unavailable due to one or more pvc(s) bound to non-existent pv(s)";
/// Upstream's reason for a pod whose Immediate claims are not bound yet.
pub const ERR_UNBOUND_IMMEDIATE: &str = "pod has unbound immediate PersistentVolumeClaims";
/// The provisioner name upstream uses for classes that cannot provision.
pub const NO_PROVISIONER: &str = "kubernetes.io/no-provisioner";

/// An unbound claim whose binding waits for the pod's node.
#[derive(Debug, Clone)]
pub struct DelayedClaim {
    /// The claim.
    pub claim: Arc<PersistentVolumeClaim>,
    /// Whether its class can provision a volume (on any node).
    pub provisionable: bool,
}

/// The PreFilter result: the pod's claims looked up once per decision.
#[derive(Debug, Default)]
pub struct VolumeBindingState {
    /// The pod uses no claims: every node passes.
    pub no_claims: bool,
    /// A rejection for every node (a claim missing, being deleted, unbound Immediate).
    pub reject_all: Option<Status>,
    /// The volumes of the pod's bound claims.
    pub bound: Vec<Arc<PersistentVolume>>,
    /// The pod's unbound delayed-binding claims.
    pub delayed: Vec<DelayedClaim>,
    /// The volumes delayed claims may bind to (only looked up when there are such claims).
    pub candidates: Vec<Arc<PersistentVolume>>,
}

/// The names of the claims `pod` uses (its `persistentVolumeClaim`
/// volumes). Generic ephemeral volumes are not looked at: berth has no
/// ephemeral-volume controller to create their claims yet.
pub fn claim_names(pod: &Pod) -> Vec<String> {
    pod.spec
        .as_ref()
        .and_then(|s| s.volumes.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|v| Some(v.persistent_volume_claim.as_ref()?.claim_name.clone()))
        .collect()
}

impl VolumeBindingState {
    /// Looks up `pod`'s claims, their volumes and classes in `snapshot`.
    pub fn new(pod: &Pod, snapshot: &Snapshot) -> Self {
        let names = claim_names(pod);
        if names.is_empty() {
            return VolumeBindingState {
                no_claims: true,
                ..Default::default()
            };
        }
        let objects = &snapshot.volumes;
        let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
        let mut state = VolumeBindingState::default();
        let mut unbound_immediate = false;
        for name in names {
            let Some(claim) = objects.claims.get(&format!("{namespace}/{name}")) else {
                state.reject_all = Some(Status::unresolvable(format!(
                    "persistentvolumeclaim \"{name}\" not found"
                )));
                return state;
            };
            if claim.metadata.deletion_timestamp.is_some() {
                state.reject_all = Some(Status::unresolvable(format!(
                    "persistentvolumeclaim \"{name}\" is being deleted"
                )));
                return state;
            }
            let volume_name = claim
                .spec
                .as_ref()
                .and_then(|s| s.volume_name.as_deref())
                .unwrap_or("");
            if !volume_name.is_empty() {
                match objects.volumes.get(volume_name) {
                    Some(volume) => state.bound.push(volume.clone()),
                    None => {
                        state.reject_all = Some(Status::unresolvable(ERR_PV_NOT_EXIST));
                        return state;
                    }
                }
                continue;
            }
            let class = objects.classes.get(claim_class(claim));
            if !is_delay_binding(class.map(|c| &**c)) {
                unbound_immediate = true;
                continue;
            }
            state.delayed.push(DelayedClaim {
                claim: claim.clone(),
                provisionable: class.is_some_and(|c| c.provisioner != NO_PROVISIONER),
            });
        }
        if unbound_immediate {
            state.reject_all = Some(Status::unresolvable(ERR_UNBOUND_IMMEDIATE));
            return state;
        }
        if !state.delayed.is_empty() {
            state.candidates = objects
                .volumes
                .iter()
                .filter(|v| v.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Available"))
                .cloned()
                .collect();
        }
        state
    }

    /// For each delayed claim, the volume it would bind to on `node` (`None`:
    /// provision one); `Err` with the reason when some claim can do neither.
    pub fn bindings_on(&self, node: &Node) -> Result<Vec<ClaimBinding>, &'static str> {
        let mut chosen: Vec<&str> = Vec::new();
        let mut bindings = Vec::with_capacity(self.delayed.len());
        for delayed in &self.delayed {
            let free = self
                .candidates
                .iter()
                .map(|v| &**v)
                .filter(|v| !chosen.contains(&v.metadata.name.as_deref().unwrap_or("")));
            let volume = find_matching_volume(&delayed.claim, free, Some(node), true);
            match volume {
                Some(volume) => {
                    let name = volume.metadata.name.as_deref().unwrap_or("");
                    chosen.push(name);
                    bindings.push(ClaimBinding {
                        claim: delayed.claim.clone(),
                        volume: Some(name.to_owned()),
                    });
                }
                None => {
                    let selected = delayed
                        .claim
                        .metadata
                        .annotations
                        .as_ref()
                        .and_then(|a| a.get(SELECTED_NODE));
                    let elsewhere =
                        selected.is_some_and(|s| Some(s) != node.metadata.name.as_ref());
                    if !delayed.provisionable || elsewhere {
                        return Err(ERR_BIND_CONFLICT);
                    }
                    bindings.push(ClaimBinding {
                        claim: delayed.claim.clone(),
                        volume: None,
                    });
                }
            }
        }
        Ok(bindings)
    }
}

/// What PreBind does for one delayed claim on the chosen node.
#[derive(Debug, Clone)]
pub struct ClaimBinding {
    /// The claim.
    pub claim: Arc<PersistentVolumeClaim>,
    /// The Available volume to pre-bind it to, or `None` to have one provisioned.
    pub volume: Option<String>,
}

/// The PreBind plan for `pod` on `node`: its delayed claims' bindings
/// (empty when it has none, or when the node is unknown).
pub fn plan(pod: &Pod, snapshot: &Snapshot, node: &str) -> Vec<ClaimBinding> {
    let state = VolumeBindingState::new(pod, snapshot);
    let Some(node) = snapshot.node(node).and_then(|n| n.node.clone()) else {
        return Vec::new();
    };
    state.bindings_on(&node).unwrap_or_default()
}

impl FilterPlugin for VolumeBinding {
    fn name(&self) -> &'static str {
        "VolumeBinding"
    }

    fn skip(&self, state: &CycleState) -> bool {
        state.volumes.no_claims
    }

    fn filter(&self, state: &CycleState, info: &NodeInfo) -> Status {
        let volumes = &state.volumes;
        if let Some(rejection) = &volumes.reject_all {
            return rejection.clone();
        }
        let Some(node) = info.node.as_deref() else {
            return Status::success();
        };
        if volumes
            .bound
            .iter()
            .any(|v| !node_affinity_matches(v, node))
        {
            return Status::unresolvable(ERR_NODE_CONFLICT);
        }
        match volumes.bindings_on(node) {
            Ok(_) => Status::success(),
            Err(reason) => Status::unresolvable(reason),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::framework::Code;
    use crate::scheduler::testing::node;
    use serde_json::{json, Value};

    /// A filter's rejection (code and reasons), `None` when the node passes.
    type Verdict = Option<(Code, String)>;

    fn pod_with_claims(claims: &[&str]) -> Pod {
        let volumes: Vec<Value> = claims
            .iter()
            .map(|c| json!({"name": c, "persistentVolumeClaim": {"claimName": c}}))
            .collect();
        serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "ns"},
            "spec": {"containers": [{"name": "c", "image": "i"}], "volumes": volumes},
        }))
        .unwrap()
    }

    fn pinned(name: &str, host: &str, extra: Value) -> PersistentVolume {
        let mut pv = json!({
            "metadata": {"name": name},
            "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "storageClassName": "local",
                     "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                         {"key": "kubernetes.io/hostname", "operator": "In", "values": [host]}]}]}}},
            "status": {"phase": "Available"},
        });
        for (k, v) in extra.as_object().unwrap() {
            pv["spec"][k] = v.clone();
        }
        serde_json::from_value(pv).unwrap()
    }

    fn claim(name: &str, class: &str, extra: Value) -> PersistentVolumeClaim {
        let mut c = json!({
            "metadata": {"name": name, "namespace": "ns", "uid": format!("uid-{name}")},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}},
                     "storageClassName": class},
        });
        for (k, v) in extra.as_object().unwrap() {
            match k.as_str() {
                "volumeName" => c["spec"]["volumeName"] = v.clone(),
                other => c["metadata"][other] = v.clone(),
            }
        }
        serde_json::from_value(c).unwrap()
    }

    fn snapshot() -> Snapshot {
        let mut snapshot = Snapshot::default();
        for name in ["n1", "n2"] {
            snapshot.apply_node(node(
                name,
                json!({"cpu": "4", "memory": "8Gi", "pods": "10"}),
                json!({"labels": {"kubernetes.io/hostname": name}}),
            ));
        }
        let objects = &mut snapshot.volumes;
        for (name, provisioner, mode) in [
            ("local-path", "berth.dev/local-path", "WaitForFirstConsumer"),
            ("local", NO_PROVISIONER, "WaitForFirstConsumer"),
            ("fast", "example.com/fast", "Immediate"),
        ] {
            objects.classes.insert(
                serde_json::from_value(json!({"metadata": {"name": name}, "provisioner": provisioner, "volumeBindingMode": mode}))
                    .unwrap(),
            );
        }
        objects.volumes.insert(pinned(
            "bound-n1",
            "n1",
            json!({"claimRef": {"name": "bound", "namespace": "ns", "uid": "uid-bound"}}),
        ));
        objects.volumes.insert(pinned("free-n2", "n2", json!({})));
        objects
            .claims
            .insert(claim("bound", "local", json!({"volumeName": "bound-n1"})));
        objects
            .claims
            .insert(claim("dangling", "local", json!({"volumeName": "gone"})));
        objects.claims.insert(claim("immediate", "fast", json!({})));
        objects.claims.insert(claim("lp", "local-path", json!({})));
        objects.claims.insert(claim(
            "lp-on-n2",
            "local-path",
            json!({"annotations": {SELECTED_NODE: "n2"}}),
        ));
        objects.claims.insert(claim("static", "local", json!({})));
        objects.claims.insert(claim("static-2", "local", json!({})));
        objects.claims.insert(claim(
            "going",
            "local-path",
            json!({"deletionTimestamp": "2026-01-01T00:00:00Z"}),
        ));
        snapshot
    }

    #[test]
    fn nodes_are_filtered_by_the_pods_claims() {
        let snapshot = snapshot();
        let unresolvable = |r: &str| Some((Code::UnschedulableAndUnresolvable, r.to_owned()));
        // (case, claims, verdict on n1, verdict on n2); None = passes.
        let cases: Vec<(&str, Vec<&str>, Verdict, Verdict)> = vec![
            ("no claims", vec![], None, None),
            (
                "missing claim",
                vec!["nope"],
                unresolvable("persistentvolumeclaim \"nope\" not found"),
                unresolvable("persistentvolumeclaim \"nope\" not found"),
            ),
            (
                "claim being deleted",
                vec!["going"],
                unresolvable("persistentvolumeclaim \"going\" is being deleted"),
                unresolvable("persistentvolumeclaim \"going\" is being deleted"),
            ),
            (
                "bound volume pinned to n1",
                vec!["bound"],
                None,
                unresolvable(ERR_NODE_CONFLICT),
            ),
            (
                "bound to a missing volume",
                vec!["dangling"],
                unresolvable(ERR_PV_NOT_EXIST),
                unresolvable(ERR_PV_NOT_EXIST),
            ),
            (
                "unbound immediate",
                vec!["immediate"],
                unresolvable(ERR_UNBOUND_IMMEDIATE),
                unresolvable(ERR_UNBOUND_IMMEDIATE),
            ),
            ("local-path provisions anywhere", vec!["lp"], None, None),
            (
                "provisioning already on n2",
                vec!["lp-on-n2"],
                unresolvable(ERR_BIND_CONFLICT),
                None,
            ),
            (
                "static volume only on n2",
                vec!["static"],
                unresolvable(ERR_BIND_CONFLICT),
                None,
            ),
            (
                "two claims, one free static volume",
                vec!["static", "static-2"],
                unresolvable(ERR_BIND_CONFLICT),
                unresolvable(ERR_BIND_CONFLICT),
            ),
            (
                "bound on n1 and static on n2",
                vec!["bound", "static"],
                unresolvable(ERR_BIND_CONFLICT),
                unresolvable(ERR_NODE_CONFLICT),
            ),
        ];
        for (name, claims, n1, n2) in cases {
            let pod = pod_with_claims(&claims);
            let state = CycleState::new(&pod, &snapshot);
            assert_eq!(VolumeBinding.skip(&state), claims.is_empty(), "{name}");
            for (node, want) in [("n1", n1), ("n2", n2)] {
                let status = VolumeBinding.filter(&state, snapshot.node(node).unwrap());
                let got = (!status.is_success()).then(|| (status.code, status.reasons.join(", ")));
                assert_eq!(got, want, "{name} on {node}");
            }
        }
    }

    #[test]
    fn the_plan_binds_a_fitting_volume_or_provisions() {
        let snapshot = snapshot();
        let pod = pod_with_claims(&["static", "lp", "bound"]);
        let planned: Vec<(String, Option<String>)> = plan(&pod, &snapshot, "n2")
            .into_iter()
            .map(|b| (b.claim.metadata.name.clone().unwrap(), b.volume))
            .collect();
        assert_eq!(
            planned,
            [
                ("static".to_owned(), Some("free-n2".to_owned())),
                ("lp".to_owned(), None)
            ]
        );
        assert!(plan(&pod_with_claims(&["bound"]), &snapshot, "n1").is_empty());
    }
}
