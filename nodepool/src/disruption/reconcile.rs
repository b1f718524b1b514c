//! The disruption loop: every `busy_requeue` it reads pools, claims, nodes,
//! pods and PodDisruptionBudgets, marks each claim's disruption conditions,
//! and carries out [`decide`]'s steps with Events on the pool, the claim and
//! the node. Removal itself (cordon, drain through the Eviction API,
//! terminate) stays with the claim loop: this loop only deletes claims and
//! creates replacements.

use std::sync::Arc;

use berth_api::nodeclaim::NodeClaim;
use berth_api::nodepool::NodePool;
use berth_observability::events::EventType;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::blockers::blocker;
use super::decide::{decide, Action, ClaimFacts};
use super::drift::{drifted, expired};
use super::fit::{consolidation, room, Room};
use super::marks::{self, Marks};
use super::settings::Settings;
use crate::claim::{node_name, replacement, replaces, INITIALIZED, READY};
use crate::conditions;
use crate::controller::{Context, ReconcileError};
use crate::plan::evictable_pods;

/// Runs the disruption loop until `cancel` fires.
pub async fn run(ctx: Arc<Context>, cancel: CancellationToken) {
    let mut tick = tokio::time::interval(ctx.config.busy_requeue);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        if let Err(error) = pass(&ctx).await {
            tracing::warn!(%error, "disruption pass failed");
        }
    }
}

/// One read of everything a pass needs, shared by all pools.
struct World {
    claims: Vec<NodeClaim>,
    nodes: Vec<Node>,
    pods: Vec<Pod>,
    pdbs: Vec<PodDisruptionBudget>,
    /// Room on every node that takes pods and is not being removed.
    rooms: Vec<Room>,
}

async fn pass(ctx: &Context) -> Result<(), ReconcileError> {
    let client = &ctx.client;
    let all = ListParams::default();
    let pools = Api::<NodePool>::all(client.clone()).list(&all).await?.items;
    if pools.is_empty() {
        return Ok(());
    }
    let claims = Api::<NodeClaim>::all(client.clone())
        .list(&all)
        .await?
        .items;
    let nodes = Api::<Node>::all(client.clone()).list(&all).await?.items;
    let pods = Api::<Pod>::all(client.clone()).list(&all).await?.items;
    let pdbs = Api::<PodDisruptionBudget>::all(client.clone())
        .list(&all)
        .await?
        .items;
    let leaving: Vec<String> = claims
        .iter()
        .filter(|c| c.metadata.deletion_timestamp.is_some())
        .map(node_name)
        .collect();
    let rooms = nodes
        .iter()
        .filter(|n| !leaving.contains(&n.name_any()))
        .filter_map(|n| room(n, &pods))
        .collect();
    let mut world = World {
        claims,
        nodes,
        pods,
        pdbs,
        rooms,
    };
    for pool in pools
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
    {
        match pool_pass(ctx, pool, &world).await {
            // Pools looked at later must not count on room that is going away.
            Ok(leaving) => world.rooms.retain(|r| !leaving.contains(&r.node)),
            Err(error) => {
                tracing::warn!(pool = %pool.name_any(), %error, "disrupting the pool failed")
            }
        }
    }
    Ok(())
}

/// Marks and disrupts one pool's claims; returns the nodes it set leaving.
async fn pool_pass(
    ctx: &Context,
    pool: &NodePool,
    world: &World,
) -> Result<Vec<String>, ReconcileError> {
    let settings = match Settings::of(&pool.spec) {
        Ok(settings) => settings,
        Err(message) => {
            ctx.recorder
                .record(pool, EventType::Warning, "InvalidDisruption", &message)
                .await;
            return Ok(Vec::new());
        }
    };
    let name = pool.name_any();
    let claims: Vec<&NodeClaim> = world
        .claims
        .iter()
        .filter(|c| c.spec.pool == name)
        .collect();
    let now = Timestamp::now();
    let mut facts = Vec::with_capacity(claims.len());
    for claim in &claims {
        facts.push(observe(ctx, pool, &settings, claim, world, now).await?);
    }
    let actions = decide(&settings, &facts, now);
    let leaving = actions
        .iter()
        .filter_map(Action::leaving)
        .filter_map(|name| claims.iter().find(|c| c.name_any() == name))
        .map(|c| node_name(c))
        .collect();
    for action in actions {
        act(ctx, pool, &claims, world, action).await?;
    }
    Ok(leaving)
}

