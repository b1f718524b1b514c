//! The PVC and PV protection controllers (upstream's `pkg/controller/volume/
//! pvcprotection` and `pvprotection`): a deleted claim keeps its
//! `kubernetes.io/pvc-protection` finalizer while a scheduled pod uses it, a
//! deleted volume its `kubernetes.io/pv-protection` finalizer while it is
//! Bound; objects made before the admission plugin get the finalizer here.
//! The decisions are pure functions; the loops only patch finalizers.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use berth_observability::workqueue;
use futures::{stream, Future, StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::runtime::controller::{Action, Config};
use kube::runtime::reflector::ObjectRef;
use kube::ResourceExt;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::cache::Cache;
use super::informers::Informers;
use super::persistent_volume::flat;
use super::ControllerError;
use crate::apiserver::admission::{PVC_PROTECTION, PV_PROTECTION};

/// What a protection controller does with one object's finalizer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Nothing to do.
    Nothing,
    /// A live object without the finalizer gets it.
    AddFinalizer,
    /// A deleted object no longer in use loses it, so the deletion completes.
    RemoveFinalizer,
    /// A deleted object still in use keeps it.
    KeepInUse,
}

fn has(meta: &ObjectMeta, finalizer: &str) -> bool {
    meta.finalizers
        .as_ref()
        .is_some_and(|f| f.iter().any(|x| x == finalizer))
}

/// Upstream's `IsDeletionCandidate` / `NeedToAddFinalizer` around `in_use`.
fn step(meta: &ObjectMeta, finalizer: &str, in_use: impl FnOnce() -> bool) -> Step {
    match (meta.deletion_timestamp.is_some(), has(meta, finalizer)) {
        (true, true) if in_use() => Step::KeepInUse,
        (true, true) => Step::RemoveFinalizer,
        (false, false) => Step::AddFinalizer,
        _ => Step::Nothing,
    }
}

/// Whether the kubelet is done with `pod` or it was force-deleted (a
/// deletion timestamp with a zero grace period): it holds no volume.
fn pod_is_shut_down(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some()
        && pod.metadata.deletion_grace_period_seconds == Some(0)
}

/// Upstream's `podUsesPVC`: a scheduled pod uses a claim it names, or the
/// claim of one of its generic ephemeral volumes (`POD-VOLUME`, owned by the
/// pod) while the pod is not shut down. An unscheduled pod uses nothing: the
/// kubelet never starts a pod whose claim is being deleted.
pub fn pod_uses_claim(pod: &Pod, claim: &PersistentVolumeClaim) -> bool {
    let scheduled = pod
        .spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .is_some_and(|n| !n.is_empty());
    if !scheduled || pod.metadata.namespace != claim.metadata.namespace {
        return false;
    }
    let claim_name = claim.metadata.name.as_deref().unwrap_or("");
    let owned_by_pod = || {
        claim.metadata.owner_references.as_ref().is_some_and(|o| {
            o.iter()
                .any(|r| r.controller == Some(true) && Some(&r.uid) == pod.metadata.uid.as_ref())
        })
    };
    let volumes = pod.spec.as_ref().and_then(|s| s.volumes.as_ref());
    volumes.into_iter().flatten().any(|v| {
        let named = v
            .persistent_volume_claim
            .as_ref()
            .is_some_and(|c| c.claim_name == claim_name);
        let ephemeral = v.ephemeral.is_some()
            && !pod_is_shut_down(pod)
            && format!("{}-{}", pod.name_any(), v.name) == claim_name
            && owned_by_pod();
        named || ephemeral
    })
}

/// The names of the claims `pod` may hold: named ones and its ephemeral ones.
pub fn claims_of(pod: &Pod) -> Vec<String> {
    let volumes = pod.spec.as_ref().and_then(|s| s.volumes.as_ref());
    volumes
        .into_iter()
        .flatten()
        .filter_map(|v| match (&v.persistent_volume_claim, &v.ephemeral) {
            (Some(c), _) => Some(c.claim_name.clone()),
            (None, Some(_)) => Some(format!("{}-{}", pod.name_any(), v.name)),
            _ => None,
        })
        .collect()
}

/// The pvc-protection decision for `claim` given the pods that may use it.
pub fn claim_step<'p>(
    claim: &PersistentVolumeClaim,
    pods: impl IntoIterator<Item = &'p Pod>,
) -> Step {
    step(&claim.metadata, PVC_PROTECTION, || {
        pods.into_iter().any(|p| pod_uses_claim(p, claim))
    })
}

