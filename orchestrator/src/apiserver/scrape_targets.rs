//! `GET /metrics/targets`: every berth component's scrape target in
//! Prometheus' HTTP service-discovery format (`http_sd_configs`: a JSON list
//! of `{targets, labels}` groups), read from the objects an upstream
//! Prometheus' `kubernetes_sd_configs` reads, so both find the same targets
//! and a Prometheus built without Kubernetes discovery needs no glue.
//!
//! - the API servers: the `https` port of the `default/kubernetes` Endpoints
//!   (role `endpoints`);
//! - every Node's kubelet: its address as kubernetes_sd picks it and
//!   `status.daemonEndpoints.kubeletEndpoint.Port` (role `node`), once for
//!   `/metrics` and once for `/metrics/cadvisor`;
//! - standalone control-plane commands started with
//!   `--metrics-bind-address`: the holder of each fresh leader Lease in
//!   `kube-system` that carries the [`METRICS_ADDRESS_ANNOTATION`], plain
//!   HTTP (in `berth server` they share the API server's `/metrics`);
//! - pods annotated `prometheus.io/scrape: "true"` that have an IP (role
//!   `pod` with the customary relabelling already applied): the port of
//!   `prometheus.io/port`, else each declared TCP container port, with
//!   `prometheus.io/path` and `prometheus.io/scheme` when set.
//!
//! Each group is labelled `berth_component` (`apiserver`, `agent`,
//! `cadvisor`, `scheduler`, `controller-manager`, `cloud-controller`, …),
//! and node groups `node` plus `__meta_kubernetes_node_name`, so upstream's
//! relabelling through the API server's node proxy works unchanged.

use berth_observability::metrics::serve::METRICS_ADDRESS_ANNOTATION;
use serde_json::{json, Value};

use super::catalog;
use super::component_status::lease_is_fresh;
use super::errors::ApiError;
use super::listing;
use super::objects::Objects;

/// The non-resource URL the endpoint is served and authorized as.
pub const PATH: &str = "/metrics/targets";

/// The order kubernetes_sd's node role picks a Node's address in.
const ADDRESS_TYPES: [&str; 6] = [
    "InternalIP",
    "InternalDNS",
    "ExternalIP",
    "ExternalDNS",
    "LegacyHostIP",
    "Hostname",
];

/// Every target group, read from the store now.
pub async fn groups(objects: &Objects) -> Result<Value, ApiError> {
    let endpoints = match catalog::builtin("", "v1", "endpoints") {
        Some(r) => objects.get(r, Some("default"), "kubernetes").await.ok(),
        None => None,
    };
    let nodes = list(objects, "", "v1", "nodes", None).await?;
    let leases = list(
        objects,
        "coordination.k8s.io",
        "v1",
        "leases",
        Some("kube-system"),
    )
    .await?;
    let mut groups = from_objects(endpoints.as_ref(), &nodes, &leases, jiff::Timestamp::now());
    let pods = list(objects, "", "v1", "pods", None).await?;
    groups.extend(pods.iter().filter_map(pod_group));
    Ok(Value::Array(groups))
}

async fn list(
    objects: &Objects,
    group: &str,
    version: &str,
    plural: &str,
    namespace: Option<&str>,
) -> Result<Vec<Value>, ApiError> {
    let Some(r) = catalog::builtin(group, version, plural) else {
        return Ok(Vec::new());
    };
    let listed = listing::list(objects.store().as_ref(), r, namespace, &Default::default()).await?;
    Ok(listed.items)
}

/// The groups the objects describe at `now`.
fn from_objects(
    endpoints: Option<&Value>,
    nodes: &[Value],
    leases: &[Value],
    now: jiff::Timestamp,
) -> Vec<Value> {
    let mut groups = Vec::new();
    let apiservers = endpoints.map(api_server_targets).unwrap_or_default();
    if !apiservers.is_empty() {
        groups.push(group(apiservers, "https", "/metrics", "apiserver", None));
    }
    for node in nodes {
        let Some((name, target)) = kubelet_target(node) else {
            continue;
        };
        for (component, path) in [("agent", "/metrics"), ("cadvisor", "/metrics/cadvisor")] {
            groups.push(group(
                vec![target.clone()],
                "https",
                path,
                component,
                Some(name),
            ));
        }
    }
    for lease in leases {
        if let Some((component, address)) = leased_component(lease, now) {
            groups.push(group(vec![address], "http", "/metrics", &component, None));
        }
    }
    groups
}

fn group(
    targets: Vec<String>,
    scheme: &str,
    path: &str,
    component: &str,
    node: Option<&str>,
) -> Value {
    let mut labels = json!({
        "__scheme__": scheme,
        "__metrics_path__": path,
        "berth_component": component,
    });
    if let Some(node) = node {
        labels["node"] = json!(node);
        labels["__meta_kubernetes_node_name"] = json!(node);
    }
    json!({"targets": targets, "labels": labels})
}

