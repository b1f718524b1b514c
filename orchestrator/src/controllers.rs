//! Controllers: level-triggered reconcilers that are ordinary API clients
//! (kube-rs), exactly as kube-controller-manager's are. They never touch the
//! store or the API server's memory, so they run in `berth server` or in their
//! own process unchanged.

pub mod cache;
pub mod certificates;
pub mod client;
pub mod clusterrole_aggregation;
pub mod cronjob;
pub mod daemonset;
pub mod deployment;
pub mod disruption;
pub mod endpoints;
pub mod endpointslice;
pub mod garbage_collector;
pub mod history;
pub mod horizontal_pod_autoscaler;
pub mod informers;
pub mod ingress;
pub mod job;
pub mod namespace;
pub mod node_ipam;
pub mod node_lifecycle;
pub mod persistent_volume;
pub mod pod_control;
pub mod replicaset;
pub mod resource_quota;
pub mod serviceaccount;
pub mod statefulset;
pub mod token_cleaner;
pub mod ttl_after_finished;
pub mod volume_protection;
pub mod workload;

use informers::Informers;

use std::future::Future;
use std::pin::Pin;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Why a controller stopped.
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    /// The API could not be reached or answered an error the loop cannot retry.
    #[error("{controller}: {source}")]
    Api {
        /// Which controller.
        controller: &'static str,
        /// The client error.
        source: kube::Error,
    },
}

/// What the controllers are configured with (flags of `berth server`).
#[derive(Debug, Clone)]
pub struct ControllersConfig {
    /// The cluster CIDR and per-node subnet size node IPAM hands out.
    pub node_cidrs: node_ipam::NodeCidrAllocator,
    /// Heartbeat grace period of the node lifecycle controller.
    pub node_lifecycle: node_lifecycle::NodeLifecycleConfig,
    /// The CA and duration the csrsigning controller issues kubelet
    /// certificates with; it does not run without.
    pub csr_signing: Option<certificates::signer::SigningConfig>,
    /// The horizontal pod autoscaler's sync period and stabilization window.
    pub horizontal_pod_autoscaler: horizontal_pod_autoscaler::HorizontalPodAutoscalerConfig,
}

impl Default for ControllersConfig {
    /// berth's defaults: 10.42.0.0/16 in /24s, and a 20 s heartbeat grace
    /// period (upstream 40 s) so a lost node's pods are replaced within a minute.
    fn default() -> Self {
        let cluster = "10.42.0.0/16".parse().expect("a valid CIDR");
        Self {
            node_cidrs: node_ipam::NodeCidrAllocator::new(cluster, 24).expect("/24 fits a /16"),
            node_lifecycle: node_lifecycle::NodeLifecycleConfig {
                grace_period: std::time::Duration::from_secs(20),
            },
            csr_signing: None,
            horizontal_pod_autoscaler: Default::default(),
        }
    }
}

/// A named controller loop that runs until cancelled.
pub type ControllerFuture = Pin<Box<dyn Future<Output = Result<(), ControllerError>> + Send>>;

