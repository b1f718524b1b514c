//! The Deployment controller (upstream's `pkg/controller/deployment`): one
//! ReplicaSet per pod template, named after the template's hash, rolled by
//! RollingUpdate (within maxSurge/maxUnavailable) or Recreate, with revision
//! annotations, history cleanup, pause, progress deadline and the
//! Progressing/Available conditions `kubectl rollout` reads; a resize during a
//! rollout (or while paused) is spread over the active ReplicaSets in
//! proportion. It only ever changes ReplicaSets; pods are the ReplicaSet
//! controller's.

pub mod rollout;
pub mod scaling;
mod status;

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use berth_observability::workqueue;
use futures::{stream, Future, StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, ReplicaSetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Config};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::ResourceExt;
use tokio_util::sync::CancellationToken;

use self::rollout::{
    pod_template_hash, resolve_fenceposts, rolling_step, without_hash, Counts, Step,
    POD_TEMPLATE_HASH,
};
use self::scaling::{is_scaling_event, proportional_sizes, Sized, Target};
use self::status::compute_status;
use super::cache::Cache;
use super::informers::Informers;
use super::workload::{controller_of, controller_reference, owners_to_wake, selector_matches};
use super::ControllerError;
use berth_observability::events::{EventType, Recorder};
use berth_observability::propagation;
use tracing::Instrument;

/// The revision annotation `kubectl rollout history|undo` reads.
pub const REVISION: &str = "deployment.kubernetes.io/revision";
/// The Deployment's replicas when the ReplicaSet was last scaled.
pub const DESIRED_REPLICAS: &str = "deployment.kubernetes.io/desired-replicas";
/// Replicas plus surge when the ReplicaSet was last scaled.
pub const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";
/// Annotations never copied from a Deployment to its ReplicaSets.
const NOT_COPIED: &[&str] = &[
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION,
    "deployment.kubernetes.io/revision-history",
    DESIRED_REPLICAS,
    MAX_REPLICAS,
    // Each ReplicaSet carries the context of the controller pass that made it.
    propagation::ANNOTATION,
];

struct Context {
    client: kube::Client,
    replicasets: Cache<ReplicaSet>,
    recorder: Recorder,
}

