//! `berth scheduler`: the scheduler as its own process against any cluster
//! (pair it with `berth server --disable scheduler`). Copies elect a leader
//! through the `kube-system/berth-scheduler` Lease, so several may run.

use std::path::PathBuf;

use anyhow::Context;
use berth_orchestrator::controllers::client;
use berth_orchestrator::scheduler;
use clap::Args;

use crate::agent::cancel_on_signal;
use crate::metrics_endpoint::MetricsFlags;

/// Flags of `berth scheduler`.
#[derive(Args, Debug)]
pub struct SchedulerArgs {
    /// Kubeconfig with the cluster's address and credentials.
    #[arg(long, env = "KUBECONFIG")]
    kubeconfig: PathBuf,
    /// Holder identity in the Lease; unique per process (default: host, pid, random suffix).
    #[arg(long, env = "BERTH_SCHEDULER_IDENTITY")]
    identity: Option<String>,
    #[command(flatten)]
    metrics: MetricsFlags,
}

/// Runs the scheduler until SIGINT or SIGTERM.
pub async fn run(args: SchedulerArgs) -> anyhow::Result<()> {
    let yaml = std::fs::read_to_string(&args.kubeconfig)
        .with_context(|| format!("reading --kubeconfig {}", args.kubeconfig.display()))?;
    let client = client::from_kubeconfig_yaml(&yaml)
        .await
        .with_context(|| format!("--kubeconfig {}", args.kubeconfig.display()))?;
    let identity = args.identity.unwrap_or_else(scheduler::default_identity);
    tracing::info!(%identity, "berth scheduler starting");
    let cancel = cancel_on_signal();
    args.metrics.start(cancel.clone()).await?;
    scheduler::run(client, identity, cancel).await?;
    Ok(())
}
