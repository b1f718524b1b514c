//! The disruption controller (upstream's `pkg/controller/disruption`): keeps
//! every policy/v1 PodDisruptionBudget's status — healthy, desired and
//! expected pods, allowed disruptions, the disrupted-pods map the Eviction
//! subresource fills, and the `DisruptionAllowed` condition — level-triggered
//! from watches of budgets and pods. It never evicts or deletes anything.

mod stale;
mod status;

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use berth_api::kinds::policy::disruption::selects;
use berth_observability::events::{EventType, Recorder};
use berth_observability::workqueue;
use futures::{stream, Future, StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{Pod, ReplicationController};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Config};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::ResourceExt;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use self::stale::{reset_patch, stale_disruption_in};
pub use self::status::{compute, fail_safe, with_status, Computed, SyncError, Workloads};

use super::cache::Cache;
use super::informers::Informers;
use super::ControllerError;

/// The controllers' caches a pod's controller reference is resolved in.
#[derive(Clone)]
struct WorkloadCaches {
    replica_sets: Cache<ReplicaSet>,
    deployments: Cache<Deployment>,
    stateful_sets: Cache<StatefulSet>,
    replication_controllers: Cache<ReplicationController>,
}

fn cached<K>(store: &Store<K>, namespace: &str, name: &str) -> Option<K>
where
    K: kube::Resource<DynamicType = ()> + Clone + 'static,
{
    store
        .get(&ObjectRef::new(name).within(namespace))
        .map(|o| o.as_ref().clone())
}

impl Workloads for WorkloadCaches {
    fn replica_set(&self, namespace: &str, name: &str) -> Option<ReplicaSet> {
        cached(&self.replica_sets, namespace, name)
    }
    fn deployment(&self, namespace: &str, name: &str) -> Option<Deployment> {
        cached(&self.deployments, namespace, name)
    }
    fn stateful_set(&self, namespace: &str, name: &str) -> Option<StatefulSet> {
        cached(&self.stateful_sets, namespace, name)
    }
    fn replication_controller(&self, namespace: &str, name: &str) -> Option<ReplicationController> {
        cached(&self.replication_controllers, namespace, name)
    }
}

struct Context {
    client: kube::Client,
    recorder: Recorder,
    budgets: Cache<PodDisruptionBudget>,
    pods: Cache<Pod>,
    workloads: WorkloadCaches,
}

