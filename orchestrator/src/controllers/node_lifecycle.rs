//! Node lifecycle (upstream's `nodelifecycle` controller with its taint
//! manager): a node whose Lease in `kube-node-lease` has not been renewed
//! within the grace period is marked Ready=Unknown and tainted
//! `node.kubernetes.io/unreachable`; a node reporting Ready=False is tainted
//! `node.kubernetes.io/not-ready`; the taints go when it is Ready again. Pods
//! on a node with a NoExecute taint they do not tolerate (or tolerate only for
//! `tolerationSeconds`, counted from the taint's `timeAdded`) are deleted so
//! their controllers replace them elsewhere.
//!
//! It is a periodic monitor over watch caches (upstream's nodeMonitorPeriod),
//! level-triggered: every pass recomputes from the Nodes, Leases and Pods, and
//! the API objects (condition, taints with `timeAdded`) are the only state, so
//! a restart changes nothing. It never acts before all three caches are full.

use std::time::Duration;

use futures::StreamExt;
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, NodeCondition, Pod, Taint, Toleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::ResourceExt;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::cache::Cache;
use super::informers::Informers;
use super::workload::{cached_watch, drain};
use super::ControllerError;
use crate::scheduler::plugins::tolerates;
use berth_observability::events::{EventType, Recorder};
use berth_observability::workqueue;

/// The taint on nodes whose heartbeats stopped.
pub const TAINT_UNREACHABLE: &str = "node.kubernetes.io/unreachable";
/// The taint on nodes that report Ready=False.
pub const TAINT_NOT_READY: &str = "node.kubernetes.io/not-ready";
/// Where node Leases live.
const NODE_LEASE_NAMESPACE: &str = "kube-node-lease";
/// How often every node is checked (upstream's `--node-monitor-period`, 5 s;
/// shorter here because a pass over cached objects is cheap).
const MONITOR_PERIOD: Duration = Duration::from_secs(1);
/// The message upstream writes on conditions it sets to Unknown.
const UNKNOWN_MESSAGE: &str = "Kubelet stopped posting node status.";

/// What the controller needs to know about time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeLifecycleConfig {
    /// How long a node may go without a heartbeat before it is Unknown
    /// (`--node-monitor-grace-period`).
    pub grace_period: Duration,
}

/// A node's health as this controller sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeHealth {
    /// Heartbeats are fresh and the node reports Ready=True: no taints.
    Ready,
    /// Heartbeats are fresh but the node reports Ready=False: `not-ready` taints.
    NotReady,
    /// Heartbeats stopped (or the node has not yet re-posted Ready after they
    /// did): `unreachable` taints.
    Unknown,
}

/// The node's health from its Ready condition status and its latest
/// heartbeat (Lease renewal or condition heartbeat, whichever is newer). None
/// while heartbeats are fresh but no Ready condition has been posted yet: then
/// the taints are left as they are.
pub fn node_health(
    ready_status: Option<&str>,
    last_heartbeat: Timestamp,
    now: Timestamp,
    grace: Duration,
) -> Option<NodeHealth> {
    let grace = SignedDuration::try_from(grace).unwrap_or(SignedDuration::MAX);
    if last_heartbeat.saturating_add(grace).ok()? < now {
        return Some(NodeHealth::Unknown);
    }
    match ready_status {
        Some("True") => Some(NodeHealth::Ready),
        Some("False") => Some(NodeHealth::NotReady),
        Some(_) => Some(NodeHealth::Unknown),
        None => None,
    }
}

/// `(key, effect)` of the taints this controller owns, and whether `health` wants each.
fn managed_taints(health: NodeHealth) -> [(&'static str, &'static str, bool); 4] {
    let unreachable = health == NodeHealth::Unknown;
    let not_ready = health == NodeHealth::NotReady;
    [
        (TAINT_UNREACHABLE, "NoExecute", unreachable),
        (TAINT_UNREACHABLE, "NoSchedule", unreachable),
        (TAINT_NOT_READY, "NoExecute", not_ready),
        (TAINT_NOT_READY, "NoSchedule", not_ready),
    ]
}

