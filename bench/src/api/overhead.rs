//! What observability costs the API: the same paced creates and updates on
//! a server that records no metrics and makes no spans, on one that records
//! its metrics only, and on one that also exports a span per request over
//! OTLP/HTTP to a receiver in this process; the ratios of their p99s to the
//! first (target ≤ 1.05× with both on).
//! The server without them runs first: the span exporter, once installed
//! for the process, cannot be taken away again.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use berth_bench::TestServer;
use berth_observability::metrics::MetricsRegistry;
use berth_observability::TelemetryArgs;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::custom::Target;
use super::phases::{ms, run_api_phase, Op, Stats};

/// The p99 overhead the issue allows.
const TARGET: f64 = 1.05;

/// The paced create and update phases against one server.
struct Run {
    create: Stats,
    update: Stats,
}

impl Run {
    fn mutating_p99(&self) -> f64 {
        ms(self.create.percentile(0.99)).max(ms(self.update.percentile(0.99)))
    }
}

/// Measures and prints the overhead; `total` operations per phase, one
/// every `interval`, over `concurrency` connections.
pub async fn measure(total: usize, interval: Duration, concurrency: usize) -> anyhow::Result<()> {
    let off = run(
        MetricsRegistry::not_recording(),
        "off",
        total,
        interval,
        concurrency,
    )
    .await?;
    let metrics = run(
        MetricsRegistry::default(),
        "metrics only",
        total,
        interval,
        concurrency,
    )
    .await?;

    let receiver = Receiver::start().await?;
    let telemetry = berth_observability::init(
        "api-bench",
        "warn",
        &TelemetryArgs {
            otlp_endpoint: Some(format!("http://{}", receiver.address)),
            ..TelemetryArgs::default()
        },
    );
    anyhow::ensure!(
        berth_observability::propagation::enabled(),
        "the span exporter could not be installed"
    );
    let on = run(
        MetricsRegistry::default(),
        "metrics+tracing",
        total,
        interval,
        concurrency,
    )
    .await?;
    telemetry.shutdown().await;
    let (exports, bytes) = receiver.stop();

    println!();
    for run in [&off, &metrics, &on] {
        run.create.print();
        run.update.print();
    }
    println!("OTLP receiver: {exports} export requests, {bytes} bytes of spans");
    anyhow::ensure!(exports > 0, "no spans reached the OTLP receiver");
    println!(
        "ratio mutating p99 metrics only / off: {:.2}ms / {:.2}ms = {:.2}x",
        metrics.mutating_p99(),
        off.mutating_p99(),
        metrics.mutating_p99() / off.mutating_p99().max(0.001),
    );
    let ratio = on.mutating_p99() / off.mutating_p99().max(0.001);
    let verdict = if ratio <= TARGET { "ok" } else { "MISSED" };
    println!(
        "target mutating p99 with metrics and tracing on <= {TARGET}x off: {:.2}ms / {:.2}ms = {ratio:.2}x {verdict}",
        on.mutating_p99(),
        off.mutating_p99(),
    );
    Ok(())
}

/// The paced creates then updates of ConfigMaps against a fresh server
/// serving `metrics`.
async fn run(
    metrics: MetricsRegistry,
    label: &str,
    total: usize,
    interval: Duration,
    concurrency: usize,
) -> anyhow::Result<Run> {
    let server = TestServer::start_with(metrics).await?;
    let mut connections = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        connections.push(server.connect().await?);
    }
    let target = Target::Builtin;
    let create = run_api_phase(
        &format!("observability {label}: create (paced)"),
        (target, Op::Create),
        &mut connections,
        total,
        Some(interval),
    )
    .await?;
    let update = run_api_phase(
        &format!("observability {label}: update (paced)"),
        (target, Op::Update),
        &mut connections,
        total,
        Some(interval),
    )
    .await?;
    drop(connections);
    server.stop().await?;
    Ok(Run { create, update })
}

/// An OTLP/HTTP receiver on loopback that answers every export with an
/// empty `ExportTraceServiceResponse` and counts what it got.
struct Receiver {
    address: SocketAddr,
    exports: Arc<AtomicU64>,
    bytes: Arc<AtomicU64>,
    cancel: CancellationToken,
}

impl Receiver {
    async fn start() -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let receiver = Self {
            address: listener.local_addr()?,
            exports: Arc::default(),
            bytes: Arc::default(),
            cancel: CancellationToken::new(),
        };
        let (exports, bytes, cancel) = (
            Arc::clone(&receiver.exports),
            Arc::clone(&receiver.bytes),
            receiver.cancel.clone(),
        );
        tokio::spawn(async move {
            loop {
                let tcp = tokio::select! {
                    _ = cancel.cancelled() => return,
                    accepted = listener.accept() => match accepted {
                        Ok((tcp, _)) => tcp,
                        Err(_) => continue,
                    },
                };
                let (exports, bytes) = (Arc::clone(&exports), Arc::clone(&bytes));
                let service = hyper::service::service_fn(
                    move |request: http::Request<hyper::body::Incoming>| {
                        let (exports, bytes) = (Arc::clone(&exports), Arc::clone(&bytes));
                        async move {
                            let body = request.into_body().collect().await?.to_bytes();
                            exports.fetch_add(1, Ordering::Relaxed);
                            bytes.fetch_add(body.len() as u64, Ordering::Relaxed);
                            let mut response = http::Response::new(Full::new(Bytes::new()));
                            response.headers_mut().insert(
                                http::header::CONTENT_TYPE,
                                http::HeaderValue::from_static("application/x-protobuf"),
                            );
                            Ok::<_, hyper::Error>(response)
                        }
                    },
                );
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tcp), service),
                );
            }
        });
        Ok(receiver)
    }

    /// Stops accepting; the exports and bytes received.
    fn stop(self) -> (u64, u64) {
        self.cancel.cancel();
        (
            self.exports.load(Ordering::Relaxed),
            self.bytes.load(Ordering::Relaxed),
        )
    }
}
