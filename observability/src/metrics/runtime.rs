//! The Rust runtime's own figures (`tokio_*`): how many workers the tokio
//! runtime runs, how many tasks are alive and how many wait in its global
//! queue, read at each scrape. A queue that keeps growing, or tasks that
//! never finish, show up here before they show up as latency.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::gauge::ConstGauge;
use tokio::runtime::Handle;

/// Reads the runtime it was made on when scraped.
#[derive(Debug)]
pub(super) struct RuntimeCollector {
    handle: Handle,
}

impl RuntimeCollector {
    /// A collector for the runtime this is called on; none outside one.
    pub(super) fn current() -> Option<Self> {
        Handle::try_current().ok().map(|handle| Self { handle })
    }
}

impl Collector for RuntimeCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let metrics = self.handle.metrics();
        for (name, help, value) in [
            (
                "tokio_workers",
                "Worker threads of the tokio runtime.",
                metrics.num_workers(),
            ),
            (
                "tokio_alive_tasks",
                "Tasks spawned on the tokio runtime that have not finished.",
                metrics.num_alive_tasks(),
            ),
            (
                "tokio_global_queue_depth",
                "Tasks waiting in the tokio runtime's global queue.",
                metrics.global_queue_depth(),
            ),
        ] {
            let gauge = ConstGauge::new(value as i64);
            gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::metrics::MetricsRegistry;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_runtime_reports_its_workers_and_tasks() {
        let registry = MetricsRegistry::with_process_metrics();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = stopped.await;
        });
        let text = registry.encode_text();
        assert!(text.contains("tokio_workers 2"), "{text}");
        let alive: i64 = text
            .lines()
            .find_map(|l| l.strip_prefix("tokio_alive_tasks "))
            .expect("tokio_alive_tasks")
            .parse()
            .unwrap();
        assert!(alive >= 1, "{text}");
        assert!(text.contains("tokio_global_queue_depth "), "{text}");
        stop.send(()).unwrap();
        task.await.unwrap();
    }

    #[test]
    fn outside_a_runtime_there_is_nothing_to_report() {
        let text = MetricsRegistry::with_process_metrics().encode_text();
        assert!(!text.contains("tokio_workers"), "{text}");
    }
}
