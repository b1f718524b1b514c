//! Services and their EndpointSlices → one nftables table, pure. Each
//! ClusterIP port DNATs to one of its ready endpoints, picked at random per
//! connection; service traffic is masqueraded so replies come back through
//! this node even when client and endpoint share the bridge.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::Ipv4Addr;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;

/// The label that ties an EndpointSlice to its Service.
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
/// The mark that asks postrouting to masquerade.
const MASQUERADE_MARK: &str = "0x4000";

/// One Service port and where it leads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServicePort {
    /// `namespace/name:port-name`, for the chain's comment.
    pub id: String,
    /// The ClusterIP.
    pub cluster_ip: Ipv4Addr,
    /// `tcp`, `udp` or `sctp`.
    pub protocol: &'static str,
    /// The Service port.
    pub port: u16,
    /// The port every node address answers on too (NodePort and LoadBalancer Services).
    pub node_port: Option<u16>,
    /// Ready endpoints (address, target port).
    pub endpoints: Vec<(Ipv4Addr, u16)>,
    /// The Service has ready endpoints, but `internalTrafficPolicy: Local`
    /// left none on this node: traffic is dropped, not rejected (which says
    /// "no endpoints at all"), as kube-proxy does.
    pub drop_without_endpoints: bool,
}

fn protocol(name: Option<&str>) -> &'static str {
    match name {
        Some("UDP") => "udp",
        Some("SCTP") => "sctp",
        _ => "tcp",
    }
}

/// The ClusterIP ports of `services` with their ready endpoints from
/// `slices`, as seen from node `node` (`internalTrafficPolicy: Local`
/// Services use only the endpoints on it).
pub fn service_ports(
    node: &str,
    services: &[Service],
    slices: &[EndpointSlice],
) -> Vec<ServicePort> {
    let mut by_service: BTreeMap<(String, String), Vec<&EndpointSlice>> = BTreeMap::new();
    for slice in slices {
        let Some(service) = slice
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(SERVICE_NAME_LABEL))
        else {
            continue;
        };
        let namespace = slice.metadata.namespace.clone().unwrap_or_default();
        by_service
            .entry((namespace, service.clone()))
            .or_default()
            .push(slice);
    }
    let mut ports = Vec::new();
    for service in services {
        let namespace = service.metadata.namespace.clone().unwrap_or_default();
        let name = service.metadata.name.clone().unwrap_or_default();
        let Some(spec) = service.spec.as_ref() else {
            continue;
        };
        let Some(cluster_ip) = spec
            .cluster_ip
            .as_deref()
            .and_then(|ip| ip.parse::<Ipv4Addr>().ok())
        else {
            continue;
        };
        let local_only = spec.internal_traffic_policy.as_deref() == Some("Local");
        let slices = by_service
            .get(&(namespace.clone(), name.clone()))
            .map(Vec::as_slice)
            .unwrap_or_default();
        for port in spec.ports.iter().flatten() {
            let port_name = port.name.clone().unwrap_or_default();
            let mut endpoints = Vec::new();
            let mut elsewhere = false;
            for slice in slices {
                let Some(target) = slice
                    .ports
                    .iter()
                    .flatten()
                    .find(|p| p.name.clone().unwrap_or_default() == port_name)
                    .and_then(|p| p.port)
                    .and_then(|p| u16::try_from(p).ok())
                else {
                    continue;
                };
                for endpoint in &slice.endpoints {
                    let ready = endpoint
                        .conditions
                        .as_ref()
                        .and_then(|c| c.ready)
                        .unwrap_or(true);
                    if !ready {
                        continue;
                    }
                    if local_only && endpoint.node_name.as_deref() != Some(node) {
                        elsewhere = true;
                        continue;
                    }
                    for address in &endpoint.addresses {
                        if let Ok(ip) = address.parse::<Ipv4Addr>() {
                            endpoints.push((ip, target));
                        }
                    }
                }
            }
            endpoints.sort();
            endpoints.dedup();
            let Ok(number) = u16::try_from(port.port) else {
                continue;
            };
            ports.push(ServicePort {
                id: format!("{namespace}/{name}:{port_name}"),
                cluster_ip,
                protocol: protocol(port.protocol.as_deref()),
                port: number,
                node_port: port
                    .node_port
                    .and_then(|p| u16::try_from(p).ok())
                    .filter(|p| *p != 0),
                drop_without_endpoints: elsewhere && endpoints.is_empty(),
                endpoints,
            });
        }
    }
    ports
}

