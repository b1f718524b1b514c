//! `berth agent`: one node agent process (kubelet's role) for the node named
//! by `--name`, over the runtime named by `--runtime`. Flags here are shared
//! with `berth sim`; all the work is in the `berth-agent` crate.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use berth_agent::config::{self, NodeConfig};
use berth_agent::runtime::simulated::{SimulatedConfig, SimulatedRuntime};
use berth_agent::runtime::Runtime;
use berth_agent::{AgentOptions, NodeHandle, Nodes};
use clap::Args;
use tokio_util::sync::CancellationToken;

/// How to reach the API server.
#[derive(Args, Debug)]
pub struct ConnectionFlags {
    /// API server URL; overrides the kubeconfig's server.
    #[arg(long, env = "BERTH_SERVER")]
    server: Option<String>,
    /// Kubeconfig with the credentials to use (`berth server` writes admin.kubeconfig).
    #[arg(long, env = "KUBECONFIG")]
    kubeconfig: PathBuf,
}

impl ConnectionFlags {
    pub async fn client(&self) -> anyhow::Result<kube::Client> {
        Ok(
            berth_agent::client::from_kubeconfig_file(&self.kubeconfig, self.server.as_deref())
                .await?,
        )
    }
}

/// What the node (or every simulated node) looks like.
#[derive(Args, Debug)]
pub struct NodeFlags {
    /// Extra node labels: `k=v,k2=v2`.
    #[arg(long, env = "BERTH_NODE_LABELS", default_value = "")]
    labels: String,
    /// Taints set when the node is created: `k=v:Effect,k:Effect`.
    #[arg(long, env = "BERTH_NODE_TAINTS", default_value = "")]
    taints: String,
    /// Capacity (and allocatable), over the defaults cpu=4,memory=16Gi,pods=110,ephemeral-storage=100Gi.
    #[arg(long, env = "BERTH_NODE_CAPACITY", default_value = "")]
    capacity: String,
    /// Node pool: sets the `berth.dev/pool` label.
    #[arg(long, env = "BERTH_NODE_POOL")]
    pool: Option<String>,
    /// How often each node renews its Lease (`10s`, `500ms`).
    #[arg(long, env = "BERTH_HEARTBEAT_INTERVAL", default_value = "10s")]
    heartbeat_interval: String,
    /// Simulated runtime only: how long a pod takes to start.
    #[arg(long, env = "BERTH_START_LATENCY", default_value = "0s")]
    start_latency: String,
}

impl NodeFlags {
    /// The node named `name` in slot `slot`, with these flags applied.
    pub fn node(&self, name: String, slot: u32) -> anyhow::Result<NodeConfig> {
        let mut node = NodeConfig::new(name, slot);
        node.labels = config::parse_labels(&self.labels)?;
        node.taints = config::parse_taints(&self.taints)?;
        node.capacity = config::parse_capacity(&self.capacity)?;
        if let Some(pool) = &self.pool {
            node = node.with_pool(&config::parse_pool(pool)?);
        }
        Ok(node)
    }

    pub fn options(&self) -> anyhow::Result<AgentOptions> {
        let heartbeat_interval =
            config::parse_duration("--heartbeat-interval", &self.heartbeat_interval)?;
        anyhow::ensure!(
            !heartbeat_interval.is_zero(),
            "--heartbeat-interval must be more than 0 (kubelet renews every 10s)"
        );
        Ok(AgentOptions {
            heartbeat_interval,
            ..AgentOptions::default()
        })
    }

    pub fn simulated_runtime(&self, slot: u32) -> anyhow::Result<Arc<dyn Runtime>> {
        let start_latency: Duration =
            config::parse_duration("--start-latency", &self.start_latency)?;
        let runtime = SimulatedRuntime::new(SimulatedConfig {
            start_latency,
            fallback_pod_cidr: config::fallback_pod_cidr(slot),
            record_calls: false,
        })?;
        Ok(Arc::new(runtime))
    }
}

/// Flags of `berth agent`.
#[derive(Args, Debug)]
pub struct AgentArgs {
    #[command(flatten)]
    connection: ConnectionFlags,
    /// Container runtime: `simulated` (runs nothing; for tests and hollow nodes).
    #[arg(long, env = "BERTH_RUNTIME", default_value = "simulated", value_parser = ["simulated"])]
    runtime: String,
    /// Node name; defaults to the host name.
    #[arg(long, env = "BERTH_NODE_NAME")]
    name: Option<String>,
    #[command(flatten)]
    node: NodeFlags,
}

fn host_name() -> anyhow::Result<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .context("reading the host name; pass --name")?;
    Ok(name.trim().to_lowercase())
}

/// Runs `nodes` until SIGINT or SIGTERM (or until the agent fails).
pub async fn run_nodes(
    client: kube::Client,
    nodes: Nodes,
    options: AgentOptions,
) -> anyhow::Result<()> {
    let cancel = CancellationToken::new();
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(berth_agent::run(client, nodes, options, cancel.clone()));
    let outcome = tokio::select! {
        _ = shutdown_signal() => {
            tracing::info!("shutting down");
            cancel.cancel();
            None
        }
        joined = tasks.join_next() => joined,
    };
    let joined = match outcome {
        Some(joined) => Some(joined),
        None => tasks.join_next().await,
    };
    if let Some(result) = joined {
        result
            .context("the agent task panicked")?
            .context("the agent stopped")?;
    }
    Ok(())
}

/// Runs one node agent until SIGINT or SIGTERM.
pub async fn run(args: AgentArgs) -> anyhow::Result<()> {
    let name = match args.name {
        Some(name) => name,
        None => host_name()?,
    };
    let slot = config::slot_for_name(&name);
    let node = args.node.node(name, slot)?;
    let options = args.node.options()?;
    let runtime = match args.runtime.as_str() {
        "simulated" => args.node.simulated_runtime(slot)?,
        other => anyhow::bail!("--runtime {other:?}: only `simulated` exists so far"),
    };
    let client = args.connection.client().await?;
    tracing::info!(node = %node.name, runtime = %args.runtime, "berth agent starting");
    let nodes = Nodes::new(vec![NodeHandle::new(node, runtime)])?;
    run_nodes(client, nodes, options).await
}

pub async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("installing SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
