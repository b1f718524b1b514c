//! Pod ↔ runtime translation, pure: the sandbox a Pod asks for, and the
//! `status` a running pod reports (phase, IPs, conditions, container
//! statuses) in kubelet's shape. No I/O; the caller patches `pods/status`.

use std::net::IpAddr;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{
    ContainerState as ApiContainerState, ContainerStateRunning, ContainerStateTerminated,
    ContainerStatus as ApiContainerStatus, HostIP, Pod, PodCondition, PodIP, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::runtime::{
    ContainerConfig, ContainerState, ContainerStatus, PodSandboxConfig, PodState,
};
use crate::seconds;

/// The conditions a running, ready pod has, in kubelet's order.
const READY_CONDITIONS: &[&str] = &[
    "PodReadyToStartContainers",
    "Initialized",
    "Ready",
    "ContainersReady",
    "PodScheduled",
];

/// The sandbox the runtime should start for `pod`. The pod's current IP is
/// passed along so a pod started again after an agent restart keeps it.
pub fn sandbox_config(pod: &Pod) -> PodSandboxConfig {
    let containers = |list: Option<&Vec<k8s_openapi::api::core::v1::Container>>| {
        list.map(|list| {
            list.iter()
                .map(|c| ContainerConfig {
                    name: c.name.clone(),
                    image: c.image.clone().unwrap_or_default(),
                })
                .collect()
        })
        .unwrap_or_default()
    };
    let spec = pod.spec.as_ref();
    PodSandboxConfig {
        uid: pod.metadata.uid.clone().unwrap_or_default(),
        namespace: pod.metadata.namespace.clone().unwrap_or_default(),
        name: pod.metadata.name.clone().unwrap_or_default(),
        init_containers: containers(spec.and_then(|s| s.init_containers.as_ref())),
        containers: containers(spec.map(|s| &s.containers)),
        previous_ip: pod
            .status
            .as_ref()
            .and_then(|s| s.pod_ip.as_deref())
            .and_then(|ip| ip.parse().ok()),
    }
}

fn api_container_status(container: &ContainerState, init: bool) -> ApiContainerStatus {
    let (state, running) = match &container.status {
        ContainerStatus::Running { started_at } => (
            ApiContainerState {
                running: Some(ContainerStateRunning {
                    started_at: Some(Time(seconds(*started_at))),
                }),
                ..ApiContainerState::default()
            },
            true,
        ),
        ContainerStatus::Exited {
            started_at,
            finished_at,
            exit_code,
            reason,
        } => (
            ApiContainerState {
                terminated: Some(ContainerStateTerminated {
                    container_id: Some(container.container_id.clone()),
                    exit_code: *exit_code,
                    reason: Some(reason.clone()),
                    started_at: Some(Time(seconds(*started_at))),
                    finished_at: Some(Time(seconds(*finished_at))),
                    ..ContainerStateTerminated::default()
                }),
                ..ApiContainerState::default()
            },
            false,
        ),
    };
    ApiContainerStatus {
        name: container.name.clone(),
        image: container.image.clone(),
        image_id: container.image_id.clone(),
        container_id: Some(container.container_id.clone()),
        // A completed init container is ready (upstream reports it so); a
        // running container is ready because simulated pods have no probes.
        ready: running || init,
        started: Some(running),
        restart_count: 0,
        state: Some(state),
        ..ApiContainerStatus::default()
    }
}

/// The status of `pod` running as `state` on a node at `host_ip`. Times the
/// pod already reports (startTime, condition transitions) are kept, so the
/// same state always yields the same status.
pub fn running_status(pod: &Pod, state: &PodState, host_ip: IpAddr, now: Timestamp) -> PodStatus {
    let current = pod.status.as_ref();
    let now = seconds(now);
    let conditions = READY_CONDITIONS
        .iter()
        .map(|type_| {
            let previous = current
                .and_then(|s| s.conditions.as_ref())
                .and_then(|c| c.iter().find(|c| c.type_ == *type_))
                .filter(|c| c.status == "True");
            PodCondition {
                type_: (*type_).to_owned(),
                status: "True".into(),
                last_transition_time: Some(
                    previous
                        .and_then(|c| c.last_transition_time.clone())
                        .unwrap_or(Time(now)),
                ),
                ..PodCondition::default()
            }
        })
        .collect();
    let pod_ips = state.ip.map(|ip| vec![PodIP { ip: ip.to_string() }]);
    let init_statuses: Vec<_> = state
        .init_containers
        .iter()
        .map(|c| api_container_status(c, true))
        .collect();
    PodStatus {
        phase: Some("Running".into()),
        host_ip: Some(host_ip.to_string()),
        host_ips: Some(vec![HostIP {
            ip: host_ip.to_string(),
        }]),
        pod_ip: state.ip.map(|ip| ip.to_string()),
        pod_ips,
        start_time: Some(
            current
                .and_then(|s| s.start_time.clone())
                .unwrap_or(Time(seconds(state.started_at))),
        ),
        conditions: Some(conditions),
        container_statuses: Some(
            state
                .containers
                .iter()
                .map(|c| api_container_status(c, false))
                .collect(),
        ),
        init_container_statuses: (!init_statuses.is_empty()).then_some(init_statuses),
        ..PodStatus::default()
    }
}

/// The parts of a container status the agent owns, for comparison: name,
/// containerID, ready, started, running.
type ContainerKey<'a> = (&'a str, Option<&'a str>, bool, Option<bool>, bool);

fn container_key(status: &ApiContainerStatus) -> ContainerKey<'_> {
    let running = status.state.as_ref().is_some_and(|s| s.running.is_some());
    (
        status.name.as_str(),
        status.container_id.as_deref(),
        status.ready,
        status.started,
        running,
    )
}

