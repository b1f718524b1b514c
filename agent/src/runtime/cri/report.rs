//! Where a pod stands, from what containerd has: each container's latest
//! run (running, exited, or waiting with the reason kubelet would give),
//! its restart count and its previous exit, in the pod spec's order.

use jiff::Timestamp;
use k8s_cri::v1 as cri;

use super::observe::{self, Observed, Run, CONTAINER_RUNNING, SANDBOX_READY};
use super::CriRuntime;
use crate::lock;
use crate::runtime::{
    ContainerConfig, ContainerState, ContainerStatus, PodSandboxConfig, PodState, RuntimeError,
    SandboxPhase,
};

impl CriRuntime {
    /// The state of `pod` from what containerd has, in spec order.
    pub(super) async fn pod_state_of(
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
    use crate::runtime::cri::observe::CONTAINER_EXITED;
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
}
