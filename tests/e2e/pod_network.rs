//! Several machines, one pod network: three test hosts (network namespaces,
//! `tests/hosts/hosts.sh`) each run `berth agent --runtime cri` with its own
//! containerd, in routed mode on one L2 network and in VXLAN mode on two
//! networks joined only through a routed hop. Driven with kubectl 1.33:
//! a Deployment spread over the nodes behind a NodePort Service is reached
//! from a pod on every node through its ClusterIP (every replica answers),
//! pods reach pods on other nodes by IP without NAT, the NodePort answers on
//! every node, a not-ready pod gets no traffic, a Service without endpoints
//! refuses at once, and a node that leaves takes its routes (and VXLAN
//! entries) with it everywhere.

mod cri_node;
mod hosts;
mod support;

use std::collections::BTreeSet;
use std::process::Command;
use std::time::{Duration, Instant};

use hosts::{HostCluster, Topology};
use support::{eventually, Kubectl, KUBECTL_1_33};

const WEB: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 0
      topologySpreadConstraints:
      - maxSkew: 1
        topologyKey: kubernetes.io/hostname
        whenUnsatisfiable: DoNotSchedule
        labelSelector: {matchLabels: {app: web}}
      containers:
      - name: web
        image: REGISTRY/web:1
        command: PAGE_COMMAND
        ports: [{name: www, containerPort: 80}]
        readinessProbe:
          exec: {command: [cat, /tmp/ready]}
          periodSeconds: 1
          failureThreshold: 1
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  type: NodePort
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 80}]
"#;

/// What every web replica runs: a page naming the pod, a CGI script
/// printing the peer's address, a readiness file, and busybox httpd.
const PAGE_SCRIPT: &str = "mkdir -p /www/cgi-bin && hostname > /www/index.html && \
    printf '#!/bin/sh\\necho Content-Type: text/plain\\necho\\necho $REMOTE_ADDR\\n' > /www/cgi-bin/ip && \
    chmod +x /www/cgi-bin/ip && touch /tmp/ready && exec httpd -f -p 80 -h /www";

/// `manifest` with its image registry and web command filled in.
fn manifest(manifest: &str, registry: &str) -> String {
    let command = serde_json::to_string(&["sh", "-c", PAGE_SCRIPT]).unwrap();
    manifest
        .replace("REGISTRY", registry)
        .replace("PAGE_COMMAND", &command)
}

const SERVICES: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: solo}
spec:
  replicas: 1
  selector: {matchLabels: {app: solo}}
  template:
    metadata: {labels: {app: solo}}
    spec:
      terminationGracePeriodSeconds: 0
      nodeSelector: {kubernetes.io/hostname: NODE1}
      containers:
      - name: web
        image: REGISTRY/web:1
        command: PAGE_COMMAND
---
apiVersion: v1
kind: Service
metadata: {name: solo-local}
spec:
  type: LoadBalancer
  externalTrafficPolicy: Local
  selector: {app: solo}
  ports: [{name: http, port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: web-sticky}
spec:
  selector: {app: web}
  sessionAffinity: ClientIP
  sessionAffinityConfig: {clientIP: {timeoutSeconds: 300}}
  externalIPs: [EXTERNAL_IP]
  ports: [{name: http, port: 8080, targetPort: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: web-named}
spec:
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: www}
  - {name: alt, port: 8081, targetPort: www}
"#;

const DENY_WEB: &str = r#"
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-web}
spec:
  podSelector: {matchLabels: {app: web}}
  policyTypes: [Ingress]
"#;

const ALLOW_CLIENTS: &str = r#"
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-clients}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress:
  - from: [{podSelector: {matchLabels: {app: client}}}]
    ports: [{port: 80}]
"#;

const NAMES: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: web-headless}
spec:
  clusterIP: None
  selector: {app: web}
  ports: [{name: http, port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: elsewhere}
spec:
  type: ExternalName
  externalName: web.default.svc.cluster.local
"#;

const CLIENT_EGRESS: &str = r#"
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: client-egress}
spec:
  podSelector: {matchLabels: {app: client}}
  policyTypes: [Egress]
"#;

