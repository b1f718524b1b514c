//! The container runtime seam: what the agent needs from whatever runs pods
//! (a pod sandbox plus its containers, stopped with a grace period, reported
//! back, listed for adoption). `simulated` runs nothing; a CRI backend over
//! containerd comes later. Implementations never talk to the API server.

pub mod cri;
pub mod ipam;
pub mod simulated;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use async_trait::async_trait;
use jiff::Timestamp;

/// What the runtime needs to run one pod, taken from the Pod's spec with
/// everything that needs the API (env from ConfigMaps, volume contents)
/// already resolved by the agent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
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
    /// When exited containers are started again.
    pub restart_policy: RestartPolicy,
    /// Whether the pod shares the node's network namespace.
    pub host_network: bool,
    /// The pod's hostname (its name, or `spec.hostname`).
    pub hostname: String,
    /// The Pod's labels, passed to the sandbox as kubelet does.
    pub labels: BTreeMap<String, String>,
    /// The Pod's annotations (the simulated runtime reads its exit plan from them).
    pub annotations: BTreeMap<String, String>,
    /// The pod's volumes, by name.
    pub volumes: Vec<Volume>,
    /// Credentials from the pod's `imagePullSecrets`, per registry.
    pub registry_auths: Vec<RegistryAuth>,
    /// The pod's resolv.conf, from its dnsPolicy (`None`: the runtime's default).
    pub dns: Option<DnsConfig>,
}

/// A pod's resolver configuration (CRI's DNSConfig): what its resolv.conf says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DnsConfig {
    /// `nameserver` lines.
    pub servers: Vec<String>,
    /// The `search` line.
    pub searches: Vec<String>,
    /// The `options` line.
    pub options: Vec<String>,
}

/// Credentials for one registry, as a docker config holds them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistryAuth {
    /// The registry's `host[:port]` (`docker.io` for Docker Hub).
    pub server: String,
    /// User name, if given on its own.
    pub username: String,
    /// Password, if given on its own.
    pub password: String,
    /// base64 of `user:password`, if given that way.
    pub auth: String,
}

/// `spec.restartPolicy`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RestartPolicy {
    /// Restart whenever a container exits (the default).
    #[default]
    Always,
    /// Restart only containers that failed.
    OnFailure,
    /// Never restart.
    Never,
}

impl RestartPolicy {
    /// The policy `spec.restartPolicy` names (`Always` when unset, as upstream defaults it).
    pub fn from_spec(value: Option<&str>) -> Self {
        match value {
            Some("Never") => Self::Never,
            Some("OnFailure") => Self::OnFailure,
            _ => Self::Always,
        }
    }

    /// Whether a container that exited with `exit_code` runs again.
    pub fn restarts(self, exit_code: i32) -> bool {
        match self {
            Self::Always => true,
            Self::OnFailure => exit_code != 0,
            Self::Never => false,
        }
    }
}

/// `imagePullPolicy`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PullPolicy {
    /// Pull every time a container starts.
    Always,
    /// Pull when the node lacks the image (the default for tagged images).
    #[default]
    IfNotPresent,
    /// Never pull; fail when the node lacks the image.
    Never,
}

/// One pod volume as the runtime provides it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    /// The volume's name in the pod spec.
    pub name: String,
    /// What backs it.
    pub source: VolumeSource,
}

/// What backs a volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VolumeSource {
    /// An empty directory that lives as long as the pod (`emptyDir`).
    EmptyDir,
    /// Files the agent resolved from the API (configMap, secret, downwardAPI,
    /// projected): relative path, contents, mode.
    Files(Vec<VolumeFile>),
    /// A directory of the node (`hostPath`).
    HostPath(String),
}

/// One file of a [`VolumeSource::Files`] volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeFile {
    /// Path inside the volume.
    pub path: String,
    /// Contents.
    pub contents: Vec<u8>,
    /// Unix permission bits.
    pub mode: u32,
}

