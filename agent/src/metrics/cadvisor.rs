//! `/metrics/cadvisor`: the containers' usage under cAdvisor's metric names
//! and labels, as kubelet's embedded cAdvisor serves them. Rows are derived
//! from one [`Snapshot`] of the cgroup reads (the same that feed
//! `/stats/summary`) joined with the runtime's pod states for the image and
//! container ID; each pod also gets its pod-level row with `container=""`.
//! A fresh [`CadvisorCollector`] renders each scrape, so concurrent scrapes
//! never share rows.

use berth_observability::metrics::{EncodeLabelSet, MetricsRegistry};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use crate::runtime::PodState;
use crate::stats::{Snapshot, Usage};

/// cAdvisor's labels of one container (or pod) row.
#[derive(Clone, Debug, Default, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Labels {
    /// The container's name in the pod spec; empty on the pod's row.
    pub container: String,
    /// The pod's name.
    pub pod: String,
    /// The pod's namespace.
    pub namespace: String,
    /// The cgroup-style path cAdvisor keys its rows by
    /// (`/kubepods/pod<UID>[/<container ID>]`).
    pub id: String,
    /// The container's image as the pod spec names it (or the resolved
    /// image where only that is known); empty on the pod's row.
    pub image: String,
    /// The runtime's container ID (what cAdvisor names a containerd
    /// container); empty on the pod's row.
    pub name: String,
}

/// One row: a container's or a pod's usage.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// Its labels.
    pub labels: Labels,
    /// Its counters.
    pub usage: Usage,
    /// When it started, in seconds since the Unix epoch.
    pub start_time_seconds: f64,
}

/// The rows of `snapshot`: for each pod its containers', then its own
/// (their sums). `pods` (the runtime's states) supplies image and ID.
pub fn rows(snapshot: &Snapshot, pods: &[PodState]) -> Vec<Row> {
    let mut rows = Vec::new();
    for pod in &snapshot.pods {
        let pod_id = format!("/kubepods/pod{}", pod.uid);
        let state = pods.iter().find(|p| p.uid == pod.uid);
        for container in &pod.containers {
            let spec = state.and_then(|s| s.containers.iter().find(|c| c.name == container.name));
            let runtime_id = spec
                .map(|c| bare_id(&c.container_id).to_owned())
                .unwrap_or_default();
            let id = if runtime_id.is_empty() {
                format!("{pod_id}/{}", container.name)
            } else {
                format!("{pod_id}/{runtime_id}")
            };
            rows.push(Row {
                labels: Labels {
                    container: container.name.clone(),
                    pod: pod.name.clone(),
                    namespace: pod.namespace.clone(),
                    id,
                    image: spec.map(image_of).unwrap_or_default(),
                    name: runtime_id,
                },
                usage: container.usage,
                start_time_seconds: seconds_since_epoch(container.started_at),
            });
        }
        rows.push(Row {
            labels: Labels {
                pod: pod.name.clone(),
                namespace: pod.namespace.clone(),
                id: pod_id,
                ..Labels::default()
            },
            usage: pod.total(),
            start_time_seconds: seconds_since_epoch(pod.started_at),
        });
    }
    rows
}

/// The container's image as the spec names it, or the resolved one where
/// the runtime reports only that (containerd's pods listed after the fact).
fn image_of(container: &crate::runtime::ContainerState) -> String {
    if container.image.is_empty() {
        container.image_id.clone()
    } else {
        container.image.clone()
    }
}

/// `ID` of `RUNTIME://ID`.
fn bare_id(container_id: &str) -> &str {
    container_id
        .split_once("://")
        .map_or(container_id, |(_, id)| id)
}

fn seconds_since_epoch(at: jiff::Timestamp) -> f64 {
    at.as_millisecond() as f64 / 1e3
}

/// The text `/metrics/cadvisor` serves for `rows`.
pub fn render(rows: Vec<Row>) -> String {
    let registry = MetricsRegistry::default();
    registry.register_collector(CadvisorCollector { rows });
    registry.encode()
}

/// Encodes a fixed set of rows under cAdvisor's names.
#[derive(Debug)]
pub struct CadvisorCollector {
    rows: Vec<Row>,
}

type Gauges = [(&'static str, &'static str, fn(&Row) -> f64); 4];

const GAUGES: Gauges = [
    (
        "container_memory_working_set_bytes",
        "Current working set in bytes",
        |row| row.usage.memory_working_set_bytes as f64,
    ),
    ("container_memory_rss", "Size of RSS in bytes", |row| {
        row.usage.memory_rss_bytes as f64
    }),
    (
        "container_memory_usage_bytes",
        "Current memory usage in bytes, including all memory regardless of when it was accessed",
        |row| row.usage.memory_usage_bytes as f64,
    ),
    (
        "container_start_time_seconds",
        "Start time of the container since unix epoch in seconds",
        |row| row.start_time_seconds,
    ),
];

impl Collector for CadvisorCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        if self.rows.is_empty() {
            return Ok(());
        }
        let mut family = encoder.encode_descriptor(
            "container_cpu_usage_seconds",
            "Cumulative cpu time consumed in seconds",
            None,
            prometheus_client::metrics::MetricType::Counter,
        )?;
        for row in &self.rows {
            let cpu = ConstCounter::new(row.usage.cpu_usage_nanos as f64 / 1e9);
            cpu.encode(family.encode_family(&row.labels)?)?;
        }
        for (name, help, value) in GAUGES {
            let mut family = encoder.encode_descriptor(
                name,
                help,
                None,
                prometheus_client::metrics::MetricType::Gauge,
            )?;
            for row in &self.rows {
                let gauge = ConstGauge::new(value(row));
                gauge.encode(family.encode_family(&row.labels)?)?;
            }
        }
        Ok(())
    }
}
