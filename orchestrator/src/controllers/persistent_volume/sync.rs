//! What the PV controller does next for one claim or one volume (upstream's
//! `syncClaim` / `syncVolume`), decided from the cached world. Pure: the
//! controller carries the decisions out.

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::api::storage::v1::StorageClass;

use super::local_path::{PROVISIONED_BY, SELECTED_NODE};
use super::matching::{
    check_volume_satisfies_claim, claim_class, find_matching_volume, is_delay_binding,
    is_volume_bound_to_claim,
};

/// Set on a claim once its binding is complete.
pub const BIND_COMPLETED: &str = "pv.kubernetes.io/bind-completed";
/// Set on a claim or volume the controller (not the user) bound.
pub const BOUND_BY_CONTROLLER: &str = "pv.kubernetes.io/bound-by-controller";

/// An event to record: warning or not, reason, message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// A Warning (else Normal).
    pub warning: bool,
    /// The reason (`FailedBinding`).
    pub reason: &'static str,
    /// The message.
    pub message: String,
}

fn normal(reason: &'static str, message: impl Into<String>) -> Option<Note> {
    Some(Note {
        warning: false,
        reason,
        message: message.into(),
    })
}

fn warning(reason: &'static str, message: impl Into<String>) -> Option<Note> {
    Some(Note {
        warning: true,
        reason,
        message: message.into(),
    })
}

/// The next step for a claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimStep {
    /// Nothing to do.
    Nothing,
    /// Bind the claim to this volume (each half only if not done yet).
    Bind(String),
    /// The claim stays (or becomes) Pending, with an event.
    Pending(Option<Note>),
    /// The claim lost its volume.
    Lost(Note),
    /// Dynamic provisioning: mark the claim for `provisioner` of `class`.
    Provision {
        /// The StorageClass.
        class: String,
        /// Its provisioner.
        provisioner: String,
    },
}

fn annotated(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta, key: &str) -> bool {
    meta.annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(key))
}

/// Upstream's `syncClaim`: the step for `claim`, given every volume and its class.
pub fn claim_step<'v>(
    claim: &PersistentVolumeClaim,
    volumes: impl IntoIterator<Item = &'v PersistentVolume> + Clone,
    class: Option<&StorageClass>,
) -> ClaimStep {
    if claim.metadata.deletion_timestamp.is_some() {
        return ClaimStep::Nothing;
    }
    let volume_name = claim
        .spec
        .as_ref()
        .and_then(|s| s.volume_name.as_deref())
        .unwrap_or("");
    let named = || {
        volumes
            .clone()
            .into_iter()
            .find(|v| v.metadata.name.as_deref() == Some(volume_name))
    };
    if annotated(&claim.metadata, BIND_COMPLETED) {
        // syncBoundClaim
        if volume_name.is_empty() {
            return ClaimStep::Lost(Note {
                warning: true,
                reason: "ClaimLost",
                message: "Bound claim has lost reference to PersistentVolume. Data on the volume is lost!".into(),
            });
        }
        let Some(volume) = named() else {
            return ClaimStep::Lost(Note {
                warning: true,
                reason: "ClaimLost",
                message: "Bound claim has lost its PersistentVolume. Data on the volume is lost!"
                    .into(),
            });
        };
        let claim_ref = volume.spec.as_ref().and_then(|s| s.claim_ref.as_ref());
        if claim_ref.is_none() || is_volume_bound_to_claim(volume, claim) {
            return ClaimStep::Bind(volume_name.to_owned());
        }
        return ClaimStep::Lost(Note {
            warning: true,
            reason: "ClaimMisbound",
            message: "Two claims are bound to the same volume, this one is bound incorrectly"
                .into(),
        });
    }
    if volume_name.is_empty() {
        let delay = is_delay_binding(class);
        if let Some(volume) = find_matching_volume(claim, volumes, None, delay) {
            return ClaimStep::Bind(volume.metadata.name.clone().unwrap_or_default());
        }
        let class_name = claim_class(claim);
        if delay && !annotated(&claim.metadata, SELECTED_NODE) {
            return ClaimStep::Pending(normal(
                "WaitForFirstConsumer",
                "waiting for first consumer to be created before binding",
            ));
        }
        if class_name.is_empty() {
            return ClaimStep::Pending(normal(
                "FailedBinding",
                "no persistent volumes available for this claim and no storage class is set",
            ));
        }
        return match class {
            Some(class) => ClaimStep::Provision {
                class: class_name.to_owned(),
                provisioner: class.provisioner.clone(),
            },
            None => ClaimStep::Pending(warning(
                "ProvisioningFailed",
                format!("storageclass.storage.k8s.io \"{class_name}\" not found"),
            )),
        };
    }
    // The user asked for a specific volume.
    let Some(volume) = named() else {
        return ClaimStep::Pending(None);
    };
    if volume
        .spec
        .as_ref()
        .and_then(|s| s.claim_ref.as_ref())
        .is_none()
    {
        return match check_volume_satisfies_claim(volume, claim) {
            Ok(()) => ClaimStep::Bind(volume_name.to_owned()),
            Err(why) => ClaimStep::Pending(warning(
                "VolumeMismatch",
                format!("Cannot bind to requested volume \"{volume_name}\": {why}"),
            )),
        };
    }
    if is_volume_bound_to_claim(volume, claim) {
        return ClaimStep::Bind(volume_name.to_owned());
    }
    if annotated(&claim.metadata, BOUND_BY_CONTROLLER) {
        // Someone removed bind-completed; upstream reports an error and waits.
        return ClaimStep::Nothing;
    }
    ClaimStep::Pending(None)
}

