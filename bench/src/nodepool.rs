//! NodePool autoscaling benchmark, three parts in one run:
//!
//! 1. the provisioning decision for `--pods` pending pods over 10 pools
//!    (CPU, memory and GPU shapes, weights, a limit) with berth's
//!    first-fit-decreasing bin-packing, beside the trivial floor of one new
//!    machine per pod in the first pool it fits: the best time of
//!    `--rounds` each, the machines each chose, and the ratios;
//! 2. the reaction time of `berth server` with the `sim` provider: a pod
//!    no node can hold created → the scheduler marks it Unschedulable (the
//!    floor) → the NodeClaim for it exists;
//! 3. NodeClaim created → its Node Ready, for the `sim` provider.
//!
//! `cargo build --release -p berth -p berth-bench && target/release/nodepool-bench [--pods 1000 --reactions 5]`

use std::path::PathBuf;
use std::time::{Duration, Instant};

use berth_api::nodeclaim::NodeClaim;
use berth_api::nodepool::NodePool;
use berth_bench::process::{berth_binary, start_server};
use berth_nodepool::provisioning::binpack::{decide, one_machine_per_pod, Decision, PendingPod};
use berth_nodepool::provisioning::inflight::candidates;
use clap::Parser;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, PostParams};
use kube::ResourceExt;
use serde_json::json;

