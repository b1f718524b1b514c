//! ControllerRevision history, as upstream's `pkg/controller/history` and the
//! DaemonSet controller's `update.go` keep it: one revision per distinct
//! template, named `PARENT-HASH` and labelled `controller-revision-hash`,
//! numbered so the newest is the highest, truncated to `revisionHistoryLimit`
//! (never a revision live pods still carry), and a collision count that moves
//! the hash when a name is taken by another template. Written for DaemonSets
//! and StatefulSets: the parent supplies the hash and the data.
//! The pure part decides; [`create_revision`] is the one API edge here.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Debug;

use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::reflector::Store;
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;

use super::workload::{
    controller_of, controller_reference, patch_owner_references, selector_matches,
};

/// The label carrying a revision's hash, on the revision and on the pods made from it.
pub const CONTROLLER_REVISION_HASH: &str = "controller-revision-hash";

/// The revisions `owner` controls in its namespace, adopting orphans its
/// `selector` matches (upstream's `adoptOrphanRevisions`): a parent applied
/// again after `kubectl delete --cascade=orphan` finds its old revisions, so
/// the pods it adopts keep their revision and are not rolled.
pub async fn owned_revisions<O>(
    owner: &O,
    selector: &LabelSelector,
    revisions: &Store<ControllerRevision>,
    api: &Api<ControllerRevision>,
) -> Result<Vec<std::sync::Arc<ControllerRevision>>, kube::Error>
where
    O: Resource<DynamicType = ()>,
{
    let uid = owner.meta().uid.clone().unwrap_or_default();
    let namespace = owner.meta().namespace.clone();
    let mut owned = Vec::new();
    for revision in revisions
        .state()
        .into_iter()
        .filter(|r| r.metadata.namespace == namespace)
    {
        match controller_of(&revision.metadata) {
            Some(controller) if controller.uid == uid => owned.push(revision),
            None if revision.metadata.deletion_timestamp.is_none()
                && selector_matches(selector, revision.metadata.labels.as_ref()) =>
            {
                let mut refs = revision.owner_references().to_vec();
                refs.push(controller_reference(owner));
                if let Some(adopted) = patch_owner_references(api, revision.as_ref(), &refs).await?
                {
                    owned.push(std::sync::Arc::new(adopted));
                }
            }
            _ => {}
        }
    }
    Ok(owned)
}

/// Upstream's default `revisionHistoryLimit`.
pub const DEFAULT_HISTORY_LIMIT: i32 = 10;

/// Longest parent-name prefix of a revision name (upstream's `ControllerRevisionName`).
const MAX_PREFIX: usize = 223;

/// `PARENT-HASH`, with the parent's name cut so the result stays a valid name.
pub fn revision_name(parent: &str, hash: &str) -> String {
    let prefix: String = parent.chars().take(MAX_PREFIX).collect();
    format!("{prefix}-{hash}")
}

/// The revision number a new current revision gets: one above the highest.
pub fn next_revision(revisions: &[&ControllerRevision]) -> i64 {
    revisions.iter().map(|r| r.revision).max().unwrap_or(0) + 1
}

/// The hash a revision carries (its label, else nothing).
pub fn hash_of(revision: &ControllerRevision) -> Option<&str> {
    revision
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(CONTROLLER_REVISION_HASH))
        .map(String::as_str)
}

/// A new revision of a parent: its template labels plus the hash label, the
/// parent's annotations (so `kubernetes.io/change-cause` shows in `kubectl
/// rollout history`), controlled by the parent.
pub fn new_revision(
    parent: &ObjectMeta,
    owner: OwnerReference,
    template_labels: Option<&BTreeMap<String, String>>,
    hash: &str,
    data: serde_json::Value,
    revision: i64,
) -> ControllerRevision {
    let mut labels = template_labels.cloned().unwrap_or_default();
    labels.insert(CONTROLLER_REVISION_HASH.into(), hash.into());
    ControllerRevision {
        metadata: ObjectMeta {
            name: Some(revision_name(
                parent.name.as_deref().unwrap_or_default(),
                hash,
            )),
            namespace: parent.namespace.clone(),
            labels: Some(labels),
            annotations: parent.annotations.clone(),
            owner_references: Some(vec![owner]),
            ..Default::default()
        },
        data: Some(RawExtension(data)),
        revision,
    }
}

