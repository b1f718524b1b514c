//! Deletion semantics: preconditions, graceful deletion of pods bound to a
//! node, finalizers (including the propagation-policy ones) and namespaces
//! that wait for their contents — or removal at once when nothing holds it.

use serde_json::{json, Value};

use super::{
    allocated_kind, encode_as, meta_mut, meta_str, stamped, target, DeleteOptions, Objects,
    MODIFIED,
};
use crate::apiserver::admission;
use crate::apiserver::catalog::ResourceInfo;
use crate::apiserver::errors::ApiError;

impl Objects {
    /// Deletes an object: at once, or by marking it when finalizers or a grace period apply.
    /// A write that raced ours (a controller updating the object meanwhile) is
    /// retried on the fresh object, as upstream's GuaranteedUpdate does; a
    /// failed precondition is not.
    pub async fn delete(
        &self,
        r: &ResourceInfo,
        ns: Option<&str>,
        name: &str,
        opts: &DeleteOptions,
    ) -> Result<Value, ApiError> {
        admission::check_delete(r, name)?;
        let mut attempts = 0;
        loop {
            attempts += 1;
            match self.delete_once(r, ns, name, opts).await {
                Err(ApiError::Conflict(_, message)) if message == MODIFIED && attempts < 5 => {
                    continue
                }
                other => return other,
            }
        }
    }

