//! The CRI runtime: pods as real containers through containerd's CRI API
//! (sandboxes with CNI networking, image pulls, containers), the path
//! kubelet takes. The agent may start its own containerd ([`containerd`])
//! or use one already running. Containers survive the agent: sandboxes and
//! containers carry the pod's UID as a label and are found again on restart.

pub mod backoff;
pub mod cni;
pub mod connect;
pub mod containerd;
mod images;
pub mod observe;
pub mod pause;
mod report;
mod sync;
pub mod translate;
mod usage;
mod volumes;

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use k8s_cri::v1 as cri;
use k8s_cri::v1::image_service_client::ImageServiceClient;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use tonic::transport::Channel;

use self::backoff::Backoff;
use self::containerd::{ContainerdConfig, Layout, ManagedContainerd};
use self::observe::Run;
use super::{
    ExecOutput, PodSandboxConfig, PodState, Runtime, RuntimeError, RuntimeEvent, StreamRequest,
};
use crate::lock;

/// How often pods are synced again to notice exited containers (kubelet's
/// relist period).
const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// Where the agent's containerd is.
#[derive(Debug, Clone)]
pub enum Containerd {
    /// Start (and stop) a containerd of the agent's own under the data directory.
    Managed(ContainerdConfig),
    /// Use the one listening on this socket.
    Socket(PathBuf),
}

/// What remembers between syncs: back-off, why containers wait, and the
/// immutable facts of container runs and sandboxes.
#[derive(Default)]
struct Memo {
    /// Restart back-off per (pod UID, container name).
    restarts: Backoff<(String, String)>,
    /// Pull back-off per image.
    pulls: Backoff<String>,
    /// When each image's last pull failed.
    pull_failed_at: HashMap<String, std::time::Instant>,
    /// Why a container is waiting, per (pod UID, container name).
    waiting: HashMap<(String, String), (String, String)>,
    /// Container runs by CRI ID, refreshed while they run.
    runs: HashMap<String, Run>,
    /// Pod IP per sandbox ID.
    sandbox_ips: HashMap<String, Option<IpAddr>>,
    /// Events per pod UID, until the agent drains them.
    events: HashMap<String, Vec<RuntimeEvent>>,
}

/// Pods on containerd through CRI.
pub struct CriRuntime {
    runtime: RuntimeServiceClient<Channel>,
    images: ImageServiceClient<Channel>,
    data_dir: PathBuf,
    conf_dir: PathBuf,
    ipam_dir: PathBuf,
    bridge: String,
    /// The MTU of the pods' interfaces (the overlay's, in VXLAN mode).
    pod_mtu: Option<u32>,
    version: String,
    id_prefix: String,
    managed: Option<ManagedContainerd>,
    pod_cidr: Mutex<Option<String>>,
    memo: Mutex<Memo>,
}

fn cri_error(call: &str) -> impl FnOnce(tonic::Status) -> RuntimeError + '_ {
    move |status| RuntimeError::Backend(format!("CRI {call}: {}", status.message()))
}

