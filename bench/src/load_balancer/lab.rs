//! The load-balancer benchmark's machines as network namespaces: a LAN
//! (a bridge in a namespace of its own, so nothing is made in the host's),
//! the nodes with a pod each behind a node bridge, the load-balancer host
//! with the pool address, and a client. Removed, with every process left
//! inside them, when dropped.

use std::process::Command;

use berth_bench::netns::{inside, run, wire_pod};

/// Prefix of every namespace the lab makes.
pub const PREFIX: &str = "blb";
/// The address HAProxy's frontend binds (the Service's from the pool).
pub const FRONTEND_ADDRESS: &str = "10.231.0.100";

/// The LAN address of node `index`.
pub fn node_address(index: usize) -> String {
    format!("10.231.0.{}", 11 + index)
}

/// The pod CIDR of node `index`.
pub fn pod_cidr(index: usize) -> String {
    format!("10.232.{index}.0/24")
}

/// The address of node `index`'s pod.
pub fn pod_address(index: usize) -> String {
    format!("10.232.{index}.2")
}

/// `nodes` nodes with a pod each, a load-balancer host and a client.
pub struct Lab {
    nodes: usize,
}

impl Lab {
    /// The namespace of node `index`.
    pub fn node(index: usize) -> String {
        format!("{PREFIX}-n{index}")
    }

    /// The namespace of node `index`'s pod.
    pub fn pod(index: usize) -> String {
        format!("{PREFIX}-p{index}")
    }

    /// The load-balancer host's namespace.
    pub fn balancer() -> String {
        format!("{PREFIX}-lb")
    }

    /// The client's namespace.
    pub fn client() -> String {
        format!("{PREFIX}-c")
    }

    fn lan() -> String {
        format!("{PREFIX}-lan")
    }

    fn namespaces(nodes: usize) -> Vec<String> {
        let mut all = vec![Self::balancer(), Self::client()];
        for index in 0..nodes {
            all.push(Self::node(index));
            all.push(Self::pod(index));
        }
        all.push(Self::lan());
        all
    }

    /// Wires a fresh lab, removing what an interrupted run left.
    pub fn build(nodes: usize) -> anyhow::Result<Self> {
        Self::remove(nodes);
        let lab = Self { nodes };
        for netns in Self::namespaces(nodes) {
            run(&["ip", "netns", "add", &netns])?;
        }
        let lan = Self::lan();
        inside(
            &lan,
            &[
                "sh",
                "-c",
                "ip link set lo up && ip link add br0 type bridge && ip link set br0 up",
            ],
        )?;
        // Many short connections: give the clients the whole port range.
        let host = "ip link set lo up && ip link set eth0 up && \
                    sysctl -qw net.ipv4.ip_local_port_range='1024 65000'";
        let machines = [
            (Self::balancer(), "10.231.0.2".to_owned()),
            (Self::client(), "10.231.0.3".to_owned()),
        ]
        .into_iter()
        .chain((0..nodes).map(|index| (Self::node(index), node_address(index))));
        for (netns, address) in machines {
            let port = format!("v{}", netns.trim_start_matches(PREFIX));
            run(&[
                "ip", "-n", &lan, "link", "add", &port, "type", "veth", "peer", "name", "eth0",
                "netns", &netns,
            ])?;
            run(&[
                "ip", "-n", &lan, "link", "set", &port, "master", "br0", "up",
            ])?;
            inside(
                &netns,
                &[
                    "sh",
                    "-c",
                    &format!("{host} && ip addr add {address}/24 dev eth0"),
                ],
            )?;
        }
        inside(
            &Self::balancer(),
            &[
                "ip",
                "addr",
                "add",
                &format!("{FRONTEND_ADDRESS}/32"),
                "dev",
                "eth0",
            ],
        )?;
        for index in 0..nodes {
            let node = Self::node(index);
            let pod = Self::pod(index);
            wire_pod(
                &node,
                &pod,
                &format!("10.232.{index}.1"),
                &pod_address(index),
            )?;
            // Routes to the other nodes' pods, as the routed pod network has.
            for peer in (0..nodes).filter(|peer| *peer != index) {
                inside(
                    &node,
                    &[
                        "ip",
                        "route",
                        "add",
                        &pod_cidr(peer),
                        "via",
                        &node_address(peer),
                    ],
                )?;
            }
        }
        Ok(lab)
    }

    /// Kills every process in `netns` and waits until none is left.
    pub fn kill_inside(netns: &str) -> anyhow::Result<()> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let pids = pids(netns);
            if pids.is_empty() {
                return Ok(());
            }
            anyhow::ensure!(
                std::time::Instant::now() < deadline,
                "processes {pids:?} in {netns} outlived SIGKILL"
            );
            for pid in pids {
                // SAFETY: kill(2) on a process in a namespace of this lab.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// Kills what runs in the lab's namespaces and deletes them (their links go with them).
    fn remove(nodes: usize) {
        for netns in Self::namespaces(nodes) {
            let _ = Self::kill_inside(&netns);
            let _ = Command::new("ip")
                .args(["netns", "delete", &netns])
                .output();
        }
    }
}

/// The processes in network namespace `netns` (none if it does not exist).
fn pids(netns: &str) -> Vec<i32> {
    Command::new("ip")
        .args(["netns", "pids", netns])
        .output()
        .map(|output| {
            String::from_utf8_lossy(&output.stdout)
                .split_whitespace()
                .filter_map(|pid| pid.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

impl Drop for Lab {
    fn drop(&mut self) {
        Self::remove(self.nodes);
    }
}
