//! The service controller's loop: a kube-rs Controller over Services,
//! woken for every Service when nodes change, that follows the [`plan`]
//! (finalizer, ensure or update through the provider, status, clean-up),
//! records an Event for every step and retries failures with per-Service
//! exponential back-off. It reads the world on each pass; the only memory it
//! keeps is what it last told each provider, which a restart may lose.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use berth_observability::events::{EventType, Recorder};
use berth_observability::workqueue::RunWithWorkqueue;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{LoadBalancerStatus, Node, Service};
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::{self, reflector, Store};
use kube::runtime::{watcher, Controller, WatchStreamExt};
use kube::{Api, ResourceExt};
use tokio_util::sync::CancellationToken;

use crate::nodes::{self, TargetNode};
use crate::plan::{plan, Plan, Synced};
use crate::provider::{LoadBalancerProvider, ProviderError};
use crate::service::{self, Classes, FINALIZER};

/// The providers Services may pick, by name.
pub type Providers = BTreeMap<String, Arc<dyn LoadBalancerProvider>>;

/// The component name on Events, Leases and logs.
pub const COMPONENT: &str = "service-controller";

/// Who is answered and how failures are retried.
#[derive(Debug, Clone)]
pub struct Config {
    /// The provider of Services without a class; None leaves them to
    /// another controller.
    pub default_provider: Option<String>,
    /// The first retry after a failure (upstream: 5 s).
    pub retry_base: Duration,
    /// The longest wait between retries (upstream: 5 min).
    pub retry_max: Duration,
    /// How often a Service in sync is looked at anyway.
    pub resync: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            default_provider: None,
            retry_base: Duration::from_secs(5),
            retry_max: Duration::from_secs(300),
            resync: Duration::from_secs(300),
        }
    }
}

/// Why a reconcile failed; it is retried with back-off.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// The API answered an error.
    #[error("API request failed: {0}")]
    Kube(#[from] kube::Error),
    /// The provider failed.
    #[error(transparent)]
    Provider(#[from] ProviderError),
    /// The Service cannot be balanced as it is; only its owner can fix it.
    #[error("{0}")]
    Unservable(String),
}

struct Context {
    client: kube::Client,
    providers: Providers,
    classes: Classes,
    config: Config,
    recorder: Recorder,
    nodes: Store<Node>,
    /// What each provider was last told, by Service key.
    synced: Mutex<BTreeMap<String, Synced>>,
    /// Consecutive failures, by Service key, for the back-off.
    failures: Mutex<BTreeMap<String, Failures>>,
    /// The Services cache of the controller, for the one-time adoption.
    services: Store<Service>,
    /// Set once every provider has adopted its existing balancers.
    adopted: tokio::sync::OnceCell<()>,
}

/// Runs the service controller until `cancel` fires.
pub async fn run(
    client: kube::Client,
    providers: Providers,
    config: Config,
    cancel: CancellationToken,
) {
    let classes = Classes {
        default: config.default_provider.clone(),
        providers: providers.keys().cloned().collect(),
    };
    let metrics = crate::metrics::LoadBalancerMetrics::global();
    let providers: Providers = providers
        .into_iter()
        .map(|(name, provider)| (name, metrics.wrap(provider)))
        .collect();
    let (nodes, writer) = reflector::store();
    let node_changes = reflector(
        writer,
        watcher(Api::<Node>::all(client.clone()), watcher::Config::default()),
    )
    .default_backoff()
    .applied_objects()
    .filter_map(|node| async move { node.ok().map(|_| ()) });
    // The node cache is filled by its own task and awaited here, once:
    // kube-runtime 5 wakes only the last of several tasks waiting on a
    // store's readiness, so reconciles that each waited for it stalled.
    let (node_trigger, node_triggers) = tokio::sync::mpsc::channel::<()>(1);
    let node_watch = tokio::spawn(node_changes.for_each(move |()| {
        // A full channel already holds a wake-up: changes coalesce.
        let _ = node_trigger.try_send(());
        async {}
    }));
    let _node_watch = AbortOnDrop(node_watch);
    tokio::select! {
        ready = nodes.wait_until_ready() => if ready.is_err() { return },
        () = cancel.cancelled() => return,
    }
    tracing::info!(providers = ?classes.providers, default = ?classes.default, "service controller starting");
    let controller = Controller::new(
        Api::<Service>::all(client.clone()),
        watcher::Config::default(),
    );
    let ctx = Arc::new(Context {
        recorder: Recorder::new(client.clone(), COMPONENT),
        client: client.clone(),
        providers,
        classes,
        config,
        nodes,
        synced: Mutex::default(),
        failures: Mutex::default(),
        services: controller.store(),
        adopted: tokio::sync::OnceCell::new(),
    });
    controller
        .reconcile_all_on(tokio_stream_of(node_triggers))
        .graceful_shutdown_on(async move { cancel.cancelled().await })
        .run_with_workqueue("service", reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "service reconcile failed");
            }
        })
        .await;
}