/// The node's taints as they should be for `health`, or None when they
/// already are. Taints of others are kept in place; a managed NoExecute taint
/// that stays keeps its `timeAdded` (eviction deadlines count from it).
pub fn desired_taints(current: &[Taint], health: NodeHealth, now: Timestamp) -> Option<Vec<Taint>> {
    let managed = managed_taints(health);
    let mut taints: Vec<Taint> = current
        .iter()
        .filter(|t| {
            managed
                .iter()
                .all(|(key, effect, wanted)| *wanted || !(t.key == *key && t.effect == *effect))
        })
        .cloned()
        .collect();
    for (key, effect, wanted) in managed {
        if wanted && !taints.iter().any(|t| t.key == key && t.effect == effect) {
            taints.push(Taint {
                key: key.to_owned(),
                effect: effect.to_owned(),
                time_added: (effect == "NoExecute").then_some(Time(now)),
                value: None,
            });
        }
    }
    (taints != current).then_some(taints)
}

/// What to do with a pod on a node with `taints`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Eviction {
    /// Every NoExecute taint is tolerated for good (or there is none).
    Keep,
    /// Delete the pod now.
    Now,
    /// Delete the pod at this time unless the taints go first.
    At(Timestamp),
}

/// The taint manager's decision: a NoExecute taint no toleration tolerates
/// evicts at once; one tolerated only with `tolerationSeconds` evicts that
/// long after the taint's `timeAdded` (the longest matching toleration wins
/// for a taint, the earliest deadline over all taints); negative seconds
/// count as zero, as upstream.
pub fn eviction(taints: &[Taint], tolerations: &[Toleration], now: Timestamp) -> Eviction {
    let mut deadline: Option<Timestamp> = None;
    for taint in taints.iter().filter(|t| t.effect == "NoExecute") {
        let matching: Vec<&Toleration> =
            tolerations.iter().filter(|t| tolerates(t, taint)).collect();
        if matching.is_empty() {
            return Eviction::Now;
        }
        if matching.iter().any(|t| t.toleration_seconds.is_none()) {
            continue;
        }
        let seconds = matching
            .iter()
            .filter_map(|t| t.toleration_seconds)
            .max()
            .unwrap_or(0)
            .max(0);
        let added = taint.time_added.as_ref().map_or(now, |t| t.0);
        let at = added
            .saturating_add(SignedDuration::from_secs(seconds))
            .unwrap_or(Timestamp::MAX);
        deadline = Some(deadline.map_or(at, |d| d.min(at)));
    }
    match deadline {
        None => Eviction::Keep,
        Some(at) if at <= now => Eviction::Now,
        Some(at) => Eviction::At(at),
    }
}

/// The node's Ready condition status, if posted.
fn ready_status(node: &Node) -> Option<&str> {
    ready_condition(node).map(|c| c.status.as_str())
}

fn ready_condition(node: &Node) -> Option<&NodeCondition> {
    node.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")
}

/// The newest sign of life: the Lease's renewTime, the Ready condition's
/// heartbeat, or (so nodes get a full grace period after this controller
/// starts, as upstream's probe timestamps do) `observed_since`.
fn last_heartbeat(node: &Node, lease: Option<&Lease>, observed_since: Timestamp) -> Timestamp {
    let renewed = lease
        .and_then(|l| l.spec.as_ref())
        .and_then(|s| s.renew_time.as_ref())
        .map(|t| t.0);
    let posted = ready_condition(node)
        .and_then(|c| c.last_heartbeat_time.as_ref())
        .map(|t| t.0);
    let created = node.metadata.creation_timestamp.as_ref().map(|t| t.0);
    [renewed, posted, created, Some(observed_since)]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or(observed_since)
}

/// Every condition of `node` set to Unknown, as upstream does when the
/// kubelet stops posting (heartbeat times kept, transition time now).
fn unknown_conditions(node: &Node, now: Timestamp) -> Vec<NodeCondition> {
    let mut conditions = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    if !conditions.iter().any(|c| c.type_ == "Ready") {
        conditions.push(NodeCondition {
            type_: "Ready".into(),
            ..Default::default()
        });
    }
    for condition in &mut conditions {
        if condition.status != "Unknown" {
            condition.status = "Unknown".into();
            condition.reason = Some("NodeStatusUnknown".into());
            condition.message = Some(UNKNOWN_MESSAGE.into());
            condition.last_transition_time = Some(Time(now));
        }
    }
    conditions
}

