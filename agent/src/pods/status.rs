//! Runtime → Pod status, pure: the `status` a pod reports (phase, IPs,
//! conditions, container statuses) in kubelet's shape, computed from what
//! the runtime says about its containers and what the probes found. No I/O;
//! the caller patches `pods/status`.

use std::net::IpAddr;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{
    ContainerState as ApiContainerState, ContainerStateRunning, ContainerStateTerminated,
    ContainerStateWaiting, ContainerStatus as ApiContainerStatus, HostIP, Pod, PodCondition, PodIP,
    PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::probes::PodHealth;
use crate::runtime::{ContainerState, ContainerStatus, PodState, RestartPolicy, Termination};
use crate::seconds;

fn terminated(t: &Termination) -> ContainerStateTerminated {
    ContainerStateTerminated {
        container_id: Some(t.container_id.clone()),
        exit_code: t.exit_code,
        reason: Some(t.reason.clone()),
        message: (!t.message.is_empty()).then(|| t.message.clone()),
        started_at: Some(Time(seconds(t.started_at))),
        finished_at: Some(Time(seconds(t.finished_at))),
        ..ContainerStateTerminated::default()
    }
}

fn api_state(status: &ContainerStatus) -> ApiContainerState {
    match status {
        ContainerStatus::Waiting { reason, message } => ApiContainerState {
            waiting: Some(ContainerStateWaiting {
                reason: Some(reason.clone()),
                message: (!message.is_empty()).then(|| message.clone()),
            }),
            ..ApiContainerState::default()
        },
        ContainerStatus::Running { started_at } => ApiContainerState {
            running: Some(ContainerStateRunning {
                started_at: Some(Time(seconds(*started_at))),
            }),
            ..ApiContainerState::default()
        },
        ContainerStatus::Exited(t) => ApiContainerState {
            terminated: Some(terminated(t)),
            ..ApiContainerState::default()
        },
    }
}

fn api_container_status(
    container: &ContainerState,
    started: bool,
    ready: bool,
) -> ApiContainerStatus {
    ApiContainerStatus {
        name: container.name.clone(),
        image: container.image.clone(),
        image_id: container.image_id.clone(),
        container_id: (!container.container_id.is_empty()).then(|| container.container_id.clone()),
        ready,
        started: Some(started),
        restart_count: i32::try_from(container.restart_count).unwrap_or(i32::MAX),
        state: Some(api_state(&container.status)),
        last_state: Some(
            container
                .last_termination
                .as_ref()
                .map(|t| ApiContainerState {
                    terminated: Some(terminated(t)),
                    ..ApiContainerState::default()
                })
                .unwrap_or_default(),
        ),
        ..ApiContainerStatus::default()
    }
}

fn succeeded(c: &ContainerState) -> bool {
    matches!(&c.status, ContainerStatus::Exited(t) if t.exit_code == 0)
}

/// Upstream's `getPhase`: Pending until init containers are done and every
/// container has started; Running while any runs or will be restarted;
/// Succeeded or Failed once all have exited for good.
pub fn phase(state: &PodState, restart_policy: RestartPolicy) -> &'static str {
    for init in &state.init_containers {
        match &init.status {
            ContainerStatus::Exited(t) if t.exit_code == 0 => {}
            ContainerStatus::Exited(_) if restart_policy == RestartPolicy::Never => {
                return "Failed"
            }
            _ => return "Pending",
        }
    }
    let (mut running, mut waiting, mut stopped, mut failed) = (0, 0, 0, 0);
    for c in &state.containers {
        match &c.status {
            ContainerStatus::Running { .. } => running += 1,
            ContainerStatus::Exited(t) => {
                stopped += 1;
                if t.exit_code != 0 {
                    failed += 1;
                }
            }
            // Waiting to be restarted counts as having run.
            ContainerStatus::Waiting { .. } if c.last_termination.is_some() => {
                stopped += 1;
                failed += usize::from(
                    c.last_termination
                        .as_ref()
                        .is_some_and(|t| t.exit_code != 0),
                );
            }
            ContainerStatus::Waiting { .. } => waiting += 1,
        }
    }
    if waiting > 0 {
        "Pending"
    } else if running > 0 {
        "Running"
    } else if stopped > 0 {
        match restart_policy {
            RestartPolicy::Always => "Running",
            RestartPolicy::OnFailure if failed > 0 => "Running",
            RestartPolicy::Never if failed > 0 => "Failed",
            _ => "Succeeded",
        }
    } else {
        "Pending"
    }
}

