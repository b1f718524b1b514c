//! Scheduler benchmark: N simulated nodes (registered through the berth-agent
//! library, Ready, no pod loops or heartbeats so only scheduling is measured),
//! the scheduler, and M pods created through the API at a fixed concurrency;
//! prints pods/s from the first creation to the last pod seen bound in a watch
//! (so bound and persisted), the CPU each side spent per pod, and the
//! server's peak memory, beside the raw SQLite write rate of the same pod
//! objects at the same concurrency.
//!
//! The load generator (POSTs of ready-made pod JSON on keep-alive
//! connections) and the observer (a watch read for names and node names
//! only) are deliberately lean, so the CPU they share the machine with goes
//! to what is measured: the API server and the scheduler.
//!
//! `cargo build --release -p berth -p berth-bench && cargo run --release -p berth-bench --bin scheduler-bench [-- --nodes 5000 --pods 30000 --concurrency 32]`
//!
//! The API server runs as a child `berth server --disable scheduler,controllers`
//! (found beside this binary, or `--berth PATH`) so its VmHWM is its own; with
//! `--in-process` (or no berth binary) it runs in this process and the peak
//! memory printed includes the client side (nodes, scheduler, watches).
//!
//! Targets (2-core machine, SQLite): ≥ 2,000 pods/s, server memory ≤ 1 GiB.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use berth_agent::runtime::simulated::{SimulatedConfig, SimulatedRuntime};
use berth_agent::{AgentOptions, NodeConfig, NodeHandle, Nodes};
use berth_bench::{child_cpu, process_cpu, Endpoint, TestServer};
use berth_orchestrator::store::sqlite::SqliteStore;
use berth_orchestrator::store::Store;
use bytes::Bytes;
use http_body_util::BodyExt;
use k8s_openapi::api::core::v1::Pod;
use tokio_util::sync::CancellationToken;

/// The scheduler measured here runs inside `berth` in production, which uses
/// mimalloc; use the same allocator so its CPU cost is the one users get.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Options {
    nodes: u32,
    pods: usize,
    concurrency: usize,
    berth: Option<PathBuf>,
    in_process: bool,
}

fn options() -> anyhow::Result<Options> {
    let mut opts = Options {
        nodes: 5_000,
        pods: 30_000,
        concurrency: 32,
        berth: None,
        in_process: false,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        if flag == "--in-process" {
            opts.in_process = true;
            continue;
        }
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--nodes" => opts.nodes = value.parse()?,
            "--pods" => opts.pods = value.parse()?,
            "--concurrency" => opts.concurrency = value.parse()?,
            "--berth" => opts.berth = Some(value.into()),
            other => anyhow::bail!(
                "unknown flag {other} (use --nodes, --pods, --concurrency, --berth PATH, --in-process)"
            ),
        }
    }
    anyhow::ensure!(
        opts.nodes > 0 && opts.pods > 0 && opts.concurrency > 0,
        "--nodes, --pods and --concurrency must be positive"
    );
    Ok(opts)
}

/// The pod every creation sends: small requests, so the nodes' capacity
/// (4 CPUs, 110 pods each) never runs out and every pod is placeable.
fn pod(index: usize) -> Pod {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": format!("bench-{index}"), "namespace": "default", "labels": {"bench": "scheduler"}},
        "spec": {"containers": [{
            "name": "main", "image": "registry.k8s.io/pause:3.10",
            "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
        }]},
    }))
    .expect("the bench pod is a valid Pod")
}

/// The same pod as the JSON body of a create, built as text so that making
/// load costs far less than serving it.
fn pod_body(index: usize) -> Bytes {
    Bytes::from(format!(
        r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"bench-{index}","namespace":"default","labels":{{"bench":"scheduler"}}}},"spec":{{"containers":[{{"name":"main","image":"registry.k8s.io/pause:3.10","resources":{{"requests":{{"cpu":"10m","memory":"16Mi"}}}}}}]}}}}"#
    ))
}

/// Creates bench pods 0..total over `concurrency` keep-alive connections.
async fn create_pods(endpoint: &Endpoint, total: usize, concurrency: usize) -> anyhow::Result<()> {
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let mut conn = endpoint.connect().await?;
        let next = Arc::clone(&next);
        workers.spawn(async move {
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                if index >= total {
                    return Ok::<_, anyhow::Error>(());
                }
                let body = Some((pod_body(index), "application/json"));
                let response = conn
                    .send(
                        http::Method::POST,
                        "/api/v1/namespaces/default/pods",
                        "application/json",
                        body,
                    )
                    .await?;
                let status = response.status();
                let answer = response.into_body().collect().await?.to_bytes();
                anyhow::ensure!(
                    status == http::StatusCode::CREATED,
                    "creating bench-{index}: {status}: {}",
                    String::from_utf8_lossy(&answer)
                );
            }
        });
    }
    while let Some(result) = workers.join_next().await {
        result??;
    }
    Ok(())
}

/// The parts of a watch event the observer reads; serde skips the rest.
#[derive(serde::Deserialize)]
struct WatchedPod {
    object: WatchedObject,
}

