//! One sync of one pod, kubelet's `SyncPod` over CRI: make sure the sandbox
//! runs (a new one, and fresh containers, when it died), run init containers
//! one at a time in order, start the containers, restart exited ones as the
//! restart policy says with back-off, and pull images as their pull policy
//! says. Then report where every container stands.

use std::time::{Duration, Instant, SystemTime};

use jiff::Timestamp;
use k8s_cri::v1 as cri;

use super::observe::{self, Observed, Run, CONTAINER_EXITED, CONTAINER_RUNNING, SANDBOX_READY};
use super::{cri_error, translate, volumes, CriRuntime};
use crate::lock;
use crate::runtime::{
    ContainerConfig, ContainerState, ContainerStatus, PodSandboxConfig, PodState, PullPolicy,
    RuntimeError, RuntimeEvent, SandboxPhase,
};

/// Where the sandbox of a pod is.
struct Sandbox {
    id: String,
    config: cri::PodSandboxConfig,
}

/// Go's duration text (`10s`, `1m20s`, `5m0s`), as kubelet's back-off messages show it.
fn go_duration(duration: Duration) -> String {
    let secs = duration.as_secs();
    if secs < 60 {
        format!("{secs}s")
    } else {
        format!("{}m{}s", secs / 60, secs % 60)
    }
}

/// How long ago `at` was, by the wall clock, as an `Instant` for back-off.
fn instant_of(at: Timestamp) -> Instant {
    let now = Instant::now();
    let ago = SystemTime::now()
        .duration_since(SystemTime::from(at))
        .unwrap_or_default();
    now.checked_sub(ago).unwrap_or(now)
}

impl CriRuntime {
    pub(super) async fn sync(&self, pod: &PodSandboxConfig) -> Result<PodState, RuntimeError> {
        let sandboxes = self.sandboxes(&pod.uid).await?;
        let sandbox = match sandboxes.iter().find(|s| s.state == SANDBOX_READY) {
            Some(ready) => Sandbox {
                id: ready.id.clone(),
                config: translate::sandbox_config(
                    &self.data_dir,
                    pod,
                    ready.metadata.as_ref().map_or(0, |m| m.attempt),
                ),
            },
            None => self.new_sandbox(pod, &sandboxes).await?,
        };
        let containers = self.containers_of(&sandbox.id).await?;
        let observed = observe::group(&containers, &self.runs(&containers).await?);
        if self.start_what_is_due(pod, &sandbox, &observed).await? {
            let containers = self.containers_of(&sandbox.id).await?;
            let observed = observe::group(&containers, &self.runs(&containers).await?);
            return self.pod_state_of(pod, &sandbox.id, &observed).await;
        }
        self.pod_state_of(pod, &sandbox.id, &observed).await
    }

    /// Starts a sandbox for `pod`, after stopping and removing the dead ones
    /// it had (their containers go with them, as in kubelet).
    async fn new_sandbox(
        &self,
        pod: &PodSandboxConfig,
        dead: &[cri::PodSandbox],
    ) -> Result<Sandbox, RuntimeError> {
        if !pod.host_network && lock(&self.pod_cidr).is_none() {
            return Err(RuntimeError::Backend(
                "the node has no podCIDR yet: pods wait until node IPAM assigns one".to_owned(),
            ));
        }
        let attempt = dead
            .iter()
            .filter_map(|s| s.metadata.as_ref().map(|m| m.attempt + 1))
            .max()
            .unwrap_or(0);
        for sandbox in dead {
            tracing::info!(pod = %format!("{}/{}", pod.namespace, pod.name), sandbox = %sandbox.id, "sandbox is not ready; replacing it");
            self.runtime
                .clone()
                .remove_pod_sandbox(cri::RemovePodSandboxRequest {
                    pod_sandbox_id: sandbox.id.clone(),
                })
                .await
                .map_err(cri_error("RemovePodSandbox"))?;
        }
        volumes::prepare(&self.data_dir, pod)?;
        let config = translate::sandbox_config(&self.data_dir, pod, attempt);
        let id = self
            .runtime
            .clone()
            .run_pod_sandbox(cri::RunPodSandboxRequest {
                config: Some(config.clone()),
                runtime_handler: String::new(),
            })
            .await
            .map_err(cri_error("RunPodSandbox"))?
            .into_inner()
            .pod_sandbox_id;
        Ok(Sandbox { id, config })
    }

