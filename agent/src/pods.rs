//! The pod loop: one watch over the pods bound to this process's nodes
//! (`spec.nodeName=N` for one node, every bound pod for many, dispatched by
//! `spec.nodeName`), reconciled level-triggered against the runtime: start
//! what should run and report it through `pods/status`; stop what is being
//! deleted and finish the deletion; clean up what the API no longer has.
//!
//! The API object is the state. An agent that restarts with an empty runtime
//! (the simulated one lives in memory) finds its Running pods missing there
//! and simply starts them again, keeping their IPs when it can.

pub mod dns;
pub mod env;
pub mod gpus;
pub mod spec;
pub mod status;
pub mod volumes;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolume, PersistentVolumeClaim, Pod, Secret};
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions};
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::reflector::Store;
use kube::runtime::watcher;
use kube::ResourceExt;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::probes;
use crate::runtime::{RuntimeError, RuntimeEvent};
use crate::{lock, AgentError, AgentOptions, Nodes};
use berth_observability::events::{object_reference, EventType, Recorder};
use berth_observability::propagation;
use tracing::Instrument;

/// Grace period when a deleting pod names none (upstream's default).
const DEFAULT_GRACE_SECONDS: i64 = 30;

struct Context {
    client: kube::Client,
    nodes: Arc<Nodes>,
    /// Event recorders of the nodes that run real processes, by node name
    /// (simulated nodes record none, as hollow nodes should not flood the API).
    recorders: HashMap<String, Recorder>,
    resync: Duration,
    /// Consecutive failures per pod UID, for exponential backoff.
    failures: Mutex<HashMap<String, u32>>,
    /// The ConfigMaps and Secrets each pod's spec resolved against, kept
    /// for [`LOOKUP_TTL`] so a pod synced every second does not GET them
    /// every second; a pod whose spec did not resolve fetches afresh.
    lookups: Mutex<HashMap<String, (std::time::Instant, Arc<spec::Lookups>)>>,
}

