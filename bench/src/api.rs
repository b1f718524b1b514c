//! API benchmark: creates, updates and gets of ConfigMaps through the real
//! HTTPS API (TLS, auth, validation, SQLite store), at a fixed concurrency and
//! at a paced rate, beside the raw store floor measured in the same run.
//!
//! `cargo run --release -p berth-bench --bin api-bench [-- --seconds 5 --rate 500 --concurrency 16]`
//!
//! Targets (2-core machine, SQLite): mutating p99 ≤ 25 ms at 500 writes/s, reads p99 ≤ 5 ms.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use berth_bench::{Connection, TestServer};
use berth_orchestrator::store::sqlite::SqliteStore;
use berth_orchestrator::store::Store;

struct Options {
    seconds: u64,
    rate: u64,
    concurrency: usize,
}

fn options() -> anyhow::Result<Options> {
    let mut opts = Options {
        seconds: 5,
        rate: 500,
        concurrency: 16,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--seconds" => opts.seconds = value.parse()?,
            "--rate" => opts.rate = value.parse()?,
            "--concurrency" => opts.concurrency = value.parse()?,
            other => anyhow::bail!("unknown flag {other} (use --seconds, --rate, --concurrency)"),
        }
    }
    Ok(opts)
}

/// Latencies of one phase.
struct Stats {
    name: String,
    latencies: Vec<Duration>,
    elapsed: Duration,
}

impl Stats {
    fn percentile(&self, p: f64) -> Duration {
        let mut sorted = self.latencies.clone();
        sorted.sort();
        if sorted.is_empty() {
            return Duration::ZERO;
        }
        let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
        sorted[index]
    }

    fn throughput(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64()
    }

    fn print(&self) {
        println!(
            "{:<28} n={:>6}  {:>8.0}/s  p50={:>7.2}ms  p99={:>7.2}ms",
            self.name,
            self.latencies.len(),
            self.throughput(),
            ms(self.percentile(0.5)),
            ms(self.percentile(0.99)),
        );
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn configmap(name: &str, value: usize) -> String {
    serde_json::json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "labels": {"bench": "api"}},
        "data": {"value": value.to_string(), "payload": "x".repeat(256)},
    })
    .to_string()
}

#[derive(Clone, Copy)]
enum Op {
    Create,
    Update,
    Get,
}

/// Runs `total` operations over `connections`, starting one every `interval` (None = as fast as possible).
async fn run_api_phase(
    name: &str,
    op: Op,
    connections: &mut Vec<Connection>,
    total: usize,
    interval: Option<Duration>,
) -> anyhow::Result<Stats> {
    let per_conn = total.div_ceil(connections.len());
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let conns: Vec<Connection> = std::mem::take(connections);
    let workers = conns.len();
    for (worker, mut conn) in conns.into_iter().enumerate() {
        tasks.spawn(async move {
            let mut latencies = Vec::with_capacity(per_conn);
            for i in 0..per_conn {
                let index = i * workers + worker;
                if index >= total {
                    break;
                }
                if let Some(interval) = interval {
                    let due = started + interval * index as u32;
                    tokio::time::sleep_until(due.into()).await;
                }
                let name = format!("cm-{index}");
                let t = Instant::now();
                let status = match op {
                    Op::Create => {
                        let body = (configmap(&name, 0), "application/json");
                        conn.request(
                            http::Method::POST,
                            "/api/v1/namespaces/default/configmaps",
                            Some(body),
                        )
                        .await?
                    }
                    Op::Update => {
                        let patch =
                            serde_json::json!({"data": {"value": index.to_string()}}).to_string();
                        let path = format!("/api/v1/namespaces/default/configmaps/{name}");
                        conn.request(
                            http::Method::PATCH,
                            &path,
                            Some((patch, "application/merge-patch+json")),
                        )
                        .await?
                    }
                    Op::Get => {
                        conn.request(
                            http::Method::GET,
                            &format!("/api/v1/namespaces/default/configmaps/{name}"),
                            None,
                        )
                        .await?
                    }
                };
                anyhow::ensure!((200..300).contains(&status), "{name}: HTTP {status}");
                latencies.push(t.elapsed());
            }
            Ok::<_, anyhow::Error>((conn, latencies))
        });
    }
    let mut latencies = Vec::with_capacity(total);
    while let Some(result) = tasks.join_next().await {
        let (conn, mut l) = result??;
        connections.push(conn);
        latencies.append(&mut l);
    }
    Ok(Stats {
        name: name.to_owned(),
        latencies,
        elapsed: started.elapsed(),
    })
}

