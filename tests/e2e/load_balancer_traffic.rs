//! Real traffic through the `haproxy` load balancer: three test hosts run
//! agents and pods, a fourth namespace is the load-balancer host running
//! Debian's HAProxy in master-worker mode, a fifth is the client.
//! `berth cloud-controller` writes the file HAProxy reads and reloads it
//! with SIGUSR2. Driven with kubectl 1.33: `curl` to the EXTERNAL-IP
//! reaches every replica; a reload (a second Service) leaves a slow
//! download running to its end; a rolling restart under a steady request
//! loop loses no request; `externalTrafficPolicy: Local` is checked on the
//! `healthCheckNodePort`, only the node with the endpoint is up, and with
//! `--haproxy-transparent` (the load-balancer host's TPROXY rule and route,
//! the nodes routing the client LAN through it) the pod sees the client's
//! own address while a Cluster Service's pod does not; a node
//! whose agent stopped and whose NodePort drops is taken out by the health
//! check while requests keep succeeding; a deleted Service's address stops
//! answering.

mod cri_node;
mod hosts;
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hosts::{Host, HostCluster, Hosts, Topology};
use support::{eventually, wait_for, BerthProcess, Kubectl, KUBECTL_1_33};

/// The addresses the controller hands out, on the load-balancer LAN.
const POOL: [&str; 3] = ["10.68.0.100", "10.68.0.101", "10.68.0.102"];

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
      terminationGracePeriodSeconds: 20
      topologySpreadConstraints:
      - maxSkew: 1
        topologyKey: kubernetes.io/hostname
        whenUnsatisfiable: DoNotSchedule
        labelSelector: {matchLabels: {app: web}}
      containers:
      - name: web
        image: REGISTRY/web:1
        command: PAGE_COMMAND
        readinessProbe:
          exec: {command: [cat, /tmp/ready]}
          periodSeconds: 1
          failureThreshold: 1
        lifecycle:
          preStop:
            exec: {command: [sleep, "5"]}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  type: LoadBalancer
  selector: {app: web}
  ports: [{name: http, port: 80}]
"#;

const SECOND: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: web-second}
spec:
  type: LoadBalancer
  selector: {app: web}
  ports: [{name: http, port: 8080, targetPort: 80}]
"#;

const LOCAL: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: web-local}
spec:
  type: LoadBalancer
  externalTrafficPolicy: Local
  selector: {app: web}
  ports: [{name: http, port: 80}]
"#;

/// A page naming the pod, a CGI script printing the peer's address, a
/// 32 MiB file for a download held open across a reload, a readiness file,
/// and busybox httpd.
const PAGE_SCRIPT: &str = "mkdir -p /www/cgi-bin && hostname > /www/index.html && \
    printf '#!/bin/sh\\necho Content-Type: text/plain\\necho\\necho $REMOTE_ADDR\\n' > /www/cgi-bin/ip && \
    chmod +x /www/cgi-bin/ip && \
    dd if=/dev/zero of=/www/big bs=1024 count=32768 2>/dev/null && \
    touch /tmp/ready && exec httpd -f -p 80 -h /www";

/// More than the socket buffers between the pod and curl hold (a few MiB
/// each way), so part of it is still in flight through HAProxy while the
/// reader holds back.
const BIG: u64 = 32 * 1024 * 1024;

/// The load-balancer host's second leg on the nodes' LAN: the nodes route
/// the client LAN through it, as any non-DSR L4 balancer needs.
const LB_NODE_LAN: &str = "10.67.0.200";

fn manifest(text: &str, registry: &str) -> String {
    let command = serde_json::to_string(&["sh", "-c", PAGE_SCRIPT]).unwrap();
    text.replace("REGISTRY", registry)
        .replace("PAGE_COMMAND", &command)
}

/// HAProxy in master-worker mode inside the load-balancer host; stopped
/// (master and workers) when dropped.
struct Haproxy {
    child: Child,
    log: PathBuf,
}

impl Haproxy {
    fn start(host: &Host, config: &Path, pidfile: &Path, log: PathBuf) -> Self {
        let file = std::fs::File::create(&log).unwrap();
        let child = Command::new("nsenter")
            .arg(format!("--net=/var/run/netns/{}", host.netns))
            .arg("/usr/sbin/haproxy")
            .arg("-W")
            .arg("-f")
            .arg(config)
            .arg("-p")
            .arg(pidfile)
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("Debian's haproxy is installed by tests/run-all.sh");
        Haproxy { child, log }
    }

