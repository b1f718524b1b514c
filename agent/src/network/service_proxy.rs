//! kube-proxy's job on a real node, in nftables mode: follow every Service
//! and EndpointSlice and keep one nftables table (named after the node, so
//! several nodes on one machine never touch each other's) that sends
//! ClusterIP traffic to ready endpoints. Changes are applied atomically and
//! at most a few times a second, whatever the churn.

pub mod endpoints;
pub mod health;
pub mod rules;

use std::time::Duration;

use futures::{stream, StreamExt};
use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::Api;
use kube::runtime::{reflector, watcher, WatchStreamExt};
use tokio_util::sync::CancellationToken;

/// How long changes are gathered before the table is rewritten.
const SETTLE: Duration = Duration::from_millis(100);
/// How soon a table write that failed is tried again.
const RETRY: Duration = Duration::from_secs(1);

/// The node's nftables table name (`berth_` and a hash of the node name).
pub fn table_name(node: &str) -> String {
    format!("berth_{:08x}", crate::config::name_hash(node))
}

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
    let table = table_name(node);
    let (services, services_writer) = reflector::store::<Service>();
    let (slices, slices_writer) = reflector::store::<EndpointSlice>();
    let (nodes, nodes_writer) = reflector::store::<Node>();
    let service_events = watcher(
        Api::<Service>::all(client.clone()),
        watcher::Config::default(),
    )
    .default_backoff()
    .reflect(services_writer)
    .map(|_| ());
    let slice_events = watcher(
        Api::<EndpointSlice>::all(client.clone()),
        watcher::Config::default(),
    )
    .default_backoff()
    .reflect(slices_writer)
    .map(|_| ());
    // Only this node's own object, for its podCIDR (what "local" traffic is).
    let node_events = watcher(
        Api::<Node>::all(client),
        watcher::Config::default().fields(&format!("metadata.name={node}")),
    )
    .default_backoff()
    .reflect(nodes_writer)
    .map(|_| ());
    let slice_and_node_events = stream::select(slice_events, node_events);
    let mut changes = std::pin::pin!(stream::select(service_events, slice_and_node_events));
    let mut applied: Option<rules::Rules> = None;
    let mut failed = false;
    loop {
        // After a failed write, try again soon even if nothing changes.
        let retry = tokio::time::sleep(if failed { RETRY } else { Duration::MAX / 4 });
        tokio::select! {
            _ = cancel.cancelled() => return,
            change = changes.next() => if change.is_none() { return },
            _ = retry => {}
        }
        // Let a burst of changes settle, then write the table once.
        let settle = tokio::time::sleep(SETTLE);
        tokio::pin!(settle);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = &mut settle => break,
                change = changes.next() => if change.is_none() { return },
            }
        }
        let services: Vec<Service> = services.state().iter().map(|s| (**s).clone()).collect();
        let slices: Vec<EndpointSlice> = slices.state().iter().map(|s| (**s).clone()).collect();
        let pod_cidr = nodes
            .state()
            .first()
            .and_then(|n| n.spec.as_ref()?.pod_cidr.clone());
        let ports = endpoints::service_ports(&services, &slices, node);
        health_checks
            .update(endpoints::health_checks(&services, &ports))
            .await;
        let wanted = rules::rules(&ports, pod_cidr.as_deref());
        // Only elements changed: update them in place; else write the table whole.
        let script = match applied.as_ref().and_then(|old| wanted.delta(&table, old)) {
            Some(delta) if delta.is_empty() => continue,
            Some(delta) => delta,
            None => wanted.script(&table),
        };
        match super::nft::apply(&script).await {
            Ok(()) => {
                tracing::debug!(%table, "service rules updated");
                applied = Some(wanted);
                failed = false;
            }
            Err(e) => {
                tracing::warn!(%table, error = %e, "updating the service rules failed; retrying");
                // Whatever the table holds now, the next write replaces it whole.
                applied = None;
                failed = true;
            }
        }
    }
}
