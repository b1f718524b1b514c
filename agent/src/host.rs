//! What the machine under a real node actually has (CPUs, memory, disk, boot
//! and machine IDs, OS, address), so the Node it registers tells the truth as
//! kubelet's does. Reads /proc, /sys and /etc only; it never writes and never
//! opens a network connection. Parsing is pure and tested on sample text.

mod sys;

use std::collections::BTreeMap;
use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use berth_api::quantity::{Format, Quantity};
use k8s_openapi::api::core::v1::NodeSystemInfo;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity as OpenApiQuantity;

/// The facts about this machine a Node's status reports: its capacity and
/// its `nodeInfo`, plus the address others reach it at.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostFacts {
    /// Online CPUs (cadvisor's `NumCores`), not limited by this process's quota.
    pub cpus: u32,
    /// Physical memory (`MemTotal`), in bytes.
    pub memory_bytes: u64,
    /// Size of the filesystem holding the agent's data directory, in bytes:
    /// what pods' writable layers and emptyDirs share.
    pub ephemeral_storage_bytes: u64,
    /// Changes on every boot; lets the control plane notice a reboot.
    pub boot_id: String,
    /// `/etc/machine-id`, empty when the machine has none.
    pub machine_id: String,
    /// The firmware's UUID (`/sys/class/dmi/id/product_uuid`), empty when
    /// unreadable (it is root-only on most machines).
    pub system_uuid: String,
    /// The running kernel's release, e.g. `6.8.0-45-generic`.
    pub kernel_version: String,
    /// `PRETTY_NAME` of /etc/os-release, `Linux` when absent (as cadvisor).
    pub os_image: String,
    /// The CPU architecture in Go's words (`amd64`, `arm64`), as
    /// `kubernetes.io/arch` and `nodeInfo.architecture` use them.
    pub architecture: String,
    /// The kernel's host name.
    pub hostname: String,
    /// The node's `InternalIP`: see [`pick_internal_ip`].
    pub internal_ip: Option<IpAddr>,
}

/// Reads this machine's facts; `data_dir` is where pods' data will live
/// (it need not exist yet: its nearest existing ancestor is measured).
/// Fails only when capacity cannot be known (memory, CPUs, disk); the
/// descriptive facts fall back to empty or default values.
pub fn detect(data_dir: &Path) -> io::Result<HostFacts> {
    let memory_bytes = parse_meminfo(&std::fs::read_to_string("/proc/meminfo")?)
        .ok_or_else(|| invalid_data("/proc/meminfo has no MemTotal line"))?;
    let cpus = match read_trimmed("/sys/devices/system/cpu/online").and_then(|t| parse_cpu_list(&t))
    {
        Some(cpus) => cpus,
        None => u32::try_from(std::thread::available_parallelism()?.get()).unwrap_or(u32::MAX),
    };
    let ephemeral_storage_bytes = sys::filesystem_size(&nearest_existing(data_dir))?;
    let default_interface = std::fs::read_to_string("/proc/net/route")
        .ok()
        .and_then(|routes| parse_default_route_interface(&routes));
    let addresses = sys::interface_addresses().unwrap_or_else(|e| {
        tracing::warn!(error = %e, "cannot list interface addresses; the node will have no InternalIP");
        Vec::new()
    });
    let os_release = std::fs::read_to_string("/etc/os-release")
        .or_else(|_| std::fs::read_to_string("/usr/lib/os-release"))
        .unwrap_or_default();
    Ok(HostFacts {
        cpus,
        memory_bytes,
        ephemeral_storage_bytes,
        boot_id: read_trimmed("/proc/sys/kernel/random/boot_id").unwrap_or_default(),
        machine_id: read_trimmed("/etc/machine-id")
            .or_else(|| read_trimmed("/var/lib/dbus/machine-id"))
            .unwrap_or_default(),
        system_uuid: read_trimmed("/sys/class/dmi/id/product_uuid").unwrap_or_default(),
        kernel_version: read_trimmed("/proc/sys/kernel/osrelease").unwrap_or_default(),
        os_image: parse_os_release(&os_release).unwrap_or_else(|| "Linux".into()),
        architecture: go_arch(std::env::consts::ARCH),
        hostname: read_trimmed("/proc/sys/kernel/hostname").unwrap_or_default(),
        internal_ip: pick_internal_ip(None, default_interface.as_deref(), &addresses),
    })
}

impl HostFacts {
    /// The Node's `status.capacity`, printed as kubelet prints it: whole
    /// cores, bytes in canonical binary form (`24594232Ki`), and `max_pods`.
    pub fn capacity(&self, max_pods: u32) -> BTreeMap<String, OpenApiQuantity> {
        let bytes = |b: u64| Quantity::new(i64::try_from(b).unwrap_or(i64::MAX), Format::BinarySI);
        [
            ("cpu", Quantity::new(self.cpus.into(), Format::DecimalSI)),
            ("memory", bytes(self.memory_bytes)),
            ("ephemeral-storage", bytes(self.ephemeral_storage_bytes)),
            ("pods", Quantity::new(max_pods.into(), Format::DecimalSI)),
        ]
        .into_iter()
        .map(|(name, q)| (name.to_owned(), OpenApiQuantity(q.to_string())))
        .collect()
    }

