//! The SSH machine backend: a [`Machine`] is one authenticated SSH session
//! (over russh, optionally through a jump host) on which the provisioner runs
//! commands and uploads files. Host keys are always verified against a
//! known_hosts file; nothing here ever accepts a changed host key.

mod auth;
mod error;
mod exec;
pub mod fingerprint;
mod host_key;
pub mod known_hosts;
mod parallel;
mod upload;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use russh::client::Handle;
use tokio::io::{AsyncRead, AsyncWrite};
use tracing::Instrument as _;

pub use auth::Auth;
pub use error::Error;
pub use exec::shell_quote;
pub use exec::{ExitStatus, Output};
pub use host_key::HostKeyPolicy;
pub use parallel::{for_each, Outcome, Progress, Summary};
pub use upload::{Source, Uploaded};

use host_key::{Client, HandshakeError, Verifier};

/// Where to log in: user, host and SSH port.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    /// Remote user.
    pub user: String,
    /// Host name or address.
    pub host: String,
    /// SSH port.
    pub port: u16,
}

impl Target {
    /// A target on `host:port` as `user`.
    pub fn new(user: impl Into<String>, host: impl Into<String>, port: u16) -> Self {
        Target {
            user: user.into(),
            host: host.into(),
            port,
        }
    }
}

impl fmt::Display for Target {
    /// `user@host:port`, the name every message uses for the machine.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "{}@[{}]:{}", self.user, self.host, self.port)
        } else {
            write!(f, "{}@{}:{}", self.user, self.host, self.port)
        }
    }
}

/// How to reach and trust machines; shared by every machine of a cluster.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// How to authenticate (also on the jump host).
    pub auth: Auth,
    /// The OpenSSH known_hosts file that host keys are checked against.
    pub known_hosts: PathBuf,
    /// What to do with host keys the file does not have.
    pub policy: HostKeyPolicy,
    /// A host to go through (its sshd opens a TCP channel to the machine).
    pub jump: Option<Target>,
    /// Limit for TCP connect, handshake and authentication together.
    pub connect_timeout: Duration,
    /// Limit for a command run with [`Machine::run`] and for an upload.
    pub command_timeout: Duration,
}

impl ConnectOptions {
    /// Options with the defaults: strict host keys, no jump host, 10 s to
    /// connect, 10 minutes per command.
    pub fn new(auth: Auth, known_hosts: impl Into<PathBuf>) -> Self {
        ConnectOptions {
            auth,
            known_hosts: known_hosts.into(),
            policy: HostKeyPolicy::Strict,
            jump: None,
            connect_timeout: Duration::from_secs(10),
            command_timeout: Duration::from_secs(600),
        }
    }
}

/// One authenticated SSH session to a machine.
pub struct Machine {
    target: Target,
    name: String,
    handle: Handle<Client>,
    command_timeout: Duration,
    /// Kept open while the session tunnels through it.
    jump: Option<Box<Machine>>,
}

impl fmt::Debug for Machine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Machine").field("name", &self.name).finish()
    }
}

impl Machine {
    /// Connects to `target`, verifies its host key and authenticates,
    /// through the jump host if the options name one, all within
    /// `options.connect_timeout`.
    pub async fn connect(target: Target, options: &ConnectOptions) -> Result<Machine, Error> {
        let name = target.to_string();
        let span = tracing::info_span!("ssh_connect", machine = %name);
        let connecting = async {
            let jump = match &options.jump {
                Some(jump) => Some(Box::new(
                    Self::establish(jump.clone(), options, None).await?,
                )),
                None => None,
            };
            Self::establish(target, options, jump).await
        };
        tokio::time::timeout(options.connect_timeout, connecting.instrument(span))
            .await
            .unwrap_or(Err(Error::ConnectTimeout {
                machine: name,
                timeout: options.connect_timeout,
            }))
    }

