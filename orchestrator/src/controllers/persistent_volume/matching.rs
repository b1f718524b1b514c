//! Which PersistentVolume fits a claim (upstream's `FindMatchingVolume` and
//! `findBestMatchForClaim`): same class ("" only class-less volumes), same
//! volume mode, access modes a superset of the claim's, the claim's selector
//! on the volume's labels, capacity at least the request — the smallest
//! such volume wins; a volume pre-bound to the claim wins outright. Shared by
//! the PV controller (no node) and the scheduler's volume binding (a node).
//! Pure: no I/O.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Node, PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity as K8sQuantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::controllers::workload::selector_matches;
use crate::scheduler::plugins::node_affinity::term_matches;
use berth_api::quantity::Quantity;

/// The beta annotation that named a claim's or volume's class before `storageClassName`.
pub const BETA_STORAGE_CLASS: &str = "volume.beta.kubernetes.io/storage-class";

/// The class an object names: the beta annotation, else the field, else "".
fn class_of<'a>(meta: &'a ObjectMeta, field: Option<&'a String>) -> &'a str {
    meta.annotations
        .as_ref()
        .and_then(|a| a.get(BETA_STORAGE_CLASS))
        .or(field)
        .map_or("", String::as_str)
}

/// The claim's class: the beta annotation, else `spec.storageClassName`, else "".
pub fn claim_class(claim: &PersistentVolumeClaim) -> &str {
    let field = claim
        .spec
        .as_ref()
        .and_then(|s| s.storage_class_name.as_ref());
    class_of(&claim.metadata, field)
}

/// The volume's class, as [`claim_class`].
pub fn volume_class(volume: &PersistentVolume) -> &str {
    let field = volume
        .spec
        .as_ref()
        .and_then(|s| s.storage_class_name.as_ref());
    class_of(&volume.metadata, field)
}

/// The `storage` quantity of a resource list, when it parses.
pub fn storage_of(list: Option<&BTreeMap<String, K8sQuantity>>) -> Option<Quantity> {
    Quantity::parse(&list?.get("storage")?.0).ok()
}

/// The claim's requested storage.
pub fn requested(claim: &PersistentVolumeClaim) -> Option<Quantity> {
    storage_of(claim.spec.as_ref()?.resources.as_ref()?.requests.as_ref())
}

/// The volume's capacity.
pub fn capacity(volume: &PersistentVolume) -> Option<Quantity> {
    storage_of(volume.spec.as_ref()?.capacity.as_ref())
}

fn volume_mode_of(mode: Option<&String>) -> &str {
    mode.map_or("Filesystem", String::as_str)
}

/// True when claim and volume ask for different volume modes.
pub fn volume_mode_mismatch(claim: &PersistentVolumeClaim, volume: &PersistentVolume) -> bool {
    let claim_mode = volume_mode_of(claim.spec.as_ref().and_then(|s| s.volume_mode.as_ref()));
    let volume_mode = volume_mode_of(volume.spec.as_ref().and_then(|s| s.volume_mode.as_ref()));
    claim_mode != volume_mode
}

/// True when the volume offers every access mode the claim asks for.
pub fn access_modes_cover(claim: &PersistentVolumeClaim, volume: &PersistentVolume) -> bool {
    let offered = volume
        .spec
        .as_ref()
        .and_then(|s| s.access_modes.as_deref())
        .unwrap_or(&[]);
    claim
        .spec
        .as_ref()
        .and_then(|s| s.access_modes.as_deref())
        .unwrap_or(&[])
        .iter()
        .all(|m| offered.contains(m))
}

/// Upstream's `IsVolumeBoundToClaim`: the volume's claimRef names the claim
/// (and, when it carries a UID, the same UID).
pub fn is_volume_bound_to_claim(volume: &PersistentVolume, claim: &PersistentVolumeClaim) -> bool {
    let Some(reference) = volume.spec.as_ref().and_then(|s| s.claim_ref.as_ref()) else {
        return false;
    };
    if reference.name != claim.metadata.name || reference.namespace != claim.metadata.namespace {
        return false;
    }
    match reference.uid.as_deref() {
        None | Some("") => true,
        Some(uid) => claim.metadata.uid.as_deref() == Some(uid),
    }
}

/// Does the volume's required node affinity admit `node`? A volume without
/// one admits every node.
pub fn node_affinity_matches(volume: &PersistentVolume, node: &Node) -> bool {
    let Some(required) = volume
        .spec
        .as_ref()
        .and_then(|s| s.node_affinity.as_ref())
        .and_then(|a| a.required.as_ref())
    else {
        return true;
    };
    required
        .node_selector_terms
        .iter()
        .any(|term| term_matches(term, node))
}

