//! A runtime that runs nothing: pods "start" at once (or after a configured
//! latency), get an IP from the node's range, and stop when asked. It is what
//! hollow nodes (`berth sim`) and tests use. State lives in memory only, so
//! after the agent restarts the runtime is empty and the agent starts the
//! API's running pods again; it must never touch the host.
//!
//! Containers run until stopped, unless the pod asks to finish: the
//! annotation `sim.berth.dev/exit-after` (a duration such as `5s` or `0s`)
//! makes every container exit that long after it started, with the code in
//! `sim.berth.dev/exit-code` (0 when absent), so Jobs complete on simulated
//! nodes; the pod's restartPolicy then decides whether the container runs again.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use jiff::Timestamp;

use super::ipam::Cidr;
use super::{
    ContainerConfig, ContainerState, ContainerStatus, PodSandboxConfig, PodState, RestartPolicy,
    Runtime, RuntimeError, SandboxPhase, Termination,
};

/// How a simulated runtime behaves.
#[derive(Debug, Clone)]
pub struct SimulatedConfig {
    /// How long a pod takes to start (none by default, so thousands of pods
    /// start as fast as the API takes their status).
    pub start_latency: Duration,
    /// The range pods get IPs from until the node's `spec.podCIDR` is known
    /// (see [`crate::config::fallback_pod_cidr`]).
    pub fallback_pod_cidr: String,
    /// Whether to keep a log of calls for [`SimulatedRuntime::calls`]; off for
    /// long-running simulations, where it would only grow.
    pub record_calls: bool,
}

impl Default for SimulatedConfig {
    fn default() -> Self {
        Self {
            start_latency: Duration::ZERO,
            fallback_pod_cidr: crate::config::fallback_pod_cidr(0),
            record_calls: false,
        }
    }
}

/// A call the simulated runtime got, so tests can assert what was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    /// `sync_pod` for a pod not yet running.
    Start {
        /// The pod's UID.
        uid: String,
    },
    /// `stop_pod`.
    Stop {
        /// The pod's UID.
        uid: String,
        /// The grace period asked for.
        grace: Duration,
    },
    /// `remove_pod`.
    Remove {
        /// The pod's UID.
        uid: String,
    },
}

/// The annotation giving how long a simulated container runs before it exits.
pub const EXIT_AFTER: &str = "sim.berth.dev/exit-after";
/// The annotation giving the exit code of a simulated container (default 0).
pub const EXIT_CODE: &str = "sim.berth.dev/exit-code";

/// How a pod's containers finish on their own, from its annotations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ExitPlan {
    after: Duration,
    code: i32,
    restart_policy: RestartPolicy,
}

impl ExitPlan {
    /// The plan the pod's annotations ask for; none when it runs until stopped
    /// (or when the annotations cannot be read, which is logged).
    fn of(pod: &PodSandboxConfig) -> Option<Self> {
        let after = pod.annotations.get(EXIT_AFTER)?;
        let parsed = after
            .parse::<jiff::SignedDuration>()
            .ok()
            .and_then(|d| Duration::try_from(d).ok());
        let code = match pod.annotations.get(EXIT_CODE) {
            Some(code) => code.parse::<i32>().ok(),
            None => Some(0),
        };
        match (parsed, code) {
            (Some(after), Some(code)) => Some(Self {
                after,
                code,
                restart_policy: pod.restart_policy,
            }),
            _ => {
                tracing::warn!(pod = %format!("{}/{}", pod.namespace, pod.name), "ignoring unreadable {EXIT_AFTER}/{EXIT_CODE} annotations");
                None
            }
        }
    }

    fn due(&self, started_at: Timestamp) -> Timestamp {
        let after = jiff::SignedDuration::try_from(self.after).unwrap_or(jiff::SignedDuration::MAX);
        started_at.checked_add(after).unwrap_or(Timestamp::MAX)
    }

