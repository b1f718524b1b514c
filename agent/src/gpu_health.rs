//! What the agent does about a failing GPU, as NVIDIA's device plugin
//! does and a little more: the GPU leaves allocatable `nvidia.com/gpu`
//! (capacity stays) and the allocator, a Warning Event is recorded on the
//! Node, and the Node's `NvidiaGPUUnhealthy` condition names it. Checked
//! every few seconds; a withdrawn GPU returns only when the agent restarts.
//! It never stops a pod already using the GPU, nor resets the GPU.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use berth_observability::events::{EventType, Recorder};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Node, NodeCondition, ObjectReference};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::api::Api;
use tokio_util::sync::CancellationToken;

use crate::gpu::{Fault, RESOURCE_NAME};
use crate::pods::gpus::Withdrawn;
use crate::{AgentError, NodeHandle, Nodes};

/// The Node condition type: `True` while any GPU is withdrawn.
pub const CONDITION: &str = "NvidiaGPUUnhealthy";
/// How often the GPUs are checked (the device plugin waits 5 s per event poll).
pub const CHECK_INTERVAL: Duration = Duration::from_secs(5);

/// The `NvidiaGPUUnhealthy` condition for `withdrawn` GPUs: `False` since
/// `ready_since` when none, else `True` since the first withdrawal, with
/// the first cause's reason and every GPU's UUID and cause in the message.
pub fn condition(
    withdrawn: &BTreeMap<String, Withdrawn>,
    now: Timestamp,
    ready_since: Timestamp,
) -> NodeCondition {
    let first = withdrawn.values().min_by_key(|w| w.since);
    let Some(first) = first else {
        return crate::node::condition(
            CONDITION,
            "False",
            "NvidiaGPUsHealthy",
            "every NVIDIA GPU is healthy",
            now,
            ready_since,
        );
    };
    let message = withdrawn
        .iter()
        .map(|(uuid, w)| format!("GPU {uuid}: {}", w.cause))
        .collect::<Vec<_>>()
        .join("; ");
    crate::node::condition(
        CONDITION,
        "True",
        first.cause.reason(),
        &format!("{message}; withdrawn from {RESOURCE_NAME} until the agent restarts"),
        now,
        crate::seconds(first.since),
    )
}

/// Lowers allocatable `nvidia.com/gpu` by `count` withdrawn GPUs.
pub fn withdraw_from(allocatable: &mut BTreeMap<String, Quantity>, count: usize) {
    if count == 0 {
        return;
    }
    if let Some(quantity) = allocatable.get_mut(RESOURCE_NAME) {
        let have: usize = quantity.0.parse().unwrap_or(0);
        *quantity = Quantity(have.saturating_sub(count).to_string());
    }
}

/// Checks `node`'s GPUs and withdraws those newly unhealthy; returns them.
pub fn check(node: &NodeHandle, now: Timestamp) -> Vec<Fault> {
    let Some(monitor) = &node.gpu_monitor else {
        return Vec::new();
    };
    let mut faults = monitor.check();
    faults.retain(|f| node.gpus.withdraw(&f.gpu.uuid, f.cause.clone(), now));
    for fault in &faults {
        tracing::warn!(
            node = node.name(),
            gpu = %fault.gpu.uuid,
            cause = %fault.cause,
            "GPU unhealthy; withdrawn from {RESOURCE_NAME}"
        );
    }
    faults
}

/// The Warning Event for `fault`: its reason and message.
pub fn event(fault: &Fault) -> (&'static str, String) {
    (
        fault.cause.reason(),
        format!(
            "GPU {uuid} (index {index}, {name}) is unhealthy: {cause}; withdrawn from {RESOURCE_NAME}",
            uuid = fault.gpu.uuid,
            index = fault.gpu.index,
            name = fault.gpu.name,
            cause = fault.cause,
        ),
    )
}

/// Reports `faults` of `node`: one Warning Event each on the Node, then
/// the Node's status at once (allocatable and the condition).
pub async fn report(
    client: &kube::Client,
    recorder: &Recorder,
    node: &NodeHandle,
    faults: &[Fault],
) {
    let reference = ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("Node".into()),
        name: Some(node.name().to_owned()),
        uid: crate::node::uid(node),
        ..ObjectReference::default()
    };
    for fault in faults {
        let (reason, message) = event(fault);
        recorder
            .record_reference(reference.clone(), EventType::Warning, reason, &message)
            .await;
    }
    let api: Api<Node> = Api::all(client.clone());
    if let Err(e) = crate::node::patch_status(&api, node).await {
        tracing::warn!(node = node.name(), error = %e, "posting the GPU health failed; the next status post carries it");
    }
}

/// Checks every node's GPUs each [`CHECK_INTERVAL`] until `cancel` fires.
pub async fn run(
    client: kube::Client,
    nodes: Arc<Nodes>,
    cancel: CancellationToken,
) -> Result<(), AgentError> {
    let watched: Vec<_> = nodes
        .iter()
        .filter(|n| n.gpu_monitor.is_some())
        .map(|n| {
            let recorder = Recorder::new(client.clone(), "kubelet").with_host(n.name());
            (Arc::clone(n), recorder)
        })
        .collect();
    let mut ticker = tokio::time::interval(CHECK_INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            _ = ticker.tick() => {}
        }
        for (node, recorder) in &watched {
            let checked = Arc::clone(node);
            // NVML calls may block briefly; keep them off the async workers.
            let faults = tokio::task::spawn_blocking(move || check(&checked, Timestamp::now()))
                .await
                .unwrap_or_default();
            if !faults.is_empty() {
                report(&client, recorder, node, &faults).await;
            }
        }
    }
}
