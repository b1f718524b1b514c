//! NetworkPolicy enforcement on a real node, as Calico or Cilium would do it
//! but built in: follow every NetworkPolicy, Pod and Namespace and keep one
//! nftables table of this node's own (apart from the Service table) that
//! filters its pods' traffic. Nothing is written until all three caches
//! hold their first full list, so a half-filled cache never opens or closes
//! anything; changes are applied atomically, at most a few times a second.

pub mod addresses;
pub mod cluster;
pub mod plan;
pub mod script;

use std::time::Duration;

use futures::stream;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::runtime::watcher;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::cache::{next_burst, objects, ready, reflected};

/// How long changes are gathered before the table is rewritten.
const SETTLE: Duration = Duration::from_millis(100);
/// How long after a failed write it is tried again.
const RETRY: Duration = Duration::from_secs(1);

/// The node's NetworkPolicy table name (`berth_np_` and a hash of the node
/// name), distinct from the Service table so each is replaced on its own.
pub fn table_name(node: &str) -> String {
    format!("berth_np_{:08x}", crate::config::name_hash(node))
}

/// The script for node `node` from the caches' current contents.
pub fn desired_script(
    table: &str,
    node: &str,
    policies: &[NetworkPolicy],
    pods: &[Pod],
    namespaces: &[Namespace],
) -> String {
    let cluster = cluster::Cluster::new(pods, namespaces);
    script::script(table, &plan::plan(policies, &cluster, node))
}

/// The sysctl that makes bridged IPv4 frames (pod to pod on one node) pass
/// the `ip` family hooks; without it such traffic bypasses the table.
const BRIDGE_NF_CALL: &str = "/proc/sys/net/bridge/bridge-nf-call-iptables";

/// Whether bridged traffic reaches the table, as kubeadm's preflight checks.
fn bridged_traffic_filtered() -> bool {
    std::fs::read_to_string(BRIDGE_NF_CALL).is_ok_and(|v| v.trim() == "1")
}

/// Keeps node `node`'s NetworkPolicy table in step with the API until
/// `cancel` fires. The table stays when the agent stops, so isolated pods
/// stay isolated while it restarts.
pub async fn run(client: kube::Client, node: String, cancel: CancellationToken) {
    let table = table_name(&node);
    let span = tracing::info_span!("network_policy", %node, %table);
    if !bridged_traffic_filtered() {
        tracing::warn!(
            parent: &span,
            "{BRIDGE_NF_CALL} is not 1: traffic between pods of this node bypasses NetworkPolicy; \
             run `modprobe br_netfilter && sysctl net.bridge.bridge-nf-call-iptables=1`"
        );
    }
    let (policies, policy_events) = reflected::<NetworkPolicy>(&client, watcher::Config::default());
    let (pods, pod_events) = reflected::<Pod>(&client, watcher::Config::default());
    let (namespaces, namespace_events) =
        reflected::<Namespace>(&client, watcher::Config::default());
    let mut changes = std::pin::pin!(stream::select(
        stream::select(policy_events, pod_events),
        namespace_events
    ));
    let mut applied = String::new();
    let mut failed = false;
    loop {
        // A failed write is tried again even when nothing changes.
        let retry = failed.then_some(RETRY);
        if !next_burst(&mut changes, SETTLE, retry, None, &cancel).await {
            return;
        }
        if !(ready(&policies) && ready(&pods) && ready(&namespaces)) {
            continue;
        }
        let script = desired_script(
            &table,
            &node,
            &objects(&policies),
            &objects(&pods),
            &objects(&namespaces),
        );
        if script == applied {
            continue;
        }
        match super::nft::apply(&script).instrument(span.clone()).await {
            Ok(()) => {
                tracing::debug!(parent: &span, "network policy rules updated");
                applied = script;
                failed = false;
            }
            Err(e) => {
                tracing::warn!(parent: &span, error = %e, "updating the network policy rules failed");
                failed = true;
            }
        }
    }
}