#[derive(serde::Deserialize)]
struct WatchedObject {
    metadata: WatchedMeta,
    #[serde(default)]
    spec: WatchedSpec,
}

#[derive(serde::Deserialize)]
struct WatchedMeta {
    name: String,
}

#[derive(serde::Deserialize, Default)]
struct WatchedSpec {
    #[serde(rename = "nodeName", default)]
    node_name: Option<String>,
}

/// Opens a watch on the bench pods; returns once the server has answered,
/// so every later creation is seen.
async fn watch_bench_pods(endpoint: &Endpoint) -> anyhow::Result<hyper::body::Incoming> {
    let mut conn = endpoint.connect().await?;
    let response = conn
        .send(
            http::Method::GET,
            "/api/v1/namespaces/default/pods?watch=true&labelSelector=bench%3Dscheduler",
            "application/json",
            None,
        )
        .await?;
    anyhow::ensure!(
        response.status().is_success(),
        "watch: {}",
        response.status()
    );
    Ok(response.into_body())
}

/// Reads the watch until `total` distinct pods were seen with a node name.
async fn wait_until_bound(
    mut body: hyper::body::Incoming,
    total: usize,
) -> anyhow::Result<Instant> {
    let mut bound = HashSet::with_capacity(total);
    let mut buffer: Vec<u8> = Vec::new();
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame?.into_data() else {
            continue;
        };
        buffer.extend_from_slice(&data);
        let mut start = 0;
        while let Some(end) = buffer[start..].iter().position(|b| *b == b'\n') {
            let line = &buffer[start..start + end];
            start += end + 1;
            let event: WatchedPod = serde_json::from_slice(line)?;
            if event.object.spec.node_name.is_some_and(|n| !n.is_empty()) {
                bound.insert(event.object.metadata.name);
                if bound.len() == total {
                    return Ok(Instant::now());
                }
            }
        }
        buffer.drain(..start);
    }
    anyhow::bail!("the pod watch ended after {} bound pods", bound.len())
}

/// The floor: the same pod objects written straight into a fresh SQLite
/// store at the same concurrency. Returns writes per second.
async fn store_floor(path: &Path, total: usize, concurrency: usize) -> anyhow::Result<f64> {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(path)?);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..concurrency {
        let store = Arc::clone(&store);
        tasks.spawn(async move {
            let mut index = worker;
            while index < total {
                let key = format!("/registry/pods/default/bench-{index}");
                store.create(&key, serde_json::to_vec(&pod(index))?).await?;
                index += concurrency;
            }
            Ok::<_, anyhow::Error>(())
        });
    }
    while let Some(result) = tasks.join_next().await {
        result??;
    }
    Ok(total as f64 / started.elapsed().as_secs_f64())
}

/// Peak resident memory (VmHWM) of `pid` (or this process), in MiB.
fn peak_rss_mib(pid: Option<u32>) -> f64 {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/status"),
        None => "/proc/self/status".to_owned(),
    };
    let status = std::fs::read_to_string(path).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

/// The API server under test: a child `berth server` or one in this process.
enum Server {
    Child {
        child: Child,
        _dir: tempfile::TempDir,
    },
    InProcess(TestServer),
}

