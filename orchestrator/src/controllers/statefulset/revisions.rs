//! A StatefulSet's ControllerRevisions (upstream's `getStatefulSetRevisions`
//! over `pkg/controller/history`): the revision holding the current template
//! is the update revision (renumbered to the top when `kubectl rollout undo`
//! brings an old template back, created when new); the current revision is
//! the one `status.currentRevision` names, else the update revision. Pods are
//! labelled with the revision's name, as upstream does; old revisions beyond
//! `revisionHistoryLimit` that no pod carries are deleted.

use std::collections::HashSet;

use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use kube::api::Api;
use kube::runtime::reflector::Store;
use kube::ResourceExt;
use serde_json::{json, Value};

use crate::controllers::daemonset::revisions::HistoryError;
use crate::controllers::deployment::rollout::pod_template_hash;
use crate::controllers::history::{self, Created};
use crate::controllers::workload::controller_reference;

/// The revisions one pass works with.
#[derive(Debug, Clone)]
pub struct SetRevisions {
    /// Name of the revision current pods are at.
    pub current: String,
    /// The template of the current revision.
    pub current_template: PodTemplateSpec,
    /// Name of the revision of the set's template.
    pub update: String,
    /// Every other revision the set owns.
    pub old: Vec<ControllerRevision>,
}

/// `{"spec": {"template": …, "$patch": "replace"}}`: what kubectl's undo applies.
pub fn revision_data(template: &PodTemplateSpec) -> Value {
    let mut template = serde_json::to_value(template).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut template {
        map.insert("$patch".into(), json!("replace"));
    }
    json!({"spec": {"template": template}})
}

/// The template a revision holds.
pub fn template_of(revision: &ControllerRevision) -> Option<PodTemplateSpec> {
    let mut template = revision
        .data
        .as_ref()?
        .0
        .get("spec")?
        .get("template")?
        .clone();
    if let Value::Object(map) = &mut template {
        map.remove("$patch");
    }
    serde_json::from_value(template).ok()
}

fn template(set: &StatefulSet) -> PodTemplateSpec {
    set.spec
        .as_ref()
        .map(|s| s.template.clone())
        .unwrap_or_default()
}

/// The current and update revisions, creating or renumbering the update one.
pub async fn construct(
    set: &StatefulSet,
    revisions: &Store<ControllerRevision>,
    client: &kube::Client,
) -> Result<SetRevisions, HistoryError> {
    let api: Api<ControllerRevision> =
        Api::namespaced(client.clone(), &set.namespace().unwrap_or_default());
    let selector = set
        .spec
        .as_ref()
        .map(|s| s.selector.clone())
        .unwrap_or_default();
    let owned = history::owned_revisions(set, &selector, revisions, &api).await?;
    let refs: Vec<&ControllerRevision> = owned.iter().map(|r| r.as_ref()).collect();
    let template = template(set);
    let data = revision_data(&template);
    let (current, old) =
        history::split_current(&refs, |r| r.data.as_ref().map(|d| &d.0) == Some(&data));
    let next = history::next_revision(&old);
    let update = match current.first() {
        Some(keep) => {
            history::renumber(&api, keep, next).await?;
            keep.name_any()
        }
        None => {
            let collision_count = set.status.as_ref().and_then(|s| s.collision_count);
            let hash = pod_template_hash(&template, collision_count);
            let revision = history::new_revision(
                &set.metadata,
                controller_reference(set),
                template.metadata.as_ref().and_then(|m| m.labels.as_ref()),
                &hash,
                data.clone(),
                next,
            );
            let same = |r: &ControllerRevision| r.data.as_ref().map(|d| &d.0) == Some(&data);
            match history::create_revision(&api, &revision, same).await? {
                Created::Revision(created) => created.name_any(),
                Created::Collision => {
                    let sets: Api<StatefulSet> =
                        Api::namespaced(client.clone(), &set.namespace().unwrap_or_default());
                    let count = |s: &StatefulSet| s.status.as_ref().and_then(|s| s.collision_count);
                    history::bump_collision_count(&sets, &set.name_any(), collision_count, count)
                        .await?;
                    return Err(HistoryError::Collision(revision.name_any()));
                }
            }
        }
    };
    let named = set
        .status
        .as_ref()
        .and_then(|s| s.current_revision.clone())
        .filter(|name| *name != update)
        .and_then(|name| old.iter().find(|r| r.name_any() == name).copied());
    let (current, current_template) = match named {
        Some(revision) => (
            revision.name_any(),
            template_of(revision).unwrap_or_else(|| template.clone()),
        ),
        None => (update.clone(), template),
    };
    Ok(SetRevisions {
        current,
        current_template,
        update,
        old: old.into_iter().cloned().collect(),
    })
}

/// Deletes old revisions beyond `revisionHistoryLimit` that neither a pod
/// nor the status still names.
pub async fn cleanup(
    set: &StatefulSet,
    revisions: &SetRevisions,
    live: &HashSet<String>,
    client: &kube::Client,
) -> Result<(), kube::Error> {
    let limit = set.spec.as_ref().and_then(|s| s.revision_history_limit);
    // Pods carry revision names; the history module compares hashes.
    let live_hashes: HashSet<String> = revisions
        .old
        .iter()
        .filter(|r| live.contains(&r.name_any()) || r.name_any() == revisions.current)
        .filter_map(|r| history::hash_of(r).map(str::to_owned))
        .collect();
    let api: Api<ControllerRevision> =
        Api::namespaced(client.clone(), &set.namespace().unwrap_or_default());
    history::truncate(&api, &revisions.old, limit, &live_hashes).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
    use std::collections::BTreeMap;

    #[test]
    fn a_revision_gives_back_its_template() {
        let template = PodTemplateSpec {
            metadata: Some(ObjectMeta {
                labels: Some(BTreeMap::from([("app".into(), "web".into())])),
                ..Default::default()
            }),
            spec: None,
        };
        let data = revision_data(&template);
        assert_eq!(data["spec"]["template"]["$patch"], "replace");
        let revision = ControllerRevision {
            data: Some(RawExtension(data)),
            ..Default::default()
        };
        assert_eq!(template_of(&revision), Some(template));
    }
}