/// Times NodePool provisioning decisions and reactions.
#[derive(Parser, Debug)]
#[command(name = "nodepool-bench")]
struct Args {
    /// Pending pods in the decision benchmark.
    #[arg(long, default_value_t = 1000)]
    pods: usize,
    /// Decisions timed per algorithm (the best counts).
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Pods created one after another to time reactions (0: skip the
    /// server parts).
    #[arg(long, default_value_t = 5)]
    reactions: usize,
    /// The berth binary (default: beside this one).
    #[arg(long)]
    berth: Option<PathBuf>,
    /// Give up on a wait after this many seconds.
    #[arg(long, default_value_t = 120)]
    timeout: u64,
}

/// The 10 pools: name, capacity, taint, weight, maxReplicas.
fn pools() -> Vec<NodePool> {
    let pool =
        |name: &str, capacity: serde_json::Value, gpu: bool, weight: i32, max: Option<i32>| {
            let taints = if gpu {
                json!([{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}])
            } else {
                json!([])
            };
            let spec = json!({"provider": "sim", "weight": weight, "maxReplicas": max,
            "taints": taints, "template": {"capacity": capacity}});
            serde_json::from_value(json!({"metadata": {"name": name}, "spec": spec}))
                .expect("a valid NodePool")
        };
    vec![
        pool(
            "small",
            json!({"cpu": "2", "memory": "4Gi", "pods": "30"}),
            false,
            0,
            None,
        ),
        pool(
            "medium",
            json!({"cpu": "8", "memory": "32Gi", "pods": "110"}),
            false,
            0,
            None,
        ),
        pool(
            "large",
            json!({"cpu": "32", "memory": "128Gi", "pods": "110"}),
            false,
            0,
            None,
        ),
        pool(
            "xlarge",
            json!({"cpu": "64", "memory": "256Gi", "pods": "250"}),
            false,
            0,
            None,
        ),
        pool(
            "compute",
            json!({"cpu": "16", "memory": "32Gi", "pods": "110"}),
            false,
            0,
            None,
        ),
        pool(
            "memory",
            json!({"cpu": "8", "memory": "64Gi", "pods": "110"}),
            false,
            0,
            None,
        ),
        pool(
            "reserved",
            json!({"cpu": "16", "memory": "64Gi", "pods": "110"}),
            false,
            10,
            Some(20),
        ),
        pool(
            "gpu-1",
            json!({"cpu": "8", "memory": "60Gi", "nvidia.com/gpu": "1"}),
            true,
            0,
            None,
        ),
        pool(
            "gpu-4",
            json!({"cpu": "48", "memory": "192Gi", "nvidia.com/gpu": "4"}),
            true,
            0,
            None,
        ),
        pool(
            "gpu-8",
            json!({"cpu": "96", "memory": "768Gi", "nvidia.com/gpu": "8"}),
            true,
            0,
            Some(10),
        ),
    ]
}

/// `n` pending pods of four kinds: small and large CPU pods, 1- and 2-GPU pods.
fn pending(n: usize) -> Vec<PendingPod> {
    let tolerate = json!([{"key": "nvidia.com/gpu", "operator": "Exists"}]);
    (0..n)
        .map(|i| {
            let (requests, tolerations) = match i % 4 {
                0 => (json!({"cpu": "500m", "memory": "1Gi"}), json!([])),
                1 => (json!({"cpu": "3", "memory": "6Gi"}), json!([])),
                2 => (json!({"cpu": "4", "memory": "16Gi", "nvidia.com/gpu": "1"}), tolerate.clone()),
                _ => (json!({"cpu": "8", "memory": "32Gi", "nvidia.com/gpu": "2"}), tolerate.clone()),
            };
            let pod: Pod = serde_json::from_value(json!({
                "metadata": {"name": format!("p{i}"), "namespace": "bench", "labels": {"app": format!("a{}", i % 4)}},
                "spec": {"tolerations": tolerations, "containers": [{"name": "c", "resources": {"requests": requests}}]},
            }))
            .expect("a valid Pod");
            PendingPod::of(&pod)
        })
        .collect()
}

/// The best time of `rounds` calls of `f`, and its last result.
fn best<T>(rounds: usize, mut f: impl FnMut() -> T) -> (Duration, T) {
    let mut fastest = Duration::MAX;
    let mut out = f();
    for _ in 0..rounds.max(1) {
        let start = Instant::now();
        out = f();
        fastest = fastest.min(start.elapsed());
    }
    (fastest, out)
}

fn decision_bench(args: &Args) {
    let pods = pending(args.pods);
    let pools = candidates(&pools(), &[]);
    let (packed_time, packed): (_, Decision) = best(args.rounds, || decide(&pods, &[], &pools));
    let (floor_time, floor) = best(args.rounds, || one_machine_per_pod(&pods, &pools));
    println!(
        "decision for {} pending pods over {} pools: bin-packing {:.2} ms, {} machines ({} pods unplaced); first-fit one per pod {:.2} ms, {} machines",
        pods.len(),
        pools.len(),
        packed_time.as_secs_f64() * 1e3,
        packed.launches.len(),
        packed.failed.len(),
        floor_time.as_secs_f64() * 1e3,
        floor.len(),
    );
    println!(
        "decision time ratio {:.2}x; machines ratio {:.3}x (bin-packing / first-fit)",
        packed_time.as_secs_f64() / floor_time.as_secs_f64().max(1e-9),
        packed.launches.len() as f64 / floor.len().max(1) as f64,
    );
}

/// Polls `check` every 10 ms until it yields; the time it took.
async fn until<T>(
    what: &str,
    timeout: Duration,
    mut check: impl AsyncFnMut() -> anyhow::Result<Option<T>>,
) -> anyhow::Result<(Duration, T)> {
    let start = Instant::now();
    loop {
        if let Some(value) = check().await? {
            return Ok((start.elapsed(), value));
        }
        anyhow::ensure!(start.elapsed() < timeout, "{what}: not within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values.get(values.len() / 2).copied().unwrap_or_default()
}

async fn reaction_bench(args: &Args) -> anyhow::Result<()> {
    let berth = berth_binary(args.berth.clone())?;
    let dir = tempfile::tempdir()?;
    let (_server, kubeconfig) = start_server(&berth, dir.path())?;
    let client = berth_agent::client::from_kubeconfig_file(&kubeconfig, None).await?;
    let timeout = Duration::from_secs(args.timeout);
    let pool: NodePool = serde_json::from_value(json!({
        "apiVersion": "berth.dev/v1", "kind": "NodePool",
        "metadata": {"name": "bench"},
        "spec": {"provider": "sim", "template": {"capacity": {"cpu": "4", "memory": "8Gi", "pods": "10"}}},
    }))?;
    Api::<NodePool>::all(client.clone())
        .create(&PostParams::default(), &pool)
        .await?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let claims: Api<NodeClaim> = Api::all(client.clone());
    let (mut refused, mut reacted, mut ready) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..args.reactions {
        // Each pod takes a whole machine, so each needs a new claim.
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": format!("bench-{i}")},
            "spec": {"containers": [{"name": "c", "image": "busybox", "resources": {"requests": {"cpu": "4"}}}]},
        }))?;
        let known: Vec<String> = claims
            .list(&ListParams::default())
            .await?
            .items
            .iter()
            .map(|c| c.name_any())
            .collect();
        let start = Instant::now();
        pods.create(&PostParams::default(), &pod).await?;
        let name = pod.name_any();
        let (unschedulable, ()) = until("the pod is Unschedulable", timeout, async || {
            let pod = pods.get(&name).await?;
            let refused = berth_nodepool::provisioning::provisioner::unschedulable(&pod);
            // A pod bound already was refused and provisioned for between two polls.
            let bound = pod
                .spec
                .as_ref()
                .and_then(|s| s.node_name.as_ref())
                .is_some();
            Ok((refused || bound).then_some(()))
        })
        .await?;
        let (_, claim) = until("a NodeClaim for the pod", timeout, async || {
            let items = claims.list(&ListParams::default()).await?.items;
            Ok(items.into_iter().find(|c| !known.contains(&c.name_any())))
        })
        .await?;
        let claimed = start.elapsed();
        let claim_name = claim.name_any();
        let (to_ready, ()) = until("the claim's node is Ready", timeout, async || {
            let claim = claims.get(&claim_name).await?;
            let ready = claim
                .status
                .iter()
                .flat_map(|s| &s.conditions)
                .any(|c| c.type_ == "Ready" && c.status == "True");
            Ok(ready.then_some(()))
        })
        .await?;
        // The next pod must not find this one still waiting for its node: it
        // would take that node and leave this pod to a second batch window.
        until("the pod is bound", timeout, async || {
            let pod = pods.get(&name).await?;
            let bound = pod.spec.and_then(|s| s.node_name).is_some();
            Ok(bound.then_some(()))
        })
        .await?;
        refused.push(unschedulable);
        reacted.push(claimed);
        ready.push(to_ready);
    }
    let created = claims.list(&ListParams::default()).await?.items.len();
    anyhow::ensure!(
        created == args.reactions,
        "{created} NodeClaims for {} pods that each need one",
        args.reactions
    );
    let (refused, reacted, ready) = (median(refused), median(reacted), median(ready));
    println!(
        "pending pod -> NodeClaim (median of {}): {:.0} ms; pod -> Unschedulable (floor) {:.0} ms; ratio {:.2}x",
        args.reactions,
        reacted.as_secs_f64() * 1e3,
        refused.as_secs_f64() * 1e3,
        reacted.as_secs_f64() / refused.as_secs_f64().max(1e-9),
    );
    // The server runs the controller's defaults; the window is by design.
    let window = berth_nodepool::controller::Config::default().batch_idle;
    println!(
        "  of which the batch idle window {:.0} ms (by design), beyond it {:.0} ms",
        window.as_secs_f64() * 1e3,
        reacted.saturating_sub(window).as_secs_f64() * 1e3,
    );
    println!(
        "NodeClaim -> Node Ready, sim provider (median of {}): {:.0} ms",
        args.reactions,
        ready.as_secs_f64() * 1e3
    );
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    decision_bench(&args);
    if args.reactions > 0 {
        reaction_bench(&args).await?;
    }
    Ok(())
}
