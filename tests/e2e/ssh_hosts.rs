//! OpenSSH servers on test hosts, as the provisioner meets machines: one
//! `sshd` per network namespace on the host's own address, port 22, with a
//! host key and the test's user key made by `ssh-keygen`. Dropped, it stops.
#![allow(dead_code)]

#[path = "../hosts/sshd.rs"]
mod netns_sshd;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::hosts::Host;

/// An sshd running in a test host.
pub use netns_sshd::NetnsSshd as Sshd;

/// A key pair made by `ssh-keygen -t ed25519` at `path` (and `path.pub`).
pub fn keygen(path: &Path) -> PathBuf {
    netns_sshd::keygen(path, "berth-test").expect("ssh-keygen (Debian openssh-client)")
}

impl Sshd {
    /// Starts sshd in `host` with its files under `dir`, letting in the
    /// keys of `authorized_keys`, and waits until it listens.
    pub fn start(host: &Host, dir: &Path, authorized_keys: &Path) -> Self {
        let mut sshd = Self::spawn(&host.netns, &host.address, dir, authorized_keys)
            .expect("starting sshd (Debian openssh-server)");
        let deadline = Instant::now() + Duration::from_secs(10);
        if let Err(error) = sshd.wait_until_listening(deadline) {
            panic!("{error}");
        }
        sshd
    }
}
