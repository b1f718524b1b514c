//! The scheduler: places pending pods on nodes as kube-scheduler does, as an
//! ordinary API client. Watches of nodes and pods feed the `informer`: a local
//! snapshot with per-node requested sums and the pending pods; pending pods are
//! decided one at a time by the filter/score plugins in `framework`, bound through
//! `pods/binding`, and assumed in the snapshot at once so the next decision
//! sees them. Pods no node fits get `PodScheduled=False` and a
//! `FailedScheduling` event with upstream's message, and are retried when the
//! cluster changes. Only the holder of the `kube-system/berth-scheduler`
//! Lease acts. It never writes anything but bindings, pod status and events.
//!
//! Scoring is LeastAllocated by default; label a pool's nodes
//! `berth.dev/scoring=most-allocated` to bin-pack pods onto them instead.

pub mod binder;
pub mod cache;
pub mod framework;
pub mod informer;
pub mod message;
pub mod metrics;
pub mod plugins;
pub mod preemption;
pub mod queue;
pub mod resources;
#[cfg(test)]
mod testing;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, PersistentVolume, PersistentVolumeClaim, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::Api;
use kube::runtime::{watcher, WatchStreamExt};
use rand::SeedableRng;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::leader_election::{LeaderElectionError, LeaderElector, LeaseConfig};
use binder::Nomination;
use framework::{schedule_pod, CycleState, Profile, ScheduleError};
use informer::Informer;
use metrics::{AttemptResult, SchedulerMetrics};
use plugins::volume_binding::prebind as volume_prebind;
use preemption::{Decision, PostFilter};

/// The Lease the schedulers of one cluster elect their leader with.
pub const LEASE_NAMESPACE: &str = "kube-system";
/// The Lease's name.
pub const LEASE_NAME: &str = "berth-scheduler";
/// Bindings (and failure reports) in flight at once; decisions keep going
/// while they complete, as upstream's asynchronous binding cycle.
const MAX_IN_FLIGHT: usize = 256;
/// Decisions made per wake-up before watch events get a turn again.
const DECISIONS_PER_TURN: usize = 64;

/// Why the scheduler stopped.
#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    /// The Lease could not be used.
    #[error("scheduler leader election: {0}")]
    LeaderElection(#[from] LeaderElectionError),
    /// A watch stream ended, which kube-rs watchers never do unless dropped.
    #[error("the scheduler's {0} watch ended unexpectedly; restart the scheduler")]
    WatchEnded(&'static str),
}

/// Runs the scheduler until `cancel` fires: waits for the Lease, then
/// schedules while it holds it. `identity` must be unique per process
/// (e.g. hostname plus a random suffix).
pub async fn run(
    client: kube::Client,
    identity: String,
    cancel: CancellationToken,
) -> Result<(), SchedulerError> {
    let config = LeaseConfig::new(LEASE_NAMESPACE, LEASE_NAME, &identity);
    let elector = LeaderElector::new(client.clone(), config);
    elector
        .run(cancel, |leading| {
            schedule_while_leading(client.clone(), identity.clone(), leading)
        })
        .await
}

/// Is this a pod the default scheduler must place?
pub fn is_pending_for_us(pod: &Pod) -> bool {
    let Some(spec) = pod.spec.as_ref() else {
        return false;
    };
    let unbound = spec.node_name.as_deref().unwrap_or("").is_empty();
    let ours = matches!(
        spec.scheduler_name.as_deref(),
        None | Some("") | Some(binder::SCHEDULER_NAME)
    );
    let finished = matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    );
    unbound && ours && !finished && pod.metadata.deletion_timestamp.is_none()
}

/// Carries out a preemption: each victim marked, deleted and told, then the
/// nominations of lower-priority pods on that node cleared. Failures are
/// logged: the preemptor is retried and preempts again if it must.
/// Returns the victims it could not preempt.
async fn carry_out(
    client: &kube::Client,
    preemptor: &Pod,
    decision: &Decision,
    identity: &str,
) -> Vec<String> {
    let mut failed = Vec::new();
    for victim in &decision.victims {
        if let Err(e) =
            preemption::writes::preempt_victim(client, preemptor, victim, &decision.node, identity)
                .await
        {
            let key = cache::pod_key(victim);
            tracing::warn!(victim = %key, error = %e, "could not preempt");
            failed.push(key);
        }
    }
    for (key, lower) in &decision.cleared {
        if let Err(e) = preemption::writes::clear_nomination(client, lower).await {
            tracing::debug!(pod = %key, error = %e, "could not clear a nomination");
        }
    }
    failed
}