impl CriRuntime {
    /// A runtime for node `node` keeping its files under `data_dir`, on the
    /// given containerd (started here when managed).
    pub async fn start(
        node: &str,
        data_dir: &Path,
        containerd: Containerd,
    ) -> Result<Self, RuntimeError> {
        let io = |e: std::io::Error| {
            RuntimeError::Backend(format!("creating {}: {e}", data_dir.display()))
        };
        std::fs::create_dir_all(data_dir).map_err(io)?;
        let data_dir = std::fs::canonicalize(data_dir).map_err(io)?;
        let layout = Layout::new(&data_dir);
        let (socket, managed, local_pause) = match containerd {
            Containerd::Managed(config) => {
                let managed = ManagedContainerd::start(layout.clone(), &config).await?;
                let local = config.pause_image == pause::LOCAL_PAUSE_IMAGE;
                (managed.socket(), Some(managed), local)
            }
            Containerd::Socket(socket) => (socket, None, false),
        };
        let channel = connect::channel(&socket).await?;
        if local_pause {
            let present = ImageServiceClient::new(channel.clone())
                .image_status(cri::ImageStatusRequest {
                    image: Some(cri::ImageSpec {
                        image: pause::LOCAL_PAUSE_IMAGE.to_owned(),
                        ..cri::ImageSpec::default()
                    }),
                    verbose: false,
                })
                .await
                .map_err(cri_error("ImageStatus"))?
                .into_inner()
                .image
                .is_some();
            if !present {
                pause::import(&socket, &layout.dir).await?;
            }
        }
        let mut runtime = RuntimeServiceClient::new(channel.clone());
        let version = runtime
            .version(cri::VersionRequest::default())
            .await
            .map_err(cri_error("Version"))?
            .into_inner();
        Ok(Self {
            runtime,
            images: ImageServiceClient::new(channel),
            conf_dir: layout.cni_conf_dir(),
            ipam_dir: layout.ipam_dir(),
            data_dir,
            bridge: cni::bridge_name(node),
            pod_mtu: None,
            version: format!("{}://{}", version.runtime_name, version.runtime_version),
            id_prefix: format!("{}://", version.runtime_name),
            managed,
            pod_cidr: Mutex::new(None),
            memo: Mutex::new(Memo::default()),
        })
    }

    /// Gives pods interfaces of `mtu` bytes (what the pod network can
    /// carry: less than the node's own under VXLAN).
    pub fn with_pod_mtu(mut self, mtu: Option<u32>) -> Self {
        self.pod_mtu = mtu;
        self
    }

    /// Stops the managed containerd, if this runtime started one; the
    /// containers keep running.
    pub async fn shutdown(&self) {
        if let Some(managed) = &self.managed {
            managed.stop().await;
        }
    }

    /// The prefix of containerIDs in pod statuses (`containerd://`).
    fn id_prefix(&self) -> &str {
        &self.id_prefix
    }

    /// The data directory (logs live under it).
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The sandboxes of pod `uid`, newest first.
    async fn sandboxes(&self, uid: &str) -> Result<Vec<cri::PodSandbox>, RuntimeError> {
        let filter = cri::PodSandboxFilter {
            label_selector: HashMap::from([(translate::POD_UID.to_owned(), uid.to_owned())]),
            ..cri::PodSandboxFilter::default()
        };
        let mut list = self
            .runtime
            .clone()
            .list_pod_sandbox(cri::ListPodSandboxRequest {
                filter: Some(filter),
            })
            .await
            .map_err(cri_error("ListPodSandbox"))?
            .into_inner()
            .items;
        list.sort_by_key(|sandbox| std::cmp::Reverse(sandbox.created_at));
        Ok(list)
    }

    async fn containers_of(&self, sandbox_id: &str) -> Result<Vec<cri::Container>, RuntimeError> {
        let filter = cri::ContainerFilter {
            pod_sandbox_id: sandbox_id.to_owned(),
            ..cri::ContainerFilter::default()
        };
        Ok(self
            .runtime
            .clone()
            .list_containers(cri::ListContainersRequest {
                filter: Some(filter),
            })
            .await
            .map_err(cri_error("ListContainers"))?
            .into_inner()
            .containers)
    }

    /// The runs of `containers`, asking containerd only about those whose
    /// state changed since last time.
    async fn runs(
        &self,
        containers: &[cri::Container],
    ) -> Result<HashMap<String, Run>, RuntimeError> {
        let mut runs = HashMap::with_capacity(containers.len());
        for container in containers {
            let known = lock(&self.memo).runs.get(&container.id).cloned();
            let run = match known {
                Some(run) if run.state == container.state => run,
                _ => {
                    let status = self
                        .runtime
                        .clone()
                        .container_status(cri::ContainerStatusRequest {
                            container_id: container.id.clone(),
                            verbose: false,
                        })
                        .await
                        .map_err(cri_error("ContainerStatus"))?
                        .into_inner()
                        .status
                        .unwrap_or_default();
                    let run = observe::run_from_status(&status, self.id_prefix());
                    lock(&self.memo)
                        .runs
                        .insert(container.id.clone(), run.clone());
                    run
                }
            };
            runs.insert(container.id.clone(), run);
        }
        Ok(runs)
    }

