//! The `process_*` metrics every Prometheus client library exports, read from
//! `/proc/self` at each scrape so dashboards built for upstream components
//! show berth's CPU, memory and descriptors too.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// Reads this process's figures from procfs when scraped.
#[derive(Debug, Default)]
pub(super) struct ProcessCollector;

/// What `/proc/self/stat` and the fd table say, in Prometheus's units.
#[derive(Debug, Default, PartialEq)]
struct ProcessFigures {
    cpu_seconds: f64,
    resident_bytes: f64,
    virtual_bytes: f64,
    start_time_seconds: f64,
    open_fds: f64,
    threads: f64,
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(figures) = read_figures() else {
            return Ok(());
        };
        let cpu = ConstCounter::new(figures.cpu_seconds);
        cpu.encode(encoder.encode_descriptor(
            "process_cpu_seconds",
            "Total user and system CPU time spent in seconds.",
            None,
            cpu.metric_type(),
        )?)?;
        for (name, help, value) in [
            (
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
                figures.resident_bytes,
            ),
            (
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes.",
                figures.virtual_bytes,
            ),
            (
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds.",
                figures.start_time_seconds,
            ),
            (
                "process_open_fds",
                "Number of open file descriptors.",
                figures.open_fds,
            ),
            ("process_threads", "Number of OS threads.", figures.threads),
        ] {
            let gauge = ConstGauge::new(value);
            gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)?;
        }
        Ok(())
    }
}

fn read_figures() -> Option<ProcessFigures> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let boot_time = std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|text| boot_time_seconds(&text))?;
    let mut figures = parse_stat(&stat, clock_ticks_per_second(), page_size(), boot_time)?;
    figures.open_fds = std::fs::read_dir("/proc/self/fd").ok()?.count() as f64;
    Some(figures)
}

/// Parses `/proc/self/stat` (fields after the parenthesised command name,
/// which may itself hold spaces and parentheses).
fn parse_stat(stat: &str, ticks: f64, page_size: f64, boot_time: f64) -> Option<ProcessFigures> {
    let after_name = &stat[stat.rfind(')')? + 2..];
    // Field 3 (state) is index 0 here; utime is field 14, stime 15,
    // num_threads 20, starttime 22, vsize 23, rss 24.
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let field = |number: usize| -> Option<f64> { fields.get(number - 3)?.parse().ok() };
    Some(ProcessFigures {
        cpu_seconds: (field(14)? + field(15)?) / ticks,
        threads: field(20)?,
        start_time_seconds: boot_time + field(22)? / ticks,
        virtual_bytes: field(23)?,
        resident_bytes: field(24)? * page_size,
        open_fds: 0.0,
    })
}

fn boot_time_seconds(proc_stat: &str) -> Option<f64> {
    proc_stat
        .lines()
        .find_map(|line| line.strip_prefix("btime "))
        .and_then(|value| value.trim().parse().ok())
}

fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf only reads a constant of the running system.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as f64
    } else {
        100.0
    }
}

fn page_size() -> f64 {
    // SAFETY: as above.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if size > 0 {
        size as f64
    } else {
        4096.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_name_with_spaces_and_parentheses_does_not_shift_the_fields() {
        let stat = "4242 (a (b) c) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 7 0 1000 \
                    8192000 300 18446744073709551615";
        let figures = parse_stat(stat, 100.0, 4096.0, 1_700_000_000.0).unwrap();
        assert_eq!(
            figures,
            ProcessFigures {
                cpu_seconds: 3.0,
                resident_bytes: 300.0 * 4096.0,
                virtual_bytes: 8_192_000.0,
                start_time_seconds: 1_700_000_010.0,
                open_fds: 0.0,
                threads: 7.0,
            }
        );
    }

    #[test]
    fn boot_time_comes_from_the_btime_line() {
        assert_eq!(
            boot_time_seconds("cpu  1 2 3\nbtime 1700000000\nprocesses 5\n"),
            Some(1_700_000_000.0)
        );
    }
}
