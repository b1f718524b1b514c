//! Kubelet's prober: one task per running container and probe kind
//! (liveness, readiness, startup) that checks on the probe's schedule and
//! keeps the verdict after `successThreshold` / `failureThreshold`
//! consecutive results. Readiness and startup verdicts feed the pod's
//! status; a failed liveness or startup probe stops the container so that
//! the next sync restarts it under the restart policy.

pub mod check;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Pod, Probe};
use tokio::task::AbortHandle;

use crate::lock;
use crate::runtime::{ContainerStatus, PodState, Runtime, RuntimeEvent};

use self::check::Outcome;

/// Which probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Restarts the container when it fails.
    Liveness,
    /// Takes the pod out of Service endpoints when it fails.
    Readiness,
    /// Holds the other probes back until the container has started.
    Startup,
}

impl Kind {
    /// The verdict before the first result (upstream: only liveness starts as passing).
    fn initial(self) -> bool {
        matches!(self, Kind::Liveness)
    }

    fn word(self) -> &'static str {
        match self {
            Kind::Liveness => "Liveness",
            Kind::Readiness => "Readiness",
            Kind::Startup => "Startup",
        }
    }
}

/// What the probes say about one pod's containers, for its status.
#[derive(Debug, Clone, Default)]
pub struct PodHealth {
    /// Whether probes run at all; when not (a simulated node), every running
    /// container counts as started and ready.
    pub enabled: bool,
    /// The readiness verdict per container that has a readiness probe.
    pub ready: HashMap<String, bool>,
    /// The startup verdict per container that has a startup probe.
    pub started: HashMap<String, bool>,
}

type Key = (String, String, Kind);

struct Worker {
    container_id: String,
    task: AbortHandle,
}

/// The probe workers of one node and their verdicts.
#[derive(Default)]
pub struct Prober {
    results: Mutex<HashMap<Key, bool>>,
    workers: Mutex<HashMap<Key, Worker>>,
    /// Events per pod UID (`Unhealthy`, `Killing`) until drained.
    events: Mutex<HashMap<String, Vec<RuntimeEvent>>>,
}

fn probe_of(container: &Container, kind: Kind) -> Option<&Probe> {
    match kind {
        Kind::Liveness => container.liveness_probe.as_ref(),
        Kind::Readiness => container.readiness_probe.as_ref(),
        Kind::Startup => container.startup_probe.as_ref(),
    }
}

fn seconds(value: Option<i32>, default: i32) -> Duration {
    Duration::from_secs(value.unwrap_or(default).max(0).unsigned_abs().into())
}

/// Everything a worker needs, owned.
struct Target {
    runtime: Arc<dyn Runtime>,
    uid: String,
    pod: String,
    container: Container,
    pod_ip: Option<IpAddr>,
    kind: Kind,
    probe: Probe,
    kill_grace: Duration,
    waits_for_startup: bool,
}

impl Prober {
    /// A prober with no workers.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Starts a worker for every probe of every running container of `pod`
    /// that has none (or whose container was replaced), and stops the
    /// workers of containers that no longer run.
    pub fn sync(self: &Arc<Self>, runtime: &Arc<dyn Runtime>, pod: &Pod, state: &PodState) {
        let Some(spec) = pod.spec.as_ref() else {
            return;
        };
        let uid = state.uid.clone();
        let mut wanted: HashMap<Key, String> = HashMap::new();
        for container in &spec.containers {
            let Some(running) = state.containers.iter().find(|c| c.name == container.name) else {
                continue;
            };
            if !matches!(running.status, ContainerStatus::Running { .. }) {
                continue;
            }
            for kind in [Kind::Liveness, Kind::Readiness, Kind::Startup] {
                if probe_of(container, kind).is_some() {
                    wanted.insert(
                        (uid.clone(), container.name.clone(), kind),
                        running.container_id.clone(),
                    );
                }
            }
        }
        let mut workers = lock(&self.workers);
        workers.retain(|key, worker| {
            let keep = key.0 != uid || wanted.get(key) == Some(&worker.container_id);
            if !keep {
                worker.task.abort();
                lock(&self.results).remove(key);
            }
            keep
        });
        for (key, container_id) in wanted {
            if workers.contains_key(&key) {
                continue;
            }
            let Some(container) = spec.containers.iter().find(|c| c.name == key.1) else {
                continue;
            };
            let probe = probe_of(container, key.2).cloned().unwrap_or_default();
            let pod_grace = spec.termination_grace_period_seconds.unwrap_or(30);
            let target = Target {
                runtime: Arc::clone(runtime),
                uid: uid.clone(),
                pod: format!(
                    "{}/{}",
                    pod.metadata.namespace.as_deref().unwrap_or_default(),
                    pod.metadata.name.as_deref().unwrap_or_default()
                ),
                container: container.clone(),
                pod_ip: state.ip,
                kind: key.2,
                kill_grace: Duration::from_secs(
                    probe
                        .termination_grace_period_seconds
                        .unwrap_or(pod_grace)
                        .max(0)
                        .unsigned_abs(),
                ),
                waits_for_startup: key.2 != Kind::Startup && container.startup_probe.is_some(),
                probe,
            };
            lock(&self.results).insert(key.clone(), key.2.initial());
            let task = tokio::spawn(Arc::clone(self).work(key.clone(), target)).abort_handle();
            workers.insert(key, Worker { container_id, task });
        }
    }

