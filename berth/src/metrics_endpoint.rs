//! `--metrics-bind-address` of the standalone control-plane commands
//! (`berth scheduler`, `controller-manager`, `cloud-controller`): the flag
//! and the start of the shared plain-HTTP endpoint serving the process's
//! control-plane registry, as their upstream counterparts serve theirs.

use anyhow::Context;
use berth_observability::metrics::serve::MetricsServer;
use berth_observability::metrics::MetricsRegistry;
use clap::Args;
use tokio_util::sync::CancellationToken;

/// The metrics flag every standalone control-plane command shares.
#[derive(Args, Debug, Clone, Default)]
pub struct MetricsFlags {
    /// Where to serve `/metrics` and `/healthz` over plain HTTP (`HOST:PORT`;
    /// upstream's ports are 10259 for the scheduler, 10257 for the
    /// controller-manager, 10258 for the cloud controller); off when empty.
    #[arg(long, env = "BERTH_METRICS_BIND_ADDRESS", default_value = "")]
    metrics_bind_address: String,
}

impl MetricsFlags {
    /// Binds the endpoint when the flag is set and serves it until `cancel`
    /// fires. Call it before leader election starts, so the Lease carries
    /// the address the API server's scrape-target discovery reads.
    pub async fn start(&self, cancel: CancellationToken) -> anyhow::Result<()> {
        if self.metrics_bind_address.is_empty() {
            return Ok(());
        }
        let server = MetricsServer::bind(
            &self.metrics_bind_address,
            MetricsRegistry::control_plane().clone(),
        )
        .await
        .with_context(|| format!("--metrics-bind-address {}", self.metrics_bind_address))?;
        let address = server.local_addr()?;
        tracing::info!(%address, "serving /metrics and /healthz");
        tokio::spawn(async move {
            if let Err(error) = server.serve(cancel.cancelled_owned()).await {
                tracing::error!(%error, "the metrics endpoint stopped");
            }
        });
        Ok(())
    }
}
