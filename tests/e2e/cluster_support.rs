//! What the `berth cluster …` end-to-end tests share: running the CLI
//! against a cluster.toml and state folder, printing what it answered, and
//! finding processes a cluster left behind.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::cri_node::Registry;
use crate::hosts::{Host, Hosts, RegistryMirror, Topology};
use crate::ssh_hosts::{keygen, Sshd};
use crate::support::{berth_bin, Kubectl, KUBECTL_1_33};

/// Namespace machines on one LAN, each running OpenSSH that lets in the
/// test's user key (`DIR/id`), a known_hosts file naming them all, and the
/// offline registry mirrored on their bridge. Dropping it stops the SSH
/// servers and the registries, then removes the machines with all they run.
pub struct SshLab {
    /// The test's folder: keys, known_hosts, the machines' data_dirs.
    pub dir: PathBuf,
    /// `DIR/known_hosts`.
    pub known_hosts: PathBuf,
    /// One per machine, in order.
    pub sshds: Vec<Sshd>,
    /// The registry as the machines reach it.
    pub mirror: RegistryMirror,
    /// The offline test registry.
    pub registry: Registry,
    /// The machines.
    pub hosts: Hosts,
}

impl SshLab {
    /// `count` machines named `PREFIX-i` with addresses in `SUBNET.0.0/16`.
    pub fn up(dir: &Path, prefix: &str, count: usize, subnet: &str) -> Self {
        let hosts = Hosts::up(prefix, count, subnet, Topology::OneLan);
        let registry = Registry::start();
        let mirror = RegistryMirror::start(&registry, &hosts.hosts[0].gateway);
        let (sshds, known_hosts) = ssh_into(&hosts.hosts, dir);
        Self {
            dir: dir.to_owned(),
            known_hosts,
            sshds,
            mirror,
            registry,
            hosts,
        }
    }

    /// Machine `index` as a cluster.toml entry named `name`, its data_dir
    /// under `DIR/machines/NAME`.
    pub fn machine(&self, index: usize, name: &str) -> String {
        format!(
            "{{ host = \"{}\", name = \"{name}\", data_dir = \"{}/machines/{name}\" }}",
            self.hosts.hosts[index].address,
            self.dir.display()
        )
    }

    /// Creates the cluster `toml` describes in the lab's folder (see [`create_in`]).
    pub fn create(&self, toml: &str) -> (DeleteOnDrop, Kubectl) {
        create_in(&self.dir, toml)
    }

    /// Applies Deployment `web`: two replicas of the `web:1` test image on
    /// pool `cpu` by its label.
    pub fn apply_web_on_cpu_pool(&self, kubectl: &Kubectl) {
        let manifest = format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: web}}\nspec:\n  replicas: 2\n  selector: {{matchLabels: {{app: web}}}}\n  template:\n    metadata: {{labels: {{app: web}}}}\n    spec:\n      nodeSelector: {{berth.dev/pool: cpu}}\n      containers:\n      - name: web\n        image: {}\n",
            self.mirror.image("web:1")
        );
        kubectl.ok_stdin(&["apply", "-f", "-"], &manifest);
    }

    /// The start of a cluster.toml for cluster `name`: this berth, etcd on
    /// masters m1..m3 (machines 0 to 2), `settings` (CIDRs), the mirror as
    /// an insecure registry, and the lab's SSH settings. Pools follow.
    pub fn etcd_masters_toml(&self, name: &str, settings: &str) -> String {
        format!(
            "name = \"{name}\"\nbinary = \"{binary}\"\ndatastore = \"etcd\"\n{settings}insecure_registries = [\"{registry}\"]\n\n[ssh]\nkey_file = \"{dir}/id\"\nknown_hosts = \"{known_hosts}\"\n\n[masters]\nmachines = [{m1}, {m2}, {m3}]\n",
            binary = berth_bin().display(),
            registry = self.mirror.host,
            dir = self.dir.display(),
            known_hosts = self.known_hosts.display(),
            m1 = self.machine(0, "m1"),
            m2 = self.machine(1, "m2"),
            m3 = self.machine(2, "m3"),
        )
    }
}

/// An OpenSSH server on each of `hosts` that lets in the key `dir/id`
/// (made here), and the known_hosts file naming them all; the servers stop
/// when dropped.
pub fn ssh_into(hosts: &[Host], dir: &Path) -> (Vec<Sshd>, PathBuf) {
    let user_key = keygen(&dir.join("id"));
    let sshds: Vec<Sshd> = hosts
        .iter()
        .enumerate()
        .map(|(i, host)| {
            Sshd::start(
                host,
                &dir.join(format!("sshd{i}")),
                &user_key.with_extension("pub"),
            )
        })
        .collect();
    let known_hosts = dir.join("known_hosts");
    let lines: Vec<&str> = sshds.iter().map(|s| s.known_hosts_line.as_str()).collect();
    std::fs::write(&known_hosts, lines.join("\n") + "\n").unwrap();
    (sshds, known_hosts)
}

/// `berth cluster ARGS -f FILE --state-dir STATE --connect-timeout 5s`.
pub fn berth(args: &[&str], file: &Path, state: &Path) -> Output {
    berth_with_env(args, file, state, &[])
}

/// [`berth`] with `env` set (credentials for an EC2 endpoint).
pub fn berth_with_env(args: &[&str], file: &Path, state: &Path, env: &[(&str, &str)]) -> Output {
    Command::new(berth_bin())
        .args(["cluster"])
        .args(args)
        .arg("-f")
        .arg(file)
        .arg("--state-dir")
        .arg(state)
        .args(["--connect-timeout", "5s"])
        .envs(env.iter().copied())
        .output()
        .expect("running berth cluster")
}

/// Exit code, stdout and stderr of `output`, for assertion messages.
pub fn text(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Processes whose command line mentions `needle`.
pub fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if cmdline.contains(needle) {
                found.push(cmdline);
            }
        }
    }
    found
}

/// Sends SIGKILL to every process whose command line mentions `needle`
/// (twice, so a supervisor restarting its child in between loses too).
pub fn kill_processes_mentioning(needle: &str) {
    for _ in 0..2 {
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
                if String::from_utf8_lossy(&cmdline)
                    .replace('\0', " ")
                    .contains(needle)
                {
                    let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
                }
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
}

/// Runs `berth cluster delete` when dropped while the cluster's state is
/// still there: a test that fails part-way leaves nothing installed.
pub struct DeleteOnDrop {
    /// The cluster.toml.
    pub file: PathBuf,
    /// The state folder.
    pub state: PathBuf,
}

impl Drop for DeleteOnDrop {
    fn drop(&mut self) {
        if self.state.exists() {
            let _ = berth(&["delete"], &self.file, &self.state);
        }
    }
}

/// Writes `toml` to `DIR/cluster.toml` and creates the cluster with its
/// state in `DIR/state`: the guard that deletes it again (also when the
/// test fails), and kubectl through the admin kubeconfig.
pub fn create_in(dir: &Path, toml: &str) -> (DeleteOnDrop, Kubectl) {
    let file = dir.join("cluster.toml");
    std::fs::write(&file, toml).unwrap();
    let state = dir.join("state");
    let cluster = DeleteOnDrop {
        file: file.clone(),
        state: state.clone(),
    };
    let created = berth(&["create"], &file, &state);
    assert!(created.status.success(), "{}", text(&created));
    let kubectl = Kubectl::with_kubeconfig(
        KUBECTL_1_33,
        &state.join("admin.kubeconfig"),
        &dir.join("kubectl-cache"),
    );
    (cluster, kubectl)
}
