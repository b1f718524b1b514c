//! `berth controller-manager`: the controllers as their own process against
//! any cluster (pair it with `berth server --disable controllers`). Copies
//! elect a leader through the `kube-system/berth-controller-manager` Lease, so
//! several may run and exactly one reconciles; it never runs a controller
//! without holding that Lease.

use std::convert::Infallible;

use berth_orchestrator::controllers;
use berth_orchestrator::leader_election::{LeaderElector, LeaseConfig};
use berth_orchestrator::scheduler;
use clap::Args;
use tokio_util::sync::CancellationToken;

use crate::agent::ConnectionFlags;

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
}

/// Runs the controllers while this process holds the Lease, until SIGINT or
/// SIGTERM; a clean stop releases the Lease so another copy takes over at once.
pub async fn run(args: ControllerManagerArgs) -> anyhow::Result<()> {
    let client = args.connection.client().await?;
    let identity = args.identity.unwrap_or_else(scheduler::default_identity);
    tracing::info!(%identity, "berth controller-manager starting");
    let cancel = CancellationToken::new();
    let elect = supervise_while_leading(
        client,
        &identity,
        controllers::ControllersConfig::default(),
        cancel.clone(),
    );
    tokio::pin!(elect);
    tokio::select! {
        () = &mut elect => return Ok(()),
        _ = shutdown_signal() => {}
    }
    tracing::info!("shutting down");
    cancel.cancel();
    elect.await;
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

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("installing SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
