//! The scheduling queue: pending pods wait in `active` (each key once) and
//! are tried one at a time; a pod no node fits is parked as unschedulable
//! and comes back after its backoff once the cluster changed, or after
//! `UNSCHEDULABLE_MAX_WAIT` regardless (upstream's unschedulable pods pool).
//! Time is passed in, so tests need no clock.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

/// First retry delay of an unschedulable pod; doubles per attempt.
pub const INITIAL_BACKOFF: Duration = Duration::from_secs(1);
/// Longest retry delay.
pub const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// An unschedulable pod is retried at least this often even if nothing changed.
pub const UNSCHEDULABLE_MAX_WAIT: Duration = Duration::from_secs(30);

#[derive(Debug)]
struct Parked {
    since: Instant,
    generation: u64,
    attempts: u32,
}

/// Pending pods by `namespace/name`.
#[derive(Debug, Default)]
pub struct SchedulingQueue {
    active: VecDeque<String>,
    queued: HashSet<String>,
    parked: HashMap<String, Parked>,
    attempts: HashMap<String, u32>,
    generation: u64,
}

impl SchedulingQueue {
    /// Queues a pending pod, unless it is queued already or parked (a parked
    /// pod waits for a cluster change, not for its own status updates).
    pub fn add(&mut self, key: &str) {
        if self.parked.contains_key(key) || self.queued.contains(key) {
            return;
        }
        self.queued.insert(key.to_owned());
        self.active.push_back(key.to_owned());
    }

    /// The next pod to try.
    pub fn pop(&mut self) -> Option<String> {
        let key = self.active.pop_front()?;
        self.queued.remove(&key);
        Some(key)
    }

    /// Is there a pod to try now?
    pub fn has_active(&self) -> bool {
        !self.active.is_empty()
    }

    /// Parks a pod no node fits.
    pub fn park(&mut self, key: &str, now: Instant) {
        let attempts = self.attempts.entry(key.to_owned()).or_insert(0);
        *attempts += 1;
        self.parked.insert(
            key.to_owned(),
            Parked {
                since: now,
                generation: self.generation,
                attempts: *attempts,
            },
        );
    }

    /// Forgets a pod (bound, deleted, or no longer ours).
    pub fn remove(&mut self, key: &str) {
        self.parked.remove(key);
        self.attempts.remove(key);
        if self.queued.remove(key) {
            self.active.retain(|k| k != key);
        }
    }

    /// Records that something happened that may make parked pods fit
    /// (a node added or changed, a pod deleted or finished).
    pub fn cluster_changed(&mut self) {
        self.generation += 1;
    }

    /// How many pods are parked.
    pub fn parked_len(&self) -> usize {
        self.parked.len()
    }

    /// Moves parked pods whose backoff is over and whose retry is due back to `active`.
    pub fn flush(&mut self, now: Instant) {
        let generation = self.generation;
        let due: Vec<String> = self
            .parked
            .iter()
            .filter(|(_, p)| {
                let backoff = INITIAL_BACKOFF
                    .saturating_mul(1 << p.attempts.saturating_sub(1).min(10))
                    .min(MAX_BACKOFF);
                let waited = now.saturating_duration_since(p.since);
                waited >= backoff && (p.generation < generation || waited >= UNSCHEDULABLE_MAX_WAIT)
            })
            .map(|(k, _)| k.clone())
            .collect();
        for key in due {
            self.parked.remove(&key);
            self.add(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_queued_many_times_runs_once() {
        let mut q = SchedulingQueue::default();
        q.add("a");
        q.add("b");
        q.add("a");
        assert_eq!(q.pop().as_deref(), Some("a"));
        assert_eq!(q.pop().as_deref(), Some("b"));
        assert_eq!(q.pop(), None);
    }

    #[test]
    fn parked_pods_return_after_backoff_and_a_cluster_change_or_the_max_wait() {
        let t0 = Instant::now();
        let mut q = SchedulingQueue::default();
        q.park("p", t0);
        q.add("p");
        assert!(
            !q.has_active(),
            "its own updates do not requeue a parked pod"
        );
        q.flush(t0 + Duration::from_secs(5));
        assert!(!q.has_active(), "nothing changed");
        q.cluster_changed();
        q.flush(t0 + Duration::from_millis(500));
        assert!(!q.has_active(), "still backing off");
        q.flush(t0 + Duration::from_secs(1));
        assert_eq!(q.pop().as_deref(), Some("p"));
        // Second failure: 2s backoff.
        q.park("p", t0);
        q.cluster_changed();
        q.flush(t0 + Duration::from_millis(1500));
        assert!(!q.has_active());
        q.flush(t0 + Duration::from_secs(2));
        assert!(q.has_active());
        q.pop();
        q.park("p", t0);
        q.flush(t0 + UNSCHEDULABLE_MAX_WAIT);
        assert!(q.has_active(), "retried every 30s even without changes");
        q.remove("p");
        assert!(!q.has_active());
    }
}
