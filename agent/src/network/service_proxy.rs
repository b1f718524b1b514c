//! kube-proxy's job on a real node, in nftables mode: follow every Service
//! and EndpointSlice and keep one nftables table (named after the node, so
//! several nodes on one machine never touch each other's) that sends
//! ClusterIP traffic to ready endpoints. Changes are applied atomically and
//! at most a few times a second, whatever the churn.

pub mod rules;

use std::time::Duration;

use futures::{stream, StreamExt};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::Api;
use kube::runtime::{reflector, watcher, WatchStreamExt};
use tokio::io::AsyncWriteExt;
use tokio_util::sync::CancellationToken;

/// How long changes are gathered before the table is rewritten.
const SETTLE: Duration = Duration::from_millis(100);

/// The node's nftables table name (`berth_` and a hash of the node name).
pub fn table_name(node: &str) -> String {
    format!("berth_{:08x}", crate::config::name_hash(node))
}

/// Applies an nft script.
async fn apply(script: &str) -> Result<(), String> {
    let mut child = tokio::process::Command::new("nft")
        .args(["-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("running nft (Debian package nftables): {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
    }
    let output = child.wait_with_output().await.map_err(|e| e.to_string())?;
    if output.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).trim().to_owned())
    }
}

/// Keeps node `node`'s Service table in step with the API until `cancel`
/// fires. The table stays when the agent stops (Services keep working while
/// it restarts), as kube-proxy's rules do.
pub async fn run(client: kube::Client, node: String, cancel: CancellationToken) {
    let table = table_name(&node);
    let (services, services_writer) = reflector::store::<Service>();
    let (slices, slices_writer) = reflector::store::<EndpointSlice>();
    let service_events = watcher(
        Api::<Service>::all(client.clone()),
        watcher::Config::default(),
    )
    .default_backoff()
    .reflect(services_writer)
    .map(|_| ());
    let slice_events = watcher(
        Api::<EndpointSlice>::all(client),
        watcher::Config::default(),
    )
    .default_backoff()
    .reflect(slices_writer)
    .map(|_| ());
    let mut changes = std::pin::pin!(stream::select(service_events, slice_events));
    let mut applied = String::new();
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            change = changes.next() => if change.is_none() { return },
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
        let script = rules::script(&table, &rules::service_ports(&node, &services, &slices));
        if script == applied {
            continue;
        }
        match apply(&script).await {
            Ok(()) => {
                tracing::debug!(%table, "service rules updated");
                applied = script;
            }
            Err(e) => tracing::warn!(%table, error = %e, "updating the service rules failed"),
        }
    }
}