    /// The master's pid (nsenter execs HAProxy in its own place).
    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `curl -sf -m SECONDS URL` from `host`: the body, or None when it failed.
fn curl(host: &Host, url: &str, seconds: u32) -> Option<String> {
    let seconds = seconds.to_string();
    let output = host.run(&["curl", "-sf", "-m", &seconds, url]);
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// The status HAProxy gives each server of `backend` (`UP`, `DOWN`, …),
/// read from its admin socket (a path, so reachable from any namespace).
/// Waits until HAProxy's view of `backend`'s servers passes `want`; a
/// timeout names the states last seen. Health checks run every 2 s and a
/// node's `/healthz` follows its endpoints, which a loaded CI host may take
/// a while to deliver: 90 s.
fn wait_for_states(socket: &Path, backend: &str, want: impl Fn(&BTreeMap<String, String>) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let states = server_states(socket, backend);
        if want(&states) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "HAProxy's servers of {backend} never reached the wanted states; last seen: {states:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn server_states(socket: &Path, backend: &str) -> BTreeMap<String, String> {
    let Ok(mut stream) = std::os::unix::net::UnixStream::connect(socket) else {
        return BTreeMap::new();
    };
    let mut text = String::new();
    if stream.write_all(b"show stat\n").is_err() || stream.read_to_string(&mut text).is_err() {
        return BTreeMap::new();
    }
    let mut lines = text.lines();
    let header: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .trim_start_matches("# ")
        .split(',')
        .collect();
    let column = |name: &str| header.iter().position(|h| *h == name);
    let (Some(proxy), Some(server), Some(status)) =
        (column("pxname"), column("svname"), column("status"))
    else {
        return BTreeMap::new();
    };
    lines
        .map(|line| line.split(',').collect::<Vec<_>>())
        .filter(|f| f.len() > status && f[proxy] == backend)
        .filter(|f| f[server] != "FRONTEND" && f[server] != "BACKEND")
        .map(|f| (f[server].to_owned(), f[status].to_owned()))
        .collect()
}

/// Requests from `host` to `url` in a loop on another thread until
/// stopped: (answers, failures).
struct RequestLoop {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<(Vec<String>, usize)>,
}

impl RequestLoop {
    fn start(host: &Host, url: &str) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let (host, url, flag) = (host.clone(), url.to_owned(), stop.clone());
        let thread = std::thread::spawn(move || {
            let (mut answers, mut failures) = (Vec::new(), 0);
            while !flag.load(Ordering::Relaxed) {
                match curl(&host, &url, 20) {
                    Some(page) => answers.push(page),
                    None => failures += 1,
                }
            }
            (answers, failures)
        });
        RequestLoop { stop, thread }
    }

    fn finish(self) -> (Vec<String>, usize) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap()
    }
}

fn web_pods(kubectl: &Kubectl) -> Vec<(String, String)> {
    kubectl
        .jsonpath(
            &["get", "pods", "-l", "app=web"],
            r#"{range .items[*]}{.metadata.name} {.spec.nodeName} {.metadata.deletionTimestamp}{"\n"}{end}"#,
        )
        .lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            (f.len() == 2).then(|| (f[0].to_owned(), f[1].to_owned()))
        })
        .collect()
}

/// `host.run(args)`, which must succeed.
fn must(host: &Host, args: &[&str]) {
    let out = host.run(args);
    assert!(out.status.success(), "{args:?}: {out:?}");
}