    /// The Node's `status.nodeInfo`, from these facts plus what only the
    /// caller knows (its own version and the runtime's).
    pub fn system_info(
        &self,
        kubelet_version: &str,
        container_runtime_version: String,
    ) -> NodeSystemInfo {
        NodeSystemInfo {
            architecture: self.architecture.clone(),
            boot_id: self.boot_id.clone(),
            container_runtime_version,
            kernel_version: self.kernel_version.clone(),
            kube_proxy_version: kubelet_version.to_owned(),
            kubelet_version: kubelet_version.to_owned(),
            machine_id: self.machine_id.clone(),
            operating_system: "linux".into(),
            os_image: self.os_image.clone(),
            system_uuid: self.system_uuid.clone(),
            ..NodeSystemInfo::default()
        }
    }
}

/// One address of one network interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceAddress {
    /// The interface's name, e.g. `eth0`.
    pub interface: String,
    /// The address.
    pub address: IpAddr,
}

/// The node's `InternalIP`, in kubelet's order of preference: the
/// `--node-ip` the operator gave, else the IPv4 address of the interface
/// holding the default route, else the first IPv4 address that is neither
/// loopback nor link-local, else none.
pub fn pick_internal_ip(
    node_ip: Option<IpAddr>,
    default_interface: Option<&str>,
    addresses: &[InterfaceAddress],
) -> Option<IpAddr> {
    if node_ip.is_some() {
        return node_ip;
    }
    let usable = |a: &&InterfaceAddress| match a.address {
        IpAddr::V4(v4) => !v4.is_loopback() && !v4.is_link_local() && !v4.is_unspecified(),
        IpAddr::V6(_) => false,
    };
    default_interface
        .and_then(|name| {
            addresses
                .iter()
                .filter(usable)
                .find(|a| a.interface == name)
        })
        .or_else(|| addresses.iter().find(usable))
        .map(|a| a.address)
}

/// `MemTotal` of /proc/meminfo, in bytes.
pub fn parse_meminfo(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let mut fields = line["MemTotal:".len()..].split_whitespace();
    let amount: u64 = fields.next()?.parse().ok()?;
    match fields.next() {
        Some("kB") => amount.checked_mul(1024),
        None => Some(amount),
        Some(_) => None,
    }
}

/// `PRETTY_NAME` of an os-release file, unquoted; none when absent or empty.
pub fn parse_os_release(text: &str) -> Option<String> {
    let raw = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("PRETTY_NAME="))
        .next_back()?
        .trim();
    let unquoted = match raw.as_bytes() {
        [q @ (b'"' | b'\''), .., last] if last == q => &raw[1..raw.len() - 1],
        _ => raw,
    };
    let mut value = String::with_capacity(unquoted.len());
    let mut chars = unquoted.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => value.extend(chars.next()),
            c => value.push(c),
        }
    }
    (!value.is_empty()).then_some(value)
}

/// The interface of the default IPv4 route in /proc/net/route (destination
/// and mask zero, route up), the one with the lowest metric when several.
pub fn parse_default_route_interface(text: &str) -> Option<String> {
    const RTF_UP: u32 = 0x1;
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [iface, destination, _gateway, flags, _refcnt, _use, metric, mask, ..] =
                fields.as_slice()
            else {
                return None;
            };
            let hex = |s: &str| u32::from_str_radix(s, 16).ok();
            let default = hex(destination)? == 0 && hex(mask)? == 0;
            let up = hex(flags)? & RTF_UP != 0;
            (default && up).then(|| (metric.parse::<u32>().unwrap_or(u32::MAX), *iface))
        })
        .min_by_key(|(metric, _)| *metric)
        .map(|(_, iface)| iface.to_owned())
}

/// How many CPUs a kernel CPU list names (`0-3,8-11` → 8).
pub fn parse_cpu_list(text: &str) -> Option<u32> {
    let mut count = 0u32;
    for range in text.trim().split(',').filter(|r| !r.is_empty()) {
        let (first, last) = match range.split_once('-') {
            Some((a, b)) => (a.trim().parse::<u32>().ok()?, b.trim().parse::<u32>().ok()?),
            None => {
                let only = range.trim().parse::<u32>().ok()?;
                (only, only)
            }
        };
        count = count.checked_add(last.checked_sub(first)?.checked_add(1)?)?;
    }
    (count > 0).then_some(count)
}

/// Rust's name for a CPU architecture in Go's words, which Kubernetes uses.
pub fn go_arch(rust_arch: &str) -> String {
    match rust_arch {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
        "loongarch64" => "loong64",
        other => other,
    }
    .to_owned()
}