const CLIENT_DNS: &str = r#"
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: client-dns}
spec:
  podSelector: {matchLabels: {app: client}}
  egress:
  - ports: [{port: 53, protocol: UDP}, {port: 53, protocol: TCP}]
"#;

const CLIENT: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: NAME, labels: {app: client}}
spec:
  nodeName: NODE
  terminationGracePeriodSeconds: 0
  containers:
  - name: client
    image: REGISTRY/web:1
    command: [sleep, "100000"]
"#;

/// `kubectl exec POD -- sh -c SCRIPT`: (succeeded, stdout + stderr).
fn exec(kubectl: &Kubectl, pod: &str, script: &str) -> (bool, String) {
    let output = kubectl.run(&["exec", pod, "--", "sh", "-c", script]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

/// The pages a pod gets from `url` asked `times` times in a row.
fn pages(kubectl: &Kubectl, pod: &str, url: &str, times: usize) -> Vec<String> {
    let script = format!(
        "for i in $(seq {times}); do busybox timeout 3 wget -qO- {url} || echo FAILED; done"
    );
    let (_, text) = exec(kubectl, pod, &script);
    text.lines().map(str::to_owned).collect()
}

fn web_pods(kubectl: &Kubectl) -> Vec<(String, String, String)> {
    kubectl
        .jsonpath(
            &["get", "pods", "-l", "app=web"],
            r#"{range .items[*]}{.metadata.name} {.spec.nodeName} {.status.podIP}{"\n"}{end}"#,
        )
        .lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            (f.len() == 3).then(|| (f[0].to_owned(), f[1].to_owned(), f[2].to_owned()))
        })
        .collect()
}

