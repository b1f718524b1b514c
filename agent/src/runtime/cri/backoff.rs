//! Kubelet's restart and image-pull back-off: the first retry is immediate,
//! then each waits twice as long as the one before (10 s, 20 s, … 5 min),
//! measured from when the last attempt ended. A key that has been quiet for
//! twice the maximum starts over.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The first delay.
pub const INITIAL: Duration = Duration::from_secs(10);
/// The longest delay.
pub const MAX: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, Copy)]
struct Entry {
    delay: Duration,
    last_update: Instant,
}

/// Back-off per key (a container of a pod, an image).
#[derive(Debug)]
pub struct Backoff<K> {
    initial: Duration,
    max: Duration,
    entries: HashMap<K, Entry>,
}

impl<K: std::hash::Hash + Eq + Clone> Backoff<K> {
    /// Kubelet's delays.
    pub fn new() -> Self {
        Self::with_delays(INITIAL, MAX)
    }

    /// Other delays (tests).
    pub fn with_delays(initial: Duration, max: Duration) -> Self {
        Self {
            initial,
            max,
            entries: HashMap::new(),
        }
    }

    /// If `key` must still wait after an attempt that ended at `ended`, the
    /// current delay.
    pub fn waiting(&mut self, key: &K, ended: Instant, now: Instant) -> Option<Duration> {
        let entry = *self.entries.get(key)?;
        if now.saturating_duration_since(entry.last_update) > self.max * 2 {
            self.entries.remove(key);
            return None;
        }
        (now.saturating_duration_since(ended) < entry.delay).then_some(entry.delay)
    }

    /// Records a new attempt for `key`: the next one waits longer.
    pub fn next(&mut self, key: &K, now: Instant) {
        let delay = match self.entries.get(key) {
            Some(entry) => (entry.delay * 2).min(self.max),
            None => self.initial,
        };
        self.entries.insert(
            key.clone(),
            Entry {
                delay,
                last_update: now,
            },
        );
    }

    /// Forgets `key` (a pod removed, an image pulled).
    pub fn reset(&mut self, key: &K) {
        self.entries.remove(key);
    }

    /// Forgets every key `keep` rejects.
    pub fn retain(&mut self, mut keep: impl FnMut(&K) -> bool) {
        self.entries.retain(|k, _| keep(k));
    }
}

impl<K: std::hash::Hash + Eq + Clone> Default for Backoff<K> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_retry_is_free_then_delays_double_up_to_the_max() {
        let mut backoff = Backoff::with_delays(Duration::from_secs(10), Duration::from_secs(40));
        let t0 = Instant::now();
        let key = "c";
        assert_eq!(backoff.waiting(&key, t0, t0), None, "first restart at once");
        backoff.next(&key, t0);
        assert_eq!(
            backoff.waiting(&key, t0, t0 + Duration::from_secs(3)),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            backoff.waiting(&key, t0, t0 + Duration::from_secs(11)),
            None
        );
        backoff.next(&key, t0 + Duration::from_secs(11));
        let ended = t0 + Duration::from_secs(12);
        assert_eq!(
            backoff.waiting(&key, ended, ended + Duration::from_secs(15)),
            Some(Duration::from_secs(20))
        );
        backoff.next(&key, ended);
        backoff.next(&key, ended);
        backoff.next(&key, ended);
        assert_eq!(
            backoff.waiting(&key, ended, ended),
            Some(Duration::from_secs(40)),
            "capped"
        );
        // Quiet for twice the max: starts over.
        assert_eq!(
            backoff.waiting(&key, ended, ended + Duration::from_secs(81)),
            None
        );
        let later = ended + Duration::from_secs(81);
        backoff.next(&key, later);
        assert_eq!(
            backoff.waiting(&key, later, later),
            Some(Duration::from_secs(10))
        );
        backoff.reset(&key);
        assert_eq!(backoff.waiting(&key, ended, ended), None);
    }
}
