//! The PersistentVolume controller (upstream's `pkg/controller/volume/
//! persistentvolume`) with berth's built-in local-path provisioner: binds
//! Pending claims to Available volumes ([`matching`]), keeps both sides'
//! phases, annotations and status, releases volumes whose claim is gone and
//! applies their reclaim policy ([`sync`]), and provisions `local-path`
//! volumes for claims the scheduler placed on a node ([`local_path`]), and
//! gives class-less claims the default class once one exists
//! ([`default_class`]). It never deletes a volume: a local-path volume is
//! removed by its node's agent.

pub mod default_class;
pub mod local_path;
pub mod matching;
pub mod sync;

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use berth_observability::workqueue;
use futures::{stream, Future, StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Node, PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Config};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::ResourceExt;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use self::matching::{claim_class, is_volume_bound_to_claim};
use self::sync::{claim_step, volume_step, ClaimStep, Note, VolumeStep};
use self::sync::{BIND_COMPLETED, BOUND_BY_CONTROLLER};
use super::cache::Cache;
use super::informers::Informers;
use super::ControllerError;
use berth_observability::events::{EventType, Recorder};

/// The claim annotations naming the provisioner expected to make its volume.
pub const STORAGE_PROVISIONER: [&str; 2] = [
    "volume.kubernetes.io/storage-provisioner",
    "volume.beta.kubernetes.io/storage-provisioner",
];
/// How often a claim or volume is looked at again without a change (upstream resyncs every 15 s).
const RESYNC: Duration = Duration::from_secs(15);

struct Context {
    client: kube::Client,
    claims: Cache<PersistentVolumeClaim>,
    volumes: Cache<PersistentVolume>,
    classes: Cache<StorageClass>,
    recorder: Recorder,
}