    /// Queues an Event about `container` of `pod` for the agent to record.
    fn event(
        &self,
        pod: &PodSandboxConfig,
        container: &ContainerConfig,
        warning: bool,
        reason: &str,
        message: String,
    ) {
        let init = pod.init_containers.iter().any(|c| c.name == container.name);
        let event = RuntimeEvent {
            container: Some(container.name.clone()),
            init,
            warning,
            reason: reason.to_owned(),
            message,
        };
        let mut memo = lock(&self.memo);
        let queue = memo.events.entry(pod.uid.clone()).or_default();
        // A pod that keeps failing must not grow the queue without bound.
        if queue.len() < 64 {
            queue.push(event);
        }
    }

    /// A container that could not be created or started: a `Failed` event,
    /// and it waits with `reason` until the next attempt.
    fn failed(
        &self,
        pod: &PodSandboxConfig,
        container: &ContainerConfig,
        reason: &str,
        message: &str,
    ) {
        self.event(pod, container, true, "Failed", format!("Error: {message}"));
        self.set_waiting(pod, &container.name, reason, message.to_owned());
    }

    fn set_waiting(&self, pod: &PodSandboxConfig, container: &str, reason: &str, message: String) {
        lock(&self.memo).waiting.insert(
            (pod.uid.clone(), container.to_owned()),
            (reason.to_owned(), message),
        );
    }

    fn clear_waiting(&self, pod: &PodSandboxConfig, container: &str) {
        lock(&self.memo)
            .waiting
            .remove(&(pod.uid.clone(), container.to_owned()));
    }

    /// Starts the next init container or the containers that should run;
    /// whether anything was started.
    async fn start_what_is_due(
        &self,
        pod: &PodSandboxConfig,
        sandbox: &Sandbox,
        observed: &Observed,
    ) -> Result<bool, RuntimeError> {
        for init in &pod.init_containers {
            match observed.latest(true, &init.name) {
                None => return self.start_container(pod, sandbox, init, true, 0).await,
                Some(run) if run.state == CONTAINER_EXITED => {
                    let exit_code = run.termination.as_ref().map_or(0, |t| t.exit_code);
                    if exit_code == 0 {
                        continue;
                    }
                    if !pod.restart_policy.restarts(exit_code) {
                        return Ok(false);
                    }
                    return self.restart(pod, sandbox, init, true, run, observed).await;
                }
                // Running, or created and about to run: wait for it.
                Some(_) => return Ok(false),
            }
        }
        let mut started = false;
        for container in &pod.containers {
            started |= match observed.latest(false, &container.name) {
                None => {
                    self.start_container(pod, sandbox, container, false, 0)
                        .await?
                }
                Some(run) if run.state == CONTAINER_EXITED => {
                    let exit_code = run.termination.as_ref().map_or(0, |t| t.exit_code);
                    if pod.restart_policy.restarts(exit_code) {
                        self.restart(pod, sandbox, container, false, run, observed)
                            .await?
                    } else {
                        false
                    }
                }
                Some(_) => false,
            };
        }
        Ok(started)
    }

    /// Starts run `run.attempt + 1` of an exited container unless it is in
    /// back-off, in which case it waits in `CrashLoopBackOff`.
    async fn restart(
        &self,
        pod: &PodSandboxConfig,
        sandbox: &Sandbox,
        container: &ContainerConfig,
        init: bool,
        run: &Run,
        observed: &Observed,
    ) -> Result<bool, RuntimeError> {
        let key = (pod.uid.clone(), container.name.clone());
        let ended = run
            .termination
            .as_ref()
            .map_or_else(Instant::now, |t| instant_of(t.finished_at));
        let now = Instant::now();
        let waiting = lock(&self.memo).restarts.waiting(&key, ended, now);
        if let Some(delay) = waiting {
            self.event(
                pod,
                container,
                true,
                "BackOff",
                format!(
                    "Back-off restarting failed container {} in pod {}_{}({})",
                    container.name, pod.name, pod.namespace, pod.uid
                ),
            );
            self.set_waiting(
                pod,
                &container.name,
                "CrashLoopBackOff",
                format!(
                    "back-off {} restarting failed container={} pod={}_{}({})",
                    go_duration(delay),
                    container.name,
                    pod.name,
                    pod.namespace,
                    pod.uid
                ),
            );
            return Ok(false);
        }
        lock(&self.memo).restarts.next(&key, now);
        let started = self
            .start_container(pod, sandbox, container, init, run.attempt + 1)
            .await?;
        if started {
            // Keep the run before this one (for `logs --previous` and
            // lastState); older runs go, as kubelet's garbage collection does.
            for old in observed.runs(init, &container.name).iter().skip(1) {
                self.remove_container(&old.id).await;
            }
        }
        Ok(started)
    }

