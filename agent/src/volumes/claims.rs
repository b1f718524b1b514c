//! A pod's `persistentVolumeClaim` volumes resolved, purely, against the
//! claims and volumes the agent fetched: claim → bound PV → the node path to
//! bind into containers. Failures read as kubelet's volume manager words
//! them (`unable to attach or mount volumes: … error processing PVC ns/x:
//! PVC is not bound`). Never touches the filesystem or the API.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Pod};

/// A claim is bound, as the PV controller leaves it: the claim names its
/// volume and the volume's `claimRef` names the claim (UID matching when set).
fn is_bound_to(pv: &PersistentVolume, claim: &PersistentVolumeClaim) -> bool {
    let Some(reference) = pv.spec.as_ref().and_then(|s| s.claim_ref.as_ref()) else {
        return false;
    };
    reference.name == claim.metadata.name
        && reference.namespace == claim.metadata.namespace
        && (reference.uid.is_none() || reference.uid == claim.metadata.uid)
}

/// What backs a claim's volume on the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backing {
    /// A `local` PV: its path must exist, unless it is a `local-path`
    /// volume pinned to this node (`provisioned_here`), whose directory the
    /// agent makes on first use.
    Local {
        /// Made by `berth.dev/local-path` for the pod's node.
        provisioned_here: bool,
    },
    /// A `hostPath` PV, with its `type` (empty: no check).
    HostPath {
        /// `DirectoryOrCreate`, `Directory`, … or empty.
        type_: String,
    },
}

/// One claim volume of a pod, resolved to a path on the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimMount {
    /// The pod volume's name.
    pub volume: String,
    /// The bound PersistentVolume's name.
    pub persistent_volume: String,
    /// The directory on the node.
    pub path: String,
    /// What kind of PV it is.
    pub backing: Backing,
}

/// Why a pod's claims cannot be mounted yet; the text is the FailedMount
/// event's (kubelet's), and the pod waits in ContainerCreating until fixed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct MountError(pub String);

