//! The DaemonSet controller (upstream's `pkg/controller/daemon`): one pod per
//! node that should run it ([`placement`]), pinned by node affinity so the
//! default scheduler binds it; pods created on nodes that join or start to
//! match, deleted from nodes that stop matching, failed ones replaced behind a
//! per-node backoff ([`manage`], [`backoff`]); RollingUpdate within
//! maxUnavailable/maxSurge or OnDelete ([`rolling`]); ControllerRevisions for
//! `kubectl rollout history|undo` ([`revisions`]); status through
//! `daemonsets/status` ([`status`]). It only creates and deletes pods of its
//! own DaemonSets, and never while earlier ones are still unobserved.

pub mod backoff;
pub mod manage;
pub mod placement;
pub mod revisions;
pub mod rolling;
pub mod status;

use std::collections::{BTreeMap, HashMap};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_observability::workqueue;
use futures::{stream, Future, StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::{Action, Config};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::ResourceExt;
use tokio_util::sync::CancellationToken;

use self::backoff::FailedPodsBackoff;
use self::manage::NodePods;
use self::placement::{node_should_run, target_node, Fit, NodeFacts};
use self::revisions::HistoryError;
use self::rolling::Rollout;
use super::cache::Cache;
use super::informers::Informers;
use super::pod_control::PodControl;
use super::replicaset::expectations::Expectations;
use super::workload::{controller_of, controller_ref_of, owners_to_wake};
use super::ControllerError;
use berth_observability::events::{object_reference, EventType, Recorder};

/// At most this many pods are created or deleted in one pass (upstream's burstReplicas).
const BURST_REPLICAS: usize = 250;

struct Context {
    client: kube::Client,
    pods: Cache<Pod>,
    nodes: Cache<Node>,
    revisions: Cache<ControllerRevision>,
    expectations: Expectations,
    backoff: FailedPodsBackoff,
    recorder: Recorder,
}

#[derive(Debug, thiserror::Error)]
enum ReconcileError {
    #[error("{0}")]
    Api(#[from] kube::Error),
    #[error("{0}")]
    History(#[from] HistoryError),
    #[error("cache closed")]
    CacheClosed,
    #[error("{0}")]
    Invalid(String),
}

/// The pods `ds` controls, after adopting matching orphans and releasing
/// owned pods that stopped matching (upstream's `getDaemonPods`).
async fn claim_pods(ds: &DaemonSet, ctx: &Context) -> Result<Vec<Arc<Pod>>, ReconcileError> {
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ds.namespace().unwrap_or_default());
    let candidates = ctx
        .pods
        .state()
        .into_iter()
        .filter(|p| p.namespace() == ds.namespace());
    Ok(super::workload::claim(ds, &placement::selector(ds), candidates, &api).await?)
}

/// Pods grouped by target node, leaving out finished pods being deleted.
fn by_node(pods: &[Arc<Pod>]) -> NodePods<'_> {
    let mut grouped = NodePods::new();
    for pod in pods {
        let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
        let terminal = matches!(phase, Some("Succeeded" | "Failed"));
        if terminal && pod.metadata.deletion_timestamp.is_some() {
            continue;
        }
        if let Some(node) = target_node(pod) {
            grouped.entry(node).or_default().push(pod.as_ref());
        }
    }
    grouped
}

/// Creates pods on `create_on` (in slow-start batches) and deletes `delete`
/// (by name); true when anything was asked of the API.
async fn sync_nodes(
    ds: &DaemonSet,
    create_on: &[String],
    delete: &[String],
    hash: &str,
    ctx: &Context,
) -> Result<bool, ReconcileError> {
    let control = PodControl {
        api: Api::namespaced(ctx.client.clone(), &ds.namespace().unwrap_or_default()),
        recorder: &ctx.recorder,
        owner: object_reference(ds),
        expectations: &ctx.expectations,
    };
    let create_on = &create_on[..create_on.len().min(BURST_REPLICAS)];
    control
        .create(create_on.len(), |i| {
            placement::new_pod(ds, &create_on[i], hash)
        })
        .await?;
    let pods = ctx.pods.state();
    let victims: Vec<&Pod> = delete
        .iter()
        .take(BURST_REPLICAS)
        .filter_map(|name| {
            pods.iter()
                .find(|p| p.namespace() == ds.namespace() && p.name_any() == *name)
                .map(|p| p.as_ref())
        })
        .collect();
    control.delete(&victims).await?;
    Ok(!create_on.is_empty() || !victims.is_empty())
}

fn satisfied(ds: &DaemonSet, ctx: &Context) -> bool {
    let uid = ds.uid().unwrap_or_default();
    let pods = ctx.pods.state();
    ctx.expectations.satisfied(
        &uid,
        Instant::now(),
        |name| {
            pods.iter().any(|p| {
                p.metadata.name.as_deref() == Some(name) && p.namespace() == ds.namespace()
            })
        },
        |pod_uid| {
            !pods.iter().any(|p| {
                p.metadata.uid.as_deref() == Some(pod_uid)
                    && p.metadata.deletion_timestamp.is_none()
            })
        },
    )
}

/// The manage pass and, when it had nothing to do, one rolling-update step;
/// the requeue the failed-pod backoff asks for.
async fn update(
    ds: &DaemonSet,
    nodes: &BTreeMap<String, Fit>,
    pods: &NodePods<'_>,
    hash: &str,
    ctx: &Context,
) -> Result<Option<Duration>, ReconcileError> {
    let uid = ds.uid().unwrap_or_default();
    let strategy = ds
        .spec
        .as_ref()
        .and_then(|s| s.update_strategy.as_ref())
        .and_then(|u| u.type_.clone())
        .unwrap_or_else(|| "RollingUpdate".into());
    let desired = nodes.values().filter(|f| f.should_run).count() as i32;
    let (max_surge, max_unavailable) =
        rolling::budget(ds, desired).map_err(ReconcileError::Invalid)?;
    let allow_surge = strategy == "RollingUpdate" && max_surge > 0;
    let key = |node: &str| format!("{uid}/{node}");
    let now = Instant::now();
    let plan = manage::plan(nodes, pods, hash, allow_surge, |node| {
        ctx.backoff.in_backoff(&key(node), now)
    });
    for (pod, node) in &plan.failed {
        ctx.backoff.next(&key(node), now);
        let namespace = ds.namespace().unwrap_or_default();
        ctx.recorder
            .record(
                ds,
                EventType::Warning,
                "FailedDaemonPod",
                &format!(
                    "Found failed daemon pod {namespace}/{pod} on node {node}, will try to kill it"
                ),
            )
            .await;
    }
    let requeue = plan
        .backing_off
        .iter()
        .map(|node| ctx.backoff.delay(&key(node)))
        .min();
    let acted = sync_nodes(ds, &plan.create_on, &plan.delete, hash, ctx).await?;
    if !acted && strategy == "RollingUpdate" {
        let mut with_empty = pods.clone();
        let should_run: BTreeMap<String, bool> = nodes
            .iter()
            .map(|(n, f)| (n.clone(), f.should_run))
            .collect();
        for (node, run) in &should_run {
            if *run {
                with_empty.entry(node.clone()).or_default();
            }
        }
        let generation = placement::template_generation(ds);
        let rollout = Rollout {
            pods: &with_empty,
            should_run: &should_run,
            hash,
            generation: generation.as_deref(),
            min_ready_seconds: ds
                .spec
                .as_ref()
                .and_then(|s| s.min_ready_seconds)
                .unwrap_or(0),
            desired,
            now: jiff::Timestamp::now(),
        };
        let step = rollout.step(max_surge, max_unavailable);
        tracing::debug!(delete = ?step.delete, create_on = ?step.create_on, "rolling update step");
        sync_nodes(ds, &step.create_on, &step.delete, hash, ctx).await?;
    }
    Ok(requeue)
}

#[tracing::instrument(skip_all, fields(daemonset = %format!("{}/{}", ds.namespace().unwrap_or_default(), ds.name_any())))]
async fn reconcile(ds: Arc<DaemonSet>, ctx: Arc<Context>) -> Result<Action, ReconcileError> {
    for ready in [
        ctx.pods.ready().await,
        ctx.nodes.ready().await,
        ctx.revisions.ready().await,
    ] {
        ready.map_err(|_| ReconcileError::CacheClosed)?;
    }
    if ds.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let (hash, old) = revisions::construct(&ds, &ctx.revisions, &ctx.pods, &ctx.client).await?;
    let owned = claim_pods(&ds, &ctx).await?;
    let nodes: BTreeMap<String, Fit> = ctx
        .nodes
        .state()
        .iter()
        .map(|n| (n.name_any(), node_should_run(&ds, n)))
        .collect();
    let pods = by_node(&owned);
    let satisfied = satisfied(&ds, &ctx);
    let mut result = Ok(None);
    if satisfied {
        result = update(&ds, &nodes, &pods, &hash, &ctx).await;
        if result.is_ok() {
            let live = revisions::live_hashes(pods.values().flatten().copied());
            revisions::cleanup(&ds, &old, &live, &ctx.client).await?;
        }
    }
    let status =
        status::compute_status(&ds, &nodes, &pods, &hash, satisfied, jiff::Timestamp::now());
    if ds.status.as_ref() != Some(&status) {
        let api: Api<DaemonSet> =
            Api::namespaced(ctx.client.clone(), &ds.namespace().unwrap_or_default());
        match api
            .patch_status(
                &ds.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&status::status_patch(&status)),
            )
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
    }
    let requeue = result?;
    let min_ready = ds
        .spec
        .as_ref()
        .and_then(|s| s.min_ready_seconds)
        .unwrap_or(0);
    let mut after = requeue;
    if !satisfied {
        after = Some(Duration::from_secs(5));
    } else if min_ready > 0 && status.number_ready != status.number_available.unwrap_or(0) {
        let wait = Duration::from_secs(min_ready as u64);
        after = Some(after.map_or(wait, |a| a.min(wait)));
    }
    Ok(after.map_or_else(Action::await_change, Action::requeue))
}