fn condition(
    current: Option<&PodStatus>,
    type_: &str,
    status: bool,
    reason: Option<&str>,
    message: Option<String>,
    now: Timestamp,
) -> PodCondition {
    let status = if status { "True" } else { "False" };
    // The transition time moves only when the status does.
    let since = current
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == type_))
        .filter(|c| c.status == status)
        .and_then(|c| c.last_transition_time.clone())
        .unwrap_or(Time(now));
    PodCondition {
        type_: type_.to_owned(),
        status: status.to_owned(),
        reason: reason.map(str::to_owned),
        message,
        last_transition_time: Some(since),
        ..PodCondition::default()
    }
}

/// `(started, ready)` of a container: a running container has started once
/// its startup probe (if any) passed, and is ready once started and its
/// readiness probe (if any) passed. Without probes running, running is both.
fn started_and_ready(
    pod: &Pod,
    container: &str,
    running: bool,
    health: &PodHealth,
) -> (bool, bool) {
    if !running {
        return (false, false);
    }
    if !health.enabled {
        return (true, true);
    }
    let spec = pod
        .spec
        .as_ref()
        .and_then(|s| s.containers.iter().find(|c| c.name == container));
    let passed = |has_probe: bool, verdicts: &std::collections::HashMap<String, bool>| {
        !has_probe || verdicts.get(container).copied().unwrap_or(false)
    };
    let started = passed(
        spec.is_some_and(|c| c.startup_probe.is_some()),
        &health.started,
    );
    let ready = started
        && passed(
            spec.is_some_and(|c| c.readiness_probe.is_some()),
            &health.ready,
        );
    (started, ready)
}

