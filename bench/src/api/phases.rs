//! The API benchmark's phases: a number of operations over keep-alive
//! connections or straight against the store, paced or at full speed, and
//! their latencies.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use berth_bench::Connection;
use berth_orchestrator::store::Store;

use super::custom::{configmap, Target};

/// Latencies of one phase.
pub struct Stats {
    pub name: String,
    pub latencies: Vec<Duration>,
    pub elapsed: Duration,
}

impl Stats {
    pub fn percentile(&self, p: f64) -> Duration {
        let mut sorted = self.latencies.clone();
        sorted.sort();
        if sorted.is_empty() {
            return Duration::ZERO;
        }
        let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
        sorted[index]
    }

    pub fn throughput(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64()
    }

    pub fn print(&self) {
        println!(
            "{:<34} n={:>6}  {:>8.0}/s  p50={:>7.2}ms  p99={:>7.2}ms",
            self.name,
            self.latencies.len(),
            self.throughput(),
            ms(self.percentile(0.5)),
            ms(self.percentile(0.99)),
        );
    }
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// What each operation of a phase does.
#[derive(Clone, Copy)]
pub enum Op {
    Create,
    Update,
    Get,
}

/// Runs `total` operations on `target` over `connections`, starting one
/// every `interval` (None = as fast as possible).
pub async fn run_api_phase(
    name: &str,
    (target, op): (Target, Op),
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
                let name = format!("bench-{index}");
                let t = Instant::now();
                let status = match op {
                    Op::Create => {
                        let body = (target.body(&name, 0), "application/json");
                        conn.request(http::Method::POST, target.collection(), Some(body))
                            .await?
                    }
                    Op::Update => {
                        let patch = (target.patch(index), "application/merge-patch+json");
                        conn.request(http::Method::PATCH, &target.object(&name), Some(patch))
                            .await?
                    }
                    Op::Get => {
                        conn.request(http::Method::GET, &target.object(&name), None)
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
pub async fn run_store_phase(
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
