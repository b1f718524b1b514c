//! The node agent's Prometheus metrics, served on its kubelet port as
//! kubelet serves them: `/metrics` with kubelet's own names (pods and
//! containers running, pod start and worker latencies, every runtime call),
//! and `/metrics/cadvisor` with cAdvisor's per-container usage. One
//! [`KubeletMetrics`] per node, shared by its pod loop, its runtime wrapper
//! ([`instrumented::InstrumentedRuntime`]) and its kubelet API.

pub mod cadvisor;
pub mod dcgm;
pub mod instrumented;

use std::time::Duration;

use berth_observability::metrics::{
    exponential_buckets, Counter, EncodeLabelSet, Family, Gauge, Histogram, MetricsRegistry,
};

use crate::runtime::{ContainerStatus, PodState, SandboxPhase};

/// `kubelet_pod_start_duration_seconds`' buckets, as upstream kubelet sets them
/// (half a second to an hour).
pub const POD_START_BUCKETS: [f64; 25] = [
    0.5, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 20.0, 30.0, 45.0, 60.0, 120.0, 180.0, 240.0,
    300.0, 360.0, 480.0, 600.0, 900.0, 1200.0, 1800.0, 2700.0, 3600.0,
];

/// Prometheus' default buckets, which kubelet's pod worker histogram keeps.
pub const DEFAULT_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The container states `kubelet_running_containers` counts.
const CONTAINER_STATES: [&str; 4] = ["created", "running", "exited", "unknown"];

/// `{operation_type}` of the runtime operation metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OperationType {
    /// The runtime call (`sync_pod`, `list_pods`, …).
    pub operation_type: String,
}

/// `{operation}` of `kubelet_pod_worker_duration_seconds`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Operation {
    /// `create`, `update` or `kill`, as kubelet's pod workers name them.
    pub operation: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ContainerState {
    container_state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NodeName {
    node: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn pod_worker_histogram() -> Histogram {
    Histogram::new(DEFAULT_BUCKETS)
}

fn runtime_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.5, 14))
}

/// One node's kubelet metrics: cheap to clone, every clone feeds the same
/// registry.
#[derive(Clone, Debug)]
pub struct KubeletMetrics {
    registry: MetricsRegistry,
    running_pods: Gauge,
    running_containers: Family<ContainerState, Gauge>,
    pod_start: Histogram,
    pod_worker: HistogramFamily<Operation>,
    runtime_operations: Family<OperationType, Counter>,
    runtime_errors: Family<OperationType, Counter>,
    runtime_duration: HistogramFamily<OperationType>,
}

impl KubeletMetrics {
    /// The metrics of node `node_name`, in a registry of their own that also
    /// carries this process' `process_*` metrics.
    pub fn new(node_name: &str) -> Self {
        let registry = MetricsRegistry::with_process_metrics();
        registry
            .register(
                "kubelet_node_name",
                "The node's name. The count is always 1",
                Family::<NodeName, Gauge>::default(),
            )
            .get_or_create(&NodeName {
                node: node_name.to_owned(),
            })
            .set(1);
        Self {
            running_pods: registry.register(
                "kubelet_running_pods",
                "Number of pods that have a running pod sandbox",
                Gauge::default(),
            ),
            running_containers: registry.register(
                "kubelet_running_containers",
                "Number of containers currently running",
                Family::default(),
            ),
            pod_start: registry.register(
                "kubelet_pod_start_duration_seconds",
                "Duration in seconds from the pod's creation to it running",
                Histogram::new(POD_START_BUCKETS),
            ),
            pod_worker: registry.register(
                "kubelet_pod_worker_duration_seconds",
                "Duration in seconds to sync a single pod, by operation",
                Family::new_with_constructor(pod_worker_histogram as fn() -> Histogram),
            ),
            runtime_operations: registry.register(
                "kubelet_runtime_operations",
                "Cumulative number of runtime operations by operation type",
                Family::default(),
            ),
            runtime_errors: registry.register(
                "kubelet_runtime_operations_errors",
                "Cumulative number of runtime operation errors by operation type",
                Family::default(),
            ),
            runtime_duration: registry.register(
                "kubelet_runtime_operations_duration_seconds",
                "Duration in seconds of runtime operations, by operation type",
                Family::new_with_constructor(runtime_histogram as fn() -> Histogram),
            ),
            registry,
        }
    }

    /// The registry `/metrics` serves.
    pub fn registry(&self) -> &MetricsRegistry {
        &self.registry
    }

    /// Sets the running pod and container gauges from what the runtime
    /// reports now (read at scrape time, as kubelet reads its pod cache).
    pub fn observe_pods(&self, pods: &[PodState]) {
        let running = pods
            .iter()
            .filter(|p| p.phase == SandboxPhase::Running)
            .count();
        self.running_pods
            .set(i64::try_from(running).unwrap_or(i64::MAX));
        let mut counts = [0i64; CONTAINER_STATES.len()];
        for container in pods
            .iter()
            .flat_map(|p| p.init_containers.iter().chain(&p.containers))
        {
            if let Some(state) = container_state(container) {
                counts[state] += 1;
            }
        }
        for (state, count) in CONTAINER_STATES.iter().zip(counts) {
            self.running_containers
                .get_or_create(&ContainerState {
                    container_state: (*state).to_owned(),
                })
                .set(count);
        }
    }

    /// Records that a pod created `since_creation` ago now runs.
    pub fn observe_pod_start(&self, since_creation: Duration) {
        self.pod_start.observe(since_creation.as_secs_f64());
    }

    /// Records one sync of a pod by its worker.
    pub fn observe_pod_worker(&self, operation: &str, took: Duration) {
        self.pod_worker
            .get_or_create(&Operation {
                operation: operation.to_owned(),
            })
            .observe(took.as_secs_f64());
    }

    /// Records one runtime call, and whether it failed.
    pub fn observe_runtime_operation(&self, operation_type: &str, took: Duration, failed: bool) {
        let labels = OperationType {
            operation_type: operation_type.to_owned(),
        };
        self.runtime_operations.get_or_create(&labels).inc();
        if failed {
            self.runtime_errors.get_or_create(&labels).inc();
        }
        self.runtime_duration
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
    }
}

/// The index in [`CONTAINER_STATES`] of a container the runtime holds, or
/// `None` for one not created yet.
fn container_state(container: &crate::runtime::ContainerState) -> Option<usize> {
    match &container.status {
        ContainerStatus::Running { .. } => Some(1),
        ContainerStatus::Exited(_) => Some(2),
        // Waiting to be started again after a run (back-off).
        ContainerStatus::Waiting { .. } if container.last_termination.is_some() => Some(2),
        ContainerStatus::Waiting { .. } if !container.container_id.is_empty() => Some(0),
        ContainerStatus::Waiting { .. } => None,
    }
}

#[cfg(test)]
mod tests;
