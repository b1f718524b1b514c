//! A pod's `resolv.conf` as kubelet composes it (pkg/kubelet/network/dns):
//! from its `dnsPolicy`, `dnsConfig`, the cluster DNS address and domain,
//! and the node's own resolv.conf, within the resolver's limits. Pure.

use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;

use k8s_openapi::api::core::v1::Pod;

use crate::network::resolv_conf::ResolvConf;
use crate::runtime::DnsConfig;

/// At most this many nameservers (glibc's MAXNS).
const MAX_NAMESERVERS: usize = 3;
/// At most this many search domains.
const MAX_SEARCHES: usize = 32;
/// At most this many characters on the search line.
const MAX_SEARCH_CHARS: usize = 2048;
/// Longer search domains make some resolvers abort; kubelet drops them.
const MAX_SEARCH_DOMAIN_CHARS: usize = 253;

/// What the node's kubelet flags say about DNS.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeDns {
    /// `--cluster-dns`: the cluster DNS Service address(es).
    pub cluster_dns: Vec<IpAddr>,
    /// `--cluster-domain`.
    pub cluster_domain: String,
    /// The node's resolv.conf (`--resolv-conf`).
    pub host: ResolvConf,
}

/// Keeps the first of each repeated entry.
fn omit_duplicates(items: Vec<String>) -> Vec<String> {
    let mut seen = HashSet::new();
    items
        .into_iter()
        .filter(|i| seen.insert(i.clone()))
        .collect()
}

/// Pod options override the node's by name; sorted, as a stable stand-in
/// for upstream's map order.
fn merge_options(existing: &[String], pod: &[(String, Option<String>)]) -> Vec<String> {
    let mut options: BTreeMap<String, String> = BTreeMap::new();
    for option in existing {
        match option.split_once(':') {
            Some((name, value)) => options.insert(name.to_owned(), value.to_owned()),
            None => options.insert(option.clone(), String::new()),
        };
    }
    for (name, value) in pod {
        options.insert(name.clone(), value.clone().unwrap_or_default());
    }
    options
        .into_iter()
        .map(|(name, value)| {
            if value.is_empty() {
                name
            } else {
                format!("{name}:{value}")
            }
        })
        .collect()
}

/// kubelet's search-path limits: 32 entries, none over 253 characters,
/// 2048 characters in all (dropping from the end).
fn fit_searches(mut searches: Vec<String>) -> Vec<String> {
    searches.truncate(MAX_SEARCHES);
    searches.retain(|s| s.len() <= MAX_SEARCH_DOMAIN_CHARS);
    while searches.join(" ").len() > MAX_SEARCH_CHARS {
        searches.pop();
    }
    searches
}

/// The resolver configuration of `pod` on a node with `node` settings.
pub fn pod_dns(pod: &Pod, node: &NodeDns) -> DnsConfig {
    let Some(spec) = pod.spec.as_ref() else {
        return DnsConfig::default();
    };
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
    let host_network = spec.host_network.unwrap_or(false);
    let policy = spec.dns_policy.as_deref().unwrap_or("ClusterFirst");
    let cluster = match policy {
        "ClusterFirstWithHostNet" => true,
        "ClusterFirst" => !host_network,
        _ => false,
    };
    let mut config = match policy {
        "None" => DnsConfig::default(),
        // With no cluster DNS configured, kubelet falls back to the node's.
        _ if cluster && !node.cluster_dns.is_empty() => {
            let mut searches = Vec::new();
            if !node.cluster_domain.is_empty() {
                let domain = &node.cluster_domain;
                searches.extend([
                    format!("{namespace}.svc.{domain}"),
                    format!("svc.{domain}"),
                    domain.clone(),
                ]);
            }
            searches.extend(node.host.searches.iter().cloned());
            DnsConfig {
                servers: node.cluster_dns.iter().map(IpAddr::to_string).collect(),
                searches: omit_duplicates(searches),
                options: vec!["ndots:5".to_owned()],
            }
        }
        _ => DnsConfig {
            servers: node.host.nameservers.clone(),
            searches: node.host.searches.clone(),
            options: node.host.options.clone(),
        },
    };
    if let Some(extra) = spec.dns_config.as_ref() {
        let mut servers = config.servers;
        servers.extend(extra.nameservers.iter().flatten().cloned());
        config.servers = omit_duplicates(servers);
        let mut searches = config.searches;
        searches.extend(extra.searches.iter().flatten().cloned());
        config.searches = omit_duplicates(searches);
        let options: Vec<(String, Option<String>)> = extra
            .options
            .iter()
            .flatten()
            .filter_map(|o| Some((o.name.clone()?, o.value.clone())))
            .collect();
        config.options = merge_options(&config.options, &options);
    }
    config.servers.truncate(MAX_NAMESERVERS);
    config.searches = fit_searches(config.searches);
    config
}

