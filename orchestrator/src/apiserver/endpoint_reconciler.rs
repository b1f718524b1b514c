//! Keeps the `kubernetes` Service's Endpoints and EndpointSlice in `default`
//! pointing at every API server sharing the store, as upstream's lease
//! endpoint reconciler does: each server renews a short-lived lease with its
//! advertised address, and whichever server runs a pass writes the addresses
//! whose leases are fresh. In-cluster clients reach the API through it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::catalog;
use super::errors::ApiError;
use super::objects::{Objects, WriteOptions};
use crate::store::Store;

/// How often a server renews its lease and rewrites the endpoints.
const RENEW_INTERVAL: Duration = Duration::from_secs(10);
/// A lease not renewed for this long no longer counts (upstream's 15 s TTL).
const LEASE_TTL: Duration = Duration::from_secs(15);
/// Where the leases live in the store (upstream: `/registry/masterleases/`).
const LEASE_PREFIX: &str = "/registry/masterleases/";
/// The Service the endpoints belong to.
const SERVICE: &str = "kubernetes";
/// The field manager the writes are recorded under.
const MANAGER: &str = "kube-apiserver";

/// Renews this server's lease and reconciles the endpoints until `cancel` fires.
pub async fn run(objects: Objects, advertised: SocketAddr, cancel: CancellationToken) {
    let mut tick = tokio::time::interval(RENEW_INTERVAL);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        if let Err(e) = reconcile_once(&objects, advertised).await {
            tracing::warn!(error = %e, "reconciling the kubernetes service endpoints");
        }
    }
}

/// One pass: renew our lease, then write the endpoints of the live servers.
pub async fn reconcile_once(objects: &Objects, advertised: SocketAddr) -> Result<(), ApiError> {
    let store = Arc::clone(objects.store());
    renew_lease(store.as_ref(), advertised).await?;
    let servers = live_servers(store.as_ref()).await?;
    let port = advertised.port();
    let endpoints = catalog::builtin("", "v1", "endpoints").expect("endpoints served");
    let slices = catalog::builtin("discovery.k8s.io", "v1", "endpointslices")
        .expect("endpointslices served");
    write(objects, endpoints, endpoints_object(&servers, port)).await?;
    write(objects, slices, endpoint_slice_object(&servers, port)).await
}

async fn renew_lease(store: &dyn Store, advertised: SocketAddr) -> Result<(), ApiError> {
    let key = format!("{LEASE_PREFIX}{}", advertised.ip());
    let value = json!({"ip": advertised.ip().to_string(), "renewTime": now_seconds()});
    let bytes = serde_json::to_vec(&value).map_err(|e| ApiError::Internal(e.to_string()))?;
    match store.get(&key).await? {
        Some(kv) => {
            // A concurrent renewal by the same address is as good as ours.
            let _ = store.update(&key, bytes, kv.mod_revision).await;
        }
        None => {
            let _ = store.create(&key, bytes).await;
        }
    }
    Ok(())
}

/// The addresses of servers whose leases are fresh, sorted.
async fn live_servers(store: &dyn Store) -> Result<Vec<String>, ApiError> {
    let listed = store.list(LEASE_PREFIX, None, 0).await?;
    let now = now_seconds();
    let mut servers: Vec<String> = listed
        .items
        .iter()
        .filter_map(|kv| serde_json::from_slice::<Value>(&kv.value).ok())
        .filter(|lease| {
            let renewed = lease["renewTime"].as_i64().unwrap_or(0);
            now - renewed <= LEASE_TTL.as_secs() as i64
        })
        .filter_map(|lease| lease["ip"].as_str().map(str::to_owned))
        .collect();
    servers.sort();
    servers.dedup();
    Ok(servers)
}

fn now_seconds() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// The Endpoints upstream keeps for the `kubernetes` Service.
pub fn endpoints_object(servers: &[String], port: u16) -> Value {
    let addresses: Vec<Value> = servers.iter().map(|ip| json!({"ip": ip})).collect();
    json!({
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {"name": SERVICE, "namespace": "default",
                     "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
        "subsets": [{"addresses": addresses,
                     "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}],
    })
}

/// The EndpointSlice upstream keeps for the `kubernetes` Service.
pub fn endpoint_slice_object(servers: &[String], port: u16) -> Value {
    let endpoints: Vec<Value> = servers
        .iter()
        .map(|ip| json!({"addresses": [ip], "conditions": {"ready": true}}))
        .collect();
    json!({
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"name": SERVICE, "namespace": "default",
                     "labels": {"kubernetes.io/service-name": SERVICE}},
        "addressType": "IPv4",
        "endpoints": endpoints,
        "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
    })
}

/// Creates `desired`, or rewrites the stored object when its content differs.
async fn write(
    objects: &Objects,
    r: &catalog::ResourceInfo,
    desired: Value,
) -> Result<(), ApiError> {
    let options = WriteOptions {
        field_manager: Some(MANAGER.to_owned()),
        ..WriteOptions::default()
    };
    match objects.get(r, Some("default"), SERVICE).await {
        Ok(current) => {
            let unchanged = ["subsets", "endpoints", "ports", "addressType"]
                .iter()
                .all(|field| current.get(*field) == desired.get(*field));
            if unchanged {
                return Ok(());
            }
            objects
                .read_modify_write(r, Some("default"), SERVICE, &options, |current| {
                    let mut updated = current.clone();
                    for field in ["subsets", "endpoints", "ports", "addressType"] {
                        if let Some(value) = desired.get(field) {
                            updated[field] = value.clone();
                        }
                    }
                    Ok(updated)
                })
                .await
                .map(|_| ())
        }
        Err(ApiError::NotFound(_)) => {
            match objects.create(r, Some("default"), desired, &options).await {
                Ok(_) | Err(ApiError::AlreadyExists(_)) => Ok(()),
                Err(e) => Err(e),
            }
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_list_every_live_server_on_the_https_port() {
        let servers = vec!["10.0.0.1".to_owned(), "10.0.0.2".to_owned()];
        let endpoints = endpoints_object(&servers, 6443);
        assert_eq!(
            endpoints["subsets"][0]["addresses"],
            json!([{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}])
        );
        assert_eq!(endpoints["subsets"][0]["ports"][0]["port"], 6443);
        let slice = endpoint_slice_object(&servers, 6443);
        assert_eq!(slice["endpoints"][1]["addresses"], json!(["10.0.0.2"]));
        assert_eq!(
            slice["metadata"]["labels"]["kubernetes.io/service-name"],
            "kubernetes"
        );
    }
}
