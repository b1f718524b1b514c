//! The claim loop: launches each NodeClaim's machine through its provider,
//! follows the Node it registers as (labels, taints, conditions, Events),
//! removes claims whose node never registers (the registration timeout),
//! replaces claims whose machine vanished, and on deletion drains the node,
//! terminates the machine and deletes the Node before the claim goes.

use std::sync::Arc;

use berth_api::nodeclaim::{NodeClaim, NodeClaimStatus, TERMINATION_FINALIZER};
use berth_api::nodepool::NODECLAIM_LABEL;
use berth_observability::events::EventType;
use berth_observability::workqueue::RunWithWorkqueue;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Node;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{watcher, Controller};
use kube::{Api, ResourceExt};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::claim::{node_name, node_patch, observe, INITIALIZED, READY, REGISTERED};
use crate::controller::{add_finalizer, remove_finalizer, Context, ReconcileError};
use crate::drain;
use crate::provider::{MachineProvider, ProviderError};
use crate::registration;

/// Runs the claim loop until `cancel` fires.
pub async fn run(ctx: Arc<Context>, cancel: CancellationToken) {
    let client = ctx.client.clone();
    let claims: Api<NodeClaim> = Api::all(client.clone());
    let nodes: Api<Node> = Api::all(client);
    Controller::new(claims, watcher::Config::default())
        .watches(
            nodes,
            watcher::Config::default().labels(NODECLAIM_LABEL),
            |node: Node| {
                node.labels()
                    .get(NODECLAIM_LABEL)
                    .map(|claim| ObjectRef::<NodeClaim>::new(claim))
            },
        )
        .graceful_shutdown_on(async move { cancel.cancelled().await })
        .run_with_workqueue("nodeclaim", reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "nodeclaim reconcile failed");
            }
        })
        .await;
}

fn error_policy(claim: Arc<NodeClaim>, error: &ReconcileError, ctx: Arc<Context>) -> Action {
    tracing::warn!(claim = %claim.name_any(), %error, "reconciling the nodeclaim failed");
    Action::requeue(ctx.config.busy_requeue)
}

#[tracing::instrument(skip_all, fields(claim = %claim.name_any()))]
async fn reconcile(claim: Arc<NodeClaim>, ctx: Arc<Context>) -> Result<Action, ReconcileError> {
    let claims: Api<NodeClaim> = Api::all(ctx.client.clone());
    let provider = ctx.providers.get(&claim.spec.provider).cloned();
    if claim.metadata.deletion_timestamp.is_some() {
        return terminate(&claims, &claim, provider.as_deref(), &ctx).await;
    }
    add_finalizer(&claims, claim.as_ref(), TERMINATION_FINALIZER).await?;
    let Some(provider) = provider else {
        let message = format!("provider {:?} is not configured", claim.spec.provider);
        ctx.recorder
            .record(claim.as_ref(), EventType::Warning, "FailedLaunch", &message)
            .await;
        return Ok(Action::requeue(ctx.config.idle_requeue));
    };
    let mut claim = claim.as_ref().clone();
    let status = claim.status.clone().unwrap_or_default();
    match &status.provider_id {
        None => match provider.launch(&claim).await {
            Ok(machine) => {
                let message = format!("Launched machine {}", machine.provider_id);
                let status = NodeClaimStatus {
                    provider_id: Some(machine.provider_id),
                    image_id: machine.image_id,
                    capacity: machine.capacity,
                    ..status.clone()
                };
                claim.status = Some(status);
                ctx.recorder
                    .record(&claim, EventType::Normal, "Launched", &message)
                    .await;
            }
            Err(e) => {
                ctx.recorder
                    .record(&claim, EventType::Warning, "FailedLaunch", &e.to_string())
                    .await;
                let after = match e {
                    ProviderError::Invalid { .. } | ProviderError::InvalidTemplate { .. } => {
                        ctx.config.idle_requeue
                    }
                    ProviderError::Transient { .. } => ctx.config.busy_requeue,
                };
                return Ok(Action::requeue(after));
            }
        },
        Some(id) => {
            if provider.describe(id).await?.is_none() {
                let message = format!("Machine {id} no longer exists; removing the nodeclaim");
                ctx.recorder
                    .record(&claim, EventType::Warning, "MachineNotFound", &message)
                    .await;
                claims
                    .delete(&claim.name_any(), &DeleteParams::background())
                    .await?;
                return Ok(Action::requeue(ctx.config.busy_requeue));
            }
        }
    }

    let nodes: Api<Node> = Api::all(ctx.client.clone());
    let node_name = node_name(&claim);
    let mut node = nodes.get_opt(&node_name).await?;
    if let (Some(found), Some(patch)) = (&node, node.as_ref().and_then(|n| node_patch(&claim, n))) {
        let patched = nodes
            .patch(
                &found.name_any(),
                &PatchParams::default(),
                &Patch::Merge(patch),
            )
            .await?;
        node = Some(patched);
    }
    let (observed, became) = observe(&claim, node.as_ref(), jiff::Timestamp::now());
    if claim.status.as_ref() != Some(&observed) || status.provider_id.is_none() {
        claims
            .patch_status(
                &claim.name_any(),
                &PatchParams::default(),
                &Patch::Merge(json!({ "status": observed })),
            )
            .await?;
    }
    if registration::overdue(
        &observed,
        jiff::Timestamp::now(),
        ctx.config.registration_timeout,
    ) {
        let message = format!(
            "Node of machine {} did not register within {}s of launch; removing the nodeclaim and its machine",
            observed.provider_id.as_deref().unwrap_or_default(),
            ctx.config.registration_timeout.as_secs()
        );
        ctx.recorder
            .record(&claim, EventType::Warning, "RegistrationTimeout", &message)
            .await;
        match claims
            .delete(&claim.name_any(), &DeleteParams::background())
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
        return Ok(Action::requeue(ctx.config.busy_requeue));
    }
    for condition in became {
        let (reason, message) = match condition {
            REGISTERED => (
                "Registered",
                format!("Node {node_name} registered with the cluster"),
            ),
            INITIALIZED => ("Initialized", format!("Node {node_name} initialized")),
            READY => ("Ready", format!("Node {node_name} is Ready")),
            _ => continue,
        };
        ctx.recorder
            .record(&claim, EventType::Normal, reason, &message)
            .await;
    }
    let ready = observed.conditions.iter().all(|c| c.status == "True");
    Ok(Action::requeue(if ready {
        ctx.config.idle_requeue
    } else {
        ctx.config.busy_requeue
    }))
}

