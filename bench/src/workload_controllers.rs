//! Workload controllers benchmark: a full `berth server` (scheduler and
//! controllers) and `berth sim` with N simulated nodes, both child
//! processes; then, in one run, the time a Job of C completions (pods that
//! exit at once through `sim.berth.dev/exit-after`) takes to be Complete,
//! beside the time a Deployment of the same pod count takes to be all
//! available — the floor — and their ratio (target ≤ 1.2×), with the
//! store writes (revisions) each side made per pod, the usual cause of a gap.
//!
//! `cargo build --release -p berth -p berth-bench && target/release/workload-controllers-bench [--nodes 100 --completions 10000 --parallelism 500]`
//!
//! `--case daemonset --nodes 1000` times a DaemonSet over every node to all
//! available beside a Deployment of as many pods.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use berth_bench::process::{berth_binary, start_server, Process};
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::batch::v1::Job;
use kube::api::{Api, ListParams, PostParams};

/// What to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Case {
    /// A Job of `--completions` pods to Complete, beside a Deployment of as many pods to available.
    Job,
    /// A DaemonSet over all `--nodes` to available, beside a Deployment of as many pods.
    Daemonset,
}

/// Times workload controllers on simulated nodes against a Deployment of the same size.
#[derive(Parser, Debug)]
#[command(name = "workload-controllers-bench")]
struct Args {
    /// Which case to run.
    #[arg(long, value_enum, default_value_t = Case::Job)]
    case: Case,
    /// Simulated nodes (`berth sim --nodes`).
    #[arg(long, default_value_t = 100)]
    nodes: u32,
    /// The Job's completions (and the Deployment's replicas).
    #[arg(long, default_value_t = 10_000)]
    completions: i32,
    /// The Job's parallelism.
    #[arg(long, default_value_t = 500)]
    parallelism: i32,
    /// Pods each simulated node takes.
    #[arg(long, default_value_t = 250)]
    pods_per_node: u32,
    /// The berth binary (default: beside this one).
    #[arg(long)]
    berth: Option<PathBuf>,
    /// Give up on a case after this many seconds.
    #[arg(long, default_value_t = 1800)]
    timeout: u64,
}

fn start_sim(berth: &Path, dir: &Path, kubeconfig: &Path, args: &Args) -> anyhow::Result<Process> {
    let capacity = format!("cpu=64,memory=256Gi,pods={}", args.pods_per_node);
    let child = Command::new(berth)
        .args([
            "sim",
            "--nodes",
            &args.nodes.to_string(),
            "--name-prefix",
            "bench-",
        ])
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["--capacity", &capacity])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("sim.log"))?)
        .spawn()?;
    Ok(Process(child))
}

/// Polls `check` every 200 ms until it is true; the time it took.
async fn time_until(
    what: &str,
    timeout: Duration,
    mut check: impl AsyncFnMut() -> anyhow::Result<bool>,
) -> anyhow::Result<Duration> {
    let start = Instant::now();
    loop {
        if check().await? {
            return Ok(start.elapsed());
        }
        anyhow::ensure!(start.elapsed() < timeout, "{what}: not within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The store's current revision (every write adds one): a one-item list's
/// resourceVersion.
async fn revision(client: &kube::Client) -> anyhow::Result<u64> {
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    let list = namespaces.list(&ListParams::default().limit(1)).await?;
    let version = list.metadata.resource_version.unwrap_or_default();
    Ok(version.parse()?)
}

/// Store writes per pod between revisions `before` and `after`.
fn per_pod(before: u64, after: u64, pods: i32) -> f64 {
    after.saturating_sub(before) as f64 / f64::from(pods.max(1))
}

fn template(annotations: serde_json::Value, restart: &str) -> serde_json::Value {
    serde_json::json!({
        "metadata": {"labels": {"app": "bench"}, "annotations": annotations},
        "spec": {"restartPolicy": restart, "containers": [{"name": "c", "image": "busybox"}]}
    })
}

/// The floor: a Deployment of `replicas` pods created, timed to all
/// available, then deleted and its pods waited out.
async fn deployment_floor(
    client: &kube::Client,
    replicas: i32,
    timeout: Duration,
) -> anyhow::Result<Duration> {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let deployment: Deployment = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "floor"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "bench"}},
            "template": template(serde_json::json!({}), "Always"),
        }
    }))?;
    let before = revision(client).await?;
    deployments
        .create(&PostParams::default(), &deployment)
        .await?;
    let floor = time_until("the deployment is available", timeout, async || {
        let d = deployments.get("floor").await?;
        let available = d.status.and_then(|s| s.available_replicas).unwrap_or(0);
        Ok(available >= replicas)
    })
    .await?;
    let writes = per_pod(before, revision(client).await?, replicas);
    println!(
        "deployment of {replicas} pods available in {:.1}s ({writes:.2} store writes per pod)",
        floor.as_secs_f64()
    );
    deployments.delete("floor", &Default::default()).await?;
    // Let the garbage collector clear the floor's pods before the measured case.
    let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(client.clone(), "default");
    time_until("the deployment's pods are gone", timeout, async || {
        Ok(pods.list(&Default::default()).await?.items.is_empty())
    })
    .await?;
    Ok(floor)
}

