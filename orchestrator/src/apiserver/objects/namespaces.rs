//! Which namespaces are active, kept current from the store's watch, so that
//! a create need not read its namespace (upstream's NamespaceLifecycle
//! admission answers from an informer the same way). Only "known and active"
//! is answered from memory; anything else is read from the store.

use std::collections::HashMap;
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use futures::StreamExt;
use serde_json::Value;

use crate::store::{EventKind, KeyValue, Store};

/// How long to wait before listing again after the watch failed.
const RETRY: Duration = Duration::from_secs(1);

/// Namespace name → whether it is being deleted; empty until first listed.
#[derive(Default)]
pub(super) struct NamespaceLifecycle {
    terminating: RwLock<Option<HashMap<String, bool>>>,
}

impl NamespaceLifecycle {
    /// Starts following the namespaces under `prefix`; the task ends once the
    /// returned cache is dropped and the next change arrives.
    pub(super) fn start(store: Arc<dyn Store>, prefix: String) -> Arc<Self> {
        let cache = Arc::new(Self::default());
        tokio::spawn(follow(store, prefix, Arc::downgrade(&cache)));
        cache
    }

    /// True when `namespace` is known to exist and not to be terminating.
    pub(super) fn is_active(&self, namespace: &str) -> bool {
        self.read()
            .as_ref()
            .and_then(|known| known.get(namespace))
            .is_some_and(|terminating| !terminating)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Option<HashMap<String, bool>>> {
        self.terminating.read().expect("namespace cache poisoned")
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Option<HashMap<String, bool>>> {
        self.terminating.write().expect("namespace cache poisoned")
    }
}

/// Name and terminating state of a stored namespace.
fn state_of(kv: &KeyValue) -> Option<(String, bool)> {
    let namespace: Value = serde_json::from_slice(&kv.value).ok()?;
    let name = namespace.pointer("/metadata/name")?.as_str()?.to_owned();
    let terminating = namespace.pointer("/metadata/deletionTimestamp").is_some();
    Some((name, terminating))
}

/// Lists, then watches from the list's revision; on any failure forgets
/// everything (so answers fall back to the store) and starts over.
async fn follow(store: Arc<dyn Store>, prefix: String, cache: Weak<NamespaceLifecycle>) {
    loop {
        let Some(live) = cache.upgrade() else { return };
        if let Ok(page) = store.list(&prefix, None, 0).await {
            let known = page.items.iter().filter_map(state_of).collect();
            *live.write() = Some(known);
            drop(live);
            if let Ok(mut events) = store.watch(&prefix, page.revision).await {
                while let Some(Ok(event)) = events.next().await {
                    let Some(live) = cache.upgrade() else { return };
                    let Some((name, terminating)) = state_of(&event.kv) else {
                        continue;
                    };
                    let mut guard = live.write();
                    if let Some(known) = guard.as_mut() {
                        match event.kind {
                            EventKind::Put => known.insert(name, terminating),
                            EventKind::Delete => known.remove(&name),
                        };
                    }
                }
            }
        }
        if let Some(live) = cache.upgrade() {
            *live.write() = None;
        }
        tokio::time::sleep(RETRY).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::SqliteStore;

    fn namespace(name: &str, terminating: bool) -> Vec<u8> {
        let mut ns = serde_json::json!({"metadata": {"name": name}});
        if terminating {
            ns["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z".into();
        }
        serde_json::to_vec(&ns).unwrap()
    }

    async fn eventually(check: impl Fn() -> bool) {
        for _ in 0..200 {
            if check() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the namespace cache never caught up");
    }

    #[tokio::test]
    async fn follows_creation_termination_and_deletion() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path().join("db")).unwrap());
        let key = "/registry/core/namespaces/team";
        let created = store.create(key, namespace("team", false)).await.unwrap();
        let cache =
            NamespaceLifecycle::start(Arc::clone(&store), "/registry/core/namespaces/".into());
        eventually(|| cache.is_active("team")).await;
        assert!(
            !cache.is_active("other"),
            "unknown namespaces are not vouched for"
        );

        let terminating = store
            .update(key, namespace("team", true), created.mod_revision)
            .await
            .unwrap();
        eventually(|| !cache.is_active("team")).await;

        store
            .delete(key, Some(terminating.mod_revision))
            .await
            .unwrap();
        store
            .create("/registry/core/namespaces/late", namespace("late", false))
            .await
            .unwrap();
        eventually(|| cache.is_active("late")).await;
        assert!(!cache.is_active("team"));
    }
}