    /// Ends the containers whose time has come at `now`, starting again those
    /// the restart policy restarts.
    fn apply(&self, pod: &mut PodState, now: Timestamp) {
        for container in &mut pod.containers {
            let ContainerStatus::Running { started_at } = container.status else {
                continue;
            };
            if self.due(started_at) > now {
                continue;
            }
            let ended = Termination {
                exit_code: self.code,
                reason: if self.code == 0 { "Completed" } else { "Error" }.into(),
                ..completed(&container.container_id, started_at, self.due(started_at))
            };
            if self.restart_policy.restarts(self.code) {
                container.restart_count += 1;
                container.last_termination = Some(ended);
                container.status = ContainerStatus::Running { started_at: now };
            } else {
                container.status = ContainerStatus::Exited(ended);
            }
        }
    }

    /// How long until the next running container of `pod` exits.
    fn next(&self, pod: &PodState, now: Timestamp) -> Option<Duration> {
        pod.containers
            .iter()
            .filter_map(|c| match c.status {
                ContainerStatus::Running { started_at } => Some(self.due(started_at)),
                _ => None,
            })
            .min()
            .map(|due| Duration::try_from(now.duration_until(due)).unwrap_or_default())
    }
}

struct State {
    pod_cidr: Cidr,
    pods: HashMap<String, PodState>,
    exits: HashMap<String, ExitPlan>,
    used: BTreeSet<IpAddr>,
    calls: Vec<Call>,
}

/// The in-memory runtime of one simulated node.
pub struct SimulatedRuntime {
    config: SimulatedConfig,
    state: Mutex<State>,
}

impl SimulatedRuntime {
    /// A runtime with no pods, handing out IPs from the fallback range.
    pub fn new(config: SimulatedConfig) -> Result<Self, RuntimeError> {
        let pod_cidr = parse_cidr(&config.fallback_pod_cidr)?;
        Ok(Self {
            config,
            state: Mutex::new(State {
                pod_cidr,
                pods: HashMap::new(),
                exits: HashMap::new(),
                used: BTreeSet::new(),
                calls: Vec::new(),
            }),
        })
    }

    /// The calls recorded so far (empty unless `record_calls` is set).
    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the maps half-updated in
        // a way that matters for a simulation, so a poisoned lock is reused.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn record(&self, state: &mut State, call: Call) {
        if self.config.record_calls {
            state.calls.push(call);
        }
    }
}

fn parse_cidr(cidr: &str) -> Result<Cidr, RuntimeError> {
    cidr.parse().map_err(|reason| RuntimeError::InvalidPodCidr {
        cidr: cidr.to_owned(),
        reason,
    })
}

/// A stable fake digest of `text`, shaped like a sha256 (64 hex digits).
fn digest(text: &str) -> String {
    (0u64..4)
        .map(|seed| {
            let mut hash: u64 = 0xcbf2_9ce4_8422_2325 ^ seed;
            for byte in text.bytes() {
                hash ^= u64::from(byte);
                hash = hash.wrapping_mul(0x0100_0000_01b3);
            }
            format!("{hash:016x}")
        })
        .collect()
}

/// `docker.io/library/nginx@sha256:…` for `nginx:1.27`, as containerd reports image IDs.
fn image_id(image: &str) -> String {
    let without_digest = image.split('@').next().unwrap_or(image);
    let repository = match without_digest.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => repo,
        _ => without_digest,
    };
    let qualified = match repository.split_once('/') {
        Some((host, _)) if host.contains('.') || host.contains(':') || host == "localhost" => {
            repository.to_owned()
        }
        Some(_) => format!("docker.io/{repository}"),
        None => format!("docker.io/library/{repository}"),
    };
    format!("{qualified}@sha256:{}", digest(image))
}

fn container(config: &ContainerConfig, status: ContainerStatus) -> ContainerState {
    ContainerState {
        name: config.name.clone(),
        image: config.image.clone(),
        image_id: image_id(&config.image),
        container_id: format!("simulated://{}", uuid::Uuid::new_v4().simple()),
        status,
        restart_count: 0,
        last_termination: None,
    }
}

/// A run that ended with exit code 0, as a simulated container's always does.
fn completed(container_id: &str, started_at: Timestamp, finished_at: Timestamp) -> Termination {
    Termination {
        container_id: container_id.to_owned(),
        started_at,
        finished_at,
        exit_code: 0,
        reason: "Completed".into(),
        message: String::new(),
    }
}

