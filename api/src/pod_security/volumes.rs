//! Checks on a pod's inline volume sources: baseline forbids `hostPath`,
//! restricted allows only the sources that cannot reach the node or remote
//! storage directly. Each returns upstream's reason and detail text.

use serde_json::Value;

use super::pod::{join_quote, list, pluralize, set, sorted_set, text, uses_phrase, PodView};
use super::Violation;

/// The pod's volumes.
fn volumes<'a>(pod: &PodView<'a>) -> impl Iterator<Item = &'a Value> {
    list(pod.spec.get("volumes"))
}

/// Baseline `hostPathVolumes` (1.0+): no `hostPath` volume.
pub fn host_path_volumes(pod: &PodView) -> Option<Violation> {
    let bad: Vec<String> = volumes(pod)
        .filter(|v| set(v.get("hostPath")).is_some())
        .map(|v| text(v.get("name")))
        .collect();
    (!bad.is_empty()).then(|| {
        Violation::new(
            "hostPath volumes",
            format!(
                "{} {}",
                pluralize("volume", "volumes", bad.len()),
                join_quote(&bad)
            ),
        )
    })
}

/// Volume sources the restricted level allows.
const ALLOWED_SOURCES: [&str; 9] = [
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "image",
    "persistentVolumeClaim",
    "projected",
    "secret",
];

/// Volume sources the restricted level names when it refuses them, in upstream's order.
const RESTRICTED_SOURCES: [&str; 21] = [
    "hostPath",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "gitRepo",
    "nfs",
    "iscsi",
    "glusterfs",
    "rbd",
    "flexVolume",
    "cinder",
    "cephfs",
    "flocker",
    "fc",
    "azureFile",
    "vsphereVolume",
    "quobyte",
    "azureDisk",
    "photonPersistentDisk",
    "portworxVolume",
    "scaleIO",
    "storageos",
];

/// Restricted `restrictedVolumes` (1.0+, replaces `hostPathVolumes`): only
/// the allowed sources.
pub fn restricted_volumes(pod: &PodView) -> Option<Violation> {
    let mut bad = Vec::new();
    let mut types = Vec::new();
    for volume in volumes(pod) {
        let has = |source: &str| set(volume.get(source)).is_some();
        if ALLOWED_SOURCES.iter().any(|s| has(s)) {
            continue;
        }
        // A volume without any source is an emptyDir: upstream's defaulting
        // makes it one before admission.
        let Some(source) = RESTRICTED_SOURCES.iter().find(|s| has(s)) else {
            continue;
        };
        bad.push(text(volume.get("name")));
        types.push((*source).to_owned());
    }
    let types = sorted_set(types);
    (!bad.is_empty()).then(|| {
        Violation::new(
            "restricted volume types",
            uses_phrase(
                ("volume", "volumes"),
                &bad,
                ("restricted volume type", "restricted volume types"),
                types.len(),
                &join_quote(&types),
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::super::pod::run_check;
    use super::*;
    use serde_json::json;

    fn run(check: fn(&PodView) -> Option<Violation>, spec: Value) -> Option<String> {
        run_check(check, json!({}), spec)
    }

    #[test]
    fn host_path_volumes_are_refused_by_baseline() {
        let spec = json!({"volumes": [{"name": "a", "hostPath": {"path": "/"}}, {"name": "b", "emptyDir": {}}]});
        assert_eq!(
            run(host_path_volumes, spec).as_deref(),
            Some("hostPath volumes (volume \"a\")")
        );
    }

    #[test]
    fn restricted_volumes_name_each_refused_source_once_and_sourceless_ones_are_empty_dirs() {
        let spec = json!({"volumes": [
            {"name": "a", "hostPath": {"path": "/"}},
            {"name": "b", "nfs": {"server": "s", "path": "/"}},
            {"name": "c", "secret": {"secretName": "s"}},
            {"name": "d", "hostPath": {"path": "/x"}},
            {"name": "e"}]});
        assert_eq!(
            run(restricted_volumes, spec).as_deref(),
            Some("restricted volume types (volumes \"a\", \"b\", \"d\" use restricted volume types \"hostPath\", \"nfs\")")
        );
    }
}
