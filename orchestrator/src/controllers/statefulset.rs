//! The StatefulSet controller (upstream's `pkg/controller/statefulset`): pods
//! with stable names and hostnames `SET-ORDINAL` ([`identity`]), created in
//! order and each only after the previous one is Running and Ready, removed
//! from the highest ordinal on scale down (or all at once under Parallel),
//! failed pods recreated, RollingUpdate with a partition or OnDelete
//! ([`plan`]); a claim per volumeClaimTemplate made before its pod, kept or
//! deleted as the retention policy says; ControllerRevisions so `kubectl
//! rollout status|history|undo` work ([`revisions`]); status through
//! `statefulsets/status` ([`status`]). Orphans named `SET-ORDINAL` that the
//! selector matches are adopted, owned pods that stop matching released.

pub mod identity;
pub mod plan;
pub mod revisions;
pub mod status;

use std::collections::{BTreeMap, HashSet};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use berth_observability::workqueue;
use futures::{stream, Future, StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action as Requeue, Config};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::ResourceExt;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use self::plan::{Action, Inputs, PodFacts, Strategy};
use self::revisions::SetRevisions;
use super::cache::Cache;
use super::daemonset::revisions::HistoryError;
use super::history::CONTROLLER_REVISION_HASH;
use super::informers::Informers;
use super::pod_control::api_message;
use super::workload::{
    claim, controller_ref_of, controller_reference, owners_to_wake, pod_is_available, pod_is_ready,
};
use super::ControllerError;
use berth_observability::events::{EventType, Recorder};

struct Context {
    client: kube::Client,
    pods: Cache<Pod>,
    revisions: Cache<ControllerRevision>,
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
}

/// The plan's view of a pod.
fn facts(pod: &Pod, min_ready_seconds: i32, now: jiff::Timestamp) -> PodFacts {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    let ready = phase == Some("Running") && pod_is_ready(pod);
    PodFacts {
        name: pod.name_any(),
        revision: pod
            .labels()
            .get(CONTROLLER_REVISION_HASH)
            .cloned()
            .unwrap_or_default(),
        finished: matches!(phase, Some("Failed" | "Succeeded")),
        terminating: pod.metadata.deletion_timestamp.is_some(),
        ready,
        healthy: ready && pod_is_available(pod, min_ready_seconds, now),
    }
}

/// The set's pods by ordinal: those named `SET-ORDINAL` it controls after
/// adopting matching orphans and releasing owned pods that stopped matching
/// (upstream's `getPodsForStatefulSet`).
async fn owned_pods(
    set: &StatefulSet,
    ctx: &Context,
) -> Result<BTreeMap<i32, Arc<Pod>>, kube::Error> {
    let name = set.name_any();
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &set.namespace().unwrap_or_default());
    let candidates = ctx.pods.state().into_iter().filter(|p| {
        p.namespace() == set.namespace() && identity::ordinal_of(&name, &p.name_any()).is_some()
    });
    let selector = set
        .spec
        .as_ref()
        .map(|s| s.selector.clone())
        .unwrap_or_default();
    let owned = claim(set, &selector, candidates, &api).await?;
    Ok(owned
        .into_iter()
        .filter_map(|p| identity::ordinal_of(&name, &p.name_any()).map(|o| (o, p)))
        .collect())
}

fn strategy(set: &StatefulSet) -> Strategy {
    let update = set.spec.as_ref().and_then(|s| s.update_strategy.as_ref());
    match update.and_then(|u| u.type_.as_deref()) {
        Some("OnDelete") => Strategy::OnDelete,
        _ => Strategy::RollingUpdate {
            partition: update
                .and_then(|u| u.rolling_update.as_ref())
                .and_then(|r| r.partition)
                .unwrap_or(0),
        },
    }
}

async fn event(ctx: &Context, set: &StatefulSet, kind: EventType, reason: &str, message: String) {
    ctx.recorder.record(set, kind, reason, &message).await;
}

