//! From a machine of `cluster.toml` to an SSH session: its target, key or
//! agent, known_hosts file (with `~` expanded), policy and jump host.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::{self, Machine};
use crate::ssh::{self, ConnectOptions, Target};

/// Why a machine's SSH settings cannot be used as they are.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// The machine uses the agent but none is running.
    #[error("{machine}: uses the ssh-agent but SSH_AUTH_SOCK is not set; start an agent (`eval $(ssh-agent)`, `ssh-add`) or set key_file")]
    NoAgent {
        /// The machine.
        machine: String,
    },
}

/// The SSH target of `machine`.
pub fn target(machine: &Machine) -> Target {
    Target::new(&machine.ssh.user, &machine.host, machine.ssh.port)
}

/// `~/…` relative to `$HOME` (known_hosts and key paths as users write them).
pub fn expand_home(path: &Path) -> PathBuf {
    match (path.strip_prefix("~"), std::env::var_os("HOME")) {
        (Ok(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => path.to_owned(),
    }
}

/// How to connect to `machine`, with `timeout` for connecting.
pub fn options(machine: &Machine, timeout: Duration) -> Result<ConnectOptions, SettingsError> {
    let auth = match &machine.ssh.auth {
        config::Auth::KeyFile(path) => ssh::Auth::KeyFile(expand_home(path)),
        config::Auth::Agent => {
            ssh::Auth::agent_from_env().ok_or_else(|| SettingsError::NoAgent {
                machine: target(machine).to_string(),
            })?
        }
    };
    let mut options = ConnectOptions::new(auth, expand_home(&machine.ssh.known_hosts));
    options.policy = match machine.ssh.host_key_policy {
        config::HostKeyPolicy::Strict => ssh::HostKeyPolicy::Strict,
        config::HostKeyPolicy::AcceptNew => ssh::HostKeyPolicy::AcceptNew,
    };
    options.jump = machine.ssh.jump_host.as_ref().map(|jump| {
        Target::new(
            jump.user.as_deref().unwrap_or(&machine.ssh.user),
            &jump.host,
            jump.port,
        )
    });
    options.connect_timeout = timeout;
    Ok(options)
}

/// Connects to `machine`, runs `script` there and hangs up: its stdout, or
/// what failed (naming the machine), for one-shot commands.
pub async fn run_once(
    machine: &Machine,
    timeout: Duration,
    script: &str,
) -> Result<String, String> {
    let options = options(machine, timeout).map_err(|e| e.to_string())?;
    let session = ssh::Machine::connect(target(machine), &options)
        .await
        .map_err(|e| e.to_string())?;
    let output = session.run_ok(script).await;
    session.close().await;
    output.map(|o| o.stdout).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn home_is_expanded_only_at_the_start() {
        std::env::set_var("HOME", "/home/ops");
        assert_eq!(
            expand_home(Path::new("~/.ssh/known_hosts")),
            PathBuf::from("/home/ops/.ssh/known_hosts")
        );
        assert_eq!(
            expand_home(Path::new("/etc/ssh/known_hosts")),
            PathBuf::from("/etc/ssh/known_hosts")
        );
        assert_eq!(expand_home(Path::new("a/~/b")), PathBuf::from("a/~/b"));
    }
}