/// The status of `pod` as the runtime reports it in `state`, on a node at
/// `host_ip`. Times the pod already reports (startTime, condition
/// transitions) are kept, so the same state always yields the same status.
pub fn pod_status(
    pod: &Pod,
    state: &PodState,
    health: &PodHealth,
    host_ip: IpAddr,
    now: Timestamp,
) -> PodStatus {
    let current = pod.status.as_ref();
    let now = seconds(now);
    let restart_policy =
        RestartPolicy::from_spec(pod.spec.as_ref().and_then(|s| s.restart_policy.as_deref()));
    let phase = phase(state, restart_policy);
    let container_statuses: Vec<ApiContainerStatus> = state
        .containers
        .iter()
        .map(|c| {
            let running = matches!(c.status, ContainerStatus::Running { .. });
            let (started, ready) = started_and_ready(pod, &c.name, running, health);
            api_container_status(c, started, ready)
        })
        .collect();
    // A completed init container is ready, as upstream reports it.
    let init_statuses: Vec<ApiContainerStatus> = state
        .init_containers
        .iter()
        .map(|c| {
            let running = matches!(c.status, ContainerStatus::Running { .. });
            api_container_status(c, running, succeeded(c))
        })
        .collect();

    let incomplete: Vec<&str> = state
        .init_containers
        .iter()
        .filter(|c| !succeeded(c))
        .map(|c| c.name.as_str())
        .collect();
    let unready: Vec<&str> = container_statuses
        .iter()
        .filter(|c| !c.ready)
        .map(|c| c.name.as_str())
        .collect();
    let initialized = incomplete.is_empty();
    let ready = unready.is_empty();
    let completed = phase == "Succeeded" || phase == "Failed";
    let (ready_reason, ready_message) = if ready {
        (None, None)
    } else if completed {
        (Some("PodCompleted"), None)
    } else {
        (
            Some("ContainersNotReady"),
            Some(format!(
                "containers with unready status: [{}]",
                unready.join(" ")
            )),
        )
    };
    let sandbox_ready =
        state.ip.is_some() || pod.spec.as_ref().and_then(|s| s.host_network) == Some(true);
    let mut conditions = vec![
        condition(
            current,
            "PodReadyToStartContainers",
            sandbox_ready && !completed,
            None,
            None,
            now,
        ),
        condition(
            current,
            "Initialized",
            initialized,
            (!initialized).then_some("ContainersNotInitialized"),
            (!initialized).then(|| {
                format!(
                    "containers with incomplete status: [{}]",
                    incomplete.join(" ")
                )
            }),
            now,
        ),
        condition(
            current,
            "Ready",
            ready,
            ready_reason,
            ready_message.clone(),
            now,
        ),
        condition(
            current,
            "ContainersReady",
            ready,
            ready_reason,
            ready_message,
            now,
        ),
    ];
    if let Some(scheduled) = current
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "PodScheduled"))
    {
        conditions.push(scheduled.clone());
    } else {
        conditions.push(condition(current, "PodScheduled", true, None, None, now));
    }
    // Conditions kubelet does not own (DisruptionTarget, readiness gates')
    // stay as others wrote them, as upstream's generateAPIPodStatus keeps them.
    conditions.extend(
        current
            .and_then(|s| s.conditions.as_ref())
            .into_iter()
            .flatten()
            .filter(|c| !KUBELET_CONDITIONS.contains(&c.type_.as_str()))
            .cloned(),
    );
    PodStatus {
        phase: Some(phase.into()),
        host_ip: Some(host_ip.to_string()),
        host_ips: Some(vec![HostIP {
            ip: host_ip.to_string(),
        }]),
        pod_ip: state.ip.map(|ip| ip.to_string()),
        pod_ips: state.ip.map(|ip| vec![PodIP { ip: ip.to_string() }]),
        start_time: Some(
            current
                .and_then(|s| s.start_time.clone())
                .unwrap_or(Time(seconds(state.started_at))),
        ),
        conditions: Some(conditions),
        container_statuses: Some(container_statuses),
        init_container_statuses: (!init_statuses.is_empty()).then_some(init_statuses),
        qos_class: current.and_then(|s| s.qos_class.clone()),
        ..PodStatus::default()
    }
}

/// The pod condition types kubelet owns and recomputes on every status.
const KUBELET_CONDITIONS: [&str; 5] = [
    "PodReadyToStartContainers",
    "Initialized",
    "Ready",
    "ContainersReady",
    "PodScheduled",
];