/// The nft script that replaces table `table` with rules for `ports`.
/// Declaring the table, deleting it and defining it again in one script
/// makes the change atomic (nft applies a file as one transaction).
pub fn script(table: &str, ports: &[ServicePort]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "table ip {table} {{}}\ndelete table ip {table}\ntable ip {table} {{"
    );
    for (index, port) in ports.iter().enumerate() {
        let _ = writeln!(out, "  chain svc{index} {{");
        let _ = writeln!(out, "    comment {:?}", port.id);
        match port.endpoints.as_slice() {
            [] if port.drop_without_endpoints => {
                let _ = writeln!(out, "    drop");
            }
            [] => {
                // Upstream rejects traffic to a Service without endpoints.
                let _ = writeln!(out, "    reject");
            }
            endpoints => {
                let _ = writeln!(out, "    meta mark set {MASQUERADE_MARK}");
                let targets: Vec<String> = endpoints
                    .iter()
                    .enumerate()
                    .map(|(i, (ip, target))| format!("{i} : {ip} . {target}"))
                    .collect();
                let _ = writeln!(
                    out,
                    "    meta l4proto {} dnat ip addr . port to numgen random mod {} map {{ {} }}",
                    port.protocol,
                    endpoints.len(),
                    targets.join(", ")
                );
            }
        }
        let _ = writeln!(out, "  }}");
    }
    let _ = writeln!(out, "  chain services {{");
    for (index, port) in ports.iter().enumerate() {
        let _ = writeln!(
            out,
            "    ip daddr {} {} dport {} goto svc{index}",
            port.cluster_ip, port.protocol, port.port
        );
    }
    let _ = writeln!(out, "  }}");
    // NodePorts answer on this node's own addresses only, never on traffic
    // passing through to others.
    let _ = writeln!(out, "  chain nodeports {{");
    for (index, port) in ports.iter().enumerate() {
        if let Some(node_port) = port.node_port {
            let _ = writeln!(
                out,
                "    fib daddr type local {} dport {node_port} goto svc{index}",
                port.protocol
            );
        }
    }
    let _ = writeln!(out, "  }}");
    let _ = writeln!(out, "  chain prerouting {{\n    type nat hook prerouting priority -100; policy accept;\n    jump services\n    jump nodeports\n  }}");
    let _ = writeln!(out, "  chain output {{\n    type nat hook output priority -100; policy accept;\n    jump services\n    jump nodeports\n  }}");
    let _ = writeln!(out, "  chain postrouting {{\n    type nat hook postrouting priority 100; policy accept;\n    meta mark {MASQUERADE_MARK} masquerade\n  }}");
    let _ = writeln!(out, "}}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn service() -> Service {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"clusterIP": "10.43.0.10", "type": "NodePort", "ports": [{"name": "http", "port": 8080, "protocol": "TCP", "nodePort": 30080}]}
        }))
        .unwrap()
    }

    fn slice(ready: bool) -> EndpointSlice {
        serde_json::from_value(json!({
            "metadata": {"name": "web-abc", "namespace": "default", "labels": {"kubernetes.io/service-name": "web"}},
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": 80, "protocol": "TCP"}],
            "endpoints": [
                {"addresses": ["10.42.0.5"], "conditions": {"ready": true}},
                {"addresses": ["10.42.0.6"], "conditions": {"ready": ready}}
            ]
        }))
        .unwrap()
    }

    #[test]
    fn ready_endpoints_are_picked_at_random() {
        let ports = service_ports("n1", &[service()], &[slice(true)]);
        assert_eq!(ports.len(), 1);
        assert_eq!(
            ports[0].endpoints,
            [
                ("10.42.0.5".parse().unwrap(), 80),
                ("10.42.0.6".parse().unwrap(), 80)
            ]
        );
        let text = script("berth_n1", &ports);
        assert!(
            text.starts_with("table ip berth_n1 {}\ndelete table ip berth_n1\n"),
            "{text}"
        );
        assert!(text.contains("meta l4proto tcp dnat ip addr . port to numgen random mod 2 map { 0 : 10.42.0.5 . 80, 1 : 10.42.0.6 . 80 }"), "{text}");
        assert!(
            text.contains("ip daddr 10.43.0.10 tcp dport 8080 goto svc0"),
            "{text}"
        );
        let unready = service_ports("n1", &[service()], &[slice(false)]);
        assert_eq!(
            unready[0].endpoints.len(),
            1,
            "unready endpoints get no traffic"
        );
    }

    #[test]
    fn nft_accepts_the_script() {
        // `nft -c` checks a script without applying it; skipped where nft is missing.
        let Ok(mut child) = std::process::Command::new("nft")
            .args(["-c", "-f", "-"])
            .stdin(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
        else {
            return;
        };
        let mut ports = service_ports("n1", &[service()], &[slice(true)]);
        ports.extend(service_ports("n1", &[service()], &[]));
        let mut dropped = ports[0].clone();
        dropped.endpoints.clear();
        dropped.drop_without_endpoints = true;
        ports.push(dropped);
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(script("berth_check", &ports).as_bytes())
            .unwrap();
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    #[test]
    fn a_service_without_endpoints_rejects() {
        let ports = service_ports("n1", &[service()], &[]);
        assert!(ports[0].endpoints.is_empty());
        assert!(script("t", &ports).contains("    reject\n"));
    }
}

#[cfg(test)]
mod internal_traffic_policy {
    use super::*;
    use serde_json::json;

    #[test]
    fn local_services_use_only_this_nodes_endpoints() {
        let service: Service = serde_json::from_value(json!({
            "metadata": {"name": "kube-dns", "namespace": "kube-system"},
            "spec": {"clusterIP": "10.43.0.10", "internalTrafficPolicy": "Local",
                     "ports": [{"name": "dns", "port": 53, "protocol": "UDP"}]}
        }))
        .unwrap();
        let slice = |node: &str, ip: &str| -> EndpointSlice {
            serde_json::from_value(json!({
                "metadata": {"name": format!("kube-dns-{node}"), "namespace": "kube-system",
                             "labels": {"kubernetes.io/service-name": "kube-dns"}},
                "addressType": "IPv4",
                "ports": [{"name": "dns", "port": 53, "protocol": "UDP"}],
                "endpoints": [{"addresses": [ip], "nodeName": node, "conditions": {"ready": true}}]
            }))
            .unwrap()
        };
        let slices = [slice("n1", "10.0.0.1"), slice("n2", "10.0.0.2")];
        type Case<'a> = (&'a str, &'a [(Ipv4Addr, u16)], bool);
        let cases: &[Case] = &[
            ("n1", &[(Ipv4Addr::new(10, 0, 0, 1), 53)], false),
            ("n2", &[(Ipv4Addr::new(10, 0, 0, 2), 53)], false),
            ("n3", &[], true),
        ];
        for (node, endpoints, dropped) in cases {
            let ports = service_ports(node, std::slice::from_ref(&service), &slices);
            assert_eq!(ports[0].endpoints, *endpoints, "{node}");
            assert_eq!(ports[0].drop_without_endpoints, *dropped, "{node}");
        }
        let script_text = script(
            "t",
            &service_ports("n3", std::slice::from_ref(&service), &slices),
        );
        assert!(script_text.contains("    drop\n"), "{script_text}");
        let none = service_ports("n1", &[service], &[]);
        assert!(
            !none[0].drop_without_endpoints,
            "no endpoints at all rejects"
        );
    }
}