/// What an in-flight write reports back to the loop.
enum Outcome {
    Bound,
    BindFailed {
        key: String,
        error: kube::Error,
    },
    /// The pod's volumes could not be bound (VolumeBinding's PreBind).
    PreBindFailed {
        key: String,
    },
    /// A failure was reported; `not_preempted` are victims whose preemption
    /// failed, so their preemptor may preempt again.
    Reported {
        not_preempted: Vec<String>,
    },
}

/// The leader's state: the informer, where the next decision starts, and the
/// writes in flight.
struct Loop {
    client: kube::Client,
    identity: String,
    informer: Informer,
    profile: Profile,
    next_start: usize,
    rng: rand::rngs::StdRng,
    tasks: JoinSet<Outcome>,
}

impl Loop {
    /// Decides for the next pending pod, if any.
    fn schedule_one(&mut self) {
        let Some(key) = self.informer.queue.pop() else {
            return;
        };
        // The informer keeps only pods pending for us, so no re-check of that.
        let Some(pod) = self.informer.pending_pod(&key) else {
            return;
        };
        if self.informer.snapshot.is_assumed(&key) {
            return;
        }
        let _span = tracing::debug_span!("schedule", pod = %key).entered();
        let started = Instant::now();
        let decision = schedule_pod(
            &self.profile,
            &self.informer.snapshot,
            &pod,
            &mut self.next_start,
            &mut self.rng,
        );
        let client = self.client.clone();
        let identity = self.identity.clone();
        match decision {
            Ok(node) => {
                let volumes = plugins::volume_binding::plan(&pod, &self.informer.snapshot, &node);
                self.informer.snapshot.assume(&pod, &node);
                self.informer.snapshot.nominator_mut().remove(&key);
                self.tasks.spawn(async move {
                    if !volumes.is_empty() {
                        let bound = volume_prebind::bind_volumes(&client, &volumes, &node).await;
                        if let Err(e) = bound {
                            let message = format!("running PreBind plugin \"VolumeBinding\": {e}");
                            tracing::info!(pod = %key, %message, "volume binding failed");
                            let event = binder::event(&pod, "Warning", "FailedScheduling", &message, &identity);
                            if let Err(e) = binder::record(&client, &event).await {
                                tracing::debug!(error = %e, "could not record the FailedScheduling event");
                            }
                            return Outcome::PreBindFailed { key };
                        }
                    }
                    if let Err(error) = binder::bind(&client, &pod, &node).await {
                        SchedulerMetrics::global().attempt(AttemptResult::Error, started.elapsed());
                        return Outcome::BindFailed { key, error };
                    }
                    SchedulerMetrics::global().attempt(AttemptResult::Scheduled, started.elapsed());
                    let message = format!("Successfully assigned {key} to {node}");
                    let event = binder::event(&pod, "Normal", "Scheduled", &message, &identity);
                    if let Err(e) = binder::record(&client, &event).await {
                        tracing::debug!(error = %e, "could not record the Scheduled event");
                    }
                    Outcome::Bound
                });
            }
            Err(error) => {
                let priority = preemption::priority(&pod);
                self.informer.queue.park(&key, priority, Instant::now());
                let (reason, result) = match error {
                    ScheduleError::Plugin { .. } => ("SchedulerError", AttemptResult::Error),
                    _ => ("Unschedulable", AttemptResult::Unschedulable),
                };
                let (message, nomination, decision) = self.post_filter(&key, &pod, error);
                SchedulerMetrics::global().attempt(result, started.elapsed());
                tracing::debug!(pod = %key, %message, "unschedulable");
                self.tasks.spawn(async move {
                    let not_preempted = match decision {
                        Some(decision) => carry_out(&client, &pod, &decision, &identity).await,
                        None => Vec::new(),
                    };
                    if let Err(e) =
                        binder::mark_unschedulable(&client, &pod, reason, &message, &nomination)
                            .await
                    {
                        tracing::debug!(error = %e, "could not set PodScheduled=False");
                    }
                    let event =
                        binder::event(&pod, "Warning", "FailedScheduling", &message, &identity);
                    if let Err(e) = binder::record(&client, &event).await {
                        tracing::debug!(error = %e, "could not record the FailedScheduling event");
                    }
                    Outcome::Reported { not_preempted }
                });
            }
        }
    }

