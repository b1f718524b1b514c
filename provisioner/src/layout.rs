//! Where berth puts things on a machine: everything under the machine's
//! `data_dir`, so re-runs find what earlier runs left and `cluster delete`
//! removes one folder.

use std::path::{Path, PathBuf};

/// The paths on one machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    /// The layout under `data_dir`.
    pub fn new(data_dir: &Path) -> Self {
        Self {
            root: data_dir.to_owned(),
        }
    }

    /// The data directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The installed berth executable.
    pub fn binary(&self) -> PathBuf {
        self.root.join("bin/berth")
    }

    /// `berth server --data-dir`.
    pub fn server_dir(&self) -> PathBuf {
        self.root.join("server")
    }

    /// `berth agent --data-dir`.
    pub fn agent_dir(&self) -> PathBuf {
        self.root.join("agent")
    }

    /// The etcd member's data directory.
    pub fn etcd_dir(&self) -> PathBuf {
        self.root.join("etcd")
    }

    /// Certificates the provisioner hands the machine (etcd's, the agent's CA).
    pub fn pki_dir(&self) -> PathBuf {
        self.root.join("pki")
    }

    /// The log of service `name`.
    pub fn log(&self, name: &str) -> PathBuf {
        self.root.join(format!("logs/{name}.log"))
    }

    /// The supervisor's process id of service `name`.
    pub fn pid_file(&self, name: &str) -> PathBuf {
        self.root.join(format!("run/{name}.pid"))
    }

    /// The command line service `name` was last started with.
    pub fn command_file(&self, name: &str) -> PathBuf {
        self.root.join(format!("run/{name}.cmd"))
    }
}