    async fn sandbox_ip(&self, sandbox_id: &str) -> Result<Option<IpAddr>, RuntimeError> {
        if let Some(ip) = lock(&self.memo).sandbox_ips.get(sandbox_id) {
            return Ok(*ip);
        }
        let status = self
            .runtime
            .clone()
            .pod_sandbox_status(cri::PodSandboxStatusRequest {
                pod_sandbox_id: sandbox_id.to_owned(),
                verbose: false,
            })
            .await
            .map_err(cri_error("PodSandboxStatus"))?
            .into_inner()
            .status
            .unwrap_or_default();
        let ip = observe::sandbox_ip(&status);
        lock(&self.memo)
            .sandbox_ips
            .insert(sandbox_id.to_owned(), ip);
        Ok(ip)
    }

    async fn stop_container(&self, id: &str, grace: Duration) -> Result<(), RuntimeError> {
        // CRI takes whole seconds; round up so no grace is cut short.
        let seconds = grace.as_secs() + u64::from(grace.subsec_nanos() > 0);
        let timeout = i64::try_from(seconds).unwrap_or(i64::MAX);
        match self
            .runtime
            .clone()
            .stop_container(cri::StopContainerRequest {
                container_id: id.to_owned(),
                timeout,
            })
            .await
        {
            Ok(_) => Ok(()),
            Err(status) if status.code() == tonic::Code::NotFound => Ok(()),
            Err(status) => Err(cri_error("StopContainer")(status)),
        }
    }

    /// The CRI ID of the running container `container` of pod `uid`, or
    /// why there is none to stream from.
    async fn running_id(&self, uid: &str, container: &str) -> Result<String, RuntimeError> {
        self.running_container(uid, container)
            .await?
            .ok_or_else(|| RuntimeError::Backend(format!("container {container:?} is not running")))
    }

    /// The CRI ID of the running container named `container` in pod `uid`.
    async fn running_container(
        &self,
        uid: &str,
        container: &str,
    ) -> Result<Option<String>, RuntimeError> {
        let Some(sandbox) = self.sandboxes(uid).await?.into_iter().next() else {
            return Ok(None);
        };
        Ok(self
            .containers_of(&sandbox.id)
            .await?
            .into_iter()
            .find(|c| {
                c.state == observe::CONTAINER_RUNNING
                    && c.labels
                        .get(translate::CONTAINER_NAME)
                        .is_some_and(|n| n == container)
            })
            .map(|c| c.id))
    }

    fn forget_pod(&self, uid: &str, sandbox_ids: &[String], container_ids: &[String]) {
        let mut memo = lock(&self.memo);
        memo.restarts.retain(|(pod, _)| pod != uid);
        memo.waiting.retain(|(pod, _), _| pod != uid);
        memo.events.remove(uid);
        for id in container_ids {
            memo.runs.remove(id);
        }
        for id in sandbox_ids {
            memo.sandbox_ips.remove(id);
        }
    }
}

#[async_trait]
impl Runtime for CriRuntime {
    fn version(&self) -> String {
        self.version.clone()
    }

    async fn update_pod_cidr(&self, cidr: &str) -> Result<(), RuntimeError> {
        let network = cni::Network {
            bridge: &self.bridge,
            pod_cidr: cidr,
            mtu: self.pod_mtu,
            ipam_dir: &self.ipam_dir,
        };
        if cni::write(&self.conf_dir, &network)? {
            tracing::info!(%cidr, bridge = %self.bridge, "pod network configured");
        }
        *lock(&self.pod_cidr) = Some(cidr.to_owned());
        Ok(())
    }

