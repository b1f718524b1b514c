//! ownerReference garbage collection (upstream's `pkg/controller/garbagecollector`),
//! generic over kinds through `DynamicObject`: dependents whose owners are all
//! gone are deleted (background); an owner carrying `foregroundDeletion` has
//! its dependents deleted first and is released when no blocking dependent is
//! left; an owner carrying `orphan` has its dependents' references removed,
//! then is released. An owner is only declared gone after a live read or a
//! watch's delete event, never from a cache alone.
//!
//! The watch events are taken in by a task of their own, so the caches stay
//! current while up to [`WORKERS`] objects are worked on at once; what the
//! collector remembers between events lives in [`graph`].

mod graph;

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use berth_observability::workqueue::{self, Workqueue};
use futures::stream::{self, BoxStream, StreamExt};
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::discovery::{self, verbs, Discovery, Scope};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::ResourceExt;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;

use self::graph::{AbsentOwners, DependentsIndex, Key, ABSENT_OWNERS_REMEMBERED};
use super::ControllerError;

/// The finalizer that asks for dependents to be deleted before the owner.
pub const FOREGROUND: &str = "foregroundDeletion";
/// The finalizer that asks for dependents to be kept, without the reference.
pub const ORPHAN: &str = "orphan";

/// Kinds whose objects the collector watches, as (group, kind); those the
/// server does not serve are skipped.
const WATCHED: &[(&str, &str)] = &[
    ("", "Pod"),
    ("", "Service"),
    ("", "ReplicationController"),
    ("apps", "ReplicaSet"),
    ("apps", "Deployment"),
    ("apps", "DaemonSet"),
    ("apps", "StatefulSet"),
    ("apps", "ControllerRevision"),
    ("batch", "Job"),
    ("batch", "CronJob"),
    ("discovery.k8s.io", "EndpointSlice"),
    ("", "PersistentVolumeClaim"),
];

/// What is known about one owner of a dependent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnerState {
    /// The owner exists (with the referenced UID) and is not being deleted in the foreground.
    Present,
    /// The owner exists but waits for its dependents (`foregroundDeletion`).
    DeletingForeground,
    /// No object with that name and UID exists.
    Absent,
}

/// What to do with a dependent, given its owners.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DependentAction {
    /// Nothing.
    Keep,
    /// Drop the references to these (absent) owner UIDs; other owners remain.
    RemoveReferences(Vec<String>),
    /// Delete it, in the foreground when an owner waits on it.
    Delete {
        /// Whether the dependent's own dependents must go first.
        foreground: bool,
    },
}

/// Upstream's `attemptToDeleteItem` decision over `(owner uid, state)` pairs.
pub fn dependent_action(owners: &[(String, OwnerState)]) -> DependentAction {
    if owners.is_empty() {
        return DependentAction::Keep;
    }
    let solid = owners.iter().any(|(_, s)| *s == OwnerState::Present);
    let dangling: Vec<String> = owners
        .iter()
        .filter(|(_, s)| *s == OwnerState::Absent)
        .map(|(uid, _)| uid.clone())
        .collect();
    if solid {
        return if dangling.is_empty() {
            DependentAction::Keep
        } else {
            DependentAction::RemoveReferences(dangling)
        };
    }
    DependentAction::Delete {
        foreground: owners
            .iter()
            .any(|(_, s)| *s == OwnerState::DeletingForeground),
    }
}

/// One dependent as an owner being deleted sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dependent {
    /// Its reference to the owner has `blockOwnerDeletion: true`.
    pub blocks: bool,
    /// It already has a deletionTimestamp.
    pub deleting: bool,
}

/// What to do for an owner that is being deleted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OwnerAction {
    /// Dependents (indices) to delete.
    pub delete: Vec<usize>,
    /// Dependents (indices) whose reference to the owner to remove.
    pub unlink: Vec<usize>,
    /// The finalizer to remove from the owner now.
    pub release: Option<&'static str>,
}

