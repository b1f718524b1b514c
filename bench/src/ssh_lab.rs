//! Namespace machines running OpenSSH for benchmarks that reach machines
//! over SSH (`tests/hosts/hosts.sh`), and the floor they compare with:
//! copying the berth binary to the machines. Needs root and Debian's
//! openssh-server; everything is removed when the lab is dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use berth_provisioner::ssh::{self, Auth, ConnectOptions, Source, Target};

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
    sshds: Vec<Child>,
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
        keygen(&dir.join("id"))?;
        std::fs::create_dir_all("/run/sshd")?;
        let mut known_hosts = String::new();
        for (i, (netns, address)) in hosts.iter().enumerate() {
            let sshd_dir = dir.join(format!("sshd{i}"));
            std::fs::create_dir_all(&sshd_dir)?;
            keygen(&sshd_dir.join("host_key"))?;
            let d = sshd_dir.display();
            std::fs::write(
                sshd_dir.join("sshd_config"),
                format!(
                    "ListenAddress {address}\nPort 22\nHostKey {d}/host_key\nAuthorizedKeysFile {keys}\n\
                     PidFile {d}/sshd.pid\nUsePAM no\nStrictModes no\nPasswordAuthentication no\n\
                     PermitRootLogin prohibit-password\n",
                    keys = dir.join("id.pub").display(),
                ),
            )?;
            lab.sshds.push(
                Command::new("nsenter")
                    .arg(format!("--net=/var/run/netns/{netns}"))
                    .args(["/usr/sbin/sshd", "-D", "-E"])
                    .arg(sshd_dir.join("sshd.log"))
                    .arg("-f")
                    .arg(sshd_dir.join("sshd_config"))
                    .stdin(Stdio::null())
                    .spawn()
                    .context("starting sshd")?,
            );
            let public = std::fs::read_to_string(sshd_dir.join("host_key.pub"))?;
            let key: Vec<&str> = public.split_whitespace().take(2).collect();
            known_hosts.push_str(&format!("{address} {}\n", key.join(" ")));
            lab.addresses.push(address.clone());
        }
        std::fs::write(dir.join("known_hosts"), known_hosts)?;
        let deadline = Instant::now() + Duration::from_secs(10);
        for address in &lab.addresses {
            while std::net::TcpStream::connect((address.as_str(), 22)).is_err() {
                anyhow::ensure!(
                    Instant::now() < deadline,
                    "sshd on {address} did not listen"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Ok(lab)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for sshd in &mut self.sshds {
            let _ = sshd.kill();
            let _ = sshd.wait();
        }
        let _ = Command::new("bash")
            .arg(hosts_script())
            .args(["down", "--prefix", &self.prefix])
            .output();
    }
}

fn keygen(path: &Path) -> anyhow::Result<()> {
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "berth-bench", "-f"])
        .arg(path)
        .status()
        .context("ssh-keygen (Debian openssh-client)")?;
    anyhow::ensure!(status.success(), "ssh-keygen failed");
    Ok(())
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
