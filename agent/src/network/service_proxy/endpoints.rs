//! Services and their EndpointSlices → the ports this node proxies and the
//! endpoints each kind of traffic may reach, pure, as kube-proxy
//! categorizes them: traffic from inside the cluster honours
//! `internalTrafficPolicy`, traffic from outside (NodePorts, external IPs,
//! load-balancer IPs) honours `externalTrafficPolicy`; ready endpoints are
//! used, and serving-but-terminating ones only when none is ready.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;

use super::health::Check;

/// The label that ties an EndpointSlice to its Service.
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
/// Upstream's default ClientIP affinity timeout (three hours).
const DEFAULT_AFFINITY_SECONDS: u32 = 10_800;

/// One endpoint a Service port may send to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Endpoint {
    /// The pod's address.
    pub ip: Ipv4Addr,
    /// The target port.
    pub port: u16,
    /// Whether it runs on this node.
    pub local: bool,
}

/// One Service port and where each kind of traffic to it leads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServicePort {
    /// `namespace/name:port-name`, for comments and logs.
    pub id: String,
    /// `tcp`, `udp` or `sctp`.
    pub protocol: &'static str,
    /// The Service port.
    pub port: u16,
    /// The ClusterIP, when the Service has one.
    pub cluster_ip: Option<Ipv4Addr>,
    /// `spec.externalIPs` and the load balancer's ingress IPs: outside traffic to them is proxied too.
    pub external_ips: Vec<Ipv4Addr>,
    /// The port every node address answers on (NodePort and LoadBalancer Services).
    pub node_port: Option<u16>,
    /// Where traffic from inside the cluster goes.
    pub cluster_endpoints: Vec<Endpoint>,
    /// Where outside traffic goes.
    pub external_endpoints: Vec<Endpoint>,
    /// Whether any node has a usable endpoint (none at all means reject;
    /// none here under a Local policy means drop).
    pub has_endpoints: bool,
    /// `internalTrafficPolicy: Local`: no local endpoint means drop, not reject.
    pub internal_local: bool,
    /// `externalTrafficPolicy: Local`: outside traffic keeps its source address and
    /// only goes to this node's endpoints (dropped when there are none).
    pub external_local: bool,
    /// `sessionAffinity: ClientIP` and its timeout.
    pub affinity_seconds: Option<u32>,
}

/// One endpoint of a slice, with what kube-proxy looks at.
#[derive(Debug, Clone)]
struct Candidate {
    endpoint: Endpoint,
    ready: bool,
    serving_terminating: bool,
}

fn protocol(name: Option<&str>) -> &'static str {
    match name {
        Some("UDP") => "udp",
        Some("SCTP") => "sctp",
        _ => "tcp",
    }
}

/// Ready endpoints of `candidates` (only local ones when `local_only`);
/// when none is ready, the serving ones that are terminating.
fn usable(candidates: &[Candidate], local_only: bool) -> Vec<Endpoint> {
    let eligible: Vec<&Candidate> = candidates
        .iter()
        .filter(|c| !local_only || c.endpoint.local)
        .collect();
    let mut chosen: Vec<Endpoint> = eligible
        .iter()
        .filter(|c| c.ready)
        .map(|c| c.endpoint)
        .collect();
    if chosen.is_empty() {
        chosen = eligible
            .iter()
            .filter(|c| c.serving_terminating)
            .map(|c| c.endpoint)
            .collect();
    }
    chosen.sort();
    chosen.dedup();
    chosen
}

/// The endpoints of port `port_name` in `slices`, seen from node `node`.
fn candidates(slices: &[&EndpointSlice], port_name: &str, node: &str) -> Vec<Candidate> {
    let mut out = Vec::new();
    for slice in slices {
        if slice.address_type != "IPv4" {
            continue;
        }
        let Some(target) = slice
            .ports
            .iter()
            .flatten()
            .find(|p| p.name.as_deref().unwrap_or_default() == port_name)
            .and_then(|p| p.port)
            .and_then(|p| u16::try_from(p).ok())
        else {
            continue;
        };
        for endpoint in &slice.endpoints {
            let conditions = endpoint.conditions.as_ref();
            // Unset conditions mean ready (and serving), as upstream reads them.
            let ready = conditions.and_then(|c| c.ready).unwrap_or(true);
            let serving = conditions.and_then(|c| c.serving).unwrap_or(ready);
            let terminating = conditions.and_then(|c| c.terminating).unwrap_or(false);
            let local = endpoint.node_name.as_deref() == Some(node);
            for address in &endpoint.addresses {
                if let Ok(ip) = address.parse::<Ipv4Addr>() {
                    out.push(Candidate {
                        endpoint: Endpoint {
                            ip,
                            port: target,
                            local,
                        },
                        ready,
                        serving_terminating: serving && terminating,
                    });
                }
            }
        }
    }
    out
}

