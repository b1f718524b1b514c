//! One OpenSSH server inside a namespace host of `hosts.sh`, listening on the
//! host's own address, port 22, with a fresh host key. Shared through
//! `#[path]` by the end-to-end tests (`tests/e2e/ssh_hosts.rs`) and the
//! benches (`bench/src/ssh_lab.rs`), so it uses nothing but `std` and never
//! panics: each side turns its errors into a panic or an `anyhow` error.
#![allow(dead_code)]

use std::io;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A key pair made by `ssh-keygen -t ed25519` at `path` (and `path.pub`).
pub fn keygen(path: &Path, comment: &str) -> io::Result<PathBuf> {
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
        .arg(path)
        .status()?;
    if !status.success() {
        return Err(io::Error::other(format!(
            "ssh-keygen {}: {status}",
            path.display()
        )));
    }
    Ok(path.to_owned())
}

/// An sshd running in a namespace host; killed when dropped.
pub struct NetnsSshd {
    child: Child,
    dir: PathBuf,
    address: String,
    /// `ADDRESS KEYTYPE KEY`, the known_hosts line for it.
    pub known_hosts_line: String,
}

impl NetnsSshd {
    /// Starts sshd in network namespace `netns` on `address`, with its files
    /// under `dir`, letting in the keys of `authorized_keys`; it may not
    /// listen yet (see [`NetnsSshd::wait_until_listening`]).
    pub fn spawn(
        netns: &str,
        address: &str,
        dir: &Path,
        authorized_keys: &Path,
    ) -> io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        // sshd's privilege separation folder (normally made by its unit).
        std::fs::create_dir_all("/run/sshd")?;
        let host_key = keygen(&dir.join("host_key"), "berth-test")?;
        let d = dir.display();
        std::fs::write(
            dir.join("sshd_config"),
            format!(
                "ListenAddress {address}\nPort 22\nHostKey {d}/host_key\nAuthorizedKeysFile {keys}\n\
                 PidFile {d}/sshd.pid\nUsePAM no\nStrictModes no\nPasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n",
                keys = authorized_keys.display(),
            ),
        )?;
        let child = Command::new("nsenter")
            .arg(format!("--net=/var/run/netns/{netns}"))
            .args(["/usr/sbin/sshd", "-D", "-E"])
            .arg(dir.join("sshd.log"))
            .arg("-f")
            .arg(dir.join("sshd_config"))
            .stdin(Stdio::null())
            .spawn()?;
        let mut sshd = Self {
            child,
            dir: dir.to_owned(),
            address: address.to_owned(),
            known_hosts_line: String::new(),
        };
        let public = std::fs::read_to_string(host_key.with_extension("pub"))?;
        let key: Vec<&str> = public.split_whitespace().take(2).collect();
        sshd.known_hosts_line = format!("{address} {}", key.join(" "));
        Ok(sshd)
    }

    /// Waits until sshd takes connections; an error (with its log) if it
    /// exits first or `deadline` passes.
    pub fn wait_until_listening(&mut self, deadline: Instant) -> Result<(), String> {
        while TcpStream::connect((self.address.as_str(), 22)).is_err() {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("sshd exited ({status}): {}", self.log()));
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "sshd on {} did not listen: {}",
                    self.address,
                    self.log()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    /// sshd's log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("sshd.log")).unwrap_or_default()
    }
}

impl Drop for NetnsSshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
