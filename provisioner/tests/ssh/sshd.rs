//! A real OpenSSH server for the SSH backend's tests: each test starts its
//! own `sshd` on 127.0.0.1 with host and user keys generated into a temporary
//! folder, and a guard stops it and removes the folder even on failure.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use berth_provisioner::ssh::{Auth, ConnectOptions, Machine, Target};

pub const SSHD: &str = "/usr/sbin/sshd";

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("berth_provisioner=debug")
        .with_test_writer()
        .try_init();
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn keygen(path: &Path, kind: &str) {
    let mut args = vec!["-q", "-t", kind, "-N", "", "-C", "", "-f"];
    if kind == "rsa" {
        args.splice(1..1, ["-b", "2048"]);
    }
    let out = ssh_keygen(&args, path);
    assert!(out.status.success(), "ssh-keygen -t {kind}: {out:?}");
}

/// `ssh-keygen ARGS FILE`.
pub fn ssh_keygen(args: &[&str], file: &Path) -> std::process::Output {
    Command::new("ssh-keygen")
        .args(args)
        .arg(file)
        .output()
        .expect("ssh-keygen (Debian openssh-client)")
}

/// `ssh-keygen -l`'s fingerprint of a public key file.
pub fn fingerprint_of(public: &Path) -> String {
    let out = ssh_keygen(&["-lf"], public);
    let text = String::from_utf8(out.stdout).unwrap();
    text.split_whitespace().nth(1).unwrap().to_string()
}

/// The `type base64` part of a public key file.
pub fn public_key(public: &Path) -> String {
    let text = std::fs::read_to_string(public).unwrap();
    text.split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

/// A running sshd with its own keys; stopped and removed on drop.
pub struct Sshd {
    dir: tempfile::TempDir,
    /// The loopback port it listens on.
    pub port: u16,
    child: Child,
}

impl Sshd {
    /// A server with an ed25519 host key.
    pub fn start() -> Sshd {
        Sshd::start_with_host_key("ed25519")
    }

    /// A server whose only host key is of type `kind`.
    pub fn start_with_host_key(kind: &str) -> Sshd {
        assert!(
            Path::new(SSHD).exists(),
            "{SSHD} is missing: install Debian's openssh-server (tests/run-all.sh does)"
        );
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        keygen(&d.join("host_key"), kind);
        keygen(&d.join("user_ed25519"), "ed25519");
        keygen(&d.join("user_rsa"), "rsa");
        keygen(&d.join("stranger"), "ed25519");
        let authorized = format!(
            "{}\n{}\n",
            public_key(&d.join("user_ed25519.pub")),
            public_key(&d.join("user_rsa.pub"))
        );
        std::fs::write(d.join("authorized_keys"), authorized).unwrap();
        // sshd's privilege separation folder (normally made by its unit).
        std::fs::create_dir_all("/run/sshd").unwrap();
        let port = free_port();
        let config = format!(
            "ListenAddress 127.0.0.1\nPort {port}\nHostKey {d}/host_key\n\
             AuthorizedKeysFile {d}/authorized_keys\nPidFile {d}/sshd.pid\nUsePAM no\n\
             StrictModes no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
             PermitRootLogin prohibit-password\nAllowTcpForwarding yes\nLogLevel DEBUG1\n",
            d = d.display()
        );
        std::fs::write(d.join("sshd_config"), config).unwrap();
        let child = Command::new(SSHD)
            .arg("-D")
            .arg("-E")
            .arg(d.join("sshd.log"))
            .arg("-f")
            .arg(d.join("sshd_config"))
            .stdin(Stdio::null())
            .spawn()
            .expect("start sshd");
        let mut sshd = Sshd { dir, port, child };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = sshd.child.try_wait() {
                panic!("sshd exited ({status}): {}", sshd.log());
            }
            assert!(
                Instant::now() < deadline,
                "sshd did not listen: {}",
                sshd.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        sshd
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.path("sshd.log")).unwrap_or_default()
    }

    pub fn target(&self) -> Target {
        Target::new("root", "127.0.0.1", self.port)
    }

    /// The known_hosts line for this server.
    pub fn known_hosts_line(&self) -> String {
        format!(
            "[127.0.0.1]:{} {}\n",
            self.port,
            public_key(&self.path("host_key.pub"))
        )
    }

    /// Options with the ed25519 user key and a known_hosts that has this
    /// server's key, strict.
    pub fn options(&self) -> ConnectOptions {
        let known_hosts = self.path("known_hosts");
        std::fs::write(&known_hosts, self.known_hosts_line()).unwrap();
        let mut options =
            ConnectOptions::new(Auth::KeyFile(self.path("user_ed25519")), known_hosts);
        options.connect_timeout = Duration::from_secs(10);
        options
    }
}

impl Sshd {
    /// Two servers that trust the first one's user key, and options whose
    /// known_hosts has both host keys.
    pub fn pair() -> (Sshd, Sshd, ConnectOptions) {
        let first = Sshd::start();
        let second = Sshd::start();
        let options = first.options();
        let authorized = public_key(&first.path("user_ed25519.pub"));
        std::fs::write(second.path("authorized_keys"), authorized + "\n").unwrap();
        let known = format!("{}{}", first.known_hosts_line(), second.known_hosts_line());
        std::fs::write(&options.known_hosts, known).unwrap();
        (first, second, options)
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fresh sshd and a session to it with the default options.
pub async fn connected() -> (Sshd, Machine) {
    init_tracing();
    let sshd = Sshd::start();
    let machine = Machine::connect(sshd.target(), &sshd.options())
        .await
        .unwrap();
    (sshd, machine)
}
