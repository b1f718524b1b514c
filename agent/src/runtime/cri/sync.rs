//! One sync of one pod, kubelet's `SyncPod` over CRI: make sure the sandbox
//! runs (a new one, and fresh containers, when it died), run init containers
//! one at a time in order, start the containers, restart exited ones as the
//! restart policy says with back-off, and pull images as their pull policy
//! says. Then report where every container stands.

use std::time::{Duration, Instant, SystemTime};

use jiff::Timestamp;
use k8s_cri::v1 as cri;

use super::observe::{self, Observed, Run, CONTAINER_EXITED, SANDBOX_READY};
use super::{cri_error, translate, volumes, CriRuntime};
use crate::lock;
use crate::runtime::{ContainerConfig, PodSandboxConfig, PodState, RuntimeError, RuntimeEvent};

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
        let created = self
            .runtime
            .clone()
            .run_pod_sandbox(cri::RunPodSandboxRequest {
                config: Some(config.clone()),
                runtime_handler: String::new(),
            })
            .await;
        let id = match created {
            Ok(reply) => reply.into_inner().pod_sandbox_id,
            Err(status) => {
                // kubelet's words, with the runtime's error as Go's gRPC prints it.
                self.pod_event(
                    pod,
                    "FailedCreatePodSandBox",
                    format!(
                        "Failed to create pod sandbox: rpc error: code = {:?} desc = {}",
                        status.code(),
                        status.message()
                    ),
                );
                return Err(cri_error("RunPodSandbox")(status));
            }
        };
        Ok(Sandbox { id, config })
    }

    /// Queues a Warning Event about `pod` itself (no container) for the agent to record.
    fn pod_event(&self, pod: &PodSandboxConfig, reason: &str, message: String) {
        self.queue_event(
            pod,
            RuntimeEvent {
                container: None,
                init: false,
                warning: true,
                reason: reason.to_owned(),
                message,
            },
        );
    }

    /// Queues an Event about `container` of `pod` for the agent to record.
    pub(super) fn event(
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
        self.queue_event(pod, event);
    }

    fn queue_event(&self, pod: &PodSandboxConfig, event: RuntimeEvent) {
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_in_go() {
        assert_eq!(go_duration(Duration::from_secs(10)), "10s");
        assert_eq!(go_duration(Duration::from_secs(80)), "1m20s");
        assert_eq!(go_duration(Duration::from_secs(300)), "5m0s");
    }
}
