//! The pod network's edge to the kernel, through iproute2 (`ip`, `bridge`):
//! reads addresses, routes and VXLAN entries as JSON, and brings them to a
//! [`Plan`] in one batch each. Routes are tagged with [`ROUTE_PROTOCOL`] so
//! only those the agent made are ever changed or removed.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use serde::Deserialize;
use tokio::io::AsyncWriteExt;

use super::plan::{Forwarding, Neighbour, Plan, Route};

/// The routing protocol number on every route the agent makes (unassigned
/// in iproute2's `rt_protos`), so they can be told from everyone else's.
pub const ROUTE_PROTOCOL: u8 = 190;
/// The VXLAN network identifier every node uses.
pub const VNI: u32 = 1;
/// The UDP port of the overlay (Linux's and flannel's default).
pub const VXLAN_PORT: u16 = 8472;
/// What VXLAN adds to every packet (outer IPv4, UDP, VXLAN and Ethernet headers).
pub const VXLAN_OVERHEAD: u32 = 50;

/// Why talking to the kernel failed.
#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    /// A command could not be run at all.
    #[error("running {command} (Debian package iproute2): {source}")]
    Spawn {
        /// The command.
        command: String,
        /// The error.
        source: std::io::Error,
    },
    /// A command ran and failed.
    #[error("{command} failed: {stderr}")]
    Failed {
        /// The command.
        command: String,
        /// What it printed on stderr.
        stderr: String,
    },
    /// Its JSON output did not parse.
    #[error("reading the output of {command}: {source}")]
    Parse {
        /// The command.
        command: String,
        /// The error.
        source: serde_json::Error,
    },
}

/// Runs `program args`, feeding `input` on stdin; its stdout.
async fn run(program: &str, args: &[&str], input: Option<&str>) -> Result<String, KernelError> {
    let command = format!("{program} {}", args.join(" "));
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|source| KernelError::Spawn {
            command: command.clone(),
            source,
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        if let Some(input) = input {
            let _ = stdin.write_all(input.as_bytes()).await;
        }
    }
    let output = child
        .wait_with_output()
        .await
        .map_err(|source| KernelError::Spawn {
            command: command.clone(),
            source,
        })?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(KernelError::Failed {
            command,
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        })
    }
}

async fn json<T: for<'de> Deserialize<'de> + Default>(
    program: &str,
    args: &[&str],
) -> Result<T, KernelError> {
    let text = run(program, args, None).await?;
    parse(&text).map_err(|source| KernelError::Parse {
        command: format!("{program} {}", args.join(" ")),
        source,
    })
}

/// Parses iproute2's JSON, where no output at all means an empty list.
fn parse<T: for<'de> Deserialize<'de> + Default>(text: &str) -> Result<T, serde_json::Error> {
    if text.trim().is_empty() {
        return Ok(T::default());
    }
    serde_json::from_str(text)
}

/// Runs `program -force -batch -` over `lines` (each a command without the
/// program's name); every line is tried even when one fails.
async fn batch(program: &str, lines: &[String]) -> Result<(), KernelError> {
    if lines.is_empty() {
        return Ok(());
    }
    let mut input = lines.join("\n");
    input.push('\n');
    run(program, &["-force", "-batch", "-"], Some(&input))
        .await
        .map(|_| ())
}

/// One interface with its IPv4 addresses.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Interface {
    /// Its name.
    pub ifname: String,
    /// Its MTU.
    #[serde(default)]
    pub mtu: u32,
    /// Its addresses.
    #[serde(default)]
    pub addr_info: Vec<AddressInfo>,
}

/// One address of an interface.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct AddressInfo {
    /// The address.
    #[serde(default)]
    pub local: String,
}

/// Every interface with its IPv4 addresses.
pub async fn interfaces() -> Result<Vec<Interface>, KernelError> {
    json("ip", &["-j", "-4", "addr", "show"]).await
}

/// The interface holding `address`, if any.
pub fn interface_with(interfaces: &[Interface], address: Ipv4Addr) -> Option<&Interface> {
    let text = address.to_string();
    interfaces
        .iter()
        .find(|i| i.addr_info.iter().any(|a| a.local == text))
}

