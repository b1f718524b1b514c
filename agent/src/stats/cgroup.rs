//! A container's CPU and memory as its cgroup counts them, read the way
//! cAdvisor reads them: cgroup v1 (`cpuacct.usage`, `memory.usage_in_bytes`,
//! `memory.stat`) or v2 (`cpu.stat`, `memory.current`, `memory.stat`). The
//! cgroup is found from the container's process (`/proc/PID/cgroup`) and the
//! mounted hierarchies (`/proc/self/mountinfo`). Parsing is pure; only
//! [`read_process`] touches the filesystem, and it never writes.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};

use super::Usage;

/// The cgroups of one process: per v1 controller, and its v2 (unified) path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcessCgroups {
    /// v1 controller name (`cpuacct`, `memory`) → path inside that hierarchy.
    pub v1: HashMap<String, String>,
    /// The path in the unified hierarchy (`0::PATH`), when it has one.
    pub unified: Option<String>,
}

/// Parses `/proc/PID/cgroup` (`ID:CONTROLLERS:PATH` per line).
pub fn parse_proc_cgroup(text: &str) -> ProcessCgroups {
    let mut cgroups = ProcessCgroups::default();
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(id), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if id == "0" && controllers.is_empty() {
            cgroups.unified = Some(path.to_owned());
            continue;
        }
        for controller in controllers.split(',').filter(|c| !c.is_empty()) {
            cgroups.v1.insert(controller.to_owned(), path.to_owned());
        }
    }
    cgroups
}

/// One mounted cgroup hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    /// The v1 controllers it carries (empty for the unified one).
    pub controllers: Vec<String>,
    /// The cgroup path mounted there (`/` unless inside a cgroup namespace).
    pub root: String,
    /// Where it is mounted.
    pub mount_point: PathBuf,
}

/// The cgroup hierarchies mounted on this machine.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mounts {
    /// v1 hierarchies.
    pub v1: Vec<Hierarchy>,
    /// The unified (v2) hierarchy, when mounted.
    pub unified: Option<Hierarchy>,
}

/// Parses `/proc/self/mountinfo`, keeping the cgroup and cgroup2 mounts.
pub fn parse_mountinfo(text: &str) -> Mounts {
    let mut mounts = Mounts::default();
    for line in text.lines() {
        let Some((before, after)) = line.split_once(" - ") else {
            continue;
        };
        let fields: Vec<&str> = before.split(' ').collect();
        let (Some(root), Some(mount_point)) = (fields.get(3), fields.get(4)) else {
            continue;
        };
        let mut tail = after.split(' ');
        let fs_type = tail.next().unwrap_or_default();
        let super_options = tail.nth(1).unwrap_or_default();
        let hierarchy = |controllers| Hierarchy {
            controllers,
            root: (*root).to_owned(),
            mount_point: PathBuf::from(mount_point),
        };
        match fs_type {
            "cgroup2" => mounts.unified = Some(hierarchy(Vec::new())),
            "cgroup" => {
                let controllers = super_options
                    .split(',')
                    .filter(|o| !matches!(*o, "rw" | "ro") && !o.contains('='))
                    .map(str::to_owned)
                    .collect();
                mounts.v1.push(hierarchy(controllers));
            }
            _ => {}
        }
    }
    mounts
}

/// Where a process's CPU and memory counters live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CgroupDirs {
    /// cgroup v1: the `cpuacct` and `memory` directories.
    V1 {
        /// Holds `cpuacct.usage`.
        cpuacct: PathBuf,
        /// Holds `memory.usage_in_bytes` and `memory.stat`.
        memory: PathBuf,
    },
    /// cgroup v2: one directory with `cpu.stat`, `memory.current`, `memory.stat`.
    V2(PathBuf),
}

/// `path` of a hierarchy as a directory under its mount point.
fn directory(hierarchy: &Hierarchy, path: &str) -> PathBuf {
    let relative = path
        .strip_prefix(hierarchy.root.as_str())
        .unwrap_or(path)
        .trim_start_matches('/');
    hierarchy.mount_point.join(relative)
}