/// The pv-protection decision: a volume is in use while its phase is Bound.
pub fn volume_step(volume: &PersistentVolume) -> Step {
    step(&volume.metadata, PV_PROTECTION, || {
        volume.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound")
    })
}

/// `finalizers` with `finalizer` added or removed.
fn finalizers_after(meta: &ObjectMeta, finalizer: &str, add: bool) -> Vec<String> {
    let mut list: Vec<String> = meta
        .finalizers
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter(|f| f != finalizer)
        .collect();
    if add {
        list.push(finalizer.to_owned());
    }
    list
}

#[derive(Debug, thiserror::Error)]
enum ReconcileError {
    #[error("{0}")]
    Api(#[from] kube::Error),
    #[error("the caches did not fill")]
    CacheNotReady,
}

/// Patches the object's finalizers, guarded by its resourceVersion.
async fn patch_finalizers<K>(
    api: &Api<K>,
    object: &K,
    finalizer: &str,
    add: bool,
) -> Result<Action, ReconcileError>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let meta = object.meta();
    let patch = json!({"metadata": {
        "resourceVersion": meta.resource_version,
        "finalizers": finalizers_after(meta, finalizer, add),
    }});
    let name = meta.name.clone().unwrap_or_default();
    match api
        .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => {
            tracing::debug!(object = %name, finalizer, add, "protection finalizer");
            Ok(Action::await_change())
        }
        // Changed or gone meanwhile: the watch brings the new state.
        Err(kube::Error::Api(s)) if s.code == 409 || s.code == 404 => {
            Ok(Action::requeue(Duration::from_millis(200)))
        }
        Err(e) => Err(e.into()),
    }
}

struct Context {
    client: kube::Client,
    claims: Cache<PersistentVolumeClaim>,
    pods: Cache<Pod>,
    volumes: Cache<PersistentVolume>,
}

impl Context {
    /// Waits (bounded) until every cache has completed its first list.
    async fn ready(&self) -> Result<(), ReconcileError> {
        let all = async {
            self.claims.ready().await?;
            self.pods.ready().await?;
            self.volumes.ready().await
        };
        match tokio::time::timeout(Duration::from_secs(30), all).await {
            Ok(Ok(())) => Ok(()),
            _ => Err(ReconcileError::CacheNotReady),
        }
    }
}

/// How often a deleted claim still in use is looked at again without an event.
const IN_USE_RECHECK: Duration = Duration::from_secs(5);

async fn reconcile_claim(
    claim: Arc<PersistentVolumeClaim>,
    ctx: Arc<Context>,
) -> Result<Action, ReconcileError> {
    ctx.ready().await?;
    let namespace = claim.namespace().unwrap_or_default();
    let api: Api<PersistentVolumeClaim> = Api::namespaced(ctx.client.clone(), &namespace);
    let cached = ctx.pods.state();
    match claim_step(&claim, cached.iter().map(|p| &**p)) {
        Step::Nothing => Ok(Action::await_change()),
        Step::KeepInUse => {
            tracing::debug!(claim = %claim.name_any(), "keeping a claim a pod uses");
            Ok(Action::requeue(IN_USE_RECHECK))
        }
        Step::AddFinalizer => patch_finalizers(&api, &claim, PVC_PROTECTION, true).await,
        Step::RemoveFinalizer => {
            // The cache may lag a new pod: confirm with a live list, as upstream does.
            let live = Api::<Pod>::namespaced(ctx.client.clone(), &namespace)
                .list(&ListParams::default())
                .await?;
            if live.items.iter().any(|p| pod_uses_claim(p, &claim)) {
                return Ok(Action::requeue(IN_USE_RECHECK));
            }
            tracing::info!(claim = %format!("{namespace}/{}", claim.name_any()), "claim unused; removing its protection");
            patch_finalizers(&api, &claim, PVC_PROTECTION, false).await
        }
    }
}

async fn reconcile_volume(
    volume: Arc<PersistentVolume>,
    ctx: Arc<Context>,
) -> Result<Action, ReconcileError> {
    ctx.ready().await?;
    let api: Api<PersistentVolume> = Api::all(ctx.client.clone());
    match volume_step(&volume) {
        Step::Nothing | Step::KeepInUse => Ok(Action::await_change()),
        Step::AddFinalizer => patch_finalizers(&api, &volume, PV_PROTECTION, true).await,
        Step::RemoveFinalizer => {
            tracing::info!(volume = %volume.name_any(), "volume not bound; removing its protection");
            patch_finalizers(&api, &volume, PV_PROTECTION, false).await
        }
    }
}

