//! Service ClusterIP and NodePort allocation. Each allocated address or port
//! is a key in the store, created with create-if-absent, so two concurrent
//! requests can never get the same one and a restart forgets nothing. An
//! address's key is its `networking.k8s.io/v1` IPAddress object, as upstream's
//! IPAddress-backed allocator keeps them, so `kubectl get ipaddresses` shows
//! exactly what is taken.

mod cidr;
mod node_ports;
pub mod repair;

pub use cidr::Cidr;
pub use node_ports::NODE_PORT_RANGE;
use node_ports::{health_check_port, node_ports};

use std::net::Ipv4Addr;
use std::sync::Arc;

use berth_api::kinds::networking::ipaddress;
use rand::Rng;
use serde_json::{json, Value};

use super::catalog::{self, ResourceInfo};
use super::errors::{ApiError, FieldCause, Target};
use crate::store::{Store, StoreError};

/// Where addresses were claimed before they were IPAddress objects; moved
/// over at start-up.
const LEGACY_IP_PREFIX: &str = "/registry/ranges/serviceips/";
const PORT_PREFIX: &str = "/registry/ranges/servicenodeports/";

/// The IPAddress resource, whose objects are the address claims.
fn ip_resource() -> &'static ResourceInfo {
    catalog::builtin("networking.k8s.io", "v1", "ipaddresses").expect("IP addresses served")
}

/// The store key claiming `ip`: its IPAddress object's.
fn ip_key(ip: Ipv4Addr) -> String {
    ip_resource().key(None, &ip.to_string())
}

/// The ClusterIP a Service holds (none when headless or ExternalName).
fn cluster_ip(service: &Value) -> Option<Ipv4Addr> {
    service
        .pointer("/spec/clusterIP")
        .and_then(Value::as_str)?
        .parse()
        .ok()
}

/// What one create allocated, so a failed create can give it back.
#[derive(Debug, Default)]
pub struct Allocation {
    keys: Vec<String>,
}

/// Hands out ClusterIPs from the service CIDR and NodePorts from 30000–32767.
#[derive(Clone)]
pub struct Allocator {
    store: Arc<dyn Store>,
    service_cidr: Cidr,
}

/// A 422 about one field of the Service being allocated.
fn rejected(obj: &Value, cause: FieldCause) -> ApiError {
    ApiError::Invalid(service_target(obj), vec![cause])
}

fn service_target(obj: &Value) -> Target {
    Target {
        group: String::new(),
        resource: "services".into(),
        kind: "Service".into(),
        name: obj
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
    }
}

impl Allocator {
    /// An allocator over `service_cidr`, persisting in `store`.
    pub fn new(store: Arc<dyn Store>, service_cidr: Cidr) -> Self {
        Self {
            store,
            service_cidr,
        }
    }

    /// The address of the `kubernetes` Service: the first of the range.
    pub fn api_service_ip(&self) -> Ipv4Addr {
        self.service_cidr.nth(1)
    }

    /// The service CIDR addresses come from.
    pub fn service_cidr(&self) -> Cidr {
        self.service_cidr
    }

