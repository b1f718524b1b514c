//! Long-running services on a machine (etcd, `berth server`, `berth agent`):
//! a systemd unit where the machine runs systemd, else `berth supervise`
//! started in its own session. The scripts are idempotent: a service already
//! running with the same command line is left alone, one with another
//! command line (or a new binary) is restarted.

use std::fmt::Write as _;

use crate::layout::Layout;
use crate::ssh::shell_quote;

/// A service to keep running.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// Short name: `etcd`, `server`, `agent` (unit `berth-NAME.service`).
    pub name: String,
    /// The program and its arguments.
    pub command: Vec<String>,
}

impl Service {
    /// The command line as one shell-quoted string.
    fn command_line(&self) -> String {
        self.command
            .iter()
            .map(|arg| shell_quote(arg))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The command line as systemd's `ExecStart=` reads it.
    fn exec_start(&self) -> String {
        self.command
            .iter()
            .map(|arg| systemd_quote(arg))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The systemd unit that runs it (what `Restart=always` gives, as
    /// `berth supervise` does without systemd).
    pub fn unit(&self) -> String {
        format!(
            "[Unit]\nDescription=berth {name}\nAfter=network-online.target\nWants=network-online.target\n\n\
             [Service]\nExecStart={command}\nRestart=always\nRestartSec=1\nKillMode=mixed\nTimeoutStopSec=15\nLimitNOFILE=1048576\n\n\
             [Install]\nWantedBy=multi-user.target\n",
            name = self.name,
            command = self.exec_start(),
        )
    }

    fn unit_name(&self) -> String {
        format!("berth-{}.service", self.name)
    }

    /// The script that makes sure it runs with this command line; `restart`
    /// forces a restart (its binary changed). Prints `unchanged`, `started`
    /// or `restarted`.
    pub fn ensure_running(&self, layout: &Layout, restart: bool) -> String {
        let want = shell_quote(&self.command_line());
        let cmd_file = shell_quote(&layout.command_file(&self.name).display().to_string());
        let mut script = String::new();
        let _ = writeln!(script, "set -e\nwant={want}\nforce={}", u8::from(restart));
        let _ = writeln!(
            script,
            "mkdir -p {}",
            shell_quote(&layout.root().join("run").display().to_string())
        );
        let _ = writeln!(
            script,
            "if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then"
        );
        let unit_path = format!("/etc/systemd/system/{}", self.unit_name());
        let _ = writeln!(
            script,
            "  running=0; systemctl is-active --quiet {unit} && running=1",
            unit = self.unit_name()
        );
        let _ = writeln!(
            script,
            "  if [ $running = 1 ] && [ $force = 0 ] && [ \"$(cat {cmd_file} 2>/dev/null)\" = \"$want\" ]; then echo unchanged; exit 0; fi"
        );
        let _ = writeln!(
            script,
            "  printf '%s' {unit_text} > {unit_path}\n  printf '%s' \"$want\" > {cmd_file}\n  systemctl daemon-reload\n  systemctl enable {unit} >/dev/null 2>&1\n  systemctl restart {unit}\n  [ $running = 1 ] && echo restarted || echo started\n  exit 0\nfi",
            unit_text = shell_quote(&self.unit()),
            unit = self.unit_name(),
        );
        let pid_file = shell_quote(&layout.pid_file(&self.name).display().to_string());
        let _ = writeln!(
            script,
            "running=0\nif [ -f {pid_file} ] && kill -0 \"$(cat {pid_file})\" 2>/dev/null; then running=1; fi"
        );
        let _ = writeln!(
            script,
            "if [ $running = 1 ] && [ $force = 0 ] && [ \"$(cat {cmd_file} 2>/dev/null)\" = \"$want\" ]; then echo unchanged; exit 0; fi"
        );
        let _ = writeln!(
            script,
            "if [ $running = 1 ]; then\n{}fi",
            stop_supervised(layout, &self.name)
        );
        let _ = writeln!(script, "printf '%s' \"$want\" > {cmd_file}");
        let _ = writeln!(
            script,
            "setsid -f {binary} supervise --log-file {log} --pid-file {pid_file} -- {command} </dev/null >/dev/null 2>&1",
            binary = shell_quote(&layout.binary().display().to_string()),
            log = shell_quote(&layout.log(&self.name).display().to_string()),
            command = self.command_line(),
        );
        let _ = writeln!(
            script,
            "i=0; while [ ! -f {pid_file} ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done\n[ -f {pid_file} ] || {{ echo 'the supervisor did not start' >&2; exit 1; }}\n[ $running = 1 ] && echo restarted || echo started"
        );
        script
    }
}

/// One argument as systemd's command-line syntax wants it: plain when it is
/// plain, else double-quoted with C-style escapes; `%` and `$` doubled, so
/// systemd expands neither specifiers nor variables.
fn systemd_quote(arg: &str) -> String {
    let escaped = arg.replace('%', "%%").replace('$', "$$");
    let plain = !escaped.is_empty()
        && escaped
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._=:,+-@%$".contains(c));
    if plain {
        return escaped;
    }
    let mut out = String::from("\"");
    for c in escaped.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Shell lines that stop a supervised service and wait for it (15 s, then SIGKILL).
fn stop_supervised(layout: &Layout, name: &str) -> String {
    let pid_file = shell_quote(&layout.pid_file(name).display().to_string());
    format!(
        "  pid=$(cat {pid_file} 2>/dev/null || true)\n  if [ -n \"$pid\" ]; then\n    kill -TERM \"$pid\" 2>/dev/null || true\n    i=0; while kill -0 \"$pid\" 2>/dev/null && [ $i -lt 150 ]; do sleep 0.1; i=$((i+1)); done\n    kill -KILL \"$pid\" 2>/dev/null || true\n  fi\n  rm -f {pid_file}\n"
    )
}

/// The script that stops service `name` wherever it runs (unit or
/// supervisor) and forgets it; succeeds when it was not running.
pub fn stop(layout: &Layout, name: &str) -> String {
    let unit = format!("berth-{name}.service");
    format!(
        "if [ -d /run/systemd/system ] && command -v systemctl >/dev/null && [ -f /etc/systemd/system/{unit} ]; then\n  systemctl disable --now {unit} >/dev/null 2>&1 || true\n  rm -f /etc/systemd/system/{unit}\n  systemctl daemon-reload\nfi\n{}rm -f {}\n",
        stop_supervised(layout, name),
        shell_quote(&layout.command_file(name).display().to_string())
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use std::process::Command;

    fn service(dir: &Path) -> (Layout, Service) {
        let layout = Layout::new(dir);
        let service = Service {
            name: "demo".to_owned(),
            command: vec![
                "sh".to_owned(),
                "-c".to_owned(),
                "echo 'up'; sleep 1000".to_owned(),
            ],
        };
        (layout, service)
    }

    fn sh(script: &str) -> String {
        let output = Command::new("sh").arg("-c").arg(script).output().unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }

    #[test]
    fn the_unit_passes_systemd_analyze() {
        let dir = tempfile::tempdir().unwrap();
        let (_, mut service) = service(dir.path());
        service.command[0] = "/bin/sh".to_owned();
        let unit = dir.path().join("berth-demo.service");
        std::fs::write(&unit, service.unit()).unwrap();
        let Ok(output) = Command::new("systemd-analyze")
            .arg("verify")
            .arg(&unit)
            .output()
        else {
            eprintln!("skipped: no systemd-analyze");
            return;
        };
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            !stderr.lines().any(|l| l.contains("berth-demo.service")),
            "{stderr}"
        );
        assert!(
            service
                .unit()
                .contains("ExecStart=/bin/sh -c \"echo 'up'; sleep 1000\"\n"),
            "{}",
            service.unit()
        );
        assert_eq!(systemd_quote("50%"), "50%%");
        assert_eq!(systemd_quote("a \"b\" $HOME"), "\"a \\\"b\\\" $$HOME\"");
    }

    /// Needs the berth binary for `supervise`; runs with a shell stand-in
    /// that execs `sleep` the way `berth supervise` would run the command.
    #[test]
    fn starting_twice_changes_nothing_and_a_new_command_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let (layout, mut service) = service(dir.path());
        // A stand-in supervisor: writes its pid file, then runs the command.
        let bin = layout.binary();
        std::fs::create_dir_all(bin.parent().unwrap()).unwrap();
        std::fs::write(
            &bin,
            "#!/bin/sh\n# supervise --log-file L --pid-file P -- CMD...\npid=$5; shift 6; echo $$ > \"$pid\"; exec \"$@\"\n",
        )
        .unwrap();
        sh(&format!("chmod +x {}", bin.display()));
        assert_eq!(sh(&service.ensure_running(&layout, false)), "started");
        let first = std::fs::read_to_string(layout.pid_file("demo")).unwrap();
        assert_eq!(sh(&service.ensure_running(&layout, false)), "unchanged");
        service.command[2] = "sleep 1001".to_owned();
        assert_eq!(sh(&service.ensure_running(&layout, false)), "restarted");
        let second = std::fs::read_to_string(layout.pid_file("demo")).unwrap();
        assert_ne!(first, second);
        assert!(
            !Path::new(&format!("/proc/{}", first.trim())).exists() || {
                // A zombie until reaped by init; it no longer runs.
                std::fs::read_to_string(format!("/proc/{}/stat", first.trim()))
                    .unwrap_or_default()
                    .contains(") Z")
            }
        );
        assert_eq!(sh(&service.ensure_running(&layout, true)), "restarted");
        sh(&stop(&layout, "demo"));
        assert!(!layout.pid_file("demo").exists());
        sh(&stop(&layout, "demo"));
    }
}