/// Stops the node watch when the controller returns.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The receiving end of the node wake-ups as a stream.
fn tokio_stream_of(
    mut receiver: tokio::sync::mpsc::Receiver<()>,
) -> impl futures::Stream<Item = ()> + Send + 'static {
    futures::stream::poll_fn(move |cx| receiver.poll_recv(cx))
}

fn error_policy(service: Arc<Service>, error: &ReconcileError, ctx: Arc<Context>) -> Action {
    let key = service::key(&service);
    let failures = {
        let mut failures = ctx.failures.lock().unwrap_or_else(|e| e.into_inner());
        let entry = failures.entry(key.clone()).or_insert(Failures {
            count: 0,
            last: Instant::now(),
        });
        entry.count = entry.count.saturating_add(1);
        entry.last = Instant::now();
        entry.count
    };
    let delay = backoff(&ctx.config, failures);
    tracing::warn!(service = %key, %error, retry_in = ?delay, "syncing the load balancer failed");
    Action::requeue(delay)
}

/// A Service's run of failures: how many, and when the last one was.
#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
}

/// How much longer a Service that failed must wait before it is tried
/// again; None when its back-off is over (or it never failed). Node changes
/// wake every Service at once, and without this a refused Service would
/// record a Warning at each of them.
fn backing_off(config: &Config, failures: Option<&Failures>, now: Instant) -> Option<Duration> {
    let failures = failures?;
    let until = failures.last + backoff(config, failures.count);
    until.checked_duration_since(now).filter(|d| !d.is_zero())
}

/// The wait after `failures` consecutive failures: doubling from the base,
/// capped.
fn backoff(config: &Config, failures: u32) -> Duration {
    let factor = 2u32.saturating_pow(failures.saturating_sub(1).min(16));
    config
        .retry_base
        .saturating_mul(factor)
        .min(config.retry_max)
}

#[tracing::instrument(skip_all, fields(service = %service::key(&svc)))]
async fn reconcile(svc: Arc<Service>, ctx: Arc<Context>) -> Result<Action, ReconcileError> {
    let key = service::key(&svc);
    let targets = nodes::targets(ctx.nodes.state().iter().map(|n| n.as_ref()));
    ctx.adopted
        .get_or_try_init(|| adopt(&ctx, &targets))
        .await?;
    let last = ctx
        .synced
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&key)
        .cloned();
    let result = step(&svc, &ctx, &key, targets, last).await;
    match &result {
        // A refused Service waiting out its back-off keeps its count, so
        // the waits keep growing.
        Ok(_) if service::missing_node_ports(&svc).is_some() => {}
        Ok(_) => {
            ctx.failures
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&key);
        }
        Err(e) => {
            let message = format!("Error syncing load balancer: {e}");
            ctx.recorder
                .record(
                    svc.as_ref(),
                    EventType::Warning,
                    "SyncLoadBalancerFailed",
                    &message,
                )
                .await;
        }
    }
    result
}