    async fn sync_pod(&self, pod: &PodSandboxConfig) -> Result<PodState, RuntimeError> {
        self.sync(pod).await
    }

    async fn kill_container(
        &self,
        uid: &str,
        container: &str,
        grace: Duration,
    ) -> Result<(), RuntimeError> {
        match self.running_container(uid, container).await? {
            Some(id) => self.stop_container(&id, grace).await,
            None => Ok(()),
        }
    }

    fn poll_interval(&self) -> Option<Duration> {
        Some(POLL_INTERVAL)
    }

    fn runs_processes(&self) -> bool {
        true
    }

    fn drain_events(&self, uid: &str) -> Vec<RuntimeEvent> {
        lock(&self.memo).events.remove(uid).unwrap_or_default()
    }

    async fn streaming_url(&self, request: &StreamRequest) -> Result<String, RuntimeError> {
        let mut client = self.runtime.clone();
        match request {
            StreamRequest::Exec {
                uid,
                container,
                command,
                tty,
                stdin,
                stdout,
                stderr,
            } => {
                let id = self.running_id(uid, container).await?;
                Ok(client
                    .exec(cri::ExecRequest {
                        container_id: id,
                        cmd: command.clone(),
                        tty: *tty,
                        stdin: *stdin,
                        stdout: *stdout,
                        // With a terminal, stderr is part of stdout.
                        stderr: *stderr && !*tty,
                    })
                    .await
                    .map_err(cri_error("Exec"))?
                    .into_inner()
                    .url)
            }
            StreamRequest::Attach {
                uid,
                container,
                tty,
                stdin,
                stdout,
                stderr,
            } => {
                let id = self.running_id(uid, container).await?;
                Ok(client
                    .attach(cri::AttachRequest {
                        container_id: id,
                        tty: *tty,
                        stdin: *stdin,
                        stdout: *stdout,
                        stderr: *stderr && !*tty,
                    })
                    .await
                    .map_err(cri_error("Attach"))?
                    .into_inner()
                    .url)
            }
            StreamRequest::PortForward { uid, ports } => {
                let sandbox = self
                    .sandboxes(uid)
                    .await?
                    .into_iter()
                    .find(|s| s.state == observe::SANDBOX_READY)
                    .ok_or_else(|| {
                        RuntimeError::Backend("the pod's sandbox is not running".into())
                    })?;
                Ok(client
                    .port_forward(cri::PortForwardRequest {
                        pod_sandbox_id: sandbox.id,
                        port: ports.iter().map(|p| i32::from(*p)).collect(),
                    })
                    .await
                    .map_err(cri_error("PortForward"))?
                    .into_inner()
                    .url)
            }
        }
    }

    async fn container_log(
        &self,
        uid: &str,
        container: &str,
        previous: bool,
    ) -> Result<Option<PathBuf>, RuntimeError> {
        let Some(sandbox) = self.sandboxes(uid).await?.into_iter().next() else {
            return Ok(None);
        };
        let containers = self.containers_of(&sandbox.id).await?;
        let runs = self.runs(&containers).await?;
        let observed = observe::group(&containers, &runs);
        // Regular containers first; an init container's logs when no regular one has the name.
        let list = match observed.runs(false, container) {
            [] => observed.runs(true, container),
            list => list,
        };
        let Some(run) = list.get(usize::from(previous)) else {
            return Ok(None);
        };
        let Some(meta) = sandbox.metadata.as_ref() else {
            return Ok(None);
        };
        let pod = PodSandboxConfig {
            uid: uid.to_owned(),
            namespace: meta.namespace.clone(),
            name: meta.name.clone(),
            ..PodSandboxConfig::default()
        };
        Ok(Some(
            translate::log_dir(&self.data_dir, &pod)
                .join(translate::log_path(container, run.attempt)),
        ))
    }

