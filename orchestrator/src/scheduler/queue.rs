//! The scheduling queue: pending pods wait in `active` (each key once),
//! highest priority first and first come first within a priority (upstream's
//! PrioritySort), and are tried one at a time; a pod no node fits is parked as unschedulable
//! and comes back after its backoff once the cluster changed, or after
//! `UNSCHEDULABLE_MAX_WAIT` regardless (upstream's unschedulable pods pool).
//! Time is passed in, so tests need no clock.

use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use super::metrics::QueueLengths;

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
    priority: i32,
}

impl Parked {
    /// The wait before its next try: doubling per attempt, at most
    /// `MAX_BACKOFF`.
    fn backoff(&self) -> Duration {
        INITIAL_BACKOFF
            .saturating_mul(1 << self.attempts.saturating_sub(1).min(10))
            .min(MAX_BACKOFF)
    }
}

/// Where a pod sits in `active`: higher priority first, then arrival order.
type Slot = (Reverse<i32>, u64);

/// Pending pods by `namespace/name`.
#[derive(Debug, Default)]
pub struct SchedulingQueue {
    active: BTreeMap<Slot, String>,
    queued: HashMap<String, Slot>,
    arrivals: u64,
    parked: HashMap<String, Parked>,
    attempts: HashMap<String, u32>,
    generation: u64,
}

impl SchedulingQueue {
    /// Queues a pending pod, unless it is queued already or parked (a parked
    /// pod waits for a cluster change, not for its own status updates).
    /// `priority` is the pod's `spec.priority`.
    pub fn add(&mut self, key: &str, priority: i32) {
        if self.parked.contains_key(key) || self.queued.contains_key(key) {
            return;
        }
        self.arrivals += 1;
        let slot = (Reverse(priority), self.arrivals);
        self.queued.insert(key.to_owned(), slot);
        self.active.insert(slot, key.to_owned());
    }

    /// The next pod to try: the highest priority, the earliest queued.
    pub fn pop(&mut self) -> Option<String> {
        let (_, key) = self.active.pop_first()?;
        self.queued.remove(&key);
        Some(key)
    }

    /// Is there a pod to try now?
    pub fn has_active(&self) -> bool {
        !self.active.is_empty()
    }

    /// Parks a pod no node fits.
    pub fn park(&mut self, key: &str, priority: i32, now: Instant) {
        let attempts = self.attempts.entry(key.to_owned()).or_insert(0);
        *attempts += 1;
        self.parked.insert(
            key.to_owned(),
            Parked {
                since: now,
                generation: self.generation,
                attempts: *attempts,
                priority,
            },
        );
    }

    /// Forgets a pod (bound, deleted, or no longer ours).
    pub fn remove(&mut self, key: &str) {
        self.parked.remove(key);
        self.attempts.remove(key);
        if let Some(slot) = self.queued.remove(key) {
            self.active.remove(&slot);
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

    /// How many pods wait in each part of the queue at `now`: parked pods
    /// still in their back-off count as `backoff`, the others as
    /// `unschedulable` (upstream's backoffQ and unschedulable pool).
    pub fn lengths(&self, now: Instant) -> QueueLengths {
        let backoff = self
            .parked
            .values()
            .filter(|p| now.saturating_duration_since(p.since) < p.backoff())
            .count();
        QueueLengths {
            active: self.active.len(),
            backoff,
            unschedulable: self.parked.len() - backoff,
        }
    }

    /// Moves parked pods whose backoff is over and whose retry is due back to `active`.
    pub fn flush(&mut self, now: Instant) {
        let generation = self.generation;
        let due: Vec<(String, i32)> = self
            .parked
            .iter()
            .filter(|(_, p)| {
                let waited = now.saturating_duration_since(p.since);
                waited >= p.backoff()
                    && (p.generation < generation || waited >= UNSCHEDULABLE_MAX_WAIT)
            })
            .map(|(k, p)| (k.clone(), p.priority))
            .collect();
        for (key, priority) in due {
            self.parked.remove(&key);
            self.add(&key, priority);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_split_parked_pods_by_their_backoff() {
        let mut q = SchedulingQueue::default();
        let start = Instant::now();
        q.add("a", 0);
        q.add("b", 0);
        q.add("c", 0);
        let _ = q.pop();
        let _ = q.pop();
        q.park("a", 0, start);
        q.park("b", 0, start - INITIAL_BACKOFF * 2);
        assert_eq!(
            q.lengths(start),
            QueueLengths {
                active: 1,
                backoff: 1,
                unschedulable: 1,
            }
        );
    }

    #[test]
    fn a_key_queued_many_times_runs_once() {
        let mut q = SchedulingQueue::default();
        q.add("a", 0);
        q.add("b", 0);
        q.add("a", 0);
        assert_eq!(q.pop().as_deref(), Some("a"));
        assert_eq!(q.pop().as_deref(), Some("b"));
        assert_eq!(q.pop(), None);
    }

    #[test]
    fn higher_priority_pods_are_tried_first_and_equal_ones_in_arrival_order() {
        let mut q = SchedulingQueue::default();
        let arrivals = [
            ("low", -5),
            ("mid-1", 10),
            ("high", 1000),
            ("mid-2", 10),
            ("zero", 0),
        ];
        for (key, priority) in arrivals {
            q.add(key, priority);
        }
        q.remove("zero");
        let order: Vec<String> = std::iter::from_fn(|| q.pop()).collect();
        assert_eq!(order, ["high", "mid-1", "mid-2", "low"]);
        let t0 = Instant::now();
        q.park("parked-high", 2000, t0);
        q.add("later-low", 1);
        q.cluster_changed();
        q.flush(t0 + INITIAL_BACKOFF);
        assert_eq!(
            q.pop().as_deref(),
            Some("parked-high"),
            "a parked pod keeps its priority when it returns"
        );
    }

    #[test]
    fn parked_pods_return_after_backoff_and_a_cluster_change_or_the_max_wait() {
        let t0 = Instant::now();
        let mut q = SchedulingQueue::default();
        q.park("p", 0, t0);
        q.add("p", 0);
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
        q.park("p", 0, t0);
        q.cluster_changed();
        q.flush(t0 + Duration::from_millis(1500));
        assert!(!q.has_active());
        q.flush(t0 + Duration::from_secs(2));
        assert!(q.has_active());
        q.pop();
        q.park("p", 0, t0);
        q.flush(t0 + UNSCHEDULABLE_MAX_WAIT);
        assert!(q.has_active(), "retried every 30s even without changes");
        q.remove("p");
        assert!(!q.has_active());
    }
}
