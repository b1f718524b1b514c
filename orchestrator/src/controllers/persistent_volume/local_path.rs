//! The built-in dynamic provisioner of the `local-path` StorageClass (after
//! rancher's local-path-provisioner): a claim the scheduler has placed on a
//! node (`volume.kubernetes.io/selected-node`) gets a PersistentVolume
//! `pvc-<claim uid>` that is a directory on that node, pinned there by
//! required node affinity and pre-bound to the claim. Pure: it builds
//! objects; the node's agent makes and removes the directory.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    LocalVolumeSource, Node, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm,
    ObjectReference, PersistentVolume, PersistentVolumeClaim, PersistentVolumeSpec,
    VolumeNodeAffinity,
};
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::json;

/// The provisioner name of berth's local-path StorageClass.
pub const PROVISIONER: &str = "berth.dev/local-path";
/// The StorageClass berth creates at start.
pub const CLASS_NAME: &str = "local-path";
/// The node annotation naming the directory its agent keeps local-path volumes in.
pub const DIR_ANNOTATION: &str = "berth.dev/local-path-dir";
/// Where volumes go on a node that does not say.
pub const DEFAULT_DIR: &str = "/var/lib/berth/local-path";
/// The annotation naming the provisioner that created a volume.
pub const PROVISIONED_BY: &str = "pv.kubernetes.io/provisioned-by";
/// The claim annotation the scheduler sets to the node it chose (delayed binding).
pub const SELECTED_NODE: &str = "volume.kubernetes.io/selected-node";
/// The node label the volume's node affinity pins.
pub const HOSTNAME_LABEL: &str = "kubernetes.io/hostname";

/// The name of the volume provisioned for `claim`.
pub fn volume_name(claim: &PersistentVolumeClaim) -> String {
    format!("pvc-{}", claim.metadata.uid.as_deref().unwrap_or(""))
}

/// The directory on the node: `<dir>/pvc-<uid>_<namespace>_<claim>`, `<dir>`
/// from the node's annotation or the default.
pub fn volume_path(claim: &PersistentVolumeClaim, node: Option<&Node>) -> String {
    let dir = node
        .and_then(|n| n.metadata.annotations.as_ref())
        .and_then(|a| a.get(DIR_ANNOTATION))
        .filter(|d| !d.is_empty())
        .map_or(DEFAULT_DIR, String::as_str);
    format!(
        "{}/{}_{}_{}",
        dir.trim_end_matches('/'),
        volume_name(claim),
        claim.metadata.namespace.as_deref().unwrap_or(""),
        claim.metadata.name.as_deref().unwrap_or("")
    )
}

/// The volume for `claim` on node `node_name` (`node` when it is known):
/// capacity the request, the claim's access modes and volume mode, the
/// class's reclaim policy, pinned to the node, pre-bound to the claim.
pub fn volume_for(
    claim: &PersistentVolumeClaim,
    class: &StorageClass,
    node_name: &str,
    node: Option<&Node>,
) -> PersistentVolume {
    let spec = claim.spec.clone().unwrap_or_default();
    let storage = spec
        .resources
        .as_ref()
        .and_then(|r| r.requests.as_ref())
        .and_then(|r| r.get("storage"))
        .cloned();
    let hostname = node
        .and_then(|n| n.metadata.labels.as_ref())
        .and_then(|l| l.get(HOSTNAME_LABEL))
        .map_or(node_name, String::as_str);
    PersistentVolume {
        metadata: ObjectMeta {
            name: Some(volume_name(claim)),
            annotations: Some(BTreeMap::from([(
                PROVISIONED_BY.to_owned(),
                PROVISIONER.to_owned(),
            )])),
            ..Default::default()
        },
        spec: Some(PersistentVolumeSpec {
            capacity: storage.map(|s| BTreeMap::from([("storage".to_owned(), s)])),
            access_modes: spec.access_modes.clone(),
            volume_mode: spec.volume_mode.clone(),
            persistent_volume_reclaim_policy: Some(
                class
                    .reclaim_policy
                    .clone()
                    .unwrap_or_else(|| "Delete".into()),
            ),
            storage_class_name: class.metadata.name.clone(),
            mount_options: class.mount_options.clone(),
            local: Some(LocalVolumeSource {
                path: volume_path(claim, node),
                fs_type: None,
            }),
            node_affinity: Some(VolumeNodeAffinity {
                required: Some(NodeSelector {
                    node_selector_terms: vec![NodeSelectorTerm {
                        match_expressions: Some(vec![NodeSelectorRequirement {
                            key: HOSTNAME_LABEL.into(),
                            operator: "In".into(),
                            values: Some(vec![hostname.to_owned()]),
                        }]),
                        match_fields: None,
                    }],
                }),
            }),
            claim_ref: Some(claim_reference(claim)),
            ..Default::default()
        }),
        status: None,
    }
}

