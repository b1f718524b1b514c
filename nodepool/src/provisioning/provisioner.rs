//! The provisioning loop: watches Pods (and NodePools), and when pods fail
//! scheduling for want of room, waits for the burst to settle (a batch
//! window, [`super::batch`]), decides with [`super::binpack::decide`] and creates the
//! NodeClaims, with Events on the pools and the pods. Claims are read from
//! the API at each decision, so the claims the last decision created always
//! count as capacity coming.

use berth_api::nodeclaim::NodeClaim;
use berth_api::nodepool::NodePool;
use berth_observability::events::EventType;
use futures::{Stream, StreamExt};
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{ListParams, PostParams};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, ResourceExt};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

use super::batch::Batcher;
use super::binpack::{decide, PendingPod};
use super::inflight::{candidates, existing, reserve_daemons};
use crate::capacity::{resolve_all, template_capacity};
use crate::claim::new_claim_with;
use crate::controller::{Context, ReconcileError};

/// Runs the loop until `cancel` fires.
pub async fn run(ctx: Arc<Context>, cancel: CancellationToken) {
    let (store, writer) = reflector::store();
    let batcher = Arc::new(Batcher::default());
    let pods = watcher(
        Api::<Pod>::all(ctx.client.clone()),
        watcher::Config::default(),
    )
    .default_backoff()
    .reflect(writer)
    .applied_objects();
    let pools = watcher(
        Api::<NodePool>::all(ctx.client.clone()),
        watcher::Config::default(),
    )
    .default_backoff()
    .applied_objects();
    let pod_batcher = Arc::clone(&batcher);
    let watch_pods = drive(pods, move |pod: &Pod| {
        if unschedulable(pod) {
            pod_batcher.trigger(&format!("pod/{}", pod.uid().unwrap_or_default()));
        }
    });
    // Only a pool's spec matters (its status changes with every node).
    let pool_batcher = Arc::clone(&batcher);
    let mut generations: HashMap<String, Option<i64>> = HashMap::new();
    let watch_pools = drive(pools, move |pool: &NodePool| {
        let generation = pool.metadata.generation;
        if generations.insert(pool.name_any(), generation) != Some(generation) {
            pool_batcher.trigger(&format!("nodepool/{}/{generation:?}", pool.name_any()));
        }
    });
    tokio::select! {
        () = cancel.cancelled() => {}
        () = watch_pods => {}
        () = watch_pools => {}
        () = decide_loop(&ctx, &store, &batcher) => {}
    }
}

/// Consumes a watch stream, calling `on_change` for each object applied.
async fn drive<K, S>(stream: S, mut on_change: impl FnMut(&K))
where
    S: Stream<Item = Result<K, watcher::Error>>,
{
    let mut stream = std::pin::pin!(stream);
    while let Some(item) = stream.next().await {
        match item {
            Ok(object) => on_change(&object),
            Err(e) => tracing::debug!(error = %e, "provisioner watch error"),
        }
    }
}

/// Waits for a reason to look (a pod failed scheduling, a pool changed, or
/// the idle period passed), lets the burst settle, then decides.
async fn decide_loop(ctx: &Context, store: &Store<Pod>, batcher: &Batcher) {
    if store.wait_until_ready().await.is_err() {
        return;
    }
    let mut memo = Memo::default();
    let mut retry = false;
    loop {
        let requeue = if retry {
            ctx.config.busy_requeue
        } else {
            ctx.config.idle_requeue
        };
        batcher
            .next(requeue, ctx.config.batch_idle, ctx.config.batch_max)
            .await;
        retry = match provision(ctx, store, &mut memo).await {
            Ok(()) => false,
            Err(e) => {
                tracing::warn!(error = %e, "provisioning failed; trying again");
                true
            }
        };
    }
}

/// Whether the scheduler found no room for `pod`: unbound, not being
/// deleted, not a DaemonSet's (those follow nodes, never lead them), and
/// `PodScheduled=False` with reason `Unschedulable`.
pub fn unschedulable(pod: &Pod) -> bool {
    let bound = pod
        .spec
        .as_ref()
        .and_then(|s| s.node_name.as_ref())
        .is_some();
    let daemon = pod
        .owner_references()
        .iter()
        .any(|o| o.controller == Some(true) && o.kind == "DaemonSet");
    let status = pod.status.as_ref();
    let pending = status
        .and_then(|s| s.phase.as_deref())
        .is_none_or(|p| p == "Pending");
    let refused = status
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .any(|c| {
            c.type_ == "PodScheduled"
                && c.status == "False"
                && c.reason.as_deref() == Some("Unschedulable")
        });
    !bound && !daemon && pending && refused && pod.metadata.deletion_timestamp.is_none()
}

/// What was last said about each pod and pool, so an unchanged decision
/// records no new Event.
#[derive(Default)]
struct Memo {
    said: HashMap<String, String>,
}

impl Memo {
    /// Whether `message` is news for `key` (and remembers it).
    fn news(&mut self, key: &str, message: &str) -> bool {
        self.said
            .insert(key.to_owned(), message.to_owned())
            .as_deref()
            != Some(message)
    }
}