impl Context {
    /// Waits (bounded) until every cache has completed its first list.
    async fn ready(&self) -> Result<(), ReconcileError> {
        let all = async {
            self.claims.ready().await?;
            self.volumes.ready().await?;
            self.classes.ready().await
        };
        match tokio::time::timeout(Duration::from_secs(30), all).await {
            Ok(Ok(())) => Ok(()),
            _ => Err(ReconcileError::CacheNotReady),
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum ReconcileError {
    #[error("{0}")]
    Api(#[from] kube::Error),
    #[error("the caches did not fill")]
    CacheNotReady,
}

fn key_of<K: kube::Resource>(object: &K) -> String {
    match object.meta().namespace.as_deref() {
        Some(ns) => format!("{ns}/{}", object.meta().name.as_deref().unwrap_or("")),
        None => object.meta().name.clone().unwrap_or_default(),
    }
}

async fn note<K: kube::Resource<DynamicType = ()>>(ctx: &Context, object: &K, note: &Note) {
    let kind = if note.warning {
        EventType::Warning
    } else {
        EventType::Normal
    };
    ctx.recorder
        .record(object, kind, note.reason, &note.message)
        .await;
}

fn now() -> String {
    jiff::Timestamp::now()
        .round(jiff::Unit::Second)
        .unwrap_or_else(|_| jiff::Timestamp::now())
        .to_string()
}

fn claims_api(client: &kube::Client, claim: &PersistentVolumeClaim) -> Api<PersistentVolumeClaim> {
    Api::namespaced(client.clone(), &claim.namespace().unwrap_or_default())
}

/// Sets a claim's phase through `persistentvolumeclaims/status`, unless it has it.
async fn claim_phase(
    ctx: &Context,
    claim: &PersistentVolumeClaim,
    phase: &str,
) -> Result<(), kube::Error> {
    if claim.status.as_ref().and_then(|s| s.phase.as_deref()) == Some(phase) {
        return Ok(());
    }
    let patch = json!({"status": {"phase": phase}});
    claims_api(&ctx.client, claim)
        .patch_status(
            &claim.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await?;
    Ok(())
}

/// Sets a volume's phase (and message) through `persistentvolumes/status`, unless it has it.
async fn volume_phase(
    ctx: &Context,
    volume: &PersistentVolume,
    phase: &str,
    message: Option<&str>,
) -> Result<PersistentVolume, kube::Error> {
    if volume.status.as_ref().and_then(|s| s.phase.as_deref()) == Some(phase) {
        return Ok(volume.clone());
    }
    let patch =
        json!({"status": {"phase": phase, "message": message, "lastPhaseTransitionTime": now()}});
    Api::<PersistentVolume>::all(ctx.client.clone())
        .patch_status(
            &volume.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
}

/// Upstream's `bind`: the volume points at the claim, the volume is Bound,
/// the claim points at the volume, the claim is Bound with the volume's
/// capacity and access modes. Each write happens only when needed, and the
/// object writes carry the cached resourceVersion, so two claims racing for
/// one volume cannot both win.
async fn bind(
    ctx: &Context,
    claim: &PersistentVolumeClaim,
    volume_name: &str,
) -> Result<(), kube::Error> {
    let Some(cached) = ctx.volumes.get(&ObjectRef::new(volume_name)) else {
        return Ok(());
    };
    let volumes: Api<PersistentVolume> = Api::all(ctx.client.clone());
    let mut volume = (*cached).clone();
    let reference = volume.spec.as_ref().and_then(|s| s.claim_ref.as_ref());
    let complete = reference.is_some_and(|r| {
        r.uid.is_some() && r.uid == claim.metadata.uid && is_volume_bound_to_claim(&volume, claim)
    });
    if !complete {
        let mut patch = json!({
            "metadata": {"resourceVersion": volume.metadata.resource_version},
            "spec": {"claimRef": local_path::claim_reference(claim)},
        });
        if !is_volume_bound_to_claim(&volume, claim) {
            patch["metadata"]["annotations"] = json!({BOUND_BY_CONTROLLER: "yes"});
        }
        volume = volumes
            .patch(volume_name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
    }
    let volume = volume_phase(ctx, &volume, "Bound", None).await?;
    let claims = claims_api(&ctx.client, claim);
    let spec = claim.spec.as_ref();
    let current = spec.and_then(|s| s.volume_name.as_deref()).unwrap_or("");
    let annotations = claim.annotations();
    if current != volume_name || !annotations.contains_key(BIND_COMPLETED) {
        let mut added = json!({BIND_COMPLETED: "yes"});
        if current.is_empty() {
            added[BOUND_BY_CONTROLLER] = json!("yes");
        }
        let patch = json!({
            "metadata": {"resourceVersion": claim.metadata.resource_version, "annotations": added},
            "spec": {"volumeName": volume_name},
        });
        claims
            .patch(
                &claim.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await?;
    }
    let volume_spec = volume.spec.clone().unwrap_or_default();
    let status = claim.status.clone().unwrap_or_default();
    if status.phase.as_deref() != Some("Bound")
        || status.capacity != volume_spec.capacity
        || status.access_modes != volume_spec.access_modes
    {
        let patch = json!({"status": {
            "phase": "Bound",
            "accessModes": volume_spec.access_modes,
            "capacity": volume_spec.capacity,
        }});
        claims
            .patch_status(
                &claim.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await?;
        tracing::info!(claim = %key_of(claim), volume = volume_name, "bound");
    }
    Ok(())
}

/// Upstream's `provisionClaim` for a provisioner outside the controller:
/// the claim is marked for it; when it is berth's local-path provisioner,
/// the volume is made here at once (for a claim placed on a node). True
/// when the claim's volume exists now, so binding can follow soon.
async fn provision(
    ctx: &Context,
    claim: &PersistentVolumeClaim,
    class_name: &str,
    provisioner: &str,
) -> Result<bool, kube::Error> {
    let annotations = claim.annotations();
    if STORAGE_PROVISIONER
        .iter()
        .any(|a| annotations.get(*a).map(String::as_str) != Some(provisioner))
    {
        let added: serde_json::Map<String, Value> = STORAGE_PROVISIONER
            .iter()
            .map(|a| ((*a).to_owned(), json!(provisioner)))
            .collect();
        let patch = json!({"metadata": {"annotations": added}});
        claims_api(&ctx.client, claim)
            .patch(
                &claim.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await?;
        let message = format!("Waiting for a volume to be created either by the external provisioner '{provisioner}' or manually by the system administrator. If volume creation is delayed, please verify that the provisioner is running and correctly registered.");
        ctx.recorder
            .record(claim, EventType::Normal, "ExternalProvisioning", &message)
            .await;
    }
    claim_phase(ctx, claim, "Pending").await?;
    if provisioner != local_path::PROVISIONER {
        return Ok(false);
    }
    let Some(node_name) = annotations.get(local_path::SELECTED_NODE) else {
        let message = "configuration error, no node was specified";
        ctx.recorder
            .record(claim, EventType::Warning, "ProvisioningFailed", message)
            .await;
        return Ok(false);
    };
    let name = local_path::volume_name(claim);
    if ctx.volumes.get(&ObjectRef::new(&name)).is_some() {
        return Ok(true);
    }
    let Some(class) = ctx.classes.get(&ObjectRef::new(class_name)) else {
        return Ok(false);
    };
    let node = Api::<Node>::all(ctx.client.clone())
        .get_opt(node_name)
        .await?;
    if node.is_none() {
        let message = format!("failed to provision volume with StorageClass \"{class_name}\": nodes \"{node_name}\" not found");
        ctx.recorder
            .record(claim, EventType::Warning, "ProvisioningFailed", &message)
            .await;
        return Ok(false);
    }
    let message = format!(
        "External provisioner is provisioning volume for claim \"{}\"",
        key_of(claim)
    );
    ctx.recorder
        .record(claim, EventType::Normal, "Provisioning", &message)
        .await;
    let volume = local_path::volume_for(claim, &class, node_name, node.as_ref());
    match Api::<PersistentVolume>::all(ctx.client.clone())
        .create(&PostParams::default(), &volume)
        .await
    {
        Ok(_) => {}
        // Made by an earlier sync the cache does not show yet.
        Err(kube::Error::Api(s)) if s.code == 409 => return Ok(true),
        Err(e) => return Err(e),
    }
    tracing::info!(claim = %key_of(claim), volume = %name, node = %node_name, "provisioned a local-path volume");
    let message = format!("Successfully provisioned volume {name}");
    ctx.recorder
        .record(claim, EventType::Normal, "ProvisioningSucceeded", &message)
        .await;
    Ok(true)
}

async fn reconcile_claim(
    claim: Arc<PersistentVolumeClaim>,
    ctx: Arc<Context>,
) -> Result<Action, ReconcileError> {
    ctx.ready().await?;
    let _span = tracing::debug_span!("sync claim", claim = %key_of(&*claim)).entered();
    let volumes = ctx.volumes.state();
    let class_name = claim_class(&claim).to_owned();
    let class = (!class_name.is_empty())
        .then(|| ctx.classes.get(&ObjectRef::new(&class_name)))
        .flatten();
    let step = claim_step(&claim, volumes.iter().map(|v| &**v), class.as_deref());
    drop(_span);
    let classes: Vec<StorageClass> = ctx.classes.state().iter().map(|c| (**c).clone()).collect();
    if let Some(default) = default_class::class_to_assign(&claim, &step, &classes) {
        return assign_class(&ctx, &claim, &default).await;
    }
    match step {
        ClaimStep::Nothing => {}
        ClaimStep::Bind(volume) => {
            match bind(&ctx, &claim, &volume).await {
                Ok(()) => {}
                // Someone else changed the volume or the claim first: look again.
                Err(kube::Error::Api(s)) if s.code == 409 => {
                    return Ok(Action::requeue(Duration::from_millis(200)))
                }
                Err(e) => return Err(e.into()),
            }
            return Ok(Action::await_change());
        }
        ClaimStep::Pending(event) => {
            claim_phase(&ctx, &claim, "Pending").await?;
            if let Some(event) = event {
                note(&ctx, &*claim, &event).await;
            }
        }
        ClaimStep::Lost(event) => {
            // The cache may lag a volume just created: confirm before giving up on it.
            let name = claim
                .spec
                .as_ref()
                .and_then(|s| s.volume_name.clone())
                .unwrap_or_default();
            let fresh = if name.is_empty() {
                None
            } else {
                Api::<PersistentVolume>::all(ctx.client.clone())
                    .get_opt(&name)
                    .await?
            };
            let lost = match &fresh {
                None => true,
                Some(v) => {
                    v.spec.as_ref().and_then(|s| s.claim_ref.as_ref()).is_some()
                        && !is_volume_bound_to_claim(v, &claim)
                }
            };
            if lost {
                claim_phase(&ctx, &claim, "Lost").await?;
                note(&ctx, &*claim, &event).await;
            }
        }
        ClaimStep::Provision { class, provisioner } => {
            if provision(&ctx, &claim, &class, &provisioner).await? {
                // The volume's event may reach this loop before its cache.
                return Ok(Action::requeue(Duration::from_millis(300)));
            }
        }
    }
    Ok(Action::requeue(RESYNC))
}

/// Upstream's `assignDefaultStorageClass`: the claim gets the default
/// class, guarded by its resourceVersion; the update wakes this loop again.
async fn assign_class(
    ctx: &Context,
    claim: &PersistentVolumeClaim,
    class: &str,
) -> Result<Action, ReconcileError> {
    let patch = json!({
        "metadata": {"resourceVersion": claim.metadata.resource_version},
        "spec": {"storageClassName": class},
    });
    match claims_api(&ctx.client, claim)
        .patch(
            &claim.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
    {
        Ok(_) => {
            tracing::info!(claim = %key_of(claim), class, "assigned the default storage class");
            Ok(Action::requeue(Duration::from_millis(200)))
        }
        Err(kube::Error::Api(s)) if s.code == 409 => {
            Ok(Action::requeue(Duration::from_millis(200)))
        }
        Err(e) => Err(e.into()),
    }
}

/// The class-less claims in `claims`: a new default class may be theirs.
fn class_less(claims: &Store<PersistentVolumeClaim>) -> Vec<ObjectRef<PersistentVolumeClaim>> {
    claims
        .state()
        .iter()
        .filter(|c| default_class::has_no_class(c))
        .map(|c| ObjectRef::from_obj(&**c))
        .collect()
}

async fn reconcile_volume(
    volume: Arc<PersistentVolume>,
    ctx: Arc<Context>,
) -> Result<Action, ReconcileError> {
    ctx.ready().await?;
    let reference = volume.spec.as_ref().and_then(|s| s.claim_ref.clone());
    let claim = reference.as_ref().and_then(|r| {
        let name = r.name.as_deref()?;
        ctx.claims
            .get(&ObjectRef::new(name).within(r.namespace.as_deref().unwrap_or("")))
    });
    let step = volume_step(&volume, claim.as_deref());
    tracing::debug!(volume = %volume.name_any(), ?step, "sync volume");
    match step {
        VolumeStep::Nothing | VolumeStep::SyncClaim => {}
        VolumeStep::Phase(phase) => {
            volume_phase(&ctx, &volume, phase, None).await?;
        }
        VolumeStep::Release => {
            // Upstream reads the claim afresh before releasing: the cache may lag.
            let reference = reference.unwrap_or_default();
            let claims: Api<PersistentVolumeClaim> = Api::namespaced(
                ctx.client.clone(),
                reference.namespace.as_deref().unwrap_or(""),
            );
            let fresh = claims
                .get_opt(reference.name.as_deref().unwrap_or(""))
                .await?;
            if fresh.is_some_and(|c| c.metadata.uid == reference.uid) {
                return Ok(Action::requeue(Duration::from_secs(1)));
            }
            volume_phase(&ctx, &volume, "Released", None).await?;
            tracing::info!(volume = %volume.name_any(), "claim gone; volume released");
            return Ok(Action::requeue(Duration::from_millis(100)));
        }
        VolumeStep::Fail(event) => {
            volume_phase(&ctx, &volume, "Failed", Some(&event.message)).await?;
            note(&ctx, &*volume, &event).await;
        }
        VolumeStep::Unbind => {
            let patch = json!({
                "metadata": {"resourceVersion": volume.metadata.resource_version,
                             "annotations": {BOUND_BY_CONTROLLER: null}},
                "spec": {"claimRef": null},
            });
            let api: Api<PersistentVolume> = Api::all(ctx.client.clone());
            let unbound = api
                .patch(
                    &volume.name_any(),
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await?;
            volume_phase(&ctx, &unbound, "Available", None).await?;
        }
    }
    Ok(Action::requeue(RESYNC))
}

fn error_policy<K: kube::Resource>(
    object: Arc<K>,
    error: &ReconcileError,
    _ctx: Arc<Context>,
) -> Action {
    tracing::warn!(object = %key_of(&*object), %error, "persistent volume sync failed");
    Action::requeue(Duration::from_secs(2))
}

type ReconcileFuture = Pin<Box<dyn Future<Output = Result<Action, ReconcileError>> + Send>>;

/// The claim a volume's `claimRef` names.
fn claim_of(volume: &PersistentVolume) -> Vec<ObjectRef<PersistentVolumeClaim>> {
    let reference = volume.spec.as_ref().and_then(|s| s.claim_ref.as_ref());
    reference
        .and_then(|r| {
            Some(ObjectRef::new(r.name.as_deref()?).within(r.namespace.as_deref().unwrap_or("")))
        })
        .into_iter()
        .collect()
}

/// The volume a claim names.
fn volume_of(claim: &PersistentVolumeClaim) -> Vec<ObjectRef<PersistentVolume>> {
    claim
        .spec
        .as_ref()
        .and_then(|s| s.volume_name.as_deref())
        .filter(|n| !n.is_empty())
        .map(ObjectRef::new)
        .into_iter()
        .collect()
}

/// Flattens a stream of reference lists into a work queue of references.
pub(crate) fn flat<K, S>(
    refs: S,
) -> impl futures::Stream<Item = Result<ObjectRef<K>, watcher::Error>>
where
    K: kube::Resource<DynamicType = ()> + 'static,
    S: futures::Stream<Item = Result<Vec<ObjectRef<K>>, watcher::Error>>,
{
    refs.map_ok(|refs| stream::iter(refs.into_iter().map(Ok::<_, watcher::Error>)))
        .try_flatten()
}

/// Runs the PersistentVolume controller until `cancel` fires.
pub async fn run(
    client: kube::Client,
    informers: Informers,
    cancel: CancellationToken,
) -> Result<(), ControllerError> {
    let (claims, claim_events) = informers.watch::<PersistentVolumeClaim>();
    let (volumes, volume_events) = informers.watch::<PersistentVolume>();
    let (classes, class_events) = informers.watch::<StorageClass>();
    // Each loop also hears about the other kind, through a subscription of its own.
    let (_, volumes_for_claims) = informers.watch::<PersistentVolume>();
    let (_, claims_for_volumes) = informers.watch::<PersistentVolumeClaim>();
    let claims_for_classes = claims.clone();
    let context = Arc::new(Context {
        recorder: Recorder::new(client.clone(), "persistentvolume-controller"),
        client,
        claims: claims.clone(),
        volumes: volumes.clone(),
        classes,
    });
    let claim_queue = flat(stream::select_all([
        claim_events
            .map_ok(|c| vec![ObjectRef::from_obj(&*c)])
            .boxed(),
        volumes_for_claims.map_ok(|v| claim_of(&v)).boxed(),
        class_events
            .map_ok(move |_| class_less(&claims_for_classes))
            .boxed(),
    ]));
    let volume_queue = flat(stream::select_all([
        volume_events
            .map_ok(|v| vec![ObjectRef::from_obj(&*v)])
            .boxed(),
        claims_for_volumes.map_ok(|c| volume_of(&c)).boxed(),
    ]));
    let claim_loop = workqueue::named("claims")
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
                tracing::debug!(error = %e, "persistent volume claim sync");
            }
        });
    let volume_loop = workqueue::named("volumes")
        .applier(
            |volume, ctx| -> ReconcileFuture { Box::pin(reconcile_volume(volume, ctx)) },
            error_policy,
            context,
            volumes.store(),
            volume_queue,
            Config::default(),
        )
        .take_until(cancel.cancelled())
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "persistent volume sync");
            }
        });
    futures::future::join(claim_loop, volume_loop).await;
    Ok(())
}