/// Makes `lb_host` a transparent proxy's host: a leg on the nodes' bridge
/// (a veth from this machine, gone with the host's namespace), the three
/// commands the README gives the operator (replies to HAProxy's transparent
/// sockets are marked and delivered locally), and on every node a route to
/// the client LAN through it.
fn transparent_lb_host(lb_host: &Host, node_bridge: &str, nodes: &[&Host], clients: &str) {
    let leg = Command::new("ip")
        .args([
            "link", "add", "lbtlw0", "type", "veth", "peer", "name", "eth1",
        ])
        .args(["netns", &lb_host.netns])
        .output()
        .unwrap();
    assert!(leg.status.success(), "{leg:?}");
    let up = Command::new("ip")
        .args(["link", "set", "lbtlw0", "master", node_bridge, "up"])
        .output()
        .unwrap();
    assert!(up.status.success(), "{up:?}");
    must(
        lb_host,
        &[
            "ip",
            "addr",
            "add",
            &format!("{LB_NODE_LAN}/24"),
            "dev",
            "eth1",
        ],
    );
    must(lb_host, &["ip", "link", "set", "eth1", "up"]);
    must(
        lb_host,
        &["ip", "rule", "add", "fwmark", "1", "lookup", "100"],
    );
    must(
        lb_host,
        &[
            "ip",
            "route",
            "add",
            "local",
            "0.0.0.0/0",
            "dev",
            "lo",
            "table",
            "100",
        ],
    );
    must(lb_host, &["nft", "add", "table", "ip", "berth_lb"]);
    must(
        lb_host,
        &[
            "nft",
            "add chain ip berth_lb prerouting { type filter hook prerouting priority mangle ; }",
        ],
    );
    must(
        lb_host,
        &[
            "nft",
            "add rule ip berth_lb prerouting socket transparent 1 meta mark set 1",
        ],
    );
    for node in nodes {
        must(node, &["ip", "route", "add", clients, "via", LB_NODE_LAN]);
    }
}

/// The address busybox httpd's CGI saw, without IPv4-mapped decoration.
fn peer_address(text: &str) -> String {
    text.trim()
        .trim_start_matches("[::ffff:")
        .trim_end_matches(']')
        .trim_start_matches("::ffff:")
        .to_owned()
}

fn ingress_ip(kubectl: &Kubectl, service: &str) -> Option<String> {
    Some(kubectl.jsonpath(
        &["get", "svc", service],
        "{.status.loadBalancer.ingress[0].ip}",
    ))
    .filter(|ip| !ip.is_empty())
}