/// The file a resolver reads for `config`, in containerd's layout.
pub fn resolv_conf_text(config: &DnsConfig) -> String {
    let mut text = String::new();
    if !config.searches.is_empty() {
        text.push_str(&format!("search {}\n", config.searches.join(" ")));
    }
    for server in &config.servers {
        text.push_str(&format!("nameserver {server}\n"));
    }
    if !config.options.is_empty() {
        text.push_str(&format!("options {}\n", config.options.join(" ")));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node() -> NodeDns {
        NodeDns {
            cluster_dns: vec!["10.43.0.10".parse().unwrap()],
            cluster_domain: "cluster.local".to_owned(),
            host: ResolvConf {
                nameservers: vec!["192.168.1.1".into()],
                searches: vec!["corp.example".into()],
                options: vec!["edns0".into()],
            },
        }
    }

    fn pod(spec: serde_json::Value) -> Pod {
        let mut spec = spec;
        spec["containers"] = json!([{"name": "c", "image": "i"}]);
        serde_json::from_value(
            json!({"metadata": {"name": "p", "namespace": "team"}, "spec": spec}),
        )
        .unwrap()
    }

    fn text(spec: serde_json::Value) -> String {
        resolv_conf_text(&pod_dns(&pod(spec), &node()))
    }

    #[test]
    fn policies_compose_as_kubelet_does() {
        let cluster = "search team.svc.cluster.local svc.cluster.local cluster.local corp.example\nnameserver 10.43.0.10\noptions ndots:5\n";
        let host = "search corp.example\nnameserver 192.168.1.1\noptions edns0\n";
        let cases: &[(serde_json::Value, &str)] = &[
            (json!({}), cluster),
            (json!({"dnsPolicy": "ClusterFirst"}), cluster),
            (json!({"dnsPolicy": "ClusterFirst", "hostNetwork": true}), host),
            (json!({"dnsPolicy": "ClusterFirstWithHostNet", "hostNetwork": true}), cluster),
            (json!({"dnsPolicy": "Default"}), host),
            (json!({"dnsPolicy": "None"}), ""),
            (
                json!({"dnsPolicy": "None", "dnsConfig": {"nameservers": ["1.2.3.4"], "searches": ["a.example"],
                       "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}]}}),
                "search a.example\nnameserver 1.2.3.4\noptions edns0 ndots:2\n",
            ),
            (
                json!({"dnsConfig": {"nameservers": ["10.43.0.10", "1.1.1.1", "2.2.2.2", "3.3.3.3"],
                       "searches": ["cluster.local", "x.example"], "options": [{"name": "ndots", "value": "1"}]}}),
                "search team.svc.cluster.local svc.cluster.local cluster.local corp.example x.example\nnameserver 10.43.0.10\nnameserver 1.1.1.1\nnameserver 2.2.2.2\noptions ndots:1\n",
            ),
        ];
        for (spec, expected) in cases {
            assert_eq!(text(spec.clone()), *expected, "{spec}");
        }
    }

    #[test]
    fn no_cluster_dns_falls_back_to_the_node() {
        let mut node = node();
        node.cluster_dns.clear();
        let config = pod_dns(&pod(json!({})), &node);
        assert_eq!(config.servers, ["192.168.1.1"]);
    }

    #[test]
    fn search_paths_stay_within_the_limits() {
        let many: Vec<String> = (0..40).map(|i| format!("d{i}.example")).collect();
        let config = pod_dns(
            &pod(json!({"dnsPolicy": "None", "dnsConfig": {"searches": many}})),
            &node(),
        );
        assert_eq!(config.searches.len(), 32);
        let long: Vec<String> = (0..20).map(|i| format!("{i}{}", "a".repeat(150))).collect();
        let config = pod_dns(
            &pod(json!({"dnsPolicy": "None", "dnsConfig": {"searches": long}})),
            &node(),
        );
        assert!(config.searches.join(" ").len() <= 2048);
        assert_eq!(config.searches.len(), 13);
    }
}
