//! The container runtime seam: what the agent needs from whatever runs pods
//! (a pod sandbox plus its containers, stopped with a grace period, reported
//! back, listed for adoption). `simulated` runs nothing; a CRI backend over
//! containerd comes later. Implementations never talk to the API server.

pub mod ipam;
pub mod simulated;

use std::net::IpAddr;
use std::time::Duration;

use async_trait::async_trait;
use jiff::Timestamp;

/// What the runtime needs to start one pod, taken from the Pod's spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodSandboxConfig {
    /// The Pod's UID: the runtime's key, so a re-created pod of the same name is a new sandbox.
    pub uid: String,
    /// The Pod's namespace.
    pub namespace: String,
    /// The Pod's name.
    pub name: String,
    /// Init containers, run to completion in order before the others.
    pub init_containers: Vec<ContainerConfig>,
    /// The pod's long-running containers.
    pub containers: Vec<ContainerConfig>,
    /// The IP the pod had before the agent restarted, kept when still free so
    /// an adopted pod does not change address under its Services.
    pub previous_ip: Option<IpAddr>,
}

/// One container to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerConfig {
    /// The container's name in the pod spec.
    pub name: String,
    /// The image reference as written in the pod spec.
    pub image: String,
}

/// Where a pod stands in the runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SandboxPhase {
    /// Its containers are running.
    Running,
    /// It was stopped; its containers have exited.
    Stopped,
}

/// What the runtime reports about one pod: enough to fill the Pod's status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodState {
    /// The Pod's UID.
    pub uid: String,
    /// The Pod's namespace.
    pub namespace: String,
    /// The Pod's name.
    pub name: String,
    /// Running or stopped.
    pub phase: SandboxPhase,
    /// The pod's IP on the pod network.
    pub ip: Option<IpAddr>,
    /// When the sandbox started.
    pub started_at: Timestamp,
    /// Init containers, in spec order.
    pub init_containers: Vec<ContainerState>,
    /// Containers, in spec order.
    pub containers: Vec<ContainerState>,
}

/// What the runtime reports about one container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerState {
    /// The container's name in the pod spec.
    pub name: String,
    /// The image as the pod spec names it.
    pub image: String,
    /// The resolved image (`docker.io/library/nginx@sha256:…`).
    pub image_id: String,
    /// `RUNTIME://ID`, as containerStatuses[].containerID shows it.
    pub container_id: String,
    /// Running, or exited with a code.
    pub status: ContainerStatus,
}

/// A container's lifecycle state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerStatus {
    /// Started at this time and still running.
    Running {
        /// When it started.
        started_at: Timestamp,
    },
    /// Exited.
    Exited {
        /// When it started.
        started_at: Timestamp,
        /// When it exited.
        finished_at: Timestamp,
        /// Its exit code.
        exit_code: i32,
        /// Upstream's reason word (`Completed`, `Error`).
        reason: String,
    },
}

/// Why a runtime call failed.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// No pod IP is left in the node's range.
    #[error("no free pod IP in {cidr}: the node runs as many pods as its range holds; lower its pods capacity or give it a larger podCIDR")]
    AddressesExhausted {
        /// The range that is full.
        cidr: String,
    },
    /// A podCIDR handed to the runtime does not parse.
    #[error("podCIDR {cidr:?} is not an address range like 10.42.0.0/24: {reason}")]
    InvalidPodCidr {
        /// The text given.
        cidr: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The runtime itself failed (a CRI call, a socket).
    #[error("runtime: {0}")]
    Backend(String),
}

/// A container runtime as the agent drives it: CRI's verbs, reduced to what
/// a pod needs. Every call is idempotent, because the agent's loops are
/// level-triggered and may repeat a step after a failure or restart.
#[async_trait]
pub trait Runtime: Send + Sync + 'static {
    /// `containerRuntimeVersion` as the Node reports it (`simulated://1.0`).
    fn version(&self) -> String;

    /// Hands the node's `spec.podCIDR` to the runtime once the API sets it
    /// (CRI's `UpdateRuntimeConfig`): pods started afterwards get IPs from it.
    async fn update_pod_cidr(&self, cidr: &str) -> Result<(), RuntimeError>;

    /// Starts the pod's sandbox and containers; a pod already started is
    /// left as it is and its state returned.
    async fn start_pod(&self, pod: &PodSandboxConfig) -> Result<PodState, RuntimeError>;

    /// Stops the pod's containers, giving them `grace` to exit before they
    /// are killed; stopping a stopped or unknown pod succeeds.
    async fn stop_pod(&self, uid: &str, grace: Duration) -> Result<(), RuntimeError>;

    /// Forgets a stopped pod and frees what it held (its IP); removing an
    /// unknown pod succeeds.
    async fn remove_pod(&self, uid: &str) -> Result<(), RuntimeError>;

    /// The pod's current state, or `None` when the runtime does not know it.
    async fn pod_state(&self, uid: &str) -> Result<Option<PodState>, RuntimeError>;

    /// Every pod the runtime knows, so an agent that restarts can adopt
    /// running pods and clean up those the API no longer has.
    async fn list_pods(&self) -> Result<Vec<PodState>, RuntimeError>;
}
