//! The whole node's CPU and memory, from `/proc/stat` and `/proc/meminfo`
//! (what the root cgroup sums up: busy CPU time of every core; memory in use
//! less the inactive page cache as the working set). Parsing is pure; only
//! [`read`] touches the filesystem.

use std::io;

use jiff::Timestamp;

use super::Usage;

/// Clock ticks per second of `/proc/stat` (USER_HZ, 100 on every Linux ABI).
const USER_HZ: u64 = 100;

/// The node's usage and what is left.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NodeUsage {
    /// CPU and memory in use.
    pub usage: Usage,
    /// Memory available to new work (`MemAvailable`), in bytes.
    pub memory_available_bytes: u64,
    /// When the machine booted (`btime`), the node's start time.
    pub boot_time: Option<Timestamp>,
}

/// Busy CPU time of all cores in nanoseconds (everything but idle and
/// iowait), and the boot time, from `/proc/stat`.
pub fn parse_proc_stat(text: &str) -> io::Result<(u64, Option<Timestamp>)> {
    let mut busy = None;
    let mut boot_time = None;
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        match fields.next() {
            Some("cpu") => {
                let ticks: Vec<u64> = fields.filter_map(|f| f.parse().ok()).collect();
                let total: u64 = ticks.iter().take(8).sum();
                let idle = ticks.get(3).copied().unwrap_or(0) + ticks.get(4).copied().unwrap_or(0);
                busy = Some((total - idle).saturating_mul(1_000_000_000 / USER_HZ));
            }
            Some("btime") => {
                boot_time = fields
                    .next()
                    .and_then(|f| f.parse::<i64>().ok())
                    .and_then(|s| Timestamp::from_second(s).ok());
            }
            _ => {}
        }
    }
    let busy = busy
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "/proc/stat has no cpu line"))?;
    Ok((busy, boot_time))
}

/// Memory in use (MemTotal − MemFree), the working set (that less
/// Inactive(file)) and MemAvailable, in bytes, from `/proc/meminfo`.
pub fn parse_meminfo(text: &str) -> io::Result<(u64, u64, u64)> {
    let field = |name: &str| {
        text.lines()
            .find_map(|line| {
                let rest = line.strip_prefix(name)?.strip_prefix(':')?;
                let kib: u64 = rest.trim().trim_end_matches("kB").trim().parse().ok()?;
                Some(kib * 1024)
            })
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("/proc/meminfo has no {name}"),
                )
            })
    };
    let used = field("MemTotal")?.saturating_sub(field("MemFree")?);
    let working_set = used.saturating_sub(field("Inactive(file)").unwrap_or(0));
    Ok((used, working_set, field("MemAvailable")?))
}

/// Reads the node's usage from /proc.
pub fn read() -> io::Result<NodeUsage> {
    let (cpu, boot_time) = parse_proc_stat(&std::fs::read_to_string("/proc/stat")?)?;
    let (used, working_set, available) = parse_meminfo(&std::fs::read_to_string("/proc/meminfo")?)?;
    Ok(NodeUsage {
        usage: Usage {
            cpu_usage_nanos: cpu,
            memory_usage_bytes: used,
            memory_working_set_bytes: working_set,
            memory_rss_bytes: 0,
        },
        memory_available_bytes: available,
        boot_time,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_cpu_excludes_idle_and_iowait() {
        let (busy, boot) = parse_proc_stat(include_str!("fixtures/proc_stat")).unwrap();
        let ticks = 10_132_153 + 290_696 + 3_084_719 + 25_195;
        assert_eq!(busy, ticks * 10_000_000);
        assert_eq!(boot, Some(Timestamp::from_second(1_700_000_000).unwrap()));
        assert!(parse_proc_stat("intr 1 2 3").is_err());
    }

    #[test]
    fn memory_working_set_leaves_out_inactive_file_pages() {
        let (used, working_set, available) =
            parse_meminfo(include_str!("fixtures/proc_meminfo")).unwrap();
        assert_eq!(used, 6_000_000 * 1024);
        assert_eq!(working_set, 4_800_000 * 1024);
        assert_eq!(available, 5_000_000 * 1024);
        assert!(parse_meminfo("MemFree: 1 kB").is_err());
    }
}
