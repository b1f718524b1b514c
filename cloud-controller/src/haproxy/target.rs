//! Where the `haproxy` provider's rendered configuration goes: a file on
//! this host or one on a load-balancer host reached some other way (SSH,
//! from `berth`). The provider only renders; a [`ConfigTarget`] puts the
//! text in place and has HAProxy load it, so each way of reaching HAProxy
//! is one small implementation.

use std::path::PathBuf;

/// Why HAProxy did not get a new configuration; every kind is retried by
/// the controller with back-off, and the file in place is left as it was
/// unless the reload is what failed.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// The file could not be written or moved into place (or the host not
    /// reached).
    #[error("writing haproxy.cfg failed: {0}")]
    Write(String),
    /// HAProxy refused the new file (`haproxy -c`); the old one stays.
    #[error("haproxy refused the new configuration: {0}")]
    Invalid(String),
    /// The file is in place but the reload command failed.
    #[error("reloading haproxy failed: {0}")]
    Reload(String),
    /// A command on the load-balancer host (putting the pool's addresses
    /// on its interface) failed.
    #[error("{0}")]
    Command(String),
}

/// A place HAProxy reads its configuration from.
#[async_trait::async_trait]
pub trait ConfigTarget: Send + Sync + std::fmt::Debug {
    /// Replaces the configuration with `text` atomically (readers see the
    /// old file or the new one, never part of one) and reloads HAProxy.
    async fn install(&self, text: &str) -> Result<(), InstallError>;

    /// Runs `commands` (program and arguments) in order on the host HAProxy
    /// runs on, stopping at the first that fails, and returns each one's
    /// standard output: the `ip` commands of `--haproxy-interface`.
    async fn run(&self, commands: &[Vec<String>]) -> Result<Vec<String>, InstallError>;
}

/// `haproxy.cfg` on this host: written beside and renamed into place, then
/// the reload command, if any, is run.
#[derive(Debug, Clone)]
pub struct LocalFile {
    path: PathBuf,
    /// Run after the file changed (`systemctl reload haproxy`); None when
    /// something else watches the file.
    reload: Option<Vec<String>>,
    /// HAProxy's stats socket, asked after each reload which file it runs.
    stats_socket: Option<PathBuf>,
}

/// How long a reloaded HAProxy may take to report the new file before the
/// reload is sent again.
const RELOAD_ATTEMPT_PATIENCE: std::time::Duration = std::time::Duration::from_secs(3);

/// Reloads sent before a file HAProxy does not run is an error.
const RELOAD_ATTEMPTS: u32 = 3;

impl LocalFile {
    /// A target writing `path` and running `reload` (program and
    /// arguments) after each change.
    pub fn new(path: PathBuf, reload: Option<Vec<String>>) -> Self {
        LocalFile {
            path,
            reload,
            stats_socket: None,
        }
    }

    /// After each reload, asks HAProxy on `socket` (`show info`) whether it
    /// runs the new file, so a reload that kept the old one (a signal
    /// cannot fail) is an error instead of a silent success.
    pub fn verified_through(mut self, socket: PathBuf) -> Self {
        self.stats_socket = Some(socket);
        self
    }
}

#[async_trait::async_trait]
impl ConfigTarget for LocalFile {
    async fn install(&self, text: &str) -> Result<(), InstallError> {
        let failed = |e: std::io::Error| InstallError::Write(e.to_string());
        let staging = self.path.with_extension("cfg.new");
        tokio::fs::write(&staging, text).await.map_err(failed)?;
        tokio::fs::rename(&staging, &self.path)
            .await
            .map_err(failed)?;
        let Some(reload) = &self.reload else {
            return Ok(());
        };
        let (Some(socket), Some(stamp)) = (&self.stats_socket, super::version::stamp_of(text))
        else {
            return run_local(reload)
                .await
                .map(drop)
                .map_err(InstallError::Reload);
        };
        // HAProxy's master re-executes itself on a reload and a signal that
        // arrives meanwhile can be lost (seen with two `kill -USR2` a moment
        // apart): the reload is sent again until the new file runs.
        let mut tries = 0;
        loop {
            tries += 1;
            run_local(reload).await.map_err(InstallError::Reload)?;
            let waited =
                super::version::wait_until_running(socket, stamp, RELOAD_ATTEMPT_PATIENCE).await;
            match waited {
                Ok(()) => return Ok(()),
                Err(e) if tries >= RELOAD_ATTEMPTS => {
                    return Err(InstallError::Reload(format!("{e} ({tries} reloads sent)")));
                }
                Err(_) => continue,
            }
        }
    }

    async fn run(&self, commands: &[Vec<String>]) -> Result<Vec<String>, InstallError> {
        let mut outputs = Vec::with_capacity(commands.len());
        for command in commands {
            outputs.push(run_local(command).await.map_err(InstallError::Command)?);
        }
        Ok(outputs)
    }
}

/// Runs `command` here; its standard output, or why it failed (with what it
/// wrote to standard error).
async fn run_local(command: &[String]) -> Result<String, String> {
    let Some((program, args)) = command.split_first() else {
        return Ok(String::new());
    };
    let output = tokio::process::Command::new(program)
        .args(args)
        .output()
        .await
        .map_err(|e| format!("{program}: {e}"))?;
    if output.status.success() {
        return Ok(String::from_utf8_lossy(&output.stdout).into_owned());
    }
    Err(format!(
        "{} exited with {}: {}",
        command.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stderr).trim()
    ))
}
