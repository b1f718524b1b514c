//! kube-proxy's job on a real node, in nftables mode: follow every Service
//! and EndpointSlice and keep one nftables table (named after the node, so
//! several nodes on one machine never touch each other's) that sends
//! ClusterIP traffic to ready endpoints. Changes are applied atomically and
//! at most a few times a second, whatever the churn; whole rewrites
//! alternate between two table names (see [`writer`]).

pub mod endpoints;
pub mod health;
pub mod rules;
pub mod writer;

use std::time::Duration;

use futures::stream;
use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::watcher;
use tokio_util::sync::CancellationToken;

use super::cache::{next_burst, objects, ready, reflected};

/// How long changes are gathered before the table is rewritten.
const SETTLE: Duration = Duration::from_millis(100);
/// How soon a table write that failed is tried again.
const RETRY: Duration = Duration::from_secs(1);

pub use writer::table_names;

/// Keeps node `node`'s Service table in step with the API until `cancel`
/// fires. The table stays when the agent stops (Services keep working while
/// it restarts), as kube-proxy's rules do.
pub async fn run(
    client: kube::Client,
    node: String,
    node_ip: std::net::IpAddr,
    cancel: CancellationToken,
) {
    let mut health_checks = health::HealthChecks::new(node_ip, cancel.clone());
    sync(client, &node, &mut health_checks, &cancel).await;
    health_checks.shutdown().await;
}

/// The watch-and-write loop of [`run`], until `cancel` fires or the watches end.
async fn sync(
    client: kube::Client,
    node: &str,
    health_checks: &mut health::HealthChecks,
    cancel: &CancellationToken,
) {
    let mut writer = writer::TableWriter::new(node).await;
    let (services, service_events) = reflected::<Service>(&client, watcher::Config::default());
    let (slices, slice_events) = reflected::<EndpointSlice>(&client, watcher::Config::default());
    // Only this node's own object, for its podCIDR (what "local" traffic is).
    let (nodes, node_events) = reflected::<Node>(
        &client,
        watcher::Config::default().fields(&format!("metadata.name={node}")),
    );
    let mut changes = std::pin::pin!(stream::select(
        service_events,
        stream::select(slice_events, node_events)
    ));
    let mut failed = false;
    loop {
        // After a failed write, try again soon even if nothing changes.
        let retry = failed.then_some(RETRY);
        if !next_burst(&mut changes, SETTLE, retry, None, cancel).await {
            return;
        }
        if !(ready(&services) && ready(&slices)) {
            continue;
        }
        let services = objects(&services);
        let slices = objects(&slices);
        let pod_cidr = nodes
            .state()
            .first()
            .and_then(|n| n.spec.as_ref()?.pod_cidr.clone());
        let ports = endpoints::service_ports(&services, &slices, node);
        health_checks
            .update(endpoints::health_checks(&services, &ports))
            .await;
        let wanted = rules::rules(&ports, pod_cidr.as_deref());
        match writer.write(wanted).await {
            Ok(written) => {
                if written {
                    tracing::debug!(table = ?writer.live_table(), "service rules updated");
                }
                failed = false;
            }
            Err(e) => {
                tracing::warn!(error = %e, "updating the service rules failed; retrying");
                failed = true;
            }
        }
    }
}