/// One decision: the pending pods, the capacity coming, the claims to create.
async fn provision(
    ctx: &Context,
    store: &Store<Pod>,
    memo: &mut Memo,
) -> Result<(), ReconcileError> {
    let all = store.state();
    let pending: BTreeMap<String, Arc<Pod>> = all
        .iter()
        .filter(|p| unschedulable(p))
        .map(|p| {
            (
                format!("{}/{}", p.namespace().unwrap_or_default(), p.name_any()),
                Arc::clone(p),
            )
        })
        .collect();
    memo.said
        .retain(|k, _| k.starts_with("nodepool/") || pending.contains_key(k));
    if pending.is_empty() {
        return Ok(());
    }
    let pools = Api::<NodePool>::all(ctx.client.clone())
        .list(&ListParams::default())
        .await?
        .items;
    let claims_api = Api::<NodeClaim>::all(ctx.client.clone());
    let claims = claims_api.list(&ListParams::default()).await?.items;
    let daemonsets = Api::<DaemonSet>::all(ctx.client.clone())
        .list(&ListParams::default())
        .await?
        .items;
    let planned = resolve_all(&ctx.providers, &pools).await;
    let mut offered = candidates(&planned, &claims);
    reserve_daemons(&mut offered, &daemonsets);
    let views: Vec<PendingPod> = pending.values().map(|p| PendingPod::of(p)).collect();
    let decision = decide(&views, &existing(&claims, &all), &offered);

    let mut nominated = decision.nominated;
    let mut scaled: BTreeMap<String, (Vec<String>, usize)> = BTreeMap::new();
    for launch in decision.launches {
        let (Some(pool), Some(resolved)) = (
            pools.iter().find(|p| p.name_any() == launch.pool),
            planned.iter().find(|p| p.name_any() == launch.pool),
        ) else {
            continue;
        };
        let resources = template_capacity(resolved);
        let created = claims_api
            .create(&PostParams::default(), &new_claim_with(pool, resources))
            .await?;
        let entry = scaled.entry(launch.pool).or_default();
        entry.0.push(created.name_any());
        entry.1 += launch.pods.len();
        nominated.extend(launch.pods.into_iter().map(|p| (p, created.name_any())));
    }
    for (pool, (claims, pods)) in &scaled {
        tracing::info!(%pool, ?claims, pods, "scaled up for pending pods");
        let message = format!(
            "created {} nodeclaim(s) for {pods} pending pod(s): {}",
            claims.len(),
            claims.join(", ")
        );
        if let Some(pool) = pools.iter().find(|p| &p.name_any() == pool) {
            ctx.recorder
                .record(pool, EventType::Normal, "ScaledUp", &message)
                .await;
        }
    }
    for (key, claim) in nominated {
        let message = format!("Pod should schedule on nodeclaim/{claim}");
        if let Some(pod) = pending.get(&key).filter(|_| memo.news(&key, &message)) {
            ctx.recorder
                .record(pod.as_ref(), EventType::Normal, "Nominated", &message)
                .await;
        }
    }
    let mut refused: BTreeMap<String, usize> = BTreeMap::new();
    for (key, why) in decision.failed {
        if let Some(pod) = pending.get(&key).filter(|_| memo.news(&key, &why)) {
            ctx.recorder
                .record(pod.as_ref(), EventType::Warning, "FailedProvisioning", &why)
                .await;
        }
        *refused.entry(why).or_default() += 1;
    }
    for pool in &pools {
        let name = pool.name_any();
        let limited = format!("nodepool {name:?} is at its limit");
        let found = refused.iter().find(|(why, _)| why.contains(&limited));
        let key = format!("nodepool/{name}");
        match found {
            Some((why, count)) => {
                let message = format!("{count} pending pod(s) not provisioned: {why}");
                if memo.news(&key, &message) {
                    ctx.recorder
                        .record(pool, EventType::Warning, "FailedProvisioning", &message)
                        .await;
                }
            }
            None => {
                memo.said.remove(&key);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_pods_refused_for_room_are_provisioned_for() {
        let refused = json!({"phase": "Pending", "conditions": [
            {"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}]});
        let pod =
            |metadata: serde_json::Value, spec: serde_json::Value, status: serde_json::Value| {
                let mut metadata = metadata;
                metadata["name"] = json!("p");
                serde_json::from_value::<Pod>(
                    json!({"metadata": metadata, "spec": spec, "status": status}),
                )
                .unwrap()
            };
        let containers = json!({"containers": []});
        let cases = [
            (
                "refused",
                pod(json!({}), containers.clone(), refused.clone()),
                true,
            ),
            (
                "bound",
                pod(
                    json!({}),
                    json!({"containers": [], "nodeName": "n1"}),
                    refused.clone(),
                ),
                false,
            ),
            (
                "deleting",
                pod(
                    json!({"deletionTimestamp": "2026-01-01T00:00:00Z"}),
                    containers.clone(),
                    refused.clone(),
                ),
                false,
            ),
            (
                "a DaemonSet's",
                pod(
                    json!({"ownerReferences": [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "d", "uid": "u", "controller": true}]}),
                    containers.clone(),
                    refused.clone(),
                ),
                false,
            ),
            (
                "not yet tried",
                pod(json!({}), containers.clone(), json!({"phase": "Pending"})),
                false,
            ),
            (
                "refused for another reason",
                pod(
                    json!({}),
                    containers.clone(),
                    json!({"phase": "Pending", "conditions": [
                        {"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]}),
                ),
                false,
            ),
        ];
        for (name, pod, want) in cases {
            assert_eq!(unschedulable(&pod), want, "{name}");
        }
    }

    #[test]
    fn the_same_message_is_said_once() {
        let mut memo = Memo::default();
        assert!(memo.news("ns/p", "a"));
        assert!(!memo.news("ns/p", "a"));
        assert!(memo.news("ns/p", "b"));
        assert!(memo.news("ns/q", "b"));
    }
}
