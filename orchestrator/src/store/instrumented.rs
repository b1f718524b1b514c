//! A [`Store`] wrapper timing every call into the backend (SQLite or etcd)
//! as kube-apiserver's `etcd_request_duration_seconds{operation,type}`, so
//! a slow store shows up in the same series upstream dashboards plot.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use async_trait::async_trait;
use berth_observability::metrics::{
    EncodeLabelSet, Family, Histogram, MetricsRegistry, REQUEST_DURATION_BUCKETS,
};

use super::{KeyValue, ListPage, Store, StoreError, WatchStream};

/// `etcd_request_duration_seconds`' labels.
#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct StoreLabels {
    operation: &'static str,
    r#type: Arc<str>,
}

/// The resource a key belongs to, upstream's group-resource form
/// (`pods`, `deployments.apps`): keys are `/registry/GROUP/PLURAL/…`, with
/// `core` for the core group. Other keys give their first two segments.
pub(crate) fn resource_of_key(key: &str) -> Option<(&str, &str)> {
    let rest = key.strip_prefix("/registry/")?;
    let mut parts = rest.splitn(3, '/');
    let group = parts.next().filter(|g| !g.is_empty())?;
    let plural = parts.next().filter(|p| !p.is_empty())?;
    // `/registry/masterleases/IP` names an object, not a resource.
    parts.next()?;
    Some((group, plural))
}

/// Formats [`resource_of_key`]'s answer as upstream's label value.
pub(crate) fn group_resource(group: &str, plural: &str) -> String {
    if group == "core" {
        plural.to_owned()
    } else {
        format!("{plural}.{group}")
    }
}

/// The store, timed.
pub struct InstrumentedStore {
    inner: Arc<dyn Store>,
    latency: Family<StoreLabels, Histogram>,
    /// Label values by `GROUP/PLURAL` key segment, so timing a call
    /// allocates only the first time a resource is seen.
    types: RwLock<HashMap<Box<str>, Arc<str>>>,
}

impl InstrumentedStore {
    /// Wraps `inner`, registering its latency histogram in `registry`.
    pub fn wrap(inner: Arc<dyn Store>, registry: &MetricsRegistry) -> Arc<dyn Store> {
        let latency = registry.register(
            "etcd_request_duration_seconds",
            "Etcd request latency in seconds for each operation and object type.",
            Family::<StoreLabels, Histogram>::new_with_constructor(
                (|| Histogram::new(REQUEST_DURATION_BUCKETS)) as fn() -> Histogram,
            ),
        );
        Arc::new(Self {
            inner,
            latency,
            types: RwLock::default(),
        })
    }

    fn type_of(&self, key: &str) -> Arc<str> {
        let segment = match resource_of_key(key) {
            Some((group, plural)) => {
                let start = "/registry/".len();
                &key[start..start + group.len() + 1 + plural.len()]
            }
            None => "",
        };
        if let Some(known) = self
            .types
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(segment)
        {
            return Arc::clone(known);
        }
        let value: Arc<str> = match resource_of_key(key) {
            Some((group, plural)) => group_resource(group, plural).into(),
            None => "".into(),
        };
        self.types
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .entry(segment.into())
            .or_insert(value)
            .clone()
    }

    fn observe(&self, operation: &'static str, key: &str, started: Instant) {
        self.latency
            .get_or_create(&StoreLabels {
                operation,
                r#type: self.type_of(key),
            })
            .observe(started.elapsed().as_secs_f64());
    }
}

#[async_trait]
impl Store for InstrumentedStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        let started = Instant::now();
        let result = self.inner.get(key).await;
        self.observe("get", key, started);
        result
    }

    async fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<ListPage, StoreError> {
        let started = Instant::now();
        let result = self.inner.list(prefix, start_after, limit).await;
        self.observe("list", prefix, started);
        result
    }

    async fn create(&self, key: &str, value: Vec<u8>) -> Result<KeyValue, StoreError> {
        let started = Instant::now();
        let result = self.inner.create(key, value).await;
        self.observe("create", key, started);
        result
    }

    async fn update(
        &self,
        key: &str,
        value: Vec<u8>,
        expected_revision: i64,
    ) -> Result<KeyValue, StoreError> {
        let started = Instant::now();
        let result = self.inner.update(key, value, expected_revision).await;
        self.observe("update", key, started);
        result
    }

    async fn delete(
        &self,
        key: &str,
        expected_revision: Option<i64>,
    ) -> Result<KeyValue, StoreError> {
        let started = Instant::now();
        let result = self.inner.delete(key, expected_revision).await;
        self.observe("delete", key, started);
        result
    }

    async fn watch(&self, prefix: &str, after_revision: i64) -> Result<WatchStream, StoreError> {
        // Only opening the watch is timed; its events arrive for as long as it lives.
        let started = Instant::now();
        let result = self.inner.watch(prefix, after_revision).await;
        self.observe("watch", prefix, started);
        result
    }

    async fn compact(&self, revision: i64) -> Result<(), StoreError> {
        let started = Instant::now();
        let result = self.inner.compact(revision).await;
        self.observe("compact", "", started);
        result
    }

    async fn current_revision(&self) -> Result<i64, StoreError> {
        let started = Instant::now();
        let result = self.inner.current_revision().await;
        self.observe("get", "", started);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::SqliteStore;

    #[test]
    fn keys_name_their_group_resource() {
        let of = |key| resource_of_key(key).map(|(g, p)| group_resource(g, p));
        assert_eq!(
            of("/registry/core/pods/default/web").as_deref(),
            Some("pods")
        );
        assert_eq!(
            of("/registry/apps/deployments/").as_deref(),
            Some("deployments.apps")
        );
        assert_eq!(of("/registry/"), None);
        assert_eq!(of("/registry/masterleases/127.0.0.1"), None);
        assert_eq!(of("/elsewhere/x/y"), None);
    }

    #[tokio::test]
    async fn store_calls_are_timed_by_operation_and_type() {
        let registry = MetricsRegistry::default();
        let dir = tempfile::tempdir().unwrap();
        let inner: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path().join("db")).unwrap());
        let store = InstrumentedStore::wrap(inner, &registry);
        store
            .create("/registry/apps/deployments/default/web", b"{}".to_vec())
            .await
            .unwrap();
        store.get("/registry/core/pods/default/web").await.unwrap();
        let text = registry.encode();
        assert!(text.contains(
            "etcd_request_duration_seconds_count{operation=\"create\",type=\"deployments.apps\"} 1"
        ), "{text}");
        assert!(
            text.contains("etcd_request_duration_seconds_count{operation=\"get\",type=\"pods\"} 1"),
            "{text}"
        );
    }
}
