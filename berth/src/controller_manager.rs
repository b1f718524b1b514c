//! `berth controller-manager`: the controllers as their own process against
//! any cluster (pair it with `berth server --disable controllers`). Copies
//! elect a leader through the `kube-system/berth-controller-manager` Lease, so
//! several may run and exactly one reconciles; it never runs a controller
//! without holding that Lease.

use std::convert::Infallible;

use anyhow::Context;

use berth_orchestrator::controllers;
use berth_orchestrator::leader_election::{LeaderElector, LeaseConfig};
use berth_orchestrator::scheduler;
use clap::Args;
use tokio_util::sync::CancellationToken;

use crate::agent::{cancel_on_signal, ConnectionFlags};
use crate::metrics_endpoint::MetricsFlags;

/// The Lease the controller-managers of one cluster elect their leader with
/// (kube-controller-manager uses `kube-system/kube-controller-manager`).
pub const LEASE_NAMESPACE: &str = "kube-system";
/// The Lease's name.
pub const LEASE_NAME: &str = "berth-controller-manager";

/// Flags of `berth controller-manager`.
#[derive(Args, Debug)]
pub struct ControllerManagerArgs {
    #[command(flatten)]
    connection: ConnectionFlags,
    /// Holder identity in the Lease; unique per process (default: host, pid, random suffix).
    #[arg(long, env = "BERTH_CONTROLLER_MANAGER_IDENTITY")]
    identity: Option<String>,
    #[command(flatten)]
    metrics: MetricsFlags,
    /// The cluster CA certificate csrsigning issues kubelet certificates with
    /// (the server's `tls/ca.crt`); without it and the key, nothing is signed.
    #[arg(
        long,
        env = "BERTH_CLUSTER_SIGNING_CERT_FILE",
        requires = "cluster_signing_key_file"
    )]
    cluster_signing_cert_file: Option<std::path::PathBuf>,
    /// The cluster CA key (the server's `tls/ca.key`).
    #[arg(
        long,
        env = "BERTH_CLUSTER_SIGNING_KEY_FILE",
        requires = "cluster_signing_cert_file"
    )]
    cluster_signing_key_file: Option<std::path::PathBuf>,
    /// The longest lifetime of an issued kubelet certificate (`8760h`, `30m`).
    #[arg(long, env = "BERTH_CLUSTER_SIGNING_DURATION", default_value = "8760h")]
    cluster_signing_duration: String,
    /// How often the horizontal pod autoscaler evaluates every HPA.
    #[arg(long, env = "BERTH_HORIZONTAL_POD_AUTOSCALER_SYNC_PERIOD", default_value = "15s", value_parser = crate::server::parse_duration)]
    horizontal_pod_autoscaler_sync_period: std::time::Duration,
    /// The scale-down window of HPAs without a `behavior`.
    #[arg(long, env = "BERTH_HORIZONTAL_POD_AUTOSCALER_DOWNSCALE_STABILIZATION", default_value = "5m", value_parser = crate::server::parse_duration)]
    horizontal_pod_autoscaler_downscale_stabilization: std::time::Duration,
}

/// The controllers' configuration: berth's defaults, with csrsigning when
/// the CA files are given.
fn controllers_config(
    args: &ControllerManagerArgs,
) -> anyhow::Result<controllers::ControllersConfig> {
    let mut config = controllers::ControllersConfig::default();
    config.horizontal_pod_autoscaler.sync_period = args.horizontal_pod_autoscaler_sync_period;
    config.horizontal_pod_autoscaler.downscale_stabilization =
        args.horizontal_pod_autoscaler_downscale_stabilization;
    if let (Some(cert), Some(key)) = (
        &args.cluster_signing_cert_file,
        &args.cluster_signing_key_file,
    ) {
        let read = |path: &std::path::Path| {
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
        };
        config.csr_signing = Some(controllers::certificates::signer::SigningConfig {
            ca_cert_pem: read(cert)?,
            ca_key_pem: read(key)?,
            duration: berth_agent::config::parse_duration(
                "--cluster-signing-duration",
                &args.cluster_signing_duration,
            )?,
        });
    }
    Ok(config)
}

/// Runs the controllers while this process holds the Lease, until SIGINT or
/// SIGTERM; a clean stop releases the Lease so another copy takes over at once.
pub async fn run(args: ControllerManagerArgs) -> anyhow::Result<()> {
    let client = args.connection.client().await?;
    let config = controllers_config(&args)?;
    let identity = args.identity.unwrap_or_else(scheduler::default_identity);
    tracing::info!(%identity, "berth controller-manager starting");
    let cancel = cancel_on_signal();
    args.metrics.start(cancel.clone()).await?;
    supervise_while_leading(client, &identity, config, cancel).await;
    Ok(())
}

/// Runs the controllers whenever `identity` holds the
/// `kube-system/berth-controller-manager` Lease, until `cancel` fires. They
/// stop when the Lease is lost and start afresh when it comes back, so their
/// caches are re-listed rather than trusted across a gap. Shared by `berth
/// controller-manager` and `berth server --leader-elect`.
pub async fn supervise_while_leading(
    client: kube::Client,
    identity: &str,
    config: controllers::ControllersConfig,
    cancel: CancellationToken,
) {
    let elector = LeaderElector::new(
        client.clone(),
        LeaseConfig::new(LEASE_NAMESPACE, LEASE_NAME, identity),
    );
    let elected = elector.run(cancel, |leading| {
        let client = client.clone();
        let config = config.clone();
        async move {
            controllers::supervise_with(client, leading, config).await;
            Ok::<(), Infallible>(())
        }
    });
    let Ok(()) = elected.await;
}
