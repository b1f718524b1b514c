//! OpenSSH servers on test hosts, as the provisioner meets machines: one
//! `sshd` per network namespace on the host's own address, port 22, with a
//! host key and the test's user key made by `ssh-keygen`. Dropped, it stops.
#![allow(dead_code)]

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::hosts::Host;

/// A key pair made by `ssh-keygen -t ed25519` at `path` (and `path.pub`).
pub fn keygen(path: &Path) -> PathBuf {
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "berth-test", "-f"])
        .arg(path)
        .status()
        .expect("ssh-keygen (Debian openssh-client)");
    assert!(status.success(), "ssh-keygen failed");
    path.to_owned()
}

/// An sshd running in a test host.
pub struct Sshd {
    child: Child,
    dir: PathBuf,
    /// `ADDRESS KEYTYPE KEY`, the known_hosts line for it.
    pub known_hosts_line: String,
}

impl Sshd {
    /// Starts sshd in `host` with its files under `dir`, letting in the
    /// keys of `authorized_keys`.
    pub fn start(host: &Host, dir: &Path, authorized_keys: &Path) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        // sshd's privilege separation folder (normally made by its unit).
        std::fs::create_dir_all("/run/sshd").unwrap();
        let host_key = keygen(&dir.join("host_key"));
        let d = dir.display();
        std::fs::write(
            dir.join("sshd_config"),
            format!(
                "ListenAddress {address}\nPort 22\nHostKey {d}/host_key\nAuthorizedKeysFile {keys}\n\
                 PidFile {d}/sshd.pid\nUsePAM no\nStrictModes no\nPasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n",
                address = host.address,
                keys = authorized_keys.display(),
            ),
        )
        .unwrap();
        let child = Command::new("nsenter")
            .arg(format!("--net=/var/run/netns/{}", host.netns))
            .args(["/usr/sbin/sshd", "-D", "-E"])
            .arg(dir.join("sshd.log"))
            .arg("-f")
            .arg(dir.join("sshd_config"))
            .stdin(Stdio::null())
            .spawn()
            .expect("starting sshd (Debian openssh-server)");
        let public = std::fs::read_to_string(host_key.with_extension("pub")).unwrap();
        let key: Vec<&str> = public.split_whitespace().take(2).collect();
        let mut sshd = Self {
            child,
            dir: dir.to_owned(),
            known_hosts_line: format!("{} {}", host.address, key.join(" ")),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect((host.address.as_str(), 22)).is_err() {
            if let Ok(Some(status)) = sshd.child.try_wait() {
                panic!("sshd exited ({status}): {}", sshd.log());
            }
            assert!(
                Instant::now() < deadline,
                "sshd did not listen: {}",
                sshd.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        sshd
    }

    /// sshd's log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("sshd.log")).unwrap_or_default()
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