/// True when the volume has node affinity at all (it lives on some nodes only).
pub fn has_node_affinity(volume: &PersistentVolume) -> bool {
    volume
        .spec
        .as_ref()
        .and_then(|s| s.node_affinity.as_ref())
        .and_then(|a| a.required.as_ref())
        .is_some()
}

/// Is binding of claims of this class delayed until a pod using them is
/// scheduled (`volumeBindingMode: WaitForFirstConsumer`)? "" and unknown
/// classes bind at once, as upstream's `IsDelayBindingMode`.
pub fn is_delay_binding(class: Option<&StorageClass>) -> bool {
    class.and_then(|c| c.volume_binding_mode.as_deref()) == Some("WaitForFirstConsumer")
}

/// Upstream's `FindMatchingVolume`: the volume pre-bound to `claim`, else the
/// smallest Available volume that fits it. With `node` (the scheduler's path)
/// volumes must admit the node; without (the controller's path) volumes of a
/// delayed-binding class are left to the scheduler unless pre-bound.
pub fn find_matching_volume<'v>(
    claim: &PersistentVolumeClaim,
    volumes: impl IntoIterator<Item = &'v PersistentVolume>,
    node: Option<&Node>,
    delay_binding: bool,
) -> Option<&'v PersistentVolume> {
    let wanted = requested(claim)?;
    let class = claim_class(claim);
    let selector = claim.spec.as_ref().and_then(|s| s.selector.as_ref());
    let mut best: Option<(&PersistentVolume, Quantity, usize)> = None;
    for volume in volumes {
        if volume_mode_mismatch(claim, volume) || volume.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let affinity_ok = node.is_none_or(|n| node_affinity_matches(volume, n));
        if is_volume_bound_to_claim(volume, claim) {
            return affinity_ok.then_some(volume);
        }
        if node.is_none() && delay_binding {
            continue;
        }
        let phase = volume.status.as_ref().and_then(|s| s.phase.as_deref());
        let pre_bound_elsewhere = volume
            .spec
            .as_ref()
            .and_then(|s| s.claim_ref.as_ref())
            .is_some();
        if phase != Some("Available") || pre_bound_elsewhere {
            continue;
        }
        if let Some(selector) = selector {
            let labels = volume.metadata.labels.as_ref();
            if !selector_matches(selector, labels) && !selector_is_empty(selector) {
                continue;
            }
        }
        if volume_class(volume) != class || !affinity_ok || !access_modes_cover(claim, volume) {
            continue;
        }
        let Some(size) = capacity(volume) else {
            continue;
        };
        if size < wanted {
            continue;
        }
        let modes = volume
            .spec
            .as_ref()
            .and_then(|s| s.access_modes.as_ref())
            .map_or(0, Vec::len);
        // Smallest first; among equal sizes the fewest access modes, as
        // upstream's index tries the narrowest mode sets first.
        let better = best
            .as_ref()
            .is_none_or(|(_, s, m)| size < *s || (size == *s && modes < *m));
        if better {
            best = Some((volume, size, modes));
        }
    }
    best.map(|(volume, _, _)| volume)
}

fn selector_is_empty(
    selector: &k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector,
) -> bool {
    selector.match_labels.as_ref().is_none_or(|m| m.is_empty())
        && selector
            .match_expressions
            .as_ref()
            .is_none_or(|e| e.is_empty())
}