/// `ADDRESS:PORT` of each API server in the `kubernetes` Endpoints' `https`
/// port, as the endpoints role lists them.
fn api_server_targets(endpoints: &Value) -> Vec<String> {
    let mut targets = Vec::new();
    for subset in endpoints["subsets"].as_array().into_iter().flatten() {
        let ports = subset["ports"].as_array().into_iter().flatten();
        let https = ports
            .filter(|p| p["name"].as_str().unwrap_or("https") == "https")
            .filter_map(|p| p["port"].as_i64());
        for port in https {
            for address in subset["addresses"].as_array().into_iter().flatten() {
                if let Some(ip) = address["ip"].as_str() {
                    targets.push(host_port(ip, port));
                }
            }
        }
    }
    targets
}

/// A Node's name and its kubelet's `ADDRESS:PORT`; None before it reports
/// an address or a port.
fn kubelet_target(node: &Value) -> Option<(&str, String)> {
    let name = node.pointer("/metadata/name")?.as_str()?;
    let status = node.get("status")?;
    let port = status
        .pointer("/daemonEndpoints/kubeletEndpoint/Port")?
        .as_i64()
        .filter(|p| *p > 0)?;
    let addresses = status.get("addresses")?.as_array()?;
    let address = ADDRESS_TYPES.iter().find_map(|wanted| {
        addresses
            .iter()
            .find(|a| a["type"] == *wanted)
            .and_then(|a| a["address"].as_str())
    })?;
    Some((name, host_port(address, port)))
}

/// The component a fresh, annotated leader Lease names (its name without
/// berth's `berth-` prefix) and where its holder serves metrics.
fn leased_component(lease: &Value, now: jiff::Timestamp) -> Option<(String, String)> {
    let address = lease
        .pointer("/metadata/annotations")?
        .get(METRICS_ADDRESS_ANNOTATION)?
        .as_str()?;
    let name = lease.pointer("/metadata/name")?.as_str()?;
    lease_is_fresh(lease, now).then(|| {
        let component = name.strip_prefix("berth-").unwrap_or(name);
        (component.to_owned(), address.to_owned())
    })
}

/// The group of a pod that asks to be scraped through the
/// `prometheus.io/*` annotations and has an IP; None otherwise.
fn pod_group(pod: &Value) -> Option<Value> {
    let annotations = pod.pointer("/metadata/annotations")?;
    let annotation = |key: &str| annotations.get(key).and_then(Value::as_str);
    if annotation("prometheus.io/scrape") != Some("true") {
        return None;
    }
    let phase = pod.pointer("/status/phase").and_then(Value::as_str);
    if matches!(phase, Some("Succeeded" | "Failed")) {
        return None;
    }
    let ip = pod
        .pointer("/status/podIP")?
        .as_str()
        .filter(|ip| !ip.is_empty())?;
    let ports: Vec<i64> = match annotation("prometheus.io/port").and_then(|p| p.parse().ok()) {
        Some(port) => vec![port],
        None => pod
            .pointer("/spec/containers")?
            .as_array()?
            .iter()
            .flat_map(|c| c["ports"].as_array().into_iter().flatten())
            .filter(|p| p["protocol"].as_str().unwrap_or("TCP") == "TCP")
            .filter_map(|p| p["containerPort"].as_i64())
            .collect(),
    };
    if ports.is_empty() {
        return None;
    }
    let name = pod.pointer("/metadata/name")?.as_str()?;
    let namespace = pod.pointer("/metadata/namespace")?.as_str()?;
    let node = pod
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .unwrap_or("");
    let targets = ports.into_iter().map(|port| host_port(ip, port)).collect();
    let mut group = group(
        targets,
        annotation("prometheus.io/scheme").unwrap_or("http"),
        annotation("prometheus.io/path").unwrap_or("/metrics"),
        "pod",
        None,
    );
    let labels = &mut group["labels"];
    labels["namespace"] = json!(namespace);
    labels["pod"] = json!(name);
    labels["__meta_kubernetes_namespace"] = json!(namespace);
    labels["__meta_kubernetes_pod_name"] = json!(name);
    labels["__meta_kubernetes_pod_node_name"] = json!(node);
    Some(group)
}