/// Upstream's foreground/orphan handling for an owner with a deletionTimestamp.
pub fn owner_action(
    finalizers: &[String],
    deleting: bool,
    dependents: &[Dependent],
) -> OwnerAction {
    let mut action = OwnerAction::default();
    if !deleting {
        return action;
    }
    if finalizers.iter().any(|f| f == ORPHAN) {
        action.unlink = (0..dependents.len()).collect();
        if dependents.is_empty() {
            action.release = Some(ORPHAN);
        }
        return action;
    }
    if finalizers.iter().any(|f| f == FOREGROUND) {
        action.delete = dependents
            .iter()
            .enumerate()
            .filter(|(_, d)| !d.deleting)
            .map(|(i, _)| i)
            .collect();
        if !dependents.iter().any(|d| d.blocks) {
            action.release = Some(FOREGROUND);
        }
    }
    action
}

/// A watched kind and its cache.
struct Kind {
    resource: ApiResource,
    store: Store<DynamicObject>,
}

/// How many objects are worked on at once (kube-controller-manager's
/// `--concurrent-gc-syncs` default).
const WORKERS: usize = 20;

/// How long the collector lets events gather after a wake-up, so an
/// object's burst of updates is looked at once.
const SETTLE: Duration = Duration::from_millis(20);

/// Objects waiting to be looked at, and which caches have been listed.
#[derive(Default)]
struct Pending {
    keys: HashSet<Key>,
    listed: Vec<bool>,
}

struct Collector {
    client: kube::Client,
    kinds: Vec<Kind>,
    dependents: Mutex<DependentsIndex>,
    absent: Mutex<AbsentOwners>,
    pending: Mutex<Pending>,
    wake: Notify,
    metrics: Workqueue,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn owner_uids(obj: &DynamicObject) -> Vec<String> {
    obj.owner_references()
        .iter()
        .map(|r| r.uid.clone())
        .collect()
}

#[derive(Debug, thiserror::Error)]
enum GcError {
    #[error("{0}")]
    Api(#[from] kube::Error),
}

fn is_gone(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

impl Collector {
    fn new(client: kube::Client, kinds: Vec<Kind>) -> Self {
        let listed = vec![false; kinds.len()];
        Self {
            client,
            kinds,
            dependents: Mutex::default(),
            absent: Mutex::new(AbsentOwners::new(ABSENT_OWNERS_REMEMBERED)),
            pending: Mutex::new(Pending {
                keys: HashSet::new(),
                listed,
            }),
            wake: Notify::new(),
            metrics: workqueue::named("garbage_collector_attempt_to_delete"),
        }
    }

    fn metrics_key((kind, ns, name): &Key) -> String {
        format!("{kind}/{}/{name}", ns.as_deref().unwrap_or_default())
    }

    /// Queues `keys` and wakes the workers.
    fn enqueue(&self, keys: impl IntoIterator<Item = Key>) {
        let mut pending = lock(&self.pending);
        for key in keys {
            self.metrics.add(Self::metrics_key(&key));
            pending.keys.insert(key);
        }
        drop(pending);
        self.wake.notify_one();
    }

    /// The queued keys, once every cache has been listed.
    fn take_ready(&self) -> Vec<Key> {
        let mut pending = lock(&self.pending);
        if !pending.listed.iter().all(|listed| *listed) {
            return Vec::new();
        }
        std::mem::take(&mut pending.keys).into_iter().collect()
    }

    /// Takes one watch event of kind `kind` into the index and the queue.
    fn observe(&self, kind: usize, event: Result<watcher::Event<DynamicObject>, watcher::Error>) {
        match event {
            Ok(watcher::Event::Init) => {}
            Ok(watcher::Event::InitDone) => {
                self.reindex(kind);
                lock(&self.pending).listed[kind] = true;
                self.enqueue(self.all_keys());
            }
            Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o)) => {
                let key = (kind, o.namespace(), o.name_any());
                lock(&self.dependents).set(key, owner_uids(&o));
                self.enqueue(self.keys_for(kind, &o));
            }
            Ok(watcher::Event::Delete(o)) => {
                let key = (kind, o.namespace(), o.name_any());
                let uid = o.uid().unwrap_or_default();
                let orphans = {
                    let mut index = lock(&self.dependents);
                    index.remove(&key);
                    index.dependents(&uid)
                };
                // An owner that went away leaves dependents to look at, and
                // its UID never comes back.
                if !orphans.is_empty() {
                    lock(&self.absent).insert(&uid);
                }
                self.enqueue(self.keys_for(kind, &o).into_iter().chain(orphans));
            }
            Err(e) => {
                tracing::debug!(kind = %self.kinds[kind].resource.kind, error = %e, "garbage collector watch")
            }
        }
    }

