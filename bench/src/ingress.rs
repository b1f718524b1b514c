//! Ingress data-path benchmark: a `berth server` and a simulated node agent
//! (`berth agent --runtime simulated --ingress-http-port P`, so the proxy
//! is the agent's real code path) as child processes, an HTTP backend in
//! this process on loopback registered as the only endpoint of a Service
//! through a manual EndpointSlice, and an Ingress routing a host to it.
//! The same closed loop of keep-alive clients then loads the backend
//! directly (the floor) and through the node's ingress proxy, and prints
//! requests per second and latency percentiles for both, with the ratio.
//!
//! It does so in two views. `pinned`: the clients and the backend on one
//! half of the CPUs, the agent on the other, the same in the direct run, as
//! in production the ingress proxy runs on its own node's CPU rather than
//! on the client's and the backend's. `shared`: every process on every CPU,
//! so a proxied request is also charged the proxy's work. The target is
//! judged on the pinned view; the shared one is printed beside it.
//!
//! `cargo build --release -p berth -p berth-bench && target/release/ingress-bench [--connections 32 --seconds 5]`
//!
//! Target: ≥ 0.8× the direct requests per second.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use berth_bench::process::{berth_binary, start_server, Process};
use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Empty, Full};
use hyper_util::rt::TokioIo;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use kube::api::{Api, PostParams};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Requests per second and p99 through the ingress proxy beside the same load straight to the backend.
#[derive(Parser, Debug)]
#[command(name = "ingress-bench")]
struct Args {
    /// Concurrent keep-alive connections (one request in flight each).
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// How long each phase runs, in seconds.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Bytes in each response body.
    #[arg(long, default_value_t = 256)]
    body_bytes: usize,
    /// The berth binary (default: beside this one).
    #[arg(long)]
    berth: Option<PathBuf>,
}

const NAMESPACE: &str = "ing-bench";
const HOST: &str = "bench.ing.test";
const NODE: &str = "ing-bench-0";

/// A free loopback port (taken briefly and released).
fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// The backend: HTTP/1.1 keep-alive answering every request with `body`.
async fn backend(listener: TcpListener, body: Bytes, cancel: CancellationToken) {
    let mut connections = JoinSet::new();
    loop {
        let tcp = tokio::select! {
            _ = cancel.cancelled() => break,
            accepted = listener.accept() => match accepted { Ok((tcp, _)) => tcp, Err(_) => continue },
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
        };
        let _ = tcp.set_nodelay(true);
        let body = body.clone();
        connections.spawn(async move {
            let service = hyper::service::service_fn(move |_request| {
                let body = body.clone();
                async move { Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(body))) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tcp), service)
                .await;
        });
    }
    connections.shutdown().await;
}