struct Context {
    client: kube::Client,
    nodes: Cache<Node>,
    leases: Cache<Lease>,
    pods: Cache<Pod>,
    recorder: Recorder,
    config: NodeLifecycleConfig,
    observed_since: Timestamp,
}

/// One pass over every node: condition, taints, then evictions.
async fn monitor(ctx: &Context) {
    let now = Timestamp::now();
    for node in ctx.nodes.state() {
        let name = node.name_any();
        let lease = ctx
            .leases
            .state()
            .into_iter()
            .find(|l| l.metadata.name.as_deref() == Some(name.as_str()));
        let heartbeat = last_heartbeat(&node, lease.as_deref(), ctx.observed_since);
        let Some(health) =
            node_health(ready_status(&node), heartbeat, now, ctx.config.grace_period)
        else {
            continue;
        };
        let _worker = workqueue::named("node_lifecycle_controller").start(&name);
        if let Err(e) = reconcile_node(ctx, &node, health, now).await {
            tracing::warn!(node = %name, error = %e, "node lifecycle update failed; retrying next pass");
        }
        let taints = node
            .spec
            .as_ref()
            .and_then(|s| s.taints.clone())
            .unwrap_or_default();
        if taints.iter().any(|t| t.effect == "NoExecute") {
            evict_pods(ctx, &name, &taints, health == NodeHealth::Unknown, now).await;
        }
    }
}

/// Writes the Unknown condition and the taints `health` calls for.
async fn reconcile_node(
    ctx: &Context,
    node: &Node,
    health: NodeHealth,
    now: Timestamp,
) -> Result<(), kube::Error> {
    let name = node.name_any();
    let api: Api<Node> = Api::all(ctx.client.clone());
    if health == NodeHealth::Unknown && ready_status(node) != Some("Unknown") {
        let patch = json!({
            "metadata": { "resourceVersion": node.resource_version() },
            "status": { "conditions": unknown_conditions(node, now) },
        });
        api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        tracing::info!(node = %name, "node stopped posting status; Ready=Unknown");
        ctx.recorder
            .record(
                node,
                EventType::Normal,
                "NodeNotReady",
                &format!("Node {name} status is now: NodeNotReady"),
            )
            .await;
        // The node's resourceVersion moved on: taints are written next pass.
        return Ok(());
    }
    let current = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default();
    if let Some(taints) = desired_taints(&current, health, now) {
        let patch = json!({
            "metadata": { "resourceVersion": node.resource_version() },
            "spec": { "taints": taints },
        });
        api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        tracing::info!(node = %name, ?health, "node taints updated");
        if health == NodeHealth::NotReady {
            ctx.recorder
                .record(
                    node,
                    EventType::Normal,
                    "NodeNotReady",
                    &format!("Node {name} status is now: NodeNotReady"),
                )
                .await;
        }
    }
    Ok(())
}