/// Upstream's `checkVolumeSatisfyClaim` for a claim that names its volume:
/// why the volume cannot serve it, if it cannot.
pub fn check_volume_satisfies_claim(
    volume: &PersistentVolume,
    claim: &PersistentVolumeClaim,
) -> Result<(), String> {
    let (Some(wanted), Some(size)) = (requested(claim), capacity(volume)) else {
        return Err("requested PV is too small".into());
    };
    if size < wanted {
        return Err("requested PV is too small".into());
    }
    if volume_class(volume) != claim_class(claim) {
        return Err("storageClassName does not match".into());
    }
    if volume_mode_mismatch(claim, volume) {
        return Err("incompatible volumeMode".into());
    }
    if !access_modes_cover(claim, volume) {
        return Err("incompatible accessMode".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    /// (case, claim spec, volumes, node, delay, expected volume)
    type Case = (
        &'static str,
        Value,
        Vec<PersistentVolume>,
        Option<Node>,
        bool,
        Option<&'static str>,
    );

    fn claim(spec: Value) -> PersistentVolumeClaim {
        let mut base = json!({"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}});
        for (k, v) in spec.as_object().unwrap() {
            base[k] = v.clone();
        }
        serde_json::from_value(json!({
            "metadata": {"name": "data", "namespace": "ns", "uid": "u1"},
            "spec": base,
        }))
        .unwrap()
    }

    fn volume(name: &str, size: &str, extra: Value) -> PersistentVolume {
        let mut spec = json!({"capacity": {"storage": size}, "accessModes": ["ReadWriteOnce"]});
        let mut labels = json!({});
        let mut phase = "Available";
        for (k, v) in extra.as_object().unwrap() {
            match k.as_str() {
                "labels" => labels = v.clone(),
                "phase" => phase = v.as_str().unwrap(),
                _ => spec[k] = v.clone(),
            }
        }
        serde_json::from_value(json!({
            "metadata": {"name": name, "labels": labels},
            "spec": spec,
            "status": {"phase": phase},
        }))
        .unwrap()
    }

    fn node(name: &str) -> Node {
        serde_json::from_value(
            json!({"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}}}),
        )
        .unwrap()
    }

    #[test]
    fn the_smallest_fitting_volume_of_the_same_class_wins() {
        let pinned = json!({"nodeAffinity": {"required": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": ["n1"]}]}]}}});
        // (case, claim spec, volumes, node, delay, expected)
        let cases: Vec<Case> = vec![
            (
                "smallest fitting",
                json!({}),
                vec![
                    volume("big", "10Gi", json!({})),
                    volume("small", "2Gi", json!({})),
                    volume("tiny", "500Mi", json!({})),
                ],
                None,
                false,
                Some("small"),
            ),
            (
                "class-less claim ignores classed volumes",
                json!({"storageClassName": ""}),
                vec![volume("fast", "1Gi", json!({"storageClassName": "fast"}))],
                None,
                false,
                None,
            ),
            (
                "same class",
                json!({"storageClassName": "fast"}),
                vec![
                    volume("plain", "1Gi", json!({})),
                    volume("fast", "5Gi", json!({"storageClassName": "fast"})),
                ],
                None,
                false,
                Some("fast"),
            ),
            (
                "access modes superset",
                json!({"accessModes": ["ReadWriteMany"]}),
                vec![
                    volume("rwo", "1Gi", json!({})),
                    volume(
                        "rwx",
                        "1Gi",
                        json!({"accessModes": ["ReadWriteOnce", "ReadWriteMany"]}),
                    ),
                ],
                None,
                false,
                Some("rwx"),
            ),
            (
                "selector on labels",
                json!({"selector": {"matchLabels": {"tier": "gold"}}}),
                vec![
                    volume("plain", "1Gi", json!({})),
                    volume("gold", "3Gi", json!({"labels": {"tier": "gold"}})),
                ],
                None,
                false,
                Some("gold"),
            ),
            (
                "volume mode equal",
                json!({"volumeMode": "Block"}),
                vec![volume("fs", "1Gi", json!({}))],
                None,
                false,
                None,
            ),
            (
                "released volumes are not offered",
                json!({}),
                vec![volume("old", "1Gi", json!({"phase": "Released"}))],
                None,
                false,
                None,
            ),
            (
                "pre-bound to another claim",
                json!({}),
                vec![volume(
                    "other",
                    "1Gi",
                    json!({"claimRef": {"name": "x", "namespace": "ns"}}),
                )],
                None,
                false,
                None,
            ),
            (
                "pre-bound to this claim wins",
                json!({}),
                vec![
                    volume("small", "1Gi", json!({})),
                    volume(
                        "mine",
                        "100Gi",
                        json!({"claimRef": {"name": "data", "namespace": "ns"}, "phase": "Pending"}),
                    ),
                ],
                None,
                false,
                Some("mine"),
            ),
            (
                "delayed binding leaves it to the scheduler",
                json!({}),
                vec![volume("v", "1Gi", json!({}))],
                None,
                true,
                None,
            ),
            (
                "scheduler: node affinity admits the node",
                json!({}),
                vec![volume("v", "1Gi", pinned.clone())],
                Some(node("n1")),
                true,
                Some("v"),
            ),
            (
                "scheduler: node affinity rejects the node",
                json!({}),
                vec![volume("v", "1Gi", pinned.clone())],
                Some(node("n2")),
                true,
                None,
            ),
        ];
        for (name, spec, volumes, node, delay, want) in cases {
            let c = claim(spec);
            let got = find_matching_volume(&c, &volumes, node.as_ref(), delay);
            assert_eq!(got.and_then(|v| v.metadata.name.as_deref()), want, "{name}");
        }
    }

    #[test]
    fn a_named_volume_must_satisfy_the_claim() {
        let c = claim(json!({}));
        assert_eq!(
            check_volume_satisfies_claim(&volume("v", "2Gi", json!({})), &c),
            Ok(())
        );
        assert_eq!(
            check_volume_satisfies_claim(&volume("v", "100Mi", json!({})), &c),
            Err("requested PV is too small".into())
        );
        assert_eq!(
            check_volume_satisfies_claim(&volume("v", "2Gi", json!({"storageClassName": "x"})), &c),
            Err("storageClassName does not match".into())
        );
    }
}
