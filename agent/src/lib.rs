//! The berth node agent (kubelet's role): registers Nodes, keeps their Lease
//! heartbeats and status fresh, and runs the pods bound to them through a
//! [`runtime::Runtime`]. One process may run one node (`berth agent`) or
//! thousands of simulated ones (`berth sim`) over one client and one pod
//! watch. It is an ordinary API client: it never reaches into the server.
#![warn(missing_docs)]

pub mod api_failover;
pub mod bootstrap;
pub mod client;
pub mod config;
pub mod gpu;
pub mod gpu_health;
pub mod host;
pub mod ingress;
pub mod lease;
pub mod logs;
pub mod metrics;
pub mod network;
pub mod node;
pub mod pods;
pub mod probes;
pub mod runtime;
pub mod server;
pub mod stats;
pub mod volumes;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use config::NodeConfig;
use runtime::{Runtime, RuntimeError};

/// Why the agent stopped or a step failed.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// An API call failed.
    #[error("{action}: {source}")]
    Api {
        /// What the agent was doing (`registering node n1`).
        action: String,
        /// The client error.
        source: kube::Error,
    },
    /// The runtime failed.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// Two nodes of one process share a name.
    #[error("node {0:?} is configured twice in one process; give every node a unique name")]
    DuplicateNode(String),
    /// A background loop panicked.
    #[error("an agent task panicked: {0}")]
    Panicked(String),
}

impl AgentError {
    pub(crate) fn api(action: impl Into<String>, source: kube::Error) -> Self {
        Self::Api {
            action: action.into(),
            source,
        }
    }
}

/// How often the agent talks to the API server, and how much at once.
/// Defaults are kubelet's where kubelet has one.
#[derive(Debug, Clone)]
pub struct AgentOptions {
    /// How often each node's Lease is renewed (kubelet: 10 s).
    pub heartbeat_interval: Duration,
    /// `leaseDurationSeconds` of each Lease (kubelet: 40).
    pub lease_duration_seconds: i32,
    /// How often each node's status (conditions, capacity) is posted again
    /// even when nothing changed, so its heartbeat times stay recent.
    pub status_interval: Duration,
    /// How often each running pod is checked against the runtime even when
    /// the API did not change it.
    pub pod_resync: Duration,
    /// How often runtime pods the API no longer has are stopped and removed.
    pub housekeeping_interval: Duration,
    /// API calls in flight at once for registration, heartbeats and status.
    pub api_concurrency: usize,
    /// Pods reconciled at once (across all nodes of the process).
    pub pod_workers: u16,
}

impl Default for AgentOptions {
    fn default() -> Self {
        Self {
            heartbeat_interval: Duration::from_secs(10),
            lease_duration_seconds: 40,
            status_interval: Duration::from_secs(60),
            pod_resync: Duration::from_secs(60),
            housekeeping_interval: Duration::from_secs(30),
            api_concurrency: 32,
            pod_workers: 64,
        }
    }
}

/// One node this process runs: its configuration, its runtime, and what the
/// agent remembers between API calls (nothing it could not re-read).
pub struct NodeHandle {
    /// The node's configuration.
    pub config: NodeConfig,
    /// The runtime running its pods, every call counted in `metrics`.
    pub runtime: Arc<dyn Runtime>,
    /// The node's kubelet metrics, which its kubelet API serves.
    pub metrics: metrics::KubeletMetrics,
    /// Changes every start, as a machine's boot ID does.
    boot_id: String,
    /// The Node's UID once registered (the Lease's owner).
    uid: Mutex<Option<String>>,
    /// Since when the node has reported Ready (the condition's transition time).
    ready_since: Mutex<Timestamp>,
    /// The podCIDR last handed to the runtime.
    pod_cidr: Mutex<Option<String>>,
    /// The node's probe workers.
    pub prober: Arc<probes::Prober>,
    /// The node's GPUs and the pods holding them.
    pub gpus: pods::gpus::GpuAssignments,
    /// NVML open on the node's GPUs, for their metrics and health; `None`
    /// without GPUs or when NVML cannot be opened.
    pub gpu_monitor: Option<Arc<gpu::GpuMonitor>>,
}

impl NodeHandle {
    /// A node to run with `runtime`, which it wraps so that every call is
    /// counted in the node's metrics.
    pub fn new(config: NodeConfig, runtime: Arc<dyn Runtime>) -> Self {
        let gpus =
            pods::gpus::GpuAssignments::new(config.gpus.clone(), config.gpu_checkpoint.clone());
        let metrics = metrics::KubeletMetrics::new(&config.name);
        let runtime = Arc::new(metrics::instrumented::InstrumentedRuntime::new(
            runtime,
            metrics.clone(),
        ));
        let monitor = if config.gpus.is_empty() {
            None
        } else {
            gpu::GpuMonitor::open(config.nvml_library.as_deref(), config.gpus.clone())
                .inspect_err(|e| tracing::warn!(error = %e, "GPU metrics and health are off"))
                .ok()
        };
        Self {
            gpus,
            config,
            runtime,
            metrics,
            boot_id: uuid::Uuid::new_v4().to_string(),
            uid: Mutex::new(None),
            ready_since: Mutex::new(seconds(Timestamp::now())),
            pod_cidr: Mutex::new(None),
            prober: probes::Prober::new(),
            gpu_monitor: None,
        }
        .with_gpu_monitor(monitor)
    }