    /// Creates `key` with `value` unless it exists; whether this call took it.
    async fn create_if_absent(&self, key: &str, value: &Value) -> Result<bool, ApiError> {
        match self
            .store
            .create(key, serde_json::to_vec(value).unwrap_or_default())
            .await
        {
            Ok(_) => Ok(true),
            Err(StoreError::AlreadyExists(_)) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Claims a node port for `owner`.
    async fn claim(&self, key: String, owner: &Value) -> Result<bool, ApiError> {
        let who = json!({"namespace": owner.pointer("/metadata/namespace"), "name": owner.pointer("/metadata/name")});
        self.create_if_absent(&key, &who).await
    }

    /// Claims `ip` for the Service `owner` by creating its IPAddress object.
    async fn claim_ip(&self, ip: Ipv4Addr, owner: &Value) -> Result<bool, ApiError> {
        let text = |field: &str| {
            owner
                .pointer(&format!("/metadata/{field}"))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let address = ipaddress::for_service(
            &ip.to_string(),
            "IPv4",
            &text("namespace"),
            &text("name"),
            &uuid::Uuid::new_v4().to_string(),
            &jiff::Timestamp::now()
                .strftime("%Y-%m-%dT%H:%M:%SZ")
                .to_string(),
        );
        self.create_if_absent(&ip_key(ip), &address).await
    }

    /// Allocates what a new object needs (Services: ClusterIP and NodePorts).
    pub async fn allocate(&self, kind: &str, obj: &mut Value) -> Result<Allocation, ApiError> {
        let mut allocation = Allocation::default();
        if kind != "Service" {
            return Ok(allocation);
        }
        match self.allocate_service(obj, &mut allocation).await {
            Ok(()) => Ok(allocation),
            Err(e) => {
                self.release(&allocation).await;
                Err(e)
            }
        }
    }

    async fn allocate_service(
        &self,
        obj: &mut Value,
        allocation: &mut Allocation,
    ) -> Result<(), ApiError> {
        if service_type(obj) == "ExternalName" {
            return Ok(());
        }
        let requested = obj
            .pointer("/spec/clusterIP")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let ip = if requested == "None" {
            "None".to_owned()
        } else if requested.is_empty() {
            self.allocate_ip(obj, allocation).await?
        } else {
            let addr: Ipv4Addr = requested.parse().map_err(|_| {
                rejected(
                    obj,
                    FieldCause::invalid(
                        "spec.clusterIPs[0]",
                        &json!(requested),
                        "must be a valid IP address",
                    ),
                )
            })?;
            if !self.service_cidr.contains(addr) {
                return Err(rejected(
                    obj,
                    FieldCause::invalid(
                        "spec.clusterIPs",
                        &json!([requested]),
                        "failed to allocate IP: the provided IP is not in the valid range",
                    ),
                ));
            }
            if !self.claim_ip(addr, obj).await? {
                return Err(rejected(
                    obj,
                    FieldCause::invalid(
                        "spec.clusterIPs",
                        &json!([requested]),
                        format!(
                            "failed to allocate IP {requested}: provided IP is already allocated"
                        ),
                    ),
                ));
            }
            allocation.keys.push(ip_key(addr));
            requested
        };
        obj["spec"]["clusterIP"] = json!(ip);
        obj["spec"]["clusterIPs"] = json!([ip]);
        self.allocate_node_ports(obj, None, allocation).await
    }

    /// Allocates what an updated object newly needs (node ports of a Service
    /// that became NodePort, or gained ports; an address for one that stopped
    /// being ExternalName), keeping what it already held.
    pub async fn allocate_update(
        &self,
        kind: &str,
        old: &Value,
        new: &mut Value,
    ) -> Result<Allocation, ApiError> {
        let mut allocation = Allocation::default();
        if kind != "Service" {
            return Ok(allocation);
        }
        let allocated = if service_type(old) == "ExternalName" {
            self.allocate_service(new, &mut allocation).await
        } else {
            self.allocate_node_ports(new, Some(old), &mut allocation)
                .await
        };
        match allocated {
            Ok(()) => Ok(allocation),
            Err(e) => {
                self.release(&allocation).await;
                Err(e)
            }
        }
    }

    /// After an update is stored: gives back the node ports (and the ClusterIP)
    /// the new object dropped.
    pub async fn release_dropped(&self, kind: &str, old: &Value, new: &Value) {
        if kind != "Service" {
            return;
        }
        if let Some(ip) = cluster_ip(old).filter(|&ip| cluster_ip(new) != Some(ip)) {
            self.release(&Allocation {
                keys: vec![ip_key(ip)],
            })
            .await;
        }
        let kept: Vec<u16> = node_ports(Some(new))
            .into_iter()
            .map(|(_, _, n)| n)
            .chain(health_check_port(Some(new)))
            .collect();
        let keys = node_ports(Some(old))
            .into_iter()
            .map(|(_, _, n)| n)
            .chain(health_check_port(Some(old)))
            .filter(|n| !kept.contains(n))
            .map(|n| format!("{PORT_PREFIX}{n}"))
            .collect();
        self.release(&Allocation { keys }).await;
    }

    async fn allocate_ip(
        &self,
        obj: &Value,
        allocation: &mut Allocation,
    ) -> Result<String, ApiError> {
        // As upstream: the low band is kept for addresses given by hand
        // (the `kubernetes` and `kube-dns` Services'); random allocation
        // takes it only when the rest of the range is full.
        let (low, high) = self.service_cidr.dynamic_bands();
        for (first, last) in [high, low] {
            let usable = (last + 1).saturating_sub(first);
            if usable == 0 {
                continue;
            }
            let start = rand::rng().random_range(0..usable);
            for offset in 0..usable {
                let ip = self.service_cidr.nth(first + (start + offset) % usable);
                if self.claim_ip(ip, obj).await? {
                    allocation.keys.push(ip_key(ip));
                    return Ok(ip.to_string());
                }
            }
        }
        Err(ApiError::Internal(
            "failed to allocate a serviceIP: range is full".into(),
        ))
    }

    /// How many addresses the service range has.
    pub fn service_range_size(&self) -> u32 {
        self.service_cidr.size()
    }

    /// The `kube-dns` Service address: the tenth of the range, as upstream
    /// installers put it (10.43.0.10 for 10.43.0.0/16).
    pub fn dns_service_ip(&self) -> Ipv4Addr {
        self.service_cidr.nth(10)
    }

    /// Reserves the `kube-dns` Service address at start-up (idempotent).
    pub async fn reserve_dns_service_ip(&self) -> Result<(), ApiError> {
        let owner = json!({"metadata": {"namespace": "kube-system", "name": "kube-dns"}});
        self.claim_ip(self.dns_service_ip(), &owner)
            .await
            .map(|_| ())
    }

    /// Reserves the `kubernetes` Service address at start-up (idempotent).
    pub async fn reserve_api_service_ip(&self) -> Result<(), ApiError> {
        let owner = json!({"metadata": {"namespace": "default", "name": "kubernetes"}});
        self.claim_ip(self.api_service_ip(), &owner)
            .await
            .map(|_| ())
    }

    /// Turns addresses claimed by an older berth (plain keys naming their
    /// Service) into IPAddress objects, so none is handed out twice after an
    /// upgrade (idempotent; run at start-up before anything allocates).
    pub async fn migrate_legacy_claims(&self) -> Result<(), ApiError> {
        let page = self.store.list(LEGACY_IP_PREFIX, None, 0).await?;
        for kv in page.items {
            let Ok(ip) = kv.key[LEGACY_IP_PREFIX.len()..].parse::<Ipv4Addr>() else {
                continue;
            };
            let who: Value = serde_json::from_slice(&kv.value).unwrap_or_default();
            let owner = json!({"metadata": who});
            self.claim_ip(ip, &owner).await?;
            match self.store.delete(&kv.key, Some(kv.mod_revision)).await {
                Ok(_) | Err(StoreError::NotFound(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Gives back what a failed create allocated.
    pub async fn release(&self, allocation: &Allocation) {
        for key in &allocation.keys {
            if let Err(e) = self.store.delete(key, None).await {
                tracing::warn!(%key, error = %e, "could not release allocation");
            }
        }
    }

    /// Gives back what a deleted object held.
    pub async fn release_for(&self, kind: &str, obj: &Value) {
        if kind != "Service" {
            return;
        }
        let mut keys = Vec::new();
        keys.extend(cluster_ip(obj).map(ip_key));
        for port in obj
            .pointer("/spec/ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(p) = port.get("nodePort").and_then(Value::as_u64) {
                keys.push(format!("{PORT_PREFIX}{p}"));
            }
        }
        keys.extend(health_check_port(Some(obj)).map(|p| format!("{PORT_PREFIX}{p}")));
        self.release(&Allocation { keys }).await;
    }
}

/// A Service's `spec.type`, `ClusterIP` when unset (the API default).
fn service_type(obj: &Value) -> String {
    obj.pointer("/spec/type")
        .and_then(Value::as_str)
        .unwrap_or("ClusterIP")
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::SqliteStore;

    #[test]
    fn random_allocation_keeps_the_low_band_for_last() {
        // (range, low band, high band), as upstream's static subrange sizes it.
        let cases = [
            ("10.43.0.0/16", (2, 256), (257, 65534)),
            ("10.43.0.0/24", (2, 16), (17, 254)),
            ("10.43.0.0/28", (2, 14), (15, 14)),
        ];
        for (cidr, low, high) in cases {
            let cidr: Cidr = cidr.parse().unwrap();
            assert_eq!(cidr.dynamic_bands(), (low, high), "{cidr:?}");
        }
    }

    #[tokio::test]
    async fn the_dns_address_is_reserved_before_any_service() {
        let dir = tempfile::tempdir().unwrap();
        let alloc = allocator(&dir, "10.96.0.0/28");
        alloc.reserve_api_service_ip().await.unwrap();
        alloc.reserve_dns_service_ip().await.unwrap();
        assert_eq!(alloc.dns_service_ip().to_string(), "10.96.0.10");
        let mut seen = std::collections::HashSet::new();
        for i in 0..12 {
            let mut obj = json!({"metadata": {"namespace": "default", "name": format!("s{i}")},
                                 "spec": {"ports": [{"port": 80}]}});
            alloc.allocate("Service", &mut obj).await.unwrap();
            let ip = obj["spec"]["clusterIP"].as_str().unwrap().to_owned();
            assert_ne!(ip, "10.96.0.10");
            assert_ne!(ip, "10.96.0.1");
            assert!(seen.insert(ip));
        }
    }

    fn allocator(dir: &tempfile::TempDir, cidr: &str) -> Allocator {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path().join("db")).unwrap());
        Allocator::new(store, cidr.parse().unwrap())
    }

    #[tokio::test]
    async fn concurrent_services_never_share_an_ip_or_port() {
        let dir = tempfile::tempdir().unwrap();
        let alloc = allocator(&dir, "10.43.0.0/27");
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..29 {
            let alloc = alloc.clone();
            tasks.spawn(async move {
                let mut svc = json!({"metadata": {"name": format!("s{i}")}, "spec": {"type": "NodePort", "ports": [{"port": 80}]}});
                alloc.allocate("Service", &mut svc).await.unwrap();
                (svc["spec"]["clusterIP"].as_str().unwrap().to_owned(), svc["spec"]["ports"][0]["nodePort"].as_u64().unwrap())
            });
        }
        let mut ips = std::collections::HashSet::new();
        let mut ports = std::collections::HashSet::new();
        while let Some(result) = tasks.join_next().await {
            let (ip, port) = result.unwrap();
            assert!(ip != "10.43.0.1" && ip != "10.43.0.0", "{ip}");
            assert!(ips.insert(ip));
            assert!(ports.insert(port));
        }
        let mut one_more = json!({"metadata": {"name": "full"}, "spec": {"ports": [{"port": 80}]}});
        assert!(alloc.allocate("Service", &mut one_more).await.is_err());
    }

    #[tokio::test]
    async fn requested_ip_taken_twice_is_invalid() {
        let dir = tempfile::tempdir().unwrap();
        let alloc = allocator(&dir, "10.43.0.0/16");
        let mut a = json!({"metadata": {"name": "a"}, "spec": {"clusterIP": "10.43.0.50", "ports": [{"port": 80}]}});
        alloc.allocate("Service", &mut a).await.unwrap();
        let mut b = json!({"metadata": {"name": "b"}, "spec": {"clusterIP": "10.43.0.50", "ports": [{"port": 80}]}});
        let err = alloc.allocate("Service", &mut b).await.unwrap_err();
        assert!(
            err.to_string().contains("provided IP is already allocated"),
            "{err}"
        );
        alloc.release_for("Service", &a).await;
        alloc.allocate("Service", &mut b).await.unwrap();
    }

    #[tokio::test]
    async fn load_balancers_without_node_port_allocation_keep_only_those_asked_for() {
        let dir = tempfile::tempdir().unwrap();
        let alloc = allocator(&dir, "10.43.0.0/16");
        let mut svc = json!({"metadata": {"name": "direct"}, "spec": {
            "type": "LoadBalancer", "allocateLoadBalancerNodePorts": false,
            "ports": [{"port": 80}, {"port": 443, "nodePort": 30443}]}});
        alloc.allocate("Service", &mut svc).await.unwrap();
        let ports = &svc["spec"]["ports"];
        assert_eq!(ports[0].get("nodePort"), None, "{svc}");
        assert_eq!(ports[1]["nodePort"], 30443, "the one asked for is kept");
        let mut same = json!({"metadata": {"name": "other"}, "spec": {"type": "NodePort",
            "ports": [{"port": 80, "nodePort": 30443}]}});
        assert!(
            alloc.allocate("Service", &mut same).await.is_err(),
            "and claimed"
        );
        let mut allocating = json!({"metadata": {"name": "default"}, "spec": {
            "type": "LoadBalancer", "ports": [{"port": 80}]}});
        alloc.allocate("Service", &mut allocating).await.unwrap();
        assert!(allocating["spec"]["ports"][0]["nodePort"].is_u64());
    }

    #[tokio::test]
    async fn local_load_balancers_get_a_health_check_port_and_give_it_back() {
        let dir = tempfile::tempdir().unwrap();
        let allocator = allocator(&dir, "10.43.0.0/16");
        let mut lb = json!({"metadata": {"name": "lb"}, "spec": {"type": "LoadBalancer", "externalTrafficPolicy": "Local", "ports": [{"port": 80}]}});
        allocator.allocate("Service", &mut lb).await.unwrap();
        let check = lb["spec"]["healthCheckNodePort"].as_u64().unwrap();
        assert_ne!(check, lb["spec"]["ports"][0]["nodePort"].as_u64().unwrap());
        // Turning the policy to Cluster drops the port and gives it back.
        let mut cluster = lb.clone();
        cluster["spec"]["externalTrafficPolicy"] = json!("Cluster");
        allocator
            .allocate_update("Service", &lb, &mut cluster)
            .await
            .unwrap();
        assert!(cluster["spec"].get("healthCheckNodePort").is_none());
        allocator.release_dropped("Service", &lb, &cluster).await;
        let mut taken = json!({"metadata": {"name": "other"}, "spec": {"type": "NodePort", "ports": [{"port": 80, "nodePort": check}]}});
        allocator.allocate("Service", &mut taken).await.unwrap();
        // Asking for one on a NodePort Service is refused as upstream does.
        let mut wrong = json!({"metadata": {"name": "np"}, "spec": {"type": "NodePort", "healthCheckNodePort": 31000, "ports": [{"port": 80}]}});
        let error = allocator.allocate("Service", &mut wrong).await.unwrap_err();
        assert!(
            format!("{error:?}").contains("may only be set when"),
            "{error:?}"
        );
    }

    #[tokio::test]
    async fn each_cluster_ip_is_an_ipaddress_object_of_its_service() {
        let dir = tempfile::tempdir().unwrap();
        let alloc = allocator(&dir, "10.43.0.0/16");
        let mut svc = json!({"metadata": {"name": "web", "namespace": "shop"}, "spec": {"ports": [{"port": 80}]}});
        alloc.allocate("Service", &mut svc).await.unwrap();
        let ip: Ipv4Addr = svc["spec"]["clusterIP"].as_str().unwrap().parse().unwrap();
        let kv = alloc
            .store
            .get(&ip_key(ip))
            .await
            .unwrap()
            .expect("IPAddress stored");
        let address: Value = serde_json::from_slice(&kv.value).unwrap();
        assert_eq!(address["kind"], "IPAddress");
        assert_eq!(address["metadata"]["name"], ip.to_string());
        assert_eq!(
            address["metadata"]["labels"],
            json!({"ipaddress.kubernetes.io/ip-family": "IPv4", "ipaddress.kubernetes.io/managed-by": "ipallocator.k8s.io"})
        );
        assert_eq!(
            address["spec"]["parentRef"],
            json!({"resource": "services", "namespace": "shop", "name": "web"})
        );
        assert!(address["metadata"]["uid"]
            .as_str()
            .is_some_and(|u| !u.is_empty()));
        alloc.release_for("Service", &svc).await;
        assert!(alloc.store.get(&ip_key(ip)).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn legacy_claims_become_ipaddresses_and_stay_taken() {
        let dir = tempfile::tempdir().unwrap();
        let alloc = allocator(&dir, "10.43.0.0/16");
        let legacy = format!("{LEGACY_IP_PREFIX}10.43.0.50");
        alloc
            .store
            .create(&legacy, br#"{"namespace":"default","name":"old"}"#.to_vec())
            .await
            .unwrap();
        alloc.migrate_legacy_claims().await.unwrap();
        alloc.migrate_legacy_claims().await.unwrap();
        assert!(alloc.store.get(&legacy).await.unwrap().is_none());
        let ip: Ipv4Addr = "10.43.0.50".parse().unwrap();
        let kv = alloc
            .store
            .get(&ip_key(ip))
            .await
            .unwrap()
            .expect("migrated");
        let address: Value = serde_json::from_slice(&kv.value).unwrap();
        assert_eq!(address["spec"]["parentRef"]["name"], "old");
        let mut clash = json!({"metadata": {"name": "new", "namespace": "default"}, "spec": {"clusterIP": "10.43.0.50", "ports": [{"port": 80}]}});
        assert!(alloc.allocate("Service", &mut clash).await.is_err());
    }

    #[test]
    fn cidr_prints_as_parsed() {
        assert_eq!(
            "10.43.7.0/16".parse::<Cidr>().unwrap().to_string(),
            "10.43.0.0/16"
        );
    }

    #[tokio::test]
    async fn type_changes_allocate_keep_and_release_node_ports() {
        let dir = tempfile::tempdir().unwrap();
        let alloc = allocator(&dir, "10.43.0.0/16");
        let mut v1 = json!({"metadata": {"name": "a"}, "spec": {"ports": [{"port": 80, "protocol": "TCP"}]}});
        alloc.allocate("Service", &mut v1).await.unwrap();
        assert!(v1["spec"]["ports"][0].get("nodePort").is_none());

        let mut v2 = v1.clone();
        v2["spec"]["type"] = json!("NodePort");
        alloc
            .allocate_update("Service", &v1, &mut v2)
            .await
            .unwrap();
        let node_port = v2["spec"]["ports"][0]["nodePort"].as_u64().unwrap();

        let mut v3 = v2.clone();
        v3["spec"]["ports"][0]
            .as_object_mut()
            .unwrap()
            .remove("nodePort");
        v3["spec"]["ports"]
            .as_array_mut()
            .unwrap()
            .push(json!({"port": 443, "protocol": "TCP"}));
        alloc
            .allocate_update("Service", &v2, &mut v3)
            .await
            .unwrap();
        assert_eq!(
            v3["spec"]["ports"][0]["nodePort"].as_u64(),
            Some(node_port),
            "same port keeps its node port"
        );
        assert!(v3["spec"]["ports"][1]["nodePort"].as_u64().is_some());

        let mut v4 = v3.clone();
        v4["spec"]["type"] = json!("ClusterIP");
        alloc
            .allocate_update("Service", &v3, &mut v4)
            .await
            .unwrap();
        assert!(v4["spec"]["ports"][0].get("nodePort").is_none());
        alloc.release_dropped("Service", &v3, &v4).await;
        let mut reuse = json!({"metadata": {"name": "b"}, "spec": {"type": "NodePort", "ports": [{"port": 80, "nodePort": node_port}]}});
        alloc
            .allocate("Service", &mut reuse)
            .await
            .expect("released node port can be taken again");
    }

    #[tokio::test]
    async fn external_name_gives_back_its_address_and_gets_one_when_it_stops() {
        let dir = tempfile::tempdir().unwrap();
        let alloc = allocator(&dir, "10.43.0.0/16");
        let mut v1 = json!({"metadata": {"name": "a"}, "spec": {"clusterIP": "10.43.0.77", "ports": [{"port": 80}]}});
        alloc.allocate("Service", &mut v1).await.unwrap();
        let v2 = json!({"metadata": {"name": "a"}, "spec": {"type": "ExternalName", "externalName": "db.example.com", "ports": [{"port": 80}]}});
        alloc
            .allocate_update("Service", &v1, &mut v2.clone())
            .await
            .unwrap();
        alloc.release_dropped("Service", &v1, &v2).await;
        let mut other = json!({"metadata": {"name": "b"}, "spec": {"clusterIP": "10.43.0.77", "ports": [{"port": 80}]}});
        alloc
            .allocate("Service", &mut other)
            .await
            .expect("the address is free again");
        let mut v3 = json!({"metadata": {"name": "a"}, "spec": {"type": "NodePort", "ports": [{"port": 80}]}});
        alloc
            .allocate_update("Service", &v2, &mut v3)
            .await
            .unwrap();
        let ip = v3["spec"]["clusterIP"].as_str().unwrap();
        assert!(ip.starts_with("10.43.") && ip != "10.43.0.77", "{v3}");
        assert_eq!(v3["spec"]["clusterIPs"], json!([ip]));
        assert!(v3["spec"]["ports"][0]["nodePort"].as_u64().is_some());
    }
}
