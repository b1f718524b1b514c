//! The ReplicaSet controller (upstream's `pkg/controller/replicaset`), which
//! also serves ReplicationControllers seen as ReplicaSets (see [`owner`]): keeps
//! `spec.replicas` active pods that match the selector and are controlled by
//! the ReplicaSet, adopting matching orphans and releasing pods that stop
//! matching, and reports counts through `replicasets/status`, with the
//! ReplicaFailure condition and Warning events while the API refuses its pods.
//! It is the only component that creates or deletes a ReplicaSet's pods, and
//! it never acts while earlier creations or deletions are still unobserved
//! (expectations).

pub mod expectations;
pub mod owner;
pub mod ranking;
pub mod status;

use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_observability::workqueue;
use futures::{stream, Future, StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Pod, ReplicationController};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::{Action, Config};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

use self::expectations::Expectations;
use self::owner::{as_replica_set, OwnerKind};
use self::status::{compute_status, status_patch, Managed};
use super::cache::Cache;
use super::informers::Informers;
use super::pod_control::{api_message, PodControl};
use super::workload::{controller_of, owners_to_wake_by, pod_is_active, selector_matches};
use super::ControllerError;
use berth_observability::events::Recorder;
use berth_observability::propagation;
use tracing::Instrument;

/// At most this many pods are created or deleted in one pass (upstream's burstReplicas).
const BURST_REPLICAS: usize = 500;

struct Context {
    client: kube::Client,
    owner: OwnerKind,
    pods: Cache<Pod>,
    expectations: Arc<Expectations>,
    recorder: Recorder,
}