impl Server {
    /// Starts `berth server` on a fresh data directory and a free port, and
    /// waits until it listens and has written its admin kubeconfig.
    fn spawn(berth: &Path) -> anyhow::Result<(Self, PathBuf)> {
        let dir = tempfile::tempdir()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let mut child = Command::new(berth)
            .arg("server")
            .arg("--data-dir")
            .arg(dir.path())
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--disable", "scheduler,controllers"])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("server.log"))?)
            .spawn()
            .with_context(|| format!("starting {}", berth.display()))?;
        let kubeconfig = dir.path().join("admin.kubeconfig");
        let deadline = Instant::now() + Duration::from_secs(30);
        while !(kubeconfig.exists() && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()) {
            if let Some(status) = child.try_wait()? {
                anyhow::bail!("berth server exited early ({status})");
            }
            anyhow::ensure!(Instant::now() < deadline, "berth server not ready in 30s");
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok((Server::Child { child, _dir: dir }, kubeconfig))
    }

    fn pid(&self) -> Option<u32> {
        match self {
            Server::Child { child, .. } => Some(child.id()),
            Server::InProcess(_) => None,
        }
    }

    async fn stop(self) -> anyhow::Result<()> {
        match self {
            Server::Child { mut child, .. } => {
                child.kill()?;
                child.wait()?;
                Ok(())
            }
            Server::InProcess(server) => server.stop().await,
        }
    }
}

/// The `berth` binary to run the server with: `--berth`, else beside this one.
fn berth_binary(opts: &Options) -> Option<PathBuf> {
    if opts.in_process {
        return None;
    }
    opts.berth.clone().or_else(|| {
        let sibling = std::env::current_exe().ok()?.with_file_name("berth");
        sibling.exists().then_some(sibling)
    })
}

/// Registers `count` simulated nodes (Ready, default capacity) through the
/// agent library, without starting their heartbeat, status or pod loops.
async fn register_nodes(client: &kube::Client, count: u32) -> anyhow::Result<()> {
    let mut handles = Vec::with_capacity(count as usize);
    for slot in 0..count {
        let runtime = SimulatedRuntime::new(SimulatedConfig {
            fallback_pod_cidr: berth_agent::config::fallback_pod_cidr(slot),
            ..SimulatedConfig::default()
        })?;
        handles.push(NodeHandle::new(
            NodeConfig::new(format!("sim-{slot}"), slot),
            Arc::new(runtime),
        ));
    }
    let nodes = Nodes::new(handles)?;
    let options = AgentOptions::default();
    berth_agent::node::register_all(client, &nodes, &options, &CancellationToken::new()).await;
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let opts = options()?;
    let dir = tempfile::tempdir()?;
    println!(
        "berth scheduler benchmark: {} nodes, {} pods, {} creations in flight",
        opts.nodes, opts.pods, opts.concurrency
    );

    // Floor first, on its own file, so the server's run cannot disturb it.
    let floor = store_floor(&dir.path().join("floor.db"), opts.pods, opts.concurrency).await?;
    println!(
        "store floor: {floor:.0} pod writes/s (SqliteStore::create, same pods, same concurrency)"
    );

    let (server, client, endpoint) = match berth_binary(&opts) {
        Some(berth) => {
            let (server, kubeconfig) = Server::spawn(&berth)?;
            let client = berth_agent::client::from_kubeconfig_file(&kubeconfig, None).await?;
            let endpoint = Endpoint::from_kubeconfig(&kubeconfig)?;
            println!(
                "server: child {} (pid {})",
                berth.display(),
                server.pid().unwrap_or(0)
            );
            (server, client, endpoint)
        }
        None => {
            let server = TestServer::start().await?;
            let client =
                berth_orchestrator::controllers::client::from_kubeconfig_yaml(&server.kubeconfig)
                    .await?;
            let endpoint = server.endpoint.clone();
            println!("server: in this process (its peak memory includes the client side)");
            (Server::InProcess(server), client, endpoint)
        }
    };

    let t = Instant::now();
    register_nodes(&client, opts.nodes).await?;
    println!(
        "{} nodes registered in {:.1}s",
        opts.nodes,
        t.elapsed().as_secs_f64()
    );

    let cancel = CancellationToken::new();
    let scheduler = tokio::spawn(berth_orchestrator::scheduler::run(
        client.clone(),
        "scheduler-bench".to_owned(),
        cancel.clone(),
    ));
    // Let it take the Lease and list the nodes, so startup is not measured.
    tokio::time::sleep(Duration::from_secs(3)).await;

    // Count bound pods from a watch started before the first creation.
    let total = opts.pods;
    let watch = watch_bench_pods(&endpoint).await?;
    let bound = tokio::spawn(wait_until_bound(watch, total));

    let cpu_before = (server.pid().map(child_cpu), process_cpu());
    let started = Instant::now();
    create_pods(&endpoint, total, opts.concurrency)
        .await
        .context("creating pods")?;
    let created = started.elapsed();
    let done = tokio::time::timeout(Duration::from_secs(600), bound)
        .await
        .context("not every pod was bound within 10 minutes")???;
    let elapsed = done - started;
    let peak = peak_rss_mib(server.pid());
    let server_cpu = server
        .pid()
        .map(child_cpu)
        .zip(cpu_before.0)
        .map(|(after, before)| after - before);
    let client_cpu = process_cpu() - cpu_before.1;
    let scope = match server.pid() {
        Some(_) => "berth server process",
        None => "this process: server + nodes + scheduler + watch",
    };

    cancel.cancel();
    scheduler.await??;
    server.stop().await?;

    let rate = total as f64 / elapsed.as_secs_f64();
    println!();
    println!(
        "created {total} pods in {:.1}s ({:.0}/s)",
        created.as_secs_f64(),
        total as f64 / created.as_secs_f64()
    );
    println!(
        "scheduled {total} pods in {:.1}s: {rate:.0} pods/s (first creation to last bound)",
        elapsed.as_secs_f64()
    );
    println!(
        "store floor: {floor:.0} writes/s; ratio scheduled/floor: {:.2}x",
        rate / floor
    );
    let per_pod = |cpu: Duration| cpu.as_secs_f64() * 1e6 / total as f64;
    match server_cpu {
        Some(server_cpu) => println!(
            "CPU per pod: server {:.0} µs, bench process (clients, scheduler, watch) {:.0} µs",
            per_pod(server_cpu),
            per_pod(client_cpu)
        ),
        None => println!(
            "CPU per pod (server and clients): {:.0} µs",
            per_pod(client_cpu)
        ),
    }
    println!("peak server memory (VmHWM, {scope}): {peak:.0} MiB");
    let verdict = |ok: bool| if ok { "ok" } else { "MISSED" };
    println!(
        "target >= 2000 pods/s: {rate:.0} {}",
        verdict(rate >= 2000.0)
    );
    println!(
        "target server memory <= 1024 MiB: {peak:.0} {}",
        verdict(peak <= 1024.0)
    );
    Ok(())
}
