//! The batch window (Karpenter's batcher): the first reason to look opens
//! it, and it closes once no *new* reason came for the idle period, or at
//! the maximum. A reason already in the window (the same pod written again,
//! e.g. the scheduler retrying it with a new message) does not extend it, so
//! one pending pod waits the idle period once, not once per status write.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

/// The reasons seen in the open window, and the wake-up for new ones.
#[derive(Default)]
pub struct Batcher {
    seen: Mutex<HashSet<String>>,
    wake: Notify,
}

impl Batcher {
    /// Records `reason` (a pod's UID, a pool's generation); only one not yet
    /// seen in this window wakes or extends it.
    pub fn trigger(&self, reason: &str) {
        let new = self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(reason.to_owned());
        if new {
            self.wake.notify_one();
        }
    }

    /// Waits for a first reason (or `requeue`, to look again anyway), then
    /// until no new reason came for `idle` or `max` passed since the first;
    /// the reasons seen are forgotten, so the next write of any opens the
    /// next window.
    pub async fn next(&self, requeue: Duration, idle: Duration, max: Duration) {
        tokio::select! {
            () = self.wake.notified() => {}
            () = tokio::time::sleep(requeue) => {}
        }
        let deadline = Instant::now() + max;
        loop {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            let quiet = idle.min(deadline - now);
            tokio::select! {
                () = self.wake.notified() => {}
                () = tokio::time::sleep(quiet) => break,
            }
        }
        self.seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    const IDLE: Duration = Duration::from_secs(1);
    const MAX: Duration = Duration::from_secs(10);
    const REQUEUE: Duration = Duration::from_secs(30);

    /// Runs one window while `script` triggers (at milliseconds from the
    /// start) and returns how long it lasted, on tokio's paused clock (exact,
    /// not a timing).
    async fn window(batcher: &Arc<Batcher>, script: Vec<(u64, String)>) -> Duration {
        let start = Instant::now();
        let triggers = {
            let batcher = Arc::clone(batcher);
            tokio::spawn(async move {
                for (at, reason) in script {
                    tokio::time::sleep_until(start + Duration::from_millis(at)).await;
                    batcher.trigger(&reason);
                }
            })
        };
        batcher.next(REQUEUE, IDLE, MAX).await;
        let lasted = start.elapsed();
        triggers.abort();
        lasted
    }

    fn at(ms: u64, reason: &str) -> (u64, String) {
        (ms, reason.to_owned())
    }

    #[tokio::test(start_paused = true)]
    async fn a_pod_written_again_does_not_extend_the_window() {
        let batcher = Arc::new(Batcher::default());
        // The pod fails scheduling at 10 ms; the scheduler retries it and
        // writes a new message at 900 ms.
        let lasted = window(&batcher, vec![at(10, "pod-a"), at(900, "pod-a")]).await;
        assert_eq!(lasted, Duration::from_millis(1010));
    }

    #[tokio::test(start_paused = true)]
    async fn a_new_pod_extends_the_window() {
        let batcher = Arc::new(Batcher::default());
        let lasted = window(&batcher, vec![at(10, "pod-a"), at(900, "pod-b")]).await;
        assert_eq!(lasted, Duration::from_millis(1900));
        // The next window forgot both: pod-a written again opens it.
        let lasted = window(&batcher, vec![at(10, "pod-a")]).await;
        assert_eq!(lasted, Duration::from_millis(1010));
    }

    #[tokio::test(start_paused = true)]
    async fn new_pods_extend_it_up_to_the_maximum() {
        let batcher = Arc::new(Batcher::default());
        let burst = (0..40).map(|i| at(i * 500, &format!("pod-{i}"))).collect();
        let lasted = window(&batcher, burst).await;
        assert_eq!(lasted, MAX);
    }

    #[tokio::test(start_paused = true)]
    async fn with_no_reason_it_looks_after_the_requeue_period() {
        let lasted = window(&Arc::new(Batcher::default()), Vec::new()).await;
        assert_eq!(lasted, REQUEUE + IDLE);
    }
}
