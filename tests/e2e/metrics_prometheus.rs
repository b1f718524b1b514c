//! Prometheus finds every berth component by itself: Debian's Prometheus,
//! configured with the shipped `examples/prometheus/http-sd.yml` (the API
//! server's HTTP service discovery), scrapes the API server, a standalone
//! scheduler and controller-manager and each node's kubelet and cAdvisor,
//! and answers queries on their request, scheduling and pod-start series.
//! The targets the discovery names are the ones `kubernetes_sd_configs`
//! reads from the same objects with its list and watch calls.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::Value;
use support::prometheus::Prometheus;
use support::{free_port, wait_for, BerthProcess, Kubectl, Server, KUBECTL_1_33};

const NODE: &str = "promsd-node";

const DEPLOYMENT: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: promsd-web}
spec:
  replicas: 1
  selector: {matchLabels: {app: promsd-web}}
  template:
    metadata: {labels: {app: promsd-web}}
    spec:
      containers:
      - name: app
        image: registry.test/app:1
"#;

/// A pod asking to be scraped, as exporters' charts annotate theirs.
const ANNOTATED_POD: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: promsd-exporter
  annotations: {prometheus.io/scrape: "true", prometheus.io/port: "9102"}
spec:
  nodeName: promsd-node
  containers:
  - name: app
    image: registry.test/app:1
"#;

/// The shipped configuration, pointed at `server` and scraping every second.
fn shipped_config(server: &Server) -> String {
    include_str!("../../examples/prometheus/http-sd.yml")
        .replace(
            "/var/lib/berth/server",
            &server.data_dir().display().to_string(),
        )
        .replace(
            "127.0.0.1:6443",
            server.url().trim_start_matches("https://"),
        )
        .replace("scrape_interval: 15s", "scrape_interval: 1s")
        .replace("refresh_interval: 30s", "refresh_interval: 1s")
}

/// A simulated node whose kubelet API (and so its metrics) listens.
fn start_node(server: &Server) -> BerthProcess {
    let port = free_port().to_string();
    server.start_agent(
        NODE,
        &["--heartbeat-interval", "1s", "--kubelet-port", &port],
    )
}

/// The result vector of an instant query, when it has any sample.
fn query(prometheus: &Prometheus, promql: &str) -> Option<Vec<Value>> {
    let answer = prometheus.api(&format!("/api/v1/query?query={promql}"))?;
    let result = answer.pointer("/data/result")?.as_array()?.clone();
    (!result.is_empty()).then_some(result)
}

#[test]
fn debians_prometheus_scrapes_every_component_it_discovers_over_http_sd() {
    let server = Server::start_with(&["--disable", "scheduler,controllers"]);
    let k = server.kubectl(KUBECTL_1_33);
    let scheduler_address = format!("127.0.0.1:{}", free_port());
    let mut scheduler = server.start_scheduler(
        "promsd-scheduler",
        &["--metrics-bind-address", &scheduler_address],
    );
    let manager_address = format!("127.0.0.1:{}", free_port());
    let mut manager = server.spawn_berth(
        "promsd-controller-manager",
        &[
            "controller-manager",
            "--identity",
            "promsd-controller-manager",
            "--metrics-bind-address",
            &manager_address,
        ],
    );
    let mut node = start_node(&server);
    k.ok_stdin(&["apply", "-f", "-"], DEPLOYMENT);

    let dir = tempfile::tempdir().expect("temp dir");
    let prometheus = Prometheus::start(dir.path(), &shipped_config(&server));
    let mut processes = [&mut scheduler, &mut manager, &mut node];

    for (component, target_label) in [
        ("apiserver", "job=\"berth-apiservers\""),
        ("scheduler", "job=\"berth-control-plane\""),
        ("controller-manager", "job=\"berth-control-plane\""),
        ("agent", "instance=\"promsd-node\""),
        ("cadvisor", "instance=\"promsd-node\""),
    ] {
        let promql = format!("up{{berth_component=\"{component}\",{target_label}}}==1");
        wait_for(
            &format!("Prometheus scrapes the {component} ({promql})"),
            Duration::from_secs(90),
            &server,
            &mut processes,
            || query(&prometheus, &promql),
        );
    }
    let scheduler_up = query(&prometheus, "up{berth_component=\"scheduler\"}").unwrap();
    assert_eq!(
        scheduler_up[0]["metric"]["instance"], scheduler_address,
        "the scheduler is found at its --metrics-bind-address"
    );

    for promql in [
        "apiserver_request_duration_seconds_count{job=\"berth-apiservers\",resource=\"deployments\",verb=\"POST\"}>0",
        "scheduler_scheduling_attempt_duration_seconds_count{berth_component=\"scheduler\",result=\"scheduled\"}>0",
        "kubelet_pod_start_duration_seconds_count{instance=\"promsd-node\"}>0",
        "process_start_time_seconds{berth_component=\"controller-manager\"}",
    ] {
        wait_for(
            &format!("Prometheus has samples of {promql}\n{}", prometheus.log()),
            Duration::from_secs(90),
            &server,
            &mut processes,
            || query(&prometheus, promql),
        );
    }
}