/// The counters' directories of a process in `cgroups`: v1 when both
/// `cpuacct` and `memory` are v1 hierarchies (hybrid machines too), else v2.
pub fn locate(cgroups: &ProcessCgroups, mounts: &Mounts) -> Option<CgroupDirs> {
    let v1 = |controller: &str| {
        let hierarchy = mounts
            .v1
            .iter()
            .find(|h| h.controllers.iter().any(|c| c == controller))?;
        Some(directory(hierarchy, cgroups.v1.get(controller)?))
    };
    if let (Some(cpuacct), Some(memory)) = (v1("cpuacct"), v1("memory")) {
        return Some(CgroupDirs::V1 { cpuacct, memory });
    }
    let unified = mounts.unified.as_ref()?;
    Some(CgroupDirs::V2(directory(
        unified,
        cgroups.unified.as_deref()?,
    )))
}

/// Parses a flat keyed file (`memory.stat`, `cpu.stat`: `key value` lines).
pub fn parse_keyed(text: &str) -> HashMap<&str, u64> {
    text.lines()
        .filter_map(|line| {
            let (key, value) = line.split_once(' ')?;
            Some((key, value.trim().parse().ok()?))
        })
        .collect()
}

fn number(text: &str, file: &str) -> io::Result<u64> {
    text.trim().parse().map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{file}: {:?} is not a number: {e}", text.trim()),
        )
    })
}

/// cAdvisor's numbers from cgroup v1 files: `cpuacct.usage` (ns),
/// `memory.usage_in_bytes`, and `memory.stat` (working set = usage −
/// total_inactive_file).
pub fn usage_v1(cpuacct_usage: &str, memory_usage: &str, memory_stat: &str) -> io::Result<Usage> {
    let stat = parse_keyed(memory_stat);
    let memory_usage = number(memory_usage, "memory.usage_in_bytes")?;
    let inactive_file = stat.get("total_inactive_file").copied().unwrap_or(0);
    Ok(Usage {
        cpu_usage_nanos: number(cpuacct_usage, "cpuacct.usage")?,
        memory_usage_bytes: memory_usage,
        memory_working_set_bytes: memory_usage.saturating_sub(inactive_file),
        memory_rss_bytes: stat.get("total_rss").copied().unwrap_or(0),
    })
}

/// cAdvisor's numbers from cgroup v2 files: `cpu.stat` (usage_usec),
/// `memory.current`, and `memory.stat` (working set = current − inactive_file).
pub fn usage_v2(cpu_stat: &str, memory_current: &str, memory_stat: &str) -> io::Result<Usage> {
    let cpu = parse_keyed(cpu_stat);
    let stat = parse_keyed(memory_stat);
    let memory_usage = number(memory_current, "memory.current")?;
    let usage_usec = cpu
        .get("usage_usec")
        .copied()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "cpu.stat has no usage_usec"))?;
    Ok(Usage {
        cpu_usage_nanos: usage_usec.saturating_mul(1_000),
        memory_usage_bytes: memory_usage,
        memory_working_set_bytes: memory_usage
            .saturating_sub(stat.get("inactive_file").copied().unwrap_or(0)),
        memory_rss_bytes: stat.get("anon").copied().unwrap_or(0),
    })
}

/// Reads the counters in `dirs`.
pub fn read(dirs: &CgroupDirs) -> io::Result<Usage> {
    let file = |dir: &Path, name: &str| {
        std::fs::read_to_string(dir.join(name))
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", dir.join(name).display())))
    };
    match dirs {
        CgroupDirs::V1 { cpuacct, memory } => usage_v1(
            &file(cpuacct, "cpuacct.usage")?,
            &file(memory, "memory.usage_in_bytes")?,
            &file(memory, "memory.stat")?,
        ),
        CgroupDirs::V2(dir) => usage_v2(
            &file(dir, "cpu.stat")?,
            &file(dir, "memory.current")?,
            &file(dir, "memory.stat")?,
        ),
    }
}

