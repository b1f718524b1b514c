//! How long to wait before restarting a command that exited: doubling from
//! one second up to a limit, and back to one second once a run lasted long
//! enough to count as healthy (a crash loop slows down; a rare crash does not).

use std::time::Duration;

/// The first wait, and the wait after a healthy run.
const FIRST: Duration = Duration::from_secs(1);
/// A run at least this long resets the back-off.
const HEALTHY_RUN: Duration = Duration::from_secs(60);

/// The restart back-off of one supervised command.
#[derive(Debug)]
pub struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    /// A back-off that never waits longer than `max`.
    pub fn new(max: Duration) -> Self {
        Self {
            next: FIRST.min(max),
            max,
        }
    }

    /// The wait before the next start, after a run that lasted `ran`.
    pub fn after_run(&mut self, ran: Duration) -> Duration {
        if ran >= HEALTHY_RUN {
            self.next = FIRST.min(self.max);
        }
        let delay = self.next;
        self.next = (self.next * 2).min(self.max);
        delay
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crash_loops_slow_down_and_healthy_runs_reset() {
        let mut backoff = Backoff::new(Duration::from_secs(5));
        let quick = Duration::from_millis(10);
        let waits: Vec<u64> = (0..5).map(|_| backoff.after_run(quick).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 5, 5]);
        assert_eq!(backoff.after_run(HEALTHY_RUN), FIRST);
        assert_eq!(backoff.after_run(quick), Duration::from_secs(2));
        assert_eq!(
            Backoff::new(Duration::from_millis(300)).after_run(quick),
            Duration::from_millis(300)
        );
    }
}