/// `ADDRESS:PORT` of every address of `subsets`-style `endpoints` (an
/// Endpoints' subset or an EndpointSlice) on its port named `https`.
fn https_targets(addresses: &[String], ports: &[Value]) -> Vec<String> {
    ports
        .iter()
        .filter(|p| p["name"] == "https")
        .flat_map(|p| {
            let port = p["port"].as_i64().expect("a port number");
            addresses.iter().map(move |a| format!("{a}:{port}"))
        })
        .collect()
}

/// The list call client-go's reflector makes first for `path`, as JSON.
fn reflector_list(k: &Kubectl, path: &str) -> Value {
    let text = k.ok(&[
        "get",
        "--raw",
        &format!("{path}?limit=500&resourceVersion=0"),
    ]);
    serde_json::from_str(&text).expect("a list")
}

/// What kubernetes_sd discovers for the API server (role endpoints and
/// role endpointslice, `default/kubernetes` port `https`), each node (role
/// node) and each annotated pod (role pod, its address given the
/// `prometheus.io/port` as the customary relabelling does), as
/// `(berth_component, target)`.
fn kubernetes_sd_targets(k: &Kubectl) -> BTreeSet<(String, String)> {
    let mut targets = BTreeSet::new();
    let endpoints = reflector_list(k, "/api/v1/endpoints");
    let mut from_endpoints = BTreeSet::new();
    for item in endpoints["items"].as_array().unwrap() {
        if item["metadata"]["namespace"] != "default" || item["metadata"]["name"] != "kubernetes" {
            continue;
        }
        for subset in item["subsets"].as_array().unwrap() {
            let addresses: Vec<String> = subset["addresses"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a["ip"].as_str().unwrap().to_owned())
                .collect();
            from_endpoints.extend(https_targets(
                &addresses,
                subset["ports"].as_array().unwrap(),
            ));
        }
    }
    let slices = reflector_list(k, "/apis/discovery.k8s.io/v1/endpointslices");
    let mut from_slices = BTreeSet::new();
    for slice in slices["items"].as_array().unwrap() {
        let service = &slice["metadata"]["labels"]["kubernetes.io/service-name"];
        if slice["metadata"]["namespace"] != "default" || service != "kubernetes" {
            continue;
        }
        let addresses: Vec<String> = slice["endpoints"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|e| e["addresses"].as_array().unwrap().iter())
            .map(|a| a.as_str().unwrap().to_owned())
            .collect();
        from_slices.extend(https_targets(
            &addresses,
            slice["ports"].as_array().unwrap(),
        ));
    }
    assert_eq!(
        from_endpoints, from_slices,
        "roles endpoints and endpointslice agree"
    );
    targets.extend(
        from_endpoints
            .into_iter()
            .map(|t| ("apiserver".to_owned(), t)),
    );

    let nodes = reflector_list(k, "/api/v1/nodes");
    let resource_version = nodes["metadata"]["resourceVersion"].as_str().unwrap();
    // The reflector's watch from the list's version, with bookmarks.
    k.ok(&[
        "get",
        "--raw",
        &format!("/api/v1/nodes?allowWatchBookmarks=true&resourceVersion={resource_version}&timeoutSeconds=1&watch=true"),
    ]);
    for node in nodes["items"].as_array().unwrap() {
        let address = node["status"]["addresses"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["type"] == "InternalIP")
            .and_then(|a| a["address"].as_str())
            .expect("an InternalIP");
        let port = &node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"];
        for component in ["agent", "cadvisor"] {
            targets.insert((component.to_owned(), format!("{address}:{port}")));
        }
    }
    let pods = reflector_list(k, "/api/v1/pods");
    for pod in pods["items"].as_array().unwrap() {
        let annotations = &pod["metadata"]["annotations"];
        if annotations["prometheus.io/scrape"] != "true" {
            continue;
        }
        let ip = pod["status"]["podIP"].as_str().expect("a pod IP");
        let port = annotations["prometheus.io/port"].as_str().unwrap();
        targets.insert(("pod".to_owned(), format!("{ip}:{port}")));
    }
    targets
}

