//! API benchmark: creates, updates and gets through the real HTTPS API (TLS,
//! auth, validation, SQLite store), at a paced rate and at full speed, beside
//! the raw store floor measured in the same run. The paced workload runs on
//! a built-in kind (ConfigMap) and on a custom resource (a CRD with a
//! structural schema, defaults, a pattern, an enum and a CEL rule), phase by
//! phase alternately, and prints the custom kind's p99 as a ratio to the
//! built-in kind's.
//!
//! `cargo run --release -p berth-bench --bin api-bench [-- --seconds 5 --rate 500 --concurrency 16]`
//!
//! Last, the paced creates and updates once more on a server without
//! metrics and spans and on one with its metrics and OTLP span export on
//! (to a receiver in this process): observability's p99 overhead.
//!
//! Targets (2-core machine, SQLite): mutating p99 ≤ 25 ms at 500 writes/s,
//! reads p99 ≤ 5 ms; custom-resource p99 ≤ 1.5× the built-in kind's;
//! metrics and tracing ≤ 1.05× the p99 without them.

#[path = "api/custom.rs"]
mod custom;
#[path = "api/overhead.rs"]
mod overhead;
#[path = "api/phases.rs"]
mod phases;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use berth_bench::TestServer;
use berth_orchestrator::store::sqlite::SqliteStore;
use berth_orchestrator::store::Store;
use clap::Parser;
use custom::Target;
use phases::{ms, run_api_phase, run_store_phase, Op, Stats};

/// Load for the API benchmark.
#[derive(Parser)]
#[command(
    name = "api-bench",
    about = "berth's API latency as ratios to floors measured in the same run"
)]
struct Options {
    /// How long each paced phase runs, in seconds.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Operations per second in the paced phases.
    #[arg(long, default_value_t = 500)]
    rate: u64,
    /// Keep-alive connections (and store workers) in flight.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Turns of the three observability servers (off, metrics, metrics and
    /// tracing); their medians are compared, so one disturbed turn does
    /// not decide.
    #[arg(long, default_value_t = 5)]
    overhead_rounds: usize,
}

/// The custom resource's p99 may be at most this many times the built-in kind's.
const CUSTOM_TARGET: f64 = 1.5;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let opts = Options::parse();
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
    custom::install(connections.first_mut().context("no connections")?).await?;

    // The paced workload, each operation on the built-in kind then on the
    // custom one, so both see the same machine load.
    let mut paced = Vec::new();
    for (op, verb) in [
        (Op::Create, "create"),
        (Op::Update, "update"),
        (Op::Get, "get"),
    ] {
        let mut pair = Vec::new();
        for target in [Target::Builtin, Target::Custom] {
            let name = format!("api {verb} {} (paced)", target.label());
            pair.push(run_api_phase(&name, (target, op), &mut connections, total, interval).await?);
        }
        paced.push((verb, pair));
    }
    let builtin = Target::Builtin;
    let get_max = run_api_phase(
        "api get configmap (max rate)",
        (builtin, Op::Get),
        &mut connections,
        total,
        None,
    )
    .await?;
    let update_max = run_api_phase(
        "api update configmap (max)",
        (builtin, Op::Update),
        &mut connections,
        total,
        None,
    )
    .await?;

    println!();
    for stats in [&floor_write, &floor_read, &floor_max] {
        stats.print();
    }
    for (_, pair) in &paced {
        pair.iter().for_each(Stats::print);
    }
    get_max.print();
    update_max.print();
    println!();
    let ratio = |api: &Stats, floor: &Stats, p: f64| {
        ms(api.percentile(p)) / ms(floor.percentile(p)).max(0.001)
    };
    let (creates, updates, gets) = (&paced[0].1[0], &paced[1].1[0], &paced[2].1[0]);
    println!(
        "ratio create p50 api/store: {:.1}x   p99: {:.1}x",
        ratio(creates, &floor_write, 0.5),
        ratio(creates, &floor_write, 0.99)
    );
    println!(
        "ratio update p50 api/store: {:.1}x   p99: {:.1}x",
        ratio(updates, &floor_write, 0.5),
        ratio(updates, &floor_write, 0.99)
    );
    println!(
        "ratio get    p50 api/store: {:.1}x   p99: {:.1}x",
        ratio(gets, &floor_read, 0.5),
        ratio(gets, &floor_read, 0.99)
    );
    println!(
        "ratio write throughput api/store at max rate: {:.2}x",
        update_max.throughput() / floor_max.throughput()
    );
    let mut worst_custom: f64 = 0.0;
    for (verb, pair) in &paced {
        let (builtin, custom) = (&pair[0], &pair[1]);
        let p99 = ratio(custom, builtin, 0.99);
        worst_custom = worst_custom.max(p99);
        println!(
            "ratio {verb:<6} p50 custom/built-in: {:.2}x   p99: {:.2}x ({:.2}ms / {:.2}ms)",
            ratio(custom, builtin, 0.5),
            p99,
            ms(custom.percentile(0.99)),
            ms(builtin.percentile(0.99)),
        );
    }
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
    println!(
        "target custom/built-in p99 <= {CUSTOM_TARGET}x: {worst_custom:.2}x {}",
        verdict(worst_custom <= CUSTOM_TARGET)
    );

    server.stop().await?;
    overhead::measure(
        total,
        interval.context("paced phases have an interval")?,
        c,
        opts.overhead_rounds,
    )
    .await
}