/// `curl -m 3 URL` from this machine: the body, or None when it failed.
fn curl(url: &str) -> Option<String> {
    let output = Command::new("curl")
        .args(["-sf", "-m", "3", url])
        .output()
        .unwrap();
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// The address busybox httpd reports for its peer (a v4-mapped IPv6 address).
fn peer_address(text: &str) -> String {
    text.trim()
        .trim_start_matches("[::ffff:")
        .trim_end_matches(']')
        .to_owned()
}

/// externalTrafficPolicy Local with its health check, ClientIP affinity,
/// external IPs, and pod addresses kept through a ClusterIP.
fn service_fields_work(
    cluster: &HostCluster,
    kubectl: &Kubectl,
    replicas: &BTreeSet<String>,
    external_ip: &str,
) {
    let names: Vec<String> = cluster.nodes.iter().map(|n| n.name.clone()).collect();
    let services = manifest(SERVICES, &cluster.mirror.host)
        .replace("NODE1", &names[0])
        .replace("EXTERNAL_IP", external_ip);
    kubectl.ok_stdin(&["apply", "-f", "-"], &services);
    let waited = kubectl.run(&[
        "wait",
        "--for=condition=Available",
        "deployment/solo",
        "--timeout=60s",
    ]);
    assert!(waited.status.success(), "{}", cluster.logs());

    // Only the node running the endpoint answers the NodePort, with the
    // client's own address; the health check says which node that is.
    let node_port = kubectl.jsonpath(
        &["get", "service", "solo-local"],
        "{.spec.ports[0].nodePort}",
    );
    let check = kubectl.jsonpath(
        &["get", "service", "solo-local"],
        "{.spec.healthCheckNodePort}",
    );
    assert!(
        !check.is_empty(),
        "a Local LoadBalancer gets a healthCheckNodePort"
    );
    let first = &cluster.nodes[0].host;
    let seen = eventually(Duration::from_secs(20), || {
        curl(&format!("http://{}:{node_port}/cgi-bin/ip", first.address))
    });
    assert_eq!(
        peer_address(&seen),
        first.gateway,
        "the client address is kept"
    );
    assert_eq!(
        curl(&format!(
            "http://{}:{node_port}/",
            cluster.nodes[1].host.address
        )),
        None,
        "a node without a local endpoint drops"
    );
    let health = eventually(Duration::from_secs(20), || {
        curl(&format!("http://{}:{check}/", first.address))
    });
    assert!(health.contains(r#""localEndpoints":1"#), "{health}");
    let other = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-m", "3"])
        .arg(format!("http://{}:{check}/", cluster.nodes[1].host.address))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&other.stdout), "503");

    // ClientIP affinity: one client, one replica; the external IP leads there too.
    let sticky_ip = kubectl.jsonpath(&["get", "service", "web-sticky"], "{.spec.clusterIP}");
    let answers: BTreeSet<String> = pages(
        kubectl,
        "client-2",
        &format!("http://{sticky_ip}:8080/"),
        10,
    )
    .into_iter()
    .collect();
    assert_eq!(answers.len(), 1, "session affinity sticks: {answers:?}");
    assert!(replicas.is_superset(&answers), "{answers:?}");
    // Another Service with affinity (new chains and sets on every node,
    // changed in place) leaves the clients of the first where they were.
    kubectl.ok(&[
        "expose",
        "deployment",
        "web",
        "--name=web-sticky-2",
        "--port=8082",
        "--target-port=80",
        "--session-affinity=ClientIP",
    ]);
    let second_ip = kubectl.jsonpath(&["get", "service", "web-sticky-2"], "{.spec.clusterIP}");
    eventually(Duration::from_secs(10), || {
        let answers: BTreeSet<String> =
            pages(kubectl, "client-2", &format!("http://{second_ip}:8082/"), 1)
                .into_iter()
                .collect();
        (!answers.is_empty() && replicas.is_superset(&answers)).then_some(())
    });
    let again: BTreeSet<String> =
        pages(kubectl, "client-2", &format!("http://{sticky_ip}:8080/"), 5)
            .into_iter()
            .collect();
    assert_eq!(again, answers, "affinity survives other Services changing");
    let external: BTreeSet<String> = pages(
        kubectl,
        "client-3",
        &format!("http://{external_ip}:8080/"),
        3,
    )
    .into_iter()
    .collect();
    assert!(
        replicas.is_superset(&external) && !external.is_empty(),
        "external IP: {external:?}"
    );

    // Several ports, the target port given by the container port's name.
    let named_ip = kubectl.jsonpath(&["get", "service", "web-named"], "{.spec.clusterIP}");
    for port in [80, 8081] {
        let answers: BTreeSet<String> = pages(
            kubectl,
            "client-1",
            &format!("http://{named_ip}:{port}/"),
            5,
        )
        .into_iter()
        .collect();
        assert!(
            !answers.is_empty() && replicas.is_superset(&answers),
            "web-named:{port}: {answers:?}"
        );
    }

    // A load balancer's ingress IP leads to the Service on the nodes.
    let ingress_ip = external_ip.replace(".9.9", ".9.10");
    kubectl.ok(&[
        "patch",
        "service",
        "solo-local",
        "--subresource=status",
        "--type=merge",
        "-p",
        &format!(r#"{{"status":{{"loadBalancer":{{"ingress":[{{"ip":"{ingress_ip}"}}]}}}}}}"#),
    ]);
    let through_lb = eventually(Duration::from_secs(10), || {
        let page = pages(kubectl, "client-1", &format!("http://{ingress_ip}/"), 1);
        (page.len() == 1 && page[0].starts_with("solo-")).then_some(page)
    });
    assert_eq!(through_lb.len(), 1);
    // Pods on a node without a local endpoint still reach it, as kube-proxy
    // short-circuits traffic from inside the cluster.
    for url in [
        format!("http://{ingress_ip}/"),
        format!("http://{}:{node_port}/", cluster.nodes[1].host.address),
    ] {
        let page = pages(kubectl, "client-2", &url, 1);
        assert!(
            page.len() == 1 && page[0].starts_with("solo-"),
            "{url} from client-2: {page:?}"
        );
    }

    // A pod reaching pods through a ClusterIP keeps its own address.
    let client_ip = kubectl.jsonpath(&["get", "pod", "client-1"], "{.status.podIP}");
    let cluster_ip = kubectl.jsonpath(&["get", "service", "web"], "{.spec.clusterIP}");
    for seen in pages(
        kubectl,
        "client-1",
        &format!("http://{cluster_ip}/cgi-bin/ip"),
        6,
    ) {
        assert_eq!(
            peer_address(&seen),
            client_ip,
            "no NAT from pods through a ClusterIP"
        );
    }
    kubectl.ok(&[
        "delete",
        "service",
        "solo-local",
        "web-sticky",
        "web-sticky-2",
        "web-named",
    ]);
    kubectl.ok(&["delete", "deployment", "solo"]);
    // Deleting a Service removes its rules on every node.
    for node in &cluster.nodes {
        let tables = berth_agent::network::service_proxy::table_names(&node.name);
        eventually(Duration::from_secs(10), || {
            // Whichever of the two tables is live.
            let rules: String = tables
                .iter()
                .map(|table| {
                    node.host
                        .stdout(&["nft", "list", "map", "ip", table, "service_ips"])
                })
                .collect();
            (rules.contains(&cluster_ip) && !rules.contains(&sticky_ip)).then_some(())
        });
    }
}

/// `nslookup ARGS` in `pod` (given up on after 5 s): (found, output).
fn nslookup(kubectl: &Kubectl, pod: &str, args: &str) -> (bool, String) {
    exec(kubectl, pod, &format!("busybox timeout 5 nslookup {args}"))
}

/// The cluster DNS answers on every node: headless Services with their
/// pods and SRV records, ExternalName as a CNAME, and an egress policy
/// blocks it until it allows port 53.
fn cluster_dns_works(cluster: &HostCluster, kubectl: &Kubectl, web: &[(String, String, String)]) {
    kubectl.ok_stdin(&["apply", "-f", "-"], NAMES);
    for client in ["client-1", "client-2", "client-3"] {
        let (_, headless) = eventually(Duration::from_secs(10), || {
            let answer = nslookup(kubectl, client, "web-headless.default.svc.cluster.local");
            web.iter()
                .all(|(_, _, ip)| answer.1.contains(ip.as_str()))
                .then_some(answer)
        });
        assert!(headless.contains("Name:"), "{headless}");
        let (_, srv) = nslookup(
            kubectl,
            client,
            "-type=srv _http._tcp.web-headless.default.svc.cluster.local",
        );
        assert_eq!(srv.matches("service = ").count(), 3, "{client}: {srv}");
        assert!(srv.contains(" 80 "), "{srv}");
        let (_, cname) = nslookup(kubectl, client, "elsewhere.default.svc.cluster.local");
        assert!(
            cname.contains("canonical name = web.default.svc.cluster.local"),
            "{client}: {cname}\n{}",
            cluster.logs()
        );
    }
    // Egress default-deny blocks DNS too, until port 53 is allowed.
    kubectl.ok_stdin(&["apply", "-f", "-"], CLIENT_EGRESS);
    eventually(Duration::from_secs(15), || {
        (!nslookup(kubectl, "client-1", "web.default.svc.cluster.local").0).then_some(())
    });
    kubectl.ok_stdin(&["apply", "-f", "-"], CLIENT_DNS);
    eventually(Duration::from_secs(15), || {
        nslookup(kubectl, "client-1", "web.default.svc.cluster.local")
            .0
            .then_some(())
    });
    kubectl.ok(&["delete", "networkpolicy", "client-egress", "client-dns"]);
    // A deleted Service's name goes with it.
    kubectl.ok(&["delete", "service", "elsewhere"]);
    eventually(Duration::from_secs(10), || {
        (!nslookup(kubectl, "client-2", "elsewhere.default.svc.cluster.local").0).then_some(())
    });
}

/// The agent-made routes in host `index`'s namespace.
fn routes(cluster: &HostCluster, index: usize) -> String {
    cluster.nodes[index]
        .host
        .stdout(&["ip", "route", "show", "proto", "190"])
}

fn the_pod_network_works(prefix: &str, subnet: &str, cidr: &str, mode: &str) {
    let topology = if mode == "vxlan" {
        Topology::TwoLans
    } else {
        Topology::OneLan
    };
    let mut cluster = HostCluster::start(
        prefix,
        3,
        subnet,
        topology,
        &["--cluster-cidr", cidr],
        &["--network-mode", mode],
    );
    let kubectl = cluster.server.kubectl(KUBECTL_1_33);
    let registry = cluster.mirror.host.clone();
    let with_registry = |text: &str| manifest(text, &registry);
    let names: Vec<String> = cluster.nodes.iter().map(|n| n.name.clone()).collect();

    eventually(Duration::from_secs(60), || {
        let ready = kubectl.jsonpath(
            &["get", "nodes"],
            r#"{range .items[*]}{.metadata.annotations.berth\.dev/network-mode}{" "}{.spec.podCIDR}{"\n"}{end}"#,
        );
        (ready
            .lines()
            .filter(|l| l.starts_with(mode) && l.contains('/'))
            .count()
            == 3)
            .then_some(())
    });

    kubectl.ok_stdin(&["apply", "-f", "-"], &with_registry(WEB));
    for (index, node) in names.iter().enumerate() {
        let pod = CLIENT
            .replace("NAME", &format!("client-{}", index + 1))
            .replace("NODE", node);
        kubectl.ok_stdin(&["apply", "-f", "-"], &with_registry(&pod));
    }
    let ready = |kubectl: &Kubectl| {
        kubectl.run(&[
            "wait",
            "--for=condition=Ready",
            "pods",
            "--all",
            "--timeout=120s",
        ])
    };
    let waited = ready(&kubectl);
    assert!(
        waited.status.success(),
        "pods not ready: {}\n{}\n{}",
        String::from_utf8_lossy(&waited.stderr),
        kubectl.ok(&["get", "pods", "-o", "wide"]),
        cluster.logs()
    );

    // The replicas are spread: one per node.
    let web = web_pods(&kubectl);
    let nodes: BTreeSet<&str> = web.iter().map(|(_, node, _)| node.as_str()).collect();
    assert_eq!(nodes.len(), 3, "topology spread: {web:?}");
    let replicas: BTreeSet<String> = web.iter().map(|(name, _, _)| name.clone()).collect();

    // From a pod on every node, the ClusterIP reaches every replica.
    let cluster_ip = kubectl.jsonpath(&["get", "service", "web"], "{.spec.clusterIP}");
    for client in ["client-1", "client-2", "client-3"] {
        let answers: BTreeSet<String> =
            pages(&kubectl, client, &format!("http://{cluster_ip}/"), 30)
                .into_iter()
                .collect();
        assert_eq!(
            answers,
            replicas,
            "{client} through {cluster_ip}:\n{}",
            cluster.logs()
        );
    }

    // And by name, through the cluster DNS on their own node.
    for client in ["client-1", "client-2", "client-3"] {
        let answers: BTreeSet<String> = pages(
            &kubectl,
            client,
            "http://web.default.svc.cluster.local/",
            30,
        )
        .into_iter()
        .collect();
        assert_eq!(answers, replicas, "{client} by name:\n{}", cluster.logs());
    }
    cluster_dns_works(&cluster, &kubectl, &web);

    // Pods reach pods on other nodes by IP, and keep their own address.
    let client_ip = kubectl.jsonpath(&["get", "pod", "client-1"], "{.status.podIP}");
    for (name, node, ip) in &web {
        if node == &names[0] {
            continue;
        }
        let (pinged, text) = exec(&kubectl, "client-1", &format!("ping -c 1 -W 3 {ip}"));
        assert!(pinged, "ping {name} on {node} from client-1: {text}");
        let (_, seen) = exec(
            &kubectl,
            "client-1",
            &format!("busybox timeout 3 wget -qO- http://{ip}/cgi-bin/ip"),
        );
        // busybox httpd prints the peer as a v4-mapped IPv6 address.
        let seen = seen
            .trim()
            .trim_start_matches("[::ffff:")
            .trim_end_matches(']');
        assert_eq!(seen, client_ip, "no NAT between pods of different nodes");
    }

    // Pods reach what lies outside the pod ranges through their node's
    // address: the registry mirror on this machine has no route to pods.
    let (_, registry_answer) = exec(
        &kubectl,
        "client-2",
        &format!(
            "busybox timeout 3 wget -qO- http://{}/v2/",
            cluster.mirror.host
        ),
    );
    assert_eq!(registry_answer.trim(), "{}", "masqueraded to the outside");

    // NetworkPolicy holds across nodes: default-deny ingress shuts the
    // replicas off from the clients until a rule names the clients.
    let target = web
        .iter()
        .find(|(_, node, _)| node != &names[0])
        .map(|(_, _, ip)| ip.clone())
        .unwrap();
    let url = format!("http://{target}/");
    kubectl.ok_stdin(&["apply", "-f", "-"], DENY_WEB);
    eventually(Duration::from_secs(10), || {
        pages(&kubectl, "client-1", &url, 1)
            .contains(&"FAILED".to_owned())
            .then_some(())
    });
    kubectl.ok_stdin(&["apply", "-f", "-"], ALLOW_CLIENTS);
    eventually(Duration::from_secs(10), || {
        let answer = pages(&kubectl, "client-1", &url, 1);
        (answer.len() == 1 && replicas.contains(&answer[0])).then_some(())
    });
    kubectl.ok(&["delete", "networkpolicy", "deny-web", "allow-clients"]);

    // The NodePort answers on every node's address.
    let node_port = kubectl.jsonpath(&["get", "service", "web"], "{.spec.ports[0].nodePort}");
    for node in &cluster.nodes {
        let output = Command::new("curl")
            .args(["-s", "-m", "5"])
            .arg(format!("http://{}:{node_port}/", node.host.address))
            .output()
            .unwrap();
        let page = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        assert!(
            replicas.contains(&page),
            "NodePort on {}: {page:?}",
            node.name
        );
    }

    service_fields_work(&cluster, &kubectl, &replicas, &format!("{subnet}.9.9"));

    // A replica that turns not ready gets no more traffic.
    let (unready, _, _) = web[0].clone();
    kubectl.ok(&["exec", &unready, "--", "rm", "/tmp/ready"]);
    eventually(Duration::from_secs(30), || {
        let slice = kubectl.jsonpath(
            &[
                "get",
                "endpointslices",
                "-l",
                "kubernetes.io/service-name=web",
            ],
            "{.items[*].endpoints[*].conditions.ready}",
        );
        (slice.split_whitespace().filter(|r| *r == "true").count() == 2).then_some(())
    });
    std::thread::sleep(Duration::from_millis(500));
    let answers = pages(&kubectl, "client-2", &format!("http://{cluster_ip}/"), 20);
    assert!(
        !answers.contains(&unready) && answers.len() == 20,
        "{unready} is not ready: {answers:?}"
    );

    // With no replicas, connections are refused at once, not left hanging.
    kubectl.ok(&["scale", "deployment", "web", "--replicas=0"]);
    eventually(Duration::from_secs(30), || {
        web_pods(&kubectl).is_empty().then_some(())
    });
    std::thread::sleep(Duration::from_millis(500));
    let started = Instant::now();
    let (ok, text) = exec(
        &kubectl,
        "client-3",
        &format!("busybox timeout 10 wget -qO- http://{cluster_ip}/"),
    );
    assert!(!ok, "no endpoints, yet: {text}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "refused, not hanging: {:?} {text}",
        started.elapsed()
    );

    // A node that leaves takes its routes and VXLAN entries with it.
    let leaving_cidr = kubectl.jsonpath(&["get", "node", &names[2]], "{.spec.podCIDR}");
    let mac = kubectl.jsonpath(
        &["get", "node", &names[2]],
        r#"{.metadata.annotations.berth\.dev/vxlan-mac}"#,
    );
    for (index, name) in names.iter().enumerate().take(2) {
        let routes = routes(&cluster, index);
        assert!(routes.contains(&leaving_cidr), "{name}: {routes}");
    }
    cluster.stop_agent(2);
    kubectl.ok(&["delete", "node", &names[2]]);
    for (index, name) in names.iter().enumerate().take(2) {
        eventually(Duration::from_secs(20), || {
            (!routes(&cluster, index).contains(&leaving_cidr)).then_some(())
        });
        if mode == "vxlan" {
            let device = berth_agent::network::pod_network::plan::vxlan_device(name);
            let fdb = cluster.nodes[index]
                .host
                .stdout(&["bridge", "fdb", "show", "dev", &device]);
            assert!(!mac.is_empty() && !fdb.contains(&mac), "{fdb}");
        }
    }
}

#[test]
fn three_routed_hosts_make_one_pod_network() {
    the_pod_network_works("bnr", "10.77", "10.170.0.0/16", "routed");
}

#[test]
fn three_vxlan_hosts_on_two_networks_make_one_pod_network() {
    the_pod_network_works("bnv", "10.78", "10.171.0.0/16", "vxlan");
}

#[test]
fn a_sandbox_that_cannot_be_made_is_reported_as_kubelet_does() {
    // A pause image nobody serves: the namespace's own loopback, port 1.
    let cluster = HostCluster::start(
        "bns",
        1,
        "10.79",
        Topology::OneLan,
        &["--cluster-cidr", "10.172.0.0/16"],
        &["--pause-image", "127.0.0.1:1/pause:missing"],
    );
    let kubectl = cluster.server.kubectl(KUBECTL_1_33);
    let pod = CLIENT
        .replace("NAME", "stuck")
        .replace("NODE", &cluster.nodes[0].name)
        .replace("REGISTRY", &cluster.mirror.host);
    kubectl.ok_stdin(&["apply", "-f", "-"], &pod);
    let message = eventually(Duration::from_secs(60), || {
        let events = kubectl.jsonpath(
            &[
                "get",
                "events",
                "--field-selector",
                "involvedObject.name=stuck,reason=FailedCreatePodSandBox",
            ],
            "{range .items[*]}{.type} {.message}{\"\\n\"}{end}",
        );
        events.lines().next().map(str::to_owned)
    });
    assert!(
        message.starts_with("Warning Failed to create pod sandbox: rpc error: code = "),
        "{message}"
    );
    assert!(message.contains("127.0.0.1:1/pause:missing"), "{message}");
    assert_eq!(
        kubectl.jsonpath(&["get", "pod", "stuck"], "{.status.phase}"),
        "Pending"
    );
}

const TYPED_LB: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: typed-lb}
spec:
  type: LoadBalancer
  externalTrafficPolicy: Local
  loadBalancerClass: example.com/none
  selector: {app: typed}
  ports: [{name: http, port: 80}]
"#;

/// A NodePort Service `name` asking for the node ports `ports`.
fn node_port_service(name: &str, ports: &[&str]) -> String {
    let ports: Vec<String> = ports
        .iter()
        .enumerate()
        .map(|(i, node_port)| format!("{{name: p{i}, port: {}, nodePort: {node_port}}}", 80 + i))
        .collect();
    format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{name: {name}}}\nspec:\n  type: NodePort\n  selector: {{app: typed}}\n  ports: [{}]\n",
        ports.join(", ")
    )
}