#[derive(Debug, thiserror::Error)]
enum ReconcileError {
    #[error("{0}")]
    Api(#[from] kube::Error),
    #[error("replicaset cache closed")]
    CacheClosed,
    #[error("deployment {0}: {1}")]
    Invalid(String, String),
}

fn revision_of(rs: &ReplicaSet) -> i64 {
    rs.annotations()
        .get(REVISION)
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

fn counts(rs: &ReplicaSet) -> Counts {
    let status = rs.status.as_ref();
    Counts {
        desired: rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0),
        current: status.map(|s| s.replicas).unwrap_or(0),
        available: status.and_then(|s| s.available_replicas).unwrap_or(0),
    }
}

/// Orders ReplicaSets oldest first, by creation time then name, as upstream's
/// `ReplicaSetsByCreationTimestamp`.
fn age(rs: &ReplicaSet) -> (Option<jiff::Timestamp>, String) {
    (
        rs.metadata.creation_timestamp.as_ref().map(|t| t.0),
        rs.name_any(),
    )
}

/// A ReplicaSet as proportional scaling sees it.
fn sized(rs: &ReplicaSet) -> Sized {
    let annotation = |key: &str| rs.annotations().get(key).and_then(|v| v.parse().ok());
    Sized {
        replicas: counts(rs).desired,
        available: counts(rs).available,
        desired_annotation: annotation(DESIRED_REPLICAS),
        max_annotation: annotation(MAX_REPLICAS),
    }
}

/// The ReplicaSets the Deployment controls, after adopting matching orphans
/// and releasing those that stopped matching.
async fn claim_replicasets(
    d: &Deployment,
    ctx: &Context,
) -> Result<Vec<ReplicaSet>, ReconcileError> {
    let namespace = d.namespace().unwrap_or_default();
    let uid = d.uid().unwrap_or_default();
    let selector = d
        .spec
        .as_ref()
        .map(|s| s.selector.clone())
        .unwrap_or_default();
    let api: Api<ReplicaSet> = Api::namespaced(ctx.client.clone(), &namespace);
    let deleting = d.metadata.deletion_timestamp.is_some();
    let mut owned = Vec::new();
    for rs in ctx.replicasets.state() {
        if rs.metadata.namespace.as_deref() != Some(namespace.as_str()) {
            continue;
        }
        let matches = selector_matches(&selector, rs.metadata.labels.as_ref());
        let refs = match controller_of(&rs.metadata) {
            Some(owner) if owner.uid == uid && matches => {
                owned.push((*rs).clone());
                continue;
            }
            Some(owner) if owner.uid == uid && !deleting => rs
                .owner_references()
                .iter()
                .filter(|r| r.uid != uid)
                .cloned()
                .collect::<Vec<_>>(),
            None if matches && !deleting && rs.metadata.deletion_timestamp.is_none() => {
                let mut refs = rs.owner_references().to_vec();
                refs.push(controller_reference(d));
                refs
            }
            _ => continue,
        };
        let adopting = refs.iter().any(|r| r.uid == uid);
        let patch = super::workload::owner_references_patch(&refs, rs.resource_version());
        match api
            .patch(
                &rs.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
        {
            Ok(patched) if adopting => owned.push(patched),
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(owned)
}

/// Sets a ReplicaSet's replicas (and the desired/max annotations), with the
/// upstream `ScalingReplicaSet` event.
async fn scale(
    d: &Deployment,
    rs: &ReplicaSet,
    replicas: i32,
    max_surge: i32,
    ctx: &Context,
) -> Result<(), ReconcileError> {
    let from = rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);
    let desired = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let annotations = rs.annotations();
    let desired_text = desired.to_string();
    let max_text = (desired + max_surge).to_string();
    if from == replicas
        && annotations.get(DESIRED_REPLICAS) == Some(&desired_text)
        && annotations.get(MAX_REPLICAS) == Some(&max_text)
    {
        return Ok(());
    }
    let api: Api<ReplicaSet> =
        Api::namespaced(ctx.client.clone(), &rs.namespace().unwrap_or_default());
    let patch = serde_json::json!({
        "metadata": {"annotations": {DESIRED_REPLICAS: desired_text, MAX_REPLICAS: max_text}},
        "spec": {"replicas": replicas},
    });
    api.patch(
        &rs.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await?;
    if from != replicas {
        let direction = if replicas > from { "up" } else { "down" };
        let message = format!(
            "Scaled {direction} replica set {} from {from} to {replicas}",
            rs.name_any()
        );
        ctx.recorder
            .record(d, EventType::Normal, "ScalingReplicaSet", &message)
            .await;
    }
    Ok(())
}

/// Annotations a ReplicaSet of `d` carries at `revision`.
fn replicaset_annotations(
    d: &Deployment,
    revision: i64,
    max_surge: i32,
) -> BTreeMap<String, String> {
    let replicas = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let mut annotations: BTreeMap<String, String> = d
        .annotations()
        .iter()
        .filter(|(k, _)| !NOT_COPIED.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    annotations.insert(REVISION.into(), revision.to_string());
    annotations.insert(DESIRED_REPLICAS.into(), replicas.to_string());
    annotations.insert(MAX_REPLICAS.into(), (replicas + max_surge).to_string());
    annotations
}

/// Finds the ReplicaSet running the Deployment's template, bringing its
/// revision (and copied annotations) up to date; creates it when asked.
async fn new_replicaset(
    d: &Deployment,
    owned: &[ReplicaSet],
    create_with: Option<i32>,
    max_surge: i32,
    ctx: &Context,
) -> Result<(Option<ReplicaSet>, bool), ReconcileError> {
    let spec = d
        .spec
        .as_ref()
        .ok_or_else(|| ReconcileError::Invalid(d.name_any(), "no spec".into()))?;
    let template = &spec.template;
    let existing = owned.iter().find(|rs| {
        rs.spec
            .as_ref()
            .and_then(|s| s.template.as_ref())
            .map(without_hash)
            .as_ref()
            == Some(template)
    });
    let max_old_revision = owned
        .iter()
        .filter(|rs| Some(rs.name_any()) != existing.map(|e| e.name_any()))
        .map(revision_of)
        .max()
        .unwrap_or(0);
    let namespace = d.namespace().unwrap_or_default();
    let api: Api<ReplicaSet> = Api::namespaced(ctx.client.clone(), &namespace);
    if let Some(rs) = existing {
        let revision = if revision_of(rs) > max_old_revision {
            revision_of(rs)
        } else {
            max_old_revision + 1
        };
        let mut wanted = replicaset_annotations(d, revision, max_surge);
        // Scale annotations move with scaling, not with the template.
        for key in [DESIRED_REPLICAS, MAX_REPLICAS] {
            match rs.annotations().get(key) {
                Some(v) => wanted.insert(key.into(), v.clone()),
                None => wanted.remove(key),
            };
        }
        let stale = wanted
            .iter()
            .any(|(k, v)| rs.annotations().get(k) != Some(v));
        if stale {
            let patch = serde_json::json!({"metadata": {"annotations": wanted}});
            let updated = api
                .patch(
                    &rs.name_any(),
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await?;
            return Ok((Some(updated), false));
        }
        return Ok((Some(rs.clone()), false));
    }
    let Some(replicas) = create_with else {
        return Ok((None, false));
    };
    let collision_count = d.status.as_ref().and_then(|s| s.collision_count);
    let hash = pod_template_hash(template, collision_count);
    let mut rs_template = template.clone();
    rs_template
        .metadata
        .get_or_insert_with(Default::default)
        .labels
        .get_or_insert_with(Default::default)
        .insert(POD_TEMPLATE_HASH.into(), hash.clone());
    let mut selector = spec.selector.clone();
    selector
        .match_labels
        .get_or_insert_with(Default::default)
        .insert(POD_TEMPLATE_HASH.into(), hash.clone());
    let labels = rs_template.metadata.as_ref().and_then(|m| m.labels.clone());
    let name = format!("{}-{hash}", d.name_any());
    let mut rs = ReplicaSet {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(namespace),
            labels,
            annotations: Some(replicaset_annotations(d, max_old_revision + 1, max_surge)),
            owner_references: Some(vec![controller_reference(d)]),
            ..Default::default()
        },
        spec: Some(ReplicaSetSpec {
            replicas: Some(replicas),
            min_ready_seconds: spec.min_ready_seconds,
            selector,
            template: Some(rs_template),
        }),
        status: None,
    };
    propagation::inject(&mut rs.metadata.annotations);
    match api.create(&PostParams::default(), &rs).await {
        Ok(created) => {
            if replicas > 0 {
                let message = format!("Scaled up replica set {name} from 0 to {replicas}");
                ctx.recorder
                    .record(d, EventType::Normal, "ScalingReplicaSet", &message)
                    .await;
            }
            Ok((Some(created), true))
        }
        Err(kube::Error::Api(s)) if s.code == 409 => {
            // A ReplicaSet of that name exists with another template or owner:
            // bump the collision count so the next pass hashes differently.
            let current = api.get(&name).await?;
            let ours = controller_of(&current.metadata)
                .is_some_and(|o| Some(&o.uid) == d.metadata.uid.as_ref());
            let same = current
                .spec
                .as_ref()
                .and_then(|s| s.template.as_ref())
                .map(without_hash)
                .as_ref()
                == Some(template);
            if ours && same {
                return Ok((Some(current), false));
            }
            let deployments: Api<Deployment> =
                Api::namespaced(ctx.client.clone(), &d.namespace().unwrap_or_default());
            let patch =
                serde_json::json!({"status": {"collisionCount": collision_count.unwrap_or(0) + 1}});
            deployments
                .patch_status(
                    &d.name_any(),
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await?;
            Err(ReconcileError::Invalid(
                d.name_any(),
                format!("hash collision on replica set {name}"),
            ))
        }
        Err(e) => Err(e.into()),
    }
}

/// Deletes old, fully scaled-down ReplicaSets beyond `revisionHistoryLimit`.
async fn cleanup(d: &Deployment, old: &[ReplicaSet], ctx: &Context) -> Result<(), ReconcileError> {
    let limit = d
        .spec
        .as_ref()
        .and_then(|s| s.revision_history_limit)
        .unwrap_or(10)
        .max(0) as usize;
    let mut idle: Vec<&ReplicaSet> = old
        .iter()
        .filter(|rs| rs.metadata.deletion_timestamp.is_none())
        .filter(|rs| counts(rs).desired == 0 && counts(rs).current == 0)
        .filter(|rs| {
            rs.status.as_ref().and_then(|s| s.observed_generation) >= rs.metadata.generation
        })
        .collect();
    if idle.len() <= limit {
        return Ok(());
    }
    idle.sort_by_key(|rs| revision_of(rs));
    let api: Api<ReplicaSet> =
        Api::namespaced(ctx.client.clone(), &d.namespace().unwrap_or_default());
    for rs in &idle[..idle.len() - limit] {
        match api
            .delete(&rs.name_any(), &DeleteParams::background())
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Moves the rollout one step; returns whether a ReplicaSet was created.
async fn rollout_step(
    d: &Deployment,
    owned: &[ReplicaSet],
    surge: i32,
    unavailable: i32,
    ctx: &Context,
) -> Result<(Option<ReplicaSet>, bool), ReconcileError> {
    let spec = d.spec.clone().unwrap_or_default();
    let replicas = spec.replicas.unwrap_or(1);
    let recreate = spec.strategy.as_ref().and_then(|s| s.type_.as_deref()) == Some("Recreate");
    let (new, _) = new_replicaset(d, owned, None, surge, ctx).await?;
    let new_name = new.as_ref().map(|rs| rs.name_any());
    let mut old: Vec<&ReplicaSet> = owned
        .iter()
        .filter(|rs| Some(rs.name_any()) != new_name)
        .collect();
    old.sort_by_key(|rs| age(rs));
    // Paused, or resized since the ReplicaSets were last scaled: spread the
    // size over them (upstream's `sync`) rather than move the rollout.
    let paused = spec.paused == Some(true);
    let mut all: Vec<&ReplicaSet> = old.iter().copied().chain(new.as_ref()).collect();
    all.sort_by_key(|rs| age(rs));
    let sizes: Vec<Sized> = all.iter().map(|rs| sized(rs)).collect();
    if paused || is_scaling_event(replicas, &sizes) {
        let target = Target {
            replicas,
            max_surge: surge,
            rolling: !recreate,
            status_replicas: d.status.as_ref().and_then(|s| s.replicas).unwrap_or(0),
        };
        let new_index = all.iter().position(|rs| Some(rs.name_any()) == new_name);
        let plan = proportional_sizes(&target, &sizes, new_index);
        for (i, n) in &plan {
            scale(d, all[*i], *n, surge, ctx).await?;
        }
        if paused || !plan.is_empty() {
            return Ok((new, false));
        }
    }
    if recreate {
        for rs in &old {
            scale(d, rs, 0, 0, ctx).await?;
        }
        if old
            .iter()
            .any(|rs| counts(rs).current > 0 || counts(rs).desired > 0)
        {
            return Ok((new, false));
        }
        return match new {
            Some(new) => {
                scale(d, &new, replicas, 0, ctx).await?;
                Ok((Some(new), false))
            }
            None => new_replicaset(d, owned, Some(replicas), 0, ctx).await,
        };
    }
    let new = match new {
        Some(new) => new,
        None => {
            // Created within the surge, like upstream's NewRSNewReplicas.
            let all: i32 = old
                .iter()
                .map(|rs| counts(rs).desired.max(counts(rs).current))
                .sum();
            let start = if old.is_empty() {
                replicas
            } else {
                (replicas + surge - all).clamp(0, replicas)
            };
            return new_replicaset(d, owned, Some(start), surge, ctx).await;
        }
    };
    let old_counts: Vec<Counts> = old.iter().map(|rs| counts(rs)).collect();
    match rolling_step(replicas, surge, unavailable, counts(&new), &old_counts) {
        Step::ScaleNew(n) => scale(d, &new, n, surge, ctx).await?,
        Step::ScaleOld(changes) => {
            for (i, n) in changes {
                scale(d, old[i], n, surge, ctx).await?;
            }
        }
        Step::Wait => scale(d, &new, counts(&new).desired, surge, ctx).await?,
    }
    Ok((Some(new), false))
}

async fn reconcile(d: Arc<Deployment>, ctx: Arc<Context>) -> Result<Action, ReconcileError> {
    let span = propagation::object_span(
        "deployment-controller",
        "sync",
        &d.name_any(),
        d.metadata.annotations.as_ref(),
    );
    sync(d, ctx).instrument(span).await
}

/// One reconcile pass of a Deployment.
async fn sync(d: Arc<Deployment>, ctx: Arc<Context>) -> Result<Action, ReconcileError> {
    ctx.replicasets
        .ready()
        .await
        .map_err(|_| ReconcileError::CacheClosed)?;
    let spec = d.spec.clone().unwrap_or_default();
    let replicas = spec.replicas.unwrap_or(1);
    let rolling = spec
        .strategy
        .as_ref()
        .and_then(|s| s.rolling_update.as_ref());
    let recreate = spec.strategy.as_ref().and_then(|s| s.type_.as_deref()) == Some("Recreate");
    let (surge, unavailable) = if recreate {
        (0, 0)
    } else {
        resolve_fenceposts(
            rolling.and_then(|r| r.max_surge.as_ref()),
            rolling.and_then(|r| r.max_unavailable.as_ref()),
            replicas,
        )
        .map_err(|e| ReconcileError::Invalid(d.name_any(), e))?
    };
    let owned = claim_replicasets(&d, &ctx).await?;
    let (new, created) = if d.metadata.deletion_timestamp.is_some() {
        let (new, _) = new_replicaset(&d, &owned, None, surge, &ctx)
            .await
            .unwrap_or((None, false));
        (new, false)
    } else {
        rollout_step(&d, &owned, surge, unavailable, &ctx).await?
    };
    // The Deployment carries its current revision too (kubectl's undo patches that annotation).
    if let Some(revision) = new.as_ref().map(revision_of).filter(|r| *r > 0) {
        let revision = revision.to_string();
        if d.annotations().get(REVISION) != Some(&revision)
            && d.metadata.deletion_timestamp.is_none()
        {
            let api: Api<Deployment> =
                Api::namespaced(ctx.client.clone(), &d.namespace().unwrap_or_default());
            let patch = serde_json::json!({"metadata": {"annotations": {REVISION: revision}}});
            api.patch(
                &d.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await?;
        }
    }
    // Re-read what this pass wrote so the status reflects it.
    let new_name = new.as_ref().map(|rs| rs.name_any());
    let mut all: Vec<ReplicaSet> = owned
        .iter()
        .filter(|rs| Some(rs.name_any()) != new_name)
        .cloned()
        .collect();
    all.extend(new.clone());
    if d.metadata.deletion_timestamp.is_none() && spec.paused != Some(true) {
        let old: Vec<ReplicaSet> = all
            .iter()
            .filter(|rs| Some(rs.name_any()) != new_name)
            .cloned()
            .collect();
        cleanup(&d, &old, &ctx).await?;
    }
    let (status, recheck) = compute_status(&d, new.as_ref(), &all, unavailable, created);
    if d.status.as_ref() != Some(&status) {
        let api: Api<Deployment> =
            Api::namespaced(ctx.client.clone(), &d.namespace().unwrap_or_default());
        let patch = serde_json::json!({"status": status});
        match api
            .patch_status(
                &d.name_any(),
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
    Ok(match recheck {
        Some(after) => Action::requeue(after),
        None => Action::await_change(),
    })
}

fn error_policy(d: Arc<Deployment>, error: &ReconcileError, _ctx: Arc<Context>) -> Action {
    tracing::warn!(deployment = %d.name_any(), %error, "deployment reconcile failed");
    Action::requeue(Duration::from_secs(1))
}

/// The Deployments a ReplicaSet event should wake: its controller, or for an
/// orphan every Deployment whose selector matches it.
fn deployments_for_replicaset(
    rs: &ReplicaSet,
    deployments: &Store<Deployment>,
) -> Vec<ObjectRef<Deployment>> {
    owners_to_wake(&rs.metadata, deployments, |d| {
        d.spec.as_ref().map(|s| &s.selector)
    })
}

type ReconcileFuture = Pin<Box<dyn Future<Output = Result<Action, ReconcileError>> + Send>>;

/// Runs the Deployment controller until `cancel` fires.
pub async fn run(
    client: kube::Client,
    informers: Informers,
    cancel: CancellationToken,
) -> Result<(), ControllerError> {
    let (deployments, deployment_events) = informers.watch::<Deployment>();
    let (replicasets, rs_events) = informers.watch::<ReplicaSet>();
    let queue = stream::select(
        deployment_events
            .map_ok(|d| vec![ObjectRef::from_obj(&*d)])
            .boxed(),
        rs_events
            .map_ok({
                let deployments = deployments.clone();
                move |rs| deployments_for_replicaset(&rs, &deployments)
            })
            .boxed(),
    )
    .map_ok(|refs| stream::iter(refs.into_iter().map(Ok::<_, watcher::Error>)))
    .try_flatten();
    let context = Arc::new(Context {
        recorder: Recorder::new(client.clone(), "deployment-controller"),
        client,
        replicasets,
    });
    workqueue::named("deployment")
        .applier(
            |d, ctx| -> ReconcileFuture { Box::pin(reconcile(d, ctx)) },
            error_policy,
            context,
            deployments.store(),
            queue,
            Config::default(),
        )
        .take_until(cancel.cancelled())
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "deployment controller event");
            }
        })
        .await;
    Ok(())
}