/// `slices` grouped by the Service they belong to (`namespace`, `name`),
/// from the `kubernetes.io/service-name` label; unlabelled ones are left out.
pub fn slices_by_service(slices: &[EndpointSlice]) -> BTreeMap<(&str, &str), Vec<&EndpointSlice>> {
    let mut by_service: BTreeMap<(&str, &str), Vec<&EndpointSlice>> = BTreeMap::new();
    for slice in slices {
        let Some(service) = slice
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(SERVICE_NAME_LABEL))
        else {
            continue;
        };
        let namespace = slice.metadata.namespace.as_deref().unwrap_or_default();
        by_service
            .entry((namespace, service.as_str()))
            .or_default()
            .push(slice);
    }
    by_service
}

/// The ports of `services` this node (`node`) proxies, with their
/// endpoints from `slices`. ExternalName and headless Services have none.
pub fn service_ports(
    services: &[Service],
    slices: &[EndpointSlice],
    node: &str,
) -> Vec<ServicePort> {
    let by_service = slices_by_service(slices);
    let mut ports = Vec::new();
    for service in services {
        let namespace = service.metadata.namespace.as_deref().unwrap_or_default();
        let name = service.metadata.name.as_deref().unwrap_or_default();
        let Some(spec) = service.spec.as_ref() else {
            continue;
        };
        if spec.type_.as_deref() == Some("ExternalName") {
            continue;
        }
        let cluster_ip = spec
            .cluster_ip
            .as_deref()
            .and_then(|ip| ip.parse::<Ipv4Addr>().ok());
        let mut external_ips: Vec<Ipv4Addr> = spec
            .external_ips
            .iter()
            .flatten()
            .filter_map(|ip| ip.parse().ok())
            .collect();
        external_ips.extend(
            service
                .status
                .as_ref()
                .and_then(|s| s.load_balancer.as_ref())
                .and_then(|lb| lb.ingress.as_ref())
                .into_iter()
                .flatten()
                .filter_map(|ingress| ingress.ip.as_deref()?.parse::<Ipv4Addr>().ok()),
        );
        external_ips.sort();
        external_ips.dedup();
        if cluster_ip.is_none() && external_ips.is_empty() {
            continue;
        }
        let internal_local = spec.internal_traffic_policy.as_deref() == Some("Local");
        let external_local = spec.external_traffic_policy.as_deref() == Some("Local");
        let affinity_seconds = (spec.session_affinity.as_deref() == Some("ClientIP")).then(|| {
            spec.session_affinity_config
                .as_ref()
                .and_then(|c| c.client_ip.as_ref())
                .and_then(|c| c.timeout_seconds)
                .and_then(|t| u32::try_from(t).ok())
                .unwrap_or(DEFAULT_AFFINITY_SECONDS)
        });
        let slices = by_service
            .get(&(namespace, name))
            .map(Vec::as_slice)
            .unwrap_or_default();
        for port in spec.ports.iter().flatten() {
            let Ok(number) = u16::try_from(port.port) else {
                continue;
            };
            let port_name = port.name.as_deref().unwrap_or_default();
            let candidates = candidates(slices, port_name, node);
            ports.push(ServicePort {
                id: format!("{namespace}/{name}:{port_name}"),
                protocol: protocol(port.protocol.as_deref()),
                port: number,
                cluster_ip,
                external_ips: external_ips.clone(),
                node_port: port
                    .node_port
                    .and_then(|p| u16::try_from(p).ok())
                    .filter(|p| *p != 0),
                cluster_endpoints: usable(&candidates, internal_local),
                external_endpoints: usable(&candidates, external_local),
                has_endpoints: !usable(&candidates, false).is_empty(),
                internal_local,
                external_local,
                affinity_seconds,
            });
        }
    }
    ports
}