/// `path` if it exists, else its nearest ancestor that does (`.` at worst).
fn nearest_existing(path: &Path) -> PathBuf {
    path.ancestors()
        .find(|p| !p.as_os_str().is_empty() && p.exists())
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

fn read_trimmed(path: &str) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

fn invalid_data(message: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const MEMINFO: &str = "MemTotal:       24594232 kB\nMemFree:         1802112 kB\n";
    const ROUTE: &str = "\
Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth1\t00000000\t0102A8C0\t0003\t0\t0\t600\t00000000\t0\t0\t0
eth0\t00000000\t0101A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0
eth0\t0001A8C0\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0
";

    fn address(interface: &str, ip: [u8; 4]) -> InterfaceAddress {
        InterfaceAddress {
            interface: interface.into(),
            address: IpAddr::V4(Ipv4Addr::from(ip)),
        }
    }

    #[test]
    fn meminfo_total_is_read_in_bytes() {
        assert_eq!(parse_meminfo(MEMINFO), Some(24594232 * 1024));
        assert_eq!(parse_meminfo("MemFree: 1 kB\n"), None);
        assert_eq!(parse_meminfo("MemTotal: lots kB\n"), None);
    }

    #[test]
    fn os_release_pretty_name_is_unquoted() {
        let cases = [
            (
                "NAME=\"Ubuntu\"\nPRETTY_NAME=\"Ubuntu 24.04.1 LTS\"\n",
                Some("Ubuntu 24.04.1 LTS"),
            ),
            (
                "PRETTY_NAME='Debian GNU/Linux 12 (bookworm)'",
                Some("Debian GNU/Linux 12 (bookworm)"),
            ),
            ("PRETTY_NAME=Alpine", Some("Alpine")),
            ("PRETTY_NAME=\"say \\\"hi\\\"\"", Some("say \"hi\"")),
            ("PRETTY_NAME=\"\"", None),
            ("NAME=Fedora\n", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_os_release(text).as_deref(), want, "{text}");
        }
    }

    #[test]
    fn default_route_interface_prefers_the_lowest_metric() {
        assert_eq!(
            parse_default_route_interface(ROUTE).as_deref(),
            Some("eth0")
        );
        let header_only = ROUTE.lines().next().unwrap();
        assert_eq!(parse_default_route_interface(header_only), None);
        let down = ROUTE.replace("0003", "0002");
        assert_eq!(parse_default_route_interface(&down), None);
    }

    #[test]
    fn cpu_lists_are_counted() {
        let cases = [
            ("0-3\n", Some(4)),
            ("0", Some(1)),
            ("0-3,8-11", Some(8)),
            ("0,2,4", Some(3)),
        ];
        for (text, want) in cases {
            assert_eq!(parse_cpu_list(text), want, "{text}");
        }
        for bad in ["", "3-1", "x", "0-"] {
            assert_eq!(parse_cpu_list(bad), None, "{bad}");
        }
    }

    #[test]
    fn internal_ip_follows_kubelet_preference() {
        let addresses = [
            address("lo", [127, 0, 0, 1]),
            address("docker0", [172, 17, 0, 1]),
            address("eth0", [169, 254, 3, 3]),
            address("eth0", [10, 0, 0, 5]),
        ];
        let given = Some(IpAddr::V4(Ipv4Addr::new(192, 168, 1, 9)));
        assert_eq!(pick_internal_ip(given, Some("eth0"), &addresses), given);
        let via_route = pick_internal_ip(None, Some("eth0"), &addresses);
        assert_eq!(via_route, Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 5))));
        let first_usable = pick_internal_ip(None, Some("wg0"), &addresses);
        assert_eq!(first_usable, Some(IpAddr::V4(Ipv4Addr::new(172, 17, 0, 1))));
        assert_eq!(pick_internal_ip(None, None, &addresses[..1]), None);
    }

    #[test]
    fn architectures_use_go_names() {
        assert_eq!(go_arch("x86_64"), "amd64");
        assert_eq!(go_arch("aarch64"), "arm64");
        assert_eq!(go_arch("riscv64"), "riscv64");
    }

    #[test]
    fn capacity_is_printed_as_kubelet_prints_it() {
        let facts = HostFacts {
            cpus: 2,
            memory_bytes: 24594232 * 1024,
            ephemeral_storage_bytes: 101430960 * 1024,
            ..HostFacts::default()
        };
        let capacity = facts.capacity(110);
        let shown: Vec<(&str, &str)> = capacity
            .iter()
            .map(|(k, v)| (k.as_str(), v.0.as_str()))
            .collect();
        assert_eq!(
            shown,
            [
                ("cpu", "2"),
                ("ephemeral-storage", "101430960Ki"),
                ("memory", "24594232Ki"),
                ("pods", "110"),
            ]
        );
    }

    #[test]
    fn detect_reads_this_machine() {
        let missing = std::env::temp_dir().join("berth-host-test-not-created/data");
        let facts = detect(&missing).unwrap();
        assert!(facts.cpus >= 1);
        assert!(facts.memory_bytes > 0);
        assert!(facts.ephemeral_storage_bytes > 0);
        assert!(!facts.kernel_version.is_empty());
        assert!(!facts.architecture.is_empty());
    }
}