#[async_trait]
impl Runtime for SimulatedRuntime {
    fn version(&self) -> String {
        "simulated://1.0".to_owned()
    }

    async fn update_pod_cidr(&self, cidr: &str) -> Result<(), RuntimeError> {
        let cidr = parse_cidr(cidr)?;
        let mut state = self.lock();
        if state.pod_cidr != cidr {
            tracing::info!(%cidr, "pod range updated");
            state.pod_cidr = cidr;
        }
        Ok(())
    }

    async fn sync_pod(&self, pod: &PodSandboxConfig) -> Result<PodState, RuntimeError> {
        {
            let mut state = self.lock();
            let plan = state.exits.get(&pod.uid).copied();
            match state.pods.get_mut(&pod.uid) {
                Some(existing) if existing.phase == SandboxPhase::Running => {
                    if let Some(plan) = plan {
                        plan.apply(existing, Timestamp::now());
                    }
                    return Ok(existing.clone());
                }
                // Stopped without being deleted: start it again, as
                // restartPolicy Always would.
                Some(_) => {
                    if let Some(ip) = state.pods.remove(&pod.uid).and_then(|p| p.ip) {
                        state.used.remove(&ip);
                    }
                }
                None => {}
            }
        }
        if !self.config.start_latency.is_zero() {
            tokio::time::sleep(self.config.start_latency).await;
        }
        let mut state = self.lock();
        if let Some(existing) = state.pods.get(&pod.uid) {
            return Ok(existing.clone());
        }
        let ip = match pod.previous_ip.filter(|ip| !state.used.contains(ip)) {
            Some(ip) => ip,
            None => state.pod_cidr.first_free(&state.used).ok_or_else(|| {
                RuntimeError::AddressesExhausted {
                    cidr: state.pod_cidr.to_string(),
                }
            })?,
        };
        let now = Timestamp::now();
        let mut started = PodState {
            uid: pod.uid.clone(),
            namespace: pod.namespace.clone(),
            name: pod.name.clone(),
            phase: SandboxPhase::Running,
            ip: Some(ip),
            started_at: now,
            init_containers: pod
                .init_containers
                .iter()
                .map(|c| {
                    let mut state = container(c, ContainerStatus::Running { started_at: now });
                    state.status =
                        ContainerStatus::Exited(completed(&state.container_id, now, now));
                    state
                })
                .collect(),
            containers: pod
                .containers
                .iter()
                .map(|c| container(c, ContainerStatus::Running { started_at: now }))
                .collect(),
        };
        if let Some(plan) = ExitPlan::of(pod) {
            plan.apply(&mut started, now);
            state.exits.insert(pod.uid.clone(), plan);
        }
        state.used.insert(ip);
        state.pods.insert(pod.uid.clone(), started.clone());
        self.record(
            &mut state,
            Call::Start {
                uid: pod.uid.clone(),
            },
        );
        tracing::debug!(pod = %format!("{}/{}", pod.namespace, pod.name), %ip, "simulated pod started");
        Ok(started)
    }

    async fn stop_pod(&self, uid: &str, grace: Duration) -> Result<(), RuntimeError> {
        // Simulated containers exit on SIGTERM at once, so the grace period is never waited out.
        let mut state = self.lock();
        let now = Timestamp::now();
        if let Some(pod) = state.pods.get_mut(uid) {
            pod.phase = SandboxPhase::Stopped;
            for container in &mut pod.containers {
                if let ContainerStatus::Running { started_at } = container.status {
                    container.status = ContainerStatus::Exited(completed(
                        &container.container_id,
                        started_at,
                        now,
                    ));
                }
            }
        }
        self.record(
            &mut state,
            Call::Stop {
                uid: uid.to_owned(),
                grace,
            },
        );
        Ok(())
    }