    /// Runs preemption for a pod no node fits (the PostFilter step) and
    /// applies its decision to the snapshot at once: the nomination, the
    /// victims, the cleared nominations. Returns the message, the
    /// nomination to write and the preemption to carry out.
    fn post_filter(
        &mut self,
        key: &str,
        pod: &Arc<Pod>,
        error: ScheduleError,
    ) -> (String, Nomination, Option<Decision>) {
        let ScheduleError::Unschedulable(mut fit) = error else {
            return (error.to_string(), Nomination::Keep, None);
        };
        let snapshot = &self.informer.snapshot;
        let state = CycleState::new(pod, snapshot);
        let budgets = self.informer.budgets();
        let post = preemption::post_filter(&self.profile, &state, snapshot, &budgets);
        // Upstream counts an attempt once the pod may preempt at all.
        match &post {
            PostFilter::Nominated(decision) => {
                SchedulerMetrics::global().preemption(Some(decision.victims.len()))
            }
            PostFilter::NoCandidates(_) => SchedulerMetrics::global().preemption(None),
            PostFilter::NotEligible(_) => {}
        }
        let snapshot = &mut self.informer.snapshot;
        match post {
            PostFilter::Nominated(decision) => {
                fit.preemption = None;
                snapshot
                    .nominator_mut()
                    .nominate(key, pod.clone(), &decision.node);
                for victim in &decision.victims {
                    snapshot.mark_preempted(&cache::pod_key(victim));
                }
                for (lower, _) in &decision.cleared {
                    snapshot.nominator_mut().remove(lower);
                }
                tracing::info!(
                    pod = %key,
                    node = %decision.node,
                    victims = decision.victims.len(),
                    "preempting lower-priority pods"
                );
                let node = decision.node.to_string();
                (fit.to_string(), Nomination::Set(node), Some(decision))
            }
            PostFilter::NotEligible(reason) => {
                fit.preemption = Some(reason.to_owned());
                (fit.to_string(), Nomination::Keep, None)
            }
            PostFilter::NoCandidates(sentence) => {
                if sentence.is_some() {
                    fit.preemption = sentence;
                }
                snapshot.nominator_mut().remove(key);
                (fit.to_string(), Nomination::Clear, None)
            }
        }
    }

    fn on_outcome(&mut self, outcome: Outcome) {
        if let Outcome::Reported { not_preempted } = &outcome {
            for key in not_preempted {
                self.informer.snapshot.unmark_preempted(key);
            }
        }
        if let Outcome::PreBindFailed { key } = &outcome {
            self.informer.snapshot.forget(key);
            let priority = self
                .informer
                .pending_pod(key)
                .map_or(0, |p| preemption::priority(&p));
            self.informer.queue.park(key, priority, Instant::now());
            self.informer.queue.cluster_changed();
        }
        if let Outcome::BindFailed { key, error } = outcome {
            self.informer.snapshot.forget(&key);
            match &error {
                kube::Error::Api(status) if status.code == 409 || status.code == 404 => {
                    tracing::debug!(pod = %key, %error, "binding refused; the watch will tell");
                }
                _ => {
                    tracing::warn!(pod = %key, %error, "binding failed; retrying");
                    let priority = self
                        .informer
                        .pending_pod(&key)
                        .map_or(0, |p| preemption::priority(&p));
                    self.informer.queue.park(&key, priority, Instant::now());
                    self.informer.queue.cluster_changed();
                }
            }
        }
    }
}

