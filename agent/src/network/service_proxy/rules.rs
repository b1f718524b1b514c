//! Service ports → one nftables table, pure. Lookups are maps, not rule
//! lists, so a packet costs the same with ten Services or ten thousand and
//! the table is a few chains plus elements: a verdict map from
//! (address, protocol, port) to a chain per endpoint count, which DNATs
//! through a map keyed by (address, protocol, port, random bucket). Traffic
//! from outside this node's pod range is masqueraded (kube-proxy's
//! `--detect-local-mode=NodeCIDR`), as is a pod reaching itself; outside
//! traffic under `externalTrafficPolicy: Local` keeps its source address.

mod script;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use super::endpoints::{Endpoint, ServicePort};
pub use script::Replacement;

/// The mark that asks postrouting to masquerade.
const MASQUERADE_MARK: &str = "0x4000";

/// Which traffic a dispatch chain handles, which decides what it masquerades.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Traffic {
    /// To a ClusterIP: masqueraded unless it comes from this node's pods.
    Cluster,
    /// To an external or load-balancer IP, or a NodePort: always masqueraded.
    External,
    /// Outside traffic under `externalTrafficPolicy: Local`: never masqueraded.
    ExternalLocal,
}

impl Traffic {
    fn word(self) -> &'static str {
        match self {
            Self::Cluster => "cluster",
            Self::External => "external",
            Self::ExternalLocal => "local",
        }
    }

    fn mark_rule(self, pod_cidr: Option<&str>) -> Option<String> {
        match (self, pod_cidr) {
            (Self::Cluster, Some(cidr)) => Some(format!(
                "ip saddr != {cidr} meta mark set {MASQUERADE_MARK}"
            )),
            (Self::Cluster | Self::External, _) => Some(format!("meta mark set {MASQUERADE_MARK}")),
            (Self::ExternalLocal, _) => None,
        }
    }
}

/// How packets find their endpoints: keyed by destination address
/// (ClusterIPs, external IPs) or by port alone (NodePorts); the fallback
/// maps hold the cluster-wide endpoints that pods and the node itself get
/// for outside addresses under `externalTrafficPolicy: Local`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Key {
    Address,
    NodePort,
    AddressFallback,
    NodePortFallback,
}

impl Key {
    /// (chain word, what the packet is looked up by, the endpoint map).
    fn parts(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Self::Address => (
                "ip",
                "ip daddr . meta l4proto . th dport",
                "address_endpoints",
            ),
            Self::NodePort => ("np", "meta l4proto . th dport", "node_port_endpoints"),
            Self::AddressFallback => (
                "ipfb",
                "ip daddr . meta l4proto . th dport",
                "address_fallback_endpoints",
            ),
            Self::NodePortFallback => (
                "npfb",
                "meta l4proto . th dport",
                "node_port_fallback_endpoints",
            ),
        }
    }

    fn fallback(self) -> Self {
        match self {
            Self::Address | Self::AddressFallback => Self::AddressFallback,
            Self::NodePort | Self::NodePortFallback => Self::NodePortFallback,
        }
    }
}

/// The table being written, gathered before it is printed.
#[derive(Default)]
struct Table {
    /// Elements per map or set: key → value (none for sets).
    elements: Elements,
    /// (key, traffic, endpoint count) of every shared pick chain in use.
    pick_chains: BTreeSet<(Key, Traffic, usize)>,
    /// Chains of single Services (ClientIP affinity, Local policies): name → rules.
    chains: Chains,
    /// Sets of single Services (who went where under ClientIP affinity): name → declaration.
    sets: Chains,
}

/// Chains or sets of the table by name: name → body (rules or declaration lines).
type Chains = BTreeMap<String, String>;

/// Elements per map or set of the table: key → value (none for sets).
type Elements = BTreeMap<&'static str, BTreeMap<String, Option<String>>>;

/// The maps and sets of the table, in order: (name, declaration).
const CONTAINERS: [(&str, &str); 7] = [
    (
        "address_endpoints",
        "map address_endpoints {\n    typeof ip daddr . meta l4proto . th dport . numgen random mod 1 : ip daddr . th dport",
    ),
    (
        "node_port_endpoints",
        "map node_port_endpoints {\n    typeof meta l4proto . th dport . numgen random mod 1 : ip daddr . th dport",
    ),
    (
        "address_fallback_endpoints",
        "map address_fallback_endpoints {\n    typeof ip daddr . meta l4proto . th dport . numgen random mod 1 : ip daddr . th dport",
    ),
    (
        "node_port_fallback_endpoints",
        "map node_port_fallback_endpoints {\n    typeof meta l4proto . th dport . numgen random mod 1 : ip daddr . th dport",
    ),
    (
        "service_ips",
        "map service_ips {\n    type ipv4_addr . inet_proto . inet_service : verdict",
    ),
    (
        "node_ports",
        "map node_ports {\n    type inet_proto . inet_service : verdict",
    ),
    ("hairpin", "set hairpin {\n    type ipv4_addr . ipv4_addr"),
];

