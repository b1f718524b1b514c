//! Cluster DNS benchmark: the agent's DNS server (in process, over records
//! built from N Services with EndpointSlices, as its watches would fill
//! them) beside a trivial UDP responder on the same host that echoes each
//! datagram — the floor no DNS server can beat. Prints, for both, the most
//! queries per second a closed loop of clients gets answered, and the
//! latency percentiles at a fixed offered rate, with the ratios.
//!
//! `cargo run --release -p berth-bench --bin dns-bench [-- --services 1000 --rate 10000]`
//!
//! Targets: ≥ 0.5× the floor's queries per second, p99 ≤ 1 ms at 10,000 qps.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use berth_agent::network::dns::forward::Forwarder;
use berth_agent::network::dns::handler::Handler;
use berth_agent::network::dns::records::ClusterRecords;
use berth_agent::network::dns::BoundServer;
use clap::Parser;
use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RecordType};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(
    name = "dns-bench",
    about = "cluster DNS queries per second and latency beside a UDP echo floor"
)]
struct Options {
    /// Services (each with one EndpointSlice of 3 endpoints) in the records.
    #[arg(long, default_value_t = 1000)]
    services: usize,
    /// Queries per second offered in the paced phase.
    #[arg(long, default_value_t = 10_000)]
    rate: u64,
    /// How long each phase runs, in seconds.
    #[arg(long, default_value_t = 3)]
    seconds: u64,
    /// Clients (each its own socket, one query in flight) in the closed loop.
    #[arg(long, default_value_t = 16)]
    clients: usize,
}

/// N Services in 10 namespaces, each with a ClusterIP and a slice.
fn objects(count: usize) -> (Vec<Service>, Vec<EndpointSlice>) {
    let mut services = Vec::with_capacity(count);
    let mut slices = Vec::with_capacity(count);
    for i in 0..count {
        let namespace = format!("ns-{}", i % 10);
        let name = format!("svc-{i}");
        services.push(
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": name, "namespace": namespace},
                "spec": {"clusterIP": format!("10.43.{}.{}", i / 250, 1 + i % 250),
                         "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}
            }))
            .expect("a valid Service"),
        );
        let endpoints: Vec<serde_json::Value> = (0..3)
            .map(|e| {
                serde_json::json!({"addresses": [format!("10.42.{}.{}", i / 80, 1 + (i % 80) * 3 + e)],
                                   "conditions": {"ready": true}})
            })
            .collect();
        slices.push(
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": format!("{name}-1"), "namespace": namespace,
                             "labels": {"kubernetes.io/service-name": name}},
                "addressType": "IPv4",
                "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
                "endpoints": endpoints
            }))
            .expect("a valid EndpointSlice"),
        );
    }
    (services, slices)
}

/// Encoded A queries for every Service's name, ids 0, 1, 2, ….
fn queries(count: usize) -> anyhow::Result<Vec<Vec<u8>>> {
    (0..count)
        .map(|i| {
            let name = Name::from_ascii(format!("svc-{i}.ns-{}.svc.cluster.local.", i % 10))?;
            let mut message = Message::new();
            message
                .set_id((i % 65_536) as u16)
                .set_message_type(MessageType::Query)
                .set_op_code(OpCode::Query)
                .set_recursion_desired(true)
                .add_query(Query::query(name, RecordType::A));
            Ok(message.to_vec()?)
        })
        .collect()
}

/// The floor: a UDP socket that sends every datagram straight back.
async fn echo(socket: UdpSocket, cancel: CancellationToken) {
    let mut buffer = vec![0u8; 2048];
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            received = socket.recv_from(&mut buffer) => {
                if let Ok((n, from)) = received {
                    let _ = socket.send_to(&buffer[..n], from).await;
                }
            }
        }
    }
}

/// One client: sends queries round-robin (paced to `interval` when given,
/// on an absolute schedule, so a late answer makes the next query go at
/// once rather than lowering the rate) until `deadline`, one in flight,
/// and returns each answer's latency from its send (tokio's timer ticks in
/// milliseconds, too coarse to measure from the scheduled time).
async fn client(
    target: SocketAddr,
    queries: Arc<Vec<Vec<u8>>>,
    first: usize,
    interval: Option<Duration>,
    deadline: Instant,
) -> anyhow::Result<(Vec<Duration>, usize)> {
    let socket = UdpSocket::bind("127.0.0.1:0").await?;
    socket.connect(target).await?;
    let mut buffer = vec![0u8; 4096];
    let mut latencies = Vec::new();
    let mut lost = 0;
    let mut index = first;
    let start = Instant::now();
    let mut sent = 0u32;
    while Instant::now() < deadline {
        if let Some(interval) = interval {
            let at = start + interval * sent;
            if at > Instant::now() {
                tokio::time::sleep_until(at.into()).await;
            }
        }
        sent += 1;
        let query = &queries[index % queries.len()];
        index += 1;
        let sent_at = Instant::now();
        socket.send(query).await?;
        match tokio::time::timeout(Duration::from_secs(1), socket.recv(&mut buffer)).await {
            Ok(Ok(_)) => latencies.push(sent_at.elapsed()),
            _ => lost += 1,
        }
    }
    Ok((latencies, lost))
}

