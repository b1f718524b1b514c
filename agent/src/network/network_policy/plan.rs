//! NetworkPolicies → what this node must enforce, with upstream's semantics:
//! a policy selects pods of its own namespace; a pod selected by no policy of
//! a direction is open in that direction; policies add up (a connection is
//! allowed when any rule of any policy selecting the pod allows it); an
//! empty rule list allows nothing; an empty `from`/`to` or `ports` matches
//! everything. Only this node's pods are targets: each node enforces for its
//! own. Pure: the nft text is `script.rs`'s job.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use berth_api::selector::LabelSelector;
use k8s_openapi::api::networking::v1::{NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort};
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as metav1;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::addresses::{self, Range};
use super::cluster::{Cluster, PodView, Protocol};

/// The direction of traffic a policy rule governs, seen from the selected pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Connections to the pod (`spec.ingress`, peers are sources).
    Ingress,
    /// Connections from the pod (`spec.egress`, peers are destinations).
    Egress,
}

/// Destination ports `first..=last` of one protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct PortRange {
    /// The protocol.
    pub protocol: Protocol,
    /// The first port.
    pub first: u16,
    /// The last port (`endPort`, or `first`).
    pub last: u16,
}

/// A destination port resolved from a named port on one destination pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct NamedTarget {
    /// The destination pod's address.
    pub ip: Ipv4Addr,
    /// The protocol.
    pub protocol: Protocol,
    /// The container port the name stands for on that pod.
    pub port: u16,
}

/// The ports of a rule: numeric ones apply to every destination, named ones
/// only to the pods whose container ports carry that name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ports {
    /// Numeric ports and ranges.
    pub numeric: Vec<PortRange>,
    /// Named ports, per destination pod.
    pub named: Vec<NamedTarget>,
}

impl Ports {
    /// Whether no connection can match these ports.
    pub fn is_empty(&self) -> bool {
        self.numeric.is_empty() && self.named.is_empty()
    }
}

/// One rule that allows traffic: from/to `peers` (every address when `None`)
/// on `ports` (every port and protocol when `None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Peer addresses as disjoint ranges, or every address.
    pub peers: Option<Vec<Range>>,
    /// Destination ports, or all.
    pub ports: Option<Ports>,
}

/// One policy's part in one direction on this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// `namespace/name`, for logs and tests.
    pub id: String,
    /// This node's pods the policy selects (isolated in this direction).
    pub targets: Vec<Ipv4Addr>,
    /// What the policy allows them; empty allows nothing.
    pub rules: Vec<Rule>,
}

/// Everything this node enforces.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Policies isolating local pods for ingress.
    pub ingress: Vec<Policy>,
    /// Policies isolating local pods for egress.
    pub egress: Vec<Policy>,
}

impl Plan {
    /// The local pods isolated in `direction`: selected by at least one policy.
    pub fn isolated(&self, direction: Direction) -> Vec<Ipv4Addr> {
        let policies = match direction {
            Direction::Ingress => &self.ingress,
            Direction::Egress => &self.egress,
        };
        let mut ips: Vec<Ipv4Addr> = policies
            .iter()
            .flat_map(|p| p.targets.iter().copied())
            .collect();
        ips.sort();
        ips.dedup();
        ips
    }
}

/// The directions a policy governs: `policyTypes`, or as upstream defaults
/// it, Ingress always and Egress when egress rules are present.
pub fn policy_types(policy: &NetworkPolicy) -> (bool, bool) {
    let Some(spec) = policy.spec.as_ref() else {
        return (true, false);
    };
    match spec.policy_types.as_deref() {
        Some(types) if !types.is_empty() => (
            types.iter().any(|t| t == "Ingress"),
            types.iter().any(|t| t == "Egress"),
        ),
        _ => (true, spec.egress.as_ref().is_some_and(|e| !e.is_empty())),
    }
}

/// A structured selector; an invalid one (the API validates them) selects nothing.
fn selector(selector: &metav1::LabelSelector) -> LabelSelector {
    LabelSelector::from_label_selector(selector).unwrap_or_else(|_| LabelSelector::nothing())
}