fn pick_chain(key: Key, traffic: Traffic, count: usize) -> String {
    format!("pick_{}_{}_{count}", key.parts().0, traffic.word())
}

impl Table {
    /// Sends (`key`, traffic of kind `traffic`) for `port` to `endpoints`;
    /// the verdict the lookup map holds for it.
    #[allow(clippy::too_many_arguments)]
    fn dispatch(
        &mut self,
        port: &ServicePort,
        key: Key,
        match_key: &str,
        traffic: Traffic,
        endpoints: &[Endpoint],
        local_only: bool,
        pod_cidr: Option<&str>,
    ) -> String {
        if endpoints.is_empty() {
            // No endpoint anywhere: reject; none here under a Local policy: drop.
            return if local_only && port.has_endpoints {
                "drop".to_owned()
            } else {
                "goto no_endpoints".to_owned()
            };
        }
        // A loopback endpoint (the API server of a one-machine cluster) is
        // never a pod talking to itself: masquerading 127.0.0.1 → 127.0.0.1
        // would rewrite every loopback connection on the host.
        for endpoint in endpoints.iter().filter(|e| e.local && !e.ip.is_loopback()) {
            self.insert(
                "hairpin",
                format!("{} . {}", endpoint.ip, endpoint.ip),
                None,
            );
        }
        if let Some(seconds) = port.affinity_seconds {
            return self.affinity_chain(
                &port.id,
                port.protocol,
                traffic,
                endpoints,
                seconds,
                pod_cidr,
            );
        }
        let map = key.parts().2;
        for (bucket, endpoint) in endpoints.iter().enumerate() {
            self.insert(
                map,
                format!("{match_key} . {bucket}"),
                Some(format!("{} . {}", endpoint.ip, endpoint.port)),
            );
        }
        self.pick_chains.insert((key, traffic, endpoints.len()));
        format!("goto {}", pick_chain(key, traffic, endpoints.len()))
    }

    /// Chains for a port with ClientIP affinity: a client seen within the
    /// timeout goes back to the endpoint it had.
    fn affinity_chain(
        &mut self,
        port_id: &str,
        protocol: &str,
        traffic: Traffic,
        endpoints: &[Endpoint],
        seconds: u32,
        pod_cidr: Option<&str>,
    ) -> String {
        // Named after the port, so other Services coming and going leave it be.
        let chain = format!(
            "affinity_{:08x}_{}",
            crate::config::name_hash(port_id),
            traffic.word()
        );
        if self.chains.contains_key(&chain) {
            return format!("goto {chain}");
        }
        let mut dispatch = String::new();
        if let Some(rule) = traffic.mark_rule(pod_cidr) {
            let _ = writeln!(dispatch, "    {rule}");
        }
        let mut random = Vec::new();
        for (j, endpoint) in endpoints.iter().enumerate() {
            // Named after the endpoint (and the timeout), so an endpoint's
            // clients stay with it while others come and go.
            let to = format!(
                "{chain}_{:08x}",
                crate::config::name_hash(&format!("{}:{}", endpoint.ip, endpoint.port))
            );
            let set = format!("{to}_{seconds}s");
            self.sets.insert(
                set.clone(),
                format!("    type ipv4_addr\n    flags dynamic,timeout\n    timeout {seconds}s\n"),
            );
            self.chains.insert(
                to.clone(),
                format!(
                    "    update @{set} {{ ip saddr }}\n    meta l4proto {protocol} dnat ip to {}:{}\n",
                    endpoint.ip, endpoint.port
                ),
            );
            let _ = writeln!(dispatch, "    ip saddr @{set} goto {to}");
            random.push(format!("{j} : goto {to}"));
        }
        let _ = writeln!(
            dispatch,
            "    numgen random mod {} vmap {{ {} }}",
            endpoints.len(),
            random.join(", ")
        );
        self.chains.insert(chain.clone(), dispatch);
        format!("goto {chain}")
    }