/// A Service spec that kept nothing of its LoadBalancer days.
fn assert_no_load_balancer_fields(spec: &serde_json::Value) {
    for gone in [
        "healthCheckNodePort",
        "externalTrafficPolicy",
        "allocateLoadBalancerNodePorts",
        "loadBalancerClass",
    ] {
        assert!(spec.get(gone).is_none(), "{gone} kept: {spec}");
    }
    assert!(spec["ports"][0].get("nodePort").is_none(), "{spec}");
}

/// What `kubectl get service NAME -o json` says.
fn service_json(kubectl: &Kubectl, name: &str) -> serde_json::Value {
    let text = kubectl.ok(&["get", "service", name, "-o", "json"]);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// Changing a Service's type with a plain patch drops what only the old type
/// used, as upstream does, and gives its node ports back. Needs no hosts.
#[test]
fn changing_a_services_type_drops_the_old_types_fields_and_frees_its_ports() {
    let server = support::Server::start();
    let kubectl = server.kubectl(KUBECTL_1_33);
    kubectl.ok_stdin(&["apply", "-f", "-"], TYPED_LB);
    let node_port = kubectl.jsonpath(&["get", "service", "typed-lb"], "{.spec.ports[0].nodePort}");
    let check = kubectl.jsonpath(
        &["get", "service", "typed-lb"],
        "{.spec.healthCheckNodePort}",
    );
    assert!(
        !node_port.is_empty() && !check.is_empty(),
        "{node_port} {check}"
    );
    kubectl.ok(&[
        "patch",
        "service",
        "typed-lb",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"loadBalancer":{"ingress":[{"ip":"192.0.2.10"}]}}}"#,
    ]);

    kubectl.ok(&[
        "patch",
        "service",
        "typed-lb",
        "-p",
        r#"{"spec":{"type":"ClusterIP"}}"#,
    ]);
    let cluster_ip = service_json(&kubectl, "typed-lb");
    let spec = &cluster_ip["spec"];
    assert_eq!(spec["type"], "ClusterIP");
    assert_no_load_balancer_fields(spec);
    assert_eq!(
        cluster_ip["status"],
        serde_json::json!({"loadBalancer": {}})
    );

    // Both ports are free again: another Service takes them.
    kubectl.ok_stdin(
        &["apply", "-f", "-"],
        &node_port_service("typed-np", &[&node_port, &check]),
    );
    kubectl.ok(&[
        "patch",
        "service",
        "typed-np",
        "-p",
        r#"{"spec":{"type":"ClusterIP"}}"#,
    ]);
    let spec = service_json(&kubectl, "typed-np")["spec"].clone();
    assert!(spec.get("externalTrafficPolicy").is_none(), "{spec}");
    for port in spec["ports"].as_array().into_iter().flatten() {
        assert!(port.get("nodePort").is_none(), "{spec}");
    }
    kubectl.ok_stdin(
        &["apply", "-f", "-"],
        &node_port_service("typed-again", &[&node_port]),
    );

    // ExternalName gives the address back; leaving it gets a new one.
    let address = kubectl.jsonpath(&["get", "service", "typed-np"], "{.spec.clusterIP}");
    kubectl.ok(&[
        "patch",
        "service",
        "typed-np",
        "-p",
        r#"{"spec":{"type":"ExternalName","externalName":"db.example.com"}}"#,
    ]);
    let spec = service_json(&kubectl, "typed-np")["spec"].clone();
    for gone in ["clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"] {
        assert!(spec.get(gone).is_none(), "{gone} kept: {spec}");
    }
    let same_address = format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{name: typed-address}}\nspec:\n  clusterIP: {address}\n  ports: [{{port: 80}}]\n"
    );
    kubectl.ok_stdin(&["apply", "-f", "-"], &same_address);
    kubectl.ok(&[
        "patch",
        "service",
        "typed-np",
        "-p",
        r#"{"spec":{"type":"ClusterIP","externalName":null}}"#,
    ]);
    let renewed = kubectl.jsonpath(&["get", "service", "typed-np"], "{.spec.clusterIP}");
    assert!(!renewed.is_empty() && renewed != address, "{renewed}");

    // Server-side apply of a manifest whose type changed drops them the same way.
    let applied = TYPED_LB.replace("typed-lb", "typed-applied");
    kubectl.ok_stdin(&["apply", "--server-side", "-f", "-"], &applied);
    let applied_port = kubectl.jsonpath(
        &["get", "service", "typed-applied"],
        "{.spec.ports[0].nodePort}",
    );
    let cluster_ip_manifest = applied
        .replace("type: LoadBalancer", "type: ClusterIP")
        .replace("  externalTrafficPolicy: Local\n", "")
        .replace("  loadBalancerClass: example.com/none\n", "");
    kubectl.ok_stdin(&["apply", "--server-side", "-f", "-"], &cluster_ip_manifest);
    let spec = service_json(&kubectl, "typed-applied")["spec"].clone();
    assert_eq!(spec["type"], "ClusterIP");
    assert_no_load_balancer_fields(&spec);
    kubectl.ok_stdin(
        &["apply", "-f", "-"],
        &node_port_service("typed-applied-np", &[&applied_port]),
    );

    // A field the same request sets is kept, and refused as upstream refuses it.
    let refused = kubectl.fails(&[
        "patch",
        "service",
        "typed-again",
        "-p",
        r#"{"spec":{"type":"ClusterIP","externalTrafficPolicy":"Local"}}"#,
    ]);
    assert!(
        refused.contains("spec.externalTrafficPolicy: Invalid value: \"Local\": may only be set for externally-accessible services"),
        "{refused}"
    );
}
