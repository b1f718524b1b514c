//! A cluster of several "machines" for end-to-end tests: network namespaces
//! made by `tests/hosts/hosts.sh`, each running `berth agent --runtime cri`
//! with its own containerd, against a `berth server` and a mirror of the
//! offline test registry on the hosts' bridge address. Dropping it stops
//! the agents, kills their container shims and removes the namespaces and
//! bridges: a failed test leaves nothing running.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::cri_node::{clean_up_node, Registry};
use crate::support::{BerthProcess, Datastore, Server};

/// How the test hosts are wired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topology {
    /// Every host on one bridge: one L2 network.
    OneLan,
    /// Odd and even hosts on two bridges this machine routes between.
    TwoLans,
}

impl Topology {
    fn flag(self) -> &'static str {
        match self {
            Self::OneLan => "one-lan",
            Self::TwoLans => "two-lans",
        }
    }
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/hosts/hosts.sh")
}

/// One test host.
#[derive(Debug, Clone)]
pub struct Host {
    /// Its network namespace.
    pub netns: String,
    /// Its address on its bridge.
    pub address: String,
    /// Its bridge's address on this machine (its default gateway).
    pub gateway: String,
}

impl Host {
    /// Gives programs started with `ip netns exec` in this host's namespace
    /// a hosts file resolving each name to its addresses, in order (what a
    /// DNS name with several A records gives them). Removed when dropped.
    pub fn resolving(&self, names: &[(&str, Vec<&str>)]) -> HostsFile {
        let dir = PathBuf::from("/etc/netns").join(&self.netns);
        std::fs::create_dir_all(&dir).expect("creating /etc/netns/NAME");
        let mut text = String::from("127.0.0.1 localhost\n");
        for (name, addresses) in names {
            for address in addresses {
                text.push_str(&format!("{address} {name}\n"));
            }
        }
        std::fs::write(dir.join("hosts"), text).expect("writing /etc/netns/NAME/hosts");
        HostsFile { dir }
    }

    /// Runs `args` inside the host's network namespace.
    pub fn run(&self, args: &[&str]) -> Output {
        Command::new("nsenter")
            .arg(format!("--net=/var/run/netns/{}", self.netns))
            .args(args)
            .output()
            .expect("running nsenter")
    }

    /// Runs `args` inside the host's network namespace; its stdout.
    pub fn stdout(&self, args: &[&str]) -> String {
        String::from_utf8_lossy(&self.run(args).stdout).into_owned()
    }
}

/// Namespaces made by `hosts.sh up`, removed by `hosts.sh down` when dropped.
pub struct Hosts {
    prefix: String,
    /// The hosts, in order.
    pub hosts: Vec<Host>,
}

impl Hosts {
    /// Makes `count` hosts named `PREFIX-1…` on `SUBNET.0.0/24` (and
    /// `SUBNET.1.0/24` for two LANs).
    pub fn up(prefix: &str, count: usize, subnet: &str, topology: Topology) -> Self {
        let output = Command::new("bash")
            .arg(script())
            .args(["up", "--prefix", prefix, "--count", &count.to_string()])
            .args(["--subnet", subnet, "--topology", topology.flag()])
            .output()
            .expect("running tests/hosts/hosts.sh");
        let mut hosts = Self {
            prefix: prefix.to_owned(),
            hosts: Vec::new(),
        };
        assert!(
            output.status.success(),
            "hosts.sh up failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        hosts.hosts = String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                Host {
                    netns: fields[0].to_owned(),
                    address: fields[1].to_owned(),
                    gateway: fields[2].to_owned(),
                }
            })
            .collect();
        assert_eq!(hosts.hosts.len(), count);
        hosts
    }
}

/// `/etc/netns/NAME/hosts` of one host, removed on drop.
pub struct HostsFile {
    dir: PathBuf,
}

impl Drop for HostsFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(script())
            .args(["down", "--prefix", &self.prefix])
            .output();
    }
}