    fn insert(&mut self, container: &'static str, key: String, value: Option<String>) {
        self.elements
            .entry(container)
            .or_default()
            .insert(key, value);
    }

    fn add(&mut self, port: &ServicePort, pod_cidr: Option<&str>) {
        let protocol = port.protocol;
        if let Some(cluster_ip) = port.cluster_ip {
            let key = format!("{cluster_ip} . {protocol} . {}", port.port);
            let verdict = self.dispatch(
                port,
                Key::Address,
                &key,
                Traffic::Cluster,
                &port.cluster_endpoints,
                port.internal_local,
                pod_cidr,
            );
            self.insert("service_ips", key, Some(verdict));
        }
        let outside = if port.external_local {
            Traffic::ExternalLocal
        } else {
            Traffic::External
        };
        for external_ip in &port.external_ips {
            let key = format!("{external_ip} . {protocol} . {}", port.port);
            let verdict = self.outside(port, Key::Address, &key, outside, pod_cidr);
            self.insert("service_ips", key, Some(verdict));
        }
        if let Some(node_port) = port.node_port {
            let key = format!("{protocol} . {node_port}");
            let verdict = self.outside(port, Key::NodePort, &key, outside, pod_cidr);
            self.insert("node_ports", key, Some(verdict));
        }
    }

    /// The verdict for outside traffic to `port` found by `match_key`. Under
    /// `externalTrafficPolicy: Local`, this node's pods and the node itself
    /// still reach every endpoint, as kube-proxy short-circuits them.
    fn outside(
        &mut self,
        port: &ServicePort,
        key: Key,
        match_key: &str,
        traffic: Traffic,
        pod_cidr: Option<&str>,
    ) -> String {
        let local = self.dispatch(
            port,
            key,
            match_key,
            traffic,
            &port.external_endpoints,
            port.external_local,
            pod_cidr,
        );
        if traffic != Traffic::ExternalLocal {
            return local;
        }
        let everywhere = self.dispatch(
            port,
            key.fallback(),
            match_key,
            Traffic::Cluster,
            &port.cluster_endpoints,
            port.internal_local,
            pod_cidr,
        );
        let chain = format!(
            "local_{:08x}_{}",
            crate::config::name_hash(&port.id),
            key.parts().0
        );
        if !self.chains.contains_key(&chain) {
            let mut rules = String::new();
            if let Some(cidr) = pod_cidr {
                let _ = writeln!(rules, "    ip saddr {cidr} {everywhere}");
            }
            let _ = writeln!(rules, "    fib saddr type local {everywhere}\n    {local}");
            self.chains.insert(chain.clone(), rules);
        }
        format!("goto {chain}")
    }
}

/// The fewest pick chains a kind of lookup keeps, whatever is in use.
const PICK_CHAINS_KEPT: usize = 16;

/// Every pick chain the table declares: for each kind of lookup in use, one
/// per endpoint count up to a power of two (at least 16) above the largest
/// in use, so a Service scaling up or down changes elements, not chains.
fn pick_chains_kept(used: &BTreeSet<(Key, Traffic, usize)>) -> BTreeSet<(Key, Traffic, usize)> {
    let mut kept = BTreeSet::new();
    let kinds: BTreeSet<(Key, Traffic)> = used.iter().map(|(k, t, _)| (*k, *t)).collect();
    for (key, traffic) in kinds {
        let largest = used
            .iter()
            .filter(|(k, t, _)| (*k, *t) == (key, traffic))
            .map(|(_, _, n)| *n)
            .max()
            .unwrap_or(1);
        let limit = largest.next_power_of_two().max(PICK_CHAINS_KEPT);
        kept.extend((1..=limit).map(|count| (key, traffic, count)));
    }
    kept
}

/// A node's Service table: its chains and sets (the structure) and the
/// elements of its maps and sets. Changes are made in place, element by
/// element and chain by chain, so ClientIP affinity and established flows
/// of everything else are untouched and a resync costs what changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
    chains: Chains,
    sets: Chains,
    elements: Elements,
}