#[derive(Debug, thiserror::Error)]
enum ReconcileError {
    #[error("{0}")]
    Api(#[from] kube::Error),
    #[error("pod cache closed")]
    CacheClosed,
    #[error("{reason}: {source}")]
    Manage {
        reason: &'static str,
        source: kube::Error,
    },
}

/// Pods of the ReplicaSet's namespace, split into those it controls (after
/// adoption and release) and nothing else.
async fn claim_pods(rs: &ReplicaSet, ctx: &Context) -> Result<Vec<Arc<Pod>>, ReconcileError> {
    let namespace = rs.namespace().unwrap_or_default();
    let uid = rs.uid().unwrap_or_default();
    let selector = rs
        .spec
        .as_ref()
        .map(|s| s.selector.clone())
        .unwrap_or_default();
    let deleting = rs.metadata.deletion_timestamp.is_some();
    let pods_api: Api<Pod> = Api::namespaced(ctx.client.clone(), &namespace);
    let mut owned = Vec::new();
    for pod in ctx
        .pods
        .state()
        .into_iter()
        .filter(|p| p.metadata.namespace.as_deref() == Some(namespace.as_str()))
    {
        let matches = selector_matches(&selector, pod.metadata.labels.as_ref());
        match controller_of(&pod.metadata) {
            Some(owner) if owner.uid == uid => {
                if matches {
                    owned.push(pod);
                } else if !deleting {
                    // Release: the pod no longer matches, drop our reference.
                    let refs: Vec<_> = pod
                        .owner_references()
                        .iter()
                        .filter(|r| r.uid != uid)
                        .cloned()
                        .collect();
                    patch_owner_references(&pods_api, &pod, refs).await?;
                }
            }
            Some(_) => {}
            None if matches && !deleting && pod.metadata.deletion_timestamp.is_none() => {
                // Adopt an orphan that matches.
                let mut refs = pod.owner_references().to_vec();
                refs.push(ctx.owner.reference(rs));
                if patch_owner_references(&pods_api, &pod, refs).await? {
                    owned.push(pod);
                }
            }
            None => {}
        }
    }
    Ok(owned)
}

/// Sets a pod's ownerReferences, guarded by its resourceVersion; false when
/// the pod changed or went away meanwhile (the next pass sees the new state).
async fn patch_owner_references(
    api: &Api<Pod>,
    pod: &Pod,
    refs: Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference>,
) -> Result<bool, ReconcileError> {
    let patch = super::workload::owner_references_patch(&refs, pod.resource_version());
    match api
        .patch(
            &pod.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
    {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// A new pod for `rs` from its template, controlled by `owner`.
fn pod_from_template(rs: &ReplicaSet, owner: &OwnerKind) -> Pod {
    let template = rs
        .spec
        .as_ref()
        .and_then(|s| s.template.clone())
        .unwrap_or_default();
    let template_meta = template.metadata.unwrap_or_default();
    Pod {
        metadata: ObjectMeta {
            generate_name: Some(format!("{}-", rs.name_any())),
            namespace: rs.namespace(),
            labels: template_meta.labels,
            annotations: template_meta.annotations,
            finalizers: template_meta.finalizers,
            owner_references: Some(vec![owner.reference(rs)]),
            ..Default::default()
        },
        spec: template.spec,
        status: None,
    }
}

/// Creates or deletes pods so that `owned` moves toward `spec.replicas`.
async fn manage_replicas(
    rs: &ReplicaSet,
    owned: &[&Pod],
    ctx: &Context,
) -> Result<(), ReconcileError> {
    let wanted = rs
        .spec
        .as_ref()
        .and_then(|s| s.replicas)
        .unwrap_or(1)
        .max(0) as usize;
    let namespace = rs.namespace().unwrap_or_default();
    let control = PodControl {
        api: Api::namespaced(ctx.client.clone(), &namespace),
        recorder: &ctx.recorder,
        owner: ctx.owner.object_reference(rs),
        expectations: &ctx.expectations,
    };
    if owned.len() < wanted {
        let missing = (wanted - owned.len()).min(BURST_REPLICAS);
        control
            .create(missing, |_| pod_from_template(rs, &ctx.owner))
            .await
            .map_err(|source| ReconcileError::Manage {
                reason: "FailedCreate",
                source,
            })?;
    } else if owned.len() > wanted {
        let excess = (owned.len() - wanted).min(BURST_REPLICAS);
        let victims = ranking::pods_to_delete(owned, excess);
        control
            .delete(&victims)
            .await
            .map_err(|source| ReconcileError::Manage {
                reason: "FailedDelete",
                source,
            })?;
    }
    Ok(())
}

async fn reconcile(rs: Arc<ReplicaSet>, ctx: Arc<Context>) -> Result<Action, ReconcileError> {
    let span = propagation::object_span(
        "replicaset-controller",
        "sync",
        &rs.name_any(),
        rs.metadata.annotations.as_ref(),
    );
    sync(rs, ctx).instrument(span).await
}

/// One reconcile pass of a ReplicaSet (or a ReplicationController).
async fn sync(rs: Arc<ReplicaSet>, ctx: Arc<Context>) -> Result<Action, ReconcileError> {
    ctx.pods
        .ready()
        .await
        .map_err(|_| ReconcileError::CacheClosed)?;
    let uid = rs.uid().unwrap_or_default();
    let owned_arcs = claim_pods(&rs, &ctx).await?;
    let active: Vec<&Pod> = owned_arcs
        .iter()
        .map(|p| p.as_ref())
        .filter(|p| pod_is_active(p))
        .collect();
    let now = Instant::now();
    let satisfied = ctx.expectations.satisfied(
        &uid,
        now,
        |name| {
            owned_arcs
                .iter()
                .any(|p| p.metadata.name.as_deref() == Some(name))
        },
        |pod_uid| {
            !ctx.pods.state().iter().any(|p| {
                p.metadata.uid.as_deref() == Some(pod_uid)
                    && p.metadata.deletion_timestamp.is_none()
            })
        },
    );
    let mut result = Ok(());
    let mut managed = Managed::Skipped;
    if satisfied && rs.metadata.deletion_timestamp.is_none() {
        result = manage_replicas(&rs, &active, &ctx).await;
        managed = match &result {
            Ok(()) => Managed::Succeeded,
            Err(ReconcileError::Manage { reason, source }) => Managed::Failed {
                reason,
                message: api_message(source),
            },
            // manage_replicas fails only with Manage; leave the condition be otherwise.
            Err(_) => Managed::Skipped,
        };
    }
    let status = compute_status(&rs, &active, &managed, jiff::Timestamp::now());
    if rs.status.as_ref() != Some(&status) {
        let api = ctx
            .owner
            .api(ctx.client.clone(), &rs.namespace().unwrap_or_default());
        let patch = status_patch(&status);
        match api
            .patch_status(
                &rs.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
    }
    result?;
    // Pods ready but not yet available become available without any event: come back then.
    let min_ready = rs
        .spec
        .as_ref()
        .and_then(|s| s.min_ready_seconds)
        .unwrap_or(0);
    if !satisfied {
        return Ok(Action::requeue(Duration::from_secs(5)));
    }
    if min_ready > 0 && status.ready_replicas != status.available_replicas {
        return Ok(Action::requeue(Duration::from_secs(min_ready as u64)));
    }
    Ok(Action::await_change())
}

fn error_policy<K: ResourceExt>(
    owner: Arc<K>,
    error: &ReconcileError,
    ctx: Arc<Context>,
) -> Action {
    tracing::warn!(kind = %ctx.owner.resource.kind, name = %owner.name_any(), %error, "replica reconcile failed");
    Action::requeue(Duration::from_secs(2))
}

/// The owners a pod event should wake: its controller, or for an orphan
/// every owner whose selector matches it (one of them may adopt it).
fn owners_for_pod<K>(
    pod: &Pod,
    owners: &Store<K>,
    expectations: &Expectations,
    kind: &str,
    view: fn(&K) -> ReplicaSet,
) -> Vec<ObjectRef<K>>
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    if let Some(owner) = controller_of(&pod.metadata).filter(|o| o.kind == kind) {
        expectations.observe_creation(&owner.uid, &pod.name_any());
    }
    owners_to_wake_by(&pod.metadata, owners, |owner, labels| {
        view(owner)
            .spec
            .as_ref()
            .is_some_and(|s| selector_matches(&s.selector, labels))
    })
}

type ReconcileFuture = Pin<Box<dyn Future<Output = Result<Action, ReconcileError>> + Send>>;

/// Runs the ReplicaSet controller until `cancel` fires.
pub async fn run(
    client: kube::Client,
    informers: Informers,
    cancel: CancellationToken,
) -> Result<(), ControllerError> {
    run_kind::<ReplicaSet>(
        client,
        informers,
        cancel,
        OwnerKind::replica_set(),
        ReplicaSet::clone,
    )
    .await
}

/// Runs the ReplicationController controller (the same reconcile, on
/// ReplicationControllers seen as ReplicaSets) until `cancel` fires.
pub async fn run_replication_controllers(
    client: kube::Client,
    informers: Informers,
    cancel: CancellationToken,
) -> Result<(), ControllerError> {
    run_kind::<ReplicationController>(
        client,
        informers,
        cancel,
        OwnerKind::replication_controller(),
        as_replica_set,
    )
    .await
}

/// The replica controller for owners of kind `K`, each reconciled as the
/// ReplicaSet `view` makes of it.
async fn run_kind<K>(
    client: kube::Client,
    informers: Informers,
    cancel: CancellationToken,
    owner: OwnerKind,
    view: fn(&K) -> ReplicaSet,
) -> Result<(), ControllerError>
where
    K: Resource<DynamicType = ()>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let (owners, owner_events) = informers.watch::<K>();
    let (pods, pod_events) = informers.watch::<Pod>();
    let expectations = Arc::new(Expectations::default());
    let kind = owner.resource.kind.clone();
    let queue = stream::select(
        owner_events
            .map_ok(|o| vec![ObjectRef::from_obj(&*o)])
            .boxed(),
        pod_events
            .map_ok({
                let owners = owners.clone();
                let expectations = expectations.clone();
                move |pod| owners_for_pod(&pod, &owners, &expectations, &kind, view)
            })
            .boxed(),
    )
    .map_ok(|refs| stream::iter(refs.into_iter().map(Ok::<_, watcher::Error>)))
    .try_flatten();
    let context = Arc::new(Context {
        recorder: Recorder::new(client.clone(), owner.component),
        client,
        owner,
        pods,
        expectations,
    });
    workqueue::named(context.owner.queue)
        .applier(
            move |obj: Arc<K>, ctx| -> ReconcileFuture {
                Box::pin(reconcile(Arc::new(view(&obj)), ctx))
            },
            error_policy::<K>,
            context,
            owners.store(),
            queue,
            Config::default(),
        )
        .take_until(cancel.cancelled())
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "replica controller event");
            }
        })
        .await;
    Ok(())
}
