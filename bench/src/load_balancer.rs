//! The bare-metal load balancer's data path and failover: requests/s and
//! p99 of HTTP keep-alive and new-connection requests from a fixed number
//! of clients through Debian's HAProxy (the file rendered by the
//! cloud-controller's `haproxy::config::render` for a LoadBalancer
//! Service), beside the same load straight to a node's NodePort (the
//! floor), in one run; then the time from a node's NodePort dropping
//! everything to HAProxy marking it DOWN, and the client requests that
//! failed meanwhile. Nodes, pods, the load-balancer host and the client are
//! network namespaces; each node's Service table is made by the agent's own
//! service-proxy code. Target: ≥ 0.9 × the floor.
//!
//! Needs root, iproute2, nftables and `/usr/sbin/haproxy` (2.6); leaves no
//! namespace, link or process behind.

#[path = "load_balancer/lab.rs"]
mod lab;
#[path = "load_balancer/pinning.rs"]
mod pinning;
#[path = "load_balancer/traffic.rs"]
mod traffic;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use berth_agent::network::service_proxy::{endpoints, rules};
use berth_bench::netns::inside;
use berth_bench::process::Process;
use berth_cloud_controller::haproxy::config::{render, Frontend, Settings};
use berth_cloud_controller::nodes::TargetNode;
use clap::{Parser, Subcommand};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde_json::json;

use lab::{Lab, FRONTEND_ADDRESS};
use traffic::Mode;

/// Flags of the load-balancer benchmark.
#[derive(Parser, Debug)]
#[command(
    about = "Requests/s and p99 through HAProxy vs. straight to a NodePort, and the time HAProxy takes to mark a dead node DOWN (root; iproute2, nftables, haproxy)"
)]
struct Args {
    /// Nodes behind the load balancer (2 or more).
    #[arg(long, default_value_t = 2)]
    nodes: usize,
    /// Concurrent clients, each a closed loop.
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Seconds per measurement.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Measurements per path and mode, alternating (the best of each is reported).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// HAProxy's health-check interval, in milliseconds (the provider's default).
    #[arg(long, default_value_t = Settings::default().check_interval_ms)]
    check_interval_ms: u32,
    /// Failed checks before HAProxy takes a node out (the provider's default).
    #[arg(long, default_value_t = Settings::default().fall)]
    fall: u32,
    /// The HAProxy binary.
    #[arg(long, default_value = "/usr/sbin/haproxy")]
    haproxy: String,
    #[command(subcommand)]
    step: Option<Step>,
}

/// What the benchmark runs inside its namespaces (it starts itself there).
#[derive(Subcommand, Debug)]
enum Step {
    /// Make node `me`'s Service table.
    #[command(hide = true)]
    Node {
        #[arg(long)]
        me: String,
        #[arg(long)]
        nodes: usize,
    },
    /// Serve HTTP on the pod port.
    #[command(hide = true)]
    Serve,
    /// Load `target` for `seconds` (or, with none, until stdin closes);
    /// prints `requests failures req_per_s p99_us max_us`.
    #[command(hide = true)]
    Client {
        #[arg(long)]
        target: SocketAddr,
        #[arg(long, value_enum)]
        mode: Mode,
        #[arg(long)]
        clients: usize,
        #[arg(long)]
        seconds: Option<u64>,
    },
}

const SERVICE_PORT: u16 = 80;
const NODE_PORT: u16 = 30080;
const POD_PORT: u16 = 8080;
const CLUSTER_IP: &str = "10.233.0.10";

/// The LoadBalancer Service both the agent's table and HAProxy's file come from.
fn service() -> anyhow::Result<Service> {
    Ok(serde_json::from_value(json!({
        "metadata": {"name": "web", "namespace": "lbbench"},
        "spec": {
            "type": "LoadBalancer", "clusterIP": CLUSTER_IP, "externalTrafficPolicy": "Cluster",
            "ports": [{"name": "http", "port": SERVICE_PORT, "protocol": "TCP",
                       "targetPort": POD_PORT, "nodePort": NODE_PORT}]
        }
    }))?)
}

