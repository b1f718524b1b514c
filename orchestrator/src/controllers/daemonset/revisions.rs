//! A DaemonSet's ControllerRevisions (upstream's `constructHistory`,
//! `snapshot` and `cleanupHistory`): the revision whose data equals the
//! current template is current (renumbered to the top when an old template
//! comes back, as `kubectl rollout undo` does), else a new one is created;
//! duplicates are removed and old ones truncated to `revisionHistoryLimit`.
//! The data is the strategic-merge patch kubectl's undo applies.

use std::collections::HashSet;

use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::runtime::reflector::Store;
use kube::ResourceExt;
use serde_json::{json, Value};

use crate::controllers::deployment::rollout::pod_template_hash;
use crate::controllers::history::{self, Created, CONTROLLER_REVISION_HASH};
use crate::controllers::workload::{controller_of, controller_reference};

/// Why the history could not be brought up to date.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// The API refused a read or write.
    #[error("{0}")]
    Api(#[from] kube::Error),
    /// Another template's revision holds our name; the collision count was bumped.
    #[error("hash collision on controller revision {0}; collisionCount bumped, retrying")]
    Collision(String),
}

/// The revision data of the current template: `{"spec": {"template": …,
/// "$patch": "replace"}}` (upstream's `getPatch`).
pub fn revision_data(ds: &DaemonSet) -> Value {
    let template = ds.spec.as_ref().map(|s| &s.template);
    let mut template = serde_json::to_value(template).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut template {
        map.insert("$patch".into(), json!("replace"));
    }
    json!({"spec": {"template": template}})
}

/// Whether `revision` holds the current template of `ds`.
pub fn is_current(ds: &DaemonSet, revision: &ControllerRevision) -> bool {
    revision.data.as_ref().map(|d| &d.0) == Some(&revision_data(ds))
}

/// The current revision's hash and the old revisions (upstream's
/// `constructHistory`); duplicates of the current one are deleted after their
/// pods are relabelled to the revision kept.
pub async fn construct(
    ds: &DaemonSet,
    revisions: &Store<ControllerRevision>,
    pods: &Store<Pod>,
    client: &kube::Client,
) -> Result<(String, Vec<ControllerRevision>), HistoryError> {
    let namespace = ds.namespace().unwrap_or_default();
    let api: Api<ControllerRevision> = Api::namespaced(client.clone(), &namespace);
    let selector = super::placement::selector(ds);
    let owned = history::owned_revisions(ds, &selector, revisions, &api).await?;
    let refs: Vec<&ControllerRevision> = owned.iter().map(|r| r.as_ref()).collect();
    let (current, old) = history::split_current(&refs, |r| is_current(ds, r));
    let next = history::next_revision(&old);
    let old: Vec<ControllerRevision> = old.into_iter().cloned().collect();
    let Some((keep, duplicates)) = current.split_first() else {
        let collision_count = ds.status.as_ref().and_then(|s| s.collision_count);
        let template = ds
            .spec
            .as_ref()
            .map(|s| s.template.clone())
            .unwrap_or_default();
        let hash = pod_template_hash(&template, collision_count);
        let revision = history::new_revision(
            &ds.metadata,
            controller_reference(ds),
            template.metadata.as_ref().and_then(|m| m.labels.as_ref()),
            &hash,
            revision_data(ds),
            next,
        );
        return match history::create_revision(&api, &revision, |r| is_current(ds, r)).await? {
            Created::Revision(created) => {
                Ok((history::hash_of(&created).unwrap_or(&hash).to_owned(), old))
            }
            Created::Collision => {
                bump_collision_count(ds, client, collision_count).await?;
                Err(HistoryError::Collision(revision.name_any()))
            }
        };
    };
    let keep_hash = history::hash_of(keep)
        .map(str::to_owned)
        .unwrap_or_else(|| keep.name_any());
    for duplicate in duplicates {
        // Pods made from the duplicate carry its hash: move them to the one kept.
        if let Some(duplicate_hash) = history::hash_of(duplicate) {
            relabel_pods(ds, pods, client, duplicate_hash, &keep_hash).await?;
        }
        match api
            .delete(&duplicate.name_any(), &DeleteParams::default())
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
    }
    history::renumber(&api, keep, next).await?;
    Ok((keep_hash, old))
}

/// Sets `controller-revision-hash: to` on the DaemonSet's pods labelled `from`.
async fn relabel_pods(
    ds: &DaemonSet,
    pods: &Store<Pod>,
    client: &kube::Client,
    from: &str,
    to: &str,
) -> Result<(), kube::Error> {
    let api: Api<Pod> = Api::namespaced(client.clone(), &ds.namespace().unwrap_or_default());
    let uid = ds.uid();
    let patch = json!({"metadata": {"labels": {CONTROLLER_REVISION_HASH: to}}});
    for pod in pods.state().iter().filter(|p| {
        p.namespace() == ds.namespace()
            && controller_of(&p.metadata).map(|o| &o.uid) == uid.as_ref()
            && p.labels().get(CONTROLLER_REVISION_HASH).map(String::as_str) == Some(from)
    }) {
        match api
            .patch(
                &pod.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

async fn bump_collision_count(
    ds: &DaemonSet,
    client: &kube::Client,
    used: Option<i32>,
) -> Result<(), kube::Error> {
    let api: Api<DaemonSet> = Api::namespaced(client.clone(), &ds.namespace().unwrap_or_default());
    history::bump_collision_count(&api, &ds.name_any(), used, |ds: &DaemonSet| {
        ds.status.as_ref().and_then(|s| s.collision_count)
    })
    .await
}

/// Deletes old revisions beyond `revisionHistoryLimit` that no live pod carries.
pub async fn cleanup(
    ds: &DaemonSet,
    old: &[ControllerRevision],
    live_hashes: &HashSet<String>,
    client: &kube::Client,
) -> Result<(), kube::Error> {
    let limit = ds.spec.as_ref().and_then(|s| s.revision_history_limit);
    let api: Api<ControllerRevision> =
        Api::namespaced(client.clone(), &ds.namespace().unwrap_or_default());
    history::truncate(&api, old, limit, live_hashes).await
}

/// The revision hashes the pods carry.
pub fn live_hashes<'a>(
    pods: impl IntoIterator<Item = &'a k8s_openapi::api::core::v1::Pod>,
) -> HashSet<String> {
    pods.into_iter()
        .filter_map(|p| p.labels().get(CONTROLLER_REVISION_HASH).cloned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::runtime::RawExtension;

    #[test]
    fn revision_data_replaces_the_template_and_matches_only_the_same_template() {
        let ds = |image: &str| -> DaemonSet {
            serde_json::from_value(json!({"metadata": {"name": "d"}, "spec": {
                "selector": {"matchLabels": {"a": "b"}},
                "template": {"metadata": {"labels": {"a": "b"}},
                    "spec": {"containers": [{"name": "c", "image": image}]}}}}))
            .unwrap()
        };
        let data = revision_data(&ds("v1"));
        assert_eq!(data["spec"]["template"]["$patch"], "replace");
        assert_eq!(
            data["spec"]["template"]["spec"]["containers"][0]["image"],
            "v1"
        );
        let revision = ControllerRevision {
            data: Some(RawExtension(data)),
            ..Default::default()
        };
        assert!(is_current(&ds("v1"), &revision));
        assert!(!is_current(&ds("v2"), &revision));
    }
}