/// The table for `ports` on a node whose pods take addresses from
/// `pod_cidr` (when known; without it, all Service traffic is masqueraded).
pub fn rules(ports: &[ServicePort], pod_cidr: Option<&str>) -> Rules {
    let mut gathered = Table::default();
    for port in ports {
        gathered.add(port, pod_cidr);
    }
    let mut chains = gathered.chains;
    // Upstream rejects traffic to a Service without endpoints.
    chains.insert("no_endpoints".to_owned(), "    reject\n".to_owned());
    for (key, traffic, count) in &pick_chains_kept(&gathered.pick_chains) {
        let mut rules = String::new();
        if let Some(rule) = traffic.mark_rule(pod_cidr) {
            let _ = writeln!(rules, "    {rule}");
        }
        let (_, lookup, map) = key.parts();
        let _ = writeln!(
            rules,
            "    dnat ip to {lookup} . numgen random mod {count} map @{map}"
        );
        chains.insert(pick_chain(*key, *traffic, *count), rules);
    }
    chains.insert(
        "services".to_owned(),
        "    ip daddr . meta l4proto . th dport vmap @service_ips\n".to_owned(),
    );
    // NodePorts answer on this node's own addresses only, never on traffic
    // passing through to others.
    chains.insert(
        "nodeports".to_owned(),
        "    fib daddr type local meta l4proto . th dport vmap @node_ports\n".to_owned(),
    );
    Rules {
        chains,
        sets: gathered.sets,
        elements: gathered.elements,
    }
}

/// The nft script that replaces table `table` with rules for `ports` (see [`rules`]).
pub fn script(table: &str, ports: &[ServicePort], pod_cidr: Option<&str>) -> String {
    rules(ports, pod_cidr).script(table)
}

#[cfg(test)]
mod tests {
    use super::super::endpoints::service_ports;
    use super::*;
    use k8s_openapi::api::core::v1::Service;
    use k8s_openapi::api::discovery::v1::EndpointSlice;
    use serde_json::json;

    fn service(extra: serde_json::Value) -> Service {
        let mut spec = json!({"clusterIP": "10.43.0.10", "type": "NodePort", "ports": [{"name": "http", "port": 8080, "protocol": "TCP", "nodePort": 30080}]});
        for (k, v) in extra.as_object().unwrap() {
            spec[k] = v.clone();
        }
        serde_json::from_value(
            json!({"metadata": {"name": "web", "namespace": "default"}, "spec": spec}),
        )
        .unwrap()
    }

    fn slice(ready: bool) -> EndpointSlice {
        serde_json::from_value(json!({
            "metadata": {"name": "web-abc", "namespace": "default", "labels": {"kubernetes.io/service-name": "web"}},
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": 80, "protocol": "TCP"}],
            "endpoints": [
                {"addresses": ["10.42.0.5"], "nodeName": "n1", "conditions": {"ready": true}},
                {"addresses": ["10.42.1.6"], "nodeName": "n2", "conditions": {"ready": ready}}
            ]
        }))
        .unwrap()
    }

    #[test]
    fn ready_endpoints_are_picked_at_random_through_maps() {
        let ports = service_ports(&[service(json!({}))], &[slice(true)], "n1");
        let text = script("berth_n1", &ports, Some("10.42.0.0/24"));
        assert!(
            text.starts_with("table ip berth_n1 {}\ndelete table ip berth_n1\n"),
            "{text}"
        );
        assert!(
            text.contains("10.43.0.10 . tcp . 8080 : goto pick_ip_cluster_2"),
            "{text}"
        );
        assert!(
            text.contains("10.43.0.10 . tcp . 8080 . 0 : 10.42.0.5 . 80"),
            "{text}"
        );
        assert!(
            text.contains("10.43.0.10 . tcp . 8080 . 1 : 10.42.1.6 . 80"),
            "{text}"
        );
        assert!(
            text.contains("tcp . 30080 : goto pick_np_external_2"),
            "{text}"
        );
        assert!(
            text.contains("ip saddr != 10.42.0.0/24 meta mark set 0x4000"),
            "only traffic from outside the node's pods is masqueraded: {text}"
        );
        assert!(text.contains("10.42.0.5 . 10.42.0.5"), "hairpin: {text}");
        let unready = service_ports(&[service(json!({}))], &[slice(false)], "n1");
        assert_eq!(
            unready[0].cluster_endpoints.len(),
            1,
            "unready endpoints get no traffic"
        );
    }

