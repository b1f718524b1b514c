//! Node registration and status, as kubelet does them: create the Node (or
//! adopt the existing one), post its status through `nodes/status`
//! (capacity, addresses, nodeInfo, Ready and the pressure conditions), post
//! it again periodically, and hand `spec.podCIDR` to the runtime once node
//! IPAM sets it. Taints are only set at creation; controllers own them after.

use std::sync::Arc;
use std::time::Duration;

use futures::{stream, StreamExt};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::{
    DaemonEndpoint, Node, NodeAddress, NodeCondition, NodeDaemonEndpoints, NodeSpec, NodeStatus,
    NodeSystemInfo,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::{watcher, WatchStreamExt};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::{lock, seconds, AgentError, AgentOptions, NodeHandle, Nodes};

/// The kubelet version simulated and real berth nodes report.
pub const KUBELET_VERSION: &str = "v1.33.0-berth";

/// The Node object as first created: name, labels, taints, and its status.
pub fn node_object(node: &NodeHandle, now: Timestamp) -> Node {
    let config = &node.config;
    Node {
        metadata: ObjectMeta {
            name: Some(config.name.clone()),
            labels: Some(config.all_labels()),
            annotations: Some(node_annotations(node)),
            ..ObjectMeta::default()
        },
        spec: Some(NodeSpec {
            taints: (!config.taints.is_empty()).then(|| config.taints.clone()),
            ..NodeSpec::default()
        }),
        status: Some(node_status(node, now)),
    }
}

/// The annotations the agent keeps on its Node: where its `local-path`
/// volumes go, for the provisioner to name their paths.
pub fn node_annotations(node: &NodeHandle) -> std::collections::BTreeMap<String, String> {
    std::collections::BTreeMap::from([(
        crate::volumes::LOCAL_PATH_DIR_ANNOTATION.to_owned(),
        node.config.local_path_dir.display().to_string(),
    )])
}

pub(crate) fn condition(
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    now: Timestamp,
    since: Timestamp,
) -> NodeCondition {
    NodeCondition {
        type_: type_.to_owned(),
        status: status.to_owned(),
        reason: Some(reason.to_owned()),
        message: Some(message.to_owned()),
        last_heartbeat_time: Some(Time(now)),
        last_transition_time: Some(Time(since)),
    }
}

/// The status the node posts: what it has, where it is, what it runs, and
/// that it is healthy (a simulated node never comes under pressure).
pub fn node_status(node: &NodeHandle, now: Timestamp) -> NodeStatus {
    let config = &node.config;
    let now = seconds(now);
    let since = *lock(&node.ready_since);
    let mut conditions = vec![
        condition(
            "MemoryPressure",
            "False",
            "KubeletHasSufficientMemory",
            "kubelet has sufficient memory available",
            now,
            since,
        ),
        condition(
            "DiskPressure",
            "False",
            "KubeletHasNoDiskPressure",
            "kubelet has no disk pressure",
            now,
            since,
        ),
        condition(
            "PIDPressure",
            "False",
            "KubeletHasSufficientPID",
            "kubelet has sufficient PID available",
            now,
            since,
        ),
        condition(
            "Ready",
            "True",
            "KubeletReady",
            "kubelet is posting ready status",
            now,
            since,
        ),
    ];
    let mut allocatable = crate::config::allocatable(&config.capacity, &config.reserved);
    if !config.gpus.is_empty() {
        let withdrawn = node.gpus.withdrawn();
        conditions.push(crate::gpu_health::condition(&withdrawn, now, since));
        crate::gpu_health::withdraw_from(&mut allocatable, withdrawn.len());
    }
    NodeStatus {
        capacity: Some(config.capacity.clone()),
        allocatable: Some(allocatable),
        addresses: Some(vec![
            NodeAddress {
                type_: "InternalIP".into(),
                address: config.internal_ip.to_string(),
            },
            NodeAddress {
                type_: "Hostname".into(),
                address: config.name.clone(),
            },
        ]),
        conditions: Some(conditions),
        daemon_endpoints: Some(NodeDaemonEndpoints {
            kubelet_endpoint: Some(DaemonEndpoint {
                port: i32::from(config.kubelet_port),
            }),
        }),
        node_info: Some(match &config.host {
            Some(host) => host.system_info(KUBELET_VERSION, node.runtime.version()),
            None => simulated_system_info(node),
        }),
        ..NodeStatus::default()
    }
}

/// What a simulated node says it runs on: made up, but stable per name.
fn simulated_system_info(node: &NodeHandle) -> NodeSystemInfo {
    let config = &node.config;
    NodeSystemInfo {
        architecture: config
            .all_labels()
            .get("kubernetes.io/arch")
            .cloned()
            .unwrap_or_else(|| "amd64".into()),
        operating_system: "linux".into(),
        os_image: "berth simulated node".into(),
        kernel_version: "6.1.0-berth".into(),
        kubelet_version: KUBELET_VERSION.into(),
        kube_proxy_version: KUBELET_VERSION.into(),
        container_runtime_version: node.runtime.version(),
        boot_id: node.boot_id.clone(),
        machine_id: format!(
            "{:032x}",
            u128::from(crate::config::slot_for_name(&config.name))
        ),
        system_uuid: format!("berth-{}", config.name),
        ..NodeSystemInfo::default()
    }
}

/// Posts the node's status through `nodes/status` (a merge patch, so fields
/// others own, such as `volumesAttached`, are left alone).
pub(crate) async fn patch_status(api: &Api<Node>, node: &NodeHandle) -> Result<(), kube::Error> {
    let status = node_status(node, Timestamp::now());
    api.patch_status(
        node.name(),
        &PatchParams::default(),
        &Patch::Merge(json!({ "status": status })),
    )
    .await?;
    Ok(())
}

/// Creates the Node, or adopts the existing one (its labels updated, its
/// taints left), then posts its status.
pub async fn register(client: &kube::Client, node: &NodeHandle) -> Result<(), AgentError> {
    let api: Api<Node> = Api::all(client.clone());
    let name = node.name();
    let existing = match api
        .create(&PostParams::default(), &node_object(node, Timestamp::now()))
        .await
    {
        Ok(created) => created,
        Err(kube::Error::Api(status)) if status.code == 409 => {
            let existing = api
                .get(name)
                .await
                .map_err(|e| AgentError::api(format!("reading node {name}"), e))?;
            // Still Ready from before a restart: keep the original transition time.
            let ready_since = existing
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .and_then(|c| c.iter().find(|c| c.type_ == "Ready" && c.status == "True"))
                .and_then(|c| c.last_transition_time.as_ref())
                .map(|t| t.0);
            if let Some(since) = ready_since {
                *lock(&node.ready_since) = since;
            }
            api.patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({ "metadata": {
                    "labels": node.config.all_labels(),
                    "annotations": node_annotations(node),
                } })),
            )
            .await
            .map_err(|e| AgentError::api(format!("updating the labels of node {name}"), e))?
        }
        Err(e) => return Err(AgentError::api(format!("registering node {name}"), e)),
    };
    *lock(&node.uid) = existing.metadata.uid.clone();
    patch_status(&api, node)
        .await
        .map_err(|e| AgentError::api(format!("posting the status of node {name}"), e))?;
    tracing::debug!(node = name, "node registered");
    Ok(())
}

