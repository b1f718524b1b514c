//! kube-scheduler's metrics under its names, labels and buckets, so the
//! scheduling dashboards and alerts teams already have read berth's
//! scheduler: attempts by result and their latency, the pending pods by
//! queue, preemption attempts and victims. Registered once per process in
//! the control plane's registry (`berth server` serves it on the API
//! server's `/metrics`).

use std::sync::OnceLock;
use std::time::Duration;

use berth_observability::metrics::{
    exponential_buckets, Counter, EncodeLabelSet, Family, Gauge, Histogram, MetricsRegistry,
};

/// The scheduler profile every decision is made by (upstream's default).
const PROFILE: &str = "default-scheduler";

/// How a scheduling attempt ended, as upstream's `result` label says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptResult {
    /// The pod was bound to a node.
    Scheduled,
    /// No node fits it.
    Unschedulable,
    /// A plugin or the binding failed.
    Error,
}

impl AttemptResult {
    fn label(self) -> &'static str {
        match self {
            AttemptResult::Scheduled => "scheduled",
            AttemptResult::Unschedulable => "unschedulable",
            AttemptResult::Error => "error",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AttemptLabels {
    result: &'static str,
    profile: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueueLabels {
    queue: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// How many pods wait in each of the scheduling queue's parts.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct QueueLengths {
    /// Ready to be tried.
    pub active: usize,
    /// Tried and failed, waiting out their back-off.
    pub backoff: usize,
    /// Back-off over, waiting for a cluster change (or the longest wait).
    pub unschedulable: usize,
}

/// The scheduler's metrics, shared by its loop and its binding tasks.
#[derive(Debug, Clone)]
pub struct SchedulerMetrics {
    attempts: Family<AttemptLabels, Counter>,
    durations: HistogramFamily<AttemptLabels>,
    pending: Family<QueueLabels, Gauge>,
    preemption_attempts: Counter,
    preemption_victims: Histogram,
}

fn attempt_duration() -> Histogram {
    // kube-scheduler: 1 ms doubling, 15 buckets (to about 16 s).
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

impl SchedulerMetrics {
    /// The metrics of this process's scheduler, registered in the control
    /// plane's registry on first use.
    pub fn global() -> &'static SchedulerMetrics {
        static METRICS: OnceLock<SchedulerMetrics> = OnceLock::new();
        METRICS.get_or_init(|| SchedulerMetrics::register(MetricsRegistry::control_plane()))
    }

    /// Registers the scheduler's metrics in `registry`.
    pub fn register(registry: &MetricsRegistry) -> Self {
        SchedulerMetrics {
            attempts: registry.register(
                "scheduler_schedule_attempts",
                "Number of attempts to schedule pods, by the result. 'unschedulable' means a pod could not be scheduled, while 'error' means an internal scheduler problem.",
                Family::default(),
            ),
            durations: registry.register(
                "scheduler_scheduling_attempt_duration_seconds",
                "Scheduling attempt latency in seconds (scheduling algorithm + binding)",
                Family::new_with_constructor(attempt_duration as fn() -> Histogram),
            ),
            pending: registry.register(
                "scheduler_pending_pods",
                "Number of pending pods, by the queue type. 'active' means number of pods in activeQ; 'backoff' means number of pods in backoffQ; 'unschedulable' means number of pods in unschedulablePods.",
                Family::default(),
            ),
            preemption_attempts: registry.register(
                "scheduler_preemption_attempts",
                "Total preemption attempts in the cluster till now",
                Counter::default(),
            ),
            preemption_victims: registry.register(
                "scheduler_preemption_victims",
                "Number of selected preemption victims",
                Histogram::new(exponential_buckets(1.0, 2.0, 7)),
            ),
        }
    }

    /// Counts one attempt that ended with `result` after `elapsed`.
    pub fn attempt(&self, result: AttemptResult, elapsed: Duration) {
        let labels = AttemptLabels {
            result: result.label(),
            profile: PROFILE,
        };
        self.attempts.get_or_create(&labels).inc();
        self.durations
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
    }

    /// Records the queue's lengths now.
    pub fn pending(&self, lengths: QueueLengths) {
        for (queue, length) in [
            ("active", lengths.active),
            ("backoff", lengths.backoff),
            ("unschedulable", lengths.unschedulable),
        ] {
            self.pending
                .get_or_create(&QueueLabels { queue })
                .set(i64::try_from(length).unwrap_or(i64::MAX));
        }
    }

    /// Counts a preemption attempt and, when it chose a node, its victims.
    pub fn preemption(&self, victims: Option<usize>) {
        self.preemption_attempts.inc();
        if let Some(victims) = victims {
            self.preemption_victims.observe(victims as f64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempts_queues_and_preemptions_are_served_under_upstream_names() {
        let registry = MetricsRegistry::default();
        let metrics = SchedulerMetrics::register(&registry);
        metrics.attempt(AttemptResult::Scheduled, Duration::from_millis(3));
        metrics.attempt(AttemptResult::Scheduled, Duration::from_millis(3));
        metrics.attempt(AttemptResult::Unschedulable, Duration::from_millis(1));
        metrics.pending(QueueLengths {
            active: 4,
            backoff: 1,
            unschedulable: 2,
        });
        metrics.preemption(Some(2));
        metrics.preemption(None);
        let text = registry.encode();
        for line in [
            "scheduler_schedule_attempts_total{result=\"scheduled\",profile=\"default-scheduler\"} 2",
            "scheduler_schedule_attempts_total{result=\"unschedulable\",profile=\"default-scheduler\"} 1",
            "scheduler_scheduling_attempt_duration_seconds_bucket{le=\"0.004\",result=\"scheduled\",profile=\"default-scheduler\"} 2",
            "scheduler_pending_pods{queue=\"active\"} 4",
            "scheduler_pending_pods{queue=\"backoff\"} 1",
            "scheduler_pending_pods{queue=\"unschedulable\"} 2",
            "scheduler_preemption_attempts_total 2",
            "scheduler_preemption_victims_count 1",
        ] {
            assert!(text.contains(line), "no {line} in\n{text}");
        }
    }
}