    #[test]
    fn loopback_endpoints_are_not_hairpinned() {
        let loopback: EndpointSlice = serde_json::from_value(json!({
            "metadata": {"name": "web-abc", "namespace": "default", "labels": {"kubernetes.io/service-name": "web"}},
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": 80, "protocol": "TCP"}],
            "endpoints": [{"addresses": ["127.0.0.1"], "nodeName": "n1", "conditions": {"ready": true}}]
        }))
        .unwrap();
        let ports = service_ports(&[service(json!({}))], &[loopback], "n1");
        let text = script("berth_n1", &ports, Some("10.42.0.0/24"));
        assert!(
            text.contains("10.43.0.10 . tcp . 8080 . 0 : 127.0.0.1 . 80"),
            "{text}"
        );
        assert!(
            !text.contains("127.0.0.1 . 127.0.0.1"),
            "loopback traffic of the host must keep its source: {text}"
        );
    }

    #[test]
    fn policies_decide_between_reject_drop_and_keeping_the_source() {
        let local = service(json!({"externalTrafficPolicy": "Local"}));
        let both =
            service(json!({"externalTrafficPolicy": "Local", "internalTrafficPolicy": "Local"}));
        let chain = format!(
            "local_{:08x}_np",
            crate::config::name_hash("default/web:http")
        );
        // Seen from n3, which runs no endpoint: outside traffic is dropped,
        // its own pods still reach the endpoints elsewhere.
        let text = script(
            "t",
            &service_ports(std::slice::from_ref(&local), &[slice(true)], "n3"),
            Some("10.42.3.0/24"),
        );
        assert!(
            text.contains(&format!(
                "chain {chain} {{\n    ip saddr 10.42.3.0/24 goto pick_npfb_cluster_2\n    fib saddr type local goto pick_npfb_cluster_2\n    drop\n  }}"
            )),
            "{text}"
        );
        // With internalTrafficPolicy Local too, the ClusterIP drops as well.
        let text = script("t", &service_ports(&[both], &[slice(true)], "n3"), None);
        assert!(text.contains("10.43.0.10 . tcp . 8080 : drop"), "{text}");
        // Seen from n1: outside traffic goes to its endpoint unmasqueraded.
        let text = script(
            "t",
            &service_ports(&[local], &[slice(true)], "n1"),
            Some("10.42.0.0/24"),
        );
        assert!(
            text.contains(&format!("tcp . 30080 : goto {chain}")),
            "{text}"
        );
        assert!(text.contains("    goto pick_np_local_1\n  }"), "{text}");
        assert!(
            !text.contains("chain pick_np_local_1 {\n    meta mark"),
            "{text}"
        );
        // No endpoints anywhere: rejected.
        let text = script("t", &service_ports(&[service(json!({}))], &[], "n1"), None);
        assert!(
            text.contains("10.43.0.10 . tcp . 8080 : goto no_endpoints"),
            "{text}"
        );
    }

    #[test]
    fn affinity_sends_a_client_back_to_its_endpoint() {
        let sticky = service(
            json!({"sessionAffinity": "ClientIP", "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 60}}}),
        );
        let text = script("t", &service_ports(&[sticky], &[slice(true)], "n1"), None);
        assert!(text.contains("timeout 60s"), "{text}");
        let chain = format!(
            "affinity_{:08x}_cluster",
            crate::config::name_hash("default/web:http")
        );
        let to = |ip: &str| format!("{chain}_{:08x}", crate::config::name_hash(ip));
        let second = to("10.42.1.6:80");
        assert!(
            text.contains(&format!("ip saddr @{second}_60s goto {second}")),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "update @{}_60s {{ ip saddr }}",
                to("10.42.0.5:80")
            )),
            "{text}"
        );
    }

    #[test]
    fn an_affinity_endpoint_leaving_keeps_the_others_clients() {
        let sticky = service(json!({"sessionAffinity": "ClientIP"}));
        let before = rules(
            &service_ports(std::slice::from_ref(&sticky), &[slice(true)], "n1"),
            None,
        );
        let after = rules(&service_ports(&[sticky], &[slice(false)], "n1"), None);
        let chain = format!(
            "affinity_{:08x}_cluster",
            crate::config::name_hash("default/web:http")
        );
        let stays = format!("{chain}_{:08x}", crate::config::name_hash("10.42.0.5:80"));
        let leaves = format!("{chain}_{:08x}", crate::config::name_hash("10.42.1.6:80"));
        let delta = after.delta("t", &before);
        assert!(
            delta.contains(&format!("flush chain ip t {chain}\n")),
            "{delta}"
        );
        assert!(
            delta.contains(&format!("delete chain ip t {leaves}\n")),
            "{delta}"
        );
        assert!(
            delta.contains(&format!("delete set ip t {leaves}_10800s\n")),
            "{delta}"
        );
        assert!(
            !delta.contains(&format!("set ip t {stays}_10800s")),
            "{delta}"
        );
        assert!(!delta.contains(&format!("chain ip t {stays}\n")), "{delta}");
        // The script nft gets: the table as it was, then the change.
        let checked = crate::network::nft::check(&format!("{}{delta}", before.script("t")));
        assert!(checked.is_ok(), "{checked:?}");
    }