/// Inside node `me`'s namespace: the Service table its agent would make,
/// every node's pod an endpoint (`externalTrafficPolicy: Cluster`).
async fn make_node(me: &str, nodes: usize) -> anyhow::Result<()> {
    let index: usize = me
        .trim_start_matches(&format!("{}-n", lab::PREFIX))
        .parse()?;
    let endpoints: Vec<_> = (0..nodes)
        .map(|n| json!({"addresses": [lab::pod_address(n)], "nodeName": Lab::node(n), "conditions": {"ready": true}}))
        .collect();
    let slice: EndpointSlice = serde_json::from_value(json!({
        "metadata": {"name": "web-x", "namespace": "lbbench", "labels": {"kubernetes.io/service-name": "web"}},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": POD_PORT, "protocol": "TCP"}],
        "endpoints": endpoints
    }))?;
    let ports = endpoints::service_ports(&[service()?], &[slice], me);
    let script = rules::script("berth_lbbench", &ports, Some(&lab::pod_cidr(index)));
    berth_agent::network::nft::apply(&script)
        .await
        .map_err(anyhow::Error::msg)
}

/// The client step: loads `target` and prints its tally.
fn client(
    target: SocketAddr,
    mode: Mode,
    clients: usize,
    seconds: Option<u64>,
) -> anyhow::Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    let stopper = stop.clone();
    std::thread::spawn(move || {
        match seconds {
            Some(seconds) => std::thread::sleep(Duration::from_secs(seconds)),
            None => {
                let _ = std::io::stdin().read_to_end(&mut Vec::new());
            }
        }
        stopper.store(true, Ordering::Relaxed);
    });
    let started = Instant::now();
    let mut tally = traffic::load(target, mode, clients, stop);
    let elapsed = started.elapsed().as_secs_f64();
    let done = tally.latencies.len();
    let failures = tally.failures;
    let p99 = tally.quantile(0.99).as_secs_f64() * 1e6;
    let max = tally.quantile(1.0).as_secs_f64() * 1e6;
    println!(
        "{} {failures} {:.1} {p99:.1} {max:.1}",
        done as u64 + failures,
        done as f64 / elapsed,
    );
    Ok(())
}

/// What one client step printed.
#[derive(Clone, Copy, Debug)]
struct Measure {
    requests: f64,
    failures: f64,
    per_second: f64,
    p99_us: f64,
    max_us: f64,
}

impl Measure {
    fn parse(text: &str) -> anyhow::Result<Self> {
        let numbers: Vec<f64> = text
            .split_whitespace()
            .filter_map(|n| n.parse().ok())
            .collect();
        let [requests, failures, per_second, p99_us, max_us] = numbers[..] else {
            anyhow::bail!("client printed {text:?}");
        };
        Ok(Measure {
            requests,
            failures,
            per_second,
            p99_us,
            max_us,
        })
    }
}

/// The client step's arguments, less its duration.
fn client_args(target: SocketAddr, mode: Mode, clients: usize) -> Vec<String> {
    let mode = match mode {
        Mode::KeepAlive => "keep-alive",
        Mode::New => "new",
    };
    [
        "client",
        "--target",
        &target.to_string(),
        "--mode",
        mode,
        "--clients",
        &clients.to_string(),
    ]
    .map(str::to_owned)
    .to_vec()
}

/// One timed measurement from the client's namespace, on `cpus` if given.
fn measure(
    exe: &str,
    args: &Args,
    target: SocketAddr,
    mode: Mode,
    cpus: Option<&str>,
) -> anyhow::Result<Measure> {
    let mut argv = match cpus {
        Some(cpus) => vec!["taskset".to_owned(), "-c".to_owned(), cpus.to_owned()],
        None => Vec::new(),
    };
    argv.push(exe.to_owned());
    argv.extend(client_args(target, mode, args.clients));
    argv.extend(["--seconds".to_owned(), args.seconds.to_string()]);
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    Measure::parse(&inside(&Lab::client(), &argv)?)
}

/// `show stat` on HAProxy's admin socket: (proxy, server, status) per row.
fn server_states(socket: &Path) -> anyhow::Result<Vec<(String, String, String)>> {
    let mut stream = UnixStream::connect(socket)?;
    stream.write_all(b"show stat\n")?;
    let mut text = String::new();
    stream.read_to_string(&mut text)?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines
        .next()
        .context("an empty answer")?
        .trim_start_matches("# ")
        .split(',')
        .collect();
    let column = |name: &str| header.iter().position(|h| *h == name);
    let (proxy, server, status) = (
        column("pxname").context("no pxname")?,
        column("svname").context("no svname")?,
        column("status").context("no status")?,
    );
    Ok(lines
        .map(|line| line.split(',').collect::<Vec<_>>())
        .filter(|fields| fields.len() > status)
        .map(|f| (f[proxy].into(), f[server].into(), f[status].into()))
        .collect())
}