/// The Node's UID once registered.
pub(crate) fn uid(node: &NodeHandle) -> Option<String> {
    lock(&node.uid).clone()
}

/// Registers every node, `api_concurrency` at a time, retrying each with
/// backoff until it succeeds or `cancel` fires (kubelet retries forever too).
pub async fn register_all(
    client: &kube::Client,
    nodes: &Nodes,
    options: &AgentOptions,
    cancel: &CancellationToken,
) {
    stream::iter(nodes.iter())
        .for_each_concurrent(options.api_concurrency.max(1), |node| async move {
            let mut delay = Duration::from_millis(200);
            loop {
                match register(client, node).await {
                    Ok(()) => return,
                    Err(e) => {
                        tracing::warn!(error = %e, "registration failed; retrying in {delay:?}")
                    }
                }
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(delay) => {}
                }
                delay = (delay * 2).min(Duration::from_secs(10));
            }
        })
        .await;
}

/// Posts every node's status each `status_interval`; a node someone deleted
/// is registered again, as kubelet does.
pub async fn report_status(
    client: kube::Client,
    nodes: Arc<Nodes>,
    options: Arc<crate::AgentOptions>,
    cancel: CancellationToken,
) -> Result<(), AgentError> {
    let api: Api<Node> = Api::all(client.clone());
    let mut ticker = tokio::time::interval(options.status_interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await; // registration just posted it
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            _ = ticker.tick() => {}
        }
        let (api, client) = (&api, &client);
        stream::iter(nodes.iter())
            .for_each_concurrent(options.api_concurrency.max(1), |node| async move {
                let outcome = match patch_status(api, node).await {
                    Err(kube::Error::Api(status)) if status.code == 404 => {
                        tracing::warn!(node = node.name(), "node was deleted; registering it again");
                        register(client, node).await
                    }
                    other => other.map_err(|e| {
                        AgentError::api(format!("posting the status of node {}", node.name()), e)
                    }),
                };
                if let Err(e) = outcome {
                    tracing::warn!(error = %e, "node status not posted; trying again next interval");
                }
            })
            .await;
    }
}