/// How long resolved ConfigMaps and Secrets are reused for one pod.
const LOOKUP_TTL: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
enum PodError {
    #[error("{0}")]
    Api(#[from] kube::Error),
    #[error("{0}")]
    Runtime(#[from] RuntimeError),
    #[error("{0}")]
    Spec(#[from] spec::SpecError),
    #[error("{0}")]
    Mount(#[from] crate::volumes::claims::MountError),
}

/// The field selector of the pod watch: one node's pods, or every bound pod.
fn field_selector(nodes: &Nodes) -> String {
    match nodes.single() {
        Some(only) => format!("spec.nodeName={}", only.name()),
        None => "spec.nodeName!=".to_owned(),
    }
}

fn is_finished(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

/// Stops a deleting pod in the runtime, then deletes it with grace 0 so the
/// API server removes it: kubelet's half of graceful deletion.
async fn finish_deletion(
    api: &Api<Pod>,
    node: &crate::NodeHandle,
    recorder: Option<&Recorder>,
    pod: &Pod,
    uid: &str,
) -> Result<(), PodError> {
    let grace = pod
        .metadata
        .deletion_grace_period_seconds
        .unwrap_or(DEFAULT_GRACE_SECONDS)
        .max(0);
    let grace = Duration::from_secs(grace.unsigned_abs());
    if let Some(recorder) = recorder {
        let stopping = pod
            .spec
            .iter()
            .flat_map(|s| s.containers.iter())
            .map(|c| RuntimeEvent {
                container: Some(c.name.clone()),
                init: false,
                warning: false,
                reason: "Killing".into(),
                message: format!("Stopping container {}", c.name),
            });
        record(recorder, pod, stopping.collect()).await;
    }
    let spent = run_pre_stop_hooks(node, pod, uid, grace).await;
    node.runtime
        .stop_pod(uid, grace.saturating_sub(spent))
        .await?;
    let params = DeleteParams {
        grace_period_seconds: Some(0),
        preconditions: Some(Preconditions {
            uid: Some(uid.to_owned()),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    match api.delete(&pod.name_any(), &params).await {
        Ok(_) => {}
        // Already gone, or a new pod of the same name: ours is deleted either way.
        Err(kube::Error::Api(status)) if status.code == 404 || status.code == 409 => {}
        Err(e) => return Err(e.into()),
    }
    node.runtime.remove_pod(uid).await?;
    tracing::info!(pod = %format!("{}/{}", pod.namespace().unwrap_or_default(), pod.name_any()), node = node.name(), "pod stopped and deleted");
    Ok(())
}

/// Runs the preStop hooks of the pod's containers, all at once, within the
/// grace period; returns the time they took (the stop gets the rest).
async fn run_pre_stop_hooks(
    node: &crate::NodeHandle,
    pod: &Pod,
    uid: &str,
    grace: Duration,
) -> Duration {
    let started = std::time::Instant::now();
    if !node.runtime.runs_processes() || grace.is_zero() {
        return Duration::ZERO;
    }
    let pod_ip = pod
        .status
        .as_ref()
        .and_then(|s| s.pod_ip.as_deref())
        .and_then(|ip| ip.parse().ok());
    let containers = pod.spec.iter().flat_map(|s| s.containers.iter());
    let hooks = containers.filter_map(|container| {
        let hook = container.lifecycle.as_ref()?.pre_stop.clone()?;
        Some(async move {
            if let Some(sleep) = &hook.sleep {
                let pause = Duration::from_secs(sleep.seconds.max(0).unsigned_abs());
                tokio::time::sleep(pause.min(grace)).await;
                return;
            }
            let probe = k8s_openapi::api::core::v1::Probe {
                exec: hook.exec,
                http_get: hook.http_get,
                tcp_socket: hook.tcp_socket,
                timeout_seconds: i32::try_from(grace.as_secs()).ok(),
                ..Default::default()
            };
            let outcome = probes::check::run(&probe, node.runtime.as_ref(), uid, container, pod_ip).await;
            if let probes::check::Outcome::Failure(reason) = outcome {
                tracing::info!(pod = %pod.name_any(), container = %container.name, %reason, "preStop hook failed");
            }
        })
    });
    let hooks: Vec<_> = hooks.collect();
    if hooks.is_empty() {
        return Duration::ZERO;
    }
    let _ = tokio::time::timeout(grace, futures::future::join_all(hooks)).await;
    started.elapsed()
}

/// Syncs one pod, timing it in `kubelet_pod_worker_duration_seconds`.
async fn reconcile(pod: Arc<Pod>, ctx: Arc<Context>) -> Result<Action, PodError> {
    let started = std::time::Instant::now();
    let node = pod
        .spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .and_then(|name| ctx.nodes.get(name))
        .cloned();
    let operation = worker_operation(&pod);
    let outcome = sync(pod, ctx).await;
    if let Some(node) = node {
        node.metrics
            .observe_pod_worker(operation, started.elapsed());
    }
    outcome
}

/// kubelet's name for what its pod worker does with `pod`: `kill` a
/// deleted one, `create` one not running yet, else `update`.
fn worker_operation(pod: &Pod) -> &'static str {
    let started = pod
        .status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .is_some_and(|phase| phase != "Pending");
    if pod.metadata.deletion_timestamp.is_some() {
        "kill"
    } else if started {
        "update"
    } else {
        "create"
    }
}

/// How long ago `pod` was created, for `kubelet_pod_start_duration_seconds`.
fn since_creation(pod: &Pod) -> Option<Duration> {
    let created = pod.metadata.creation_timestamp.as_ref()?.0;
    let elapsed = Timestamp::now().duration_since(created);
    Duration::try_from(elapsed).ok()
}

async fn sync(pod: Arc<Pod>, ctx: Arc<Context>) -> Result<Action, PodError> {
    let span = start_span(&pod);
    sync_pass(pod, ctx).instrument(span).await
}

/// A span, continuing the pod's trace, for the passes that start it (not
/// yet running); none for the many passes that keep a running pod in sync.
fn start_span(pod: &Pod) -> tracing::Span {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    let bound = pod.spec.as_ref().is_some_and(|s| s.node_name.is_some());
    let starting = bound
        && pod.metadata.deletion_timestamp.is_none()
        && !matches!(phase, Some("Running" | "Succeeded" | "Failed"));
    if !starting {
        return tracing::Span::none();
    }
    propagation::object_span(
        "agent",
        "start-pod",
        &pod.name_any(),
        pod.metadata.annotations.as_ref(),
    )
}

async fn sync_pass(pod: Arc<Pod>, ctx: Arc<Context>) -> Result<Action, PodError> {
    let Some(node) = pod
        .spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .and_then(|name| ctx.nodes.get(name))
    else {
        return Ok(Action::await_change());
    };
    let Some(uid) = pod.metadata.uid.clone() else {
        return Ok(Action::await_change());
    };
    let namespace = pod.namespace().unwrap_or_default();
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &namespace);

    if pod.metadata.deletion_timestamp.is_some() {
        lock(&ctx.lookups).remove(&uid);
        node.prober.forget(&uid);
        finish_deletion(&api, node, ctx.recorders.get(node.name()), &pod, &uid).await?;
        node.gpus.release(&uid);
        lock(&ctx.failures).remove(&uid);
        return Ok(Action::await_change());
    }
    if is_finished(&pod) {
        return Ok(Action::await_change());
    }

    let cached = lock(&ctx.lookups)
        .get(&uid)
        .filter(|(at, _)| at.elapsed() < LOOKUP_TTL)
        .map(|(_, lookups)| Arc::clone(lookups));
    let fresh = cached.is_none();
    let lookups = match cached {
        Some(lookups) => lookups,
        None => Arc::new(fetch_lookups(&ctx.client, &pod, &namespace).await?),
    };
    if let Err(error) = mount_claims(&pod, &lookups, node).await {
        lock(&ctx.lookups).remove(&uid);
        if let Some(recorder) = ctx.recorders.get(node.name()) {
            let message = capitalized(&error.0);
            recorder
                .record(pod.as_ref(), EventType::Warning, "FailedMount", &message)
                .await;
        }
        // A pod already running keeps its mounts, as kubelet's; it just waits.
        if !crate::volumes::claims::has_started(&pod) {
            report_waiting(&api, &pod, "ContainerCreating", &error.0).await?;
        }
        return Err(error.into());
    }
    let host_ip = node.config.internal_ip;
    let config =
        spec::sandbox_config(&pod, &lookups, &host_ip.to_string()).and_then(|mut config| {
            node.gpus.assign(&pod, &mut config)?;
            config.dns = node.config.dns.as_ref().map(|dns| dns::pod_dns(&pod, dns));
            Ok(config)
        });
    let config = match config {
        Ok(config) => config,
        Err(error) => {
            lock(&ctx.lookups).remove(&uid);
            report_waiting(&api, &pod, "CreateContainerConfigError", &error.0).await?;
            return Err(error.into());
        }
    };
    if fresh {
        lock(&ctx.lookups).insert(
            uid.clone(),
            (std::time::Instant::now(), Arc::clone(&lookups)),
        );
    }
    let synced = node.runtime.sync_pod(&config).await;
    if let Some(recorder) = ctx.recorders.get(node.name()) {
        // Recorded before the error returns, so a sandbox that cannot be
        // made (FailedCreatePodSandBox) tells the user why the pod waits.
        record(recorder, &pod, node.runtime.drain_events(&uid)).await;
    }
    let state = synced?;
    let health = if node.runtime.runs_processes() {
        node.prober.sync(&node.runtime, &pod, &state);
        node.prober.health(&uid)
    } else {
        probes::PodHealth::default()
    };
    if let Some(recorder) = ctx.recorders.get(node.name()) {
        record(recorder, &pod, node.prober.drain_events(&uid)).await;
    }
    let desired = status::pod_status(&pod, &state, &health, host_ip, Timestamp::now());
    let was_running = pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running");
    if !was_running && desired.phase.as_deref() == Some("Running") {
        if let Some(took) = since_creation(&pod) {
            node.metrics.observe_pod_start(took);
        }
    }
    if !status::status_matches(pod.status.as_ref(), &desired) {
        if pod
            .status
            .as_ref()
            .and_then(|s| s.pod_ip.as_ref())
            .is_none()
            && desired.pod_ip.is_some()
        {
            tracing::info!(pod = %format!("{namespace}/{}", pod.name_any()), node = node.name(), ip = ?state.ip, "pod started");
        }
        api.patch_status(
            &pod.name_any(),
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": desired })),
        )
        .await?;
    }
    lock(&ctx.failures).remove(&uid);
    if matches!(desired.phase.as_deref(), Some("Succeeded" | "Failed")) {
        lock(&ctx.lookups).remove(&uid);
        node.prober.forget(&uid);
        node.gpus.release(&uid);
        // A finished pod keeps its exited containers (for logs) but not its sandbox.
        node.runtime.stop_pod(&uid, Duration::ZERO).await?;
        return Ok(Action::await_change());
    }
    let every = node
        .runtime
        .poll_interval()
        .map_or(ctx.resync, |poll| poll.min(ctx.resync));
    let every = node
        .runtime
        .next_change(&uid)
        .map_or(every, |at| at.min(every));
    Ok(Action::requeue(every))
}

/// Records what happened to `pod` as Events on it, naming the container in
/// `fieldPath` as kubelet does.
async fn record(recorder: &Recorder, pod: &Pod, happened: Vec<RuntimeEvent>) {
    for event in happened {
        let mut involved = object_reference(pod);
        involved.field_path = event.container.as_ref().map(|name| {
            let list = if event.init {
                "initContainers"
            } else {
                "containers"
            };
            format!("spec.{list}{{{name}}}")
        });
        let kind = if event.warning {
            EventType::Warning
        } else {
            EventType::Normal
        };
        recorder
            .record_reference(involved, kind, &event.reason, &event.message)
            .await;
    }
}

/// Resolves the pod's claims to their bound volumes and, on a node that
/// runs real containers, makes sure their directories are there (creating
/// this node's `local-path` ones); simulated nodes resolve but mount nothing.
async fn mount_claims(
    pod: &Pod,
    lookups: &spec::Lookups,
    node: &crate::NodeHandle,
) -> Result<(), crate::volumes::claims::MountError> {
    let mounts = crate::volumes::claims::resolve(
        pod,
        &lookups.persistent_volume_claims,
        &lookups.persistent_volumes,
    )?;
    if mounts.is_empty() || !node.runtime.runs_processes() {
        return Ok(());
    }
    tokio::task::spawn_blocking(move || {
        mounts
            .iter()
            .try_for_each(crate::volumes::local_path::ensure)
    })
    .await
    .unwrap_or_else(|e| {
        Err(crate::volumes::claims::MountError(format!(
            "preparing volumes panicked: {e}"
        )))
    })
}

/// `text` with its first letter upper-case, as kubelet words events whose
/// error text starts lower-case.
fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_uppercase().chain(chars).collect()
    })
}

/// The ConfigMaps, Secrets, claims and claimed volumes `pod` refers to;
/// none are fetched for a pod that refers to none (every simulated pod).
async fn fetch_lookups(
    client: &kube::Client,
    pod: &Pod,
    namespace: &str,
) -> Result<spec::Lookups, PodError> {
    let (config_maps, secrets) = spec::referenced_names(pod);
    let mut lookups = spec::Lookups::default();
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    for name in config_maps {
        if let Some(map) = maps.get_opt(&name).await? {
            lookups.config_maps.insert(name, map);
        }
    }
    let secret_api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    for name in secrets {
        if let Some(secret) = secret_api.get_opt(&name).await? {
            lookups.secrets.insert(name, secret);
        }
    }
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), namespace);
    let volumes: Api<PersistentVolume> = Api::all(client.clone());
    for name in crate::volumes::claims::claim_names(pod) {
        let Some(claim) = claims.get_opt(&name).await? else {
            continue;
        };
        let bound = claim.spec.as_ref().and_then(|s| s.volume_name.clone());
        if let Some(volume) = bound.filter(|v| !v.is_empty()) {
            if let Some(found) = volumes.get_opt(&volume).await? {
                lookups.persistent_volumes.insert(volume, found);
            }
        }
        lookups.persistent_volume_claims.insert(name, claim);
    }
    Ok(lookups)
}

/// Shows why a pod cannot run yet on every container not yet started:
/// kubelet's `CreateContainerConfigError` (a missing ConfigMap) or
/// `ContainerCreating` (volumes not mounted yet, with the reason as message).
async fn report_waiting(
    api: &Api<Pod>,
    pod: &Pod,
    reason: &str,
    message: &str,
) -> Result<(), PodError> {
    let waiting = |name: &str| {
        json!({
            "name": name,
            "image": "",
            "imageID": "",
            "ready": false,
            "restartCount": 0,
            "state": {"waiting": {"reason": reason, "message": message}}
        })
    };
    let spec = pod.spec.clone().unwrap_or_default();
    let statuses: Vec<_> = spec.containers.iter().map(|c| waiting(&c.name)).collect();
    let current = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref());
    let already = current.is_some_and(|list| {
        list.iter().all(|c| {
            c.state
                .as_ref()
                .and_then(|s| s.waiting.as_ref())
                .is_some_and(|w| {
                    w.reason.as_deref() == Some(reason) && w.message.as_deref() == Some(message)
                })
        })
    });
    if !already {
        let patch = json!({"status": {"phase": "Pending", "containerStatuses": statuses}});
        api.patch_status(
            &pod.name_any(),
            &PatchParams::default(),
            &Patch::Merge(patch),
        )
        .await?;
    }
    Ok(())
}