/// Creates the missing claims of `ordinal`, then its pod (upstream's `CreateStatefulPod`).
async fn create_pod(
    set: &StatefulSet,
    ordinal: i32,
    revision: &str,
    revisions: &SetRevisions,
    ctx: &Context,
) -> Result<(), kube::Error> {
    let namespace = set.namespace().unwrap_or_default();
    let set_name = set.name_any();
    let pod_name = identity::pod_name(&set_name, ordinal);
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(ctx.client.clone(), &namespace);
    for claim in identity::new_claims(set, ordinal) {
        let claim_name = claim.name_any();
        match claims.create(&PostParams::default(), &claim).await {
            Ok(_) => {
                let message = format!(
                    "create Claim {claim_name} Pod {pod_name} in StatefulSet {set_name} success"
                );
                event(ctx, set, EventType::Normal, "SuccessfulCreate", message).await;
            }
            Err(kube::Error::Api(s)) if s.code == 409 => {}
            Err(e) => {
                let message = format!(
                    "create Claim {claim_name} for Pod {pod_name} in StatefulSet {set_name} failed error: {}",
                    api_message(&e)
                );
                event(ctx, set, EventType::Warning, "FailedCreate", message).await;
                return Err(e);
            }
        }
    }
    let template = if revision == revisions.update {
        set.spec
            .as_ref()
            .map(|s| s.template.clone())
            .unwrap_or_default()
    } else {
        revisions.current_template.clone()
    };
    let pod = identity::new_pod(set, &template, ordinal, revision);
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &namespace);
    match pods.create(&PostParams::default(), &pod).await {
        Ok(_) => {
            let message = format!("create Pod {pod_name} in StatefulSet {set_name} successful");
            event(ctx, set, EventType::Normal, "SuccessfulCreate", message).await;
            Ok(())
        }
        // The cache has not seen it yet; the next pass will.
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(e) => {
            let message = format!(
                "create Pod {pod_name} in StatefulSet {set_name} failed error: {}",
                api_message(&e)
            );
            event(ctx, set, EventType::Warning, "FailedCreate", message).await;
            Err(e)
        }
    }
}

/// Makes the pod the only owner of its claims, so they go with it (whenScaled: Delete).
async fn hand_claims_to(set: &StatefulSet, pod: &Pod, ctx: &Context) -> Result<(), kube::Error> {
    let Some(ordinal) = identity::ordinal_of(&set.name_any(), &pod.name_any()) else {
        return Ok(());
    };
    let api: Api<PersistentVolumeClaim> =
        Api::namespaced(ctx.client.clone(), &set.namespace().unwrap_or_default());
    let owner = identity::non_controller_reference(controller_reference(pod));
    for claim in identity::new_claims(set, ordinal) {
        let existing = match api.get_opt(&claim.name_any()).await? {
            Some(existing) => existing,
            None => continue,
        };
        if existing
            .owner_references()
            .iter()
            .any(|r| r.uid == owner.uid)
        {
            continue;
        }
        // The set's reference goes: the collector keeps a claim any owner still holds.
        let set_uid = set.uid().unwrap_or_default();
        let mut refs: Vec<_> = existing
            .owner_references()
            .iter()
            .filter(|r| r.uid != set_uid)
            .cloned()
            .collect();
        refs.push(owner.clone());
        let patch = json!({"metadata": {"ownerReferences": refs,
            "resourceVersion": existing.resource_version()}});
        api.patch(
            &existing.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await?;
    }
    Ok(())
}

async fn delete_pod(set: &StatefulSet, pod: &Pod, ctx: &Context) -> Result<(), kube::Error> {
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &set.namespace().unwrap_or_default());
    let (pod_name, set_name) = (pod.name_any(), set.name_any());
    match api.delete(&pod_name, &DeleteParams::default()).await {
        Ok(_) => {
            let message = format!("delete Pod {pod_name} in StatefulSet {set_name} successful");
            event(ctx, set, EventType::Normal, "SuccessfulDelete", message).await;
            Ok(())
        }
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => {
            let message = format!(
                "delete Pod {pod_name} in StatefulSet {set_name} failed error: {}",
                api_message(&e)
            );
            event(ctx, set, EventType::Warning, "FailedDelete", message).await;
            Err(e)
        }
    }
}

/// Carries out one pass's actions.
async fn apply(
    set: &StatefulSet,
    actions: &[Action],
    pods: &BTreeMap<i32, Arc<Pod>>,
    revisions: &SetRevisions,
    ctx: &Context,
) -> Result<(), kube::Error> {
    let by_name = |name: &str| pods.values().find(|p| p.name_any() == name).cloned();
    for action in actions {
        match action {
            Action::Create { ordinal, revision } => {
                create_pod(set, *ordinal, revision, revisions, ctx).await?
            }
            Action::Condemn(name) => {
                if let Some(pod) = by_name(name) {
                    if identity::deletes_claims(set, true) {
                        hand_claims_to(set, &pod, ctx).await?;
                    }
                    delete_pod(set, &pod, ctx).await?;
                }
            }
            Action::Replace(name) | Action::Update(name) => {
                if let Some(pod) = by_name(name) {
                    delete_pod(set, &pod, ctx).await?;
                }
            }
        }
    }
    Ok(())
}