/// Whether `current` already says what `desired` says, so no patch is
/// needed. Condition times are ignored: only facts are compared.
pub fn status_matches(current: Option<&PodStatus>, desired: &PodStatus) -> bool {
    let Some(current) = current else {
        return false;
    };
    let conditions = |s: &PodStatus| {
        let mut list: Vec<(String, String, Option<String>, Option<String>)> = s
            .conditions
            .iter()
            .flatten()
            .map(|c| {
                (
                    c.type_.clone(),
                    c.status.clone(),
                    c.reason.clone(),
                    c.message.clone(),
                )
            })
            .collect();
        list.sort();
        list
    };
    current.phase == desired.phase
        && current.pod_ip == desired.pod_ip
        && current.host_ip == desired.host_ip
        && current.start_time.is_some()
        && conditions(current) == conditions(desired)
        && current.container_statuses == desired.container_statuses
        && current.init_container_statuses == desired.init_container_statuses
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

    fn at() -> Timestamp {
        Timestamp::from_second(1_700_000_000).unwrap()
    }

    fn exited(id: &str, code: i32) -> Termination {
        Termination {
            container_id: id.into(),
            started_at: at(),
            finished_at: at(),
            exit_code: code,
            reason: if code == 0 { "Completed" } else { "Error" }.into(),
            message: String::new(),
        }
    }

    fn container(name: &str, status: ContainerStatus) -> ContainerState {
        ContainerState {
            name: name.into(),
            image: "img".into(),
            image_id: "docker.io/library/img@sha256:ab".into(),
            container_id: format!("containerd://{name}"),
            status,
            restart_count: 0,
            last_termination: None,
        }
    }

    fn state() -> PodState {
        PodState {
            uid: "u1".into(),
            namespace: "default".into(),
            name: "web".into(),
            phase: SandboxPhase::Running,
            ip: Some("10.42.0.2".parse().unwrap()),
            started_at: at(),
            init_containers: vec![container(
                "setup",
                ContainerStatus::Exited(exited("containerd://setup", 0)),
            )],
            containers: vec![container(
                "app",
                ContainerStatus::Running { started_at: at() },
            )],
        }
    }

    fn status(state: &PodState) -> PodStatus {
        pod_status(
            &pod(),
            state,
            &PodHealth::default(),
            "127.1.0.1".parse().unwrap(),
            Timestamp::now(),
        )
    }

    fn condition_of<'a>(status: &'a PodStatus, type_: &str) -> &'a PodCondition {
        status
            .conditions
            .as_ref()
            .unwrap()
            .iter()
            .find(|c| c.type_ == type_)
            .unwrap()
    }

    #[test]
    fn a_running_pod_reports_ips_conditions_and_containers() {
        let status = status(&state());
        assert_eq!(status.phase.as_deref(), Some("Running"));
        assert_eq!(status.pod_ip.as_deref(), Some("10.42.0.2"));
        assert_eq!(status.pod_ips.as_ref().unwrap()[0].ip, "10.42.0.2");
        assert_eq!(status.host_ip.as_deref(), Some("127.1.0.1"));
        assert_eq!(
            status.start_time.as_ref().unwrap().0.as_second(),
            1_700_000_000
        );
        for type_ in [
            "PodScheduled",
            "Initialized",
            "ContainersReady",
            "Ready",
            "PodReadyToStartContainers",
        ] {
            assert_eq!(condition_of(&status, type_).status, "True", "{type_}");
        }
        let app = &status.container_statuses.as_ref().unwrap()[0];
        assert!(app.ready);
        assert_eq!(app.started, Some(true));
        assert_eq!(app.restart_count, 0);
        assert_eq!(app.container_id.as_deref(), Some("containerd://app"));
        assert!(app.state.as_ref().unwrap().running.is_some());
        let setup = &status.init_container_statuses.as_ref().unwrap()[0];
        let terminated = setup.state.as_ref().unwrap().terminated.as_ref().unwrap();
        assert_eq!(terminated.reason.as_deref(), Some("Completed"));
    }

    #[test]
    fn phases_follow_upstream() {
        let mut s = state();
        s.init_containers[0].status = ContainerStatus::Running { started_at: at() };
        s.containers[0].status = ContainerStatus::Waiting {
            reason: "PodInitializing".into(),
            message: String::new(),
        };
        assert_eq!(phase(&s, RestartPolicy::Always), "Pending");
        let st = status(&s);
        assert_eq!(
            condition_of(&st, "Initialized").reason.as_deref(),
            Some("ContainersNotInitialized")
        );
        assert_eq!(
            condition_of(&st, "Initialized").message.as_deref(),
            Some("containers with incomplete status: [setup]")
        );
        assert_eq!(
            condition_of(&st, "Ready").message.as_deref(),
            Some("containers with unready status: [app]")
        );

        s.init_containers[0].status = ContainerStatus::Exited(exited("i", 1));
        assert_eq!(phase(&s, RestartPolicy::Never), "Failed");
        assert_eq!(phase(&s, RestartPolicy::OnFailure), "Pending");

        let mut s = state();
        s.containers[0].status = ContainerStatus::Exited(exited("c", 0));
        assert_eq!(phase(&s, RestartPolicy::Never), "Succeeded");
        assert_eq!(phase(&s, RestartPolicy::OnFailure), "Succeeded");
        assert_eq!(phase(&s, RestartPolicy::Always), "Running");
        s.containers[0].status = ContainerStatus::Exited(exited("c", 2));
        assert_eq!(phase(&s, RestartPolicy::Never), "Failed");
        assert_eq!(phase(&s, RestartPolicy::OnFailure), "Running");

        // Crash-looping: waiting after a failed run is still Running.
        s.containers[0].status = ContainerStatus::Waiting {
            reason: "CrashLoopBackOff".into(),
            message: "back-off".into(),
        };
        s.containers[0].last_termination = Some(exited("c", 1));
        s.containers[0].restart_count = 3;
        assert_eq!(phase(&s, RestartPolicy::Always), "Running");
        let st = status(&s);
        let app = &st.container_statuses.as_ref().unwrap()[0];
        assert_eq!(app.restart_count, 3);
        assert_eq!(
            app.state
                .as_ref()
                .unwrap()
                .waiting
                .as_ref()
                .unwrap()
                .reason
                .as_deref(),
            Some("CrashLoopBackOff")
        );
        assert_eq!(
            app.last_state
                .as_ref()
                .unwrap()
                .terminated
                .as_ref()
                .unwrap()
                .exit_code,
            1
        );
        assert!(!app.ready);
    }

    #[test]
    fn readiness_probes_gate_ready() {
        let mut pod = pod();
        pod.spec.as_mut().unwrap().containers[0].readiness_probe = Some(Default::default());
        let host = "127.1.0.1".parse().unwrap();
        let simulated = pod_status(
            &pod,
            &state(),
            &PodHealth::default(),
            host,
            Timestamp::now(),
        );
        assert_eq!(
            condition_of(&simulated, "Ready").status,
            "True",
            "no probes run on simulated nodes"
        );
        let probing = PodHealth {
            enabled: true,
            ..PodHealth::default()
        };
        let unknown = pod_status(&pod, &state(), &probing, host, Timestamp::now());
        assert_eq!(condition_of(&unknown, "Ready").status, "False");
        let ok = PodHealth {
            enabled: true,
            ready: [("app".to_owned(), true)].into(),
            ..PodHealth::default()
        };
        let ready = pod_status(&pod, &state(), &ok, host, Timestamp::now());
        assert_eq!(condition_of(&ready, "Ready").status, "True");
    }

    #[test]
    fn a_reported_status_matches_until_the_runtime_changes() {
        let host = "127.1.0.1".parse().unwrap();
        let mut pod = pod();
        let desired = pod_status(
            &pod,
            &state(),
            &PodHealth::default(),
            host,
            Timestamp::now(),
        );
        assert!(!status_matches(pod.status.as_ref(), &desired));
        // What the server stores goes through JSON; it must still match.
        let stored: PodStatus =
            serde_json::from_value(serde_json::to_value(&desired).unwrap()).unwrap();
        pod.status = Some(stored);
        let later = pod_status(
            &pod,
            &state(),
            &PodHealth::default(),
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
        restarted.containers[0].container_id = "containerd://c2".into();
        let changed = pod_status(
            &pod,
            &restarted,
            &PodHealth::default(),
            host,
            Timestamp::now(),
        );
        assert!(!status_matches(pod.status.as_ref(), &changed));
        assert!(!status_matches(None, &changed));
    }

    #[test]
    fn conditions_kubelet_does_not_own_are_kept() {
        let mut pod = pod();
        let marked = PodCondition {
            type_: "DisruptionTarget".into(),
            status: "True".into(),
            reason: Some("EvictionByEvictionAPI".into()),
            message: Some("Eviction API: evicting".into()),
            ..PodCondition::default()
        };
        let stale_ready = PodCondition {
            type_: "Ready".into(),
            status: "Unknown".into(),
            ..PodCondition::default()
        };
        pod.status = Some(PodStatus {
            conditions: Some(vec![marked.clone(), stale_ready]),
            ..PodStatus::default()
        });
        let host = "127.1.0.1".parse().unwrap();
        let status = pod_status(
            &pod,
            &state(),
            &PodHealth::default(),
            host,
            Timestamp::now(),
        );
        assert_eq!(condition_of(&status, "DisruptionTarget"), &marked);
        let ready: Vec<&PodCondition> = status
            .conditions
            .iter()
            .flatten()
            .filter(|c| c.type_ == "Ready")
            .collect();
        assert_eq!(ready.len(), 1);
        assert_ne!(ready[0].status, "Unknown");
    }
}
