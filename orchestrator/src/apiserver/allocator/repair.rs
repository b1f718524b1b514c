//! The ClusterIP repair loop (upstream's `RepairIPAddress`): every Service's
//! ClusterIP has its IPAddress (one deleted by hand is written again, so the
//! address cannot be handed out twice), and an IPAddress the allocator wrote
//! for a Service when no Service holds its address is deleted once it is old enough
//! that no create can still be in flight for it. The plan is pure; the loop
//! only reads the store and applies it.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::Duration;

use berth_api::kinds::networking::ipaddress::{ALLOCATOR_MANAGER, LABEL_MANAGED_BY};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::{cluster_ip, ip_key, ip_resource, Allocator};
use crate::apiserver::catalog;
use crate::apiserver::errors::ApiError;
use crate::store::{KeyValue, StoreError};

/// How often the addresses are checked.
const INTERVAL: Duration = Duration::from_secs(60);
/// How old an IPAddress without its Service must be before it is deleted:
/// far longer than the gap between claiming an address and storing its Service.
const ORPHAN_GRACE_SECONDS: i64 = 60;

/// An IPAddress as stored, with the revision a delete is conditioned on.
#[derive(Debug, Clone)]
pub struct StoredAddress {
    /// The object.
    pub object: Value,
    /// Its store revision.
    pub revision: i64,
}

/// What one pass does.
#[derive(Debug, Default, PartialEq)]
pub struct Plan {
    /// Services whose ClusterIP has no IPAddress: (address, the Service).
    pub missing: Vec<(Ipv4Addr, Value)>,
    /// Allocator-written IPAddresses no Service holds: (address, revision).
    pub orphans: Vec<(Ipv4Addr, i64)>,
}

fn text<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// Compares the Services with the IPAddresses at `now`.
pub fn plan(services: &[Value], addresses: &[StoredAddress], now: jiff::Timestamp) -> Plan {
    let mut holders: BTreeMap<Ipv4Addr, &Value> = BTreeMap::new();
    let mut plan = Plan::default();
    let existing: BTreeMap<&str, &StoredAddress> = addresses
        .iter()
        .map(|a| (text(&a.object, "/metadata/name"), a))
        .collect();
    for service in services {
        let Some(ip) = cluster_ip(service) else {
            continue;
        };
        holders.insert(ip, service);
        if !existing.contains_key(ip.to_string().as_str()) {
            plan.missing.push((ip, service.clone()));
        }
    }
    for address in addresses {
        let object = &address.object;
        let managed = text(
            object,
            &format!("/metadata/labels/{}", LABEL_MANAGED_BY.replace('/', "~1")),
        ) == ALLOCATOR_MANAGER;
        let Ok(ip) = text(object, "/metadata/name").parse::<Ipv4Addr>() else {
            continue;
        };
        if !managed || text(object, "/spec/parentRef/resource") != "services" {
            continue;
        }
        // An address some Service holds stays, even when it names another
        // parent: deleting it would free a live Service's address.
        if holders.contains_key(&ip) {
            continue;
        }
        let old_enough = text(object, "/metadata/creationTimestamp")
            .parse::<jiff::Timestamp>()
            .is_ok_and(|created| now.as_second() - created.as_second() >= ORPHAN_GRACE_SECONDS);
        if old_enough {
            plan.orphans.push((ip, address.revision));
        }
    }
    plan
}

fn decode(kv: &KeyValue) -> Option<Value> {
    serde_json::from_slice(&kv.value).ok()
}