/// The facts of one claim, after writing its disruption conditions.
async fn observe(
    ctx: &Context,
    pool: &NodePool,
    settings: &Settings,
    claim: &NodeClaim,
    world: &World,
    now: Timestamp,
) -> Result<ClaimFacts, ReconcileError> {
    let status = claim.status.clone().unwrap_or_default();
    let node_name = node_name(claim);
    let node = world.nodes.iter().find(|n| n.name_any() == node_name);
    let pods = evictable_pods(&world.pods, &node_name);
    let deleting = claim.metadata.deletion_timestamp.is_some();
    let initialized = conditions::is_true(&status.conditions, INITIALIZED);
    let eligible = settings.consolidates() && initialized && !deleting && node.is_some();
    let consolidatable = eligible
        .then(|| {
            let elsewhere: Vec<Room> = world
                .rooms
                .iter()
                .filter(|r| r.node != node_name)
                .cloned()
                .collect();
            consolidation(settings.policy, &pods, &elsewhere)
        })
        .flatten();
    let marks = Marks {
        consolidatable,
        drifted: drifted(claim, pool),
        expired: expired(claim, settings.expire_after, now),
    };
    let mut current = status.conditions.clone();
    if !deleting && marks::apply(&mut current, marks, now) {
        let patch = json!({
            "metadata": {"resourceVersion": claim.resource_version()},
            "status": {"conditions": current},
        });
        let claims: Api<NodeClaim> = Api::all(ctx.client.clone());
        match claims
            .patch_status(
                &claim.name_any(),
                &PatchParams::default(),
                &Patch::Merge(patch),
            )
            .await
        {
            Ok(_) => {}
            // Changed meanwhile (the claim loop wrote its status): the next pass redoes it.
            Err(kube::Error::Api(s)) if s.code == 409 || s.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(ClaimFacts {
        name: claim.name_any(),
        deleting,
        initialized,
        ready: conditions::is_true(&status.conditions, READY),
        replaces: replaces(claim).map(str::to_owned),
        consolidatable: marks::consolidatable_since(&current),
        drifted: marks.drifted,
        expired: marks.expired,
        blocker: blocker(node, &pods, &world.pdbs),
    })
}

/// Carries out one step, with its Events.
async fn act(
    ctx: &Context,
    pool: &NodePool,
    claims: &[&NodeClaim],
    world: &World,
    action: Action,
) -> Result<(), ReconcileError> {
    let api: Api<NodeClaim> = Api::all(ctx.client.clone());
    let find = |name: &str| claims.iter().copied().find(|c| c.name_any() == name);
    match action {
        Action::Remove { claim, reason } => {
            delete(&api, &claim).await?;
            let message = format!(
                "Disrupting nodeclaim {claim}: {}; removing it",
                reason.as_str()
            );
            record(ctx, pool, find(&claim), "Disrupting", &message).await;
        }
        Action::Replace { claim, reason } => {
            let made = api
                .create(&PostParams::default(), &replacement(pool, &claim))
                .await?;
            let message = format!(
                "Disrupting nodeclaim {claim}: {}; replacing it with {}",
                reason.as_str(),
                made.name_any()
            );
            record(ctx, pool, find(&claim), "Disrupting", &message).await;
        }
        Action::Finish { old, replacement } => {
            delete(&api, &old).await?;
            let message = format!("Replaced nodeclaim {old} with {replacement}, which is Ready");
            record(ctx, pool, find(&old), "Replaced", &message).await;
        }
        Action::Blocked { claim, why } => {
            let found = find(&claim);
            let node = found.map(node_name);
            if let Some(node) = world.nodes.iter().find(|n| Some(n.name_any()) == node) {
                ctx.recorder
                    .record(node, EventType::Normal, "DisruptionBlocked", &why)
                    .await;
            }
            if let Some(found) = found {
                ctx.recorder
                    .record(found, EventType::Normal, "DisruptionBlocked", &why)
                    .await;
            }
        }
    }
    Ok(())
}

/// A Normal Event on the pool and, when it is still known, the claim.
async fn record(
    ctx: &Context,
    pool: &NodePool,
    claim: Option<&NodeClaim>,
    reason: &str,
    message: &str,
) {
    ctx.recorder
        .record(pool, EventType::Normal, reason, message)
        .await;
    if let Some(claim) = claim {
        ctx.recorder
            .record(claim, EventType::Normal, reason, message)
            .await;
    }
}

async fn delete(api: &Api<NodeClaim>, name: &str) -> Result<(), ReconcileError> {
    match api.delete(name, &DeleteParams::background()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}
