//! The pod network's data path: TCP throughput and round-trip latency from
//! a pod on one node to a pod on another, straight to the pod's address
//! (the floor) and through a ClusterIP, in routed and in VXLAN mode. Nodes
//! and pods are network namespaces wired as the agent's CNI wires them (a
//! bridge per node, a veth per pod); the routes, VXLAN entries and Service
//! table are made by the agent's own code, run inside each node's
//! namespace. Targets: ClusterIP ≥ 0.95 × direct; VXLAN is reported beside
//! routed. Needs root, iproute2 and nftables; leaves nothing behind.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Context;
use berth_agent::network::pod_network::{kernel, plan};
use berth_agent::network::service_proxy::{endpoints, rules};
use berth_bench::netns::{inside, run, wire_pod};
use clap::{Parser, Subcommand};
use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde_json::json;

/// Flags of the pod-network benchmark.
#[derive(Parser, Debug)]
#[command(
    about = "Pod-to-pod throughput and latency across nodes: pod IP vs. ClusterIP, routed vs. VXLAN"
)]
struct Args {
    /// Bytes sent per throughput run.
    #[arg(long, default_value_t = 512 * 1024 * 1024)]
    bytes: usize,
    /// Round trips per latency run.
    #[arg(long, default_value_t = 5_000)]
    round_trips: usize,
    /// Runs per path (the best of each is reported).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    #[command(subcommand)]
    step: Option<Step>,
}

/// What the benchmark runs inside its namespaces (it starts itself there).
#[derive(Subcommand, Debug)]
enum Step {
    /// Make node `me`'s routes, VXLAN entries and Service table.
    #[command(hide = true)]
    Node {
        #[arg(long)]
        me: String,
        #[arg(long)]
        mode: String,
    },
    /// Serve: a sink for throughput and an echo for latency.
    #[command(hide = true)]
    Serve,
    /// Measure against `target` (`ADDRESS:PORT`); prints `MB/s p50_us p99_us`.
    #[command(hide = true)]
    Client {
        #[arg(long)]
        target: String,
        #[arg(long)]
        bytes: usize,
        #[arg(long)]
        round_trips: usize,
    },
}

const PREFIX: &str = "bpnet";
const SERVER_PORT: u16 = 8080;
const CLUSTER_IP: &str = "10.213.0.10";

fn node_address(index: usize) -> String {
    format!("10.211.0.{}", 11 + index)
}

fn pod_cidr(index: usize) -> String {
    format!("10.212.{index}.0/24")
}

fn pod_address(index: usize) -> String {
    format!("10.212.{index}.2")
}

/// Two nodes with a pod each, removed when dropped.
struct Lab;

impl Lab {
    fn node(index: usize) -> String {
        format!("{PREFIX}-n{index}")
    }

    fn pod(index: usize) -> String {
        format!("{PREFIX}-p{index}")
    }

    fn build() -> anyhow::Result<Self> {
        Self::remove();
        let lab = Self;
        run(&[
            "ip",
            "link",
            "add",
            &format!("{PREFIX}br"),
            "type",
            "bridge",
        ])?;
        run(&[
            "ip",
            "addr",
            "add",
            "10.211.0.1/24",
            "dev",
            &format!("{PREFIX}br"),
        ])?;
        run(&["ip", "link", "set", &format!("{PREFIX}br"), "up"])?;
        for index in 0..2 {
            let node = Self::node(index);
            let pod = Self::pod(index);
            run(&["ip", "netns", "add", &node])?;
            run(&["ip", "netns", "add", &pod])?;
            let uplink = format!("{PREFIX}u{index}");
            run(&[
                "ip", "link", "add", &uplink, "type", "veth", "peer", "name", "eth0", "netns",
                &node,
            ])?;
            run(&[
                "ip",
                "link",
                "set",
                &uplink,
                "master",
                &format!("{PREFIX}br"),
                "up",
            ])?;
            let script = format!(
                "ip link set lo up && ip addr add {}/24 dev eth0 && ip link set eth0 up",
                node_address(index)
            );
            inside(&node, &["sh", "-c", &script])?;
            wire_pod(
                &node,
                &pod,
                &format!("10.212.{index}.1"),
                &pod_address(index),
            )?;
        }
        Ok(lab)
    }

    fn remove() {
        for index in 0..2 {
            for netns in [Self::node(index), Self::pod(index)] {
                let _ = Command::new("ip")
                    .args(["netns", "delete", &netns])
                    .output();
            }
        }
        // Namespaces go away in the background: remove their uplinks here
        // so the next lab can use the names at once.
        for index in 0..2 {
            let _ = Command::new("ip")
                .args(["link", "delete", &format!("{PREFIX}u{index}")])
                .output();
        }
        let _ = Command::new("ip")
            .args(["link", "delete", &format!("{PREFIX}br")])
            .output();
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        Self::remove();
    }
}

