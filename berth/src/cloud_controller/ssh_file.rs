//! The `haproxy` provider's configuration on a load-balancer host reached
//! over SSH with the provisioner's backend: the text is uploaded beside the
//! file, checked there with `haproxy -c`, moved into place and followed by
//! the reload command, so a configuration HAProxy would refuse never
//! replaces the one it runs.

use std::fmt;

use berth_cloud_controller::haproxy::target::{ConfigTarget, InstallError};
use berth_provisioner::ssh::{shell_quote, ConnectOptions, Machine, Source, Target};

/// `haproxy.cfg` on another host.
pub struct SshFile {
    target: Target,
    options: ConnectOptions,
    path: String,
    reload: String,
}

impl fmt::Debug for SshFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SshFile({}:{})", self.target, self.path)
    }
}

impl SshFile {
    /// A target writing `path` on `target` and running `reload` there (a
    /// shell command) after each change.
    pub fn new(target: Target, options: ConnectOptions, path: String, reload: String) -> Self {
        SshFile {
            target,
            options,
            path,
            reload,
        }
    }

    /// The steps on one session: upload beside, check, move, reload.
    async fn install_on(&self, machine: &Machine, text: &str) -> Result<(), InstallError> {
        let write = |e: berth_provisioner::ssh::Error| InstallError::Write(e.to_string());
        let staging = format!("{}.berth-new", self.path);
        machine
            .upload(Source::Bytes(text.as_bytes()), &staging, 0o644)
            .await
            .map_err(write)?;
        let check = machine
            .run(&format!("haproxy -c -f {}", shell_quote(&staging)))
            .await
            .map_err(write)?;
        if !check.status.success() {
            let _ = machine
                .run(&format!("rm -f {}", shell_quote(&staging)))
                .await;
            let said = format!("{}\n{}", check.stdout.trim(), check.stderr.trim());
            return Err(InstallError::Invalid(format!(
                "{} on {}: {}",
                check.status,
                self.target,
                said.trim()
            )));
        }
        machine
            .run_ok(&format!(
                "mv -f {} {}",
                shell_quote(&staging),
                shell_quote(&self.path)
            ))
            .await
            .map_err(write)?;
        machine
            .run_ok(&self.reload)
            .await
            .map_err(|e| InstallError::Reload(e.to_string()))?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl ConfigTarget for SshFile {
    /// One session per change: changes are rare, and a fresh session needs
    /// no care for one the network dropped in between.
    async fn install(&self, text: &str) -> Result<(), InstallError> {
        let machine = Machine::connect(self.target.clone(), &self.options)
            .await
            .map_err(|e| InstallError::Write(e.to_string()))?;
        let result = self.install_on(&machine, text).await;
        machine.close().await;
        result
    }

    async fn run(&self, commands: &[Vec<String>]) -> Result<Vec<String>, InstallError> {
        let failed = |e: berth_provisioner::ssh::Error| InstallError::Command(e.to_string());
        let machine = Machine::connect(self.target.clone(), &self.options)
            .await
            .map_err(failed)?;
        let mut outputs = Vec::with_capacity(commands.len());
        for command in commands {
            let line: Vec<String> = command.iter().map(|word| shell_quote(word)).collect();
            match machine.run_ok(&line.join(" ")).await {
                Ok(output) => outputs.push(output.stdout),
                Err(e) => {
                    machine.close().await;
                    return Err(failed(e));
                }
            }
        }
        machine.close().await;
        Ok(outputs)
    }
}

/// Reads `user@host[:port]` (`[v6]:port` for an IPv6 address with a
/// port); the user defaults to root and the port to 22.
pub fn parse_target(text: &str) -> Result<Target, String> {
    let (user, rest) = match text.split_once('@') {
        Some((user, rest)) => (user, rest),
        None => ("root", text),
    };
    let bad = || format!("{text:?} is not user@host[:port]");
    let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or_else(bad)?;
        match after {
            "" => (host, None),
            port => (host, Some(port.strip_prefix(':').ok_or_else(bad)?)),
        }
    } else if rest.matches(':').count() > 1 {
        (rest, None)
    } else {
        match rest.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (rest, None),
        }
    };
    let port = match port {
        Some(port) => port.parse().map_err(|_| bad())?,
        None => 22,
    };
    if user.is_empty() || host.is_empty() {
        return Err(bad());
    }
    Ok(Target::new(user, host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_with_defaults() {
        for (text, want) in [
            ("admin@lb-1", Target::new("admin", "lb-1", 22)),
            ("admin@lb-1:2222", Target::new("admin", "lb-1", 2222)),
            ("10.0.0.5", Target::new("root", "10.0.0.5", 22)),
            ("ops@[fd00::1]:2200", Target::new("ops", "fd00::1", 2200)),
            ("ops@fd00::1", Target::new("ops", "fd00::1", 22)),
        ] {
            assert_eq!(parse_target(text), Ok(want), "{text}");
        }
        for bad in ["@lb", "admin@", "admin@lb:port", "admin@[fd00::1"] {
            assert!(parse_target(bad).is_err(), "{bad}");
        }
    }
}
