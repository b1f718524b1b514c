//! Growing and shrinking a running cluster one machine at a time:
//! `berth cluster add-node` and `remove-node`. `cluster.toml` stays the
//! source of truth: each command changes the file (keeping the user's
//! layout) as well as the machines, so a later `create` builds the same.

mod add;
mod remove;

use std::path::{Path, PathBuf};

pub use add::{add_node, Added};
pub use remove::{remove_node, RemoveOptions, Removed};

use crate::config::edit::EditError;
use crate::config::{self, Cluster, ConfigError, MasterRule};
use crate::create::CreateError;
use crate::drain::DrainError;

/// Why adding or removing a machine stopped; a re-run after fixing the
/// cause goes on from there.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The file does not parse or breaks a rule.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The file cannot be changed as asked.
    #[error(transparent)]
    Edit(#[from] EditError),
    /// The file could not be written.
    #[error("writing {file}: {reason}")]
    Write {
        /// The file.
        file: String,
        /// What failed.
        reason: String,
    },
    /// The cluster has not been created from this state directory.
    #[error("no cluster state in {dir} (no admin.kubeconfig); run `berth cluster create` first or pass --state-dir")]
    NotCreated {
        /// The state directory.
        dir: PathBuf,
    },
    /// No machine of the file has that Node name.
    #[error("{file} has no machine named {name:?}; its machines are: {known}")]
    NotInFile {
        /// The file.
        file: String,
        /// The name asked for.
        name: String,
        /// The machines' names.
        known: String,
    },
    /// The removal would break the cluster.
    #[error("refusing to remove {name}: {reason}")]
    Refused {
        /// The machine.
        name: String,
        /// Why, and what to do instead.
        reason: String,
    },
    /// Setting the machine up failed.
    #[error(transparent)]
    Create(#[from] CreateError),
    /// Draining the Node failed.
    #[error(transparent)]
    Drain(#[from] DrainError),
    /// etcd did not remove the member.
    #[error("{0}")]
    Etcd(String),
    /// Stopping and cleaning the machine failed.
    #[error("cleaning {name}: {reason}")]
    Machine {
        /// The machine.
        name: String,
        /// What failed.
        reason: String,
    },
    /// The API failed.
    #[error("the API at {url}: {reason}")]
    Api {
        /// The URL.
        url: String,
        /// What failed.
        reason: String,
    },
}

/// The file's text and what it describes, with the master counts a running
/// cluster may have.
fn read(file: &Path) -> Result<(String, String, Cluster), NodeError> {
    let name = file.display().to_string();
    let text = std::fs::read_to_string(file).map_err(|source| ConfigError::Read {
        file: name.clone(),
        source,
    })?;
    let cluster = config::parse_with(&name, &text, MasterRule::Existing)?;
    Ok((name, text, cluster))
}

/// Replaces the file's contents in one step (a new file renamed over it),
/// so an interrupted write never leaves half a file.
fn write(file: &Path, text: &str) -> Result<(), NodeError> {
    let failed = |e: std::io::Error| NodeError::Write {
        file: file.display().to_string(),
        reason: e.to_string(),
    };
    let mut temporary = file.as_os_str().to_owned();
    temporary.push(".berth-new");
    let temporary = PathBuf::from(temporary);
    if let Ok(metadata) = std::fs::metadata(file) {
        std::fs::write(&temporary, text).map_err(failed)?;
        std::fs::set_permissions(&temporary, metadata.permissions()).map_err(failed)?;
    } else {
        std::fs::write(&temporary, text).map_err(failed)?;
    }
    std::fs::rename(&temporary, file).map_err(failed)
}

/// Refuses a state directory `create` has not filled.
fn created(state_dir: &Path) -> Result<(), NodeError> {
    if state_dir.join("admin.kubeconfig").is_file() {
        Ok(())
    } else {
        Err(NodeError::NotCreated {
            dir: state_dir.to_owned(),
        })
    }
}