/// Every IPv4 address of this machine (of this network namespace).
pub fn local_addresses(interfaces: &[Interface]) -> BTreeSet<Ipv4Addr> {
    interfaces
        .iter()
        .flat_map(|i| &i.addr_info)
        .filter_map(|a| a.local.parse().ok())
        .collect()
}

#[derive(Debug, Default, Deserialize)]
struct KernelRoute {
    dst: String,
    #[serde(default)]
    protocol: Option<String>,
}

/// The routes of the main table: (destination, made by the agent).
async fn routes() -> Result<Vec<(String, bool)>, KernelError> {
    let routes: Vec<KernelRoute> = json("ip", &["-N", "-j", "-4", "route", "show"]).await?;
    let ours = ROUTE_PROTOCOL.to_string();
    Ok(routes
        .into_iter()
        .map(|r| {
            let mine = r.protocol.as_deref() == Some(ours.as_str());
            (r.dst, mine)
        })
        .collect())
}

/// The destinations some route the agent did not make already serves.
pub async fn foreign_routes() -> Result<BTreeSet<String>, KernelError> {
    Ok(routes()
        .await?
        .into_iter()
        .filter(|(_, mine)| !mine)
        .map(|(dst, _)| dst)
        .collect())
}

fn route_line(route: &Route) -> String {
    match &route.device {
        Some(device) => format!(
            "route replace {} via {} dev {device} onlink proto {ROUTE_PROTOCOL}",
            route.destination, route.gateway
        ),
        None => format!(
            "route replace {} via {} proto {ROUTE_PROTOCOL}",
            route.destination, route.gateway
        ),
    }
}

/// Brings the agent's routes to `wanted`: stale ones removed, the rest
/// (re)placed.
pub async fn sync_routes(wanted: &BTreeSet<Route>) -> Result<(), KernelError> {
    let destinations: BTreeSet<&str> = wanted.iter().map(|r| r.destination.as_str()).collect();
    let mut lines: Vec<String> = routes()
        .await?
        .into_iter()
        .filter(|(dst, mine)| *mine && !destinations.contains(dst.as_str()))
        .map(|(dst, _)| format!("route del {dst} proto {ROUTE_PROTOCOL}"))
        .collect();
    lines.extend(wanted.iter().map(route_line));
    batch("ip", &lines).await
}

#[derive(Debug, Default, Deserialize)]
struct LinkInfo {
    #[serde(default)]
    address: String,
    #[serde(default)]
    mtu: u32,
}

/// Makes sure VXLAN device `device` exists with MAC `mac`, sending from
/// `local` over `parent` with `mtu`, holds `address`/32 and is up. A device
/// of that name with another MAC or MTU is made again.
pub async fn ensure_vxlan(
    device: &str,
    mac: &str,
    local: Ipv4Addr,
    parent: &str,
    mtu: u32,
    address: Ipv4Addr,
) -> Result<(), KernelError> {
    let existing: Vec<LinkInfo> = json("ip", &["-j", "link", "show", "dev", device])
        .await
        .unwrap_or_default();
    let matches = existing
        .first()
        .is_some_and(|l| l.address == mac && l.mtu == mtu);
    let mut lines = Vec::new();
    if !matches {
        if !existing.is_empty() {
            lines.push(format!("link del {device}"));
        }
        lines.push(format!(
            "link add {device} address {mac} mtu {mtu} type vxlan id {VNI} local {local} dev {parent} dstport {VXLAN_PORT} nolearning"
        ));
    }
    lines.push(format!("addr replace {address}/32 dev {device}"));
    lines.push(format!("link set {device} up"));
    // Not -force: a device that cannot be made must stop the sync.
    let mut input = lines.join("\n");
    input.push('\n');
    run("ip", &["-batch", "-"], Some(&input)).await.map(|_| ())
}

/// Removes VXLAN device `device` if it exists (the node left VXLAN mode).
pub async fn remove_vxlan(device: &str) {
    let _ = run("ip", &["link", "del", device], None).await;
}

#[derive(Debug, Default, Deserialize)]
struct KernelNeighbour {
    dst: String,
    #[serde(default)]
    lladdr: String,
}

#[derive(Debug, Default, Deserialize)]
struct KernelForwarding {
    mac: String,
    #[serde(default)]
    dst: Option<String>,
}