/// The floor: the same writes and reads straight against the store.
async fn run_store_phase(
    name: &str,
    store: Arc<dyn Store>,
    (write, offset): (bool, usize),
    total: usize,
    concurrency: usize,
    interval: Option<Duration>,
) -> anyhow::Result<Stats> {
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..concurrency {
        let store = Arc::clone(&store);
        tasks.spawn(async move {
            let mut latencies = Vec::new();
            let mut index = worker;
            while index < total {
                if let Some(interval) = interval {
                    tokio::time::sleep_until((started + interval * index as u32).into()).await;
                }
                let key = format!("/bench/{}", index + offset);
                let t = Instant::now();
                if write {
                    store
                        .create(&key, configmap(&key, index).into_bytes())
                        .await?;
                } else {
                    store.get(&key).await?.context("missing key")?;
                }
                latencies.push(t.elapsed());
                index += concurrency;
            }
            Ok::<_, anyhow::Error>(latencies)
        });
    }
    let mut latencies = Vec::with_capacity(total);
    while let Some(result) = tasks.join_next().await {
        latencies.append(&mut result??);
    }
    Ok(Stats {
        name: name.to_owned(),
        latencies,
        elapsed: started.elapsed(),
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let opts = options()?;
    let dir = tempfile::tempdir()?;
    let total = (opts.seconds * opts.rate) as usize;
    println!(
        "berth API benchmark: {} ops per phase, concurrency {}, paced phases at {}/s",
        total, opts.concurrency, opts.rate
    );

    // Floor: the raw store on its own file, same machine, same run, same schedule.
    let interval = Some(Duration::from_secs_f64(1.0 / opts.rate as f64));
    let floor_store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path().join("floor.db"))?);
    let c = opts.concurrency;
    let floor_write = run_store_phase(
        "store create (paced)",
        Arc::clone(&floor_store),
        (true, 0),
        total,
        c,
        interval,
    )
    .await?;
    let floor_read = run_store_phase(
        "store get (paced)",
        Arc::clone(&floor_store),
        (false, 0),
        total,
        c,
        interval,
    )
    .await?;
    let floor_max = run_store_phase(
        "store create (max rate)",
        floor_store,
        (true, total),
        total,
        c,
        None,
    )
    .await?;

    let server = TestServer::start().await?;
    let mut connections = Vec::new();
    for _ in 0..opts.concurrency {
        connections.push(server.connect().await?);
    }

    let creates = run_api_phase(
        "api create (paced)",
        Op::Create,
        &mut connections,
        total,
        interval,
    )
    .await?;
    let updates = run_api_phase(
        "api update (paced)",
        Op::Update,
        &mut connections,
        total,
        interval,
    )
    .await?;
    let gets = run_api_phase(
        "api get (paced)",
        Op::Get,
        &mut connections,
        total,
        interval,
    )
    .await?;
    let get_max =
        run_api_phase("api get (max rate)", Op::Get, &mut connections, total, None).await?;
    let update_max = run_api_phase(
        "api update (max rate)",
        Op::Update,
        &mut connections,
        total,
        None,
    )
    .await?;

    println!();
    for stats in [
        &floor_write,
        &floor_read,
        &floor_max,
        &creates,
        &updates,
        &gets,
        &get_max,
        &update_max,
    ] {
        stats.print();
    }
    println!();
    let ratio = |api: &Stats, floor: &Stats, p: f64| {
        ms(api.percentile(p)) / ms(floor.percentile(p)).max(0.001)
    };
    println!(
        "ratio create p50 api/store: {:.1}x   p99: {:.1}x",
        ratio(&creates, &floor_write, 0.5),
        ratio(&creates, &floor_write, 0.99)
    );
    println!(
        "ratio update p50 api/store: {:.1}x   p99: {:.1}x",
        ratio(&updates, &floor_write, 0.5),
        ratio(&updates, &floor_write, 0.99)
    );
    println!(
        "ratio get    p50 api/store: {:.1}x   p99: {:.1}x",
        ratio(&gets, &floor_read, 0.5),
        ratio(&gets, &floor_read, 0.99)
    );
    println!(
        "ratio write throughput api/store at max rate: {:.2}x",
        update_max.throughput() / floor_max.throughput()
    );
    let verdict = |ok: bool| if ok { "ok" } else { "MISSED" };
    let mutating_p99 = ms(creates.percentile(0.99)).max(ms(updates.percentile(0.99)));
    println!(
        "target mutating p99 <= 25ms at {}/s: {:.2}ms {}",
        opts.rate,
        mutating_p99,
        verdict(mutating_p99 <= 25.0)
    );
    println!(
        "target read p99 <= 5ms: {:.2}ms {}",
        ms(gets.percentile(0.99)),
        verdict(ms(gets.percentile(0.99)) <= 5.0)
    );

    server.stop().await
}
