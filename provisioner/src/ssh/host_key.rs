//! Host key verification during the SSH handshake: the russh client handler
//! that checks the presented key against a known_hosts file under a policy,
//! appending new keys only when the policy allows it (never a changed one).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use russh::keys::PublicKey;

use super::error::Error;
use super::fingerprint;
use super::known_hosts::{self, Verdict};

/// What to do with a host key that known_hosts does not have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HostKeyPolicy {
    /// Refuse it (OpenSSH `StrictHostKeyChecking yes`): keys must be put in
    /// known_hosts beforehand.
    #[default]
    Strict,
    /// Trust on first use (OpenSSH `accept-new`): append it to known_hosts and
    /// go on. A key different from a recorded one is still refused.
    AcceptNew,
}

/// Checks one machine's host key.
#[derive(Debug, Clone)]
pub(crate) struct Verifier {
    /// `user@host:port`, for messages.
    pub machine: String,
    /// The name in known_hosts (`host` or `[host]:port`).
    pub name: String,
    /// The file consulted.
    pub known_hosts: PathBuf,
    /// What to do with unknown keys.
    pub policy: HostKeyPolicy,
}

impl Verifier {
    /// Accepts `key` or says why not; appends it under [`HostKeyPolicy::AcceptNew`].
    pub fn verify(&self, key: &PublicKey) -> Result<(), Error> {
        let unreadable = |reason: String| Error::Connect {
            machine: self.machine.clone(),
            reason: format!("unreadable host key: {reason}"),
        };
        let blob = key.to_bytes().map_err(|e| unreadable(e.to_string()))?;
        let key_type = known_hosts::key_type(&blob)
            .ok_or_else(|| unreadable("no key type".to_string()))?
            .to_string();
        let text = match std::fs::read_to_string(&self.known_hosts) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(source) => return Err(self.file_error(source)),
        };
        let entries = known_hosts::parse(&text);
        let fingerprint = fingerprint::sha256(&blob);
        match known_hosts::check(&entries, &self.name, &key_type, &blob) {
            Verdict::Known => Ok(()),
            Verdict::Changed { line } => Err(Error::ChangedHostKey {
                machine: self.machine.clone(),
                fingerprint,
                key_type,
                known_hosts: self.known_hosts.clone(),
                line,
            }),
            Verdict::Revoked { line } => Err(Error::RevokedHostKey {
                machine: self.machine.clone(),
                fingerprint,
                known_hosts: self.known_hosts.clone(),
                line,
            }),
            Verdict::Unknown => match self.policy {
                HostKeyPolicy::Strict => Err(Error::UnknownHostKey {
                    machine: self.machine.clone(),
                    short_type: short_key_type(&key_type).to_string(),
                    fingerprint,
                    key_type,
                    known_hosts: self.known_hosts.clone(),
                }),
                HostKeyPolicy::AcceptNew => {
                    let line = known_hosts::entry_line(&self.name, &key_type, &blob);
                    append(&self.known_hosts, &text, &line).map_err(|e| self.file_error(e))?;
                    tracing::warn!(
                        machine = %self.machine,
                        %fingerprint,
                        known_hosts = %self.known_hosts.display(),
                        "new host key accepted and recorded"
                    );
                    Ok(())
                }
            },
        }
    }

    fn file_error(&self, source: std::io::Error) -> Error {
        Error::KnownHostsFile {
            machine: self.machine.clone(),
            path: self.known_hosts.clone(),
            source,
        }
    }
}

/// Appends `line` in one write (O_APPEND), after a newline if the file's last
/// line lacks one; creates the file (mode 0600) and its folder if needed.
fn append(path: &Path, current: &str, line: &str) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)?;
    let text = if current.is_empty() || current.ends_with('\n') {
        line.to_string()
    } else {
        format!("\n{line}")
    };
    file.write_all(text.as_bytes())
}

/// The name OpenSSH gives a key type in host key file names.
fn short_key_type(key_type: &str) -> &str {
    match key_type {
        "ssh-ed25519" => "ed25519",
        "ssh-rsa" => "rsa",
        t if t.starts_with("ecdsa-") => "ecdsa",
        t => t,
    }
}

/// What the russh handler can fail with: the session's own errors, or our
/// host key verdict (kept whole so the caller gets the precise message).
#[derive(Debug)]
pub(crate) enum HandshakeError {
    /// Transport or protocol failure.
    Ssh(russh::Error),
    /// The host key was refused.
    HostKey(Box<Error>),
}

impl From<russh::Error> for HandshakeError {
    fn from(e: russh::Error) -> Self {
        HandshakeError::Ssh(e)
    }
}

/// The russh client handler: verifies the host key, nothing else.
pub(crate) struct Client {
    verifier: Verifier,
}

impl Client {
    /// A handler that verifies with `verifier`.
    pub fn new(verifier: Verifier) -> Self {
        Client { verifier }
    }
}

impl russh::client::Handler for Client {
    type Error = HandshakeError;

    async fn check_server_key(&mut self, key: &PublicKey) -> Result<bool, Self::Error> {
        self.verifier
            .verify(key)
            .map(|()| true)
            .map_err(|e| HandshakeError::HostKey(Box::new(e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_key_types() {
        for (long, short) in [
            ("ssh-ed25519", "ed25519"),
            ("ssh-rsa", "rsa"),
            ("ecdsa-sha2-nistp256", "ecdsa"),
            ("ssh-dss", "ssh-dss"),
        ] {
            assert_eq!(short_key_type(long), short);
        }
    }

    #[test]
    fn append_adds_missing_newline_and_creates_folders() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/known_hosts");
        append(&path, "", "a ssh-ed25519 AAAA\n").unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "a ssh-ed25519 AAAA\n"
        );
        std::fs::write(&path, "x ssh-rsa BBBB").unwrap();
        append(&path, "x ssh-rsa BBBB", "a ssh-ed25519 AAAA\n").unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "x ssh-rsa BBBB\na ssh-ed25519 AAAA\n"
        );
    }
}