fn error_policy<K: kube::Resource>(
    object: Arc<K>,
    error: &ReconcileError,
    _ctx: Arc<Context>,
) -> Action {
    tracing::warn!(object = ?object.meta().name, %error, "volume protection failed");
    Action::requeue(Duration::from_secs(2))
}

type ReconcileFuture = Pin<Box<dyn Future<Output = Result<Action, ReconcileError>> + Send>>;

/// The claims a pod event may free: upstream enqueues only pods that can
/// help remove a finalizer (deleted, terminated or unscheduled).
fn freed_claims(pod: &Pod) -> Vec<ObjectRef<PersistentVolumeClaim>> {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    let terminated = matches!(phase, Some("Succeeded" | "Failed"));
    let scheduled = pod
        .spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .is_some_and(|n| !n.is_empty());
    if pod.metadata.deletion_timestamp.is_none() && !terminated && scheduled {
        return Vec::new();
    }
    let namespace = pod.namespace().unwrap_or_default();
    claims_of(pod)
        .iter()
        .map(|name| ObjectRef::new(name).within(&namespace))
        .collect()
}

/// Runs the PVC and PV protection controllers until `cancel` fires.
pub async fn run(
    client: kube::Client,
    informers: Informers,
    cancel: CancellationToken,
) -> Result<(), ControllerError> {
    let (claims, claim_events) = informers.watch::<PersistentVolumeClaim>();
    let (pods, pod_events) = informers.watch::<Pod>();
    let (volumes, volume_events) = informers.watch::<PersistentVolume>();
    let context = Arc::new(Context {
        client,
        claims: claims.clone(),
        pods,
        volumes: volumes.clone(),
    });
    let claim_queue = flat(stream::select_all([
        claim_events
            .map_ok(|c| vec![ObjectRef::from_obj(&*c)])
            .boxed(),
        pod_events.map_ok(|p| freed_claims(&p)).boxed(),
    ]));
    let claim_loop = workqueue::named("pvcprotection")
        .applier(
            |claim, ctx| -> ReconcileFuture { Box::pin(reconcile_claim(claim, ctx)) },
            error_policy,
            context.clone(),
            claims.store(),
            claim_queue,
            Config::default(),
        )
        .take_until(cancel.cancelled())
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "pvc protection");
            }
        });
    let volume_loop = workqueue::named("pvprotection")
        .applier(
            |volume, ctx| -> ReconcileFuture { Box::pin(reconcile_volume(volume, ctx)) },
            error_policy,
            context,
            volumes.store(),
            volume_events.map_ok(|v| ObjectRef::from_obj(&*v)),
            Config::default(),
        )
        .take_until(cancel.cancelled())
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "pv protection");
            }
        });
    futures::future::join(claim_loop, volume_loop).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn claim(meta: Value) -> PersistentVolumeClaim {
        let mut meta = meta;
        meta["name"] = json!("data");
        meta["namespace"] = json!("ns");
        serde_json::from_value(json!({"metadata": meta, "spec": {}})).unwrap()
    }

    fn pod(name: &str, node: &str, volumes: Value, meta: Value) -> Pod {
        let mut meta = meta;
        meta["name"] = json!(name);
        meta["namespace"] = json!("ns");
        meta["uid"] = json!(format!("uid-{name}"));
        serde_json::from_value(json!({"metadata": meta,
            "spec": {"nodeName": node, "containers": [], "volumes": volumes}}))
        .unwrap()
    }

    const DELETED: &str = "2026-01-01T00:00:00Z";

    #[test]
    fn a_deleted_claim_is_kept_while_a_scheduled_pod_uses_it() {
        let uses = json!([{"name": "v", "persistentVolumeClaim": {"claimName": "data"}}]);
        let ephemeral =
            json!([{"name": "scratch", "ephemeral": {"volumeClaimTemplate": {"spec": {}}}}]);
        let protected = json!({"finalizers": [PVC_PROTECTION]});
        let deleting = json!({"finalizers": [PVC_PROTECTION], "deletionTimestamp": DELETED});
        let owned = json!({"finalizers": [PVC_PROTECTION], "deletionTimestamp": DELETED,
            "ownerReferences": [{"apiVersion": "v1", "kind": "Pod", "name": "eph",
                "uid": "uid-eph", "controller": true}]});
        let shut_down = json!({"deletionTimestamp": DELETED, "deletionGracePeriodSeconds": 0});
        // (claim metadata, claim name, pods, step)
        let cases = [
            (json!({}), "data", vec![], Step::AddFinalizer),
            (
                protected.clone(),
                "data",
                vec![pod("a", "n1", uses.clone(), json!({}))],
                Step::Nothing,
            ),
            (deleting.clone(), "data", vec![], Step::RemoveFinalizer),
            (
                deleting.clone(),
                "data",
                vec![pod("a", "n1", uses.clone(), json!({}))],
                Step::KeepInUse,
            ),
            // Unscheduled pods use nothing; other claims do not count.
            (
                deleting.clone(),
                "data",
                vec![pod("a", "", uses.clone(), json!({}))],
                Step::RemoveFinalizer,
            ),
            (
                deleting.clone(),
                "data",
                vec![pod(
                    "a",
                    "n1",
                    json!([{"name": "v", "persistentVolumeClaim": {"claimName": "other"}}]),
                    json!({}),
                )],
                Step::RemoveFinalizer,
            ),
            // A deleted (not yet gone) pod still uses a named claim.
            (
                deleting.clone(),
                "data",
                vec![pod("a", "n1", uses.clone(), shut_down.clone())],
                Step::KeepInUse,
            ),
            // A deleted claim without our finalizer is not ours to hold.
            (
                json!({"deletionTimestamp": DELETED, "finalizers": ["x"]}),
                "data",
                vec![],
                Step::Nothing,
            ),
            // Ephemeral claims: in use only by their own pod, until it is shut down.
            (
                owned.clone(),
                "eph-scratch",
                vec![pod("eph", "n1", ephemeral.clone(), json!({}))],
                Step::KeepInUse,
            ),
            (
                owned.clone(),
                "eph-scratch",
                vec![pod("eph", "n1", ephemeral.clone(), shut_down)],
                Step::RemoveFinalizer,
            ),
            (
                deleting,
                "eph-scratch",
                vec![pod("eph", "n1", ephemeral, json!({}))],
                Step::RemoveFinalizer,
            ),
        ];
        for (meta, name, pods, want) in cases {
            let mut c = claim(meta.clone());
            c.metadata.name = Some(name.into());
            assert_eq!(claim_step(&c, &pods), want, "{meta} {name}");
        }
    }

    #[test]
    fn a_deleted_volume_is_kept_while_bound() {
        let volume = |meta: Value, phase: &str| -> PersistentVolume {
            let mut meta = meta;
            meta["name"] = json!("pv");
            serde_json::from_value(
                json!({"metadata": meta, "spec": {}, "status": {"phase": phase}}),
            )
            .unwrap()
        };
        let deleting = json!({"finalizers": [PV_PROTECTION], "deletionTimestamp": DELETED});
        let cases = [
            (volume(json!({}), "Available"), Step::AddFinalizer),
            (
                volume(json!({"finalizers": [PV_PROTECTION]}), "Bound"),
                Step::Nothing,
            ),
            (volume(deleting.clone(), "Bound"), Step::KeepInUse),
            (volume(deleting.clone(), "Released"), Step::RemoveFinalizer),
            (volume(deleting, "Available"), Step::RemoveFinalizer),
        ];
        for (volume, want) in cases {
            assert_eq!(volume_step(&volume), want, "{:?}", volume.metadata);
        }
    }

    #[test]
    fn pod_events_wake_only_the_claims_they_may_free() {
        let volumes = json!([{"name": "v", "persistentVolumeClaim": {"claimName": "data"}},
            {"name": "tmp", "ephemeral": {"volumeClaimTemplate": {"spec": {}}}}, {"name": "e", "emptyDir": {}}]);
        let running = pod("p", "n1", volumes.clone(), json!({}));
        let deleted = pod(
            "p",
            "n1",
            volumes.clone(),
            json!({"deletionTimestamp": DELETED}),
        );
        let pending = pod("p", "", volumes, json!({}));
        let mut done = running.clone();
        done.status = Some(serde_json::from_value(json!({"phase": "Succeeded"})).unwrap());
        assert!(freed_claims(&running).is_empty());
        for pod in [deleted, pending, done] {
            let names: Vec<String> = freed_claims(&pod).into_iter().map(|r| r.name).collect();
            assert_eq!(names, ["data", "p-tmp"]);
        }
    }

    #[test]
    fn finalizer_lists_keep_the_others() {
        let meta: ObjectMeta =
            serde_json::from_value(json!({"finalizers": ["a", PVC_PROTECTION, "b"]})).unwrap();
        assert_eq!(finalizers_after(&meta, PVC_PROTECTION, false), ["a", "b"]);
        assert_eq!(
            finalizers_after(&ObjectMeta::default(), PVC_PROTECTION, true),
            [PVC_PROTECTION]
        );
    }
}