    /// Rebuilds the index from every cache after kind `kind` was listed
    /// afresh (objects deleted while the watch was down sent no event).
    fn reindex(&self, kind: usize) {
        if !lock(&self.pending).listed[kind] {
            // The first listing: the InitApply events built the entries.
            return;
        }
        let mut index = lock(&self.dependents);
        index.clear();
        for (i, k) in self.kinds.iter().enumerate() {
            for o in k.store.state() {
                index.set((i, o.namespace(), o.name_any()), owner_uids(&o));
            }
        }
    }

    /// Works on `keys`, [`WORKERS`] at a time; returns those that failed.
    async fn work(&self, keys: Vec<Key>) -> Vec<Key> {
        let failed = Mutex::new(Vec::new());
        stream::iter(keys)
            .for_each_concurrent(WORKERS, |key| {
                let failed = &failed;
                async move {
                    let _worker = self.metrics.start(&Self::metrics_key(&key));
                    if let Err(e) = self.process(&key).await {
                        tracing::warn!(error = %e, name = %key.2, "garbage collection failed; retrying");
                        self.metrics.retry();
                        lock(failed).push(key);
                    }
                }
            })
            .await;
        failed.into_inner().unwrap_or_else(|p| p.into_inner())
    }

    fn kind_index(&self, api_version: &str, kind: &str) -> Option<usize> {
        self.kinds
            .iter()
            .position(|k| k.resource.api_version == api_version && k.resource.kind == kind)
    }

    fn api(&self, resource: &ApiResource, namespace: Option<&str>) -> Api<DynamicObject> {
        match namespace {
            Some(ns) => Api::namespaced_with(self.client.clone(), ns, resource),
            None => Api::all_with(self.client.clone(), resource),
        }
    }

    fn get(&self, (kind, ns, name): &Key) -> Option<Arc<DynamicObject>> {
        let k = &self.kinds[*kind];
        let mut r = ObjectRef::new_with(name, k.resource.clone());
        if let Some(ns) = ns {
            r = r.within(ns);
        }
        k.store.get(&r)
    }

    /// The keys an event about `obj` of kind `kind` should wake: itself and its owners.
    fn keys_for(&self, kind: usize, obj: &DynamicObject) -> Vec<Key> {
        let ns = obj.namespace();
        let mut keys = vec![(kind, ns.clone(), obj.name_any())];
        for owner in obj.owner_references() {
            if let Some(i) = self.kind_index(&owner.api_version, &owner.kind) {
                keys.push((i, ns.clone(), owner.name.clone()));
            }
        }
        keys
    }

    /// The state of one owner, confirmed with a live read before it is called gone.
    async fn owner_state(
        &self,
        namespace: Option<&str>,
        owner: &k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference,
    ) -> Result<OwnerState, GcError> {
        let (resource, namespaced) = match self.kind_index(&owner.api_version, &owner.kind) {
            Some(i) => {
                let cached = self.get(&(i, namespace.map(str::to_owned), owner.name.clone()));
                if let Some(o) = cached.filter(|o| o.uid().as_deref() == Some(owner.uid.as_str())) {
                    return Ok(state_of(&o));
                }
                if lock(&self.absent).contains(&owner.uid) {
                    return Ok(OwnerState::Absent);
                }
                (self.kinds[i].resource.clone(), true)
            }
            None => {
                let (group, version) = match owner.api_version.split_once('/') {
                    Some((g, v)) => (g.to_owned(), v.to_owned()),
                    None => (String::new(), owner.api_version.clone()),
                };
                let gvk = kube::api::GroupVersionKind::gvk(&group, &version, &owner.kind);
                match discovery::pinned_kind(&self.client, &gvk).await {
                    Ok((resource, caps)) => (resource, caps.scope == Scope::Namespaced),
                    // A kind the server does not serve cannot have live owners.
                    Err(kube::Error::Discovery(_)) => return Ok(OwnerState::Absent),
                    Err(e) => return Err(e.into()),
                }
            }
        };
        let api = self.api(&resource, if namespaced { namespace } else { None });
        match api.get(&owner.name).await {
            Ok(o) if o.uid().as_deref() == Some(owner.uid.as_str()) => Ok(state_of(&o)),
            Ok(_) => Ok(self.gone(&owner.uid)),
            Err(e) if is_gone(&e) => Ok(self.gone(&owner.uid)),
            Err(e) => Err(e.into()),
        }
    }

