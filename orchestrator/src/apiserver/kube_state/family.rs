//! The rows kube-state-metrics-style families are made of, and their
//! encoding through a prometheus-client `Collector`. Plain data: deriving
//! rows from objects never touches the registry, so it is tested alone.

use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use berth_observability::metrics::collector::Collector;
use berth_observability::metrics::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use tokio::sync::Notify;

/// A family's Prometheus type; kube-state-metrics serves gauges, and
/// counters only for counts that never go down (container restarts).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A value that goes up and down.
    Gauge,
    /// A count named without `_total`, which the encoder appends.
    Counter,
}

/// One series: its labels (in kube-state-metrics' order) and value.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// Label names and values.
    pub labels: Vec<(String, String)>,
    /// The sample.
    pub value: f64,
}

/// One metric family with every series it has now.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricFamily {
    /// The name, without `_total` for a counter.
    pub name: &'static str,
    /// The `# HELP` text.
    pub help: &'static str,
    /// Gauge or counter.
    pub kind: Kind,
    /// The series.
    pub rows: Vec<Row>,
}

impl MetricFamily {
    /// An empty gauge family.
    pub fn gauge(name: &'static str, help: &'static str) -> Self {
        Self {
            name,
            help,
            kind: Kind::Gauge,
            rows: Vec::new(),
        }
    }

    /// An empty counter family.
    pub fn counter(name: &'static str, help: &'static str) -> Self {
        Self {
            kind: Kind::Counter,
            ..Self::gauge(name, help)
        }
    }

    /// Adds a series: `base` labels (the object's) then `extra` ones.
    pub fn push(&mut self, base: &[(&str, &str)], extra: &[(&str, &str)], value: f64) {
        let labels = base
            .iter()
            .chain(extra)
            .map(|(k, v)| ((*k).to_owned(), escape(v)))
            .collect();
        self.rows.push(Row { labels, value });
    }

    /// The value of the series whose labels include every pair of `labels`
    /// (for tests).
    #[cfg(test)]
    pub fn value(&self, labels: &[(&str, &str)]) -> Option<f64> {
        self.rows
            .iter()
            .find(|row| {
                labels
                    .iter()
                    .all(|(k, v)| row.labels.iter().any(|(rk, rv)| rk == k && rv == v))
            })
            .map(|row| row.value)
    }
}

/// The value of the series of family `name` whose labels include every
/// pair of `labels`, among `families` (for tests).
#[cfg(test)]
pub fn value_of(families: &[MetricFamily], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    families
        .iter()
        .find(|f| f.name == name)
        .and_then(|f| f.value(labels))
}

/// Label values are written as given by the encoder: quote, backslash and
/// newline are escaped here, as the text formats require.
fn escape(value: &str) -> String {
    if !value.contains(['\\', '"', '\n']) {
        return value.to_owned();
    }
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// 1 when `yes`, else 0: kube-state-metrics' encoding of booleans.
pub fn bool_value(yes: bool) -> f64 {
    if yes {
        1.0
    } else {
        0.0
    }
}

/// The families last derived, swapped whole by the refresh and read whole
/// by a scrape, so a scrape never waits for a list of the store. A scrape
/// also leaves its time, so the refresh can rest while nobody scrapes.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    families: Arc<RwLock<Arc<Vec<MetricFamily>>>>,
    last_scrape: Arc<Mutex<Option<Instant>>>,
    scraped: Arc<Notify>,
}

impl Snapshot {
    /// Whether a scrape came within `window`.
    pub fn scraped_within(&self, window: Duration) -> bool {
        self.last_scrape
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .is_some_and(|at| at.elapsed() <= window)
    }

    /// Resolves at the next scrape.
    pub async fn next_scrape(&self) {
        self.scraped.notified().await;
    }

    fn mark_scraped(&self) {
        *self
            .last_scrape
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(Instant::now());
        self.scraped.notify_one();
    }

    /// Replaces the families served.
    pub fn replace(&self, families: Vec<MetricFamily>) {
        *self
            .families
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(families);
    }

    fn current(&self) -> Arc<Vec<MetricFamily>> {
        Arc::clone(
            &self
                .families
                .read()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        )
    }
}

impl Collector for Snapshot {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        self.mark_scraped();
        for family in self.current().iter() {
            let metric_type = match family.kind {
                Kind::Gauge => MetricType::Gauge,
                Kind::Counter => MetricType::Counter,
            };
            let mut descriptor =
                encoder.encode_descriptor(family.name, family.help, None, metric_type)?;
            for row in &family.rows {
                let series = descriptor.encode_family(&row.labels)?;
                // Whole numbers print as integers (`1`, not `1.0`), as
                // kube-state-metrics prints them.
                let whole = row.value.fract() == 0.0 && row.value.abs() < 9e15;
                match family.kind {
                    Kind::Gauge if whole => ConstGauge::new(row.value as i64).encode(series)?,
                    Kind::Gauge => ConstGauge::new(row.value).encode(series)?,
                    Kind::Counter if whole && row.value >= 0.0 => {
                        ConstCounter::new(row.value as u64).encode(series)?
                    }
                    Kind::Counter => ConstCounter::new(row.value).encode(series)?,
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_observability::metrics::MetricsRegistry;

    #[test]
    fn families_encode_with_their_types_and_escaped_labels() {
        let snapshot = Snapshot::default();
        let mut phase = MetricFamily::gauge("kube_pod_status_phase", "The pods current phase.");
        phase.push(&[("pod", "a\"b")], &[("phase", "Running")], 1.0);
        let mut restarts = MetricFamily::counter(
            "kube_pod_container_status_restarts",
            "The number of container restarts per container.",
        );
        restarts.push(&[("pod", "a")], &[("container", "c")], 3.0);
        snapshot.replace(vec![phase, restarts]);
        let registry = MetricsRegistry::default();
        registry.register_collector(snapshot.clone());
        assert!(!snapshot.scraped_within(Duration::from_secs(60)));
        let text = registry.encode_text();
        assert!(snapshot.scraped_within(Duration::from_secs(60)));
        assert!(
            text.contains("kube_pod_status_phase{pod=\"a\\\"b\",phase=\"Running\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE kube_pod_container_status_restarts_total counter"),
            "{text}"
        );
        assert!(
            text.contains("kube_pod_container_status_restarts_total{pod=\"a\",container=\"c\"} 3"),
            "{text}"
        );
    }
}