fn container_keys(list: Option<&Vec<ApiContainerStatus>>) -> Vec<ContainerKey<'_>> {
    list.map(|l| l.iter().map(container_key).collect())
        .unwrap_or_default()
}

/// Whether `current` already says what `desired` says, so no patch is
/// needed. Heartbeat-like times are ignored: only facts are compared.
pub fn status_matches(current: Option<&PodStatus>, desired: &PodStatus) -> bool {
    let Some(current) = current else {
        return false;
    };
    let conditions = |s: &PodStatus| {
        let mut list: Vec<(String, String)> = s
            .conditions
            .iter()
            .flatten()
            .map(|c| (c.type_.clone(), c.status.clone()))
            .collect();
        list.sort();
        list
    };
    current.phase == desired.phase
        && current.pod_ip == desired.pod_ip
        && current.host_ip == desired.host_ip
        && current.start_time.is_some()
        && conditions(current) == conditions(desired)
        && container_keys(current.container_statuses.as_ref())
            == container_keys(desired.container_statuses.as_ref())
        && container_keys(current.init_container_statuses.as_ref())
            == container_keys(desired.init_container_statuses.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::SandboxPhase;

    fn pod() -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web", "namespace": "default", "uid": "u1"},
            "spec": {
                "nodeName": "n1",
                "initContainers": [{"name": "setup", "image": "busybox"}],
                "containers": [{"name": "app", "image": "nginx:1.27"}]
            },
            "status": {"phase": "Pending"}
        }))
        .unwrap()
    }

    fn state() -> PodState {
        let at = Timestamp::from_second(1_700_000_000).unwrap();
        PodState {
            uid: "u1".into(),
            namespace: "default".into(),
            name: "web".into(),
            phase: SandboxPhase::Running,
            ip: Some("10.42.0.2".parse().unwrap()),
            started_at: at,
            init_containers: vec![ContainerState {
                name: "setup".into(),
                image: "busybox".into(),
                image_id: "docker.io/library/busybox@sha256:ab".into(),
                container_id: "simulated://i1".into(),
                status: ContainerStatus::Exited {
                    started_at: at,
                    finished_at: at,
                    exit_code: 0,
                    reason: "Completed".into(),
                },
            }],
            containers: vec![ContainerState {
                name: "app".into(),
                image: "nginx:1.27".into(),
                image_id: "docker.io/library/nginx@sha256:cd".into(),
                container_id: "simulated://c1".into(),
                status: ContainerStatus::Running { started_at: at },
            }],
        }
    }

    #[test]
    fn sandbox_config_takes_containers_and_previous_ip() {
        let mut pod = pod();
        let config = sandbox_config(&pod);
        assert_eq!(config.uid, "u1");
        assert_eq!(config.containers[0].image, "nginx:1.27");
        assert_eq!(config.init_containers[0].name, "setup");
        assert_eq!(config.previous_ip, None);
        pod.status.as_mut().unwrap().pod_ip = Some("10.42.0.9".into());
        assert_eq!(
            sandbox_config(&pod).previous_ip,
            Some("10.42.0.9".parse().unwrap())
        );
    }

    #[test]
    fn a_running_pod_reports_ips_conditions_and_containers() {
        let status = running_status(
            &pod(),
            &state(),
            "127.1.0.1".parse().unwrap(),
            Timestamp::now(),
        );
        assert_eq!(status.phase.as_deref(), Some("Running"));
        assert_eq!(status.pod_ip.as_deref(), Some("10.42.0.2"));
        assert_eq!(status.pod_ips.as_ref().unwrap()[0].ip, "10.42.0.2");
        assert_eq!(status.host_ip.as_deref(), Some("127.1.0.1"));
        assert_eq!(
            status.start_time.as_ref().unwrap().0.as_second(),
            1_700_000_000
        );
        let conditions = status.conditions.as_ref().unwrap();
        for type_ in ["PodScheduled", "Initialized", "ContainersReady", "Ready"] {
            assert!(
                conditions
                    .iter()
                    .any(|c| c.type_ == type_ && c.status == "True"),
                "{type_}"
            );
        }
        let app = &status.container_statuses.as_ref().unwrap()[0];
        assert!(app.ready);
        assert_eq!(app.started, Some(true));
        assert_eq!(app.restart_count, 0);
        assert_eq!(app.container_id.as_deref(), Some("simulated://c1"));
        assert!(app.state.as_ref().unwrap().running.is_some());
        let setup = &status.init_container_statuses.as_ref().unwrap()[0];
        let terminated = setup.state.as_ref().unwrap().terminated.as_ref().unwrap();
        assert_eq!(terminated.reason.as_deref(), Some("Completed"));
    }

    #[test]
    fn a_reported_status_matches_until_the_runtime_changes() {
        let host = "127.1.0.1".parse().unwrap();
        let mut pod = pod();
        let desired = running_status(&pod, &state(), host, Timestamp::now());
        assert!(!status_matches(pod.status.as_ref(), &desired));
        // What the server stores goes through JSON; it must still match.
        let stored: PodStatus =
            serde_json::from_value(serde_json::to_value(&desired).unwrap()).unwrap();
        pod.status = Some(stored);
        let later = running_status(
            &pod,
            &state(),
            host,
            Timestamp::now() + jiff::SignedDuration::from_secs(90),
        );
        assert!(status_matches(pod.status.as_ref(), &later));
        assert_eq!(
            serde_json::to_value(&later).unwrap(),
            serde_json::to_value(pod.status.as_ref().unwrap()).unwrap(),
            "times already reported are kept"
        );
        let mut restarted = state();
        restarted.containers[0].container_id = "simulated://c2".into();
        let changed = running_status(&pod, &restarted, host, Timestamp::now());
        assert!(!status_matches(pod.status.as_ref(), &changed));
        assert!(!status_matches(None, &changed));
    }
}
