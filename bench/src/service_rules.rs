//! How long a node takes to resync its Service rules from scratch: N
//! Services with M endpoints each become the agent's nftables table (the
//! same code the agent runs: loaded beside the live table, in parallel
//! parts, and swapped in) in a network namespace of the benchmark's own. The floor, measured in the same run, is applying one
//! plain set holding as many elements: the least the kernel must be told.
//! Target: 10,000 Services in at most 1 s (iptables-mode kube-proxy takes
//! minutes at that size). Needs root and Debian's `nftables`.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use berth_agent::network::service_proxy::{endpoints, rules, writer};
use clap::Parser;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde_json::json;

/// Flags of the Service-rules benchmark.
#[derive(Parser, Debug)]
#[command(
    about = "Time to resync a node's Service rules (nftables) for many Services, vs. a floor"
)]
struct Args {
    /// Service counts to measure, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1000,10000")]
    services: Vec<usize>,
    /// Endpoints per Service.
    #[arg(long, default_value_t = 10)]
    endpoints: usize,
    /// Runs per size (the best is reported).
    #[arg(long, default_value_t = 3)]
    runs: usize,
}

/// Moves this process into a network namespace of its own (gone when it
/// exits), so every nft it runs works on tables nobody else sees.
fn enter_own_network_namespace() -> anyhow::Result<()> {
    // SAFETY: called before any other thread exists; unshare only changes
    // this thread's namespaces, which later threads and children inherit.
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
        bail!(
            "unshare(CLONE_NEWNET): {} (run as root)",
            std::io::Error::last_os_error()
        );
    }
    Ok(())
}

/// Applies an nft script; how long nft took.
fn apply(script: &str) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("running nft (Debian package nftables)")?;
    child
        .stdin
        .take()
        .context("nft's stdin")?
        .write_all(script.as_bytes())?;
    let output = child.wait_with_output()?;
    if !output.status.success() {
        bail!("nft failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    Ok(started.elapsed())
}

fn address(n: usize, base: u8) -> String {
    format!(
        "10.{}.{}.{}",
        base as usize + n / 62_500,
        (n / 250) % 250,
        n % 250 + 1
    )
}

/// `count` Services with `per` ready endpoints each spread over 100 nodes; every fourth is a
/// NodePort (as many as the NodePort range holds).
fn cluster(count: usize, per: usize) -> (Vec<Service>, Vec<EndpointSlice>) {
    let mut services = Vec::with_capacity(count);
    let mut slices = Vec::with_capacity(count);
    for i in 0..count {
        let name = format!("svc{i}");
        let node_port = (i % 4 == 0 && i / 4 < 2_768).then(|| 30_000 + i / 4);
        services.push(
            serde_json::from_value(json!({
                "metadata": {"name": name, "namespace": "bench"},
                "spec": {
                    "type": if node_port.is_some() { "NodePort" } else { "ClusterIP" },
                    "clusterIP": address(i, 43),
                    "ports": [{"name": "http", "port": 80, "protocol": "TCP", "nodePort": node_port}]
                }
            }))
            .expect("a valid Service"),
        );
        let endpoints: Vec<_> = (0..per)
            .map(|j| json!({"addresses": [address(i * per + j, 44)], "nodeName": format!("n{}", (i * per + j) % 100), "conditions": {"ready": true}}))
            .collect();
        slices.push(
            serde_json::from_value(json!({
                "metadata": {"name": format!("{name}-x"), "namespace": "bench", "labels": {"kubernetes.io/service-name": name}},
                "addressType": "IPv4",
                "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
                "endpoints": endpoints
            }))
            .expect("a valid EndpointSlice"),
        );
    }
    (services, slices)
}

/// A table with one plain set of `elements` (address . port) elements.
fn floor_script(elements: usize) -> String {
    let items: Vec<String> = (0..elements)
        .map(|n| format!("{} . 8080", address(n, 44)))
        .collect();
    format!(
        "table ip floor {{}}\ndelete table ip floor\ntable ip floor {{\n  set s {{\n    type ipv4_addr . inet_service\n    elements = {{ {} }}\n  }}\n}}\n",
        items.join(", ")
    )
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    enter_own_network_namespace()?;
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(measure(&args))
}

/// How long the agent takes to bring the table to `services` and `slices`
/// after a change, computing the rules anew and writing what changed.
async fn resync(
    writer: &mut writer::TableWriter,
    services: &[Service],
    slices: &[EndpointSlice],
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let wanted = rules::rules(
        &endpoints::service_ports(services, slices, "n0"),
        Some("10.44.0.0/24"),
    );
    if !writer.write(wanted).await? {
        bail!("a change wrote nothing");
    }
    Ok(started.elapsed())
}

async fn measure(args: &Args) -> anyhow::Result<()> {
    // The agent's own writer: tables loaded beside the live one and swapped in.
    let mut writer = writer::TableWriter::new("bench").await;
    println!(
        "service-rules: {} endpoints per Service, best of {} runs",
        args.endpoints, args.runs
    );
    for &count in &args.services {
        let (services, slices) = cluster(count, args.endpoints);
        let mut best_generate = Duration::MAX;
        let mut best_apply = Duration::MAX;
        let mut best_floor = Duration::MAX;
        let mut best_delta = Duration::MAX;
        let mut best_sticky = Duration::MAX;
        let mut elements = 0;
        for _ in 0..args.runs {
            let started = Instant::now();
            let ports = endpoints::service_ports(&services, &slices, "n0");
            let wanted = rules::rules(&ports, Some("10.44.0.0/24"));
            best_generate = best_generate.min(started.elapsed());
            elements = wanted.element_count();
            if let Some(path) = std::env::var_os("BERTH_BENCH_DUMP") {
                std::fs::write(path, wanted.script("berth_bench"))?;
            }
            let started = Instant::now();
            writer.rewrite(wanted).await?;
            best_apply = best_apply.min(started.elapsed());
            // One endpoint of one Service moves: only its elements change.
            let mut moved = slices.clone();
            moved[count / 2].endpoints[0].addresses = vec!["10.250.0.1".to_owned()];
            best_delta = best_delta.min(resync(&mut writer, &services, &moved).await?);
            // One Service turns on ClientIP affinity: chains and sets of its own.
            let mut sticky = services.clone();
            if let Some(spec) = sticky[count / 3].spec.as_mut() {
                spec.session_affinity = Some("ClientIP".to_owned());
            }
            best_sticky = best_sticky.min(resync(&mut writer, &sticky, &moved).await?);
            best_floor = best_floor.min(apply(&floor_script(elements))?);
        }
        let total = best_generate + best_apply;
        println!(
            "{count:>6} Services: generate {:>7.1} ms + load and swap {:>7.1} ms = {:>7.1} ms ({elements} map elements); floor (one set of as many elements, one nft) {:>7.1} ms; ratio {:.2}x; target <= 1 s: {}; in place: one endpoint moved {:.1} ms, one Service turned sticky {:.1} ms",
            best_generate.as_secs_f64() * 1e3,
            best_apply.as_secs_f64() * 1e3,
            total.as_secs_f64() * 1e3,
            best_floor.as_secs_f64() * 1e3,
            total.as_secs_f64() / best_floor.as_secs_f64(),
            if total <= Duration::from_secs(1) { "met" } else { "MISSED" },
            best_delta.as_secs_f64() * 1e3,
            best_sticky.as_secs_f64() * 1e3
        );
    }
    Ok(())
}
