//! What can go wrong talking to a machine over SSH. Every variant names the
//! machine (`user@host:port`) and says what to do about it.

use std::path::PathBuf;
use std::time::Duration;

/// An SSH failure on one machine.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// TCP connect or SSH handshake failed.
    #[error("{machine}: cannot connect: {reason}; check that the machine is up, that sshd listens on that address and port, and that no firewall is in the way")]
    Connect {
        /// The machine.
        machine: String,
        /// What failed.
        reason: String,
    },
    /// TCP connect, handshake and authentication took longer than allowed.
    #[error("{machine}: no SSH session within {timeout:?}; check that the machine is up and reachable (and the jump host, if any)")]
    ConnectTimeout {
        /// The machine.
        machine: String,
        /// The limit that passed.
        timeout: Duration,
    },
    /// The host presented a key known_hosts does not have, under the strict policy.
    #[error("{machine}: host key {fingerprint} ({key_type}) is not in {known_hosts}; verify it on the machine (`ssh-keygen -lf /etc/ssh/ssh_host_{short_type}_key.pub`) and add it, or use the accept-new known_hosts policy")]
    UnknownHostKey {
        /// The machine.
        machine: String,
        /// The key's SHA256 fingerprint.
        fingerprint: String,
        /// The key algorithm.
        key_type: String,
        /// The algorithm as the host key file names it (`ed25519`, `rsa`, …).
        short_type: String,
        /// The known_hosts file consulted.
        known_hosts: PathBuf,
    },
    /// The host presented a different key than the one recorded.
    #[error("{machine}: HOST KEY CHANGED: it presented {fingerprint} ({key_type}) but {known_hosts} line {line} records another key; someone may be intercepting the connection, or the machine was reinstalled: verify the new key, then remove the old line (`ssh-keygen -R` with the host name)")]
    ChangedHostKey {
        /// The machine.
        machine: String,
        /// The presented key's SHA256 fingerprint.
        fingerprint: String,
        /// The key algorithm.
        key_type: String,
        /// The known_hosts file consulted.
        known_hosts: PathBuf,
        /// The line that records the other key.
        line: usize,
    },
    /// The host presented a key marked `@revoked`.
    #[error("{machine}: host key {fingerprint} is revoked in {known_hosts} line {line}; the machine must get a new host key")]
    RevokedHostKey {
        /// The machine.
        machine: String,
        /// The presented key's SHA256 fingerprint.
        fingerprint: String,
        /// The known_hosts file consulted.
        known_hosts: PathBuf,
        /// The `@revoked` line.
        line: usize,
    },
    /// known_hosts could not be read or appended to.
    #[error("{machine}: cannot use known_hosts file {path}: {source}")]
    KnownHostsFile {
        /// The machine.
        machine: String,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The private key file could not be loaded.
    #[error("{machine}: cannot load private key {path}: {reason}; keys must be unencrypted OpenSSH or PEM files (use the ssh-agent for keys with a passphrase)")]
    KeyFile {
        /// The machine.
        machine: String,
        /// The key file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The ssh-agent could not be reached or holds no keys.
    #[error("{machine}: ssh-agent: {reason}; start one and `ssh-add` a key, or name a key file")]
    Agent {
        /// The machine.
        machine: String,
        /// Why.
        reason: String,
    },
    /// The server refused every key offered.
    #[error("{machine}: authentication refused for user {user} with {offered}; add the public key to ~{user}/.ssh/authorized_keys on the machine, or check the user name")]
    AuthRejected {
        /// The machine.
        machine: String,
        /// The remote user.
        user: String,
        /// The keys tried (file or agent key fingerprints).
        offered: String,
    },
    /// The SSH session failed after it was set up.
    #[error("{machine}: SSH session failed while {doing}: {reason}; re-run once the machine is reachable again")]
    Session {
        /// The machine.
        machine: String,
        /// What was going on.
        doing: String,
        /// What failed.
        reason: String,
    },
    /// A command ran past its timeout.
    #[error("{machine}: `{command}` did not finish within {timeout:?}; its process group was killed; look at what it waits for on the machine or raise the timeout")]
    CommandTimeout {
        /// The machine.
        machine: String,
        /// The command.
        command: String,
        /// The limit that passed.
        timeout: Duration,
    },
    /// A command exited with a failure status.
    #[error("{machine}: `{command}` failed ({status}): {stderr}")]
    CommandFailed {
        /// The machine.
        machine: String,
        /// The command.
        command: String,
        /// How it ended.
        status: String,
        /// The end of its standard error.
        stderr: String,
    },
    /// A local file to upload could not be read.
    #[error("{machine}: cannot read {path} to upload it: {source}")]
    LocalFile {
        /// The machine.
        machine: String,
        /// The local file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The uploaded file's checksum on the machine differs from the local one.
    #[error("{machine}: upload of {remote} arrived corrupted (sha256 {got}, expected {expected}); it was not put in place; re-run the upload")]
    UploadCorrupted {
        /// The machine.
        machine: String,
        /// The remote path.
        remote: String,
        /// The sha256 found remotely.
        got: String,
        /// The local sha256.
        expected: String,
    },
}

impl Error {
    /// The machine (`user@host:port`) this error is about.
    pub fn machine(&self) -> &str {
        match self {
            Error::Connect { machine, .. }
            | Error::ConnectTimeout { machine, .. }
            | Error::UnknownHostKey { machine, .. }
            | Error::ChangedHostKey { machine, .. }
            | Error::RevokedHostKey { machine, .. }
            | Error::KnownHostsFile { machine, .. }
            | Error::KeyFile { machine, .. }
            | Error::Agent { machine, .. }
            | Error::AuthRejected { machine, .. }
            | Error::Session { machine, .. }
            | Error::CommandTimeout { machine, .. }
            | Error::CommandFailed { machine, .. }
            | Error::LocalFile { machine, .. }
            | Error::UploadCorrupted { machine, .. } => machine,
        }
    }
}
