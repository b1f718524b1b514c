//! How long each phase of `cluster create` took, for `--timings` and the
//! create benchmark: laps of one stopwatch, each added to its phase, so a
//! phase met twice (masters, then nodes) is counted once in total.

use std::fmt;
use std::time::{Duration, Instant};

/// A phase of `cluster create`, in the order they happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// Connecting and authenticating over SSH.
    SshConnect,
    /// Uploading the berth binary and certificates.
    Upload,
    /// Installing and starting the etcd members until all are healthy.
    EtcdFormation,
    /// Starting the API servers until `/readyz` answers `ok`.
    ApiReady,
    /// Starting the agents until every Node is Ready.
    NodeJoin,
}

impl Phase {
    /// Every phase, in order.
    pub const ALL: [Phase; 5] = [
        Phase::SshConnect,
        Phase::Upload,
        Phase::EtcdFormation,
        Phase::ApiReady,
        Phase::NodeJoin,
    ];

    /// Its name in `--timings` output: lower case, dashes.
    pub fn name(self) -> &'static str {
        match self {
            Phase::SshConnect => "ssh-connect",
            Phase::Upload => "upload",
            Phase::EtcdFormation => "etcd-formation",
            Phase::ApiReady => "api-ready",
            Phase::NodeJoin => "node-join",
        }
    }
}

/// Time spent per phase.
#[derive(Debug, Clone)]
pub struct Timings {
    lap_started: Instant,
    spent: [Duration; 5],
}

impl Default for Timings {
    fn default() -> Self {
        Self::start()
    }
}

impl Timings {
    /// A stopwatch started now.
    pub fn start() -> Self {
        Self {
            lap_started: Instant::now(),
            spent: [Duration::ZERO; 5],
        }
    }

    /// Adds the time since the last lap to `phase`.
    pub fn lap(&mut self, phase: Phase) {
        let now = Instant::now();
        self.add(phase, now - self.lap_started);
        self.lap_started = now;
    }

    /// Adds `spent` to `phase`.
    pub fn add(&mut self, phase: Phase, spent: Duration) {
        self.spent[phase as usize] += spent;
    }

    /// Time spent in `phase`.
    pub fn get(&self, phase: Phase) -> Duration {
        self.spent[phase as usize]
    }

    /// Time spent in all phases.
    pub fn total(&self) -> Duration {
        self.spent.iter().sum()
    }
}

impl fmt::Display for Timings {
    /// One `timing PHASE SECONDS` line per phase, then `timing total SECONDS`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for phase in Phase::ALL {
            writeln!(
                f,
                "timing {} {:.3}",
                phase.name(),
                self.get(phase).as_secs_f64()
            )?;
        }
        writeln!(f, "timing total {:.3}", self.total().as_secs_f64())
    }
}

/// Reads what [`Timings`]' `Display` wrote (among other lines): seconds per
/// phase name, `total` included.
pub fn parse(text: &str) -> Vec<(String, f64)> {
    text.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            (words.next()? == "timing").then_some(())?;
            let name = words.next()?.to_owned();
            let seconds = words.next()?.parse().ok()?;
            words.next().is_none().then_some((name, seconds))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn laps_add_up_per_phase_and_print_in_order() {
        let mut timings = Timings::start();
        timings.add(Phase::Upload, Duration::from_millis(1500));
        timings.add(Phase::SshConnect, Duration::from_millis(250));
        timings.add(Phase::Upload, Duration::from_millis(500));
        let text = timings.to_string();
        assert_eq!(
            text,
            "timing ssh-connect 0.250\ntiming upload 2.000\ntiming etcd-formation 0.000\n\
             timing api-ready 0.000\ntiming node-join 0.000\ntiming total 2.250\n"
        );
        let parsed = parse(&format!("cluster x is ready\n{text}timing of nothing\n"));
        assert_eq!(parsed.len(), 6);
        assert_eq!(parsed[1], ("upload".to_owned(), 2.0));
        assert_eq!(parsed[5], ("total".to_owned(), 2.25));
    }
}