#[derive(Debug, thiserror::Error)]
enum ReconcileError {
    #[error("{0}")]
    Api(#[from] kube::Error),
    #[error("a cache closed before its first list completed")]
    CacheClosed,
}

/// Waits until every cache the controller reads has completed its first list.
async fn caches_ready(ctx: &Context) -> Result<(), ReconcileError> {
    let w = &ctx.workloads;
    for ready in [
        ctx.budgets.ready().await,
        ctx.pods.ready().await,
        w.replica_sets.ready().await,
        w.deployments.ready().await,
        w.stateful_sets.ready().await,
        w.replication_controllers.ready().await,
    ] {
        ready.map_err(|_| ReconcileError::CacheClosed)?;
    }
    Ok(())
}

/// Records what upstream reports about a computed budget.
async fn record_findings(
    ctx: &Context,
    pdb: &PodDisruptionBudget,
    pods: &[&Pod],
    computed: &Computed,
) {
    if pods.is_empty() {
        let message = "No matching pods found";
        ctx.recorder
            .record(pdb, EventType::Normal, "NoPods", message)
            .await;
    }
    if !computed.unmanaged_pods.is_empty() {
        let selector = serde_json::to_string(&pdb.spec.as_ref().and_then(|s| s.selector.clone()))
            .unwrap_or_default();
        let message = format!(
            "Pods selected by this PodDisruptionBudget (selector: {selector}) were found to be unmanaged. As a result, the status of the PDB cannot be calculated correctly, which may result in undefined behavior. To account for these pods please set \".spec.minAvailable\" field of the PDB to an integer value."
        );
        ctx.recorder
            .record(pdb, EventType::Warning, "UnmanagedPods", &message)
            .await;
    }
    let namespace = pdb.namespace().unwrap_or_default();
    for name in &computed.not_deleted {
        if let Some(pod) = pods.iter().find(|p| p.metadata.name.as_ref() == Some(name)) {
            let message = format!(
                "Pod was expected by PDB {namespace}/{} to be deleted but it wasn't",
                pdb.name_any()
            );
            ctx.recorder
                .record(*pod, EventType::Warning, "NotDeleted", &message)
                .await;
        }
    }
}

/// Writes `next` through `pods/status`'s sibling, `poddisruptionbudgets/status`,
/// guarded by the cached resourceVersion; a conflict means the cache is behind.
async fn write_status(ctx: &Context, next: &PodDisruptionBudget) -> Result<bool, ReconcileError> {
    let namespace = next.namespace().unwrap_or_default();
    let api: Api<PodDisruptionBudget> = Api::namespaced(ctx.client.clone(), &namespace);
    match api
        .replace_status(&next.name_any(), &PostParams::default(), next)
        .await
    {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(s)) if s.code == 409 || s.code == 404 => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// One sync of a budget (upstream's `sync`/`trySync`/`failSafe`).
async fn reconcile(
    pdb: Arc<PodDisruptionBudget>,
    ctx: Arc<Context>,
) -> Result<Action, ReconcileError> {
    caches_ready(&ctx).await?;
    let namespace = pdb.namespace().unwrap_or_default();
    let all_pods = ctx.pods.state();
    let pods: Vec<&Pod> = all_pods
        .iter()
        .map(|p| p.as_ref())
        .filter(|p| p.metadata.namespace.as_deref() == Some(namespace.as_str()))
        .filter(|p| selects(&pdb, p.metadata.labels.as_ref()))
        .collect();
    let now = jiff::Timestamp::now();
    let computed = match compute(&pdb, &pods, &ctx.workloads, now) {
        Ok(computed) => computed,
        Err(error) => {
            // Written (and told) once: an unchanged status would only wake this budget again.
            let failed = fail_safe(&pdb, &error, now);
            if failed.status != pdb.status {
                tracing::warn!(%error, "failed to sync PDB");
                let message = format!("Failed to calculate the number of expected pods: {error}");
                ctx.recorder
                    .record(
                        pdb.as_ref(),
                        EventType::Warning,
                        "CalculateExpectedPodCountFailed",
                        &message,
                    )
                    .await;
                write_status(&ctx, &failed).await?;
            }
            return Ok(Action::requeue(Duration::from_secs(5)));
        }
    };
    let Some(next) = with_status(&pdb, &computed, now) else {
        return Ok(recheck(&computed, now));
    };
    record_findings(&ctx, &pdb, &pods, &computed).await;
    if !write_status(&ctx, &next).await? {
        return Ok(Action::requeue(Duration::from_millis(200)));
    }
    Ok(recheck(&computed, now))
}

/// How often a budget is synced without any event: a pod whose labels
/// changed away from a budget only wakes the budgets it matches now.
const RESYNC: Duration = Duration::from_secs(60);

/// Wakes the budget again when its earliest disrupted-pod entry lapses, or
/// after [`RESYNC`].
fn recheck(computed: &Computed, now: jiff::Timestamp) -> Action {
    let lapse = computed.recheck_at.map(|at| {
        let wait = at.duration_since(now).as_secs().max(0).unsigned_abs();
        Duration::from_secs(wait + 1)
    });
    Action::requeue(lapse.map_or(RESYNC, |l| l.min(RESYNC)))
}

fn error_policy(
    pdb: Arc<PodDisruptionBudget>,
    error: &ReconcileError,
    _ctx: Arc<Context>,
) -> Action {
    tracing::warn!(pdb = %pdb.name_any(), %error, "disruption reconcile failed");
    Action::requeue(Duration::from_secs(2))
}

/// The budgets a pod event should wake: those in its namespace selecting it.
fn budgets_for_pod(
    pod: &Pod,
    budgets: &Store<PodDisruptionBudget>,
) -> Vec<ObjectRef<PodDisruptionBudget>> {
    budgets
        .state()
        .iter()
        .filter(|b| b.metadata.namespace == pod.metadata.namespace)
        .filter(|b| selects(b, pod.metadata.labels.as_ref()))
        .map(|b| ObjectRef::from_obj(b.as_ref()))
        .collect()
}

/// How often pods are checked for stale `DisruptionTarget` conditions.
const STALE_SWEEP: Duration = Duration::from_secs(10);

/// Resets every stale `DisruptionTarget=True` to False (upstream's stale pod
/// disruption worker, here a level-triggered sweep of the pod cache).
async fn reset_stale_disruptions(client: kube::Client, pods: Cache<Pod>) {
    if pods.ready().await.is_err() {
        // The pod watch is gone; the controller loop reports that itself.
        return std::future::pending().await;
    }
    let params = PatchParams {
        field_manager: Some("poddisruptionbudget-controller".into()),
        ..Default::default()
    };
    let mut tick = tokio::time::interval(STALE_SWEEP);
    loop {
        tick.tick().await;
        let now = jiff::Timestamp::now();
        for pod in pods.state() {
            if stale_disruption_in(&pod, now) != Some(Duration::ZERO) {
                continue;
            }
            let namespace = pod.namespace().unwrap_or_default();
            let api: Api<Pod> = Api::namespaced(client.clone(), &namespace);
            let patch: Patch<serde_json::Value> = Patch::Strategic(reset_patch(now));
            match api.patch_status(&pod.name_any(), &params, &patch).await {
                Ok(_) => {
                    tracing::info!(pod = %format!("{namespace}/{}", pod.name_any()), "reset stale DisruptionTarget condition to False")
                }
                Err(e) => {
                    tracing::warn!(error = %e, "could not reset a stale DisruptionTarget condition")
                }
            }
        }
    }
}

type ReconcileFuture = Pin<Box<dyn Future<Output = Result<Action, ReconcileError>> + Send>>;

/// Runs the disruption controller until `cancel` fires.
pub async fn run(
    client: kube::Client,
    informers: Informers,
    cancel: CancellationToken,
) -> Result<(), ControllerError> {
    let (budgets, budget_events) = informers.watch::<PodDisruptionBudget>();
    let (pods, pod_events) = informers.watch::<Pod>();
    // The workload caches wake nothing, as upstream's listers.
    let replica_sets = informers.cache::<ReplicaSet>();
    let deployments = informers.cache::<Deployment>();
    let stateful_sets = informers.cache::<StatefulSet>();
    let replication_controllers = informers.cache::<ReplicationController>();
    let queue = stream::select(
        budget_events
            .map_ok(|b| vec![ObjectRef::from_obj(&*b)])
            .boxed(),
        pod_events
            .map_ok({
                let budgets = budgets.clone();
                move |pod| budgets_for_pod(&pod, &budgets)
            })
            .boxed(),
    )
    .map_ok(|refs| stream::iter(refs.into_iter().map(Ok::<_, watcher::Error>)))
    .try_flatten();
    let stale = reset_stale_disruptions(client.clone(), pods.clone());
    let context = Arc::new(Context {
        recorder: Recorder::new(client.clone(), "controllermanager"),
        client,
        budgets: budgets.clone(),
        pods,
        workloads: WorkloadCaches {
            replica_sets,
            deployments,
            stateful_sets,
            replication_controllers,
        },
    });
    let controller = workqueue::named("disruption").applier(
        move |pdb: Arc<PodDisruptionBudget>, ctx| -> ReconcileFuture {
            let span = tracing::debug_span!("disruption", pdb = %format!("{}/{}", pdb.namespace().unwrap_or_default(), pdb.name_any()));
            Box::pin(reconcile(pdb, ctx).instrument(span))
        },
        error_policy,
        context,
        budgets.store(),
        queue,
        Config::default(),
    )
    .for_each(|result| async move {
        if let Err(e) = result {
            tracing::debug!(error = %e, "disruption controller event");
        }
    });
    tokio::select! {
        _ = cancel.cancelled() => {}
        _ = controller => {}
        _ = stale => {}
    }
    Ok(())
}