/// What one phase measured.
struct Measured {
    requests: usize,
    errors: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Measured {
    fn rps(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    fn percentile(&self, p: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let i = ((self.latencies.len() as f64 * p).ceil() as usize).clamp(1, self.latencies.len());
        self.latencies[i - 1]
    }

    fn print(&self, what: &str) {
        println!(
            "{what:>8}: {:>9.0} req/s  p50 {:>7.3} ms  p99 {:>7.3} ms  ({} requests, {} errors)",
            self.rps(),
            self.percentile(0.50).as_secs_f64() * 1e3,
            self.percentile(0.99).as_secs_f64() * 1e3,
            self.requests,
            self.errors
        );
    }
}

/// One keep-alive connection sending `GET /` with `Host: HOST` until `until`.
async fn client(address: SocketAddr, until: Instant) -> anyhow::Result<(Vec<Duration>, usize)> {
    let tcp = TcpStream::connect(address).await?;
    tcp.set_nodelay(true)?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(TokioIo::new(tcp)).await?;
    let driver = tokio::spawn(connection);
    let mut latencies = Vec::new();
    let mut errors = 0;
    while Instant::now() < until {
        let request = hyper::Request::get("/")
            .header("host", HOST)
            .body(Empty::new())?;
        let start = Instant::now();
        let response = sender.send_request(request).await?;
        let ok = response.status().is_success();
        response.into_body().collect().await?;
        if ok {
            latencies.push(start.elapsed());
        } else {
            errors += 1;
        }
    }
    drop(sender);
    let _ = driver.await;
    Ok((latencies, errors))
}

/// `connections` clients against `address` for `seconds`.
async fn load(address: SocketAddr, connections: usize, seconds: u64) -> anyhow::Result<Measured> {
    let start = Instant::now();
    let until = start + Duration::from_secs(seconds);
    let mut clients = JoinSet::new();
    for _ in 0..connections {
        clients.spawn(client(address, until));
    }
    let mut measured = Measured {
        requests: 0,
        errors: 0,
        elapsed: Duration::ZERO,
        latencies: Vec::new(),
    };
    while let Some(done) = clients.join_next().await {
        let (latencies, errors) = done??;
        measured.requests += latencies.len();
        measured.errors += errors;
        measured.latencies.extend(latencies);
    }
    measured.elapsed = start.elapsed();
    measured.latencies.sort();
    Ok(measured)
}

/// Polls `check` every 100 ms until it is true or `timeout` passes.
async fn wait_for(
    what: &str,
    timeout: Duration,
    mut check: impl AsyncFnMut() -> anyhow::Result<bool>,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if check().await.unwrap_or(false) {
            return Ok(());
        }
        anyhow::ensure!(Instant::now() < deadline, "{what}: not within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Creates `value` through `api`.
async fn create<K>(api: Api<K>, value: serde_json::Value) -> anyhow::Result<()>
where
    K: kube::Resource + Clone + std::fmt::Debug + serde::Serialize + serde::de::DeserializeOwned,
{
    api.create(&PostParams::default(), &serde_json::from_value(value)?)
        .await?;
    Ok(())
}

/// The Service, its manual EndpointSlice naming `backend`, and the Ingress.
async fn objects(client: &kube::Client, backend: SocketAddr) -> anyhow::Result<()> {
    use k8s_openapi::api::core::v1::{Namespace, Service};
    use k8s_openapi::api::discovery::v1::EndpointSlice;
    use serde_json::json;
    create(
        Api::<Namespace>::all(client.clone()),
        json!({"metadata": {"name": NAMESPACE}}),
    )
    .await?;
    create(
        Api::<Service>::namespaced(client.clone(), NAMESPACE),
        json!({
        "metadata": {"name": "backend", "namespace": NAMESPACE},
        "spec": {"ports": [{"name": "http", "port": 80, "targetPort": backend.port()}]}}),
    )
    .await?;
    create(
        Api::<EndpointSlice>::namespaced(client.clone(), NAMESPACE),
        json!({
        "metadata": {"name": "backend-manual", "namespace": NAMESPACE, "labels": {
            "kubernetes.io/service-name": "backend",
            "endpointslice.kubernetes.io/managed-by": "ingress-bench"}},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": backend.port(), "protocol": "TCP"}],
        "endpoints": [{"addresses": [backend.ip().to_string()], "conditions": {"ready": true}}]}),
    )
    .await?;
    // No class: the default IngressClass `berth` picks it up.
    create(
        Api::<Ingress>::namespaced(client.clone(), NAMESPACE),
        json!({
        "metadata": {"name": "bench", "namespace": NAMESPACE},
        "spec": {"rules": [{"host": HOST, "http": {"paths": [{"path": "/", "pathType": "Prefix",
            "backend": {"service": {"name": "backend", "port": {"name": "http"}}}}]}}]}}),
    )
    .await
}

/// The status of one `GET /` with `Host: HOST` to `address`.
async fn probe(address: SocketAddr) -> anyhow::Result<u16> {
    let tcp = TcpStream::connect(address).await?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(TokioIo::new(tcp)).await?;
    let driver = tokio::spawn(connection);
    let request = hyper::Request::get("/")
        .header("host", HOST)
        .body(Empty::new())?;
    let status = sender.send_request(request).await?.status().as_u16();
    drop(sender);
    let _ = driver.await;
    Ok(status)
}

/// Where each process runs during one view of the measurement.
#[derive(Debug, Clone)]
struct View {
    /// `pinned` or `shared`.
    name: &'static str,
    /// The CPUs of the bench's clients and backend; `None`: every CPU.
    clients: Option<Vec<usize>>,
    /// The CPUs of the agent (its proxy); `None`: every CPU.
    proxy: Option<Vec<usize>>,
}

/// The views measured: with two CPUs or more, `pinned` (clients and
/// backend on the first half of the allowed CPUs, the proxy on the rest, as
/// an ingress node has its own CPU in production) and `shared` (everything
/// on every CPU, as before); with one CPU only `shared`.
fn views(allowed: &[usize]) -> Vec<View> {
    let mut views = Vec::new();
    if allowed.len() >= 2 {
        let (clients, proxy) = allowed.split_at(allowed.len().div_ceil(2));
        views.push(View {
            name: "pinned",
            clients: Some(clients.to_vec()),
            proxy: Some(proxy.to_vec()),
        });
    }
    views.push(View {
        name: "shared",
        clients: None,
        proxy: None,
    });
    views
}

/// `0-1`, `0,2`, or `all` for a CPU list.
fn cpu_list(cpus: Option<&[usize]>) -> String {
    match cpus {
        None => "all".to_owned(),
        Some(cpus) => cpus
            .iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join(","),
    }
}

/// The CPUs this thread may run on.
fn allowed_cpus() -> anyhow::Result<Vec<usize>> {
    // SAFETY: a zeroed cpu_set_t is an empty set; the kernel fills it.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid cpu_set_t of the size passed.
    let rc = unsafe { libc::sched_getaffinity(0, std::mem::size_of_val(&set), &mut set) };
    anyhow::ensure!(
        rc == 0,
        "sched_getaffinity: {}",
        std::io::Error::last_os_error()
    );
    Ok((0..libc::CPU_SETSIZE as usize)
        // SAFETY: `i` is below CPU_SETSIZE.
        .filter(|&i| unsafe { libc::CPU_ISSET(i, &set) })
        .collect())
}

/// Restricts the calling thread (and what it spawns later) to `cpus`.
fn pin_current_thread(cpus: &[usize]) -> std::io::Result<()> {
    // SAFETY: a zeroed cpu_set_t is an empty set; CPU_SET stays within it
    // for indices below CPU_SETSIZE, which the kernel reported.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for &cpu in cpus {
        unsafe { libc::CPU_SET(cpu, &mut set) };
    }
    // SAFETY: `set` is a valid cpu_set_t of the size passed.
    if unsafe { libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// The node agent with its proxy on `port`, on `cpus` (all when `None`):
/// pinned before it execs, so its runtime sizes itself to them.
fn start_agent(
    berth: &std::path::Path,
    kubeconfig: &std::path::Path,
    port: u16,
    cpus: Option<Vec<usize>>,
    log: std::fs::File,
) -> anyhow::Result<Process> {
    use std::os::unix::process::CommandExt;
    let mut command = Command::new(berth);
    command
        .args(["agent", "--runtime", "simulated", "--name", NODE])
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["--ingress-http-port", &port.to_string()])
        .args(["--ingress-https-port", "0"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(log);
    if let Some(cpus) = cpus {
        // SAFETY: the closure only makes the sched_setaffinity system call.
        unsafe { command.pre_exec(move || pin_current_thread(&cpus)) };
    }
    Ok(Process(command.spawn()?))
}

/// What one view measured: straight to the backend and through the proxy.
struct Measurement {
    view: View,
    direct: Measured,
    through: Measured,
}

impl Measurement {
    fn ratio(&self) -> f64 {
        self.through.rps() / self.direct.rps().max(1e-9)
    }

    fn print(&self) {
        println!(
            "{}: clients + backend on CPUs {}, proxy on CPUs {}",
            self.view.name,
            cpu_list(self.view.clients.as_deref()),
            cpu_list(self.view.proxy.as_deref())
        );
        self.direct.print("direct");
        self.through.print("ingress");
        println!(
            "  ratio {:.2}x requests/s; p99 {:.2}x",
            self.ratio(),
            self.through.percentile(0.99).as_secs_f64()
                / self.direct.percentile(0.99).as_secs_f64().max(1e-9)
        );
    }
}

/// What every view shares: the flags, the set-up runtime, the cluster and
/// the backend's socket.
struct Bench<'a> {
    args: &'a Args,
    setup: &'a tokio::runtime::Runtime,
    berth: &'a std::path::Path,
    dir: &'a std::path::Path,
    kubeconfig: &'a std::path::Path,
    backend_listener: &'a std::net::TcpListener,
    allowed: &'a [usize],
}

/// One view: the backend and clients on a runtime of the view's CPUs, a
/// fresh agent on its CPUs; warm both paths, then measure both.
fn measure(bench: &Bench<'_>, view: View) -> anyhow::Result<Measurement> {
    let Bench {
        args,
        setup,
        berth,
        dir,
        kubeconfig,
        backend_listener,
        allowed,
    } = *bench;
    let port = free_port()?;
    let log = std::fs::File::create(dir.join(format!("agent-{}.log", view.name)))?;
    let agent = start_agent(berth, kubeconfig, port, view.proxy.clone(), log)?;
    let node_ip = setup.block_on(async {
        let client = berth_agent::client::from_kubeconfig_file(kubeconfig, None).await?;
        let ingresses: Api<Ingress> = Api::namespaced(client, NAMESPACE);
        let mut node_ip = String::new();
        wait_for(
            "the Ingress's status.loadBalancer",
            Duration::from_secs(60),
            async || {
                let ingress = ingresses.get("bench").await?;
                let ip = ingress
                    .status
                    .and_then(|s| s.load_balancer?.ingress?.into_iter().next()?.ip);
                node_ip = ip.clone().unwrap_or_default();
                Ok(ip.is_some())
            },
        )
        .await?;
        anyhow::Ok(node_ip)
    })?;
    let proxy: SocketAddr = format!("{node_ip}:{port}").parse()?;
    let backend_address = backend_listener.local_addr()?;
    println!(
        "{}: proxy {proxy} (status.loadBalancer {node_ip}), backend {backend_address}",
        view.name
    );
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    runtime.enable_all();
    if let Some(cpus) = view.clients.clone() {
        pin_current_thread(&cpus)?;
        runtime.worker_threads(cpus.len());
        runtime.on_thread_start(move || {
            let _ = pin_current_thread(&cpus);
        });
    }
    let runtime = runtime.build()?;
    let listener = backend_listener.try_clone()?;
    let measured = runtime.block_on(async {
        let cancel = CancellationToken::new();
        let serving = tokio::spawn(backend(
            TcpListener::from_std(listener)?,
            Bytes::from(vec![b'x'; args.body_bytes]),
            cancel.clone(),
        ));
        let measured = async {
            wait_for(
                "the proxy routing the host",
                Duration::from_secs(30),
                async || Ok(probe(proxy).await? == 200),
            )
            .await?;
            // Warm both paths (connection pools, caches), then measure.
            load(backend_address, args.connections, 1).await?;
            load(proxy, args.connections, 1).await?;
            let direct = load(backend_address, args.connections, args.seconds).await?;
            let through = load(proxy, args.connections, args.seconds).await?;
            anyhow::Ok((direct, through))
        }
        .await;
        cancel.cancel();
        serving.await?;
        measured
    });
    drop(runtime);
    pin_current_thread(allowed)?;
    drop(agent);
    let (direct, through) = measured?;
    Ok(Measurement {
        view,
        direct,
        through,
    })
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let allowed = allowed_cpus()?;
    let berth = berth_binary(args.berth.clone())?;
    let dir = tempfile::tempdir()?;
    let (_server, kubeconfig) = start_server(&berth, dir.path())?;
    let setup = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let backend_listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    backend_listener.set_nonblocking(true)?;
    let backend_address = backend_listener.local_addr()?;
    setup.block_on(async {
        let client = berth_agent::client::from_kubeconfig_file(&kubeconfig, None).await?;
        let classes: Api<IngressClass> = Api::all(client.clone());
        wait_for(
            "the default IngressClass",
            Duration::from_secs(30),
            async || Ok(classes.get_opt("berth").await?.is_some()),
        )
        .await?;
        objects(&client, backend_address).await
    })?;
    let bench = Bench {
        args: &args,
        setup: &setup,
        berth: &berth,
        dir: dir.path(),
        kubeconfig: &kubeconfig,
        backend_listener: &backend_listener,
        allowed: &allowed,
    };
    let mut measurements = Vec::new();
    for view in views(&allowed) {
        measurements.push(measure(&bench, view)?);
    }
    println!(
        "{} connections, {} s per phase, {} B bodies:",
        args.connections, args.seconds, args.body_bytes
    );
    for measurement in &measurements {
        measurement.print();
    }
    let verdict = |m: &Measurement| {
        let ratio = m.ratio();
        let meets = if ratio >= 0.8 { "meets" } else { "misses" };
        format!("{} {ratio:.2}x ({meets} 0.8x)", m.view.name)
    };
    let summary: Vec<String> = measurements.iter().map(verdict).collect();
    println!(
        "target >= 0.8x judged on the pinned view: {}",
        summary.join("; ")
    );
    Ok(())
}