/// The two Nodes as the API would have them, both in `mode`.
fn nodes(mode: plan::Mode) -> Vec<Node> {
    (0..2)
        .map(|index| {
            let name = Lab::node(index);
            let mut annotations = serde_json::Map::new();
            annotations.insert(plan::MODE_ANNOTATION.into(), json!(mode.as_str()));
            if mode == plan::Mode::Vxlan {
                annotations.insert(
                    plan::VTEP_MAC_ANNOTATION.into(),
                    json!(plan::vtep_mac(&name)),
                );
            }
            serde_json::from_value(json!({
                "metadata": {"name": name, "annotations": annotations},
                "spec": {"podCIDR": pod_cidr(index)},
                "status": {"addresses": [{"type": "InternalIP", "address": node_address(index)}]}
            }))
            .expect("a valid Node")
        })
        .collect()
}

/// Inside node `me`'s namespace: what the agent's pod network and service
/// proxy would make there.
async fn make_node(me: &str, mode: &str) -> anyhow::Result<()> {
    let mode: plan::Mode = mode.parse().map_err(anyhow::Error::msg)?;
    let index: usize = me.trim_start_matches(&format!("{PREFIX}-n")).parse()?;
    let nodes = nodes(mode);
    let device = plan::vxlan_device(me);
    let node_ip: Ipv4Addr = node_address(index).parse()?;
    let own = plan::pod_cidr(&nodes[index]).context("a podCIDR")?;
    if mode == plan::Mode::Vxlan {
        let interfaces = kernel::interfaces().await?;
        let parent = kernel::interface_with(&interfaces, node_ip).context("the uplink")?;
        let mtu = parent.mtu - kernel::VXLAN_OVERHEAD;
        kernel::ensure_vxlan(
            &device,
            &plan::vtep_mac(me),
            node_ip,
            &parent.ifname,
            mtu,
            plan::vtep_address(&own),
        )
        .await?;
    }
    let interfaces = kernel::interfaces().await?;
    let wanted = plan::plan(
        mode,
        &device,
        &plan::peers(&nodes, me),
        &kernel::local_addresses(&interfaces),
        &kernel::foreign_routes().await?,
    );
    kernel::apply(
        &wanted,
        (mode == plan::Mode::Vxlan).then_some(device.as_str()),
    )
    .await?;
    let service: Service = serde_json::from_value(json!({
        "metadata": {"name": "server", "namespace": "bench"},
        "spec": {"clusterIP": CLUSTER_IP, "ports": [{"name": "tcp", "port": 80, "protocol": "TCP"}]}
    }))?;
    let slice: EndpointSlice = serde_json::from_value(json!({
        "metadata": {"name": "server-x", "namespace": "bench", "labels": {"kubernetes.io/service-name": "server"}},
        "addressType": "IPv4",
        "ports": [{"name": "tcp", "port": SERVER_PORT, "protocol": "TCP"}],
        "endpoints": [{"addresses": [pod_address(1)], "nodeName": Lab::node(1), "conditions": {"ready": true}}]
    }))?;
    let ports = endpoints::service_ports(&[service], &[slice], me);
    let script = rules::script("berth_bench", &ports, Some(&pod_cidr(index)));
    berth_agent::network::nft::apply(&script)
        .await
        .map_err(anyhow::Error::msg)
}

fn serve() -> anyhow::Result<()> {
    let listener = TcpListener::bind(("0.0.0.0", SERVER_PORT))?;
    for stream in listener.incoming() {
        let mut stream = stream?;
        stream.set_nodelay(true)?;
        let mut kind = [0u8; 1];
        stream.read_exact(&mut kind)?;
        let mut buffer = vec![0u8; 256 * 1024];
        if kind[0] == b'T' {
            // Sink: read to the end, then say how much arrived.
            let mut total = 0u64;
            loop {
                let n = stream.read(&mut buffer)?;
                if n == 0 {
                    break;
                }
                total += n as u64;
            }
            stream.write_all(&total.to_be_bytes())?;
        } else {
            // Echo one byte at a time.
            let mut byte = [0u8; 1];
            while stream.read_exact(&mut byte).is_ok() {
                stream.write_all(&byte)?;
            }
        }
    }
    Ok(())
}

