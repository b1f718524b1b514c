//! `berth cluster add-node POOL HOST`: writes the machine into the pool in
//! `cluster.toml`, then joins it exactly as `create` joins pool machines
//! and waits for its Node to be Ready. A re-run finds it in the file and
//! changes nothing there; the join itself is idempotent.

use std::path::Path;

use super::{created, read, write, NodeError};
use crate::config::edit::{self, NewMachine};
use crate::config::{self, MasterRule};
use crate::create::{self, CreateOptions, State};
use crate::ssh::Summary;

/// What `add_node` did.
#[derive(Debug)]
pub struct Added {
    /// The machine's Node name.
    pub name: String,
    /// Whether the file was changed (false: the pool listed it already).
    pub file_changed: bool,
    /// What was done on the machine.
    pub summary: Summary,
}

/// Adds `machine` to pool `pool` of the cluster in `file` and joins it.
pub async fn add_node(
    file: &Path,
    pool: &str,
    machine: &NewMachine,
    options: &CreateOptions,
) -> Result<Added, NodeError> {
    let (name, text, cluster) = read(file)?;
    created(&options.state_dir)?;
    let edited = edit::add_pool_machine(&name, &text, &cluster, pool, machine)?;
    let file_changed = edited.is_some();
    let cluster = match edited {
        Some(text) => {
            let cluster = config::parse_with(&name, &text, MasterRule::Existing)?;
            write(file, &text)?;
            tracing::info!(file = %name, pool, host = %machine.host, "added the machine to the file");
            cluster
        }
        None => cluster,
    };
    let pool = cluster
        .pools
        .iter()
        .find(|p| p.name == pool)
        .expect("the edit checked the pool");
    let added = pool
        .machines
        .iter()
        .find(|m| m.host == machine.host)
        .expect("the edit put the machine in the pool");
    let state = State::open(&options.state_dir, &cluster)?;
    let url = create::api_url(&cluster.masters[0]);
    let summary = create::join_machines(&cluster, &state, options, &url, &[(pool, added)]).await?;
    Ok(Added {
        name: added.name.clone(),
        file_changed,
        summary,
    })
}