/// One pass: reads the Services and IPAddresses, then writes back missing
/// addresses and deletes orphaned ones (a changed one is left for the next pass).
pub async fn repair_once(allocator: &Allocator) -> Result<Plan, ApiError> {
    let store = allocator.store.as_ref();
    let services_prefix = catalog::builtin("", "v1", "services")
        .expect("services served")
        .key_prefix();
    let services: Vec<Value> = store
        .list(&services_prefix, None, 0)
        .await?
        .items
        .iter()
        .filter_map(decode)
        .collect();
    let addresses: Vec<StoredAddress> = store
        .list(&ip_resource().key_prefix(), None, 0)
        .await?
        .items
        .iter()
        .filter_map(|kv| {
            Some(StoredAddress {
                object: decode(kv)?,
                revision: kv.mod_revision,
            })
        })
        .collect();
    let plan = plan(&services, &addresses, jiff::Timestamp::now());
    for (ip, service) in &plan.missing {
        tracing::info!(%ip, "writing the missing IPAddress of a Service's ClusterIP");
        allocator.claim_ip(*ip, service).await?;
    }
    for (ip, revision) in &plan.orphans {
        tracing::info!(%ip, "deleting an IPAddress no Service holds");
        match store.delete(&ip_key(*ip), Some(*revision)).await {
            Ok(_) | Err(StoreError::NotFound(_)) | Err(StoreError::Conflict { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(plan)
}

/// Runs [`repair_once`] every interval until `cancel` fires.
pub async fn run(allocator: Allocator, cancel: CancellationToken) {
    let mut tick = tokio::time::interval(INTERVAL);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        if let Err(e) = repair_once(&allocator).await {
            tracing::warn!(error = %e, "repairing ClusterIP addresses");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_api::kinds::networking::ipaddress::for_service;
    use serde_json::json;

    fn service(ns: &str, name: &str, ip: &str) -> Value {
        json!({"metadata": {"namespace": ns, "name": name}, "spec": {"clusterIP": ip}})
    }

    fn address(ip: &str, ns: &str, name: &str, created: &str) -> StoredAddress {
        StoredAddress {
            object: for_service(ip, "IPv4", ns, name, "u", created),
            revision: 7,
        }
    }

    #[test]
    fn plans_missing_and_old_orphaned_addresses_only() {
        let now: jiff::Timestamp = "2026-01-01T00:10:00Z".parse().unwrap();
        let services = [
            service("default", "kept", "10.43.0.10"),
            service("default", "lost", "10.43.0.11"),
            service("default", "headless", "None"),
        ];
        let mut foreign = address("10.43.0.99", "default", "gone", "2026-01-01T00:00:00Z");
        foreign.object["metadata"]["labels"] = json!({});
        let addresses = [
            address("10.43.0.10", "default", "kept", "2026-01-01T00:00:00Z"),
            address("10.43.0.20", "default", "gone", "2026-01-01T00:00:00Z"),
            address("10.43.0.21", "default", "creating", "2026-01-01T00:09:30Z"),
            // Names another Service than the one holding it: left alone.
            address("10.43.0.11", "other", "stale", "2026-01-01T00:00:00Z"),
            foreign,
        ];
        let plan = plan(&services, &addresses, now);
        let missing: Vec<Ipv4Addr> = plan.missing.iter().map(|(ip, _)| *ip).collect();
        assert!(missing.is_empty(), "10.43.0.11 has an object: {missing:?}");
        let orphans: Vec<String> = plan.orphans.iter().map(|(ip, _)| ip.to_string()).collect();
        assert_eq!(orphans, ["10.43.0.20"]);

        let plan = super::plan(&services, &addresses[..1], now);
        assert_eq!(plan.missing.len(), 1);
        assert_eq!(plan.missing[0].0.to_string(), "10.43.0.11");
    }

    #[tokio::test]
    async fn a_deleted_address_of_a_live_service_is_written_again() {
        use crate::store::sqlite::SqliteStore;
        use crate::store::Store;
        use std::sync::Arc;
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path().join("db")).unwrap());
        let alloc = Allocator::new(Arc::clone(&store), "10.43.0.0/16".parse().unwrap());
        let mut svc = json!({"metadata": {"name": "web", "namespace": "default"}, "spec": {"ports": [{"port": 80}]}});
        alloc.allocate("Service", &mut svc).await.unwrap();
        let services = catalog::builtin("", "v1", "services").unwrap();
        store
            .create(
                &services.key(Some("default"), "web"),
                serde_json::to_vec(&svc).unwrap(),
            )
            .await
            .unwrap();
        let ip = cluster_ip(&svc).unwrap();
        store.delete(&ip_key(ip), None).await.unwrap();
        let plan = repair_once(&alloc).await.unwrap();
        assert_eq!(plan.missing.len(), 1);
        assert!(store.get(&ip_key(ip)).await.unwrap().is_some());
        let mut thief = json!({"metadata": {"name": "b", "namespace": "default"}, "spec": {"clusterIP": ip.to_string(), "ports": [{"port": 80}]}});
        assert!(alloc.allocate("Service", &mut thief).await.is_err());
    }
}
