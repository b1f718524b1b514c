//! `berth supervise`: keeps one command running on a machine without
//! systemd (the provisioner's test hosts, containers, minimal images), as a
//! unit with `Restart=always` would: restarts it with growing back-off,
//! writes its output to a log file rotated by size, and stops it (its whole
//! process group) on SIGTERM.

mod backoff;
mod log_file;

use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::signal::unix::{signal, SignalKind};

use backoff::Backoff;
use log_file::LogFile;

/// Flags of `berth supervise`.
#[derive(Args, Debug)]
pub struct SuperviseArgs {
    /// The log file the command's output is appended to (rotated to
    /// `FILE.1` when it grows past --log-max-bytes).
    #[arg(long)]
    log_file: PathBuf,
    /// Where to write the supervisor's own process id (removed on exit).
    #[arg(long)]
    pid_file: Option<PathBuf>,
    /// Size at which the log file is rotated.
    #[arg(long, default_value_t = 64 << 20)]
    log_max_bytes: u64,
    /// The longest wait between restarts.
    #[arg(long, default_value = "30s", value_parser = crate::server::parse_duration)]
    max_backoff: Duration,
    /// How long a stopping command gets after SIGTERM before SIGKILL.
    #[arg(long, default_value = "10s", value_parser = crate::server::parse_duration)]
    stop_grace: Duration,
    /// The command and its arguments.
    #[arg(required = true, last = true)]
    command: Vec<String>,
}

/// Supervises the command until SIGTERM or SIGINT.
pub async fn run(args: SuperviseArgs) -> anyhow::Result<()> {
    let log = Arc::new(Mutex::new(
        LogFile::open(&args.log_file, args.log_max_bytes)
            .with_context(|| format!("opening {}", args.log_file.display()))?,
    ));
    if let Some(pid_file) = &args.pid_file {
        std::fs::write(pid_file, format!("{}\n", std::process::id()))
            .with_context(|| format!("writing {}", pid_file.display()))?;
    }
    let result = supervise(&args, &log).await;
    if let Some(pid_file) = &args.pid_file {
        let _ = std::fs::remove_file(pid_file);
    }
    result
}

/// What ended one run of the command.
enum Ended {
    Exited(ExitStatus),
    Stopped,
}

async fn supervise(args: &SuperviseArgs, log: &Arc<Mutex<LogFile>>) -> anyhow::Result<()> {
    let mut term = signal(SignalKind::terminate()).context("installing a SIGTERM handler")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("installing a SIGINT handler")?;
    let mut backoff = Backoff::new(args.max_backoff);
    loop {
        let started = Instant::now();
        let mut child = tokio::process::Command::new(&args.command[0])
            .args(&args.command[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group, so stopping it stops what it started.
            .process_group(0)
            .spawn()
            .with_context(|| format!("starting {}", args.command[0]))?;
        let pid = child.id().context("the command's process id")?;
        note(log, &format!("started {:?} as process {pid}", args.command));
        let copies = [
            child
                .stdout
                .take()
                .map(|out| tokio::spawn(copy_lines(out, log.clone()))),
            child
                .stderr
                .take()
                .map(|err| tokio::spawn(copy_lines(err, log.clone()))),
        ];
        let ended = tokio::select! {
            status = child.wait() => Ended::Exited(status?),
            _ = term.recv() => Ended::Stopped,
            _ = interrupt.recv() => Ended::Stopped,
        };
        if let Ended::Stopped = ended {
            stop(&mut child, pid, args.stop_grace).await;
        }
        for copy in copies.into_iter().flatten() {
            let _ = copy.await;
        }
        match ended {
            Ended::Stopped => {
                note(log, "stopped");
                return Ok(());
            }
            Ended::Exited(status) => {
                let delay = backoff.after_run(started.elapsed());
                note(
                    log,
                    &format!(
                        "exited ({status}); restarting in {:.1}s",
                        delay.as_secs_f64()
                    ),
                );
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = term.recv() => return Ok(()),
                    _ = interrupt.recv() => return Ok(()),
                }
            }
        }
    }
}

/// SIGTERM to the command's process group, SIGKILL after `grace`.
async fn stop(child: &mut tokio::process::Child, pid: u32, grace: Duration) {
    let group = -(pid as i32);
    // SAFETY: kill(2) with a negative pid signals that process group only.
    unsafe { libc::kill(group, libc::SIGTERM) };
    if tokio::time::timeout(grace, child.wait()).await.is_err() {
        // SAFETY: as above.
        unsafe { libc::kill(group, libc::SIGKILL) };
        let _ = child.wait().await;
    }
}

async fn copy_lines(output: impl AsyncRead + Unpin, log: Arc<Mutex<LogFile>>) {
    let mut lines = BufReader::new(output).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if let Ok(mut log) = log.lock() {
            log.write_line(&line);
        }
    }
}

/// A line of the supervisor's own in the log.
fn note(log: &Arc<Mutex<LogFile>>, message: &str) {
    if let Ok(mut log) = log.lock() {
        log.write_line(&format!("berth supervise: {message}"));
    }
}