    /// Remembers an owner a live read found gone.
    fn gone(&self, uid: &str) -> OwnerState {
        lock(&self.absent).insert(uid);
        OwnerState::Absent
    }

    /// Every cached object that references `uid` as an owner.
    fn dependents_of(&self, uid: &str) -> Vec<(usize, Arc<DynamicObject>)> {
        let keys = lock(&self.dependents).dependents(uid);
        keys.into_iter()
            .filter_map(|key| Some((key.0, self.get(&key)?)))
            .filter(|(_, o)| o.owner_references().iter().any(|r| r.uid == uid))
            .collect()
    }

    async fn process(&self, key: &Key) -> Result<(), GcError> {
        let Some(obj) = self.get(key) else {
            return Ok(());
        };
        let kind = &self.kinds[key.0];
        let ns = obj.namespace();
        let api = self.api(&kind.resource, ns.as_deref());
        let name = obj.name_any();
        // As an owner being deleted.
        if obj.metadata.deletion_timestamp.is_some() {
            let uid = obj.uid().unwrap_or_default();
            let dependents = self.dependents_of(&uid);
            let facts: Vec<Dependent> = dependents
                .iter()
                .map(|(_, d)| Dependent {
                    blocks: d
                        .owner_references()
                        .iter()
                        .any(|r| r.uid == uid && r.block_owner_deletion == Some(true)),
                    deleting: d.metadata.deletion_timestamp.is_some(),
                })
                .collect();
            let action = owner_action(obj.finalizers(), true, &facts);
            for i in &action.delete {
                let (k, d) = &dependents[*i];
                let foreground = d
                    .owner_references()
                    .iter()
                    .any(|r| r.uid == uid && r.block_owner_deletion == Some(true));
                let params = if foreground {
                    DeleteParams::foreground()
                } else {
                    DeleteParams::background()
                };
                let dapi = self.api(&self.kinds[*k].resource, d.namespace().as_deref());
                match dapi.delete(&d.name_any(), &params).await {
                    Ok(_) => {}
                    Err(e) if is_gone(&e) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            for i in &action.unlink {
                let (k, d) = &dependents[*i];
                let refs: Vec<_> = d
                    .owner_references()
                    .iter()
                    .filter(|r| r.uid != uid)
                    .cloned()
                    .collect();
                let patch = super::workload::owner_references_patch(&refs, d.resource_version());
                let dapi = self.api(&self.kinds[*k].resource, d.namespace().as_deref());
                match dapi
                    .patch(
                        &d.name_any(),
                        &PatchParams::default(),
                        &Patch::Merge(&patch),
                    )
                    .await
                {
                    Ok(_) => {}
                    Err(e) if is_gone(&e) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            if let Some(finalizer) = action.release {
                let remaining: Vec<&String> = obj
                    .finalizers()
                    .iter()
                    .filter(|f| *f != finalizer)
                    .collect();
                let patch = serde_json::json!({"metadata": {"finalizers": remaining, "resourceVersion": obj.resource_version()}});
                match api
                    .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                {
                    Ok(_) => {
                        tracing::debug!(kind = %kind.resource.kind, %name, finalizer, "released owner")
                    }
                    Err(e) if is_gone(&e) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            return Ok(());
        }
        // As a dependent.
        let refs = obj.owner_references().to_vec();
        if refs.is_empty() {
            return Ok(());
        }
        let mut owners = Vec::new();
        for owner in &refs {
            owners.push((
                owner.uid.clone(),
                self.owner_state(ns.as_deref(), owner).await?,
            ));
        }
        match dependent_action(&owners) {
            DependentAction::Keep => {}
            DependentAction::RemoveReferences(uids) => {
                let kept: Vec<_> = refs
                    .iter()
                    .filter(|r| !uids.contains(&r.uid))
                    .cloned()
                    .collect();
                let patch = super::workload::owner_references_patch(&kept, obj.resource_version());
                match api
                    .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                {
                    Ok(_) => {}
                    Err(e) if is_gone(&e) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            DependentAction::Delete { foreground } => {
                let params = DeleteParams {
                    preconditions: Some(kube::api::Preconditions {
                        uid: obj.uid(),
                        resource_version: None,
                    }),
                    ..if foreground {
                        DeleteParams::foreground()
                    } else {
                        DeleteParams::background()
                    }
                };
                tracing::info!(kind = %kind.resource.kind, %name, "deleting dependent whose owners are gone");
                match api.delete(&name, &params).await {
                    Ok(_) => {}
                    Err(e) if is_gone(&e) => {}
                    Err(kube::Error::Api(s)) if s.code == 409 => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(())
    }

    /// Every object that may need attention: owned ones and ones being deleted.
    fn all_keys(&self) -> Vec<Key> {
        let mut keys = Vec::new();
        for (i, k) in self.kinds.iter().enumerate() {
            for o in k.store.state() {
                if !o.owner_references().is_empty() || o.metadata.deletion_timestamp.is_some() {
                    keys.push((i, o.namespace(), o.name_any()));
                }
            }
        }
        keys
    }
}

fn state_of(owner: &DynamicObject) -> OwnerState {
    if owner.metadata.deletion_timestamp.is_some()
        && owner.finalizers().iter().any(|f| f == FOREGROUND)
    {
        OwnerState::DeletingForeground
    } else {
        OwnerState::Present
    }
}

/// Groups whose kinds are Kubernetes' own (or berth's); everything else a
/// discovery lists was added by a CustomResourceDefinition.
fn is_builtin_group(group: &str) -> bool {
    matches!(
        group,
        "" | "apps" | "batch" | "autoscaling" | "policy" | "berth.dev"
    ) || group.ends_with(".k8s.io")
}

/// The resources the collector follows: the built-in kinds that have owners
/// (`WATCHED`) and every custom resource that can be listed, watched and
/// deleted (their objects may name owners too).
fn watched_resources(discovery: &Discovery) -> Vec<ApiResource> {
    let mut resources = Vec::new();
    for (group, kind) in WATCHED {
        let found = discovery
            .groups()
            .filter(|g| g.name() == *group)
            .flat_map(|g| g.recommended_resources())
            .find(|(r, _)| r.kind == *kind);
        if let Some((resource, _)) = found {
            resources.push(resource);
        }
    }
    for group in discovery.groups().filter(|g| !is_builtin_group(g.name())) {
        for (resource, capabilities) in group.recommended_resources() {
            let deletable = [verbs::LIST, verbs::WATCH, verbs::DELETE]
                .iter()
                .all(|verb| capabilities.supports_operation(verb));
            if deletable {
                resources.push(resource);
            }
        }
    }
    resources
}

async fn discover(client: &kube::Client) -> Result<Vec<ApiResource>, ControllerError> {
    let discovery = Discovery::new(client.clone())
        .run()
        .await
        .map_err(|source| ControllerError::Api {
            controller: "garbage-collector",
            source,
        })?;
    Ok(watched_resources(&discovery))
}

/// How often the collector asks discovery whether custom resources came or went.
const REDISCOVERY_INTERVAL: Duration = Duration::from_secs(10);

/// Runs the garbage collector until `cancel` fires, following the resources
/// discovery lists as custom resource definitions come and go.
pub async fn run(client: kube::Client, cancel: CancellationToken) -> Result<(), ControllerError> {
    let mut resources = discover(&client).await?;
    loop {
        match collect(&client, resources, &cancel).await? {
            Some(changed) => resources = changed,
            None => return Ok(()),
        }
    }
}

/// Collects garbage among `resources` until `cancel` fires (None) or the
/// discovered resources change (Some, with the new set).
async fn collect(
    client: &kube::Client,
    resources: Vec<ApiResource>,
    cancel: &CancellationToken,
) -> Result<Option<Vec<ApiResource>>, ControllerError> {
    let mut kinds = Vec::new();
    let mut streams: Vec<BoxStream<'static, _>> = Vec::new();
    for resource in resources {
        let writer = reflector::store::Writer::<DynamicObject>::new(resource.clone());
        let store = writer.as_reader();
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
        let index = kinds.len();
        streams.push(
            reflector::reflector(writer, watcher(api, watcher::Config::default()))
                .default_backoff()
                .map(move |event| (index, event))
                .boxed(),
        );
        kinds.push(Kind { resource, store });
    }
    let collector = Arc::new(Collector::new(client.clone(), kinds));
    let _intake = AbortOnDropHandle::new(tokio::spawn({
        let collector = collector.clone();
        let mut events = stream::select_all(streams);
        async move {
            while let Some((kind, event)) = events.next().await {
                collector.observe(kind, event);
            }
        }
    }));
    let mut rediscover = tokio::time::interval(REDISCOVERY_INTERVAL);
    rediscover.tick().await;
    let mut retry: HashSet<Key> = HashSet::new();
    let mut resync = tokio::time::interval(Duration::from_secs(30));
    let mut retry_tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return Ok(None),
            _ = collector.wake.notified() => {
                tokio::select! {
                    _ = cancel.cancelled() => return Ok(None),
                    _ = tokio::time::sleep(SETTLE) => {}
                }
            }
            _ = resync.tick() => collector.enqueue(collector.all_keys()),
            _ = retry_tick.tick() => collector.enqueue(retry.drain()),
            _ = rediscover.tick() => {
                if let Ok(now) = discover(client).await {
                    let followed: Vec<&ApiResource> = collector.kinds.iter().map(|k| &k.resource).collect();
                    if now.len() != followed.len() || now.iter().zip(&followed).any(|(a, b)| a != *b) {
                        tracing::info!(resources = now.len(), "garbage collector follows the resources discovery lists now");
                        return Ok(Some(now));
                    }
                }
            }
        }
        let batch = collector.take_ready();
        if batch.is_empty() {
            continue;
        }
        tokio::select! {
            _ = cancel.cancelled() => return Ok(None),
            failed = collector.work(batch) => retry.extend(failed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owners(states: &[(&str, OwnerState)]) -> Vec<(String, OwnerState)> {
        states.iter().map(|(u, s)| (u.to_string(), *s)).collect()
    }

    #[test]
    fn dependents_are_deleted_only_when_every_owner_is_gone() {
        use OwnerState::*;
        let cases = [
            (owners(&[]), DependentAction::Keep),
            (owners(&[("a", Present)]), DependentAction::Keep),
            (
                owners(&[("a", Absent)]),
                DependentAction::Delete { foreground: false },
            ),
            (
                owners(&[("a", DeletingForeground)]),
                DependentAction::Delete { foreground: true },
            ),
            (
                owners(&[("a", Present), ("b", Absent)]),
                DependentAction::RemoveReferences(vec!["b".into()]),
            ),
            (
                owners(&[("a", Absent), ("b", DeletingForeground)]),
                DependentAction::Delete { foreground: true },
            ),
        ];
        for (input, want) in cases {
            assert_eq!(dependent_action(&input), want, "{input:?}");
        }
    }

    #[test]
    fn foreground_owner_waits_for_blocking_dependents_and_orphan_unlinks_first() {
        let fg = vec![FOREGROUND.to_owned()];
        let orphan = vec![ORPHAN.to_owned()];
        let blocking = Dependent {
            blocks: true,
            deleting: false,
        };
        let going = Dependent {
            blocks: true,
            deleting: true,
        };
        let loose = Dependent {
            blocks: false,
            deleting: false,
        };
        assert_eq!(
            owner_action(&fg, false, &[blocking]),
            OwnerAction::default()
        );
        assert_eq!(
            owner_action(&fg, true, &[blocking, going, loose]),
            OwnerAction {
                delete: vec![0, 2],
                unlink: vec![],
                release: None
            }
        );
        assert_eq!(
            owner_action(&fg, true, &[loose]),
            OwnerAction {
                delete: vec![0],
                unlink: vec![],
                release: Some(FOREGROUND)
            }
        );
        assert_eq!(owner_action(&fg, true, &[]).release, Some(FOREGROUND));
        assert_eq!(
            owner_action(&orphan, true, &[blocking, loose]),
            OwnerAction {
                delete: vec![],
                unlink: vec![0, 1],
                release: None
            }
        );
        assert_eq!(owner_action(&orphan, true, &[]).release, Some(ORPHAN));
        assert_eq!(owner_action(&[], true, &[blocking]), OwnerAction::default());
    }
}
