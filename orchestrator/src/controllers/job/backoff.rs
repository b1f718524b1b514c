//! The delay before a Job replaces a failed pod: 10 s after the first failure
//! since the last success, doubling per further failure, capped at 10 minutes
//! (upstream's `DefaultJobPodFailureBackOff`/`MaxJobPodFailureBackOff`). The
//! record is recomputed from the pods themselves, never held only in memory.

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;

/// The base and cap of the pod-failure back-off (injected so tests run fast).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Delay after the first failure.
    pub base: Duration,
    /// Longest delay.
    pub max: Duration,
}

impl Default for Backoff {
    /// Upstream's 10 s doubling up to 10 minutes.
    fn default() -> Self {
        Self {
            base: Duration::from_secs(10),
            max: Duration::from_secs(600),
        }
    }
}

impl Backoff {
    /// The delay after `failures` consecutive failures (none after none).
    pub fn delay(&self, failures: u32) -> Duration {
        if failures == 0 {
            return Duration::ZERO;
        }
        let factor = 1u32 << (failures - 1).min(20);
        self.base.saturating_mul(factor).min(self.max)
    }

    /// How long pod creation must still wait at `now`, if at all.
    pub fn remaining(&self, record: &Record, now: Timestamp) -> Option<Duration> {
        let last = record.last_failure?;
        let ready_at = last + jiff::SignedDuration::try_from(self.delay(record.failures)).ok()?;
        let wait = now.duration_until(ready_at);
        (wait.is_positive()).then(|| Duration::try_from(wait).unwrap_or_default())
    }
}

/// Consecutive failures since the last success, and when the latest ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Record {
    /// Failed pods that finished after the last succeeded one.
    pub failures: u32,
    /// When the most recent of them finished.
    pub last_failure: Option<Timestamp>,
}

/// When a finished pod ended: its containers' latest finishedAt, else the
/// time of its last condition change, else its deletion time.
pub fn finished_at(pod: &Pod) -> Option<Timestamp> {
    let status = pod.status.as_ref();
    let containers = status
        .and_then(|s| s.container_statuses.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|c| c.state.as_ref()?.terminated.as_ref()?.finished_at.as_ref())
        .map(|t| t.0)
        .max();
    containers
        .or_else(|| {
            status
                .and_then(|s| s.conditions.as_ref())
                .into_iter()
                .flatten()
                .filter_map(|c| c.last_transition_time.as_ref().map(|t| t.0))
                .max()
        })
        .or_else(|| pod.metadata.deletion_timestamp.as_ref().map(|t| t.0))
}

/// The back-off record of a job from its finished pods (`failed` tells which failed).
pub fn record<'a>(finished: impl Iterator<Item = (&'a Pod, bool)>) -> Record {
    let mut successes = Vec::new();
    let mut failures = Vec::new();
    for (pod, failed) in finished {
        let at = finished_at(pod).unwrap_or(Timestamp::UNIX_EPOCH);
        if failed {
            failures.push(at);
        } else {
            successes.push(at);
        }
    }
    let last_success = successes.into_iter().max();
    let after: Vec<Timestamp> = failures
        .into_iter()
        .filter(|at| last_success.is_none_or(|s| *at > s))
        .collect();
    Record {
        failures: after.len() as u32,
        last_failure: after.into_iter().max(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delay_doubles_from_ten_seconds_up_to_the_cap() {
        let backoff = Backoff::default();
        let cases = [
            (0, 0),
            (1, 10),
            (2, 20),
            (3, 40),
            (6, 320),
            (7, 600),
            (40, 600),
        ];
        for (failures, seconds) in cases {
            assert_eq!(
                backoff.delay(failures),
                Duration::from_secs(seconds),
                "{failures}"
            );
        }
    }

    #[test]
    fn remaining_counts_from_the_last_failure() {
        let backoff = Backoff::default();
        let last: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let record = Record {
            failures: 2,
            last_failure: Some(last),
        };
        let at = |s: i64| last + jiff::SignedDuration::from_secs(s);
        assert_eq!(
            backoff.remaining(&record, at(5)),
            Some(Duration::from_secs(15))
        );
        assert_eq!(backoff.remaining(&record, at(20)), None);
        assert_eq!(backoff.remaining(&Record::default(), at(0)), None);
    }
}