/// The next step for a volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VolumeStep {
    /// Nothing to do.
    Nothing,
    /// Set this phase (no event).
    Phase(&'static str),
    /// Its claim is gone: Released.
    Release,
    /// Failed, with the event saying why.
    Fail(Note),
    /// The claim it points at is bound elsewhere and the controller made the
    /// link: drop it and offer the volume again.
    Unbind,
    /// The claim it points at is not bound yet: sync the claim.
    SyncClaim,
}

/// Upstream's `syncVolume`: the step for `volume`; `claim` is the claim its
/// `claimRef` names, when that still exists with the same UID. A volume
/// being deleted is synced too: it waits under its `pv-protection` finalizer
/// until it is Released (claims never bind it, see `find_matching_volume`).
pub fn volume_step(volume: &PersistentVolume, claim: Option<&PersistentVolumeClaim>) -> VolumeStep {
    let phase = volume
        .status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("");
    let Some(reference) = volume.spec.as_ref().and_then(|s| s.claim_ref.as_ref()) else {
        return VolumeStep::Phase("Available");
    };
    if reference.uid.as_deref().unwrap_or("").is_empty() {
        // Pre-bound by the user; the claim's sync binds it.
        return VolumeStep::Phase("Available");
    }
    let claim = claim.filter(|c| c.metadata.uid == reference.uid);
    let Some(claim) = claim else {
        if phase != "Released" && phase != "Failed" {
            return VolumeStep::Release;
        }
        if phase == "Failed" {
            return VolumeStep::Nothing;
        }
        let policy = volume
            .spec
            .as_ref()
            .and_then(|s| s.persistent_volume_reclaim_policy.as_deref())
            .unwrap_or("Retain");
        let name = volume.metadata.name.as_deref().unwrap_or("");
        return match policy {
            "Retain" => VolumeStep::Nothing,
            // A provisioner (berth's local-path one: the node's agent) deletes it.
            "Delete" if annotated(&volume.metadata, PROVISIONED_BY) => VolumeStep::Nothing,
            "Delete" => VolumeStep::Fail(Note {
                warning: true,
                reason: "VolumeFailedDelete",
                message: format!("error getting deleter volume plugin for volume \"{name}\": no deletable volume plugin matched"),
            }),
            _ => VolumeStep::Fail(Note {
                warning: true,
                reason: "VolumeFailedRecycle",
                message: "No recycler plugin found for the volume!".into(),
            }),
        };
    };
    let bound_to = claim
        .spec
        .as_ref()
        .and_then(|s| s.volume_name.as_deref())
        .unwrap_or("");
    if bound_to.is_empty() {
        return VolumeStep::SyncClaim;
    }
    if Some(bound_to) == volume.metadata.name.as_deref() {
        return if phase == "Bound" {
            VolumeStep::Nothing
        } else {
            VolumeStep::Phase("Bound")
        };
    }
    if annotated(&volume.metadata, BOUND_BY_CONTROLLER) {
        VolumeStep::Unbind
    } else {
        VolumeStep::Nothing
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    /// (case, claim, volumes, its class, expected step)
    type ClaimCase<'a> = (
        &'static str,
        PersistentVolumeClaim,
        Vec<PersistentVolume>,
        Option<&'a StorageClass>,
        ClaimStep,
    );

    fn claim(meta: Value, spec: Value) -> PersistentVolumeClaim {
        let mut s = json!({"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}});
        for (k, v) in spec.as_object().unwrap() {
            s[k] = v.clone();
        }
        let mut m = json!({"name": "data", "namespace": "ns", "uid": "u1"});
        for (k, v) in meta.as_object().unwrap() {
            m[k] = v.clone();
        }
        serde_json::from_value(json!({"metadata": m, "spec": s})).unwrap()
    }

    fn volume(name: &str, extra: Value, phase: &str) -> PersistentVolume {
        let mut spec = json!({"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                              "persistentVolumeReclaimPolicy": "Retain"});
        let mut annotations = json!({});
        for (k, v) in extra.as_object().unwrap() {
            if k == "annotations" {
                annotations = v.clone();
            } else {
                spec[k] = v.clone();
            }
        }
        serde_json::from_value(
            json!({"metadata": {"name": name, "annotations": annotations},
            "spec": spec, "status": {"phase": phase}}),
        )
        .unwrap()
    }

    fn class(mode: &str) -> StorageClass {
        serde_json::from_value(
            json!({"metadata": {"name": "lp"}, "provisioner": "berth.dev/local-path",
            "volumeBindingMode": mode}),
        )
        .unwrap()
    }

    #[test]
    fn claim_steps_follow_upstream_sync_claim() {
        let mine = json!({"name": "data", "namespace": "ns", "uid": "u1"});
        let wffc = class("WaitForFirstConsumer");
        let immediate = class("Immediate");
        let cases: Vec<ClaimCase> = vec![
            (
                "static match",
                claim(json!({}), json!({})),
                vec![volume("v1", json!({}), "Available")],
                None,
                ClaimStep::Bind("v1".into()),
            ),
            (
                "no volume, no class",
                claim(json!({}), json!({"storageClassName": ""})),
                vec![],
                None,
                ClaimStep::Pending(normal(
                    "FailedBinding",
                    "no persistent volumes available for this claim and no storage class is set",
                )),
            ),
            (
                "delayed without a node",
                claim(json!({}), json!({"storageClassName": "lp"})),
                vec![],
                Some(&wffc),
                ClaimStep::Pending(normal(
                    "WaitForFirstConsumer",
                    "waiting for first consumer to be created before binding",
                )),
            ),
            (
                "delayed with a node",
                claim(
                    json!({"annotations": {SELECTED_NODE: "n1"}}),
                    json!({"storageClassName": "lp"}),
                ),
                vec![],
                Some(&wffc),
                ClaimStep::Provision {
                    class: "lp".into(),
                    provisioner: "berth.dev/local-path".into(),
                },
            ),
            (
                "immediate class",
                claim(json!({}), json!({"storageClassName": "lp"})),
                vec![],
                Some(&immediate),
                ClaimStep::Provision {
                    class: "lp".into(),
                    provisioner: "berth.dev/local-path".into(),
                },
            ),
            (
                "unknown class",
                claim(json!({}), json!({"storageClassName": "gone"})),
                vec![],
                None,
                ClaimStep::Pending(warning(
                    "ProvisioningFailed",
                    "storageclass.storage.k8s.io \"gone\" not found",
                )),
            ),
            (
                "provisioned volume pre-bound to the claim",
                claim(
                    json!({"annotations": {SELECTED_NODE: "n1"}}),
                    json!({"storageClassName": "lp"}),
                ),
                vec![volume(
                    "pvc-u1",
                    json!({"storageClassName": "lp", "claimRef": mine.clone()}),
                    "Pending",
                )],
                Some(&wffc),
                ClaimStep::Bind("pvc-u1".into()),
            ),
            (
                "named volume missing",
                claim(json!({}), json!({"volumeName": "v9"})),
                vec![],
                None,
                ClaimStep::Pending(None),
            ),
            (
                "named volume too small",
                claim(
                    json!({}),
                    json!({"volumeName": "v1", "resources": {"requests": {"storage": "5Gi"}}}),
                ),
                vec![volume("v1", json!({}), "Available")],
                None,
                ClaimStep::Pending(warning(
                    "VolumeMismatch",
                    "Cannot bind to requested volume \"v1\": requested PV is too small",
                )),
            ),
            (
                "named volume claimed by another",
                claim(json!({}), json!({"volumeName": "v1"})),
                vec![volume(
                    "v1",
                    json!({"claimRef": {"name": "other", "namespace": "ns", "uid": "u2"}}),
                    "Bound",
                )],
                None,
                ClaimStep::Pending(None),
            ),
            (
                "bound, volume gone",
                claim(
                    json!({"annotations": {BIND_COMPLETED: "yes"}}),
                    json!({"volumeName": "v1"}),
                ),
                vec![],
                None,
                ClaimStep::Lost(Note {
                    warning: true,
                    reason: "ClaimLost",
                    message:
                        "Bound claim has lost its PersistentVolume. Data on the volume is lost!"
                            .into(),
                }),
            ),
            (
                "bound, volume bound elsewhere",
                claim(
                    json!({"annotations": {BIND_COMPLETED: "yes"}}),
                    json!({"volumeName": "v1"}),
                ),
                vec![volume(
                    "v1",
                    json!({"claimRef": {"name": "other", "namespace": "ns", "uid": "u2"}}),
                    "Bound",
                )],
                None,
                ClaimStep::Lost(Note {
                    warning: true,
                    reason: "ClaimMisbound",
                    message:
                        "Two claims are bound to the same volume, this one is bound incorrectly"
                            .into(),
                }),
            ),
            (
                "bound and consistent",
                claim(
                    json!({"annotations": {BIND_COMPLETED: "yes"}}),
                    json!({"volumeName": "v1"}),
                ),
                vec![volume("v1", json!({"claimRef": mine.clone()}), "Bound")],
                None,
                ClaimStep::Bind("v1".into()),
            ),
        ];
        for (name, c, volumes, class, want) in cases {
            assert_eq!(claim_step(&c, &volumes, class), want, "{name}");
        }
    }

    fn deleting(mut volume: PersistentVolume) -> PersistentVolume {
        volume.metadata.deletion_timestamp =
            Some(serde_json::from_value(json!("2026-01-01T00:00:00Z")).unwrap());
        volume
    }

    #[test]
    fn volume_steps_follow_upstream_sync_volume() {
        let mine = json!({"name": "data", "namespace": "ns", "uid": "u1"});
        let bound = claim(json!({}), json!({"volumeName": "v1"}));
        let elsewhere = claim(json!({}), json!({"volumeName": "v2"}));
        let pending = claim(json!({}), json!({}));
        let cases: Vec<(&str, PersistentVolume, Option<&PersistentVolumeClaim>, VolumeStep)> = vec![
            ("new static volume", volume("v1", json!({}), "Pending"), None, VolumeStep::Phase("Available")),
            ("pre-bound by the user", volume("v1", json!({"claimRef": {"name": "data", "namespace": "ns"}}), "Pending"), None, VolumeStep::Phase("Available")),
            ("claim deleted", volume("v1", json!({"claimRef": mine.clone()}), "Bound"), None, VolumeStep::Release),
            ("claim deleted, volume deleted too", deleting(volume("v1", json!({"claimRef": mine.clone()}), "Bound")), None, VolumeStep::Release),
            ("deleted and retained", deleting(volume("v1", json!({"claimRef": mine.clone()}), "Released")), None, VolumeStep::Nothing),
            ("released and retained", volume("v1", json!({"claimRef": mine.clone()}), "Released"), None, VolumeStep::Nothing),
            ("released, provisioned, delete", volume("v1", json!({"claimRef": mine.clone(), "persistentVolumeReclaimPolicy": "Delete",
                "annotations": {PROVISIONED_BY: "berth.dev/local-path"}}), "Released"), None, VolumeStep::Nothing),
            ("released, static, delete", volume("v1", json!({"claimRef": mine.clone(), "persistentVolumeReclaimPolicy": "Delete"}), "Released"), None,
                VolumeStep::Fail(Note { warning: true, reason: "VolumeFailedDelete", message: "error getting deleter volume plugin for volume \"v1\": no deletable volume plugin matched".into() })),
            ("released, recycle", volume("v1", json!({"claimRef": mine.clone(), "persistentVolumeReclaimPolicy": "Recycle"}), "Released"), None,
                VolumeStep::Fail(Note { warning: true, reason: "VolumeFailedRecycle", message: "No recycler plugin found for the volume!".into() })),
            ("bound", volume("v1", json!({"claimRef": mine.clone()}), "Available"), Some(&bound), VolumeStep::Phase("Bound")),
            ("bound, phase right", volume("v1", json!({"claimRef": mine.clone()}), "Bound"), Some(&bound), VolumeStep::Nothing),
            ("claim not bound yet", volume("v1", json!({"claimRef": mine.clone()}), "Available"), Some(&pending), VolumeStep::SyncClaim),
            ("claim bound elsewhere by us", volume("v1", json!({"claimRef": mine.clone(), "annotations": {BOUND_BY_CONTROLLER: "yes"}}), "Bound"), Some(&elsewhere), VolumeStep::Unbind),
            ("a recreated claim of the same name", volume("v1", json!({"claimRef": {"name": "data", "namespace": "ns", "uid": "old"}}), "Bound"), Some(&bound), VolumeStep::Release),
        ];
        for (name, v, c, want) in cases {
            assert_eq!(volume_step(&v, c), want, "{name}");
        }
    }
}