/// A claim being deleted: cordon and drain its node (PDBs respected), then
/// terminate its machine, delete the Node and release the claim.
async fn terminate(
    claims: &Api<NodeClaim>,
    claim: &NodeClaim,
    provider: Option<&dyn MachineProvider>,
    ctx: &Context,
) -> Result<Action, ReconcileError> {
    if !claim
        .finalizers()
        .iter()
        .any(|f| f == TERMINATION_FINALIZER)
    {
        return Ok(Action::await_change());
    }
    let status = claim.status.clone().unwrap_or_default();
    let nodes: Api<Node> = Api::all(ctx.client.clone());
    let node_name = node_name(claim);
    if let Some(node) = nodes.get_opt(&node_name).await? {
        let progress = drain::step(&ctx.client, &node).await?;
        if progress.cordoned {
            let message = format!(
                "Cordoned node {node_name}; draining {} pods",
                progress.remaining
            );
            ctx.recorder
                .record(&node, EventType::Normal, "Draining", &message)
                .await;
            ctx.recorder
                .record(claim, EventType::Normal, "Draining", &message)
                .await;
        }
        for pod in &progress.evicted {
            let message = format!("Evicted pod {pod}");
            ctx.recorder
                .record(&node, EventType::Normal, "Evicted", &message)
                .await;
        }
        if !progress.blocked.is_empty() {
            let message = format!(
                "Cannot evict {} as it would violate a PodDisruptionBudget; retrying",
                progress.blocked.join(", ")
            );
            ctx.recorder
                .record(&node, EventType::Warning, "FailedDraining", &message)
                .await;
            ctx.recorder
                .record(claim, EventType::Warning, "FailedDraining", &message)
                .await;
        }
        if !progress.done() {
            return Ok(Action::requeue(ctx.config.busy_requeue));
        }
    }
    if let (Some(id), Some(provider)) = (&status.provider_id, provider) {
        provider.terminate(id).await?;
        let message = format!("Terminated machine {id}");
        ctx.recorder
            .record(claim, EventType::Normal, "Terminated", &message)
            .await;
    }
    match nodes.delete(&node_name, &DeleteParams::default()).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 404 => {}
        Err(e) => return Err(e.into()),
    }
    remove_finalizer(claims, claim, TERMINATION_FINALIZER).await?;
    Ok(Action::await_change())
}