fn client(target: &str, bytes: usize, round_trips: usize) -> anyhow::Result<()> {
    let connect = || -> anyhow::Result<TcpStream> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match TcpStream::connect(target) {
                Ok(stream) => return Ok(stream),
                Err(e) if Instant::now() > deadline => return Err(e.into()),
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    };
    let mut stream = connect()?;
    stream.write_all(b"T")?;
    let chunk = vec![7u8; 256 * 1024];
    let started = Instant::now();
    let mut sent = 0;
    while sent < bytes {
        let n = chunk.len().min(bytes - sent);
        stream.write_all(&chunk[..n])?;
        sent += n;
    }
    stream.shutdown(std::net::Shutdown::Write)?;
    let mut total = [0u8; 8];
    stream.read_exact(&mut total)?;
    let seconds = started.elapsed().as_secs_f64();
    anyhow::ensure!(u64::from_be_bytes(total) == bytes as u64, "bytes lost");
    let mut stream = connect()?;
    stream.set_nodelay(true)?;
    stream.write_all(b"L")?;
    let mut times = Vec::with_capacity(round_trips);
    let mut byte = [1u8; 1];
    for _ in 0..round_trips {
        let started = Instant::now();
        stream.write_all(&byte)?;
        stream.read_exact(&mut byte)?;
        times.push(started.elapsed());
    }
    times.sort();
    let at = |p: f64| {
        times[((times.len() as f64 * p) as usize).min(times.len() - 1)].as_secs_f64() * 1e6
    };
    println!(
        "{:.1} {:.1} {:.1}",
        bytes as f64 / seconds / 1e6,
        at(0.5),
        at(0.99)
    );
    Ok(())
}

/// One measurement: (MB/s, p50 µs, p99 µs).
fn measure(args: &Args, target: &str) -> anyhow::Result<(f64, f64, f64)> {
    let exe = std::env::current_exe()?;
    let exe = exe.to_string_lossy();
    let text = inside(
        &Lab::pod(0),
        &[
            &exe,
            "client",
            "--target",
            target,
            "--bytes",
            &args.bytes.to_string(),
            "--round-trips",
            &args.round_trips.to_string(),
        ],
    )?;
    let numbers: Vec<f64> = text
        .split_whitespace()
        .filter_map(|n| n.parse().ok())
        .collect();
    anyhow::ensure!(numbers.len() == 3, "client printed {text:?}");
    Ok((numbers[0], numbers[1], numbers[2]))
}

/// The middle value (NaN for none).
fn median(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    match &args.step {
        Some(Step::Node { me, mode }) => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            return runtime.block_on(make_node(me, mode));
        }
        Some(Step::Serve) => return serve(),
        Some(Step::Client {
            target,
            bytes,
            round_trips,
        }) => return client(target, *bytes, *round_trips),
        None => {}
    }
    let exe = std::env::current_exe()?;
    let exe = exe.to_string_lossy().into_owned();
    println!(
        "pod-network: {} MiB per throughput run, {} round trips per latency run, pod on node 0 → pod on node 1",
        args.bytes / (1024 * 1024),
        args.round_trips
    );
    let mut results = Vec::new();
    for mode in ["routed", "vxlan"] {
        let _lab = Lab::build()?;
        for index in 0..2 {
            inside(
                &Lab::node(index),
                &[&exe, "node", "--me", &Lab::node(index), "--mode", mode],
            )?;
        }
        let mut server = Command::new("nsenter")
            .arg(format!("--net=/var/run/netns/{}", Lab::pod(1)))
            .args([&exe, "serve"])
            .spawn()?;
        // Alternate the two paths and keep each one's best, so both see the
        // same machine; the ratio is the median of each back-to-back pair's,
        // which a busy neighbour skews far less than the best of each path.
        let mut direct: (f64, f64, f64) = (0.0, f64::MAX, f64::MAX);
        let mut service: (f64, f64, f64) = (0.0, f64::MAX, f64::MAX);
        let mut pair_ratios = Vec::new();
        let mut outcome = Ok(());
        for _ in 0..args.runs {
            let mut pair = [0.0; 2];
            for (slot, (target, best)) in [
                (format!("{}:{SERVER_PORT}", pod_address(1)), &mut direct),
                (format!("{CLUSTER_IP}:80"), &mut service),
            ]
            .into_iter()
            .enumerate()
            {
                match measure(&args, &target) {
                    Ok(run) => {
                        pair[slot] = run.0;
                        *best = (best.0.max(run.0), best.1.min(run.1), best.2.min(run.2));
                    }
                    Err(e) => outcome = Err(e),
                }
            }
            if pair[0] > 0.0 {
                pair_ratios.push(pair[1] / pair[0]);
            }
        }
        let _ = server.kill();
        let _ = server.wait();
        outcome?;
        println!(
            "{mode:>6}: pod IP {:>8.1} MB/s p50 {:>6.1} µs p99 {:>6.1} µs | ClusterIP {:>8.1} MB/s p50 {:>6.1} µs p99 {:>6.1} µs | ClusterIP/pod IP throughput {:.2}x best/best, {:.2}x median of {} pairs (target >= 0.95)",
            direct.0,
            direct.1,
            direct.2,
            service.0,
            service.1,
            service.2,
            service.0 / direct.0,
            median(&mut pair_ratios),
            pair_ratios.len()
        );
        results.push((mode, direct, service));
    }
    if let [(_, routed, _), (_, vxlan, _)] = results.as_slice() {
        println!(
            "vxlan/routed pod IP throughput {:.2}x, p50 latency {:.2}x",
            vxlan.0 / routed.0,
            vxlan.1 / routed.1
        );
    }
    Ok(())
}