/// The claim names a pod's volumes refer to, sorted, so the agent knows what to fetch.
pub fn claim_names(pod: &Pod) -> Vec<String> {
    let mut names: Vec<String> = pod
        .spec
        .iter()
        .flat_map(|s| s.volumes.iter().flatten())
        .filter_map(|v| v.persistent_volume_claim.as_ref())
        .map(|c| c.claim_name.clone())
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Whether any of the pod's containers has run (its volumes were mounted
/// then; a claim deleted since does not stop it, as kubelet keeps mounts).
pub fn has_started(pod: &Pod) -> bool {
    let Some(status) = pod.status.as_ref() else {
        return false;
    };
    status.phase.as_deref() == Some("Running")
        || status.container_statuses.iter().flatten().any(|c| {
            c.state
                .as_ref()
                .is_some_and(|s| s.running.is_some() || s.terminated.is_some())
        })
}

/// Resolves the claim `claim_name` of pod volume `volume`, or says why not
/// (the part after `error processing PVC ns/name: `).
pub fn resolve_volume(
    pod: &Pod,
    volume: &str,
    claim_name: &str,
    claims: &BTreeMap<String, PersistentVolumeClaim>,
    volumes: &BTreeMap<String, PersistentVolume>,
) -> Result<ClaimMount, String> {
    let Some(claim) = claims.get(claim_name) else {
        return Err(format!(
            "failed to fetch PVC from API server: persistentvolumeclaims {claim_name:?} not found"
        ));
    };
    let namespace = pod.metadata.namespace.as_deref().unwrap_or_default();
    if claim.metadata.deletion_timestamp.is_some() && !has_started(pod) {
        return Err(format!(
            "can't start pod because PVC {namespace}/{claim_name} is being deleted"
        ));
    }
    let Some(pv_name) = claim
        .spec
        .as_ref()
        .and_then(|s| s.volume_name.as_deref())
        .filter(|n| !n.is_empty())
    else {
        return Err("PVC is not bound".into());
    };
    let Some(pv) = volumes.get(pv_name) else {
        return Err(format!(
            "failed to fetch PV {pv_name} from API server: persistentvolumes {pv_name:?} not found"
        ));
    };
    if !is_bound_to(pv, claim) {
        return Err(format!(
            "PVC is not bound: PV {pv_name} has no claimRef naming {namespace}/{claim_name}"
        ));
    }
    let spec = pv.spec.as_ref();
    let node = pod.spec.as_ref().and_then(|s| s.node_name.as_deref());
    let (path, backing) = if let Some(local) = spec.and_then(|s| s.local.as_ref()) {
        let provisioned_here =
            super::is_local_path(pv) && node.is_some() && super::affinity_node(pv) == node;
        (local.path.clone(), Backing::Local { provisioned_here })
    } else if let Some(host) = spec.and_then(|s| s.host_path.as_ref()) {
        let type_ = host.type_.clone().unwrap_or_default();
        (host.path.clone(), Backing::HostPath { type_ })
    } else {
        return Err(format!(
            "PV {pv_name} has a volume source berth's agent cannot mount; only local and hostPath PersistentVolumes are supported"
        ));
    };
    Ok(ClaimMount {
        volume: volume.to_owned(),
        persistent_volume: pv_name.to_owned(),
        path,
        backing,
    })
}

/// Every claim volume of `pod` resolved, or one error naming each that is not.
pub fn resolve(
    pod: &Pod,
    claims: &BTreeMap<String, PersistentVolumeClaim>,
    volumes: &BTreeMap<String, PersistentVolume>,
) -> Result<Vec<ClaimMount>, MountError> {
    let namespace = pod.metadata.namespace.as_deref().unwrap_or_default();
    let mut mounts = Vec::new();
    let mut failed = Vec::new();
    let mut reasons = Vec::new();
    for volume in pod.spec.iter().flat_map(|s| s.volumes.iter().flatten()) {
        let Some(source) = &volume.persistent_volume_claim else {
            continue;
        };
        match resolve_volume(pod, &volume.name, &source.claim_name, claims, volumes) {
            Ok(mount) => mounts.push(mount),
            Err(reason) => {
                failed.push(volume.name.clone());
                reasons.push(format!(
                    "error processing PVC {namespace}/{}: {reason}",
                    source.claim_name
                ));
            }
        }
    }
    if failed.is_empty() {
        return Ok(mounts);
    }
    let names = failed.join(" ");
    Err(MountError(format!(
        "unable to attach or mount volumes: unmounted volumes=[{names}], unattached volumes=[], failed to process volumes=[{names}]: {}",
        reasons.join("; ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(status: serde_json::Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "db", "namespace": "shop", "uid": "p1"},
            "spec": {"nodeName": "n1", "containers": [{"name": "db", "image": "db:1"}],
                "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data-db"}},
                            {"name": "tmp", "emptyDir": {}}]},
            "status": status
        }))
        .unwrap()
    }

    fn claim(volume_name: Option<&str>, deleting: bool) -> PersistentVolumeClaim {
        let mut meta = json!({"name": "data-db", "namespace": "shop", "uid": "c1"});
        if deleting {
            meta["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
        }
        serde_json::from_value(json!({"metadata": meta, "spec": {"volumeName": volume_name}}))
            .unwrap()
    }

    fn pv(source: serde_json::Value, claim_ref: serde_json::Value, node: &str) -> PersistentVolume {
        let mut spec = json!({
            "claimRef": claim_ref,
            "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                {"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}]}]}}
        });
        spec.as_object_mut()
            .unwrap()
            .extend(source.as_object().unwrap().clone());
        serde_json::from_value(json!({
            "metadata": {"name": "pv1", "annotations": {super::super::PROVISIONED_BY_ANNOTATION: super::super::LOCAL_PATH_PROVISIONER}},
            "spec": spec
        }))
        .unwrap()
    }

    /// A case: name, pod status, claim, volume, expected resolution.
    type Case = (
        &'static str,
        serde_json::Value,
        Option<PersistentVolumeClaim>,
        Option<PersistentVolume>,
        Result<ClaimMount, String>,
    );

    #[test]
    fn claims_resolve_to_their_bound_volume_or_say_why_not() {
        let ours = json!({"name": "data-db", "namespace": "shop", "uid": "c1"});
        let local = json!({"local": {"path": "/lp/pvc-c1_shop_data-db"}});
        let pending = json!({"phase": "Pending"});
        let running = json!({"phase": "Running"});
        let ok_local = |provisioned_here| {
            Ok(ClaimMount {
                volume: "data".into(),
                persistent_volume: "pv1".into(),
                path: "/lp/pvc-c1_shop_data-db".into(),
                backing: Backing::Local { provisioned_here },
            })
        };
        let cases: Vec<Case> = vec![
            ("bound local-path volume of this node", pending.clone(), Some(claim(Some("pv1"), false)), Some(pv(local.clone(), ours.clone(), "n1")), ok_local(true)),
            ("pinned to another node: not made here", pending.clone(), Some(claim(Some("pv1"), false)), Some(pv(local.clone(), ours.clone(), "n2")), ok_local(false)),
            ("claimRef without uid still binds", pending.clone(), Some(claim(Some("pv1"), false)),
                Some(pv(local.clone(), json!({"name": "data-db", "namespace": "shop"}), "n1")), ok_local(true)),
            ("hostPath", pending.clone(), Some(claim(Some("pv1"), false)),
                Some(pv(json!({"hostPath": {"path": "/srv/x", "type": "DirectoryOrCreate"}}), ours.clone(), "n1")),
                Ok(ClaimMount { volume: "data".into(), persistent_volume: "pv1".into(), path: "/srv/x".into(),
                    backing: Backing::HostPath { type_: "DirectoryOrCreate".into() } })),
            ("missing claim", pending.clone(), None, None,
                Err("failed to fetch PVC from API server: persistentvolumeclaims \"data-db\" not found".into())),
            ("unbound claim", pending.clone(), Some(claim(None, false)), None, Err("PVC is not bound".into())),
            ("missing volume", pending.clone(), Some(claim(Some("pv1"), false)), None,
                Err("failed to fetch PV pv1 from API server: persistentvolumes \"pv1\" not found".into())),
            ("volume bound to another claim", pending.clone(), Some(claim(Some("pv1"), false)),
                Some(pv(local.clone(), json!({"name": "data-db", "namespace": "shop", "uid": "old"}), "n1")),
                Err("PVC is not bound: PV pv1 has no claimRef naming shop/data-db".into())),
            ("unsupported source", pending.clone(), Some(claim(Some("pv1"), false)),
                Some(pv(json!({"nfs": {"server": "s", "path": "/"}}), ours.clone(), "n1")),
                Err("PV pv1 has a volume source berth's agent cannot mount; only local and hostPath PersistentVolumes are supported".into())),
            ("deleting claim blocks a new pod", pending, Some(claim(Some("pv1"), true)), Some(pv(local.clone(), ours.clone(), "n1")),
                Err("can't start pod because PVC shop/data-db is being deleted".into())),
            ("deleting claim keeps a running pod", running, Some(claim(Some("pv1"), true)), Some(pv(local, ours, "n1")), ok_local(true)),
        ];
        for (case, status, claim, volume, expected) in cases {
            let claims = claim
                .into_iter()
                .map(|c| ("data-db".to_owned(), c))
                .collect();
            let volumes = volume.into_iter().map(|v| ("pv1".to_owned(), v)).collect();
            let got = resolve_volume(&pod(status), "data", "data-db", &claims, &volumes);
            assert_eq!(got, expected, "{case}");
        }
    }

    #[test]
    fn the_error_names_every_failed_volume_as_kubelet_does() {
        let pod = pod(json!({}));
        assert_eq!(claim_names(&pod), ["data-db"]);
        let error = resolve(&pod, &BTreeMap::new(), &BTreeMap::new()).unwrap_err();
        assert_eq!(
            error.0,
            "unable to attach or mount volumes: unmounted volumes=[data], unattached volumes=[], failed to process volumes=[data]: error processing PVC shop/data-db: failed to fetch PVC from API server: persistentvolumeclaims \"data-db\" not found"
        );
        let no_claims: Pod =
            serde_json::from_value(json!({"metadata": {"name": "x"}, "spec": {"containers": []}}))
                .unwrap();
        assert_eq!(
            resolve(&no_claims, &BTreeMap::new(), &BTreeMap::new()),
            Ok(vec![])
        );
    }
}
