//! Nodes → the routes, neighbour and forwarding entries this node needs to
//! reach every other node's pods, pure. A peer announcing a VXLAN endpoint
//! is reached through this node's VXLAN device when this node runs VXLAN
//! too; every other peer by a direct route via its address, which only
//! works when the two share an L2 network.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};

use k8s_openapi::api::core::v1::Node;

use crate::runtime::ipam::Cidr;

/// The Node annotation saying how the node reaches its peers (`routed` or `vxlan`).
pub const MODE_ANNOTATION: &str = "berth.dev/network-mode";
/// The Node annotation carrying the MAC address of the node's VXLAN device.
pub const VTEP_MAC_ANNOTATION: &str = "berth.dev/vxlan-mac";

/// How this node reaches pods on other nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A route per peer via the peer's address: nodes on one L2 network.
    Routed,
    /// An overlay through the kernel's VXLAN device: any nodes that reach
    /// each other over UDP.
    Vxlan,
}

impl Mode {
    /// The word used in flags and in the Node annotation.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Routed => "routed",
            Self::Vxlan => "vxlan",
        }
    }
}

impl std::str::FromStr for Mode {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "routed" => Ok(Self::Routed),
            "vxlan" => Ok(Self::Vxlan),
            other => Err(format!(
                "network mode {other:?} is not one of: routed, vxlan"
            )),
        }
    }
}

/// Another node whose pods this node must reach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// The Node's name.
    pub node: String,
    /// Its InternalIP.
    pub address: Ipv4Addr,
    /// Its podCIDR.
    pub pod_cidr: Cidr,
    /// The MAC of its VXLAN device, when it runs one.
    pub vtep_mac: Option<String>,
}

/// A route this node keeps for one peer's pods.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Route {
    /// The peer's podCIDR.
    pub destination: String,
    /// The next hop: the peer's address, or its VXLAN endpoint address.
    pub gateway: Ipv4Addr,
    /// The VXLAN device, for routes through the overlay.
    pub device: Option<String>,
}

/// A permanent neighbour entry on the VXLAN device: a peer's endpoint
/// address and its device's MAC.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Neighbour {
    /// The peer's endpoint address (its podCIDR's network address).
    pub address: Ipv4Addr,
    /// The peer's VXLAN MAC.
    pub mac: String,
}

/// A forwarding entry on the VXLAN device: where frames for a MAC go.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Forwarding {
    /// The peer's VXLAN MAC.
    pub mac: String,
    /// The peer node's address, the outer destination.
    pub destination: Ipv4Addr,
}

/// Everything this node keeps in the kernel for its peers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// One route per reachable peer.
    pub routes: BTreeSet<Route>,
    /// VXLAN neighbour entries.
    pub neighbours: BTreeSet<Neighbour>,
    /// VXLAN forwarding entries.
    pub forwarding: BTreeSet<Forwarding>,
}

fn annotation<'a>(node: &'a Node, key: &str) -> Option<&'a str> {
    node.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .map(String::as_str)
}

/// The node's IPv4 InternalIP.
pub fn internal_ip(node: &Node) -> Option<Ipv4Addr> {
    node.status
        .as_ref()?
        .addresses
        .iter()
        .flatten()
        .filter(|a| a.type_ == "InternalIP")
        .find_map(|a| a.address.parse::<Ipv4Addr>().ok())
}

/// The node's IPv4 podCIDR.
pub fn pod_cidr(node: &Node) -> Option<Cidr> {
    node.spec
        .as_ref()?
        .pod_cidr
        .as_deref()?
        .parse::<Cidr>()
        .ok()
        .filter(|c| c.network().is_ipv4())
}

/// The peers of node `me` among `nodes`: every other node with an IPv4
/// address and podCIDR that is not being deleted.
pub fn peers(nodes: &[Node], me: &str) -> Vec<Peer> {
    let mut peers: Vec<Peer> = nodes
        .iter()
        .filter(|n| n.metadata.name.as_deref() != Some(me))
        .filter(|n| n.metadata.deletion_timestamp.is_none())
        .filter_map(|node| {
            Some(Peer {
                node: node.metadata.name.clone()?,
                address: internal_ip(node)?,
                pod_cidr: pod_cidr(node)?,
                vtep_mac: (annotation(node, MODE_ANNOTATION) == Some(Mode::Vxlan.as_str()))
                    .then(|| annotation(node, VTEP_MAC_ANNOTATION))
                    .flatten()
                    .map(str::to_owned),
            })
        })
        .collect();
    peers.sort_by(|a, b| a.node.cmp(&b.node));
    peers
}

fn network_v4(cidr: &Cidr) -> Ipv4Addr {
    match cidr.network() {
        IpAddr::V4(address) => address,
        IpAddr::V6(_) => Ipv4Addr::UNSPECIFIED,
    }
}

/// The address a node's VXLAN device holds: its podCIDR's network address,
/// which no pod ever gets.
pub fn vtep_address(pod_cidr: &Cidr) -> Ipv4Addr {
    network_v4(pod_cidr)
}

/// What this node keeps for `peers`, running `mode` with VXLAN device
/// `device`. Peers on this very machine (`local` addresses) and podCIDRs
/// some other route already serves (`taken`) are left alone: the agent
/// never replaces a route it did not make.
pub fn plan(
    mode: Mode,
    device: &str,
    peers: &[Peer],
    local: &BTreeSet<Ipv4Addr>,
    taken: &BTreeSet<String>,
) -> Plan {
    let mut plan = Plan::default();
    for peer in peers {
        let destination = peer.pod_cidr.to_string();
        if local.contains(&peer.address) || taken.contains(&destination) {
            continue;
        }
        match (&peer.vtep_mac, mode) {
            (Some(mac), Mode::Vxlan) => {
                let gateway = vtep_address(&peer.pod_cidr);
                plan.routes.insert(Route {
                    destination,
                    gateway,
                    device: Some(device.to_owned()),
                });
                plan.neighbours.insert(Neighbour {
                    address: gateway,
                    mac: mac.clone(),
                });
                plan.forwarding.insert(Forwarding {
                    mac: mac.clone(),
                    destination: peer.address,
                });
            }
            _ => {
                plan.routes.insert(Route {
                    destination,
                    gateway: peer.address,
                    device: None,
                });
            }
        }
    }
    plan
}

