//! kube-state-metrics served by the API server itself on
//! `/metrics/kube-state`: object metrics with kube-state-metrics' names,
//! labels and meanings, so a cluster needs no separate exporter.
//!
//! The objects are listed from the store in the background every
//! [`REFRESH`] and turned into rows; a scrape only encodes the last rows,
//! so it never waits on (or loads) the store however many pods there are.
//! When nobody has scraped for [`IDLE`], listing stops until the next scrape.

mod cluster;
mod family;
mod nodepools;
mod nodes;
mod pods;
mod resources;
mod workloads;

use std::time::Duration;

use berth_observability::metrics::MetricsRegistry;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::catalog;
use super::listing;
use super::objects::Objects;
use family::{MetricFamily, Snapshot};

/// How often the objects are listed again. Prometheus scrapes every 15 s to
/// 1 min, so rows at most this old read like kube-state-metrics' own.
const REFRESH: Duration = Duration::from_secs(5);

/// How long after the last scrape the objects are still listed.
const IDLE: Duration = Duration::from_secs(120);

/// The registry `/metrics/kube-state` serves and the rows behind it.
#[derive(Clone, Debug, Default)]
pub struct KubeState {
    registry: MetricsRegistry,
    snapshot: Snapshot,
}

impl KubeState {
    /// A registry whose one collector serves the last rows derived.
    pub fn new() -> Self {
        let state = Self::default();
        state.registry.register_collector(state.snapshot.clone());
        state
    }

    /// The registry to encode on a scrape.
    pub fn registry(&self) -> &MetricsRegistry {
        &self.registry
    }

    /// Derives the rows now and then every [`REFRESH`] while scrapes come,
    /// until `cancel` fires.
    pub async fn run(self, objects: Objects, cancel: CancellationToken) {
        loop {
            let families = tokio::select! {
                _ = cancel.cancelled() => return,
                families = derive(&objects) => families,
            };
            self.snapshot.replace(families);
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(REFRESH) => {}
            }
            if !self.snapshot.scraped_within(IDLE) {
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = self.snapshot.next_scrape() => {}
                }
            }
        }
    }
}

/// Every family, from one list of each kind.
async fn derive(objects: &Objects) -> Vec<MetricFamily> {
    let mut families = Vec::new();
    families.extend(pods::families(&list(objects, "", "v1", "pods").await));
    families.extend(nodes::families(&list(objects, "", "v1", "nodes").await));
    families.extend(workloads::deployments(
        &list(objects, "apps", "v1", "deployments").await,
    ));
    families.extend(workloads::replicasets(
        &list(objects, "apps", "v1", "replicasets").await,
    ));
    families.extend(workloads::statefulsets(
        &list(objects, "apps", "v1", "statefulsets").await,
    ));
    families.extend(workloads::daemonsets(
        &list(objects, "apps", "v1", "daemonsets").await,
    ));
    families.extend(workloads::jobs(&list(objects, "batch", "v1", "jobs").await));
    families.extend(cluster::services(
        &list(objects, "", "v1", "services").await,
    ));
    families.extend(cluster::namespaces(
        &list(objects, "", "v1", "namespaces").await,
    ));
    families.extend(cluster::persistent_volume_claims(
        &list(objects, "", "v1", "persistentvolumeclaims").await,
    ));
    families.extend(cluster::horizontal_pod_autoscalers(
        &list(objects, "autoscaling", "v2", "horizontalpodautoscalers").await,
    ));
    families.extend(nodepools::families(
        &list(objects, "berth.dev", "v1", "nodepools").await,
    ));
    families
}

/// Every object of one resource, typed; a failed list reads as none (and
/// is logged), an object that does not decode is skipped.
async fn list<T: DeserializeOwned>(
    objects: &Objects,
    group: &str,
    version: &str,
    plural: &str,
) -> Vec<T> {
    let Some(resource) = catalog::builtin(group, version, plural) else {
        return Vec::new();
    };
    let listed = match listing::list(
        objects.store().as_ref(),
        resource,
        None,
        &Default::default(),
    )
    .await
    {
        Ok(listed) => listed.items,
        Err(e) => {
            tracing::warn!(error = %e, resource = plural, "kube-state metrics: listing failed");
            return Vec::new();
        }
    };
    listed
        .into_iter()
        .filter_map(|item: Value| serde_json::from_value(item).ok())
        .collect()
}