struct Phase {
    answered: usize,
    lost: usize,
    qps: f64,
    latencies: Vec<Duration>,
}

impl Phase {
    fn percentile(&self, p: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let index = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        self.latencies[index]
    }
}

async fn phase(
    target: SocketAddr,
    queries: &Arc<Vec<Vec<u8>>>,
    clients: usize,
    rate: Option<u64>,
    seconds: u64,
) -> anyhow::Result<Phase> {
    let start = Instant::now();
    let deadline = start + Duration::from_secs(seconds);
    let interval = rate.map(|r| Duration::from_secs_f64(clients as f64 / r as f64));
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..clients {
        tasks.spawn(client(
            target,
            Arc::clone(queries),
            c * 997,
            interval,
            deadline,
        ));
    }
    let mut latencies = Vec::new();
    let mut lost = 0;
    while let Some(done) = tasks.join_next().await {
        let (mut l, n) = done??;
        latencies.append(&mut l);
        lost += n;
    }
    let elapsed = start.elapsed();
    latencies.sort();
    Ok(Phase {
        answered: latencies.len(),
        lost,
        qps: latencies.len() as f64 / elapsed.as_secs_f64(),
        latencies,
    })
}

fn main() -> anyhow::Result<()> {
    let options = Options::parse();
    // The server side gets its own runtime (two threads, like a small
    // node's share); the clients get theirs.
    let server_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let client_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let (services, slices) = objects(options.services);
    let built = Instant::now();
    let records = ClusterRecords::build("cluster.local", 1, &services, &slices);
    let build_time = built.elapsed();
    let (_tx, rx) = tokio::sync::watch::channel(Arc::new(records));
    let cancel = CancellationToken::new();
    let (dns, floor, serving, echoing) = server_runtime.block_on(async {
        let server = BoundServer::bind(
            "127.0.0.1:0".parse()?,
            Handler::new(rx, Forwarder::new(Vec::new())),
        )
        .await?;
        let dns = server.address();
        let floor_socket = UdpSocket::bind("127.0.0.1:0").await?;
        let floor = floor_socket.local_addr()?;
        let serving = tokio::spawn(server.serve(cancel.clone()));
        let echoing = tokio::spawn(echo(floor_socket, cancel.clone()));
        anyhow::Ok((dns, floor, serving, echoing))
    })?;
    let queries = Arc::new(queries(options.services).context("encoding queries")?);

    println!(
        "records for {} Services built in {:.1} ms",
        options.services,
        build_time.as_secs_f64() * 1e3
    );
    let report = |label: &str, dns: &Phase, floor: &Phase| {
        println!(
            "{label}: cluster DNS {:.0} qps (p50 {:.3} ms, p99 {:.3} ms, {} lost) | UDP echo floor {:.0} qps (p50 {:.3} ms, p99 {:.3} ms, {} lost) | ratio {:.2}x",
            dns.qps,
            dns.percentile(0.5).as_secs_f64() * 1e3,
            dns.percentile(0.99).as_secs_f64() * 1e3,
            dns.lost,
            floor.qps,
            floor.percentile(0.5).as_secs_f64() * 1e3,
            floor.percentile(0.99).as_secs_f64() * 1e3,
            floor.lost,
            dns.qps / floor.qps.max(1.0),
        );
    };
    client_runtime.block_on(async {
        // A warm-up pass, then the closed loop (most qps) and the paced phase.
        phase(dns, &queries, options.clients, None, 1).await?;
        let floor_max = phase(floor, &queries, options.clients, None, options.seconds).await?;
        let dns_max = phase(dns, &queries, options.clients, None, options.seconds).await?;
        report("closed loop", &dns_max, &floor_max);
        let floor_paced = phase(
            floor,
            &queries,
            options.clients,
            Some(options.rate),
            options.seconds,
        )
        .await?;
        let dns_paced = phase(
            dns,
            &queries,
            options.clients,
            Some(options.rate),
            options.seconds,
        )
        .await?;
        report(
            &format!("at {} qps", options.rate),
            &dns_paced,
            &floor_paced,
        );
        let p99 = dns_paced.percentile(0.99);
        println!(
            "targets: ratio {:.2}x (≥ 0.5x: {}), p99 at {} qps {:.3} ms (≤ 1 ms: {}), answered {}",
            dns_max.qps / floor_max.qps.max(1.0),
            if dns_max.qps / floor_max.qps.max(1.0) >= 0.5 {
                "met"
            } else {
                "missed"
            },
            options.rate,
            p99.as_secs_f64() * 1e3,
            if p99 <= Duration::from_millis(1) {
                "met"
            } else {
                "missed"
            },
            dns_paced.answered,
        );
        anyhow::Ok(())
    })?;
    cancel.cancel();
    server_runtime.block_on(async {
        let _ = serving.await;
        let _ = echoing.await;
    });
    Ok(())
}