/// The `healthCheckNodePort` of every `externalTrafficPolicy: Local`
/// Service, with `namespace/name` and how many of its endpoints run on this
/// node — what kube-proxy's per-Service health check answers with.
pub fn health_checks(services: &[Service], ports: &[ServicePort]) -> BTreeMap<u16, Check> {
    let mut checks = BTreeMap::new();
    for service in services {
        let Some(spec) = service.spec.as_ref() else {
            continue;
        };
        let Some(check) = spec
            .health_check_node_port
            .and_then(|p| u16::try_from(p).ok())
            .filter(|p| *p != 0)
        else {
            continue;
        };
        let namespace = service.metadata.namespace.clone().unwrap_or_default();
        let name = service.metadata.name.clone().unwrap_or_default();
        let prefix = format!("{namespace}/{name}:");
        let local = ports
            .iter()
            .filter(|p| p.id.starts_with(&prefix))
            .flat_map(|p| &p.external_endpoints)
            .filter(|e| e.local)
            .map(|e| e.ip)
            .collect::<std::collections::BTreeSet<_>>()
            .len();
        checks.insert(
            check,
            Check {
                namespace,
                name,
                local_endpoints: local,
            },
        );
    }
    checks
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn service(spec: serde_json::Value) -> Service {
        let mut base = json!({
            "clusterIP": "10.43.0.10", "type": "NodePort",
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP", "nodePort": 30080}]
        });
        for (k, v) in spec.as_object().unwrap() {
            base[k] = v.clone();
        }
        serde_json::from_value(
            json!({"metadata": {"name": "web", "namespace": "default"}, "spec": base}),
        )
        .unwrap()
    }

    fn slice(endpoints: serde_json::Value) -> EndpointSlice {
        serde_json::from_value(json!({
            "metadata": {"name": "web-abc", "namespace": "default", "labels": {"kubernetes.io/service-name": "web"}},
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": 80, "protocol": "TCP"}],
            "endpoints": endpoints
        }))
        .unwrap()
    }

    fn ep(
        ip: &str,
        node: &str,
        ready: bool,
        serving: bool,
        terminating: bool,
    ) -> serde_json::Value {
        json!({"addresses": [ip], "nodeName": node, "conditions": {"ready": ready, "serving": serving, "terminating": terminating}})
    }

    fn ips(endpoints: &[Endpoint]) -> Vec<String> {
        endpoints.iter().map(|e| e.ip.to_string()).collect()
    }

    #[test]
    fn endpoints_are_chosen_as_kube_proxy_does() {
        let slices = [slice(json!([
            ep("10.42.0.5", "n1", true, true, false),
            ep("10.42.1.5", "n2", true, true, false),
            ep("10.42.1.6", "n2", false, false, false),
            ep("10.42.0.7", "n1", false, true, true),
        ]))];
        // (spec, cluster endpoints, external endpoints) seen from n1.
        let cases = [
            (
                json!({}),
                vec!["10.42.0.5", "10.42.1.5"],
                vec!["10.42.0.5", "10.42.1.5"],
            ),
            (
                json!({"internalTrafficPolicy": "Local"}),
                vec!["10.42.0.5"],
                vec!["10.42.0.5", "10.42.1.5"],
            ),
            (
                json!({"externalTrafficPolicy": "Local"}),
                vec!["10.42.0.5", "10.42.1.5"],
                vec!["10.42.0.5"],
            ),
        ];
        for (spec, cluster, external) in cases {
            let ports = service_ports(&[service(spec.clone())], &slices, "n1");
            assert_eq!(ips(&ports[0].cluster_endpoints), cluster, "{spec}");
            assert_eq!(ips(&ports[0].external_endpoints), external, "{spec}");
        }
    }

    #[test]
    fn terminating_endpoints_serve_only_when_none_is_ready() {
        let slices = [slice(json!([
            ep("10.42.0.7", "n1", false, true, true),
            ep("10.42.0.8", "n1", false, false, true),
        ]))];
        let ports = service_ports(&[service(json!({}))], &slices, "n1");
        assert_eq!(ips(&ports[0].cluster_endpoints), ["10.42.0.7"]);
        // Seen from another node, with a Local policy, nothing is usable.
        let ports = service_ports(
            &[service(json!({"internalTrafficPolicy": "Local"}))],
            &slices,
            "n2",
        );
        assert!(ports[0].cluster_endpoints.is_empty());
    }

    #[test]
    fn external_and_load_balancer_ips_affinity_and_external_names() {
        let mut svc =
            service(json!({"externalIPs": ["192.0.2.10"], "sessionAffinity": "ClientIP"}));
        svc.status = Some(serde_json::from_value(json!({"loadBalancer": {"ingress": [{"ip": "192.0.2.20"}, {"hostname": "lb.example.com"}]}})).unwrap());
        let ports = service_ports(&[svc], &[], "n1");
        assert_eq!(
            ports[0].external_ips,
            [
                "192.0.2.10".parse::<Ipv4Addr>().unwrap(),
                "192.0.2.20".parse().unwrap()
            ]
        );
        assert_eq!(ports[0].affinity_seconds, Some(10_800));
        let timed = service(
            json!({"sessionAffinity": "ClientIP", "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 60}}}),
        );
        assert_eq!(
            service_ports(&[timed], &[], "n1")[0].affinity_seconds,
            Some(60)
        );
        let external_name = service(
            json!({"type": "ExternalName", "externalName": "example.com", "clusterIP": null}),
        );
        assert!(service_ports(&[external_name], &[], "n1").is_empty());
        let headless = service(json!({"clusterIP": "None", "type": "ClusterIP"}));
        assert!(service_ports(&[headless], &[], "n1").is_empty());
    }

    #[test]
    fn health_checks_count_local_endpoints() {
        let svc = service(
            json!({"type": "LoadBalancer", "externalTrafficPolicy": "Local", "healthCheckNodePort": 32000}),
        );
        let slices = [slice(json!([
            ep("10.42.0.5", "n1", true, true, false),
            ep("10.42.1.5", "n2", true, true, false),
        ]))];
        let ports = service_ports(std::slice::from_ref(&svc), &slices, "n1");
        let checks = health_checks(&[svc], &ports);
        assert_eq!(
            checks[&32000],
            Check {
                namespace: "default".into(),
                name: "web".into(),
                local_endpoints: 1
            }
        );
    }
}