/// Brings the neighbour and forwarding entries of VXLAN device `device` to
/// `neighbours` and `forwarding`; the device is the agent's alone.
pub async fn sync_vxlan_entries(
    device: &str,
    neighbours: &BTreeSet<Neighbour>,
    forwarding: &BTreeSet<Forwarding>,
) -> Result<(), KernelError> {
    let current: Vec<KernelNeighbour> =
        json("ip", &["-j", "-4", "neigh", "show", "dev", device]).await?;
    let mut lines: Vec<String> = current
        .iter()
        .filter(|n| {
            !neighbours
                .iter()
                .any(|w| w.address.to_string() == n.dst && w.mac == n.lladdr)
        })
        .map(|n| format!("neigh del {} dev {device}", n.dst))
        .collect();
    lines.extend(neighbours.iter().map(|n| {
        format!(
            "neigh replace {} lladdr {} dev {device} nud permanent",
            n.address, n.mac
        )
    }));
    batch("ip", &lines).await?;

    let current: Vec<KernelForwarding> =
        json("bridge", &["-j", "fdb", "show", "dev", device]).await?;
    let mut lines: Vec<String> = current
        .iter()
        .filter_map(|f| Some((f.mac.as_str(), f.dst.as_deref()?)))
        .filter(|(mac, dst)| {
            !forwarding
                .iter()
                .any(|w| w.mac == *mac && w.destination.to_string() == *dst)
        })
        .map(|(mac, dst)| format!("fdb del {mac} dev {device} dst {dst}"))
        .collect();
    lines.extend(forwarding.iter().map(|f| {
        format!(
            "fdb replace {} dev {device} dst {} self permanent",
            f.mac, f.destination
        )
    }));
    batch("bridge", &lines).await
}

/// Applies the plan: routes, then the VXLAN entries when `device` is set.
pub async fn apply(plan: &Plan, device: Option<&str>) -> Result<(), KernelError> {
    if let Some(device) = device {
        sync_vxlan_entries(device, &plan.neighbours, &plan.forwarding).await?;
    }
    sync_routes(&plan.routes).await
}

/// Lets the node forward packets between its pods, its peers and the world.
pub fn enable_forwarding() -> std::io::Result<()> {
    std::fs::write("/proc/sys/net/ipv4/ip_forward", "1")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iproute2_json_parses() {
        let text = r#"[{"ifindex":1,"ifname":"lo","mtu":65536,"addr_info":[{"family":"inet","local":"127.0.0.1","prefixlen":8}]},
            {"ifindex":2,"ifname":"eth0","mtu":1500,"addr_info":[{"family":"inet","local":"10.200.0.11","prefixlen":24}]}]"#;
        let interfaces: Vec<Interface> = parse(text).unwrap();
        let eth0 = interface_with(&interfaces, "10.200.0.11".parse().unwrap()).unwrap();
        assert_eq!((eth0.ifname.as_str(), eth0.mtu), ("eth0", 1500));
        assert_eq!(local_addresses(&interfaces).len(), 2);
        let routes: Vec<KernelRoute> = parse(
            r#"[{"dst":"default","gateway":"10.200.0.1","dev":"eth0","flags":[]},
                {"dst":"10.42.1.0/24","gateway":"10.200.0.12","dev":"eth0","protocol":"190","flags":[]}]"#,
        )
        .unwrap();
        assert_eq!(routes[1].protocol.as_deref(), Some("190"));
        let none: Vec<KernelRoute> = parse("").unwrap();
        assert!(none.is_empty());
    }

    #[test]
    fn routes_through_the_overlay_are_onlink() {
        let overlay = Route {
            destination: "10.42.1.0/24".into(),
            gateway: "10.42.1.0".parse().unwrap(),
            device: Some("bvx1".into()),
        };
        assert_eq!(
            route_line(&overlay),
            "route replace 10.42.1.0/24 via 10.42.1.0 dev bvx1 onlink proto 190"
        );
        let direct = Route {
            device: None,
            gateway: "10.200.0.12".parse().unwrap(),
            ..overlay
        };
        assert_eq!(
            route_line(&direct),
            "route replace 10.42.1.0/24 via 10.200.0.12 proto 190"
        );
    }
}
