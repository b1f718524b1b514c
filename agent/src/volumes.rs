//! The node's side of PersistentVolumes: which PV a pod's claim mounts and
//! where that lies on the node ([`claims`]), the directories of `local-path`
//! volumes made on first use ([`local_path`]), and their removal once a
//! `Delete` volume is released ([`reclaim`]). Binding claims to volumes is
//! the orchestrator's job; the agent only reads the result.

pub mod claims;
pub mod local_path;
pub mod reclaim;

use k8s_openapi::api::core::v1::PersistentVolume;

/// The Node annotation in which the agent publishes its `--local-path-dir`,
/// under which the provisioner places this node's `local-path` volumes.
pub const LOCAL_PATH_DIR_ANNOTATION: &str = "berth.dev/local-path-dir";
/// The provisioner name of the built-in `local-path` StorageClass.
pub const LOCAL_PATH_PROVISIONER: &str = "berth.dev/local-path";
/// The PV annotation naming the provisioner that made it (upstream's).
pub const PROVISIONED_BY_ANNOTATION: &str = "pv.kubernetes.io/provisioned-by";
/// The node label local volumes' node affinity names.
const HOSTNAME_KEY: &str = crate::config::HOSTNAME_LABEL;

/// Whether `pv` was made by the built-in local-path provisioner.
pub fn is_local_path(pv: &PersistentVolume) -> bool {
    pv.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(PROVISIONED_BY_ANNOTATION))
        .is_some_and(|p| p == LOCAL_PATH_PROVISIONER)
}

/// The one node a PV's required node affinity pins it to
/// (`kubernetes.io/hostname In [node]`, as local volumes carry), if any.
pub fn affinity_node(pv: &PersistentVolume) -> Option<&str> {
    let terms = &pv
        .spec
        .as_ref()?
        .node_affinity
        .as_ref()?
        .required
        .as_ref()?
        .node_selector_terms;
    let [term] = terms.as_slice() else {
        return None;
    };
    term.match_expressions
        .iter()
        .flatten()
        .find(|e| e.key == HOSTNAME_KEY && e.operator == "In")
        .and_then(|e| match e.values.as_deref() {
            Some([node]) => Some(node.as_str()),
            _ => None,
        })
}

/// The directory a PV keeps its data in: `local.path` or `hostPath.path`.
pub fn volume_path(pv: &PersistentVolume) -> Option<&str> {
    let spec = pv.spec.as_ref()?;
    spec.local
        .as_ref()
        .map(|l| l.path.as_str())
        .or_else(|| spec.host_path.as_ref().map(|h| h.path.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pv(value: serde_json::Value) -> PersistentVolume {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn local_path_volumes_are_known_by_annotation_and_affinity() {
        let affinity = |values: serde_json::Value| {
            json!({"required": {"nodeSelectorTerms": [{"matchExpressions": [
                {"key": "kubernetes.io/hostname", "operator": "In", "values": values}]}]}})
        };
        let cases = [
            (
                json!({"metadata": {"name": "a", "annotations": {PROVISIONED_BY_ANNOTATION: LOCAL_PATH_PROVISIONER}},
                       "spec": {"local": {"path": "/d/a"}, "nodeAffinity": affinity(json!(["n1"]))}}),
                true,
                Some("n1"),
                Some("/d/a"),
            ),
            (
                json!({"metadata": {"name": "b", "annotations": {PROVISIONED_BY_ANNOTATION: "other.io/x"}},
                       "spec": {"hostPath": {"path": "/d/b"}, "nodeAffinity": affinity(json!(["n1", "n2"]))}}),
                false,
                None,
                Some("/d/b"),
            ),
            (
                json!({"metadata": {"name": "c"}, "spec": {"nfs": {"server": "s", "path": "/"}}}),
                false,
                None,
                None,
            ),
        ];
        for (value, local_path, node, path) in cases {
            let pv = pv(value);
            assert_eq!(is_local_path(&pv), local_path, "{pv:?}");
            assert_eq!(affinity_node(&pv), node, "{pv:?}");
            assert_eq!(volume_path(&pv), path, "{pv:?}");
        }
    }
}