    async fn delete_once(
        &self,
        r: &ResourceInfo,
        ns: Option<&str>,
        name: &str,
        opts: &DeleteOptions,
    ) -> Result<Value, ApiError> {
        let (kv, mut obj) = self.get_kv(r, ns, name).await?;
        if let Some(uid) = &opts.precondition_uid {
            if meta_str(&obj, "uid") != Some(uid.as_str()) {
                return Err(ApiError::Conflict(
                    target(r, name),
                    format!(
                        "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                        meta_str(&obj, "uid").unwrap_or_default()
                    ),
                ));
            }
        }
        if let Some(rv) = &opts.precondition_resource_version {
            if *rv != kv.mod_revision.to_string() {
                return Err(ApiError::Conflict(
                    target(r, name),
                    format!("Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}", kv.mod_revision),
                ));
            }
        }
        let mut grace = r
            .rules
            .deletion_grace_period(&obj, opts.grace_period_seconds);
        let mut finalizers: Vec<Value> = obj
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let policy_finalizer = match opts.propagation_policy.as_deref() {
            Some("Orphan") => Some("orphan"),
            Some("Foreground") => Some("foregroundDeletion"),
            _ => None,
        };
        if let Some(f) = policy_finalizer {
            if !finalizers.iter().any(|v| v == f) {
                finalizers.push(json!(f));
            }
        }
        let held = r.rules.begin_deletion(&mut obj);
        if held {
            grace.get_or_insert(0);
        }
        let already_deleting = obj.pointer("/metadata/deletionTimestamp").is_some();
        if !finalizers.is_empty() || grace.is_some_and(|g| g > 0) || held {
            let grace = grace.unwrap_or(0);
            let meta = meta_mut(&mut obj);
            if !finalizers.is_empty() {
                meta.insert("finalizers".into(), Value::Array(finalizers));
            }
            let current_grace = meta
                .get("deletionGracePeriodSeconds")
                .and_then(Value::as_i64);
            if !already_deleting || current_grace.is_some_and(|g| grace < g) {
                let at = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(grace);
                meta.insert(
                    "deletionTimestamp".into(),
                    json!(at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()),
                );
                meta.insert("deletionGracePeriodSeconds".into(), json!(grace));
            }
            if opts.dry_run {
                return Ok(obj);
            }
            return match self
                .store
                .update(&kv.key, encode_as(r, &mut obj)?, kv.mod_revision)
                .await
            {
                Ok(kv) => Ok(stamped(obj, kv.mod_revision)),
                Err(e) => Err(self.write_error(r, name, e)),
            };
        }
        if opts.dry_run {
            return Ok(obj);
        }
        match self.store.delete(&kv.key, Some(kv.mod_revision)).await {
            Ok(deleted) => {
                self.allocator.release_for(allocated_kind(r), &obj).await;
                let mut value = obj;
                meta_mut(&mut value).insert(
                    "resourceVersion".into(),
                    json!(deleted.mod_revision.to_string()),
                );
                Ok(value)
            }
            Err(e) => Err(self.write_error(r, name, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    use async_trait::async_trait;

    use super::*;
    use crate::apiserver::allocator::Allocator;
    use crate::apiserver::catalog;
    use crate::apiserver::objects::WriteOptions;
    use crate::store::sqlite::SqliteStore;
    use crate::store::{KeyValue, ListPage, Store, StoreError, WatchStream};

    /// A store whose first conditional update loses a race: another writer
    /// changes the key just before it (a controller updating the object while
    /// a client deletes it).
    struct RacingStore {
        inner: SqliteStore,
        raced: AtomicBool,
    }

    #[async_trait]
    impl Store for RacingStore {
        async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
            self.inner.get(key).await
        }
        async fn list(
            &self,
            prefix: &str,
            start_after: Option<&str>,
            limit: usize,
        ) -> Result<ListPage, StoreError> {
            self.inner.list(prefix, start_after, limit).await
        }
        async fn create(&self, key: &str, value: Vec<u8>) -> Result<KeyValue, StoreError> {
            self.inner.create(key, value).await
        }
        async fn update(
            &self,
            key: &str,
            value: Vec<u8>,
            expected_revision: i64,
        ) -> Result<KeyValue, StoreError> {
            if !self.raced.swap(true, Ordering::SeqCst) {
                let current = self.inner.get(key).await?.expect("the key exists");
                self.inner
                    .update(key, current.value, current.mod_revision)
                    .await?;
            }
            self.inner.update(key, value, expected_revision).await
        }
        async fn delete(
            &self,
            key: &str,
            expected_revision: Option<i64>,
        ) -> Result<KeyValue, StoreError> {
            self.inner.delete(key, expected_revision).await
        }
        async fn watch(
            &self,
            prefix: &str,
            after_revision: i64,
        ) -> Result<WatchStream, StoreError> {
            self.inner.watch(prefix, after_revision).await
        }
        async fn compact(&self, revision: i64) -> Result<(), StoreError> {
            self.inner.compact(revision).await
        }
        async fn current_revision(&self) -> Result<i64, StoreError> {
            self.inner.current_revision().await
        }
    }

    #[tokio::test]
    async fn a_delete_that_races_another_write_is_retried_not_refused() {
        let dir = tempfile::tempdir().unwrap();
        let racing = Arc::new(RacingStore {
            inner: SqliteStore::open(dir.path().join("db")).unwrap(),
            raced: AtomicBool::new(true),
        });
        let store: Arc<dyn Store> = racing.clone();
        let objects = Objects::new(
            Arc::clone(&store),
            Allocator::new(Arc::clone(&store), "10.43.0.0/16".parse().unwrap()),
        );
        let namespaces = catalog::builtin("", "v1", "namespaces").unwrap();
        let namespace = json!({"metadata": {"name": "default"}});
        objects
            .create(namespaces, None, namespace, &WriteOptions::default())
            .await
            .unwrap();
        let configmaps = catalog::builtin("", "v1", "configmaps").unwrap();
        let held = json!({"metadata": {"name": "held", "finalizers": ["example.com/hold"]}});
        objects
            .create(configmaps, Some("default"), held, &WriteOptions::default())
            .await
            .unwrap();
        // The next update (marking the object deleted) loses a race once.
        racing.raced.store(false, Ordering::SeqCst);
        let deleted = objects
            .delete(
                configmaps,
                Some("default"),
                "held",
                &DeleteOptions::default(),
            )
            .await
            .unwrap();
        assert!(deleted.pointer("/metadata/deletionTimestamp").is_some());
    }
}