async fn step(
    svc: &Service,
    ctx: &Context,
    key: &str,
    targets: Vec<TargetNode>,
    last: Option<Synced>,
) -> Result<Action, ReconcileError> {
    let api: Api<Service> =
        Api::namespaced(ctx.client.clone(), &svc.namespace().unwrap_or_default());
    let name = svc.name_any();
    let provider_for = |name: &str| ctx.providers.get(name).cloned();
    let plan = plan(&ctx.classes, svc, &targets, last.as_ref());
    if plan != Plan::Nothing {
        tracing::info!(?plan, targets = targets.len(), "syncing the load balancer");
    }
    match plan {
        Plan::Nothing => Ok(Action::requeue(ctx.config.resync)),
        // Reported as a Warning by `reconcile` and retried with back-off
        // by `error_policy`, like any failure; a wake-up before the back-off
        // is over (a node changed) waits out the rest, with no new Event.
        Plan::Refuse { reason } => {
            let failures = ctx.failures.lock().unwrap_or_else(|e| e.into_inner());
            match backing_off(&ctx.config, failures.get(key), Instant::now()) {
                Some(rest) => Ok(Action::requeue(rest)),
                None => Err(ReconcileError::Unservable(reason)),
            }
        }
        Plan::Ensure {
            provider,
            add_finalizer,
        } => {
            let Some(provider) = provider_for(provider) else {
                return Ok(Action::await_change());
            };
            let mut synced = svc.clone();
            if add_finalizer {
                if let Some(patch) = service::add_finalizer_patch(svc) {
                    api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                        .await?;
                }
                synced
                    .metadata
                    .finalizers
                    .get_or_insert_default()
                    .push(FINALIZER.into());
            }
            if targets.is_empty() {
                ctx.recorder
                    .record(
                        svc,
                        EventType::Warning,
                        "UnAvailableLoadBalancer",
                        "There are no available nodes for LoadBalancer",
                    )
                    .await;
            }
            ctx.recorder
                .record(
                    svc,
                    EventType::Normal,
                    "EnsuringLoadBalancer",
                    "Ensuring load balancer",
                )
                .await;
            let status = provider.ensure(svc, &targets).await?;
            patch_status(&api, svc, &status).await?;
            ctx.recorder
                .record(
                    svc,
                    EventType::Normal,
                    "EnsuredLoadBalancer",
                    "Ensured load balancer",
                )
                .await;
            remember(
                ctx,
                key,
                Some(Synced {
                    service: synced,
                    targets,
                }),
            );
            Ok(Action::requeue(ctx.config.resync))
        }
        Plan::UpdateTargets { provider } => {
            let Some(provider) = provider_for(provider) else {
                return Ok(Action::await_change());
            };
            provider.update(svc, &targets).await?;
            let message = format!(
                "Updated load balancer with new hosts ({} nodes)",
                targets.len()
            );
            ctx.recorder
                .record(svc, EventType::Normal, "UpdatedLoadBalancer", &message)
                .await;
            let service = last.map(|l| l.service).unwrap_or_else(|| svc.clone());
            remember(ctx, key, Some(Synced { service, targets }));
            Ok(Action::requeue(ctx.config.resync))
        }
        Plan::Cleanup { provider } => {
            let Some(provider) = provider_for(provider) else {
                return Ok(Action::await_change());
            };
            ctx.recorder
                .record(
                    svc,
                    EventType::Normal,
                    "DeletingLoadBalancer",
                    "Deleting load balancer",
                )
                .await;
            provider.delete(svc).await?;
            // The finalizer patch is guarded by the resourceVersion, so it
            // must name the one the status write left.
            let cleared =
                ignore_gone(patch_status(&api, svc, &LoadBalancerStatus::default()).await)?;
            let current = cleared.as_ref().unwrap_or(svc);
            if let Some(patch) = service::remove_finalizer_patch(current) {
                let patch = Patch::Merge(&patch);
                ignore_gone(
                    api.patch(&name, &PatchParams::default(), &patch)
                        .await
                        .map(|_| ()),
                )?;
            }
            ctx.recorder
                .record(
                    svc,
                    EventType::Normal,
                    "DeletedLoadBalancer",
                    "Deleted load balancer",
                )
                .await;
            remember(ctx, key, None);
            Ok(Action::await_change())
        }
    }
}

/// Hands every provider the Services it already balances (the finalizer
/// and an address), once the Service cache is complete.
async fn adopt(ctx: &Context, targets: &[TargetNode]) -> Result<(), ReconcileError> {
    // Reconciles only run once the controller's own cache is filled.
    let services = ctx.services.state();
    for (name, provider) in &ctx.providers {
        let owned: Vec<Service> = services
            .iter()
            .filter(|s| {
                service::has_finalizer(s) && ctx.classes.provider_for(s) == Some(name.as_str())
            })
            .map(|s| s.as_ref().clone())
            .collect();
        provider.adopt(&owned, targets).await?;
        tracing::info!(provider = %name, services = owned.len(), "adopted existing load balancers");
    }
    Ok(())
}

fn remember(ctx: &Context, key: &str, synced: Option<Synced>) {
    let mut all = ctx.synced.lock().unwrap_or_else(|e| e.into_inner());
    match synced {
        Some(synced) => all.insert(key.to_owned(), synced),
        None => all.remove(key),
    };
}

/// Writes `status.loadBalancer` when it differs, returning the Service as
/// the write left it (None when nothing was written).
async fn patch_status(
    api: &Api<Service>,
    svc: &Service,
    status: &LoadBalancerStatus,
) -> kube::Result<Option<Service>> {
    let Some(patch) = service::status_patch(svc, status) else {
        return Ok(None);
    };
    api.patch_status(
        &svc.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await
    .map(Some)
}

/// A Service deleted while it was cleaned up needs nothing more.
fn ignore_gone<T: Default>(result: kube::Result<T>) -> kube::Result<T> {
    match result {
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(T::default()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_base_up_to_the_cap() {
        let config = Config::default();
        let waits: Vec<u64> = (1..=8).map(|n| backoff(&config, n).as_secs()).collect();
        assert_eq!(waits, [5, 10, 20, 40, 80, 160, 300, 300]);
        assert_eq!(backoff(&config, u32::MAX), config.retry_max);
    }

    #[test]
    fn a_wake_up_during_the_back_off_waits_out_the_rest() {
        let config = Config::default();
        let last = Instant::now();
        let failures = Failures { count: 2, last };
        assert_eq!(backing_off(&config, None, last), None, "never failed");
        assert_eq!(
            backing_off(&config, Some(&failures), last + Duration::from_secs(4)),
            Some(Duration::from_secs(6)),
            "the second failure waits 10 s"
        );
        assert_eq!(
            backing_off(&config, Some(&failures), last + Duration::from_secs(10)),
            None
        );
    }
}