/// The usage of the cgroup process `pid` runs in (a container's init process).
pub fn read_process(pid: u32) -> io::Result<Usage> {
    let cgroups = parse_proc_cgroup(&std::fs::read_to_string(format!("/proc/{pid}/cgroup"))?);
    let mounts = parse_mountinfo(&std::fs::read_to_string("/proc/self/mountinfo")?);
    let dirs = locate(&cgroups, &mounts).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("process {pid}: no mounted cgroup hierarchy holds its cpu and memory counters"),
        )
    })?;
    read(&dirs)
}

#[cfg(test)]
mod tests {
    use super::*;

    const V1_CGROUP: &str = include_str!("fixtures/v1_cgroup");
    const V1_MOUNTINFO: &str = include_str!("fixtures/v1_mountinfo");
    const V1_MEMORY_STAT: &str = include_str!("fixtures/v1_memory.stat");
    const V2_CGROUP: &str = include_str!("fixtures/v2_cgroup");
    const V2_MOUNTINFO: &str = include_str!("fixtures/v2_mountinfo");
    const V2_CPU_STAT: &str = include_str!("fixtures/v2_cpu.stat");
    const V2_MEMORY_STAT: &str = include_str!("fixtures/v2_memory.stat");

    #[test]
    fn hierarchies_are_found_per_cgroup_version() {
        let cases = [
            (
                V1_CGROUP,
                V1_MOUNTINFO,
                Some(CgroupDirs::V1 {
                    cpuacct: "/sys/fs/cgroup/cpuacct/k8s.io/4f1c2e".into(),
                    memory: "/sys/fs/cgroup/memory/k8s.io/4f1c2e".into(),
                }),
            ),
            (
                V2_CGROUP,
                V2_MOUNTINFO,
                Some(CgroupDirs::V2(
                    "/sys/fs/cgroup/system.slice/containerd.service/kubepods-besteffort-pod12.slice:cri-containerd:9a8b".into(),
                )),
            ),
            // A v1 process on a machine whose memory controller is not mounted.
            (V1_CGROUP, "", None),
        ];
        for (cgroup, mountinfo, want) in cases {
            let got = locate(&parse_proc_cgroup(cgroup), &parse_mountinfo(mountinfo));
            assert_eq!(got, want, "{cgroup}");
        }
    }

    #[test]
    fn a_cgroup_namespace_root_is_stripped() {
        let mounts = parse_mountinfo(
            "35 31 0:32 /k8s.io /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
             33 31 0:30 /k8s.io /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct",
        );
        let cgroups = parse_proc_cgroup("4:memory:/k8s.io/abc\n3:cpu,cpuacct:/k8s.io/abc");
        assert_eq!(
            locate(&cgroups, &mounts),
            Some(CgroupDirs::V1 {
                cpuacct: "/sys/fs/cgroup/cpu,cpuacct/abc".into(),
                memory: "/sys/fs/cgroup/memory/abc".into(),
            })
        );
    }

    #[test]
    fn working_set_is_usage_less_inactive_file() {
        let v1 = usage_v1("123456789\n", "4194304\n", V1_MEMORY_STAT).unwrap();
        assert_eq!(
            v1,
            Usage {
                cpu_usage_nanos: 123_456_789,
                memory_usage_bytes: 4_194_304,
                memory_working_set_bytes: 4_194_304 - 1_048_576,
                memory_rss_bytes: 532_480,
            }
        );
        let v2 = usage_v2(V2_CPU_STAT, "12582912\n", V2_MEMORY_STAT).unwrap();
        assert_eq!(
            v2,
            Usage {
                cpu_usage_nanos: 1_523_441_000,
                memory_usage_bytes: 12_582_912,
                memory_working_set_bytes: 12_582_912 - 3_145_728,
                memory_rss_bytes: 8_388_608,
            }
        );
        // Inactive file pages above the usage never make the working set negative.
        let tiny = usage_v2(V2_CPU_STAT, "1000", V2_MEMORY_STAT).unwrap();
        assert_eq!(tiny.memory_working_set_bytes, 0);
    }

    #[test]
    fn malformed_counters_say_which_file() {
        let error = usage_v1("n/a", "1", "").unwrap_err().to_string();
        assert!(error.contains("cpuacct.usage"), "{error}");
        let error = usage_v2("user_usec 5", "1", "").unwrap_err().to_string();
        assert!(error.contains("usage_usec"), "{error}");
    }
}