async fn schedule_while_leading(
    client: kube::Client,
    identity: String,
    cancel: CancellationToken,
) -> Result<(), SchedulerError> {
    // No kube-runtime reflector stores: the informer is the cache, and a
    // reflector would keep (and copy) every object a second time.
    let mut nodes = watcher(Api::<Node>::all(client.clone()), watcher::Config::default())
        .default_backoff()
        .boxed();
    let mut pods = watcher(Api::<Pod>::all(client.clone()), watcher::Config::default())
        .default_backoff()
        .boxed();
    let mut budgets = watcher(
        Api::<PodDisruptionBudget>::all(client.clone()),
        watcher::Config::default(),
    )
    .default_backoff()
    .boxed();
    let mut claims = watcher(
        Api::<PersistentVolumeClaim>::all(client.clone()),
        watcher::Config::default(),
    )
    .default_backoff()
    .boxed();
    let mut volumes = watcher(
        Api::<PersistentVolume>::all(client.clone()),
        watcher::Config::default(),
    )
    .default_backoff()
    .boxed();
    let mut classes = watcher(
        Api::<StorageClass>::all(client.clone()),
        watcher::Config::default(),
    )
    .default_backoff()
    .boxed();
    let mut state = Loop {
        client,
        identity,
        informer: Informer::default(),
        profile: Profile::default(),
        next_start: 0,
        rng: rand::rngs::StdRng::from_os_rng(),
        tasks: JoinSet::new(),
    };
    let mut ready = false;
    let mut flush = tokio::time::interval(Duration::from_millis(250));
    flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tracing::info!("scheduler started; waiting for the node and pod caches");
    loop {
        let can_decide =
            ready && state.informer.queue.has_active() && state.tasks.len() < MAX_IN_FLIGHT;
        tokio::select! {
            _ = cancel.cancelled() => break,
            event = nodes.next() => match event {
                Some(Ok(event)) => state.informer.on_node(event),
                Some(Err(e)) => tracing::warn!(error = %e, "node watch"),
                None => return Err(SchedulerError::WatchEnded("node")),
            },
            event = pods.next() => match event {
                Some(Ok(event)) => state.informer.on_pod(event),
                Some(Err(e)) => tracing::warn!(error = %e, "pod watch"),
                None => return Err(SchedulerError::WatchEnded("pod")),
            },
            event = budgets.next() => match event {
                Some(Ok(event)) => state.informer.on_budget(event),
                Some(Err(e)) => tracing::warn!(error = %e, "PodDisruptionBudget watch"),
                None => return Err(SchedulerError::WatchEnded("PodDisruptionBudget")),
            },
            event = claims.next() => match event {
                Some(Ok(event)) => state.informer.on_claim(event),
                Some(Err(e)) => tracing::warn!(error = %e, "PersistentVolumeClaim watch"),
                None => return Err(SchedulerError::WatchEnded("PersistentVolumeClaim")),
            },
            event = volumes.next() => match event {
                Some(Ok(event)) => state.informer.on_volume(event),
                Some(Err(e)) => tracing::warn!(error = %e, "PersistentVolume watch"),
                None => return Err(SchedulerError::WatchEnded("PersistentVolume")),
            },
            event = classes.next() => match event {
                Some(Ok(event)) => state.informer.on_storage_class(event),
                Some(Err(e)) => tracing::warn!(error = %e, "StorageClass watch"),
                None => return Err(SchedulerError::WatchEnded("StorageClass")),
            },
            Some(done) = state.tasks.join_next(), if !state.tasks.is_empty() => {
                if let Ok(outcome) = done {
                    state.on_outcome(outcome);
                }
            }
            _ = flush.tick() => {
                let now = Instant::now();
                state.informer.queue.flush(now);
                SchedulerMetrics::global().pending(state.informer.queue.lengths(now));
            }
            _ = std::future::ready(()), if can_decide => {
                for _ in 0..DECISIONS_PER_TURN {
                    if state.tasks.len() >= MAX_IN_FLIGHT || !state.informer.queue.has_active() {
                        break;
                    }
                    state.schedule_one();
                }
            }
        }
        if !ready {
            // STYLE 15: no decision before both caches have completed their first list.
            ready = state.informer.is_ready();
            if ready {
                tracing::info!(
                    nodes = state.informer.snapshot.nodes().len(),
                    "scheduler caches ready"
                );
            }
        }
    }
    let drain = async { while state.tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(Duration::from_secs(5), drain)
        .await
        .is_err()
    {
        state.tasks.shutdown().await;
    }
    tracing::info!("scheduler stopped");
    Ok(())
}

/// A holder identity unique to this process: host name, pid and a random suffix.
pub fn default_identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "berth".to_owned());
    format!(
        "{host}_{}_{:08x}",
        std::process::id(),
        rand::random::<u32>()
    )
}

/// Runs the scheduler until `cancel` fires, restarting it 5 s after a
/// failure (as `controllers::supervise` does for controllers), for the
/// in-process scheduler of `berth server`.
pub async fn run_restarting(client: kube::Client, identity: String, cancel: CancellationToken) {
    loop {
        match run(client.clone(), identity.clone(), cancel.clone()).await {
            Ok(()) => return,
            Err(e) => tracing::error!(error = %e, "scheduler stopped; restarting in 5s"),
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(5)) => {}
        }
    }
}