#[tracing::instrument(skip_all, fields(statefulset = %format!("{}/{}", set.namespace().unwrap_or_default(), set.name_any())))]
async fn reconcile(set: Arc<StatefulSet>, ctx: Arc<Context>) -> Result<Requeue, ReconcileError> {
    for ready in [ctx.pods.ready().await, ctx.revisions.ready().await] {
        ready.map_err(|_| ReconcileError::CacheClosed)?;
    }
    if set.metadata.deletion_timestamp.is_some() {
        return Ok(Requeue::await_change());
    }
    let revisions = revisions::construct(&set, &ctx.revisions, &ctx.client).await?;
    let pods = owned_pods(&set, &ctx).await?;
    let spec = set.spec.as_ref();
    let min_ready = spec.and_then(|s| s.min_ready_seconds).unwrap_or(0);
    let now = jiff::Timestamp::now();
    let facts: BTreeMap<i32, PodFacts> = pods
        .iter()
        .map(|(o, p)| (*o, facts(p, min_ready, now)))
        .collect();
    let strategy = strategy(&set);
    let inputs = Inputs {
        pods: &facts,
        start: identity::start_ordinal(&set),
        replicas: identity::replicas(&set),
        parallel: spec.and_then(|s| s.pod_management_policy.as_deref()) == Some("Parallel"),
        strategy,
        current_revision: &revisions.current,
        update_revision: &revisions.update,
    };
    let actions = inputs.plan();
    tracing::debug!(?actions, "statefulset pass");
    let result = apply(&set, &actions, &pods, &revisions, &ctx).await;
    let live: HashSet<String> = facts.values().map(|f| f.revision.clone()).collect();
    if result.is_ok() {
        revisions::cleanup(&set, &revisions, &live, &ctx.client).await?;
    }
    let status = status::compute(
        facts.values(),
        status::Revisions {
            current: &revisions.current,
            update: &revisions.update,
            rolling: matches!(strategy, Strategy::RollingUpdate { .. }),
        },
        set.metadata.generation,
        set.status.as_ref().and_then(|s| s.collision_count),
    );
    if set.status.as_ref() != Some(&status) {
        let api: Api<StatefulSet> =
            Api::namespaced(ctx.client.clone(), &set.namespace().unwrap_or_default());
        match api
            .patch_status(
                &set.name_any(),
                &PatchParams::default(),
                &Patch::Merge(json!({ "status": status })),
            )
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
    }
    result?;
    let waiting_available = facts.values().any(|f| f.ready && !f.healthy);
    Ok(if waiting_available {
        Requeue::requeue(Duration::from_secs(min_ready.max(1) as u64))
    } else {
        Requeue::await_change()
    })
}

fn error_policy(set: Arc<StatefulSet>, error: &ReconcileError, _ctx: Arc<Context>) -> Requeue {
    tracing::warn!(name = %set.name_any(), %error, "statefulset reconcile failed");
    Requeue::requeue(Duration::from_secs(2))
}

type ReconcileFuture = Pin<Box<dyn Future<Output = Result<Requeue, ReconcileError>> + Send>>;

/// Runs the StatefulSet controller until `cancel` fires.
pub async fn run(
    client: kube::Client,
    informers: Informers,
    cancel: CancellationToken,
) -> Result<(), ControllerError> {
    let (sets, set_events) = informers.watch::<StatefulSet>();
    let (pods, pod_events) = informers.watch::<Pod>();
    let (revisions, revision_events) = informers.watch::<ControllerRevision>();
    let context = Arc::new(Context {
        recorder: Recorder::new(client.clone(), "statefulset-controller"),
        client,
        pods,
        revisions,
    });
    let owner = |meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta| {
        controller_ref_of::<StatefulSet>(meta)
            .into_iter()
            .collect::<Vec<_>>()
    };
    // An orphan wakes the sets whose selector matches it: one may adopt it.
    let pod_owners = {
        let sets = sets.clone();
        move |pod: Arc<Pod>| {
            owners_to_wake(&pod.metadata, &sets, |set: &StatefulSet| {
                set.spec.as_ref().map(|s| &s.selector)
            })
        }
    };
    let queue = stream::select_all([
        set_events
            .map_ok(|set| vec![ObjectRef::from_obj(&*set)])
            .boxed(),
        pod_events.map_ok(pod_owners).boxed(),
        revision_events.map_ok(move |r| owner(&r.metadata)).boxed(),
    ])
    .map_ok(|refs| stream::iter(refs.into_iter().map(Ok::<_, watcher::Error>)))
    .try_flatten();
    workqueue::named("statefulset")
        .applier(
            |set: Arc<StatefulSet>, ctx| -> ReconcileFuture { Box::pin(reconcile(set, ctx)) },
            error_policy,
            context,
            sets.store(),
            queue,
            Config::default(),
        )
        .take_until(cancel.cancelled())
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "statefulset controller event");
            }
        })
        .await;
    Ok(())
}
