//! What each leaf certificate of a cluster says: its name, groups, SANs and
//! usage. Pure data, decided here once, so the provisioner and `renew-certs`
//! issue exactly the same certificates.

use std::net::IpAddr;

/// The cluster DNS domain the API serving certificate covers.
pub const CLUSTER_DOMAIN: &str = "cluster.local";

/// What a certificate may be used for (its extended key usage).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usage {
    /// TLS server authentication.
    Server,
    /// TLS client authentication.
    Client,
    /// Both (etcd members serve and dial each other with one certificate).
    ServerAndClient,
}

/// The contents of one leaf certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeafSpec {
    /// Subject CN (the user name for client certificates).
    pub common_name: String,
    /// Subject O entries (the groups for client certificates).
    pub organizations: Vec<String>,
    /// DNS names and IP addresses the certificate is valid for.
    pub sans: Vec<String>,
    /// Server, client or both.
    pub usage: Usage,
}

fn push_unique(list: &mut Vec<String>, value: String) {
    if !value.is_empty() && !list.contains(&value) {
        list.push(value);
    }
}

/// The host part of an API endpoint written as `https://HOST:PORT`,
/// `HOST:PORT`, `HOST` or `[V6]:PORT`.
pub fn endpoint_host(endpoint: &str) -> String {
    let rest = endpoint
        .split_once("://")
        .map_or(endpoint, |(_, rest)| rest);
    let rest = rest.split('/').next().unwrap_or(rest);
    if let Some(bracketed) = rest.strip_prefix('[') {
        return bracketed.split(']').next().unwrap_or(bracketed).to_owned();
    }
    if rest.parse::<std::net::Ipv6Addr>().is_ok() {
        return rest.to_owned();
    }
    rest.split(':').next().unwrap_or(rest).to_owned()
}

/// The API server's serving certificate: valid for the API endpoint, every
/// master, the in-cluster names of the `kubernetes` Service and its ClusterIP
/// (the first address of the service CIDR), and loopback.
pub fn api_serving(masters: &[String], endpoint: &str, first_service_ip: IpAddr) -> LeafSpec {
    let mut sans = Vec::new();
    push_unique(&mut sans, endpoint_host(endpoint));
    for master in masters {
        push_unique(&mut sans, master.clone());
    }
    for name in [
        "kubernetes".to_owned(),
        "kubernetes.default".to_owned(),
        "kubernetes.default.svc".to_owned(),
        format!("kubernetes.default.svc.{CLUSTER_DOMAIN}"),
        first_service_ip.to_string(),
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
    ] {
        push_unique(&mut sans, name);
    }
    LeafSpec {
        common_name: "kube-apiserver".to_owned(),
        organizations: Vec::new(),
        sans,
        usage: Usage::Server,
    }
}

fn etcd_member(member: &str, address: &str) -> LeafSpec {
    let mut sans = Vec::new();
    push_unique(&mut sans, address.to_owned());
    push_unique(&mut sans, "127.0.0.1".to_owned());
    LeafSpec {
        common_name: member.to_owned(),
        organizations: Vec::new(),
        sans,
        usage: Usage::ServerAndClient,
    }
}

/// An etcd member's client-facing serving certificate (its address and loopback).
pub fn etcd_server(member: &str, address: &str) -> LeafSpec {
    etcd_member(member, address)
}

/// An etcd member's peer certificate, which it serves and dials other members with.
pub fn etcd_peer(member: &str, address: &str) -> LeafSpec {
    etcd_member(member, address)
}

/// The client certificate the API servers present to etcd.
pub fn etcd_api_client() -> LeafSpec {
    LeafSpec {
        common_name: "kube-apiserver-etcd-client".to_owned(),
        organizations: Vec::new(),
        sans: Vec::new(),
        usage: Usage::Client,
    }
}

/// The client certificate the API servers present to kubelets (their logs,
/// exec and port-forward endpoints): an admin of the cluster.
pub fn apiserver_kubelet_client() -> LeafSpec {
    LeafSpec {
        common_name: "kube-apiserver-kubelet-client".to_owned(),
        organizations: vec!["system:masters".to_owned()],
        sans: Vec::new(),
        usage: Usage::Client,
    }
}

/// The client certificate the API server presents to aggregated API servers,
/// signed by the front-proxy CA.
pub fn front_proxy_client() -> LeafSpec {
    LeafSpec {
        common_name: "front-proxy-client".to_owned(),
        organizations: Vec::new(),
        sans: Vec::new(),
        usage: Usage::Client,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_give_their_host() {
        let cases = [
            ("https://api.example.com:6443", "api.example.com"),
            ("api.example.com:6443", "api.example.com"),
            ("10.0.0.5", "10.0.0.5"),
            ("https://[fd00::5]:6443/", "fd00::5"),
            ("fd00::5", "fd00::5"),
        ];
        for (endpoint, host) in cases {
            assert_eq!(endpoint_host(endpoint), host, "{endpoint}");
        }
    }

    #[test]
    fn api_serving_covers_endpoint_masters_service_names_and_loopback() {
        let masters = [
            "10.0.0.11".to_owned(),
            "10.0.0.12".to_owned(),
            "m3.lan".to_owned(),
        ];
        let spec = api_serving(
            &masters,
            "https://10.0.0.11:6443",
            "10.43.0.1".parse().unwrap(),
        );
        assert_eq!(
            spec.sans,
            [
                "10.0.0.11",
                "10.0.0.12",
                "m3.lan",
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local",
                "10.43.0.1",
                "localhost",
                "127.0.0.1",
            ]
        );
        assert_eq!(
            (spec.common_name.as_str(), spec.usage),
            ("kube-apiserver", Usage::Server)
        );
    }

    #[test]
    fn etcd_members_are_valid_for_their_address_and_loopback() {
        let cases = [
            (
                etcd_server("master-1", "10.0.0.11"),
                vec!["10.0.0.11", "127.0.0.1"],
            ),
            (
                etcd_peer("master-2", "10.0.0.12"),
                vec!["10.0.0.12", "127.0.0.1"],
            ),
            (etcd_peer("local", "127.0.0.1"), vec!["127.0.0.1"]),
        ];
        for (spec, sans) in cases {
            assert_eq!(spec.sans, sans);
            assert_eq!(spec.usage, Usage::ServerAndClient);
        }
        assert_eq!(etcd_api_client().usage, Usage::Client);
        assert_eq!(front_proxy_client().common_name, "front-proxy-client");
    }
}
