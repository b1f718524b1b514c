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
}

/// A place HAProxy reads its configuration from.
#[async_trait::async_trait]
pub trait ConfigTarget: Send + Sync + std::fmt::Debug {
    /// Replaces the configuration with `text` atomically (readers see the
    /// old file or the new one, never part of one) and reloads HAProxy.
    async fn install(&self, text: &str) -> Result<(), InstallError>;
}

/// `haproxy.cfg` on this host: written beside and renamed into place, then
/// the reload command, if any, is run.
#[derive(Debug, Clone)]
pub struct LocalFile {
    path: PathBuf,
    /// Run after the file changed (`systemctl reload haproxy`); None when
    /// something else watches the file.
    reload: Option<Vec<String>>,
}

impl LocalFile {
    /// A target writing `path` and running `reload` (program and
    /// arguments) after each change.
    pub fn new(path: PathBuf, reload: Option<Vec<String>>) -> Self {
        LocalFile { path, reload }
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
        let Some((program, args)) = self.reload.as_ref().and_then(|r| r.split_first()) else {
            return Ok(());
        };
        let status = tokio::process::Command::new(program)
            .args(args)
            .status()
            .await;
        match status {
            Ok(status) if status.success() => Ok(()),
            Ok(status) => Err(InstallError::Reload(format!(
                "{program} exited with {status}"
            ))),
            Err(e) => Err(InstallError::Reload(format!("{program}: {e}"))),
        }
    }
}
