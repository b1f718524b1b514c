//! Ingress data-path benchmark: a `berth server` and a simulated node agent
//! (`berth agent --runtime simulated --ingress-http-port P`, so the proxy
//! is the agent's real code path) as child processes, an HTTP backend in
//! this process on loopback registered as the only endpoint of a Service
//! through a manual EndpointSlice, and an Ingress routing a host to it.
//! The same closed loop of keep-alive clients then loads the backend
//! directly (the floor) and through the node's ingress proxy, and prints
//! requests per second and latency percentiles for both, with the ratio.
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

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let berth = berth_binary(args.berth.clone())?;
    let dir = tempfile::tempdir()?;
    let (_server, kubeconfig) = start_server(&berth, dir.path())?;
    let ingress_port = free_port()?;
    let _agent = Process(
        Command::new(&berth)
            .args(["agent", "--runtime", "simulated", "--name", NODE])
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(["--ingress-http-port", &ingress_port.to_string()])
            .args(["--ingress-https-port", "0"])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("agent.log"))?)
            .spawn()?,
    );
    let client = berth_agent::client::from_kubeconfig_file(&kubeconfig, None).await?;
    let cancel = CancellationToken::new();
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let backend_address = listener.local_addr()?;
    let serving = tokio::spawn(backend(
        listener,
        Bytes::from(vec![b'x'; args.body_bytes]),
        cancel.clone(),
    ));

    let classes: Api<IngressClass> = Api::all(client.clone());
    wait_for(
        "the default IngressClass",
        Duration::from_secs(30),
        async || Ok(classes.get_opt("berth").await?.is_some()),
    )
    .await?;
    objects(&client, backend_address).await?;
    let ingresses: Api<Ingress> = Api::namespaced(client.clone(), NAMESPACE);
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
    let proxy: SocketAddr = format!("{node_ip}:{ingress_port}").parse()?;
    println!("ingress status.loadBalancer: {node_ip}; proxy {proxy}, backend {backend_address}");
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
    println!(
        "{} connections, {} s per phase, {} B bodies:",
        args.connections, args.seconds, args.body_bytes
    );
    direct.print("direct");
    through.print("ingress");
    println!(
        "ratio {:.2}x requests/s (target >= 0.8x); p99 {:.2}x",
        through.rps() / direct.rps().max(1e-9),
        through.percentile(0.99).as_secs_f64() / direct.percentile(0.99).as_secs_f64().max(1e-9)
    );
    cancel.cancel();
    serving.await?;
    Ok(())
}