/// Revisions split into the ones equal to the current template (`current`,
/// highest revision first) and the rest.
pub fn split_current<'a>(
    revisions: &[&'a ControllerRevision],
    is_current: impl Fn(&ControllerRevision) -> bool,
) -> (Vec<&'a ControllerRevision>, Vec<&'a ControllerRevision>) {
    let (mut current, old): (Vec<&'a ControllerRevision>, Vec<&'a ControllerRevision>) =
        revisions.iter().copied().partition(|r| is_current(r));
    current.sort_by_key(|r| std::cmp::Reverse(r.revision));
    (current, old)
}

/// Names of old revisions to delete so at most `limit` remain, oldest first,
/// sparing any whose hash a live pod still carries (upstream's `cleanupHistory`).
pub fn revisions_to_delete(
    old: &[&ControllerRevision],
    limit: i32,
    live_hashes: &HashSet<String>,
) -> Vec<String> {
    let mut to_kill = old.len() as i64 - i64::from(limit.max(0));
    let mut sorted = old.to_vec();
    sorted.sort_by_key(|r| r.revision);
    let mut names = Vec::new();
    for revision in sorted {
        if to_kill <= 0 {
            break;
        }
        if hash_of(revision).is_some_and(|h| live_hashes.contains(h)) {
            continue;
        }
        names.push(revision.name_any());
        to_kill -= 1;
    }
    names
}

/// What creating a revision came to.
#[derive(Debug)]
pub enum Created {
    /// The revision exists now (created, or found with the same data).
    Revision(Box<ControllerRevision>),
    /// Another template's revision holds the name: bump the collision count.
    Collision,
}

/// Creates `revision`; when its name is taken, the existing one is used if
/// `same_data` says it holds the same data, else the caller must bump its
/// collision count and retry (upstream's `snapshot`).
pub async fn create_revision(
    api: &Api<ControllerRevision>,
    revision: &ControllerRevision,
    same_data: impl Fn(&ControllerRevision) -> bool,
) -> Result<Created, kube::Error> {
    match api.create(&PostParams::default(), revision).await {
        Ok(created) => Ok(Created::Revision(Box::new(created))),
        Err(kube::Error::Api(s)) if s.code == 409 => {
            let existing = api.get(&revision.name_any()).await?;
            if same_data(&existing) {
                Ok(Created::Revision(Box::new(existing)))
            } else {
                Ok(Created::Collision)
            }
        }
        Err(e) => Err(e),
    }
}