fn error_policy(ds: Arc<DaemonSet>, error: &ReconcileError, _ctx: Arc<Context>) -> Action {
    tracing::warn!(name = %ds.name_any(), %error, "daemonset reconcile failed");
    Action::requeue(Duration::from_secs(2))
}

type ReconcileFuture = Pin<Box<dyn Future<Output = Result<Action, ReconcileError>> + Send>>;

/// Runs the DaemonSet controller until `cancel` fires.
pub async fn run(
    client: kube::Client,
    informers: Informers,
    cancel: CancellationToken,
) -> Result<(), ControllerError> {
    let (daemonsets, ds_events) = informers.watch::<DaemonSet>();
    let (pods, pod_events) = informers.watch::<Pod>();
    let (nodes, node_events) = informers.watch::<Node>();
    let (revisions, revision_events) = informers.watch::<ControllerRevision>();
    let context = Arc::new(Context {
        recorder: Recorder::new(client.clone(), "daemonset-controller"),
        client,
        pods,
        nodes,
        revisions,
        expectations: Expectations::default(),
        backoff: FailedPodsBackoff::default(),
    });
    let pod_owners = {
        let (daemonsets, ctx) = (daemonsets.clone(), context.clone());
        move |pod: Arc<Pod>| {
            if let Some(owner) = controller_of(&pod.metadata).filter(|o| o.kind == "DaemonSet") {
                ctx.expectations
                    .observe_creation(&owner.uid, &pod.name_any());
            }
            owners_to_wake(&pod.metadata, &daemonsets, |ds: &DaemonSet| {
                ds.spec.as_ref().map(|s| &s.selector)
            })
        }
    };
    let every_daemonset = {
        let (daemonsets, nodes) = (daemonsets.clone(), context.nodes.clone());
        let mut seen: HashMap<String, NodeFacts> = HashMap::new();
        move |node: Arc<Node>| {
            let name = node.name_any();
            let changed = if nodes.get(&ObjectRef::new(&name)).is_some() {
                let facts = NodeFacts::of(&node);
                seen.insert(name, facts.clone()).as_ref() != Some(&facts)
            } else {
                seen.remove(&name);
                true
            };
            if !changed {
                return Vec::new();
            }
            daemonsets
                .state()
                .iter()
                .map(|ds| ObjectRef::from_obj(ds.as_ref()))
                .collect::<Vec<_>>()
        }
    };
    let queue = stream::select_all([
        ds_events
            .map_ok(|ds| vec![ObjectRef::from_obj(&*ds)])
            .boxed(),
        pod_events.map_ok(pod_owners).boxed(),
        node_events.map_ok(every_daemonset).boxed(),
        revision_events
            .map_ok(|r| {
                controller_ref_of::<DaemonSet>(&r.metadata)
                    .into_iter()
                    .collect()
            })
            .boxed(),
    ])
    .map_ok(|refs| stream::iter(refs.into_iter().map(Ok::<_, watcher::Error>)))
    .try_flatten();
    workqueue::named("daemonset")
        .applier(
            |ds: Arc<DaemonSet>, ctx| -> ReconcileFuture { Box::pin(reconcile(ds, ctx)) },
            error_policy,
            context,
            daemonsets.store(),
            queue,
            Config::default(),
        )
        .take_until(cancel.cancelled())
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "daemonset controller event");
            }
        })
        .await;
    Ok(())
}