/// One container to run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerConfig {
    /// The container's name in the pod spec.
    pub name: String,
    /// The image reference as written in the pod spec.
    pub image: String,
    /// When to pull the image.
    pub pull_policy: PullPolicy,
    /// `command` (replaces the image's entrypoint when set).
    pub command: Vec<String>,
    /// `args` (replace the image's cmd when set).
    pub args: Vec<String>,
    /// `workingDir`, when set.
    pub working_dir: Option<String>,
    /// Environment, resolved and in order.
    pub env: Vec<(String, String)>,
    /// Volume mounts.
    pub mounts: Vec<Mount>,
    /// CPU and memory requests and limits, for the container's cgroup.
    pub resources: Resources,
    /// Host device files the container gets (GPUs).
    pub devices: Vec<String>,
}

/// A volume mounted into a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// The pod volume's name.
    pub volume: String,
    /// Where it appears in the container.
    pub container_path: String,
    /// A path inside the volume to mount instead of its root.
    pub sub_path: Option<String>,
    /// Whether it is mounted read-only.
    pub read_only: bool,
}

/// The cgroup settings of a container, in the units the kernel takes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Resources {
    /// CPU request in millicores (sets cpu shares).
    pub cpu_request_millis: Option<u64>,
    /// CPU limit in millicores (sets the CFS quota).
    pub cpu_limit_millis: Option<u64>,
    /// Memory limit in bytes.
    pub memory_limit_bytes: Option<u64>,
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
    /// The resolved image (`docker.io/library/nginx@sha256:…`); empty before it is pulled.
    pub image_id: String,
    /// `RUNTIME://ID`, as containerStatuses[].containerID shows it; empty before it is created.
    pub container_id: String,
    /// Waiting, running, or exited with a code.
    pub status: ContainerStatus,
    /// How many times it was started again after exiting.
    pub restart_count: u32,
    /// How its previous run ended (`lastState.terminated`).
    pub last_termination: Option<Termination>,
}

/// How a container run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Termination {
    /// The container ID of that run (`RUNTIME://ID`).
    pub container_id: String,
    /// When it started.
    pub started_at: Timestamp,
    /// When it exited.
    pub finished_at: Timestamp,
    /// Its exit code.
    pub exit_code: i32,
    /// Upstream's reason word (`Completed`, `Error`, `OOMKilled`).
    pub reason: String,
    /// The runtime's message, if any (the termination message).
    pub message: String,
}

/// A container's lifecycle state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerStatus {
    /// Not running yet, or between runs.
    Waiting {
        /// Upstream's reason word (`ContainerCreating`, `PodInitializing`,
        /// `ErrImagePull`, `ImagePullBackOff`, `CrashLoopBackOff`).
        reason: String,
        /// Details, as kubelet words them.
        message: String,
    },
    /// Started at this time and still running.
    Running {
        /// When it started.
        started_at: Timestamp,
    },
    /// Exited.
    Exited(Termination),
}

/// Something that happened to a pod, which the agent records as an Event
/// (kubelet's `Pulling`, `Created`, `Started`, `BackOff`, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeEvent {
    /// The container it is about, if any.
    pub container: Option<String>,
    /// Whether that container is an init container.
    pub init: bool,
    /// A `Warning` rather than a `Normal` event.
    pub warning: bool,
    /// Upstream's reason word.
    pub reason: String,
    /// Upstream's message.
    pub message: String,
}

/// A streaming session a client asks for through the API server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamRequest {
    /// `kubectl exec`: run `command` in a container.
    Exec {
        /// The pod's UID.
        uid: String,
        /// The container's name.
        container: String,
        /// The command and its arguments.
        command: Vec<String>,
        /// Whether to allocate a terminal.
        tty: bool,
        /// Whether the client sends standard input.
        stdin: bool,
        /// Whether the client wants standard output.
        stdout: bool,
        /// Whether the client wants standard error.
        stderr: bool,
    },
    /// `kubectl attach`: connect to a container's main process.
    Attach {
        /// The pod's UID.
        uid: String,
        /// The container's name.
        container: String,
        /// Whether the container has a terminal.
        tty: bool,
        /// Whether the client sends standard input.
        stdin: bool,
        /// Whether the client wants standard output.
        stdout: bool,
        /// Whether the client wants standard error.
        stderr: bool,
    },
    /// `kubectl port-forward`: connect to ports of the pod's network namespace.
    PortForward {
        /// The pod's UID.
        uid: String,
        /// The ports asked for (may be empty: SPDY names them per stream).
        ports: Vec<u16>,
    },
}

