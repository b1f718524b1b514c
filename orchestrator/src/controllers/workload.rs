//! Small pure helpers the workload controllers (ReplicaSet, Deployment, garbage
//! collector) share: controller references, selector matching, pod readiness
//! and a work queue built on kube-runtime's `applier`. No I/O beyond watches.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::hash::Hash;

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use kube::core::{Selector, SelectorExt};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Resource};
use serde::de::DeserializeOwned;

use super::cache::{self, Cache};

/// The owner reference with `controller: true`, if any (at most one may exist).
pub fn controller_of(meta: &ObjectMeta) -> Option<&OwnerReference> {
    meta.owner_references
        .as_deref()
        .unwrap_or_default()
        .iter()
        .find(|r| r.controller == Some(true))
}

/// An owner reference that makes `owner` the controller of a dependent and
/// blocks the owner's foreground deletion until the dependent is gone.
pub fn controller_reference<K: Resource<DynamicType = ()>>(owner: &K) -> OwnerReference {
    let meta = owner.meta();
    OwnerReference {
        api_version: K::api_version(&()).into_owned(),
        kind: K::kind(&()).into_owned(),
        name: meta.name.clone().unwrap_or_default(),
        uid: meta.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// Whether `labels` satisfy `selector`. An empty or invalid selector selects
/// nothing, as upstream's workload controllers treat it.
pub fn selector_matches(
    selector: &LabelSelector,
    labels: Option<&BTreeMap<String, String>>,
) -> bool {
    let empty = selector.match_labels.as_ref().is_none_or(|m| m.is_empty())
        && selector
            .match_expressions
            .as_ref()
            .is_none_or(|e| e.is_empty());
    if empty {
        return false;
    }
    let Ok(selector) = Selector::try_from(selector.clone()) else {
        return false;
    };
    let none = BTreeMap::new();
    selector.matches(labels.unwrap_or(&none))
}

/// A pod that counts toward a workload: not finished and not being deleted.
pub fn pod_is_active(pod: &Pod) -> bool {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    pod.metadata.deletion_timestamp.is_none() && !matches!(phase, Some("Succeeded" | "Failed"))
}

/// When the pod's Ready condition turned True, if it is Ready.
pub fn pod_ready_since(pod: &Pod) -> Option<Option<jiff::Timestamp>> {
    pod.status
        .as_ref()?
        .conditions
        .as_deref()?
        .iter()
        .find(|c| c.type_ == "Ready" && c.status == "True")
        .map(|c| c.last_transition_time.as_ref().map(|t| t.0))
}

/// Whether the pod is Ready.
pub fn pod_is_ready(pod: &Pod) -> bool {
    pod_ready_since(pod).is_some()
}

/// Whether the pod has been Ready for at least `min_ready_seconds` at `now`.
pub fn pod_is_available(pod: &Pod, min_ready_seconds: i32, now: jiff::Timestamp) -> bool {
    match pod_ready_since(pod) {
        None => false,
        Some(_) if min_ready_seconds <= 0 => true,
        Some(None) => false,
        Some(Some(since)) => {
            since + jiff::SignedDuration::from_secs(i64::from(min_ready_seconds)) <= now
        }
    }
}

/// A reflector-backed watch of every `K`: the returned cache fills as the
/// stream is polled, and the stream yields every touched (applied or deleted)
/// object after the cache has seen it, so triggers never outrun the cache.
pub fn cached_watch<K>(
    api: Api<K>,
) -> (
    Cache<K>,
    impl Stream<Item = Result<K, watcher::Error>> + Send + 'static,
)
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + Hash + Clone + Send + Sync,
{
    let (cache, events) = cache::reflect(watcher(api, watcher::Config::default()));
    (cache, events.default_backoff().touched_objects())
}

/// Maps an object to the ObjectRef of its controller owner of kind `K`.
pub fn controller_ref_of<K: Resource<DynamicType = ()>>(meta: &ObjectMeta) -> Option<ObjectRef<K>> {
    let owner = controller_of(meta)?;
    if owner.kind != K::kind(&()) || owner.api_version != K::api_version(&()) {
        return None;
    }
    let mut r = ObjectRef::new(&owner.name);
    if let Some(ns) = &meta.namespace {
        r = r.within(ns);
    }
    Some(r)
}

/// The owners of kind `K` a child's event should wake: its controller when it has
/// one (none when another kind controls it), else every `K` in its namespace whose
/// selector matches it, since one of them may adopt it.
pub fn owners_to_wake<K>(
    child: &ObjectMeta,
    owners: &Store<K>,
    selector: impl Fn(&K) -> Option<&LabelSelector>,
) -> Vec<ObjectRef<K>>
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    owners_to_wake_by(child, owners, |owner, labels| {
        selector(owner).is_some_and(|s| selector_matches(s, labels))
    })
}

/// [`owners_to_wake`] with the owner's selector applied by `selects` (for
/// owners whose selector is not a `LabelSelector`, as ReplicationControllers').
pub fn owners_to_wake_by<K>(
    child: &ObjectMeta,
    owners: &Store<K>,
    selects: impl Fn(&K, Option<&BTreeMap<String, String>>) -> bool,
) -> Vec<ObjectRef<K>>
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    if let Some(owner) = controller_of(child) {
        if owner.kind != K::kind(&()) {
            return Vec::new();
        }
        let mut r = ObjectRef::new(&owner.name);
        if let Some(ns) = &child.namespace {
            r = r.within(ns);
        }
        return vec![r];
    }
    owners
        .state()
        .iter()
        .filter(|o| o.meta().namespace == child.namespace)
        .filter(|o| selects(o, child.labels.as_ref()))
        .map(|o| ObjectRef::from_obj(o.as_ref()))
        .collect()
}