/// `HOST:PORT`, with an IPv6 host in brackets.
fn host_port(host: &str, port: i64) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, addresses: Value, port: i64) -> Value {
        json!({
            "metadata": {"name": name},
            "status": {
                "addresses": addresses,
                "daemonEndpoints": {"kubeletEndpoint": {"Port": port}},
            },
        })
    }

    #[test]
    fn api_servers_come_from_the_kubernetes_endpoints_https_port() {
        let endpoints = json!({"subsets": [{
            "addresses": [{"ip": "10.0.0.1"}, {"ip": "fd00::1"}],
            "ports": [{"name": "https", "port": 6443, "protocol": "TCP"}],
        }]});
        let groups = from_objects(Some(&endpoints), &[], &[], jiff::Timestamp::now());
        assert_eq!(
            groups,
            vec![json!({
                "targets": ["10.0.0.1:6443", "[fd00::1]:6443"],
                "labels": {
                    "__scheme__": "https",
                    "__metrics_path__": "/metrics",
                    "berth_component": "apiserver",
                },
            })]
        );
    }

    #[test]
    fn each_node_gives_its_kubelet_and_cadvisor_at_the_address_kubernetes_sd_picks() {
        let nodes = [
            node(
                "a",
                json!([
                    {"type": "Hostname", "address": "a.example"},
                    {"type": "ExternalIP", "address": "203.0.113.7"},
                    {"type": "InternalIP", "address": "10.0.0.7"},
                ]),
                10250,
            ),
            node(
                "b",
                json!([{"type": "Hostname", "address": "b.example"}]),
                11250,
            ),
            // Not yet reporting a port: no target.
            node(
                "c",
                json!([{"type": "InternalIP", "address": "10.0.0.9"}]),
                0,
            ),
        ];
        let groups = from_objects(None, &nodes, &[], jiff::Timestamp::now());
        let seen: Vec<(&str, &str, &str)> = groups
            .iter()
            .map(|g| {
                (
                    g["targets"][0].as_str().unwrap(),
                    g["labels"]["__metrics_path__"].as_str().unwrap(),
                    g["labels"]["node"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            seen,
            [
                ("10.0.0.7:10250", "/metrics", "a"),
                ("10.0.0.7:10250", "/metrics/cadvisor", "a"),
                ("b.example:11250", "/metrics", "b"),
                ("b.example:11250", "/metrics/cadvisor", "b"),
            ]
        );
        assert_eq!(groups[1]["labels"]["berth_component"], "cadvisor");
        assert_eq!(groups[0]["labels"]["__meta_kubernetes_node_name"], "a");
    }

    #[test]
    fn annotated_pods_are_targets_on_their_annotated_or_declared_ports() {
        let pod = |name: &str, annotations: Value, ip: &str| {
            json!({
                "metadata": {"name": name, "namespace": "apps", "annotations": annotations},
                "spec": {"nodeName": "n1", "containers": [{"name": "app", "ports": [
                    {"containerPort": 8080},
                    {"containerPort": 53, "protocol": "UDP"},
                    {"containerPort": 9090, "protocol": "TCP"},
                ]}]},
                "status": {"phase": "Running", "podIP": ip},
            })
        };
        let annotated = pod(
            "a",
            json!({
                "prometheus.io/scrape": "true",
                "prometheus.io/port": "9102",
                "prometheus.io/path": "/stats",
                "prometheus.io/scheme": "https",
            }),
            "10.42.0.5",
        );
        assert_eq!(
            pod_group(&annotated),
            Some(json!({
                "targets": ["10.42.0.5:9102"],
                "labels": {
                    "__scheme__": "https",
                    "__metrics_path__": "/stats",
                    "berth_component": "pod",
                    "namespace": "apps",
                    "pod": "a",
                    "__meta_kubernetes_namespace": "apps",
                    "__meta_kubernetes_pod_name": "a",
                    "__meta_kubernetes_pod_node_name": "n1",
                },
            }))
        );
        let declared = pod("b", json!({"prometheus.io/scrape": "true"}), "10.42.0.6");
        let group = pod_group(&declared).unwrap();
        assert_eq!(
            group["targets"],
            json!(["10.42.0.6:8080", "10.42.0.6:9090"])
        );
        assert_eq!(group["labels"]["__scheme__"], "http");
        assert_eq!(group["labels"]["__metrics_path__"], "/metrics");
        assert_eq!(pod_group(&pod("c", json!({}), "10.42.0.7")), None);
        let no_ip = pod("d", json!({"prometheus.io/scrape": "true"}), "");
        assert_eq!(pod_group(&no_ip), None);
    }

    #[test]
    fn only_fresh_annotated_leader_leases_name_standalone_components() {
        let now = jiff::Timestamp::now();
        let lease = |name: &str, annotated: bool, renewed: jiff::Timestamp| {
            let annotations = if annotated {
                json!({METRICS_ADDRESS_ANNOTATION: "10.0.0.2:10259"})
            } else {
                json!({})
            };
            json!({
                "metadata": {"name": name, "annotations": annotations},
                "spec": {
                    "holderIdentity": "host_1_ab",
                    "leaseDurationSeconds": 15,
                    "renewTime": renewed.to_string(),
                },
            })
        };
        let stale = now - jiff::SignedDuration::from_secs(60);
        let leases = [
            lease("berth-scheduler", true, now),
            lease("berth-controller-manager", false, now),
            lease("berth-cloud-controller", true, stale),
        ];
        let groups = from_objects(None, &[], &leases, now);
        assert_eq!(
            groups,
            vec![json!({
                "targets": ["10.0.0.2:10259"],
                "labels": {
                    "__scheme__": "http",
                    "__metrics_path__": "/metrics",
                    "berth_component": "scheduler",
                },
            })]
        );
    }
}
