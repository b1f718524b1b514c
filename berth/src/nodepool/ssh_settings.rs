//! The `ssh` provider's settings, from the flags (or their environment
//! variables) of `berth server` and `berth nodepool-controller`: how to
//! log in to pool hosts and what they join. The provider is on only when a
//! key file is given.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use berth_provisioner::pool_hosts::JoinSettings;
use berth_provisioner::remote::expand_home;
use berth_provisioner::ssh::{Auth, ConnectOptions, HostKeyPolicy};
use clap::Args;

/// Flags of the `ssh` machine provider.
#[derive(Args, Debug, Clone, Default)]
pub struct SshProviderFlags {
    /// Private key the `ssh` NodePool provider logs in to pool hosts with;
    /// the provider is registered only when this is set.
    #[arg(long, env = "BERTH_NODEPOOL_SSH_KEY_FILE")]
    nodepool_ssh_key_file: Option<PathBuf>,
    /// OpenSSH known_hosts file the pool hosts' keys are checked against.
    #[arg(
        long,
        env = "BERTH_NODEPOOL_SSH_KNOWN_HOSTS",
        default_value = "~/.ssh/known_hosts"
    )]
    nodepool_ssh_known_hosts: PathBuf,
    /// Trust (and record) the key of a pool host the known_hosts file does
    /// not list yet; a changed key is always refused.
    #[arg(long, env = "BERTH_NODEPOOL_SSH_ACCEPT_NEW_HOST_KEYS")]
    nodepool_ssh_accept_new_host_keys: bool,
    /// API server URL pool hosts join, comma-separated to fail over
    /// (`berth server`: its own URL).
    #[arg(long, env = "BERTH_NODEPOOL_SSH_SERVER")]
    nodepool_ssh_server: Option<String>,
    /// CA certificate pool hosts trust the API server with (`berth server`:
    /// its own `DATA_DIR/tls/ca.crt`).
    #[arg(long, env = "BERTH_NODEPOOL_SSH_CA_FILE")]
    nodepool_ssh_ca_file: Option<PathBuf>,
    /// berth binary uploaded to pool hosts (default: this executable).
    #[arg(long, env = "BERTH_NODEPOOL_SSH_BINARY")]
    nodepool_ssh_binary: Option<PathBuf>,
    /// `berth agent --runtime` on pool hosts: `cri` (containerd) or
    /// `simulated` (hollow nodes, for tests and benchmarks).
    #[arg(long, env = "BERTH_NODEPOOL_SSH_RUNTIME", default_value = "cri", value_parser = ["cri", "simulated"])]
    nodepool_ssh_runtime: String,
    /// A further `berth agent` flag for pool hosts (repeat it:
    /// `--nodepool-ssh-agent-arg=--network-mode --nodepool-ssh-agent-arg=vxlan`).
    #[arg(long, allow_hyphen_values = true)]
    nodepool_ssh_agent_arg: Vec<String>,
    /// The cluster's name in the marker each held host carries, so pools of
    /// two clusters never take each other's hosts.
    #[arg(long, env = "BERTH_NODEPOOL_SSH_CLUSTER", default_value = "berth")]
    nodepool_ssh_cluster: String,
    /// Folder where the provider keeps the bootstrap token it joins hosts
    /// with (`berth server`: `DATA_DIR/nodepool-ssh`).
    #[arg(long, env = "BERTH_NODEPOOL_SSH_STATE_DIR")]
    nodepool_ssh_state_dir: Option<PathBuf>,
    /// Limit for connecting to a pool host (`10s`).
    #[arg(long, default_value = "10s", value_parser = crate::server::parse_duration)]
    nodepool_ssh_connect_timeout: Duration,
}

/// What `berth server` fills in when the flags leave it out.
#[derive(Debug, Clone, Default)]
pub struct Defaults {
    /// The server's own URL.
    pub server: Option<String>,
    /// The server's own CA.
    pub ca_file: Option<PathBuf>,
    /// A folder of the server's data directory.
    pub state_dir: Option<PathBuf>,
}

/// Everything the `ssh` provider needs.
#[derive(Debug, Clone)]
pub struct SshSettings {
    /// What hosts join.
    pub join: JoinSettings,
    /// How to reach them.
    pub connect: ConnectOptions,
    /// The cluster name in markers.
    pub cluster: String,
    /// Where the bootstrap token is kept.
    pub state_dir: PathBuf,
}

impl SshProviderFlags {
    /// The settings, or None when no key file turns the provider on.
    pub fn settings(&self, defaults: Defaults) -> anyhow::Result<Option<SshSettings>> {
        let Some(key) = &self.nodepool_ssh_key_file else {
            return Ok(None);
        };
        let required = |flag: &str| format!("--nodepool-ssh-key-file needs --{flag}");
        let server = self
            .nodepool_ssh_server
            .clone()
            .or(defaults.server)
            .with_context(|| required("nodepool-ssh-server"))?;
        let ca_file = self
            .nodepool_ssh_ca_file
            .clone()
            .or(defaults.ca_file)
            .with_context(|| required("nodepool-ssh-ca-file"))?;
        let state_dir = self
            .nodepool_ssh_state_dir
            .clone()
            .or(defaults.state_dir)
            .with_context(|| required("nodepool-ssh-state-dir"))?;
        let ca_pem = std::fs::read(&ca_file)
            .with_context(|| format!("reading the CA pool hosts trust: {}", ca_file.display()))?;
        std::fs::create_dir_all(&state_dir)
            .with_context(|| format!("creating {}", state_dir.display()))?;
        let binary = match &self.nodepool_ssh_binary {
            Some(binary) => binary.clone(),
            None => std::env::current_exe().context("finding this berth binary")?,
        };
        let mut connect = ConnectOptions::new(
            Auth::KeyFile(expand_home(key)),
            expand_home(&self.nodepool_ssh_known_hosts),
        );
        if self.nodepool_ssh_accept_new_host_keys {
            connect.policy = HostKeyPolicy::AcceptNew;
        }
        connect.connect_timeout = self.nodepool_ssh_connect_timeout;
        Ok(Some(SshSettings {
            join: JoinSettings {
                server,
                ca_pem,
                binary,
                runtime: self.nodepool_ssh_runtime.clone(),
                agent_args: self.nodepool_ssh_agent_arg.clone(),
            },
            connect,
            cluster: self.nodepool_ssh_cluster.clone(),
            state_dir,
        }))
    }
}

/// `berth server`'s defaults: its URL, its CA and a folder of its data directory.
pub fn server_defaults(url: &str, data_dir: &Path) -> Defaults {
    Defaults {
        server: Some(url.to_owned()),
        ca_file: Some(data_dir.join("tls/ca.crt")),
        state_dir: Some(data_dir.join("nodepool-ssh")),
    }
}