async fn daemonset_case(
    client: &kube::Client,
    args: &Args,
) -> anyhow::Result<(Duration, Duration)> {
    let timeout = Duration::from_secs(args.timeout);
    let nodes = args.nodes as i32;
    let floor = deployment_floor(client, nodes, timeout).await?;
    let daemonsets: Api<DaemonSet> = Api::namespaced(client.clone(), "default");
    let daemonset: DaemonSet = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "measured"},
        "spec": {
            "selector": {"matchLabels": {"app": "bench"}},
            "template": template(serde_json::json!({}), "Always"),
        }
    }))?;
    daemonsets
        .create(&PostParams::default(), &daemonset)
        .await?;
    let measured = time_until("the daemonset is available", timeout, async || {
        let d = daemonsets.get("measured").await?;
        let available = d.status.and_then(|s| s.number_available).unwrap_or(0);
        Ok(available >= nodes)
    })
    .await?;
    println!(
        "daemonset over {nodes} nodes available in {:.1}s",
        measured.as_secs_f64()
    );
    Ok((measured, floor))
}

async fn job_case(client: &kube::Client, args: &Args) -> anyhow::Result<(Duration, Duration)> {
    let timeout = Duration::from_secs(args.timeout);
    let floor = deployment_floor(client, args.completions, timeout).await?;
    let jobs: Api<Job> = Api::namespaced(client.clone(), "default");
    let job: Job = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "measured"},
        "spec": {
            "completions": args.completions,
            "parallelism": args.parallelism,
            "template": template(serde_json::json!({"sim.berth.dev/exit-after": "0s"}), "Never"),
        }
    }))?;
    let before = revision(client).await?;
    jobs.create(&PostParams::default(), &job).await?;
    let measured = time_until("the job completes", timeout, async || {
        let j = jobs.get("measured").await?;
        let complete = j.status.as_ref().is_some_and(|s| {
            s.conditions
                .iter()
                .flatten()
                .any(|c| c.type_ == "Complete" && c.status == "True")
        });
        Ok(complete)
    })
    .await?;
    let writes = per_pod(before, revision(client).await?, args.completions);
    println!(
        "job of {} completions (parallelism {}) complete in {:.1}s ({writes:.2} store writes per pod)",
        args.completions,
        args.parallelism,
        measured.as_secs_f64()
    );
    Ok((measured, floor))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let berth = berth_binary(args.berth.clone())?;
    let dir = tempfile::tempdir()?;
    let (_server, kubeconfig) = start_server(&berth, dir.path())?;
    let _sim = start_sim(&berth, dir.path(), &kubeconfig, &args)?;
    let client = berth_agent::client::from_kubeconfig_file(&kubeconfig, None).await?;
    let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(client.clone());
    time_until(
        "the simulated nodes register",
        Duration::from_secs(120),
        async || Ok(nodes.list(&Default::default()).await?.items.len() >= args.nodes as usize),
    )
    .await?;
    println!("{} simulated nodes ready", args.nodes);
    let (measured, floor) = match args.case {
        Case::Job => job_case(&client, &args).await?,
        Case::Daemonset => daemonset_case(&client, &args).await?,
    };
    println!(
        "ratio {:.2}x (target <= 1.2x)",
        measured.as_secs_f64() / floor.as_secs_f64().max(1e-9)
    );
    Ok(())
}
