//! The cluster as NetworkPolicy sees it: pods with an IPv4 address (not on
//! the host network, not finished) with their labels and named container
//! ports, and namespaces with their labels. Pure conversions from the API
//! objects; nothing here decides what is allowed.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use k8s_openapi::api::core::v1::{Namespace, Pod};

/// The label every namespace carries with its own name; filled in here too
/// when a namespace is not (yet) in the cache, so selectors on it still work.
pub const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// A transport protocol a NetworkPolicy port can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    /// TCP, the default when a port names no protocol.
    Tcp,
    /// UDP.
    Udp,
    /// SCTP.
    Sctp,
}

impl Protocol {
    /// The protocol of an API `protocol` field (TCP when absent, as upstream defaults).
    pub fn parse(name: Option<&str>) -> Option<Self> {
        match name {
            None | Some("TCP") => Some(Protocol::Tcp),
            Some("UDP") => Some(Protocol::Udp),
            Some("SCTP") => Some(Protocol::Sctp),
            Some(_) => None,
        }
    }

    /// The name nft uses for it (`meta l4proto`).
    pub fn nft(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        }
    }
}

/// A named container port, what a policy's named port resolves against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedPort {
    /// The port's `name`.
    pub name: String,
    /// Its protocol.
    pub protocol: Protocol,
    /// Its `containerPort`.
    pub port: u16,
}

/// One pod that NetworkPolicy applies to or matches as a peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodView {
    /// The pod's namespace.
    pub namespace: String,
    /// The pod's name, for logs.
    pub name: String,
    /// The node it is bound to.
    pub node: Option<String>,
    /// Its IPv4 address.
    pub ip: Ipv4Addr,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Its containers' named ports.
    pub ports: Vec<NamedPort>,
}

impl PodView {
    /// The view of `pod`, or `None` when policies do not see it: no IPv4
    /// address yet, on the host network (its address is the node's), or
    /// finished (its address may already belong to another pod).
    pub fn of(pod: &Pod) -> Option<Self> {
        let spec = pod.spec.as_ref()?;
        if spec.host_network == Some(true) {
            return None;
        }
        let status = pod.status.as_ref()?;
        if matches!(status.phase.as_deref(), Some("Succeeded" | "Failed")) {
            return None;
        }
        let ip = status
            .pod_ips
            .iter()
            .flatten()
            .map(|p| p.ip.as_str())
            .chain(status.pod_ip.as_deref())
            .find_map(|ip| ip.parse::<Ipv4Addr>().ok())?;
        let ports = spec
            .containers
            .iter()
            .flat_map(|c| c.ports.iter().flatten())
            .filter_map(|p| {
                Some(NamedPort {
                    name: p.name.clone()?,
                    protocol: Protocol::parse(p.protocol.as_deref())?,
                    port: u16::try_from(p.container_port).ok()?,
                })
            })
            .collect();
        Some(PodView {
            namespace: pod.metadata.namespace.clone().unwrap_or_default(),
            name: pod.metadata.name.clone().unwrap_or_default(),
            node: spec.node_name.clone(),
            ip,
            labels: pod.metadata.labels.clone().unwrap_or_default(),
            ports,
        })
    }

    /// The number of this pod's container port `name` for `protocol`.
    pub fn named_port(&self, name: &str, protocol: Protocol) -> Option<u16> {
        self.ports
            .iter()
            .find(|p| p.name == name && p.protocol == protocol)
            .map(|p| p.port)
    }
}

/// Pods and namespace labels: everything a policy's selectors look at.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cluster {
    /// The pods policies see.
    pub pods: Vec<PodView>,
    /// Each namespace's labels, by name.
    pub namespaces: BTreeMap<String, BTreeMap<String, String>>,
}

impl Cluster {
    /// The cluster made of `pods` and `namespaces`.
    pub fn new(pods: &[Pod], namespaces: &[Namespace]) -> Self {
        Cluster {
            pods: pods.iter().filter_map(PodView::of).collect(),
            namespaces: namespaces
                .iter()
                .filter_map(|n| {
                    let name = n.metadata.name.clone()?;
                    Some((name, n.metadata.labels.clone().unwrap_or_default()))
                })
                .collect(),
        }
    }

    /// The labels of namespace `name`, always with its name label.
    pub fn namespace_labels(&self, name: &str) -> BTreeMap<String, String> {
        let mut labels = self.namespaces.get(name).cloned().unwrap_or_default();
        labels
            .entry(NAMESPACE_NAME_LABEL.to_owned())
            .or_insert_with(|| name.to_owned());
        labels
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(value: serde_json::Value) -> Pod {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn only_running_pods_with_an_ipv4_address_off_the_host_network_are_seen() {
        let cases = [
            (
                "running",
                json!({"metadata": {"name": "a", "namespace": "n"}, "spec": {"containers": []}, "status": {"phase": "Running", "podIP": "10.1.0.2"}}),
                true,
            ),
            (
                "no address yet",
                json!({"metadata": {"name": "a", "namespace": "n"}, "spec": {"containers": []}, "status": {"phase": "Pending"}}),
                false,
            ),
            (
                "host network",
                json!({"metadata": {"name": "a", "namespace": "n"}, "spec": {"hostNetwork": true, "containers": []}, "status": {"phase": "Running", "podIP": "10.0.0.5"}}),
                false,
            ),
            (
                "succeeded",
                json!({"metadata": {"name": "a", "namespace": "n"}, "spec": {"containers": []}, "status": {"phase": "Succeeded", "podIP": "10.1.0.2"}}),
                false,
            ),
            (
                "IPv6 first",
                json!({"metadata": {"name": "a", "namespace": "n"}, "spec": {"containers": []}, "status": {"phase": "Running", "podIPs": [{"ip": "fd00::2"}, {"ip": "10.1.0.3"}]}}),
                true,
            ),
        ];
        for (name, value, seen) in cases {
            assert_eq!(PodView::of(&pod(value)).is_some(), seen, "{name}");
        }
    }

    #[test]
    fn named_ports_are_looked_up_by_name_and_protocol() {
        let view = PodView::of(&pod(json!({
            "metadata": {"name": "a", "namespace": "n"},
            "spec": {"containers": [{"name": "c", "ports": [
                {"name": "http", "containerPort": 8080},
                {"name": "dns", "containerPort": 53, "protocol": "UDP"},
                {"containerPort": 9000}
            ]}]},
            "status": {"phase": "Running", "podIP": "10.1.0.2"}
        })))
        .unwrap();
        assert_eq!(view.named_port("http", Protocol::Tcp), Some(8080));
        assert_eq!(view.named_port("dns", Protocol::Udp), Some(53));
        assert_eq!(view.named_port("dns", Protocol::Tcp), None);
        assert_eq!(view.ports.len(), 2);
    }

    #[test]
    fn a_namespace_always_has_its_name_label() {
        let cluster = Cluster::default();
        assert_eq!(
            cluster.namespace_labels("web").get(NAMESPACE_NAME_LABEL),
            Some(&"web".to_owned())
        );
    }
}