/// Deletes the pods on `node` whose eviction time has come. Upstream's taint
/// manager deletes with the pod's own grace period, and on a lost node such
/// pods stay Terminating until the kubelet returns, the Node is deleted, or it
/// is tainted `node.kubernetes.io/out-of-service` (then PodGC force-deletes
/// them). On an unreachable node no agent is left to finish a graceful
/// deletion, so berth deletes with gracePeriodSeconds 0 at once (and finishes
/// pods already Terminating there), treating a lost Lease as out-of-service;
/// on a NotReady node (agent alive) the deletion is an ordinary graceful one.
async fn evict_pods(
    ctx: &Context,
    node: &str,
    taints: &[Taint],
    unreachable: bool,
    now: Timestamp,
) {
    for pod in ctx
        .pods
        .state()
        .into_iter()
        .filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node))
    {
        let terminating = pod.metadata.deletion_timestamp.is_some();
        if terminating && !unreachable {
            continue;
        }
        let tolerations = pod
            .spec
            .as_ref()
            .and_then(|s| s.tolerations.clone())
            .unwrap_or_default();
        if eviction(taints, &tolerations, now) != Eviction::Now {
            continue;
        }
        let namespace = pod.namespace().unwrap_or_default();
        let name = pod.name_any();
        let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &namespace);
        let params = DeleteParams {
            grace_period_seconds: unreachable.then_some(0),
            preconditions: Some(kube::api::Preconditions {
                uid: pod.uid(),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        match api.delete(&name, &params).await {
            Ok(_) => {
                tracing::info!(pod = %format!("{namespace}/{name}"), node, "evicted by taint manager");
                if !terminating {
                    ctx.recorder
                        .record(
                            pod.as_ref(),
                            EventType::Normal,
                            "TaintManagerEviction",
                            &format!("Marking for deletion Pod {namespace}/{name}"),
                        )
                        .await;
                }
            }
            Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => {}
            Err(e) => {
                tracing::warn!(pod = %name, error = %e, "eviction failed; retrying next pass")
            }
        }
    }
}

/// Runs the node lifecycle controller until `cancel` fires.
pub async fn run(
    client: kube::Client,
    informers: Informers,
    config: NodeLifecycleConfig,
    cancel: CancellationToken,
) -> Result<(), ControllerError> {
    let nodes = informers.cache::<Node>();
    let (leases, lease_events) = cached_watch(Api::<Lease>::namespaced(
        client.clone(),
        NODE_LEASE_NAMESPACE,
    ));
    let pods = informers.cache::<Pod>();
    let context = Context {
        recorder: Recorder::new(client.clone(), "node-controller"),
        client,
        nodes,
        leases,
        pods,
        config,
        observed_since: Timestamp::now(),
    };
    let watches = drain(lease_events.boxed());
    let monitor_loop = async {
        let ready = async {
            context.nodes.ready().await.is_ok()
                && context.leases.ready().await.is_ok()
                && context.pods.ready().await.is_ok()
        };
        if !ready.await {
            return;
        }
        let mut ticker = tokio::time::interval(MONITOR_PERIOD);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            monitor(&context).await;
        }
    };
    tokio::select! {
        _ = cancel.cancelled() => {}
        _ = watches => {}
        _ = monitor_loop => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + seconds).unwrap()
    }

    fn taint(key: &str, effect: &str, added: Option<i64>) -> Taint {
        Taint {
            key: key.into(),
            effect: effect.into(),
            time_added: added.map(|s| Time(at(s))),
            value: None,
        }
    }

    fn toleration(key: &str, seconds: Option<i64>) -> Toleration {
        Toleration {
            key: (!key.is_empty()).then(|| key.into()),
            operator: Some("Exists".into()),
            effect: Some("NoExecute".into()),
            toleration_seconds: seconds,
            value: None,
        }
    }

    #[test]
    fn lease_freshness_decides_health() {
        let grace = Duration::from_secs(20);
        // (ready status, heartbeat, now, expected)
        let cases = [
            (Some("True"), 0, 10, Some(NodeHealth::Ready)),
            (Some("True"), 0, 20, Some(NodeHealth::Ready)),
            (Some("True"), 0, 21, Some(NodeHealth::Unknown)),
            (Some("False"), 0, 5, Some(NodeHealth::NotReady)),
            (Some("False"), 0, 60, Some(NodeHealth::Unknown)),
            (Some("Unknown"), 0, 5, Some(NodeHealth::Unknown)),
            (None, 0, 5, None),
            (None, 0, 25, Some(NodeHealth::Unknown)),
        ];
        for (status, heartbeat, now, expected) in cases {
            assert_eq!(
                node_health(status, at(heartbeat), at(now), grace),
                expected,
                "{status:?} heartbeat {heartbeat} now {now}"
            );
        }
    }

    #[test]
    fn taints_follow_health() {
        let gpu = taint("nvidia.com/gpu", "NoSchedule", None);
        let unreachable = vec![
            taint(TAINT_UNREACHABLE, "NoExecute", Some(0)),
            taint(TAINT_UNREACHABLE, "NoSchedule", None),
        ];
        let not_ready = vec![
            taint(TAINT_NOT_READY, "NoExecute", Some(5)),
            taint(TAINT_NOT_READY, "NoSchedule", None),
        ];
        let with_gpu = |mut t: Vec<Taint>| {
            t.insert(0, gpu.clone());
            t
        };
        // (current, health, expected: None = unchanged)
        let cases: Vec<(Vec<Taint>, NodeHealth, Option<Vec<Taint>>)> = vec![
            (vec![], NodeHealth::Ready, None),
            (vec![gpu.clone()], NodeHealth::Ready, None),
            (vec![], NodeHealth::Unknown, Some(unreachable.clone())),
            (unreachable.clone(), NodeHealth::Unknown, None),
            (
                with_gpu(unreachable.clone()),
                NodeHealth::Ready,
                Some(vec![gpu.clone()]),
            ),
            (
                vec![gpu.clone()],
                NodeHealth::NotReady,
                Some(with_gpu(not_ready.clone())),
            ),
            (
                not_ready.clone(),
                NodeHealth::Unknown,
                Some(unreachable.clone()),
            ),
        ];
        for (current, health, expected) in cases {
            assert_eq!(
                desired_taints(
                    &current,
                    health,
                    at(if health == NodeHealth::NotReady { 5 } else { 0 })
                ),
                expected,
                "{current:?} {health:?}"
            );
        }
        // A taint that stays keeps its timeAdded.
        let kept = vec![
            taint(TAINT_UNREACHABLE, "NoExecute", Some(-100)),
            unreachable[1].clone(),
        ];
        assert_eq!(desired_taints(&kept, NodeHealth::Unknown, at(0)), None);
    }

    #[test]
    fn eviction_timing_follows_tolerations() {
        let unreachable = [taint(TAINT_UNREACHABLE, "NoExecute", Some(0))];
        let no_schedule = [taint(TAINT_UNREACHABLE, "NoSchedule", Some(0))];
        // (taints, tolerations, now, expected)
        let cases: Vec<(&[Taint], Vec<Toleration>, i64, Eviction)> = vec![
            (&[], vec![], 0, Eviction::Keep),
            (&no_schedule, vec![], 0, Eviction::Keep),
            (&unreachable, vec![], 0, Eviction::Now),
            (
                &unreachable,
                vec![toleration(TAINT_NOT_READY, Some(30))],
                0,
                Eviction::Now,
            ),
            (
                &unreachable,
                vec![toleration(TAINT_UNREACHABLE, Some(30))],
                10,
                Eviction::At(at(30)),
            ),
            (
                &unreachable,
                vec![toleration(TAINT_UNREACHABLE, Some(30))],
                30,
                Eviction::Now,
            ),
            (
                &unreachable,
                vec![toleration(TAINT_UNREACHABLE, None)],
                1000,
                Eviction::Keep,
            ),
            (
                &unreachable,
                vec![toleration("", None)],
                1000,
                Eviction::Keep,
            ),
            (
                &unreachable,
                vec![toleration(TAINT_UNREACHABLE, Some(-5))],
                0,
                Eviction::Now,
            ),
            (
                &unreachable,
                vec![
                    toleration(TAINT_UNREACHABLE, Some(5)),
                    toleration("", Some(60)),
                ],
                10,
                Eviction::At(at(60)),
            ),
        ];
        for (taints, tolerations, now, expected) in cases {
            assert_eq!(
                eviction(taints, &tolerations, at(now)),
                expected,
                "{taints:?} {tolerations:?} at {now}"
            );
        }
    }

    #[test]
    fn unknown_conditions_keep_heartbeats_and_say_why() {
        let node = Node {
            status: Some(k8s_openapi::api::core::v1::NodeStatus {
                conditions: Some(vec![NodeCondition {
                    type_: "Ready".into(),
                    status: "True".into(),
                    last_heartbeat_time: Some(Time(at(0))),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        };
        let conditions = unknown_conditions(&node, at(30));
        assert_eq!(conditions[0].status, "Unknown");
        assert_eq!(conditions[0].reason.as_deref(), Some("NodeStatusUnknown"));
        assert_eq!(conditions[0].message.as_deref(), Some(UNKNOWN_MESSAGE));
        assert_eq!(conditions[0].last_heartbeat_time, Some(Time(at(0))));
        assert_eq!(conditions[0].last_transition_time, Some(Time(at(30))));
    }
}