#[test]
fn traffic_flows_through_haproxy_load_balancer() {
    // Declared first, dropped last: the LB host and the client.
    let edge = Hosts::up("lbtl", 2, "10.68", Topology::OneLan);
    let (lb_host, client) = (edge.hosts[0].clone(), edge.hosts[1].clone());
    let mut cluster = HostCluster::start(
        "lbtn",
        3,
        "10.67",
        Topology::OneLan,
        &["--cluster-cidr", "10.167.0.0/16"],
        &["--network-mode", "routed"],
    );
    let kubectl = cluster.server.kubectl(KUBECTL_1_33);
    let names: Vec<String> = cluster.nodes.iter().map(|n| n.name.clone()).collect();

    // The pool's addresses live on the LB host, as MetalLB's L2 mode
    // would put them there; HAProxy binds them once a Service has one.
    for address in POOL {
        let added = lb_host.run(&["ip", "addr", "add", &format!("{address}/32"), "dev", "eth0"]);
        assert!(added.status.success(), "{added:?}");
    }
    let node_hosts: Vec<&Host> = cluster.nodes.iter().map(|n| &n.host).collect();
    transparent_lb_host(&lb_host, "lbtnbr0", &node_hosts, "10.68.0.0/24");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("haproxy.cfg");
    let socket = dir.path().join("admin.sock");
    std::fs::write(
        &config,
        format!(
            "global\n    stats socket {} mode 600 level admin expose-fd listeners\n\ndefaults\n    mode tcp\n    timeout connect 5s\n    timeout client 1h\n    timeout server 1h\n",
            socket.display()
        ),
    )
    .unwrap();
    let haproxy = Haproxy::start(
        &lb_host,
        &config,
        &dir.path().join("haproxy.pid"),
        dir.path().join("haproxy.log"),
    );
    let reload = format!("kill -USR2 {}", haproxy.pid());
    let pool = format!("{}-{}", POOL[0], POOL[2]);
    let mut controller: BerthProcess = cluster.server.spawn_berth(
        "lbt-cloud-controller",
        &[
            "cloud-controller",
            "--identity",
            "lbt-e2e",
            "--haproxy-config",
            config.to_str().unwrap(),
            "--address-pool",
            &pool,
            "--haproxy-reload",
            &reload,
            "--haproxy-stats-socket",
            socket.to_str().unwrap(),
            "--haproxy-transparent",
        ],
    );

    // Every replica answers through the EXTERNAL-IP.
    kubectl.ok_stdin(&["apply", "-f", "-"], &manifest(WEB, &cluster.mirror.host));
    let waited = kubectl.run(&[
        "wait",
        "--for=condition=Available",
        "deployment/web",
        "--timeout=150s",
    ]);
    assert!(
        waited.status.success(),
        "{}\n{}",
        kubectl.ok(&["get", "pods", "-o", "wide"]),
        cluster.logs()
    );
    let replicas: BTreeSet<String> = web_pods(&kubectl).into_iter().map(|(n, _)| n).collect();
    assert_eq!(replicas.len(), 3);
    let server = &cluster.server;
    let ip = wait_for(
        "web's EXTERNAL-IP",
        Duration::from_secs(60),
        server,
        &mut [&mut controller],
        || ingress_ip(&kubectl, "web"),
    );
    assert_eq!(ip, POOL[0]);
    let listed = kubectl.ok(&["get", "svc", "web"]);
    assert!(listed.contains(POOL[0]), "{listed}");
    let url = format!("http://{ip}/");
    let mut seen = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen != replicas {
        if Instant::now() > deadline {
            let node_port = kubectl.jsonpath(&["get", "svc", "web"], "{.spec.ports[0].nodePort}");
            let direct = lb_host.run(&[
                "curl",
                "-sv",
                "-m",
                "5",
                &format!("http://{}:{node_port}/", cluster.nodes[0].host.address),
            ]);
            panic!(
                "answers through {url}: {seen:?}, replicas {replicas:?}\nclient: {:?}\nNodePort from the LB host: {direct:?}\nstates: {:?}\nconfig:\n{}\nhaproxy:\n{}\ncontroller:\n{}",
                client.run(&["curl", "-sv", "-m", "5", &url]),
                server_states(&socket, "default_web_80"),
                std::fs::read_to_string(&config).unwrap_or_default(),
                haproxy.log(),
                controller.log(),
            );
        }
        if let Some(page) = curl(&client, &url, 5) {
            seen.insert(page);
        }
    }

    // A reload (a second Service) leaves an established download alone. The
    // test holds back reading curl's output, so curl stays blocked mid-file
    // with the rest queued behind HAProxy until the reload is done, however
    // long the reload takes; then it drains the rest.
    let mut slow = Command::new("nsenter")
        .arg(format!("--net=/var/run/netns/{}", client.netns))
        .args(["curl", "-sf", "-o", "-"])
        .arg(format!("{url}big"))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut body = slow.stdout.take().expect("curl's output");
    let mut head = vec![0u8; 64 * 1024];
    body.read_exact(&mut head)
        .expect("the download's first bytes through the load balancer");
    kubectl.ok_stdin(&["apply", "-f", "-"], SECOND);
    let second = wait_for(
        "web-second's EXTERNAL-IP",
        Duration::from_secs(60),
        server,
        &mut [&mut controller],
        || ingress_ip(&kubectl, "web-second"),
    );
    assert_eq!(second, POOL[1]);
    let page = eventually(Duration::from_secs(30), || {
        curl(&client, &format!("http://{second}:8080/"), 5)
    });
    assert!(replicas.contains(&page), "{page}");
    let mut rest = Vec::new();
    let drained = body.read_to_end(&mut rest);
    let finished = slow.wait().unwrap();
    let size = (head.len() + rest.len()) as u64;
    assert!(
        drained.is_ok() && finished.success() && size == BIG,
        "download across the reload: curl {finished}, {size} of {BIG} bytes ({drained:?})\n{}",
        haproxy.log()
    );

    // A rolling restart under a steady request loop loses nothing.
    let load = RequestLoop::start(&client, &url);
    kubectl.ok(&["rollout", "restart", "deployment/web"]);
    let rolled = kubectl.run(&["rollout", "status", "deployment/web", "--timeout=150s"]);
    assert!(rolled.status.success(), "{rolled:?}\n{}", cluster.logs());
    // The last old pods leave after their preStop sleep.
    eventually(Duration::from_secs(60), || {
        let now: BTreeSet<String> = web_pods(&kubectl).into_iter().map(|(n, _)| n).collect();
        (now.len() == 3 && now.is_disjoint(&replicas)).then_some(())
    });
    let (answers, failures) = load.finish();
    assert_eq!(
        failures,
        0,
        "failed requests during the rolling update ({} answered)\n{}",
        answers.len(),
        haproxy.log()
    );
    let new: BTreeSet<String> = web_pods(&kubectl).into_iter().map(|(n, _)| n).collect();
    assert!(answers.iter().any(|a| new.contains(a)), "{answers:?}");

    // externalTrafficPolicy Local: one replica, and only its node is up.
    kubectl.ok(&["scale", "deployment/web", "--replicas=1"]);
    let (solo, solo_node) = eventually(Duration::from_secs(60), || {
        let pods = web_pods(&kubectl);
        (pods.len() == 1).then(|| pods[0].clone())
    });
    kubectl.ok_stdin(&["apply", "-f", "-"], LOCAL);
    let local = wait_for(
        "web-local's EXTERNAL-IP",
        Duration::from_secs(60),
        server,
        &mut [&mut controller],
        || ingress_ip(&kubectl, "web-local"),
    );
    let health = kubectl.jsonpath(&["get", "svc", "web-local"], "{.spec.healthCheckNodePort}");
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(
        text.contains("uri /healthz") && text.contains(&format!("port {health}")),
        "{text}"
    );
    let expected: BTreeMap<String, String> = names
        .iter()
        .map(|n| {
            let up = if *n == solo_node { "UP" } else { "DOWN" };
            (n.clone(), up.to_owned())
        })
        .collect();
    wait_for_states(&socket, "default_web-local_80", |states| {
        states == &expected
    });
    for _ in 0..20 {
        let page = curl(&client, &format!("http://{local}/"), 10);
        assert_eq!(page.as_deref(), Some(solo.as_str()), "through web-local");
    }
    // Transparent: only the Local backend connects from the client's
    // address, and its pod sees the client; a Cluster Service's does not.
    assert_eq!(text.matches("usesrc clientip").count(), 1, "{text}");
    assert!(
        text.contains("backend default_web-local_80\n    balance roundrobin\n    source 0.0.0.0 usesrc clientip\n"),
        "{text}"
    );
    for _ in 0..5 {
        let seen = curl(&client, &format!("http://{local}/cgi-bin/ip"), 10);
        assert_eq!(
            seen.as_deref().map(peer_address),
            Some(client.address.clone()),
            "the pod behind web-local sees the client\n{}",
            haproxy.log()
        );
    }
    let through_cluster = curl(&client, &format!("{url}cgi-bin/ip"), 10).map(|s| peer_address(&s));
    assert!(
        through_cluster.is_some() && through_cluster != Some(client.address.clone()),
        "a Cluster Service keeps proxying from the load-balancer host: {through_cluster:?}"
    );

    // A node whose agent stopped and whose NodePort drops everything is
    // taken out by the health check; requests keep succeeding meanwhile.
    let dead = (0..names.len()).find(|i| names[*i] != solo_node).unwrap();
    let node_port = kubectl.jsonpath(&["get", "svc", "web"], "{.spec.ports[0].nodePort}");
    cluster.stop_agent(dead);
    let host = &cluster.nodes[dead].host;
    for rule in [
        vec!["nft", "add", "table", "ip", "lbtblock"],
        vec![
            "nft",
            "add chain ip lbtblock pre { type filter hook prerouting priority -300 ; }",
        ],
        vec![
            "nft", "add", "rule", "ip", "lbtblock", "pre", "tcp", "dport", &node_port, "drop",
        ],
    ] {
        let out = host.run(&rule);
        assert!(out.status.success(), "{rule:?}: {out:?}");
    }
    let load = RequestLoop::start(&client, &url);
    wait_for_states(&socket, "default_web_80", |states| {
        states.get(&names[dead]).map(String::as_str) == Some("DOWN")
    });
    for _ in 0..10 {
        assert_eq!(curl(&client, &url, 10).as_deref(), Some(solo.as_str()));
    }
    let (answers, failures) = load.finish();
    assert_eq!(
        failures,
        0,
        "failed requests while a node died ({} answered)",
        answers.len()
    );
    assert!(answers.iter().all(|a| *a == solo), "{answers:?}");

    // A deleted Service's frontend goes: its address stops answering.
    kubectl.ok(&["delete", "svc", "web-second", "--timeout=60s"]);
    eventually(Duration::from_secs(30), || {
        curl(&client, &format!("http://{second}:8080/"), 3)
            .is_none()
            .then_some(())
    });
    controller.assert_running();
    assert!(
        !std::fs::read_to_string(&config)
            .unwrap()
            .contains("web-second"),
        "the frontend is gone"
    );
}
