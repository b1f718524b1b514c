//! Namespace machines running OpenSSH for benchmarks that reach machines
//! over SSH (`tests/hosts/hosts.sh`), and the floor they compare with:
//! copying the berth binary to the machines. Needs root and Debian's
//! openssh-server; everything is removed when the lab is dropped.

#[path = "../../tests/hosts/sshd.rs"]
mod netns_sshd;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use berth_provisioner::ssh::{self, Auth, ConnectOptions, Source, Target};
use netns_sshd::{keygen, NetnsSshd};

fn hosts_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/hosts/hosts.sh")
}

/// The namespace machines, each with an sshd; removed when dropped.
pub struct Lab {
    prefix: String,
    /// The machines' addresses, in order.
    pub addresses: Vec<String>,
    /// Their bridge's address on this machine (where a server they reach listens).
    pub gateway: String,
    sshds: Vec<NetnsSshd>,
}

impl Lab {
    /// `count` machines `PREFIX-i` on `SUBNET.0.0/24`, with the user key
    /// `DIR/id` and `DIR/known_hosts` naming them.
    pub fn up(dir: &Path, prefix: &str, subnet: &str, count: usize) -> anyhow::Result<Self> {
        let output = Command::new("bash")
            .arg(hosts_script())
            .args(["up", "--prefix", prefix, "--count", &count.to_string()])
            .args(["--subnet", subnet, "--topology", "one-lan"])
            .output()?;
        let mut lab = Self {
            prefix: prefix.to_owned(),
            addresses: Vec::new(),
            gateway: String::new(),
            sshds: Vec::new(),
        };
        anyhow::ensure!(
            output.status.success(),
            "hosts.sh up: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let hosts: Vec<(String, String)> = String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                if let Some(gateway) = fields.get(2) {
                    lab.gateway = gateway.to_string();
                }
                Some((fields.first()?.to_string(), fields.get(1)?.to_string()))
            })
            .collect();
        keygen(&dir.join("id"), "berth-bench").context("ssh-keygen (Debian openssh-client)")?;
        let mut known_hosts = String::new();
        for (i, (netns, address)) in hosts.iter().enumerate() {
            let sshd = NetnsSshd::spawn(
                netns,
                address,
                &dir.join(format!("sshd{i}")),
                &dir.join("id.pub"),
            )
            .context("starting sshd (Debian openssh-server)")?;
            known_hosts.push_str(&format!("{}\n", sshd.known_hosts_line));
            lab.sshds.push(sshd);
            lab.addresses.push(address.clone());
        }
        std::fs::write(dir.join("known_hosts"), known_hosts)?;
        let deadline = Instant::now() + Duration::from_secs(10);
        for sshd in &mut lab.sshds {
            sshd.wait_until_listening(deadline)
                .map_err(anyhow::Error::msg)?;
        }
        Ok(lab)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // The servers stop before their namespaces go.
        self.sshds.clear();
        let _ = Command::new("bash")
            .arg(hosts_script())
            .args(["down", "--prefix", &self.prefix])
            .output();
    }
}

/// The floor: connect to each machine and upload `berth` there, all at once.
pub async fn copy_binary(
    dir: &Path,
    addresses: &[String],
    berth: &Path,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let copies = addresses.iter().enumerate().map(|(i, address)| async move {
        let mut options =
            ConnectOptions::new(Auth::KeyFile(dir.join("id")), dir.join("known_hosts"));
        options.connect_timeout = Duration::from_secs(10);
        let machine = ssh::Machine::connect(Target::new("root", address, 22), &options).await?;
        let remote = dir.join(format!("floor/{i}/berth")).display().to_string();
        let uploaded = machine.upload(Source::File(berth), &remote, 0o755).await;
        machine.close().await;
        uploaded.map(|_| ())
    });
    for copied in futures::future::join_all(copies).await {
        copied?;
    }
    let took = started.elapsed();
    std::fs::remove_dir_all(dir.join("floor"))?;
    Ok(took)
}
