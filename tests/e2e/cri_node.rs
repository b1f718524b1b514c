//! A real node for end-to-end tests: the offline test images in a local
//! registry on a free loopback port, and `berth agent --runtime cri` with its
//! own containerd under a temporary directory. Dropping it stops the agent
//! (and so its containerd), kills any container shims left behind, removes
//! the node's bridge and the registry: a failed test leaves nothing running.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

pub use berth_agent::runtime::cri::cni::bridge_name;

use crate::support::{free_port, wait_for, BerthProcess, Kubectl, Server};

/// The local registry of `tests/images/build.sh`, stopped when dropped.
pub struct Registry {
    dir: tempfile::TempDir,
    /// The port it listens on (127.0.0.1).
    pub port: u16,
}

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/images")
        .join(name)
}

impl Registry {
    /// Builds and pushes the test images to a registry on a free port.
    pub fn start() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("berth-registry")
            .tempdir()
            .unwrap();
        let port = free_port();
        let registry = Self { dir, port };
        let output = Command::new("bash")
            .arg(script("build.sh"))
            .args(["--port", &port.to_string(), "--dir"])
            .arg(registry.dir.path())
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "tests/images/build.sh failed:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        registry
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Where the registry keeps its blobs (a second registry may serve them too).
    pub fn storage_dir(&self) -> PathBuf {
        self.dir.path().join("storage")
    }

    /// The full reference of test image `name` (`web:1`).
    pub fn image(&self, name: &str) -> String {
        format!("{}/{name}", self.host())
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(script("stop.sh"))
            .args(["--dir"])
            .arg(self.dir.path())
            .output();
    }
}

/// `berth agent --runtime cri` for one node, cleaned up when dropped.
pub struct CriNode {
    /// The agent process.
    pub agent: BerthProcess,
    /// The agent's data directory.
    pub data_dir: PathBuf,
    name: String,
    args: Vec<String>,
    _dir: tempfile::TempDir,
}

/// Turns the ingress proxy off unless `extra` sets its ports: test nodes
/// share the host's 127.0.0.1, where only one could hold ports 80 and 443.
fn ingress_off(extra: &[&str]) -> Vec<String> {
    let mut off = Vec::new();
    for flag in ["--ingress-http-port", "--ingress-https-port"] {
        if !extra.iter().any(|a| a.starts_with(flag)) {
            off.extend([flag.to_owned(), "0".to_owned()]);
        }
    }
    off
}

impl CriNode {
    /// Starts node `name` pulling from `registry`.
    pub fn start(server: &Server, registry: &Registry, name: &str) -> Self {
        Self::start_with(server, registry, name, &[])
    }

    /// Starts node `name` pulling from `registry`, with `extra` agent flags.
    pub fn start_with(server: &Server, registry: &Registry, name: &str, extra: &[&str]) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("berth-node")
            .tempdir()
            .unwrap();
        let data_dir = dir.path().join("agent");
        let args: Vec<String> = [
            "agent",
            "--runtime",
            "cri",
            "--name",
            name,
            "--heartbeat-interval",
            "2s",
            "--node-ip",
            "127.0.0.1",
            "--kubelet-port",
            &free_port().to_string(),
            "--pause-image",
            &registry.image("pause:3.10"),
            "--insecure-registry",
            &registry.host(),
            "--data-dir",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain([data_dir.display().to_string()])
        .chain(ingress_off(extra))
        .chain(extra.iter().map(|s| s.to_string()))
        .collect();
        let agent = spawn(server, name, &args);
        Self {
            agent,
            data_dir,
            name: name.to_owned(),
            args,
            _dir: dir,
        }
    }

    /// Waits (up to `timeout`) until the node has registered and is Ready,
    /// failing with the agent's and server's logs otherwise.
    pub fn wait_ready(&mut self, server: &Server, kubectl: &Kubectl, timeout: Duration) {
        let name = self.name.clone();
        wait_for(
            "the node registers Ready",
            timeout,
            server,
            &mut [&mut self.agent],
            || {
                let out = kubectl.run(&[
                    "get",
                    "node",
                    &name,
                    "-o",
                    r#"jsonpath={.status.conditions[?(@.type=="Ready")].status}"#,
                ]);
                (String::from_utf8_lossy(&out.stdout) == "True").then_some(())
            },
        );
    }