    async fn remove_container(&self, id: &str) {
        let removed = self
            .runtime
            .clone()
            .remove_container(cri::RemoveContainerRequest {
                container_id: id.to_owned(),
            })
            .await;
        if let Err(status) = removed {
            tracing::debug!(container = id, error = %status.message(), "removing an old container run failed");
        }
        lock(&self.memo).runs.remove(id);
    }

    /// Makes sure `container`'s image is present as its pull policy wants;
    /// `Err` carries the waiting reason and message when it is not.
    async fn ensure_image(
        &self,
        pod: &PodSandboxConfig,
        container: &ContainerConfig,
    ) -> Result<(), (&'static str, String)> {
        let spec = cri::ImageSpec {
            image: container.image.clone(),
            ..cri::ImageSpec::default()
        };
        if container.pull_policy != PullPolicy::Always {
            let present = self
                .images
                .clone()
                .image_status(cri::ImageStatusRequest {
                    image: Some(spec.clone()),
                    verbose: false,
                })
                .await
                .map_err(|s| ("ErrImagePull", s.message().to_owned()))?
                .into_inner()
                .image
                .is_some();
            if present {
                self.event(
                    pod,
                    container,
                    false,
                    "Pulled",
                    format!(
                        "Container image \"{}\" already present on machine",
                        container.image
                    ),
                );
                return Ok(());
            }
            if container.pull_policy == PullPolicy::Never {
                return Err((
                    "ErrImageNeverPull",
                    format!(
                        "Container image \"{}\" is not present with pull policy of Never",
                        container.image
                    ),
                ));
            }
        }
        let key = container.image.clone();
        let now = Instant::now();
        let in_backoff = {
            let mut memo = lock(&self.memo);
            let failed_at = memo.pull_failed_at.get(&key).copied();
            failed_at.and_then(|at| memo.pulls.waiting(&key, at, now))
        };
        if in_backoff.is_some() {
            self.event(
                pod,
                container,
                false,
                "BackOff",
                format!("Back-off pulling image \"{}\"", container.image),
            );
            return Err((
                "ImagePullBackOff",
                format!("Back-off pulling image \"{}\"", container.image),
            ));
        }
        self.event(
            pod,
            container,
            false,
            "Pulling",
            format!("Pulling image \"{}\"", container.image),
        );
        let pull_started = Instant::now();
        let pulled = self
            .images
            .clone()
            .pull_image(cri::PullImageRequest {
                image: Some(spec),
                auth: pull_auth(pod, &container.image),
                sandbox_config: None,
            })
            .await;
        match &pulled {
            Ok(_) => self.event(
                pod,
                container,
                false,
                "Pulled",
                format!(
                    "Successfully pulled image \"{}\" in {:.3}s",
                    container.image,
                    pull_started.elapsed().as_secs_f64()
                ),
            ),
            Err(status) => self.event(
                pod,
                container,
                true,
                "Failed",
                format!(
                    "Failed to pull image \"{}\": {}",
                    container.image,
                    status.message()
                ),
            ),
        }
        let mut memo = lock(&self.memo);
        match pulled {
            Ok(_) => {
                memo.pulls.reset(&key);
                memo.pull_failed_at.remove(&key);
                Ok(())
            }
            Err(status) => {
                memo.pulls.next(&key, now);
                memo.pull_failed_at.insert(key, Instant::now());
                Err((
                    "ErrImagePull",
                    format!(
                        "failed to pull image \"{}\": {}",
                        container.image,
                        status.message()
                    ),
                ))
            }
        }
    }

    /// Pulls, creates and starts run `attempt` of `container`; whether it
    /// started (when not, the container waits with kubelet's reason).
    async fn start_container(
        &self,
        pod: &PodSandboxConfig,
        sandbox: &Sandbox,
        container: &ContainerConfig,
        init: bool,
        attempt: u32,
    ) -> Result<bool, RuntimeError> {
        if let Err((reason, message)) = self.ensure_image(pod, container).await {
            tracing::info!(pod = %format!("{}/{}", pod.namespace, pod.name), container = %container.name, reason, %message, "image not available");
            self.set_waiting(pod, &container.name, reason, message);
            return Ok(false);
        }
        let config = translate::container_config(&self.data_dir, pod, container, init, attempt);
        let created = self
            .runtime
            .clone()
            .create_container(cri::CreateContainerRequest {
                pod_sandbox_id: sandbox.id.clone(),
                config: Some(config),
                sandbox_config: Some(sandbox.config.clone()),
            })
            .await;
        let id = match created {
            Ok(reply) => reply.into_inner().container_id,
            Err(status) => {
                self.failed(pod, container, "CreateContainerError", status.message());
                return Ok(false);
            }
        };
        self.event(
            pod,
            container,
            false,
            "Created",
            format!("Created container {}", container.name),
        );
        let started = self
            .runtime
            .clone()
            .start_container(cri::StartContainerRequest {
                container_id: id.clone(),
            })
            .await;
        if let Err(status) = started {
            // The run exists and shows as exited; back-off applies to it.
            tracing::info!(pod = %format!("{}/{}", pod.namespace, pod.name), container = %container.name, error = %status.message(), "container failed to start");
            self.failed(pod, container, "RunContainerError", status.message());
            return Ok(true);
        }
        self.event(
            pod,
            container,
            false,
            "Started",
            format!("Started container {}", container.name),
        );
        self.clear_waiting(pod, &container.name);
        Ok(true)
    }