/// A locally administered unicast MAC for node `name`'s VXLAN device,
/// stable across restarts so peers' entries stay right.
pub fn vtep_mac(name: &str) -> String {
    let hash = crate::config::name_hash(name).to_be_bytes();
    format!(
        "0a:b7:{:02x}:{:02x}:{:02x}:{:02x}",
        hash[0], hash[1], hash[2], hash[3]
    )
}

/// The name of node `name`'s VXLAN device (at most 15 bytes).
pub fn vxlan_device(name: &str) -> String {
    format!("bvx{:08x}", crate::config::name_hash(name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(name: &str, ip: &str, cidr: Option<&str>, vxlan: bool) -> Node {
        let mut annotations = serde_json::Map::new();
        if vxlan {
            annotations.insert(MODE_ANNOTATION.into(), json!("vxlan"));
            annotations.insert(VTEP_MAC_ANNOTATION.into(), json!(vtep_mac(name)));
        }
        serde_json::from_value(json!({
            "metadata": {"name": name, "annotations": annotations},
            "spec": {"podCIDR": cidr},
            "status": {"addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": name}]}
        }))
        .unwrap()
    }

    #[test]
    fn peers_skip_this_node_and_nodes_without_a_range() {
        let nodes = [
            node("b", "10.0.0.2", Some("10.42.1.0/24"), false),
            node("a", "10.0.0.1", Some("10.42.0.0/24"), false),
            node("c", "10.0.0.3", None, false),
        ];
        let peers = peers(&nodes, "a");
        assert_eq!(peers.len(), 1);
        assert_eq!(peers[0].node, "b");
        assert_eq!(peers[0].address, "10.0.0.2".parse::<Ipv4Addr>().unwrap());
        assert_eq!(peers[0].vtep_mac, None);
    }

    #[test]
    fn routed_peers_get_a_route_via_their_address() {
        let nodes = [node("b", "10.0.0.2", Some("10.42.1.0/24"), true)];
        let plan = plan(
            Mode::Routed,
            "bvx",
            &peers(&nodes, "a"),
            &BTreeSet::new(),
            &BTreeSet::new(),
        );
        assert_eq!(
            plan.routes.into_iter().collect::<Vec<_>>(),
            [Route {
                destination: "10.42.1.0/24".into(),
                gateway: "10.0.0.2".parse().unwrap(),
                device: None
            }]
        );
        assert!(plan.neighbours.is_empty() && plan.forwarding.is_empty());
    }

    #[test]
    fn vxlan_peers_get_route_neighbour_and_forwarding_entries() {
        let nodes = [
            node("b", "10.0.0.2", Some("10.42.1.0/24"), true),
            // A peer that runs routed is still reached directly.
            node("c", "10.0.0.3", Some("10.42.2.0/24"), false),
        ];
        let plan = plan(
            Mode::Vxlan,
            "bvx1",
            &peers(&nodes, "a"),
            &BTreeSet::new(),
            &BTreeSet::new(),
        );
        let routes: Vec<_> = plan.routes.into_iter().collect();
        assert_eq!(
            routes,
            [
                Route {
                    destination: "10.42.1.0/24".into(),
                    gateway: "10.42.1.0".parse().unwrap(),
                    device: Some("bvx1".into())
                },
                Route {
                    destination: "10.42.2.0/24".into(),
                    gateway: "10.0.0.3".parse().unwrap(),
                    device: None
                },
            ]
        );
        let mac = vtep_mac("b");
        assert_eq!(
            plan.neighbours.into_iter().collect::<Vec<_>>(),
            [Neighbour {
                address: "10.42.1.0".parse().unwrap(),
                mac: mac.clone()
            }]
        );
        assert_eq!(
            plan.forwarding.into_iter().collect::<Vec<_>>(),
            [Forwarding {
                mac,
                destination: "10.0.0.2".parse().unwrap()
            }]
        );
    }

    #[test]
    fn routes_others_made_and_peers_on_this_machine_are_left_alone() {
        let nodes = [
            node("b", "127.0.0.1", Some("10.42.1.0/24"), false),
            node("c", "10.0.0.3", Some("10.42.2.0/24"), false),
        ];
        let local = BTreeSet::from(["127.0.0.1".parse().unwrap()]);
        let taken = BTreeSet::from(["10.42.2.0/24".to_owned()]);
        let plan = plan(Mode::Routed, "bvx", &peers(&nodes, "a"), &local, &taken);
        assert!(plan.routes.is_empty(), "{plan:?}");
    }

    #[test]
    fn device_names_and_macs_are_stable_and_valid() {
        assert_eq!(vxlan_device("n1"), vxlan_device("n1"));
        assert!(vxlan_device("a-very-long-node-name.example.com").len() <= 15);
        let mac = vtep_mac("n1");
        assert_eq!(mac.len(), 17);
        assert!(
            mac.starts_with("0a:"),
            "locally administered unicast: {mac}"
        );
        assert_ne!(vtep_mac("n1"), vtep_mac("n2"));
        assert_eq!("vxlan".parse::<Mode>(), Ok(Mode::Vxlan));
        assert!("flannel".parse::<Mode>().is_err());
    }
}
