//! What the `berth cluster …` end-to-end tests share: running the CLI
//! against a cluster.toml and state folder, printing what it answered, and
//! finding processes a cluster left behind.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::hosts::Host;
use crate::ssh_hosts::{keygen, Sshd};
use crate::support::berth_bin;

/// An OpenSSH server on each of `hosts` that lets in the key `dir/id`
/// (made here), and the known_hosts file naming them all; the servers stop
/// when dropped.
pub fn ssh_into(hosts: &[Host], dir: &Path) -> (Vec<Sshd>, PathBuf) {
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
    (sshds, known_hosts)
}

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

/// Exit code, stdout and stderr of `output`, for assertion messages.
pub fn text(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Processes whose command line mentions `needle`.
pub fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if cmdline.contains(needle) {
                found.push(cmdline);
            }
        }
    }
    found
}

/// Sends SIGKILL to every process whose command line mentions `needle`
/// (twice, so a supervisor restarting its child in between loses too).
pub fn kill_processes_mentioning(needle: &str) {
    for _ in 0..2 {
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
                if String::from_utf8_lossy(&cmdline)
                    .replace('\0', " ")
                    .contains(needle)
                {
                    let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
                }
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
}