fn error_policy(pod: Arc<Pod>, error: &PodError, ctx: Arc<Context>) -> Action {
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let attempt = {
        let mut failures = lock(&ctx.failures);
        let count = failures.entry(uid).or_insert(0);
        *count = count.saturating_add(1);
        *count
    };
    let delay = Duration::from_millis(250)
        .saturating_mul(1 << attempt.min(8))
        .min(Duration::from_secs(30));
    tracing::warn!(pod = %format!("{}/{}", pod.namespace().unwrap_or_default(), pod.name_any()), %error, attempt, "pod sync failed; retrying in {delay:?}");
    Action::requeue(delay)
}

/// Stops and removes runtime pods whose Pod the API no longer has (deleted
/// with grace 0 by someone else, or while the agent was down).
async fn housekeeping(store: &Store<Pod>, nodes: &Nodes) {
    let known: HashSet<String> = store
        .state()
        .iter()
        .filter_map(|pod| pod.metadata.uid.clone())
        .collect();
    for node in nodes.iter() {
        let running = match node.runtime.list_pods().await {
            Ok(pods) => pods,
            Err(e) => {
                tracing::warn!(node = node.name(), error = %e, "listing runtime pods failed");
                continue;
            }
        };
        for orphan in running.iter().filter(|p| !known.contains(&p.uid)) {
            let outcome = async {
                node.runtime.stop_pod(&orphan.uid, Duration::ZERO).await?;
                node.runtime.remove_pod(&orphan.uid).await
            }
            .await;
            node.gpus.release(&orphan.uid);
            match outcome {
                Ok(()) => {
                    tracing::info!(pod = %format!("{}/{}", orphan.namespace, orphan.name), node = node.name(), "removed a pod the API no longer has")
                }
                Err(e) => {
                    tracing::warn!(node = node.name(), error = %e, "removing an orphaned pod failed")
                }
            }
        }
    }
}