    async fn remove_pod(&self, uid: &str) -> Result<(), RuntimeError> {
        let mut state = self.lock();
        state.exits.remove(uid);
        if let Some(pod) = state.pods.remove(uid) {
            if let Some(ip) = pod.ip {
                state.used.remove(&ip);
            }
        }
        self.record(
            &mut state,
            Call::Remove {
                uid: uid.to_owned(),
            },
        );
        Ok(())
    }

    fn next_change(&self, uid: &str) -> Option<Duration> {
        let state = self.lock();
        let plan = state.exits.get(uid)?;
        let pod = state
            .pods
            .get(uid)
            .filter(|p| p.phase == SandboxPhase::Running)?;
        plan.next(pod, Timestamp::now())
    }

    async fn pod_state(&self, uid: &str) -> Result<Option<PodState>, RuntimeError> {
        Ok(self.lock().pods.get(uid).cloned())
    }

    async fn list_pods(&self) -> Result<Vec<PodState>, RuntimeError> {
        Ok(self.lock().pods.values().cloned().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runtime() -> SimulatedRuntime {
        SimulatedRuntime::new(SimulatedConfig {
            fallback_pod_cidr: "10.128.0.0/24".into(),
            record_calls: true,
            ..SimulatedConfig::default()
        })
        .unwrap()
    }

    fn sandbox(uid: &str) -> PodSandboxConfig {
        PodSandboxConfig {
            uid: uid.into(),
            namespace: "default".into(),
            name: format!("pod-{uid}"),
            init_containers: vec![ContainerConfig {
                name: "setup".into(),
                image: "busybox".into(),
                ..ContainerConfig::default()
            }],
            containers: vec![
                ContainerConfig {
                    name: "web".into(),
                    image: "nginx:1.27".into(),
                    ..ContainerConfig::default()
                },
                ContainerConfig {
                    name: "sidecar".into(),
                    image: "registry.example.com:5000/team/proxy:v1".into(),
                    ..ContainerConfig::default()
                },
            ],
            ..PodSandboxConfig::default()
        }
    }

    #[tokio::test]
    async fn annotated_pods_exit_with_their_code_and_restart_as_their_policy_says() {
        let runtime = runtime();
        let cases = [
            ("a", "0s", "0", RestartPolicy::Never, Some(0), 0),
            ("b", "0s", "3", RestartPolicy::Never, Some(3), 0),
            ("c", "0s", "3", RestartPolicy::OnFailure, None, 1),
            ("d", "1h", "0", RestartPolicy::Never, None, 0),
        ];
        for (uid, after, code, restart_policy, exited, restarts) in cases {
            let mut pod = sandbox(uid);
            pod.restart_policy = restart_policy;
            pod.annotations = [(EXIT_AFTER, after), (EXIT_CODE, code)]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
            let state = runtime.sync_pod(&pod).await.unwrap();
            let web = &state.containers[0];
            let code = match &web.status {
                ContainerStatus::Exited(t) => Some(t.exit_code),
                _ => None,
            };
            assert_eq!((code, web.restart_count), (exited, restarts), "{uid}");
        }
        assert!(runtime.next_change("d").unwrap() > Duration::from_secs(3500));
        assert_eq!(runtime.next_change("a"), None);
    }

    #[tokio::test]
    async fn started_pods_run_with_distinct_ips_from_the_range() {
        let runtime = runtime();
        let a = runtime.sync_pod(&sandbox("a")).await.unwrap();
        let b = runtime.sync_pod(&sandbox("b")).await.unwrap();
        assert_eq!(a.phase, SandboxPhase::Running);
        assert_eq!(a.ip, Some("10.128.0.2".parse().unwrap()));
        assert_eq!(b.ip, Some("10.128.0.3".parse().unwrap()));
        assert_eq!(a.containers.len(), 2);
        assert!(a.containers[0].container_id.starts_with("simulated://"));
        assert_ne!(a.containers[0].container_id, a.containers[1].container_id);
        assert!(matches!(
            a.containers[0].status,
            ContainerStatus::Running { .. }
        ));
        assert!(a.containers[0]
            .image_id
            .starts_with("docker.io/library/nginx@sha256:"));
        assert!(a.containers[1]
            .image_id
            .starts_with("registry.example.com:5000/team/proxy@sha256:"));
        assert!(matches!(
            &a.init_containers[0].status,
            ContainerStatus::Exited(Termination { exit_code: 0, reason, .. }) if reason == "Completed"
        ));
        assert_eq!(runtime.list_pods().await.unwrap().len(), 2);
    }

    #[tokio::test]
    async fn starting_twice_returns_the_same_pod() {
        let runtime = runtime();
        let first = runtime.sync_pod(&sandbox("a")).await.unwrap();
        let again = runtime.sync_pod(&sandbox("a")).await.unwrap();
        assert_eq!(first, again);
        assert_eq!(
            runtime.calls(),
            vec![Call::Start { uid: "a".into() }],
            "the second start must not start anything"
        );
    }

    #[tokio::test]
    async fn stop_terminates_and_remove_frees_the_ip() {
        let runtime = runtime();
        let a = runtime.sync_pod(&sandbox("a")).await.unwrap();
        runtime
            .stop_pod("a", Duration::from_secs(30))
            .await
            .unwrap();
        let stopped = runtime.pod_state("a").await.unwrap().unwrap();
        assert_eq!(stopped.phase, SandboxPhase::Stopped);
        assert!(matches!(
            stopped.containers[0].status,
            ContainerStatus::Exited(Termination { exit_code: 0, .. })
        ));
        runtime.remove_pod("a").await.unwrap();
        assert_eq!(runtime.pod_state("a").await.unwrap(), None);
        // Unknown pods stop and remove without error.
        runtime.stop_pod("a", Duration::ZERO).await.unwrap();
        runtime.remove_pod("a").await.unwrap();
        let b = runtime.sync_pod(&sandbox("b")).await.unwrap();
        assert_eq!(b.ip, a.ip, "the freed address is handed out again");
        assert_eq!(
            runtime.calls()[1],
            Call::Stop {
                uid: "a".into(),
                grace: Duration::from_secs(30)
            }
        );
    }

    #[tokio::test]
    async fn pod_cidr_update_applies_to_new_pods_and_previous_ip_is_kept() {
        let runtime = runtime();
        let old = runtime.sync_pod(&sandbox("a")).await.unwrap();
        runtime.update_pod_cidr("10.42.7.0/24").await.unwrap();
        let new = runtime.sync_pod(&sandbox("b")).await.unwrap();
        assert_eq!(old.ip, Some("10.128.0.2".parse().unwrap()));
        assert_eq!(new.ip, Some("10.42.7.2".parse().unwrap()));
        let mut adopted = sandbox("c");
        adopted.previous_ip = Some("10.42.7.99".parse().unwrap());
        let adopted = runtime.sync_pod(&adopted).await.unwrap();
        assert_eq!(adopted.ip, Some("10.42.7.99".parse().unwrap()));
        let mut taken = sandbox("d");
        taken.previous_ip = new.ip;
        let moved = runtime.sync_pod(&taken).await.unwrap();
        assert_eq!(moved.ip, Some("10.42.7.3".parse().unwrap()));
        assert!(matches!(
            runtime.update_pod_cidr("10.42.0.0/99").await,
            Err(RuntimeError::InvalidPodCidr { .. })
        ));
    }

    #[tokio::test]
    async fn a_full_range_is_reported() {
        let runtime = SimulatedRuntime::new(SimulatedConfig {
            fallback_pod_cidr: "10.0.0.0/30".into(),
            ..SimulatedConfig::default()
        })
        .unwrap();
        runtime.sync_pod(&sandbox("a")).await.unwrap();
        let error = runtime.sync_pod(&sandbox("b")).await.unwrap_err();
        assert!(error.to_string().contains("no free pod IP in 10.0.0.0/30"));
    }

    #[tokio::test]
    async fn start_latency_delays_the_start() {
        let runtime = SimulatedRuntime::new(SimulatedConfig {
            start_latency: Duration::from_millis(50),
            ..SimulatedConfig::default()
        })
        .unwrap();
        let before = std::time::Instant::now();
        runtime.sync_pod(&sandbox("a")).await.unwrap();
        assert!(before.elapsed() >= Duration::from_millis(50));
    }
}