/// Watches this process's Nodes and hands each new `spec.podCIDR` to the
/// node's runtime (CRI's `UpdateRuntimeConfig`).
pub async fn watch_pod_cidrs(
    client: kube::Client,
    nodes: Arc<Nodes>,
    cancel: CancellationToken,
) -> Result<(), AgentError> {
    let api: Api<Node> = Api::all(client);
    let config = match nodes.single() {
        Some(only) => watcher::Config::default().fields(&format!("metadata.name={}", only.name())),
        None => watcher::Config::default(),
    };
    let stream = watcher(api, config).default_backoff().applied_objects();
    futures::pin_mut!(stream);
    loop {
        let next = tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            next = stream.next() => next,
        };
        let node_object = match next {
            Some(Ok(node)) => node,
            Some(Err(e)) => {
                tracing::debug!(error = %e, "node watch interrupted; resuming");
                continue;
            }
            None => return Ok(()),
        };
        let Some(node) = node_object
            .metadata
            .name
            .as_deref()
            .and_then(|name| nodes.get(name))
        else {
            continue;
        };
        let Some(cidr) = node_object.spec.as_ref().and_then(|s| s.pod_cidr.clone()) else {
            continue;
        };
        if lock(&node.pod_cidr).as_deref() == Some(cidr.as_str()) {
            continue;
        }
        match node.runtime.update_pod_cidr(&cidr).await {
            Ok(()) => *lock(&node.pod_cidr) = Some(cidr),
            Err(e) => tracing::warn!(node = node.name(), error = %e, "podCIDR not applied"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{parse_capacity, parse_taints, NodeConfig};
    use crate::runtime::simulated::{SimulatedConfig, SimulatedRuntime};

    fn handle() -> NodeHandle {
        let mut config = NodeConfig::new("n1", 3).with_pool("gpu");
        config.capacity = parse_capacity("cpu=8,nvidia.com/gpu=2").unwrap();
        config.taints = parse_taints("nvidia.com/gpu=present:NoSchedule").unwrap();
        let runtime = SimulatedRuntime::new(SimulatedConfig::default()).unwrap();
        NodeHandle::new(config, Arc::new(runtime))
    }

    #[test]
    fn the_node_object_carries_labels_taints_capacity_and_ready() {
        let node = node_object(&handle(), Timestamp::now());
        let labels = node.metadata.labels.unwrap();
        assert_eq!(labels["kubernetes.io/hostname"], "n1");
        assert_eq!(labels["berth.dev/pool"], "gpu");
        assert_eq!(
            node.metadata.annotations.unwrap()["berth.dev/local-path-dir"],
            "/var/lib/berth/agent/local-path"
        );
        let taints = node.spec.unwrap().taints.unwrap();
        assert_eq!(taints[0].key, "nvidia.com/gpu");
        let status = node.status.unwrap();
        assert_eq!(status.capacity.as_ref().unwrap()["nvidia.com/gpu"].0, "2");
        assert_eq!(status.allocatable, status.capacity);
        let ready = status
            .conditions
            .as_ref()
            .unwrap()
            .iter()
            .find(|c| c.type_ == "Ready")
            .unwrap();
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_deref()),
            ("True", Some("KubeletReady"))
        );
        for pressure in ["MemoryPressure", "DiskPressure", "PIDPressure"] {
            let c = status
                .conditions
                .as_ref()
                .unwrap()
                .iter()
                .find(|c| c.type_ == pressure)
                .unwrap();
            assert_eq!(c.status, "False", "{pressure}");
        }
        let info = status.node_info.unwrap();
        assert_eq!(info.kubelet_version, "v1.33.0-berth");
        assert_eq!(info.container_runtime_version, "simulated://1.0");
        assert_eq!(info.operating_system, "linux");
        assert_eq!(info.architecture, "amd64");
        let addresses = status.addresses.unwrap();
        assert_eq!(addresses[0].type_, "InternalIP");
        assert_eq!(addresses[0].address, "127.1.0.4");
    }
}