    /// The state of `pod` from what containerd has, in spec order.
    async fn pod_state_of(
        &self,
        pod: &PodSandboxConfig,
        sandbox_id: &str,
        observed: &Observed,
    ) -> Result<PodState, RuntimeError> {
        let ip = if pod.host_network {
            None
        } else {
            self.sandbox_ip(sandbox_id).await?
        };
        let init_done = pod.init_containers.iter().all(|c| {
            observed
                .latest(true, &c.name)
                .and_then(|r| r.termination.as_ref())
                .is_some_and(|t| t.exit_code == 0)
        });
        let memo = lock(&self.memo);
        let state_of = |container: &ContainerConfig, init: bool| {
            let runs = observed.runs(init, &container.name);
            let waiting = memo.waiting.get(&(pod.uid.clone(), container.name.clone()));
            let not_yet = if init || init_done {
                "ContainerCreating"
            } else {
                "PodInitializing"
            };
            container_state(container, runs, waiting, not_yet, self.id_prefix())
        };
        Ok(PodState {
            uid: pod.uid.clone(),
            namespace: pod.namespace.clone(),
            name: pod.name.clone(),
            phase: SandboxPhase::Running,
            ip,
            started_at: Timestamp::now(),
            init_containers: pod
                .init_containers
                .iter()
                .map(|c| state_of(c, true))
                .collect(),
            containers: pod.containers.iter().map(|c| state_of(c, false)).collect(),
        })
    }

    /// The state of the pod in `sandbox` without its spec (adoption and
    /// housekeeping): every container found, by name.
    pub(super) async fn observed_state(
        &self,
        sandbox: &cri::PodSandbox,
        _spec: Option<&PodSandboxConfig>,
    ) -> Result<PodState, RuntimeError> {
        let meta = sandbox.metadata.clone().unwrap_or_default();
        let containers = self.containers_of(&sandbox.id).await?;
        let observed = observe::group(&containers, &self.runs(&containers).await?);
        let states = |map: &std::collections::HashMap<String, Vec<Run>>| {
            let mut list: Vec<ContainerState> = map
                .iter()
                .map(|(name, runs)| {
                    let config = ContainerConfig {
                        name: name.clone(),
                        ..ContainerConfig::default()
                    };
                    container_state(&config, runs, None, "ContainerCreating", self.id_prefix())
                })
                .collect();
            list.sort_by(|a, b| a.name.cmp(&b.name));
            list
        };
        Ok(PodState {
            uid: meta.uid,
            namespace: meta.namespace,
            name: meta.name,
            phase: if sandbox.state == SANDBOX_READY {
                SandboxPhase::Running
            } else {
                SandboxPhase::Stopped
            },
            ip: None,
            started_at: observe::timestamp(sandbox.created_at).unwrap_or_else(Timestamp::now),
            init_containers: states(&observed.init),
            containers: states(&observed.regular),
        })
    }
}

/// The credentials of the pod's pull secrets for the registry `image` is on.
fn pull_auth(pod: &PodSandboxConfig, image: &str) -> Option<cri::AuthConfig> {
    let registry = crate::pods::spec::image_registry(image);
    pod.registry_auths
        .iter()
        .find(|a| a.server == registry)
        .map(|a| cri::AuthConfig {
            username: a.username.clone(),
            password: a.password.clone(),
            auth: a.auth.clone(),
            server_address: a.server.clone(),
            ..cri::AuthConfig::default()
        })
}