/// Drives `stream` to the end, ignoring items (used to run the trigger side of
/// an applier together with its reconciles).
pub async fn drain<S: Stream + Unpin>(mut stream: S) {
    while stream.next().await.is_some() {}
}

/// A merge patch setting `ownerReferences` (removing the field when none are
/// left, as upstream leaves it), guarded by `resource_version`.
pub fn owner_references_patch(
    refs: &[OwnerReference],
    resource_version: Option<String>,
) -> serde_json::Value {
    let refs = if refs.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::json!(refs)
    };
    serde_json::json!({"metadata": {"ownerReferences": refs, "resourceVersion": resource_version}})
}

/// Sets `object`'s ownerReferences to `refs` (adopting or releasing it),
/// guarded by its resourceVersion; None when it changed or went away meanwhile
/// (the next pass sees the new state).
pub async fn patch_owner_references<K>(
    api: &Api<K>,
    object: &K,
    refs: &[OwnerReference],
) -> Result<Option<K>, kube::Error>
where
    K: Resource + Clone + DeserializeOwned + Debug,
{
    let name = object.meta().name.clone().unwrap_or_default();
    let patch = owner_references_patch(refs, object.meta().resource_version.clone());
    match api
        .patch(
            &name,
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&patch),
        )
        .await
    {
        Ok(patched) => Ok(Some(patched)),
        Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => Ok(None),
        Err(e) => Err(e),
    }
}