/// Runs the pod loop for every node in `nodes` until `cancel` fires.
pub async fn run(
    client: kube::Client,
    nodes: Arc<Nodes>,
    options: Arc<AgentOptions>,
    cancel: CancellationToken,
) -> Result<(), AgentError> {
    let api: Api<Pod> = Api::all(client.clone());
    let watch = watcher::Config::default().fields(&field_selector(&nodes));
    let controller = Controller::new(api, watch)
        .with_config(controller::Config::default().concurrency(options.pod_workers));
    let store = controller.store();
    let recorders = nodes
        .iter()
        .filter(|node| node.runtime.runs_processes())
        .map(|node| {
            let recorder = Recorder::new(client.clone(), "kubelet").with_host(node.name());
            (node.name().to_owned(), recorder)
        })
        .collect();
    let context = Arc::new(Context {
        recorders,
        client,
        nodes: Arc::clone(&nodes),
        resync: options.pod_resync,
        failures: Mutex::new(HashMap::new()),
        lookups: Mutex::new(HashMap::new()),
    });
    let shutdown = cancel.clone();
    let pods = controller
        .graceful_shutdown_on(async move { shutdown.cancelled().await })
        .run(reconcile, error_policy, context)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "pod loop event");
            }
        });
    let cleanup = async {
        // A half-filled cache would make every pod look deleted.
        tokio::select! {
            _ = cancel.cancelled() => return,
            ready = store.wait_until_ready() => if ready.is_err() { return },
        }
        let mut ticker = tokio::time::interval(options.housekeeping_interval);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = ticker.tick() => housekeeping(&store, &nodes).await,
            }
        }
    };
    tokio::join!(pods, cleanup);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::NodeConfig;
    use crate::runtime::simulated::{SimulatedConfig, SimulatedRuntime};
    use crate::NodeHandle;

    fn nodes(names: &[&str]) -> Nodes {
        Nodes::new(
            names
                .iter()
                .enumerate()
                .map(|(i, name)| {
                    let runtime = SimulatedRuntime::new(SimulatedConfig::default()).unwrap();
                    NodeHandle::new(NodeConfig::new(*name, i as u32), Arc::new(runtime))
                })
                .collect(),
        )
        .unwrap()
    }

    #[test]
    fn one_node_watches_its_own_pods_and_many_watch_all_bound_pods() {
        assert_eq!(field_selector(&nodes(&["n1"])), "spec.nodeName=n1");
        assert_eq!(field_selector(&nodes(&["a", "b"])), "spec.nodeName!=");
    }

    #[test]
    fn duplicate_node_names_are_refused() {
        let runtime = || Arc::new(SimulatedRuntime::new(SimulatedConfig::default()).unwrap());
        let error = Nodes::new(vec![
            NodeHandle::new(NodeConfig::new("a", 0), runtime()),
            NodeHandle::new(NodeConfig::new("a", 1), runtime()),
        ])
        .err()
        .unwrap();
        assert!(matches!(error, AgentError::DuplicateNode(name) if name == "a"));
    }
}
