//! The pool loop: keeps each NodePool's number of NodeClaims at its desired
//! size (creating claims, or deleting the emptiest), terminates machines
//! that have no claim, writes the pool's status, and on deletion removes
//! every claim before letting the pool go.

use std::sync::Arc;

use berth_api::nodeclaim::NodeClaim;
use berth_api::nodepool::{NodePool, POOL_LABEL};
use berth_observability::events::EventType;
use berth_observability::workqueue::RunWithWorkqueue;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{watcher, Controller};
use kube::{Api, ResourceExt};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::capacity::{resolve, set_condition, Resolved};
use crate::claim::{new_claim_with, node_name, replaces, READY};
use crate::conditions;
use crate::controller::{add_finalizer, remove_finalizer, Context, ReconcileError};
use crate::plan::{desired_replicas, evictable_pods, plan, ClaimView};
use crate::provider::{MachineProvider, ProviderError};
use crate::status::pool_status;

/// The finalizer that keeps a pool until its claims (and machines) are gone.
pub const POOL_FINALIZER: &str = "berth.dev/nodepool";

/// Runs the pool loop until `cancel` fires.
pub async fn run(ctx: Arc<Context>, cancel: CancellationToken) {
    let client = ctx.client.clone();
    let pools: Api<NodePool> = Api::all(client.clone());
    let claims: Api<NodeClaim> = Api::all(client.clone());
    let nodes: Api<Node> = Api::all(client);
    Controller::new(pools, watcher::Config::default())
        .owns(claims, watcher::Config::default())
        .watches(
            nodes,
            watcher::Config::default().labels(POOL_LABEL),
            |node: Node| {
                node.labels()
                    .get(POOL_LABEL)
                    .map(|pool| ObjectRef::<NodePool>::new(pool))
            },
        )
        .graceful_shutdown_on(async move { cancel.cancelled().await })
        .run_with_workqueue("nodepool", reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "nodepool reconcile failed");
            }
        })
        .await;
}

fn error_policy(pool: Arc<NodePool>, error: &ReconcileError, ctx: Arc<Context>) -> Action {
    tracing::warn!(pool = %pool.name_any(), %error, "reconciling the pool failed");
    Action::requeue(ctx.config.busy_requeue)
}