/// What `/metrics/targets` names, as `(berth_component, target)`.
fn http_sd_targets(k: &Kubectl) -> BTreeSet<(String, String)> {
    let groups: Value =
        serde_json::from_str(&k.ok(&["get", "--raw", "/metrics/targets"])).expect("HTTP-SD JSON");
    let mut targets = BTreeSet::new();
    for group in groups.as_array().expect("a list of groups") {
        let component = group["labels"]["berth_component"].as_str().unwrap();
        for target in group["targets"].as_array().unwrap() {
            targets.insert((component.to_owned(), target.as_str().unwrap().to_owned()));
        }
    }
    targets
}

#[test]
fn http_sd_names_what_kubernetes_sd_reads_from_the_api() {
    let server = Server::start();
    let k = server.kubectl(KUBECTL_1_33);
    let mut node = start_node(&server);
    wait_for(
        "the node reports its kubelet port",
        Duration::from_secs(60),
        &server,
        &mut [&mut node],
        || {
            let out = k.run(&[
                "get",
                "node",
                NODE,
                "-o",
                "jsonpath={.status.daemonEndpoints.kubeletEndpoint.Port}",
            ]);
            let port = String::from_utf8_lossy(&out.stdout);
            (out.status.success() && !port.is_empty() && port != "0").then_some(())
        },
    );
    k.ok_stdin(&["apply", "-f", "-"], ANNOTATED_POD);
    wait_for(
        "the annotated pod has an IP",
        Duration::from_secs(60),
        &server,
        &mut [&mut node],
        || {
            let ip = k.jsonpath(&["get", "pod", "promsd-exporter"], "{.status.podIP}");
            (!ip.is_empty()).then_some(())
        },
    );
    let discovered = http_sd_targets(&k);
    assert_eq!(discovered, kubernetes_sd_targets(&k));
    let components: BTreeSet<&str> = discovered.iter().map(|(c, _)| c.as_str()).collect();
    assert_eq!(
        components,
        BTreeSet::from(["agent", "apiserver", "cadvisor", "pod"]),
        "{discovered:?}"
    );

    let refused = k.fails(&["get", "--raw", "/metrics/targets", "--as=promsd-nobody"]);
    assert!(refused.contains("Forbidden"), "{refused}");
}

/// The address `/metrics/targets` names for `component`, if any.
fn discovered(k: &Kubectl, component: &str) -> Option<String> {
    http_sd_targets(k)
        .into_iter()
        .find_map(|(c, target)| (c == component).then_some(target))
}

#[test]
fn a_standalone_cloud_controller_serves_metrics_and_is_listed_while_it_leads() {
    let server = Server::start();
    let k = server.kubectl(KUBECTL_1_33);
    let dir = tempfile::tempdir().expect("temp dir");
    let haproxy_config = dir.path().join("haproxy.cfg");
    let address = format!("127.0.0.1:{}", free_port());
    let mut controller = server.spawn_berth(
        "promsd-cloud-controller",
        &[
            "cloud-controller",
            "--identity",
            "promsd-cloud-controller",
            "--haproxy-config",
            haproxy_config.to_str().unwrap(),
            "--address-pool",
            "198.18.77.10-198.18.77.11",
            "--metrics-bind-address",
            &address,
        ],
    );
    let listed = wait_for(
        "the cloud controller is discovered",
        Duration::from_secs(60),
        &server,
        &mut [&mut controller],
        || discovered(&k, "cloud-controller"),
    );
    assert_eq!(listed, address);
    let get = |path: &str| {
        let out = std::process::Command::new("curl")
            .args(["-sS", "--fail"])
            .arg(format!("http://{address}{path}"))
            .output()
            .expect("curl");
        assert!(out.status.success(), "GET {path}: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(get("/healthz"), "ok");
    support::assert_promtool_accepts(&get("/metrics"));

    // Stopped, it no longer holds the Lease (released on a clean stop,
    // expired otherwise): no longer a target.
    controller.terminate();
    support::eventually(Duration::from_secs(60), || {
        discovered(&k, "cloud-controller").is_none().then_some(())
    });
}
