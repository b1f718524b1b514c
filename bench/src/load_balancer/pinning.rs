//! CPU affinity for the pinned view: which CPUs the benchmark may use, and
//! moving every thread of every process in a namespace onto some of them
//! (threads started later inherit it).

use std::process::Command;

/// The CPUs this process may run on, ascending (empty if unknown).
pub fn allowed_cpus() -> Vec<usize> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set, and
    // sched_getaffinity writes at most its size.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return Vec::new();
        }
        (0..libc::CPU_SETSIZE as usize)
            .filter(|cpu| libc::CPU_ISSET(*cpu, &set))
            .collect()
    }
}

/// `cpus` as taskset reads them (`0,1`).
pub fn list(cpus: &[usize]) -> String {
    cpus.iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// Moves every thread of every process in network namespace `netns` onto `cpus`.
pub fn pin_namespace(netns: &str, cpus: &str) -> anyhow::Result<()> {
    let output = Command::new("ip").args(["netns", "pids", netns]).output()?;
    anyhow::ensure!(output.status.success(), "ip netns pids {netns} failed");
    for pid in String::from_utf8_lossy(&output.stdout).split_whitespace() {
        let status = Command::new("taskset")
            .args(["-a", "-p", "-c", cpus, pid])
            .stdout(std::process::Stdio::null())
            .status()?;
        anyhow::ensure!(status.success(), "taskset {cpus} {pid} failed");
    }
    Ok(())
}
