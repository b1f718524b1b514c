//! What observability costs the API: the same paced creates and updates on
//! a server that records no metrics and makes no spans, on one that records
//! its metrics only, and on one that also exports a span per request over
//! OTLP/HTTP to a receiver in this process. The three take turns for
//! several rounds, each on a fresh server, so a disturbance of the machine
//! lands on one round rather than on one configuration; the medians of
//! their p99s are compared with the first's (target ≤ 1.05× with both on).
//! The span exporter is installed once and paused while the others run.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use berth_bench::TestServer;
use berth_observability::metrics::MetricsRegistry;
use berth_observability::propagation;
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

/// The three servers, in the order of each round: the label, whether it
/// records metrics, whether it makes spans.
const CONFIGURATIONS: [(&str, bool, bool); 3] = [
    ("off", false, false),
    ("metrics only", true, false),
    ("metrics+tracing", true, true),
];

/// Measures and prints the overhead: `rounds` turns of the three servers,
/// `total` operations per phase, one every `interval`, over `concurrency`
/// connections.
pub async fn measure(
    total: usize,
    interval: Duration,
    concurrency: usize,
    rounds: usize,
) -> anyhow::Result<()> {
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
        propagation::enabled(),
        "the span exporter could not be installed"
    );
    let mut p99s: Vec<Vec<f64>> = vec![Vec::new(); CONFIGURATIONS.len()];
    println!();
    for round in 1..=rounds.max(1) {
        for (i, (label, metrics, tracing)) in CONFIGURATIONS.into_iter().enumerate() {
            propagation::pause(!tracing);
            let registry = if metrics {
                MetricsRegistry::default()
            } else {
                MetricsRegistry::not_recording()
            };
            let label = format!("{label} #{round}");
            let run = run(registry, &label, total, interval, concurrency).await?;
            run.create.print();
            run.update.print();
            p99s[i].push(run.mutating_p99());
        }
    }
    propagation::pause(false);
    telemetry.shutdown().await;
    let (exports, bytes) = receiver.stop();
    println!("OTLP receiver: {exports} export requests, {bytes} bytes of spans");
    anyhow::ensure!(exports > 0, "no spans reached the OTLP receiver");
    let medians: Vec<f64> = p99s.iter_mut().map(|p| median(p)).collect();
    let floor = medians[0].max(0.001);
    for ((label, ..), (p99s, median)) in CONFIGURATIONS.iter().zip(p99s.iter().zip(&medians)) {
        let each: Vec<String> = p99s.iter().map(|p| format!("{p:.2}")).collect();
        println!(
            "mutating p99 {label:<16} median {median:.2}ms ({} ms) = {:.2}x off",
            each.join(", "),
            median / floor
        );
    }
    let ratio = medians[2] / floor;
    let verdict = if ratio <= TARGET { "ok" } else { "MISSED" };
    println!("target median mutating p99 with metrics and tracing <= {TARGET}x off: {ratio:.2}x {verdict}");
    Ok(())
}

/// The middle value (the upper one of an even count).
fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or_default()
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
