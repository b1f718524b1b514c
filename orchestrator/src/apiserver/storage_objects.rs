//! `apiserver_storage_objects{resource}`: how many objects of each resource
//! the store holds. Counted in the background every minute, as upstream
//! refreshes it, so a scrape only reads gauges.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use berth_observability::metrics::{EncodeLabelSet, Family, Gauge, MetricsRegistry};
use tokio_util::sync::CancellationToken;

use crate::store::instrumented::{group_resource, resource_of_key};
use crate::store::{Store, StoreError};

/// How often the objects are counted again.
const REFRESH: Duration = Duration::from_secs(60);

/// Keys read per page while counting.
const PAGE: usize = 500;

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ResourceLabels {
    resource: String,
}

/// The gauges, shared between the counting task and the registry.
#[derive(Clone)]
pub struct StorageObjects {
    gauges: Family<ResourceLabels, Gauge>,
}

impl StorageObjects {
    /// Registers `apiserver_storage_objects` in `registry`.
    pub fn register(registry: &MetricsRegistry) -> Self {
        Self {
            gauges: registry.register(
                "apiserver_storage_objects",
                "Number of stored objects at the time of last check split by kind.",
                Family::default(),
            ),
        }
    }

    /// Counts now and then every [`REFRESH`] until `cancel` fires.
    pub async fn run(self, store: Arc<dyn Store>, cancel: CancellationToken) {
        let mut seen = HashSet::new();
        loop {
            if let Err(e) = self.refresh(store.as_ref(), &mut seen).await {
                tracing::warn!(error = %e, "counting stored objects failed");
            }
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(REFRESH) => {}
            }
        }
    }

    /// Counts every resource's keys once; resources that emptied read 0.
    async fn refresh(
        &self,
        store: &dyn Store,
        seen: &mut HashSet<String>,
    ) -> Result<(), StoreError> {
        let mut counts: HashMap<String, i64> = HashMap::new();
        let mut after: Option<String> = None;
        loop {
            let page = store.list("/registry/", after.as_deref(), PAGE).await?;
            for kv in &page.items {
                if let Some((group, plural)) = resource_of_key(&kv.key) {
                    *counts.entry(group_resource(group, plural)).or_default() += 1;
                }
            }
            match (page.more, page.items.last()) {
                (true, Some(last)) => after = Some(last.key.clone()),
                _ => break,
            }
        }
        // Resources counted before but gone now read 0.
        for resource in seen.iter() {
            if !counts.contains_key(resource) {
                let labels = ResourceLabels {
                    resource: resource.clone(),
                };
                self.gauges.get_or_create(&labels).set(0);
            }
        }
        seen.extend(counts.keys().cloned());
        for (resource, count) in counts {
            self.gauges
                .get_or_create(&ResourceLabels { resource })
                .set(count);
        }
        Ok(())
    }
}
