//! `berth sim`: many simulated nodes in one process (hollow nodes, as
//! kubemark's), sharing one API client and one pod watch, for tests and
//! scheduler benchmarks. Each node behaves as `berth agent --runtime simulated`.

use anyhow::Context;
use berth_agent::{NodeHandle, Nodes};
use clap::Args;

use crate::agent::{ConnectionFlags, NodeFlags};

/// Flags of `berth sim`.
#[derive(Args, Debug)]
pub struct SimArgs {
    #[command(flatten)]
    connection: ConnectionFlags,
    /// How many nodes to run.
    #[arg(long, env = "BERTH_SIM_NODES", default_value_t = 1)]
    nodes: u32,
    /// Node names are PREFIX0, PREFIX1, …
    #[arg(long, env = "BERTH_SIM_NAME_PREFIX", default_value = "sim-")]
    name_prefix: String,
    #[command(flatten)]
    node: NodeFlags,
}

/// Runs the simulated nodes until SIGINT or SIGTERM.
pub async fn run(args: SimArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.nodes > 0, "--nodes must be at least 1");
    let options = args.node.options()?;
    let mut handles = Vec::with_capacity(args.nodes as usize);
    for slot in 0..args.nodes {
        let name = format!("{}{slot}", args.name_prefix);
        let node = args
            .node
            .node(name, slot)
            .with_context(|| format!("configuring node {}{slot}", args.name_prefix))?;
        handles.push(NodeHandle::new(node, args.node.simulated_runtime(slot)?));
    }
    let nodes = Nodes::new(handles)?;
    let client = args.connection.client().await?;
    tracing::info!(nodes = args.nodes, prefix = %args.name_prefix, "berth sim starting");
    crate::agent::run_nodes(client, nodes, options).await
}
