//! Pieces the `berth cluster …` end-to-end tests share: running the CLI on
//! a cluster.toml and its state folder, and OpenSSH on every test host with
//! one user key and a known_hosts file naming them all.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::hosts::Host;
use crate::ssh_hosts::{keygen, Sshd};
use crate::support::berth_bin;

/// `berth cluster ARGS -f FILE --state-dir STATE --connect-timeout 5s`.
pub fn berth(args: &[&str], file: &Path, state: &Path) -> Output {
    Command::new(berth_bin())
        .args(["cluster"])
        .args(args)
        .arg("-f")
        .arg(file)
        .arg("--state-dir")
        .arg(state)
        .args(["--connect-timeout", "5s"])
        .output()
        .expect("running berth cluster")
}

/// Exit code, stdout and the end of stderr of `output` (the progress
/// lines and the error, not every command's log), for assertion messages.
pub fn text(output: &Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    let tail = lines[lines.len().saturating_sub(40)..]
        .iter()
        .map(|line| line.chars().take(400).collect::<String>())
        .collect::<Vec<_>>()
        .join("\n");
    format!(
        "exit {:?}\nstdout:\n{}\nstderr (last 40 lines, each cut at 400 characters):\n{tail}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
    )
}

/// sshd on every host, letting in the key `dir/id`; stopped when dropped.
pub struct SshMachines {
    /// One per host, in order.
    pub sshds: Vec<Sshd>,
    /// The known_hosts file with every host's key.
    pub known_hosts: PathBuf,
}

impl SshMachines {
    /// Makes the user key `dir/id` and starts sshd on each of `hosts`.
    pub fn start(hosts: &[Host], dir: &Path) -> Self {
        let user_key = keygen(&dir.join("id"));
        let sshds: Vec<Sshd> = hosts
            .iter()
            .enumerate()
            .map(|(i, host)| {
                Sshd::start(
                    host,
                    &dir.join(format!("sshd{i}")),
                    &user_key.with_extension("pub"),
                )
            })
            .collect();
        let known_hosts = dir.join("known_hosts");
        let lines: Vec<&str> = sshds.iter().map(|s| s.known_hosts_line.as_str()).collect();
        std::fs::write(&known_hosts, lines.join("\n") + "\n").unwrap();
        Self { sshds, known_hosts }
    }
}