    /// The node watching its GPUs through `monitor`: their dcgm-exporter
    /// metrics join its `/metrics`, and [`gpu_health`] withdraws the ones
    /// that fail.
    pub fn with_gpu_monitor(mut self, monitor: Option<gpu::GpuMonitor>) -> Self {
        self.gpu_monitor = monitor.map(Arc::new);
        if let Some(monitor) = &self.gpu_monitor {
            self.metrics
                .registry()
                .register_collector(metrics::dcgm::DcgmCollector::new(
                    Arc::clone(monitor),
                    self.gpus.owners(),
                    &self.config.name,
                ));
        }
        self
    }

    /// The node's name.
    pub fn name(&self) -> &str {
        &self.config.name
    }
}

/// Locks a mutex whose data stays consistent even if a holder panicked.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// `at` without its fraction: the API's `Time` has whole seconds, so values
/// compared with what the server sends back must have them too.
pub(crate) fn seconds(at: Timestamp) -> Timestamp {
    Timestamp::from_second(at.as_second()).unwrap_or(at)
}

/// The nodes of one process, by name.
pub struct Nodes {
    by_name: HashMap<String, Arc<NodeHandle>>,
    ordered: Vec<Arc<NodeHandle>>,
}

impl Nodes {
    /// The set of `nodes`, which must have distinct names.
    pub fn new(nodes: Vec<NodeHandle>) -> Result<Self, AgentError> {
        let mut by_name = HashMap::with_capacity(nodes.len());
        let mut ordered = Vec::with_capacity(nodes.len());
        for node in nodes {
            let node = Arc::new(node);
            if by_name
                .insert(node.name().to_owned(), Arc::clone(&node))
                .is_some()
            {
                return Err(AgentError::DuplicateNode(node.name().to_owned()));
            }
            ordered.push(node);
        }
        Ok(Self { by_name, ordered })
    }

    /// The node named `name`, if this process runs it.
    pub fn get(&self, name: &str) -> Option<&Arc<NodeHandle>> {
        self.by_name.get(name)
    }

    /// Every node, in the order given.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<NodeHandle>> {
        self.ordered.iter()
    }

    /// How many nodes.
    pub fn len(&self) -> usize {
        self.ordered.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.ordered.is_empty()
    }

    /// The only node, when the process runs exactly one (watches then ask
    /// the server for that node's objects alone).
    pub(crate) fn single(&self) -> Option<&Arc<NodeHandle>> {
        match self.ordered.as_slice() {
            [only] => Some(only),
            _ => None,
        }
    }
}

/// Runs `nodes` until `cancel` fires: registers them, then keeps their
/// Leases, statuses and pods up to date. Returns once every loop has stopped.
pub async fn run(
    client: kube::Client,
    nodes: Nodes,
    options: AgentOptions,
    cancel: CancellationToken,
) -> Result<(), AgentError> {
    // A failing loop stops its siblings, not whatever else shares the caller's token.
    let cancel = cancel.child_token();
    let nodes = Arc::new(nodes);
    let options = Arc::new(options);
    node::register_all(&client, &nodes, &options, &cancel).await;
    if cancel.is_cancelled() {
        return Ok(());
    }
    tracing::info!(nodes = nodes.len(), "nodes registered");

    let mut tasks: JoinSet<Result<(), AgentError>> = JoinSet::new();
    tasks.spawn(lease::run(
        client.clone(),
        Arc::clone(&nodes),
        Arc::clone(&options),
        cancel.clone(),
    ));
    tasks.spawn(node::report_status(
        client.clone(),
        Arc::clone(&nodes),
        Arc::clone(&options),
        cancel.clone(),
    ));
    tasks.spawn(node::watch_pod_cidrs(
        client.clone(),
        Arc::clone(&nodes),
        cancel.clone(),
    ));
    tasks.spawn(volumes::reclaim::run(
        client.clone(),
        Arc::clone(&nodes),
        cancel.clone(),
    ));
    if nodes.iter().any(|n| n.gpu_monitor.is_some()) {
        tasks.spawn(gpu_health::run(
            client.clone(),
            Arc::clone(&nodes),
            cancel.clone(),
        ));
    }
    tasks.spawn(pods::run(
        client,
        Arc::clone(&nodes),
        Arc::clone(&options),
        cancel.clone(),
    ));

    let mut outcome = Ok(());
    while let Some(joined) = tasks.join_next().await {
        let result = joined.unwrap_or_else(|e| Err(AgentError::Panicked(e.to_string())));
        if let Err(e) = result {
            tracing::error!(error = %e, "agent loop failed; stopping the agent");
            cancel.cancel();
            if outcome.is_ok() {
                outcome = Err(e);
            }
        }
    }
    outcome
}