/// Waits until `node`'s server in every backend reports a status starting
/// with `wanted`; how long that took.
fn wait_for(socket: &Path, node: &str, wanted: &str, limit: Duration) -> anyhow::Result<Duration> {
    let started = Instant::now();
    loop {
        if let Ok(states) = server_states(socket) {
            let mine: Vec<_> = states.iter().filter(|(_, s, _)| s == node).collect();
            if !mine.is_empty() && mine.iter().all(|(_, _, status)| status.starts_with(wanted)) {
                return Ok(started.elapsed());
            }
        }
        anyhow::ensure!(
            started.elapsed() < limit,
            "{node} not {wanted} in {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Starts HAProxy in the load-balancer namespace with the rendered file,
/// on `cpus` if given (it sizes its threads to them).
fn start_haproxy(args: &Args, dir: &Path, cpus: Option<&str>) -> anyhow::Result<Process> {
    let socket = dir.join("admin.sock");
    let settings = Settings {
        stats_socket: Some(socket.clone()),
        check_interval_ms: args.check_interval_ms,
        fall: args.fall,
        ..Settings::default()
    };
    let targets: Vec<TargetNode> = (0..args.nodes)
        .map(|index| -> anyhow::Result<TargetNode> {
            Ok(TargetNode {
                name: Lab::node(index),
                address: lab::node_address(index).parse()?,
                provider_id: None,
            })
        })
        .collect::<anyhow::Result<_>>()?;
    let address: IpAddr = FRONTEND_ADDRESS.parse()?;
    let frontend = Frontend::for_service(&service()?, address, &targets)?;
    let config = dir.join("haproxy.cfg");
    std::fs::write(&config, render(&settings, &[frontend]))?;
    let mut command = Command::new("nsenter");
    command.arg(format!("--net=/var/run/netns/{}", Lab::balancer()));
    if let Some(cpus) = cpus {
        command.args(["taskset", "-c", cpus]);
    }
    let child = command
        .args([&args.haproxy, "-W", "-f"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("haproxy.log"))?)
        .spawn()
        .with_context(|| format!("starting {}", args.haproxy))?;
    let mut process = Process(child);
    for index in 0..args.nodes {
        if let Err(e) = wait_for(&socket, &Lab::node(index), "UP", Duration::from_secs(30)) {
            let exited = process.0.try_wait()?;
            let log = std::fs::read_to_string(dir.join("haproxy.log")).unwrap_or_default();
            anyhow::bail!("HAProxy not serving ({e}; exited: {exited:?}): {log}");
        }
    }
    Ok(process)
}

/// Drops every packet to the NodePort of node `index`, as a node whose
/// agent and network died would.
fn kill_node_port(index: usize, dir: &Path) -> anyhow::Result<()> {
    let file = dir.join("block.nft");
    std::fs::write(
        &file,
        format!(
            "table ip blbblock {{\n  chain pre {{\n    type filter hook prerouting priority -300;\n    tcp dport {NODE_PORT} drop\n  }}\n}}\n"
        ),
    )?;
    inside(&Lab::node(index), &["nft", "-f", &file.to_string_lossy()])?;
    Ok(())
}

/// One line of the comparison: both paths, the ratio and the verdict.
fn print_row(label: &str, floor: &Measure, through: &Measure) {
    let ratio = through.per_second / floor.per_second;
    println!(
        "{label:>14}: NodePort {:>8.0} req/s p99 {:>7.3} ms | HAProxy {:>8.0} req/s p99 {:>7.3} ms | ratio {ratio:.2}x {} (target >= 0.90), p99 {:.2}x; failed {} + {}",
        floor.per_second,
        floor.p99_us / 1e3,
        through.per_second,
        through.p99_us / 1e3,
        if ratio >= 0.9 { "PASS" } else { "BELOW" },
        through.p99_us / floor.p99_us,
        floor.failures,
        through.failures,
    );
}

/// Both modes, `--runs` times alternating between the floor and HAProxy;
/// prints the best of each.
fn compare(
    exe: &str,
    args: &Args,
    floor: SocketAddr,
    through: SocketAddr,
    cpus: Option<&str>,
) -> anyhow::Result<()> {
    for (label, mode) in [
        ("keep-alive", Mode::KeepAlive),
        ("new connection", Mode::New),
    ] {
        let mut best: [Option<Measure>; 2] = [None, None];
        for _ in 0..args.runs {
            for (slot, target) in [floor, through].into_iter().enumerate() {
                let run = measure(exe, args, target, mode, cpus)?;
                best[slot] = Some(match best[slot] {
                    Some(old) if old.per_second >= run.per_second => old,
                    _ => run,
                });
            }
        }
        if let [Some(floor), Some(through)] = best {
            print_row(label, &floor, &through);
        }
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    match &args.step {
        Some(Step::Node { me, nodes }) => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            return runtime.block_on(make_node(me, *nodes));
        }
        Some(Step::Serve) => return traffic::serve(POD_PORT),
        Some(Step::Client {
            target,
            mode,
            clients,
            seconds,
        }) => return client(*target, *mode, *clients, *seconds),
        None => {}
    }
    anyhow::ensure!(args.nodes >= 2, "--nodes must be 2 or more");
    let exe = std::env::current_exe()?.to_string_lossy().into_owned();
    let dir = tempfile::tempdir()?;
    // Declared first, dropped last: the processes inside go before it.
    let _lab = Lab::build(args.nodes)?;
    let mut servers = Vec::new();
    for index in 0..args.nodes {
        inside(
            &Lab::node(index),
            &[
                &exe,
                "node",
                "--me",
                &Lab::node(index),
                "--nodes",
                &args.nodes.to_string(),
            ],
        )?;
        let child = Command::new("nsenter")
            .arg(format!("--net=/var/run/netns/{}", Lab::pod(index)))
            .args([&exe, "serve"])
            .spawn()?;
        servers.push(Process(child));
    }
    let floor: SocketAddr = format!("{}:{NODE_PORT}", lab::node_address(0)).parse()?;
    let through: SocketAddr = format!("{FRONTEND_ADDRESS}:{SERVICE_PORT}").parse()?;
    println!(
        "lb-bench: {} nodes, {} clients, {} s per measurement, best of {}; HAProxy {through} vs. NodePort {floor}",
        args.nodes, args.clients, args.seconds, args.runs
    );
    let cpus = pinning::allowed_cpus();
    if cpus.len() >= 2 {
        // The load balancer runs on a host of its own in production: give
        // HAProxy its own CPUs, and the clients and pods (both paths) the rest.
        let (load, proxy) = cpus.split_at(cpus.len() / 2);
        let (load, proxy) = (pinning::list(load), pinning::list(proxy));
        let haproxy = start_haproxy(&args, dir.path(), Some(&proxy))?;
        for index in 0..args.nodes {
            pinning::pin_namespace(&Lab::pod(index), &load)?;
        }
        println!("pinned: clients and pods on CPUs {load}, HAProxy on CPUs {proxy}");
        compare(&exe, &args, floor, through, Some(&load))?;
        drop(haproxy);
        Lab::kill_inside(&Lab::balancer())?;
        for index in 0..args.nodes {
            pinning::pin_namespace(&Lab::pod(index), &pinning::list(&cpus))?;
        }
    }
    let _haproxy = start_haproxy(&args, dir.path(), None)?;
    println!("shared: every process on CPUs {}", pinning::list(&cpus));
    compare(&exe, &args, floor, through, None)?;

    // Failover: new-connection load through HAProxy while the last node's
    // NodePort starts dropping everything, until HAProxy marks it DOWN.
    let dead = args.nodes - 1;
    let mut argv = client_args(through, Mode::New, args.clients);
    argv.insert(0, exe.clone());
    let mut load = Process(
        Command::new("nsenter")
            .arg(format!("--net=/var/run/netns/{}", Lab::client()))
            .args(&argv)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?,
    );
    std::thread::sleep(Duration::from_secs(1));
    kill_node_port(dead, dir.path())?;
    let socket = dir.path().join("admin.sock");
    let down = wait_for(&socket, &Lab::node(dead), "DOWN", Duration::from_secs(120))?;
    drop(load.0.stdin.take());
    let mut line = String::new();
    BufReader::new(load.0.stdout.take().context("the client's output")?).read_line(&mut line)?;
    let during = Measure::parse(&line)?;
    println!(
        "failover: {}'s NodePort dropped -> DOWN in {:.2} s (check every {} ms, fall {}); {} new-connection requests from 1 s before to DOWN, {} failed, slowest {:.0} ms",
        Lab::node(dead),
        down.as_secs_f64(),
        args.check_interval_ms,
        args.fall,
        during.requests,
        during.failures,
        during.max_us / 1e3
    );
    Ok(())
}