    /// Stops the agent with SIGTERM (containers keep running) and starts it again.
    pub fn restart(&mut self, server: &Server) {
        self.agent.terminate();
        self.agent = spawn(server, &self.name, &self.args);
    }

    /// The containerd socket of the node.
    pub fn socket(&self) -> PathBuf {
        self.data_dir.join("containerd/containerd.sock")
    }

    /// `ctr --address SOCKET --namespace k8s.io ARGS`, its stdout.
    pub fn ctr(&self, args: &[&str]) -> String {
        let output = Command::new("ctr")
            .arg("--address")
            .arg(self.socket())
            .args(["--namespace", "k8s.io"])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// The node's bridge interface name (the agent's naming).
    pub fn bridge(&self) -> String {
        bridge_name(&self.name)
    }
}

fn spawn(server: &Server, name: &str, args: &[String]) -> BerthProcess {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    server.spawn_berth(&format!("agent-{name}"), &args)
}

impl Drop for CriNode {
    fn drop(&mut self) {
        self.agent.terminate();
        clean_up_node(&self.data_dir, &self.name);
    }
}

/// Kills the container shims a node's containerd left (they outlive it by
/// design; a test's must not outlive the test), removes its bridge and
/// Service and NetworkPolicy tables, and unmounts whatever is still mounted under its data directory.
pub fn clean_up_node(data_dir: &Path, node: &str) {
    // The pods' own network namespaces, found through their veths on the
    // node's bridge while it still exists; what runs in them goes too.
    let pods = pod_namespaces(&bridge_name(node));
    let socket = data_dir.join("containerd/containerd.sock");
    let config = data_dir.join("containerd/config.toml");
    for pattern in [socket, config] {
        let _ = Command::new("pkill")
            .args(["-KILL", "-f"])
            .arg(pattern)
            .status();
    }
    for netns in pods {
        let pids = Command::new("ip")
            .args(["netns", "pids", &netns])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        for pid in pids.split_whitespace() {
            let _ = Command::new("kill").args(["-KILL", pid]).status();
        }
        let _ = Command::new("ip")
            .args(["netns", "delete", &netns])
            .output();
    }
    let _ = Command::new("ip")
        .args(["link", "delete", &bridge_name(node)])
        .output();
    let [services, services_b] = berth_agent::network::service_proxy::table_names(node);
    for table in [
        services,
        services_b,
        berth_agent::network::pod_network::masquerade::table_name(node),
        berth_agent::network::network_policy::table_name(node),
    ] {
        let _ = Command::new("nft")
            .args(["delete", "table", "ip", &table])
            .output();
    }
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    let prefix = data_dir.display().to_string();
    let mut points: Vec<&str> = mounts
        .lines()
        .filter_map(|l| l.split(' ').nth(1))
        .filter(|p| p.starts_with(&prefix))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for point in points {
        let _ = Command::new("umount").args(["-l", point]).status();
    }
}

/// The named network namespaces (CNI's `cni-…`) at the other end of the
/// veths enslaved to `bridge`.
fn pod_namespaces(bridge: &str) -> Vec<String> {
    let stdout = |args: &[&str]| {
        Command::new("ip")
            .args(args)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    };
    let links: serde_json::Value =
        serde_json::from_str(&stdout(&["-j", "link", "show", "master", bridge]))
            .unwrap_or_default();
    let ids: Vec<i64> = links
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| l.get("link_netnsid").and_then(serde_json::Value::as_i64))
        .collect();
    // `nsid 3 (iproute2 netns name: cni-…)`
    stdout(&["netns", "list-id"])
        .lines()
        .filter_map(|line| {
            let id: i64 = line
                .strip_prefix("nsid ")?
                .split_whitespace()
                .next()?
                .parse()
                .ok()?;
            let name = line.split("netns name: ").nth(1)?.trim_end_matches(')');
            (ids.contains(&id) && name.starts_with("cni-")).then(|| name.to_owned())
        })
        .collect()
}
