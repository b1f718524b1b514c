//! The per-node backoff between deletions of failed daemon pods (upstream's
//! `failedPodsBackoff`: 1 s doubling to 15 min, forgotten after twice the
//! maximum without a failure), so a DaemonSet does not fight a node that keeps
//! rejecting its pod. Time is passed in, so tests need no clock.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const INITIAL: Duration = Duration::from_secs(1);
const MAX: Duration = Duration::from_secs(15 * 60);

/// Backoff entries keyed by `DAEMONSET-UID/NODE`.
#[derive(Debug, Default)]
pub struct FailedPodsBackoff {
    entries: Mutex<HashMap<String, (Duration, Instant)>>,
}

impl FailedPodsBackoff {
    /// Whether the last failure at `key` is more recent than its backoff.
    pub fn in_backoff(&self, key: &str, now: Instant) -> bool {
        let entries = self.entries.lock().expect("backoff lock");
        entries
            .get(key)
            .is_some_and(|(delay, last)| now.duration_since(*last) < *delay)
    }

    /// The current delay at `key` (zero when none).
    pub fn delay(&self, key: &str) -> Duration {
        let entries = self.entries.lock().expect("backoff lock");
        entries.get(key).map(|(d, _)| *d).unwrap_or_default()
    }

    /// Records a failure at `key`: the delay starts at 1 s and doubles up to
    /// 15 min; an entry idle for twice the maximum starts over.
    pub fn next(&self, key: &str, now: Instant) {
        let mut entries = self.entries.lock().expect("backoff lock");
        let delay = match entries.get(key) {
            Some((delay, last)) if now.duration_since(*last) <= 2 * MAX => (*delay * 2).min(MAX),
            _ => INITIAL,
        };
        entries.insert(key.to_owned(), (delay, now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delay_doubles_caps_and_expires() {
        let backoff = FailedPodsBackoff::default();
        let start = Instant::now();
        assert!(!backoff.in_backoff("k", start));
        backoff.next("k", start);
        assert_eq!(backoff.delay("k"), INITIAL);
        assert!(backoff.in_backoff("k", start + Duration::from_millis(500)));
        assert!(!backoff.in_backoff("k", start + Duration::from_secs(1)));
        backoff.next("k", start + Duration::from_secs(1));
        assert_eq!(backoff.delay("k"), Duration::from_secs(2));
        for i in 0..20 {
            backoff.next("k", start + Duration::from_secs(2 + i));
        }
        assert_eq!(backoff.delay("k"), MAX);
        let later = start + Duration::from_secs(22) + 2 * MAX + Duration::from_secs(1);
        backoff.next("k", later);
        assert_eq!(backoff.delay("k"), INITIAL);
    }
}