/// The controllers `berth server` runs in-process (and `berth controller-manager` alone).
pub fn all(
    client: &kube::Client,
    informers: &Informers,
    cancel: &CancellationToken,
    config: &ControllersConfig,
) -> Vec<(&'static str, ControllerFuture)> {
    let mut controllers: Vec<(&'static str, ControllerFuture)> = vec![
        (
            "clusterrole-aggregation",
            Box::pin(clusterrole_aggregation::run(client.clone(), cancel.clone())),
        ),
        (
            "namespace",
            Box::pin(namespace::run(client.clone(), cancel.clone())),
        ),
        (
            "serviceaccount",
            Box::pin(serviceaccount::run(client.clone(), cancel.clone())),
        ),
        (
            "replicaset",
            Box::pin(replicaset::run(
                client.clone(),
                informers.clone(),
                cancel.clone(),
            )),
        ),
        (
            "replicationcontroller",
            Box::pin(replicaset::run_replication_controllers(
                client.clone(),
                informers.clone(),
                cancel.clone(),
            )),
        ),
        (
            "resourcequota",
            Box::pin(resource_quota::run(client.clone(), cancel.clone())),
        ),
        (
            "deployment",
            Box::pin(deployment::run(
                client.clone(),
                informers.clone(),
                cancel.clone(),
            )),
        ),
        (
            "disruption",
            Box::pin(disruption::run(
                client.clone(),
                informers.clone(),
                cancel.clone(),
            )),
        ),
        (
            "endpoints",
            Box::pin(endpoints::run(
                client.clone(),
                informers.clone(),
                cancel.clone(),
            )),
        ),
        (
            "endpointslice",
            Box::pin(endpointslice::run(
                client.clone(),
                informers.clone(),
                cancel.clone(),
            )),
        ),
        (
            "garbage-collector",
            Box::pin(garbage_collector::run(client.clone(), cancel.clone())),
        ),
        (
            "node-ipam",
            Box::pin(node_ipam::run(
                client.clone(),
                config.node_cidrs,
                cancel.clone(),
            )),
        ),
        (
            "node-lifecycle",
            Box::pin(node_lifecycle::run(
                client.clone(),
                informers.clone(),
                config.node_lifecycle,
                cancel.clone(),
            )),
        ),
        (
            "csrapproving",
            Box::pin(certificates::approver::run(client.clone(), cancel.clone())),
        ),
        (
            "tokencleaner",
            Box::pin(token_cleaner::run(client.clone(), cancel.clone())),
        ),
        (
            "daemonset",
            Box::pin(daemonset::run(
                client.clone(),
                informers.clone(),
                cancel.clone(),
            )),
        ),
        (
            "job",
            Box::pin(job::run(client.clone(), informers.clone(), cancel.clone())),
        ),
        (
            "cronjob",
            Box::pin(cronjob::run(
                client.clone(),
                informers.clone(),
                cancel.clone(),
            )),
        ),
        (
            "ttl-after-finished",
            Box::pin(ttl_after_finished::run(
                client.clone(),
                informers.clone(),
                cancel.clone(),
            )),
        ),
        (
            "statefulset",
            Box::pin(statefulset::run(
                client.clone(),
                informers.clone(),
                cancel.clone(),
            )),
        ),
        (
            "persistentvolume-binder",
            Box::pin(persistent_volume::run(
                client.clone(),
                informers.clone(),
                cancel.clone(),
            )),
        ),
        (
            "ingress",
            Box::pin(ingress::run(
                client.clone(),
                informers.clone(),
                cancel.clone(),
            )),
        ),
        (
            "horizontal-pod-autoscaler",
            Box::pin(horizontal_pod_autoscaler::run(
                client.clone(),
                informers.clone(),
                config.horizontal_pod_autoscaler,
                cancel.clone(),
            )),
        ),
        (
            "volume-protection",
            Box::pin(volume_protection::run(
                client.clone(),
                informers.clone(),
                cancel.clone(),
            )),
        ),
    ];
    if let Some(signing) = &config.csr_signing {
        controllers.push((
            "csrsigning",
            Box::pin(certificates::signer::run(
                client.clone(),
                signing.clone(),
                cancel.clone(),
            )),
        ));
    }
    controllers
}

/// [`supervise_with`] the default [`ControllersConfig`].
pub async fn supervise(client: kube::Client, cancel: CancellationToken) {
    supervise_with(client, cancel, ControllersConfig::default()).await
}

/// Runs controllers until `cancel` fires; a controller that fails is logged and
/// restarted after a pause, so one broken loop never stops the others.
pub async fn supervise_with(
    client: kube::Client,
    cancel: CancellationToken,
    config: ControllersConfig,
) {
    // One watch per kind for every controller (and restarted ones).
    let informers = Informers::new(client.clone(), cancel.clone());
    let mut tasks = JoinSet::new();
    for (name, controller) in all(&client, &informers, &cancel, &config) {
        tasks.spawn(async move { (name, controller.await) });
    }
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((_, Ok(()))) => {}
            Ok((name, Err(e))) => {
                tracing::error!(controller = name, error = %e, "controller stopped; restarting in 5s");
                if cancel.is_cancelled() {
                    continue;
                }
                let (client, cancel, config) = (client.clone(), cancel.clone(), config.clone());
                let informers = informers.clone();
                tasks.spawn(async move {
                    tokio::select! {
                        _ = cancel.cancelled() => return (name, Ok(())),
                        _ = tokio::time::sleep(std::time::Duration::from_secs(5)) => {}
                    }
                    let restarted = all(&client, &informers, &cancel, &config)
                        .into_iter()
                        .find(|(n, _)| *n == name);
                    match restarted {
                        Some((_, controller)) => (name, controller.await),
                        None => (name, Ok(())),
                    }
                });
            }
            Err(e) => tracing::error!(error = %e, "controller task panicked"),
        }
    }
}