    #[test]
    fn endpoint_changes_touch_elements_only() {
        let before = rules(
            &service_ports(&[service(json!({}))], &[slice(true)], "n1"),
            None,
        );
        let after = rules(
            &service_ports(&[service(json!({}))], &[slice(false)], "n1"),
            None,
        );
        // One endpoint fewer is another pick chain, already declared.
        let delta = after.delta("t", &before);
        assert!(delta.contains("goto pick_ip_cluster_1"), "{delta}");
        assert!(!delta.contains("chain"), "{delta}");
        let moved = serde_json::from_value::<EndpointSlice>(json!({
            "metadata": {"name": "web-abc", "namespace": "default", "labels": {"kubernetes.io/service-name": "web"}},
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": 80, "protocol": "TCP"}],
            "endpoints": [
                {"addresses": ["10.42.0.5"], "nodeName": "n1", "conditions": {"ready": true}},
                {"addresses": ["10.42.1.9"], "nodeName": "n2", "conditions": {"ready": true}}
            ]
        }))
        .unwrap();
        let after = rules(&service_ports(&[service(json!({}))], &[moved], "n1"), None);
        let delta = after.delta("t", &before);
        assert_eq!(
            delta,
            "delete element ip t address_endpoints { 10.43.0.10 . tcp . 8080 . 1 }\n\
             add element ip t address_endpoints { 10.43.0.10 . tcp . 8080 . 1 : 10.42.1.9 . 80 }\n\
             delete element ip t node_port_endpoints { tcp . 30080 . 1 }\n\
             add element ip t node_port_endpoints { tcp . 30080 . 1 : 10.42.1.9 . 80 }\n"
        );
        assert_eq!(after.delta("t", &after), "");
    }

    #[test]
    fn a_replacement_loads_unhooked_in_parts_then_swaps() {
        let ports = service_ports(&[service(json!({}))], &[slice(true)], "n1");
        let wanted = rules(&ports, None);
        let replacement = wanted.replacement("new", Some("old"), 3);
        assert!(!replacement.skeleton.contains("hook"), "{replacement:?}");
        assert!(replacement.skeleton.contains("chain services"));
        // Every element is in exactly one batch, the batches about equal.
        let loaded: usize = replacement
            .batches
            .iter()
            .map(|batch| {
                batch.matches(" : ").count() + batch.matches("10.42.0.5 . 10.42.0.5").count()
            })
            .sum();
        assert_eq!(loaded, wanted.element_count());
        assert_eq!(replacement.batches.len(), 3, "{replacement:?}");
        assert!(replacement
            .batches
            .iter()
            .all(|batch| batch.starts_with("add element ip new ")));
        assert!(replacement
            .swap
            .starts_with("table ip new {\n  chain prerouting {\n    type nat hook prerouting"));
        assert!(replacement
            .swap
            .ends_with("table ip old {}\ndelete table ip old\n"));
        let checked = crate::network::nft::check(&replacement.single());
        assert!(checked.is_ok(), "{checked:?}");
    }

    #[test]
    fn nft_accepts_the_script() {
        let services = [
            service(json!({})),
            service(
                json!({"clusterIP": "10.43.0.11", "externalIPs": ["192.0.2.1"], "externalTrafficPolicy": "Local", "ports": [{"name": "http", "port": 80, "nodePort": 30081, "protocol": "UDP"}]}),
            ),
            service(
                json!({"clusterIP": "10.43.0.12", "sessionAffinity": "ClientIP", "ports": [{"name": "http", "port": 80, "nodePort": 30082}]}),
            ),
            service(
                json!({"clusterIP": "10.43.0.13", "ports": [{"name": "other", "port": 80}], "type": "ClusterIP"}),
            ),
        ];
        let ports = service_ports(&services, &[slice(true)], "n1");
        let checked =
            crate::network::nft::check(&script("berth_check", &ports, Some("10.42.0.0/24")));
        assert!(checked.is_ok(), "{checked:?}");
        // An empty table is valid too.
        assert!(script("t", &[], None).contains("chain services"));
    }
}