/// A full reference to `claim`, as a pre-bound volume's `spec.claimRef`.
pub fn claim_reference(claim: &PersistentVolumeClaim) -> ObjectReference {
    ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("PersistentVolumeClaim".into()),
        name: claim.metadata.name.clone(),
        namespace: claim.metadata.namespace.clone(),
        uid: claim.metadata.uid.clone(),
        resource_version: claim.metadata.resource_version.clone(),
        field_path: None,
    }
}

/// The StorageClass berth creates when it is missing: the cluster default,
/// binding delayed to the first consumer, volumes deleted with their claims.
pub fn default_class() -> serde_json::Value {
    json!({
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {
            "name": CLASS_NAME,
            "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
        },
        "provisioner": PROVISIONER,
        "reclaimPolicy": "Delete",
        "volumeBindingMode": "WaitForFirstConsumer",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim() -> PersistentVolumeClaim {
        serde_json::from_value(json!({
            "metadata": {"name": "data", "namespace": "app", "uid": "1234"},
            "spec": {"accessModes": ["ReadWriteOnce"], "volumeMode": "Filesystem",
                     "resources": {"requests": {"storage": "2Gi"}}, "storageClassName": "local-path"},
        }))
        .unwrap()
    }

    #[test]
    fn the_volume_is_a_directory_on_the_selected_node_bound_to_the_claim() {
        let class: StorageClass = serde_json::from_value(default_class()).unwrap();
        let node: Node = serde_json::from_value(json!({"metadata": {"name": "n1",
            "labels": {"kubernetes.io/hostname": "host-1"},
            "annotations": {"berth.dev/local-path-dir": "/data/lp/"}}}))
        .unwrap();
        // (node known, expected path, expected hostname)
        let cases = [
            (Some(&node), "/data/lp/pvc-1234_app_data", "host-1"),
            (None, "/var/lib/berth/local-path/pvc-1234_app_data", "n1"),
        ];
        for (node, path, host) in cases {
            let pv = serde_json::to_value(volume_for(&claim(), &class, "n1", node)).unwrap();
            assert_eq!(pv["metadata"]["name"], "pvc-1234");
            assert_eq!(pv["metadata"]["annotations"][PROVISIONED_BY], PROVISIONER);
            assert_eq!(pv["spec"]["local"]["path"], path);
            assert_eq!(pv["spec"]["capacity"]["storage"], "2Gi");
            assert_eq!(pv["spec"]["accessModes"], json!(["ReadWriteOnce"]));
            assert_eq!(pv["spec"]["persistentVolumeReclaimPolicy"], "Delete");
            assert_eq!(pv["spec"]["storageClassName"], "local-path");
            assert_eq!(
                pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"]
                    [0],
                json!({"key": "kubernetes.io/hostname", "operator": "In", "values": [host]})
            );
            assert_eq!(pv["spec"]["claimRef"]["uid"], "1234");
            assert_eq!(pv["spec"]["claimRef"]["name"], "data");
        }
    }
}