/// The `candidates` `owner` controls after claiming (upstream's
/// `ClaimObject`): orphans its selector matches are adopted, owned ones that
/// stopped matching are released; an object that changed meanwhile is left
/// to the next pass.
pub async fn claim<O, K>(
    owner: &O,
    selector: &LabelSelector,
    candidates: impl IntoIterator<Item = std::sync::Arc<K>>,
    api: &Api<K>,
) -> Result<Vec<std::sync::Arc<K>>, kube::Error>
where
    O: Resource<DynamicType = ()>,
    K: Resource + Clone + DeserializeOwned + Debug,
{
    let uid = owner.meta().uid.clone().unwrap_or_default();
    let mut owned = Vec::new();
    for child in candidates {
        let meta = child.meta();
        let matches = selector_matches(selector, meta.labels.as_ref());
        let current = meta.owner_references.clone().unwrap_or_default();
        let refs = match controller_of(meta) {
            Some(o) if o.uid == uid && matches => {
                owned.push(child);
                continue;
            }
            Some(o) if o.uid == uid => current.into_iter().filter(|r| r.uid != uid).collect(),
            None if matches && meta.deletion_timestamp.is_none() => {
                let mut refs = current;
                refs.push(controller_reference(owner));
                refs
            }
            _ => continue,
        };
        let adopting = refs.iter().any(|r| r.uid == uid);
        if let Some(patched) = patch_owner_references(api, child.as_ref(), &refs).await? {
            if adopting {
                owned.push(std::sync::Arc::new(patched));
            }
        }
    }
    Ok(owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn selector_matches_labels_and_expressions_and_empty_selects_nothing() {
        let by_label = LabelSelector {
            match_labels: Some(labels(&[("app", "web")])),
            ..Default::default()
        };
        assert!(selector_matches(
            &by_label,
            Some(&labels(&[("app", "web"), ("x", "y")]))
        ));
        assert!(!selector_matches(
            &by_label,
            Some(&labels(&[("app", "db")]))
        ));
        assert!(!selector_matches(&by_label, None));
        let by_expression = LabelSelector {
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "tier".into(),
                operator: "In".into(),
                values: Some(vec!["front".into(), "back".into()]),
            }]),
            ..Default::default()
        };
        assert!(selector_matches(
            &by_expression,
            Some(&labels(&[("tier", "back")]))
        ));
        assert!(!selector_matches(
            &by_expression,
            Some(&labels(&[("tier", "mid")]))
        ));
        assert!(!selector_matches(
            &LabelSelector::default(),
            Some(&labels(&[("a", "b")]))
        ));
    }

    #[test]
    fn orphans_wake_owners_whose_equality_selector_matches_and_owned_pods_their_controller() {
        use k8s_openapi::api::core::v1::ReplicationController;
        let (store, mut writer) = kube::runtime::reflector::store::<ReplicationController>();
        for (name, app) in [("web", "web"), ("db", "db")] {
            let rc: ReplicationController = serde_json::from_value(serde_json::json!({
                "metadata": {"name": name, "namespace": "default", "uid": name},
                "spec": {"selector": {"app": app}}
            }))
            .unwrap();
            writer.apply_watcher_event(&watcher::Event::Apply(rc));
        }
        let selects = |rc: &ReplicationController, labels: Option<&BTreeMap<String, String>>| {
            let wanted = rc.spec.as_ref().and_then(|s| s.selector.as_ref());
            wanted.is_some_and(|w| {
                !w.is_empty()
                    && w.iter()
                        .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
            })
        };
        let orphan = ObjectMeta {
            namespace: Some("default".into()),
            labels: Some(labels(&[("app", "web")])),
            ..Default::default()
        };
        let woken = owners_to_wake_by(&orphan, &store, selects);
        assert_eq!(
            woken.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
            ["web"]
        );
        let cases = [
            ("ReplicationController", vec!["db"]),
            ("ReplicaSet", vec![]),
        ];
        for (kind, expected) in cases {
            let owned = ObjectMeta {
                owner_references: Some(vec![OwnerReference {
                    kind: kind.into(),
                    name: "db".into(),
                    controller: Some(true),
                    ..Default::default()
                }]),
                ..orphan.clone()
            };
            let woken = owners_to_wake_by(&owned, &store, selects);
            let names: Vec<&str> = woken.iter().map(|r| r.name.as_str()).collect();
            assert_eq!(names, expected, "{kind}");
        }
    }
}