/// One container's state from its runs (latest first) and why it waits.
fn container_state(
    container: &ContainerConfig,
    runs: &[Run],
    waiting: Option<&(String, String)>,
    not_yet: &str,
    id_prefix: &str,
) -> ContainerState {
    let latest = runs.first();
    let previous = runs.get(1).and_then(|r| r.termination.clone());
    let wait = |fallback: &str| match waiting {
        Some((reason, message)) => ContainerStatus::Waiting {
            reason: reason.clone(),
            message: message.clone(),
        },
        None => ContainerStatus::Waiting {
            reason: fallback.to_owned(),
            message: String::new(),
        },
    };
    let (status, last_termination) = match latest {
        None => (wait(not_yet), None),
        Some(run) if run.state == CONTAINER_RUNNING => (
            ContainerStatus::Running {
                started_at: run.started_at.unwrap_or_else(Timestamp::now),
            },
            previous,
        ),
        Some(run) => match (&run.termination, waiting) {
            // Exited and waiting to run again: the exit becomes lastState.
            (Some(t), Some(_)) => (wait(not_yet), Some(t.clone())),
            (Some(t), None) => (ContainerStatus::Exited(t.clone()), previous),
            (None, _) => (wait(not_yet), previous),
        },
    };
    ContainerState {
        name: container.name.clone(),
        image: if container.image.is_empty() {
            String::new()
        } else {
            container.image.clone()
        },
        image_id: latest.map(|r| r.image_ref.clone()).unwrap_or_default(),
        container_id: latest
            .map(|r| format!("{id_prefix}{}", r.id))
            .unwrap_or_default(),
        status,
        restart_count: latest.map_or(0, |r| r.attempt),
        last_termination,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::Termination;

    fn run(id: &str, attempt: u32, exit: Option<i32>) -> Run {
        let at = Timestamp::from_second(1_700_000_000).unwrap();
        Run {
            id: id.into(),
            attempt,
            state: if exit.is_some() {
                CONTAINER_EXITED
            } else {
                CONTAINER_RUNNING
            },
            image_ref: "sha256:ab".into(),
            started_at: Some(at),
            termination: exit.map(|code| Termination {
                container_id: format!("containerd://{id}"),
                started_at: at,
                finished_at: at,
                exit_code: code,
                reason: "Error".into(),
                message: String::new(),
            }),
        }
    }

    fn config() -> ContainerConfig {
        ContainerConfig {
            name: "app".into(),
            image: "crash:1".into(),
            ..ContainerConfig::default()
        }
    }

    #[test]
    fn a_crash_looping_container_waits_with_its_last_exit() {
        let waiting = (
            "CrashLoopBackOff".to_owned(),
            "back-off 10s restarting failed container=app".to_owned(),
        );
        let runs = [run("c1", 1, Some(1)), run("c0", 0, Some(1))];
        let state = container_state(
            &config(),
            &runs,
            Some(&waiting),
            "ContainerCreating",
            "containerd://",
        );
        assert_eq!(state.restart_count, 1);
        assert!(
            matches!(&state.status, ContainerStatus::Waiting { reason, .. } if reason == "CrashLoopBackOff")
        );
        assert_eq!(
            state.last_termination.unwrap().container_id,
            "containerd://c1"
        );
        assert_eq!(state.container_id, "containerd://c1");
    }

    #[test]
    fn a_restarted_container_runs_with_the_previous_exit_as_last_state() {
        let runs = [run("c1", 1, None), run("c0", 0, Some(137))];
        let state = container_state(&config(), &runs, None, "ContainerCreating", "containerd://");
        assert_eq!(state.restart_count, 1);
        assert!(matches!(state.status, ContainerStatus::Running { .. }));
        assert_eq!(state.last_termination.unwrap().exit_code, 137);
    }

    #[test]
    fn a_container_not_created_yet_waits() {
        let state = container_state(&config(), &[], None, "PodInitializing", "containerd://");
        assert!(
            matches!(&state.status, ContainerStatus::Waiting { reason, .. } if reason == "PodInitializing")
        );
        assert_eq!(state.container_id, "");
        let pulling = ("ErrImagePull".to_owned(), "failed".to_owned());
        let state = container_state(
            &config(),
            &[],
            Some(&pulling),
            "ContainerCreating",
            "containerd://",
        );
        assert!(
            matches!(&state.status, ContainerStatus::Waiting { reason, .. } if reason == "ErrImagePull")
        );
    }

    #[test]
    fn durations_read_as_in_go() {
        assert_eq!(go_duration(Duration::from_secs(10)), "10s");
        assert_eq!(go_duration(Duration::from_secs(80)), "1m20s");
        assert_eq!(go_duration(Duration::from_secs(300)), "5m0s");
    }
}