    /// What the probes say about pod `uid` now.
    pub fn health(&self, uid: &str) -> PodHealth {
        let mut health = PodHealth {
            enabled: true,
            ..PodHealth::default()
        };
        for ((pod, container, kind), verdict) in lock(&self.results).iter() {
            if pod != uid {
                continue;
            }
            match kind {
                Kind::Readiness => {
                    health.ready.insert(container.clone(), *verdict);
                }
                Kind::Startup => {
                    health.started.insert(container.clone(), *verdict);
                }
                Kind::Liveness => {}
            }
        }
        health
    }

    /// Stops every worker of pod `uid` and forgets its verdicts.
    pub fn forget(&self, uid: &str) {
        lock(&self.workers).retain(|key, worker| {
            let keep = key.0 != uid;
            if !keep {
                worker.task.abort();
            }
            keep
        });
        lock(&self.results).retain(|key, _| key.0 != uid);
        lock(&self.events).remove(uid);
    }

    /// What the probes found for pod `uid` since the last call, as Events.
    pub fn drain_events(&self, uid: &str) -> Vec<RuntimeEvent> {
        lock(&self.events).remove(uid).unwrap_or_default()
    }

    fn event(&self, target: &Target, warning: bool, reason: &str, message: String) {
        let mut events = lock(&self.events);
        let queue = events.entry(target.uid.clone()).or_default();
        if queue.len() < 64 {
            queue.push(RuntimeEvent {
                container: Some(target.container.name.clone()),
                init: false,
                warning,
                reason: reason.to_owned(),
                message,
            });
        }
    }

    fn verdict(&self, key: &Key) -> Option<bool> {
        lock(&self.results).get(key).copied()
    }

    async fn work(self: Arc<Self>, key: Key, target: Target) {
        let probe = &target.probe;
        let period = seconds(probe.period_seconds, 10).max(Duration::from_secs(1));
        let success_threshold = probe.success_threshold.unwrap_or(1).max(1);
        let failure_threshold = probe.failure_threshold.unwrap_or(3).max(1);
        tokio::time::sleep(seconds(probe.initial_delay_seconds, 0)).await;
        let startup_key = (key.0.clone(), key.1.clone(), Kind::Startup);
        let (mut successes, mut failures) = (0, 0);
        loop {
            if target.waits_for_startup && self.verdict(&startup_key) != Some(true) {
                tokio::time::sleep(period).await;
                continue;
            }
            let outcome = check::run(
                probe,
                target.runtime.as_ref(),
                &target.uid,
                &target.container,
                target.pod_ip,
            )
            .await;
            match outcome {
                Outcome::Success => {
                    successes += 1;
                    failures = 0;
                    if successes >= success_threshold {
                        lock(&self.results).insert(key.clone(), true);
                        if target.kind == Kind::Startup {
                            // A started container is never probed for startup again.
                            return;
                        }
                    }
                }
                Outcome::Failure(reason) => {
                    failures += 1;
                    successes = 0;
                    tracing::info!(pod = %target.pod, container = %target.container.name, probe = target.kind.word(), %reason, "probe failed");
                    self.event(
                        &target,
                        true,
                        "Unhealthy",
                        format!("{} probe failed: {reason}", target.kind.word()),
                    );
                    if failures >= failure_threshold {
                        lock(&self.results).insert(key.clone(), false);
                        if target.kind != Kind::Readiness {
                            tracing::info!(pod = %target.pod, container = %target.container.name, "{} probe failed; restarting the container", target.kind.word());
                            self.event(
                                &target,
                                false,
                                "Killing",
                                format!(
                                    "Container {} failed {} probe, will be restarted",
                                    target.container.name,
                                    target.kind.word().to_lowercase()
                                ),
                            );
                            let stopped = target
                                .runtime
                                .kill_container(
                                    &target.uid,
                                    &target.container.name,
                                    target.kill_grace,
                                )
                                .await;
                            if let Err(e) = stopped {
                                tracing::warn!(pod = %target.pod, error = %e, "stopping an unhealthy container failed");
                            }
                            return;
                        }
                    }
                }
            }
            tokio::time::sleep(period).await;
        }
    }
}
