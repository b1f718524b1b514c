//! `berth supervise` as the provisioner uses it on machines without systemd:
//! a crashing command is restarted with back-off and its output logged; a
//! SIGTERM stops the command's whole process group and the supervisor.

mod support;

use std::process::{Child, Command};
use std::time::Duration;

use support::eventually;

fn supervise(dir: &std::path::Path, script: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_berth"))
        .arg("supervise")
        .arg("--log-file")
        .arg(dir.join("logs/service.log"))
        .arg("--pid-file")
        .arg(dir.join("service.pid"))
        .args([
            "--max-backoff",
            "1s",
            "--stop-grace",
            "2s",
            "--",
            "sh",
            "-c",
            script,
        ])
        .spawn()
        .expect("berth supervise starts")
}

/// Kills the supervisor if a check failed before it was stopped.
struct Stop(Child);

impl Drop for Stop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn log(dir: &std::path::Path) -> String {
    std::fs::read_to_string(dir.join("logs/service.log")).unwrap_or_default()
}

#[test]
fn a_crashing_command_is_restarted_with_its_output_logged() {
    let dir = tempfile::tempdir().unwrap();
    let _supervisor = Stop(supervise(dir.path(), "echo run; echo oops >&2; exit 3"));
    let text = eventually(Duration::from_secs(15), || {
        let text = log(dir.path());
        (text.matches("berth supervise: started").count() >= 3).then_some(text)
    });
    assert!(text.contains("run\n") && text.contains("oops\n"), "{text}");
    assert!(
        text.contains("exited (exit status: 3); restarting in 1.0s"),
        "{text}"
    );
}

#[test]
fn sigterm_stops_the_command_and_what_it_started() {
    let dir = tempfile::tempdir().unwrap();
    // The trap is set before the line the test waits for, so the SIGTERM can
    // never arrive before the shell handles it.
    let script = "trap 'echo terminated; exit 0' TERM; sleep 1000 & echo child $!; \
                  while true; do sleep 0.1; done";
    let mut supervisor = Stop(supervise(dir.path(), script));
    let grandchild: u32 = eventually(Duration::from_secs(10), || {
        log(dir.path())
            .lines()
            .find_map(|line| line.strip_prefix("child ")?.parse().ok())
    });
    let pid = std::fs::read_to_string(dir.path().join("service.pid")).unwrap();
    assert_eq!(pid.trim(), supervisor.0.id().to_string());
    // SAFETY: signals the supervisor this test started.
    unsafe { libc::kill(supervisor.0.id() as i32, libc::SIGTERM) };
    let status = supervisor.0.wait().unwrap();
    assert!(status.success(), "{status}");
    let text = log(dir.path());
    assert!(
        text.contains("terminated\n") && text.ends_with("berth supervise: stopped\n"),
        "{text}"
    );
    assert!(!dir.path().join("service.pid").exists());
    eventually(Duration::from_secs(5), || {
        (!std::path::Path::new(&format!("/proc/{grandchild}")).exists()).then_some(())
    });
}