    async fn exec_sync(
        &self,
        uid: &str,
        container: &str,
        command: &[String],
        timeout: Duration,
    ) -> Result<ExecOutput, RuntimeError> {
        let id = self.running_id(uid, container).await?;
        let reply = self
            .runtime
            .clone()
            .exec_sync(cri::ExecSyncRequest {
                container_id: id,
                cmd: command.to_vec(),
                timeout: i64::try_from(timeout.as_secs().max(1)).unwrap_or(i64::MAX),
            })
            .await
            .map_err(cri_error("ExecSync"))?
            .into_inner();
        Ok(ExecOutput {
            exit_code: reply.exit_code,
            stdout: reply.stdout,
            stderr: reply.stderr,
        })
    }

    async fn stop_pod(&self, uid: &str, grace: Duration) -> Result<(), RuntimeError> {
        for sandbox in self.sandboxes(uid).await? {
            let containers = self.containers_of(&sandbox.id).await?;
            let stops = containers
                .iter()
                .filter(|c| {
                    c.state == observe::CONTAINER_RUNNING || c.state == observe::CONTAINER_CREATED
                })
                .map(|c| self.stop_container(&c.id, grace));
            for result in futures::future::join_all(stops).await {
                result?;
            }
            if sandbox.state == observe::SANDBOX_READY {
                self.runtime
                    .clone()
                    .stop_pod_sandbox(cri::StopPodSandboxRequest {
                        pod_sandbox_id: sandbox.id.clone(),
                    })
                    .await
                    .map_err(cri_error("StopPodSandbox"))?;
            }
        }
        Ok(())
    }

    async fn remove_pod(&self, uid: &str) -> Result<(), RuntimeError> {
        let sandboxes = self.sandboxes(uid).await?;
        let mut container_ids = Vec::new();
        let mut names = None;
        for sandbox in &sandboxes {
            container_ids.extend(
                self.containers_of(&sandbox.id)
                    .await?
                    .into_iter()
                    .map(|c| c.id),
            );
            if let Some(meta) = &sandbox.metadata {
                names = Some((meta.namespace.clone(), meta.name.clone()));
            }
            // Removing a sandbox stops it (and tears down its network) first if needed.
            self.runtime
                .clone()
                .remove_pod_sandbox(cri::RemovePodSandboxRequest {
                    pod_sandbox_id: sandbox.id.clone(),
                })
                .await
                .map_err(cri_error("RemovePodSandbox"))?;
        }
        volumes::remove_pod_files(&self.data_dir, uid, names)?;
        let sandbox_ids: Vec<String> = sandboxes.into_iter().map(|s| s.id).collect();
        self.forget_pod(uid, &sandbox_ids, &container_ids);
        Ok(())
    }

    async fn pod_state(&self, uid: &str) -> Result<Option<PodState>, RuntimeError> {
        let Some(sandbox) = self.sandboxes(uid).await?.into_iter().next() else {
            return Ok(None);
        };
        Ok(Some(self.observed_state(&sandbox).await?))
    }

    async fn usage(&self) -> Result<Vec<crate::stats::PodUsage>, RuntimeError> {
        self.container_usage().await
    }

    async fn list_pods(&self) -> Result<Vec<PodState>, RuntimeError> {
        let all = self
            .runtime
            .clone()
            .list_pod_sandbox(cri::ListPodSandboxRequest { filter: None })
            .await
            .map_err(cri_error("ListPodSandbox"))?
            .into_inner()
            .items;
        let mut newest: HashMap<String, cri::PodSandbox> = HashMap::new();
        for sandbox in all {
            let Some(uid) = sandbox.labels.get(translate::POD_UID).cloned() else {
                continue;
            };
            match newest.get(&uid) {
                Some(existing) if existing.created_at >= sandbox.created_at => {}
                _ => {
                    newest.insert(uid, sandbox);
                }
            }
        }
        let mut pods = Vec::with_capacity(newest.len());
        for sandbox in newest.values() {
            pods.push(self.observed_state(sandbox).await?);
        }
        Ok(pods)
    }
}