/// Renumbers `keep` to `next` when it is below it: a template that comes back
/// (as `kubectl rollout undo` brings it) is the newest revision again.
pub async fn renumber(
    api: &Api<ControllerRevision>,
    keep: &ControllerRevision,
    next: i64,
) -> Result<(), kube::Error> {
    if keep.revision < next {
        let patch = serde_json::json!({"revision": next});
        api.patch(
            &keep.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await?;
    }
    Ok(())
}

/// Deletes the old revisions beyond `limit` (default 10) that no live hash
/// protects ([`revisions_to_delete`]); one already gone is fine.
pub async fn truncate(
    api: &Api<ControllerRevision>,
    old: &[ControllerRevision],
    limit: Option<i32>,
    live_hashes: &HashSet<String>,
) -> Result<(), kube::Error> {
    let refs: Vec<&ControllerRevision> = old.iter().collect();
    let limit = limit.unwrap_or(DEFAULT_HISTORY_LIMIT);
    for name in revisions_to_delete(&refs, limit, live_hashes) {
        match api.delete(&name, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Raises the parent `name`'s `status.collisionCount` (read by `count`) by
/// one, guarded by the count the colliding hash used: when it moved meanwhile
/// the next pass hashes with the newer count.
pub async fn bump_collision_count<K>(
    api: &Api<K>,
    name: &str,
    used: Option<i32>,
    count: impl Fn(&K) -> Option<i32>,
) -> Result<(), kube::Error>
where
    K: Resource + Clone + DeserializeOwned + Debug,
{
    let current = api.get_status(name).await?;
    let now = count(&current);
    if now != used {
        return Ok(());
    }
    let patch = serde_json::json!({"metadata": {"resourceVersion": current.meta().resource_version},
        "status": {"collisionCount": now.unwrap_or(0) + 1}});
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn revision(name: &str, hash: &str, number: i64) -> ControllerRevision {
        ControllerRevision {
            metadata: ObjectMeta {
                name: Some(name.into()),
                labels: Some(BTreeMap::from([(
                    CONTROLLER_REVISION_HASH.into(),
                    hash.into(),
                )])),
                ..Default::default()
            },
            data: None,
            revision: number,
        }
    }

    #[test]
    fn names_are_parent_dash_hash_and_fit_a_name() {
        assert_eq!(revision_name("fluentd", "7d9f"), "fluentd-7d9f");
        let long = "a".repeat(300);
        assert_eq!(revision_name(&long, "h").len(), MAX_PREFIX + 2);
    }

    #[test]
    fn next_revision_is_one_above_the_highest() {
        let (a, b) = (revision("a", "1", 3), revision("b", "2", 7));
        let cases: [(&[&ControllerRevision], i64); 3] = [(&[], 1), (&[&a], 4), (&[&a, &b], 8)];
        for (revisions, expected) in cases {
            assert_eq!(next_revision(revisions), expected);
        }
    }

    #[test]
    fn new_revision_carries_template_labels_hash_annotations_and_owner() {
        let parent = ObjectMeta {
            name: Some("logs".into()),
            namespace: Some("ns".into()),
            annotations: Some(BTreeMap::from([(
                "kubernetes.io/change-cause".into(),
                "v2".into(),
            )])),
            ..Default::default()
        };
        let labels = BTreeMap::from([("app".to_string(), "logs".to_string())]);
        let owner = OwnerReference {
            kind: "DaemonSet".into(),
            name: "logs".into(),
            uid: "u".into(),
            controller: Some(true),
            ..Default::default()
        };
        let r = new_revision(
            &parent,
            owner,
            Some(&labels),
            "abc",
            serde_json::json!({}),
            2,
        );
        assert_eq!(r.name_any(), "logs-abc");
        assert_eq!(hash_of(&r), Some("abc"));
        assert_eq!(r.labels()["app"], "logs");
        assert_eq!(r.annotations()["kubernetes.io/change-cause"], "v2");
        assert_eq!(r.revision, 2);
        assert_eq!(r.owner_references()[0].uid, "u");
    }

    #[test]
    fn truncation_deletes_oldest_beyond_the_limit_but_spares_live_hashes() {
        let revisions: Vec<ControllerRevision> = (1..=5)
            .map(|n| revision(&format!("r{n}"), &format!("h{n}"), n))
            .collect();
        let old: Vec<&ControllerRevision> = revisions.iter().rev().collect();
        let live = |hashes: &[&str]| hashes.iter().map(|h| h.to_string()).collect();
        let cases: [(i32, HashSet<String>, Vec<&str>); 4] = [
            (10, live(&[]), vec![]),
            (3, live(&[]), vec!["r1", "r2"]),
            (3, live(&["h1"]), vec!["r2", "r3"]),
            (0, live(&["h5"]), vec!["r1", "r2", "r3", "r4"]),
        ];
        for (limit, hashes, expected) in cases {
            assert_eq!(
                revisions_to_delete(&old, limit, &hashes),
                expected,
                "{limit}"
            );
        }
    }

    #[test]
    fn current_revisions_come_highest_first() {
        let (a, b, c) = (
            revision("a", "x", 1),
            revision("b", "y", 2),
            revision("c", "x", 3),
        );
        let (current, old) = split_current(&[&a, &b, &c], |r| hash_of(r) == Some("x"));
        let names = |v: &[&ControllerRevision]| v.iter().map(|r| r.name_any()).collect::<Vec<_>>();
        assert_eq!(names(&current), ["c", "a"]);
        assert_eq!(names(&old), ["b"]);
    }
}
