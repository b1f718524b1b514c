//! What the `berth cluster …` end-to-end tests share: running the CLI
//! against a cluster.toml and a state directory, showing its output, and
//! finding processes a cluster left behind.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

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

/// The exit code, stdout and stderr of a run, for assertion messages.
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