    /// One hop: transport (TCP, or a channel through `jump`), handshake, auth.
    async fn establish(
        target: Target,
        options: &ConnectOptions,
        jump: Option<Box<Machine>>,
    ) -> Result<Machine, Error> {
        let name = target.to_string();
        let connect_error = |reason: String| Error::Connect {
            machine: name.clone(),
            reason,
        };
        let verifier = Verifier {
            machine: name.clone(),
            name: known_hosts::host_name(&target.host, target.port),
            known_hosts: options.known_hosts.clone(),
            policy: options.policy,
        };
        let config = Arc::new(russh::client::Config {
            nodelay: true,
            // Large windows keep a 100 MB binary flowing without waiting for
            // window adjustments every few packets.
            window_size: 16 << 20,
            ..Default::default()
        });
        let mut handle = match &jump {
            None => {
                let tcp = tokio::net::TcpStream::connect((target.host.as_str(), target.port))
                    .await
                    .map_err(|e| connect_error(e.to_string()))?;
                let _ = tcp.set_nodelay(true);
                handshake(config, tcp, Client::new(verifier), &name).await?
            }
            Some(jump) => {
                let channel = jump
                    .handle
                    .channel_open_direct_tcpip(
                        target.host.clone(),
                        target.port.into(),
                        "127.0.0.1",
                        0,
                    )
                    .await
                    .map_err(|e| {
                        connect_error(format!("jump host {} cannot reach it: {e}", jump.name))
                    })?;
                handshake(config, channel.into_stream(), Client::new(verifier), &name).await?
            }
        };
        auth::authenticate(&mut handle, &name, &target.user, &options.auth).await?;
        tracing::debug!(machine = %name, "connected");
        Ok(Machine {
            target,
            name,
            handle,
            command_timeout: options.command_timeout,
            jump,
        })
    }

    /// The target this session is logged in to.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// `user@host:port`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs `command` (through the remote user's shell), streaming its output
    /// lines to the log, and returns how it ended with what it printed; a
    /// non-zero exit is not an error here (see [`Machine::run_ok`]).
    pub async fn run(&self, command: &str) -> Result<Output, Error> {
        self.run_with_timeout(command, self.command_timeout).await
    }

    /// [`Machine::run`] with its own timeout; the command is killed after it.
    pub async fn run_with_timeout(
        &self,
        command: &str,
        timeout: Duration,
    ) -> Result<Output, Error> {
        let span = tracing::info_span!("ssh_run", machine = %self.name, command);
        exec::exec(&self.handle, &self.name, command, None, timeout)
            .instrument(span)
            .await
    }

    /// [`Machine::run`], turning a non-zero exit into [`Error::CommandFailed`].
    pub async fn run_ok(&self, command: &str) -> Result<Output, Error> {
        upload::checked(self.run(command).await?, &self.name, command)
    }

    /// Puts `source` at `remote` with permission bits `mode`, unless the
    /// remote file already has the same sha256 (then at most its mode is
    /// set). The content is streamed into a temporary file beside `remote`,
    /// checked there and renamed into place.
    pub async fn upload(
        &self,
        source: Source<'_>,
        remote: &str,
        mode: u32,
    ) -> Result<Uploaded, Error> {
        let span = tracing::info_span!("ssh_upload", machine = %self.name, remote);
        upload::upload(
            &self.handle,
            &self.name,
            source,
            remote,
            mode,
            self.command_timeout,
        )
        .instrument(span)
        .await
    }

    /// Ends the session (and the jump host's) and waits until russh's
    /// session task has finished, so nothing outlives the machine.
    pub async fn close(self) {
        let Machine {
            name, handle, jump, ..
        } = self;
        let _ = handle
            .disconnect(russh::Disconnect::ByApplication, "", "en")
            .await;
        match tokio::time::timeout(Duration::from_secs(5), handle).await {
            Ok(Ok(()) | Err(HandshakeError::Ssh(russh::Error::Disconnect))) => {}
            Ok(Err(e)) => tracing::debug!(machine = %name, "session ended: {e:?}"),
            Err(_) => {
                tracing::warn!(machine = %name, "session did not end within 5 s of disconnect")
            }
        }
        if let Some(jump) = jump {
            Box::pin(jump.close()).await;
        }
    }
}

/// The SSH handshake on `stream`; a refused host key comes back whole.
async fn handshake<S>(
    config: Arc<russh::client::Config>,
    stream: S,
    client: Client,
    name: &str,
) -> Result<Handle<Client>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    russh::client::connect_stream(config, stream, client)
        .await
        .map_err(|e| match e {
            HandshakeError::HostKey(e) => *e,
            HandshakeError::Ssh(e) => Error::Connect {
                machine: name.to_string(),
                reason: format!("SSH handshake failed: {e}"),
            },
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machine_names() {
        for (target, want) in [
            (Target::new("root", "10.0.0.1", 22), "root@10.0.0.1:22"),
            (Target::new("admin", "node-1", 2222), "admin@node-1:2222"),
            (Target::new("root", "fd00::1", 22), "root@[fd00::1]:22"),
        ] {
            assert_eq!(target.to_string(), want);
        }
    }
}