/// What a command run in a container printed, and how it exited.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecOutput {
    /// Its exit code.
    pub exit_code: i32,
    /// Its standard output.
    pub stdout: Vec<u8>,
    /// Its standard error.
    pub stderr: Vec<u8>,
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

    /// Brings the pod one step closer to its spec and returns where it then
    /// stands: starts its sandbox, runs init containers in order, starts its
    /// containers and restarts exited ones as its restart policy says (with
    /// back-off). Called again whenever the pod or its containers change.
    async fn sync_pod(&self, pod: &PodSandboxConfig) -> Result<PodState, RuntimeError>;

    /// Stops one container so that the next [`Runtime::sync_pod`] restarts it
    /// (a failed liveness probe); an unknown container is ignored.
    async fn kill_container(
        &self,
        uid: &str,
        container: &str,
        grace: Duration,
    ) -> Result<(), RuntimeError> {
        let _ = (uid, container, grace);
        Ok(())
    }

    /// Runs `command` in the pod's running container `container` and waits
    /// up to `timeout` (exec probes, preStop hooks). Runtimes that run no
    /// processes refuse.
    async fn exec_sync(
        &self,
        uid: &str,
        container: &str,
        command: &[String],
        timeout: Duration,
    ) -> Result<ExecOutput, RuntimeError> {
        let _ = (uid, command, timeout);
        Err(RuntimeError::Backend(format!(
            "container {container:?}: this runtime cannot run commands in containers"
        )))
    }

    /// A URL of the runtime's streaming server for `request` (CRI's Exec,
    /// Attach and PortForward), which the agent relays the client's
    /// upgraded connection to.
    async fn streaming_url(&self, request: &StreamRequest) -> Result<String, RuntimeError> {
        let _ = request;
        Err(RuntimeError::Backend(
            "this runtime runs no processes to exec into, attach to or forward ports of".into(),
        ))
    }

    /// The log file of the pod's container `container`: of its current (or
    /// latest) run, or with `previous` of the run before it.
    async fn container_log(
        &self,
        uid: &str,
        container: &str,
        previous: bool,
    ) -> Result<Option<std::path::PathBuf>, RuntimeError> {
        let _ = (uid, container, previous);
        Ok(None)
    }

    /// What happened to pod `uid` since the last call (pulls, container
    /// starts, back-off), for the agent to record as Events.
    fn drain_events(&self, uid: &str) -> Vec<RuntimeEvent> {
        let _ = uid;
        Vec::new()
    }

    /// Whether probes and hooks reach real processes and addresses; a
    /// simulated runtime's pods pass every probe without being probed.
    fn runs_processes(&self) -> bool {
        false
    }

    /// How often a running pod should be synced again to notice containers
    /// that exited (kubelet relists every second; a simulated pod never
    /// changes on its own).
    fn poll_interval(&self) -> Option<Duration> {
        None
    }

    /// When pod `uid` changes on its own next (a simulated container set to
    /// exit), so the agent syncs it again then rather than at the next resync.
    fn next_change(&self, uid: &str) -> Option<Duration> {
        let _ = uid;
        None
    }

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

    /// CPU and memory of every running container, by pod (kubelet's stats
    /// provider). Runtimes that run no processes report their running
    /// containers with zero usage, so their nodes still answer.
    async fn usage(&self) -> Result<Vec<crate::stats::PodUsage>, RuntimeError> {
        Ok(self
            .list_pods()
            .await?
            .into_iter()
            .filter(|pod| pod.phase == SandboxPhase::Running)
            .map(|pod| crate::stats::PodUsage {
                containers: pod
                    .containers
                    .iter()
                    .filter_map(|c| match c.status {
                        ContainerStatus::Running { started_at } => {
                            Some(crate::stats::ContainerUsage {
                                name: c.name.clone(),
                                started_at,
                                usage: crate::stats::Usage::default(),
                            })
                        }
                        _ => None,
                    })
                    .collect(),
                uid: pod.uid,
                namespace: pod.namespace,
                name: pod.name,
                started_at: pod.started_at,
            })
            .collect())
    }
}
