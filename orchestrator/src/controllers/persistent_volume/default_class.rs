//! Upstream's retroactive default StorageClass (GA in 1.28): a claim created
//! while no class was the default keeps `storageClassName` unset (nil, not
//! ""); once a default class exists the PV controller gives it that class, as
//! the DefaultStorageClass admission would have. Pure: the controller writes.

use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use k8s_openapi::api::storage::v1::StorageClass;

use super::matching::BETA_STORAGE_CLASS;
use super::sync::{ClaimStep, BIND_COMPLETED};
use crate::apiserver::admission::default_storage_class_name;

/// Whether the claim names no class at all: no `spec.storageClassName` (an
/// empty string counts as a name: "no class, on purpose") and no beta annotation.
pub fn has_no_class(claim: &PersistentVolumeClaim) -> bool {
    let field = claim
        .spec
        .as_ref()
        .and_then(|s| s.storage_class_name.as_ref());
    let annotated = claim
        .metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(BETA_STORAGE_CLASS));
    field.is_none() && !annotated
}

/// Upstream's `assignDefaultStorageClass`, called where `syncUnboundClaim`
/// found no volume for the claim: the default class to give an unbound,
/// class-less claim that `step` leaves Pending, if one exists.
pub fn class_to_assign(
    claim: &PersistentVolumeClaim,
    step: &ClaimStep,
    classes: &[StorageClass],
) -> Option<String> {
    let unbound = claim
        .spec
        .as_ref()
        .and_then(|s| s.volume_name.as_deref())
        .is_none_or(str::is_empty)
        && !claim
            .metadata
            .annotations
            .as_ref()
            .is_some_and(|a| a.contains_key(BIND_COMPLETED));
    if !matches!(step, ClaimStep::Pending(_))
        || !unbound
        || claim.metadata.deletion_timestamp.is_some()
        || !has_no_class(claim)
    {
        return None;
    }
    let classes: Vec<serde_json::Value> = classes
        .iter()
        .filter_map(|c| serde_json::to_value(c).ok())
        .collect();
    default_storage_class_name(&classes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn claim(spec: Value, annotations: Value) -> PersistentVolumeClaim {
        serde_json::from_value(json!({
            "metadata": {"name": "c", "namespace": "ns", "annotations": annotations},
            "spec": spec,
        }))
        .unwrap()
    }

    fn class(name: &str, default: bool, created: &str) -> StorageClass {
        serde_json::from_value(json!({
            "metadata": {"name": name, "creationTimestamp": created, "annotations":
                {"storageclass.kubernetes.io/is-default-class": default.to_string()}},
            "provisioner": "berth.dev/local-path",
        }))
        .unwrap()
    }

    #[test]
    fn only_unbound_class_less_pending_claims_get_the_newest_default() {
        let classes = [
            class("old", true, "2025-01-01T00:00:00Z"),
            class("new", true, "2026-01-01T00:00:00Z"),
            class("plain", false, "2026-06-01T00:00:00Z"),
        ];
        let pending = ClaimStep::Pending(None);
        let beta = json!({"volume.beta.kubernetes.io/storage-class": "slow"});
        // (claim, step, classes, class given)
        let cases = [
            (
                claim(json!({}), json!({})),
                &pending,
                &classes[..],
                Some("new"),
            ),
            (
                claim(json!({"storageClassName": null}), json!({})),
                &pending,
                &classes[..],
                Some("new"),
            ),
            (
                claim(json!({}), json!({})),
                &pending,
                &classes[..1],
                Some("old"),
            ),
            (claim(json!({}), json!({})), &pending, &classes[2..], None),
            (
                claim(json!({"storageClassName": ""}), json!({})),
                &pending,
                &classes[..],
                None,
            ),
            (
                claim(json!({"storageClassName": "x"}), json!({})),
                &pending,
                &classes[..],
                None,
            ),
            (claim(json!({}), beta), &pending, &classes[..], None),
            (
                claim(json!({"volumeName": "pv"}), json!({})),
                &pending,
                &classes[..],
                None,
            ),
            (
                claim(json!({}), json!({})),
                &ClaimStep::Bind("pv".into()),
                &classes[..],
                None,
            ),
        ];
        for (claim, step, classes, want) in cases {
            assert_eq!(
                class_to_assign(&claim, step, classes).as_deref(),
                want,
                "{:?} {step:?}",
                claim.spec
            );
        }
    }
}
