//! Pods reaching pods on every other node with their own addresses, as
//! flannel's host-gw and VXLAN backends do: from a watch of the Nodes, this
//! node keeps a route to each peer's podCIDR (direct, or through its VXLAN
//! device with neighbour and forwarding entries), announces its own mode
//! and VXLAN MAC on its Node, and masquerades only traffic leaving the
//! cluster's pod ranges. It never touches routes it did not make.

pub mod kernel;
pub mod masquerade;
pub mod plan;

use std::net::Ipv4Addr;
use std::time::Duration;

use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::watcher;
use serde_json::json;
use tokio_util::sync::CancellationToken;

pub use plan::Mode;

use super::cache;

/// How long Node changes are gathered before the kernel is updated.
const SETTLE: Duration = Duration::from_millis(100);
/// How often the kernel is brought back to the plan even when nothing
/// changed (someone removed a route by hand).
const RESYNC: Duration = Duration::from_secs(30);

/// What this node's part of the pod network needs to know.
#[derive(Debug, Clone)]
pub struct PodNetworkConfig {
    /// The Node's name.
    pub node: String,
    /// Its InternalIP, which peers send to.
    pub node_ip: Ipv4Addr,
    /// How it reaches its peers.
    pub mode: Mode,
}

/// The MTU pods on this node should get: under VXLAN, the MTU of the
/// interface holding `node_ip` less the VXLAN headers; routed pods keep
/// the kernel's default (a node on loopback must not hand its 64 KiB MTU
/// to pods).
pub async fn pod_mtu(mode: Mode, node_ip: Ipv4Addr) -> Option<u32> {
    if mode == Mode::Routed {
        return None;
    }
    let interfaces = kernel::interfaces().await.ok()?;
    kernel::interface_with(&interfaces, node_ip)?
        .mtu
        .checked_sub(kernel::VXLAN_OVERHEAD)
}

/// Keeps this node's routes, VXLAN entries and masquerade table in step
/// with the Nodes until `cancel` fires. What was set up stays when the
/// agent stops, so pods keep talking while it restarts.
pub async fn run(client: kube::Client, config: PodNetworkConfig, cancel: CancellationToken) {
    if let Err(e) = kernel::enable_forwarding() {
        tracing::warn!(error = %e, "enabling IPv4 forwarding failed; pods cannot reach other nodes");
    }
    let nodes_api = Api::<Node>::all(client.clone());
    let (nodes, changes) = cache::reflected::<Node>(&client, watcher::Config::default());
    let mut changes = std::pin::pin!(changes);
    let mut applied_table = String::new();
    let mut resync = tokio::time::interval(RESYNC);
    resync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        if !cache::next_burst(&mut changes, SETTLE, None, Some(&mut resync), &cancel).await {
            return;
        }
        if !cache::ready(&nodes) {
            continue;
        }
        let snapshot = cache::objects(&nodes);
        if let Err(e) = reconcile(&nodes_api, &config, &snapshot, &mut applied_table).await {
            tracing::warn!(node = %config.node, error = %e, "updating the pod network failed");
        }
    }
}

/// One pass: announce, then bring the kernel to the plan for `nodes`.
async fn reconcile(
    api: &Api<Node>,
    config: &PodNetworkConfig,
    nodes: &[Node],
    applied_table: &mut String,
) -> Result<(), String> {
    let Some(me) = nodes
        .iter()
        .find(|n| n.metadata.name.as_deref() == Some(config.node.as_str()))
    else {
        return Ok(());
    };
    announce(api, config, me).await?;
    let Some(own) = plan::pod_cidr(me) else {
        return Ok(());
    };
    let interfaces = kernel::interfaces().await.map_err(|e| e.to_string())?;
    let device = plan::vxlan_device(&config.node);
    let has_device = interfaces.iter().any(|i| i.ifname == device);
    match config.mode {
        Mode::Vxlan => {
            let parent = kernel::interface_with(&interfaces, config.node_ip)
                .ok_or_else(|| format!("no interface holds the node address {}", config.node_ip))?;
            let mtu = parent.mtu.saturating_sub(kernel::VXLAN_OVERHEAD);
            kernel::ensure_vxlan(
                &device,
                &plan::vtep_mac(&config.node),
                config.node_ip,
                &parent.ifname,
                mtu,
                plan::vtep_address(&own),
            )
            .await
            .map_err(|e| e.to_string())?;
        }
        Mode::Routed if has_device => kernel::remove_vxlan(&device).await,
        Mode::Routed => {}
    }
    let peers = plan::peers(nodes, &config.node);
    let taken = kernel::foreign_routes().await.map_err(|e| e.to_string())?;
    let wanted = plan::plan(
        config.mode,
        &device,
        &peers,
        &kernel::local_addresses(&interfaces),
        &taken,
    );
    let vxlan = (config.mode == Mode::Vxlan).then_some(device.as_str());
    kernel::apply(&wanted, vxlan)
        .await
        .map_err(|e| e.to_string())?;
    let ranges: Vec<_> = peers.iter().map(|p| p.pod_cidr).collect();
    let table = masquerade::script(&masquerade::table_name(&config.node), &own, &ranges);
    if table != *applied_table {
        super::nft::apply(&table).await.map_err(|e| e.to_string())?;
        *applied_table = table;
        tracing::info!(node = %config.node, peers = peers.len(), mode = config.mode.as_str(), "pod network updated");
    }
    Ok(())
}

/// Writes this node's mode and VXLAN MAC onto its Node when they differ,
/// so peers know how to reach it.
async fn announce(api: &Api<Node>, config: &PodNetworkConfig, me: &Node) -> Result<(), String> {
    let mac = (config.mode == Mode::Vxlan).then(|| plan::vtep_mac(&config.node));
    let current = me.metadata.annotations.as_ref();
    let current_mode = current.and_then(|a| a.get(plan::MODE_ANNOTATION));
    let current_mac = current.and_then(|a| a.get(plan::VTEP_MAC_ANNOTATION));
    if current_mode.map(String::as_str) == Some(config.mode.as_str()) && current_mac == mac.as_ref()
    {
        return Ok(());
    }
    let patch = json!({"metadata": {"annotations": {
        plan::MODE_ANNOTATION: config.mode.as_str(),
        plan::VTEP_MAC_ANNOTATION: mac,
    }}});
    api.patch(&config.node, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map(|_| ())
        .map_err(|e| format!("announcing the network mode on node {}: {e}", config.node))
}
