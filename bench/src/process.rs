//! Child `berth` processes for benchmarks that run the real binary: the
//! server on a fresh data directory, and a guard that kills a child when
//! the benchmark ends, however it ends.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;

/// A child process killed when dropped.
pub struct Process(pub Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The `berth` binary: `given`, else the one beside this executable.
pub fn berth_binary(given: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    if let Some(path) = given {
        return Ok(path);
    }
    let beside = std::env::current_exe()?.with_file_name("berth");
    anyhow::ensure!(
        beside.exists(),
        "no berth binary beside this one; pass --berth PATH"
    );
    Ok(beside)
}

/// `berth server` on a fresh data directory; returns it and its admin kubeconfig.
pub fn start_server(berth: &Path, dir: &Path) -> anyhow::Result<(Process, PathBuf)> {
    start_server_on(berth, dir, "127.0.0.1", &[])
}

/// [`start_server`] listening on `host` (an address of this machine) with `extra` flags.
pub fn start_server_on(
    berth: &Path,
    dir: &Path,
    host: &str,
    extra: &[&str],
) -> anyhow::Result<(Process, PathBuf)> {
    let port = std::net::TcpListener::bind((host, 0))?.local_addr()?.port();
    let child = Command::new(berth)
        .arg("server")
        .arg("--data-dir")
        .arg(dir)
        .args(["--listen", &format!("{host}:{port}")])
        .args(extra)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("server.log"))?)
        .spawn()
        .with_context(|| format!("starting {}", berth.display()))?;
    let mut process = Process(child);
    let kubeconfig = dir.join("admin.kubeconfig");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !(kubeconfig.exists() && std::net::TcpStream::connect((host, port)).is_ok()) {
        if let Some(status) = process.0.try_wait()? {
            anyhow::bail!("berth server exited early ({status})");
        }
        anyhow::ensure!(Instant::now() < deadline, "berth server not ready in 60s");
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok((process, kubeconfig))
}