/// A second `docker-registry` serving the test registry's storage on the
/// hosts' bridge address (the hosts have loopbacks of their own).
pub struct RegistryMirror {
    child: Child,
    /// `ADDRESS:PORT`.
    pub host: String,
    _config: tempfile::NamedTempFile,
}

impl RegistryMirror {
    /// Serves `registry`'s images on `address`.
    pub fn start(registry: &Registry, address: &str) -> Self {
        let port = crate::support::free_port();
        let host = format!("{address}:{port}");
        let config = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(
            config.path(),
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {host}\n",
                registry.storage_dir().display()
            ),
        )
        .unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(config.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("docker-registry is installed by tests/run-all.sh");
        let mirror = Self {
            child,
            host,
            _config: config,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(&mirror.host).is_err() {
            assert!(Instant::now() < deadline, "registry mirror not up");
            std::thread::sleep(Duration::from_millis(50));
        }
        mirror
    }

    /// The full reference of test image `name` (`web:1`) through the mirror.
    pub fn image(&self, name: &str) -> String {
        format!("{}/{name}", self.host)
    }
}

impl Drop for RegistryMirror {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One node of a [`HostCluster`]: an agent inside a test host.
pub struct HostNode {
    /// The Node's name.
    pub name: String,
    /// The host it runs on.
    pub host: Host,
    /// The agent process.
    pub agent: BerthProcess,
    data_dir: PathBuf,
    _dir: tempfile::TempDir,
}

/// A server on this machine and one agent per test host.
pub struct HostCluster {
    /// The agents (stopped and cleaned first when dropped).
    pub nodes: Vec<HostNode>,
    /// The image mirror the hosts pull from.
    pub mirror: RegistryMirror,
    /// The API server, listening on the first bridge's address.
    pub server: Server,
    /// The test registry the mirror serves.
    pub registry: Registry,
    /// The namespaces (removed last).
    pub hosts: Hosts,
}

impl HostCluster {
    /// `count` hosts named after `prefix` on `subnet`, each running an agent
    /// with `agent_args` (`--network-mode vxlan`); the server gets `server_args`.
    pub fn start(
        prefix: &str,
        count: usize,
        subnet: &str,
        topology: Topology,
        server_args: &[&str],
        agent_args: &[&str],
    ) -> Self {
        let hosts = Hosts::up(prefix, count, subnet, topology);
        let registry = Registry::start();
        let gateway = hosts.hosts[0].gateway.clone();
        let server = Server::start_listening(Datastore::Sqlite, &gateway, server_args);
        let mirror = RegistryMirror::start(&registry, &gateway);
        let mut cluster = Self {
            nodes: Vec::new(),
            mirror,
            server,
            registry,
            hosts,
        };
        for (index, host) in cluster.hosts.hosts.clone().into_iter().enumerate() {
            let name = format!("{prefix}-node{}", index + 1);
            let dir = tempfile::Builder::new()
                .prefix("berth-host-node")
                .tempdir()
                .unwrap();
            let data_dir = dir.path().join("agent");
            let data = data_dir.display().to_string();
            let mut args = vec![
                "agent",
                "--runtime",
                "cri",
                "--name",
                &name,
                "--heartbeat-interval",
                "2s",
                "--node-ip",
                &host.address,
                "--insecure-registry",
                &cluster.mirror.host,
                "--data-dir",
                &data,
            ];
            args.extend_from_slice(agent_args);
            let agent =
                cluster
                    .server
                    .spawn_berth_in(Some(&host.netns), &format!("agent-{name}"), &args);
            cluster.nodes.push(HostNode {
                name,
                host,
                agent,
                data_dir,
                _dir: dir,
            });
        }
        cluster
    }

    /// Stops node `index`'s agent (SIGTERM; its pods keep running until the
    /// namespaces go).
    pub fn stop_agent(&mut self, index: usize) {
        self.nodes[index].agent.terminate();
    }

    /// Every agent's log, for failure messages.
    pub fn logs(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("==== {}\n{}", n.name, n.agent.log()))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for HostCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            node.agent.terminate();
            clean_up_node(&node.data_dir, &node.name);
        }
    }
}