/// What node `node` enforces for `policies` over `cluster`.
pub fn plan(policies: &[NetworkPolicy], cluster: &Cluster, node: &str) -> Plan {
    let namespace_labels: BTreeMap<&str, BTreeMap<String, String>> = cluster
        .pods
        .iter()
        .map(|p| p.namespace.as_str())
        .chain(cluster.namespaces.keys().map(String::as_str))
        .map(|ns| (ns, cluster.namespace_labels(ns)))
        .collect();
    let context = Context {
        cluster,
        namespace_labels,
    };
    let mut sorted: Vec<&NetworkPolicy> = policies.iter().collect();
    sorted.sort_by_key(|p| (p.metadata.namespace.clone(), p.metadata.name.clone()));
    let mut plan = Plan::default();
    for policy in sorted {
        let namespace = policy.metadata.namespace.as_deref().unwrap_or_default();
        let id = format!(
            "{namespace}/{}",
            policy.metadata.name.as_deref().unwrap_or_default()
        );
        let spec = policy.spec.clone().unwrap_or_default();
        let pod_selector = spec
            .pod_selector
            .as_ref()
            .map(selector)
            .unwrap_or_else(LabelSelector::everything);
        let targets: Vec<&PodView> = cluster
            .pods
            .iter()
            .filter(|p| p.namespace == namespace && p.node.as_deref() == Some(node))
            .filter(|p| pod_selector.matches(&p.labels))
            .collect();
        if targets.is_empty() {
            continue;
        }
        let target_ips: Vec<Ipv4Addr> = targets.iter().map(|p| p.ip).collect();
        let (ingress, egress) = policy_types(policy);
        if ingress {
            let rules = spec
                .ingress
                .iter()
                .flatten()
                .map(|r| {
                    let peers = context.peers(r.from.as_deref(), namespace);
                    // Named ports name the destination's ports: here the selected pods'.
                    let ports = resolve_ports(r.ports.as_deref(), &targets);
                    Rule { peers, ports }
                })
                .filter(can_match)
                .collect();
            plan.ingress.push(Policy {
                id: id.clone(),
                targets: target_ips.clone(),
                rules,
            });
        }
        if egress {
            let every_pod: Vec<&PodView> = cluster.pods.iter().collect();
            let rules = spec
                .egress
                .iter()
                .flatten()
                .map(|r| {
                    let peers = context.peers(r.to.as_deref(), namespace);
                    // Here the destinations are any pods; `peers` narrows them.
                    let ports = resolve_ports(r.ports.as_deref(), &every_pod);
                    Rule { peers, ports }
                })
                .filter(can_match)
                .collect();
            plan.egress.push(Policy {
                id,
                targets: target_ips,
                rules,
            });
        }
    }
    plan
}

/// Whether a rule can allow anything (a selector matching no pod, or named
/// ports no pod has, leave a rule that allows nothing).
fn can_match(rule: &Rule) -> bool {
    rule.peers.as_ref().is_none_or(|p| !p.is_empty())
        && rule.ports.as_ref().is_none_or(|p| !p.is_empty())
}

/// The cluster with each namespace's labels ready for selectors.
struct Context<'a> {
    cluster: &'a Cluster,
    namespace_labels: BTreeMap<&'a str, BTreeMap<String, String>>,
}

impl Context<'_> {
    /// The addresses `peers` (of a policy in `namespace`) match; `None`
    /// when the list is absent or empty, which matches every address.
    fn peers(&self, peers: Option<&[NetworkPolicyPeer]>, namespace: &str) -> Option<Vec<Range>> {
        let peers = peers.filter(|p| !p.is_empty())?;
        let mut ranges = Vec::new();
        for peer in peers {
            if let Some(block) = &peer.ip_block {
                let Some(cidr) = Range::cidr(&block.cidr) else {
                    continue;
                };
                let holes: Vec<Range> = block
                    .except
                    .iter()
                    .flatten()
                    .filter_map(|e| Range::cidr(e))
                    .collect();
                ranges.extend(addresses::subtract(cidr, &holes));
                continue;
            }
            if peer.pod_selector.is_none() && peer.namespace_selector.is_none() {
                continue;
            }
            let pods = peer
                .pod_selector
                .as_ref()
                .map(selector)
                .unwrap_or_else(LabelSelector::everything);
            let namespaces = peer.namespace_selector.as_ref().map(selector);
            for pod in &self.cluster.pods {
                let in_namespace = match &namespaces {
                    // A pod selector alone looks in the policy's own namespace.
                    None => pod.namespace == namespace,
                    Some(namespaces) => self
                        .namespace_labels
                        .get(pod.namespace.as_str())
                        .is_some_and(|labels| namespaces.matches(labels)),
                };
                if in_namespace && pods.matches(&pod.labels) {
                    ranges.push(Range::single(pod.ip));
                }
            }
        }
        Some(addresses::merge(ranges))
    }
}

/// The ports of a rule, named ones resolved on `destinations`; `None` when
/// the list is absent or empty, which matches every port.
fn resolve_ports(ports: Option<&[NetworkPolicyPort]>, destinations: &[&PodView]) -> Option<Ports> {
    let ports = ports.filter(|p| !p.is_empty())?;
    let mut resolved = Ports::default();
    for port in ports {
        let Some(protocol) = Protocol::parse(port.protocol.as_deref()) else {
            continue;
        };
        match &port.port {
            None => resolved.numeric.push(PortRange {
                protocol,
                first: 0,
                last: u16::MAX,
            }),
            Some(IntOrString::Int(number)) => {
                let Ok(first) = u16::try_from(*number) else {
                    continue;
                };
                let last = port
                    .end_port
                    .and_then(|end| u16::try_from(end).ok())
                    .filter(|end| *end >= first)
                    .unwrap_or(first);
                resolved.numeric.push(PortRange {
                    protocol,
                    first,
                    last,
                });
            }
            Some(IntOrString::String(name)) => {
                resolved.named.extend(destinations.iter().filter_map(|pod| {
                    Some(NamedTarget {
                        ip: pod.ip,
                        protocol,
                        port: pod.named_port(name, protocol)?,
                    })
                }));
            }
        }
    }
    resolved.numeric.sort();
    resolved.numeric.dedup();
    resolved.named.sort();
    resolved.named.dedup();
    Some(resolved)
}

#[cfg(test)]
mod tests;