#[tracing::instrument(skip_all, fields(pool = %pool.name_any()))]
async fn reconcile(pool: Arc<NodePool>, ctx: Arc<Context>) -> Result<Action, ReconcileError> {
    let name = pool.name_any();
    let pools: Api<NodePool> = Api::all(ctx.client.clone());
    let claims_api: Api<NodeClaim> = Api::all(ctx.client.clone());
    let claims = claims_api
        .list(&ListParams::default().labels(&format!("{POOL_LABEL}={name}")))
        .await?
        .items;
    if pool.metadata.deletion_timestamp.is_some() {
        return finalize(&pools, &claims_api, &pool, &claims, &ctx).await;
    }
    add_finalizer(&pools, pool.as_ref(), POOL_FINALIZER).await?;
    let Some(provider) = ctx.providers.get(pool.spec.provider_name()) else {
        let message = format!(
            "provider {:?} is not configured in this controller",
            pool.spec.provider_name()
        );
        ctx.recorder
            .record(
                pool.as_ref(),
                EventType::Warning,
                "ProviderNotConfigured",
                &message,
            )
            .await;
        return Ok(Action::requeue(ctx.config.idle_requeue));
    };

    for machine in provider.list(&name).await? {
        if !claims.iter().any(|c| c.name_any() == machine.claim) {
            provider.terminate(&machine.provider_id).await?;
            let message = format!(
                "Terminated machine {} of nodeclaim {}, which no longer exists",
                machine.provider_id, machine.claim
            );
            ctx.recorder
                .record(pool.as_ref(), EventType::Normal, "Terminated", &message)
                .await;
        }
    }

    let pods: Api<Pod> = Api::all(ctx.client.clone());
    let pods = pods.list(&ListParams::default()).await?.items;
    let views: Vec<ClaimView> = claims.iter().map(|c| view(c, &claims, &pods)).collect();
    let resolved = resolve_reporting(provider.as_ref(), &pool, &ctx).await;
    let per_machine = resolved
        .as_ref()
        .map(Resolved::capacity)
        .unwrap_or_default();
    let live = views.iter().filter(|v| v.counts()).count();
    let desired = desired_replicas(&pool.spec, &per_machine, live);
    let step = plan(desired, &views);

    let mut created = Vec::new();
    for _ in 0..step.create {
        let made = claims_api
            .create(
                &PostParams::default(),
                &new_claim_with(&pool, per_machine.clone()),
            )
            .await?;
        created.push(made);
    }
    if !created.is_empty() {
        let names: Vec<String> = created.iter().map(ResourceExt::name_any).collect();
        let message = format!(
            "Scaled up to {desired}: created nodeclaims {}",
            names.join(", ")
        );
        ctx.recorder
            .record(pool.as_ref(), EventType::Normal, "ScaledUp", &message)
            .await;
    }
    for claim in &step.remove {
        match claims_api.delete(claim, &DeleteParams::background()).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
        let pods = views
            .iter()
            .find(|v| &v.name == claim)
            .map_or(0, |v| v.pods);
        let message =
            format!("Scaled down to {desired}: removing nodeclaim {claim} ({pods} pods to evict)");
        ctx.recorder
            .record(pool.as_ref(), EventType::Normal, "ScaledDown", &message)
            .await;
    }

    let live: Vec<&NodeClaim> = claims
        .iter()
        .filter(|c| c.metadata.deletion_timestamp.is_none())
        .filter(|c| !step.remove.contains(&c.name_any()))
        .chain(created.iter())
        .collect();
    let now = jiff::Timestamp::now();
    let mut status = pool_status(&pool, &live, desired, now);
    set_condition(&mut status.conditions, &resolved, now);
    let settled = conditions::is_true(&status.conditions, "Ready")
        && claims
            .iter()
            .all(|c| c.metadata.deletion_timestamp.is_none());
    if pool.status.as_ref() != Some(&status) {
        pools
            .patch_status(
                &name,
                &PatchParams::default(),
                &Patch::Merge(json!({ "status": status })),
            )
            .await?;
    }
    Ok(Action::requeue(if settled {
        ctx.config.idle_requeue
    } else {
        ctx.config.busy_requeue
    }))
}

/// `pool`'s machine capacity, with a Warning event on the pool when its
/// provider cannot tell what a machine of its template has.
async fn resolve_reporting(
    provider: &dyn MachineProvider,
    pool: &NodePool,
    ctx: &Context,
) -> Result<Resolved, ProviderError> {
    let resolved = resolve(provider, pool).await;
    if let Err(e) = &resolved {
        ctx.recorder
            .record(pool, EventType::Warning, "CapacityUnknown", &e.to_string())
            .await;
    }
    resolved
}

/// What the planner needs of a claim: its node's readiness and pods, and
/// whether it replaces one of the pool's `claims` that is still live.
fn view(claim: &NodeClaim, claims: &[NodeClaim], pods: &[Pod]) -> ClaimView {
    let status = claim.status.clone().unwrap_or_default();
    let node = node_name(claim);
    let replacing = replaces(claim).is_some_and(|old| {
        claims
            .iter()
            .any(|c| c.name_any() == old && c.metadata.deletion_timestamp.is_none())
    });
    ClaimView {
        name: claim.name_any(),
        deleting: claim.metadata.deletion_timestamp.is_some(),
        replacing,
        ready: conditions::is_true(&status.conditions, READY),
        pods: evictable_pods(pods, &node).len(),
        created: claim
            .metadata
            .creation_timestamp
            .as_ref()
            .map_or(0, |t| t.0.as_second()),
    }
}

/// A pool being deleted: delete its claims, and let it go once they are gone.
async fn finalize(
    pools: &Api<NodePool>,
    claims_api: &Api<NodeClaim>,
    pool: &NodePool,
    claims: &[NodeClaim],
    ctx: &Context,
) -> Result<Action, ReconcileError> {
    if claims.is_empty() {
        remove_finalizer(pools, pool, POOL_FINALIZER).await?;
        return Ok(Action::await_change());
    }
    for claim in claims
        .iter()
        .filter(|c| c.metadata.deletion_timestamp.is_none())
    {
        match claims_api
            .delete(&claim.name_any(), &DeleteParams::background())
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(Action::requeue(ctx.config.busy_requeue))
}
