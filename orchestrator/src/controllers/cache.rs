//! A reflector's cache whose "first list complete" any number of tasks can
//! await at once. Reconciles and sweeps wait here, never on kube-runtime's
//! `Store::wait_until_ready`, which must not have two waiters.

use std::hash::Hash;
use std::ops::Deref;

use futures::{Stream, StreamExt};
use kube::runtime::reflector::{self, Lookup, Store};
use kube::runtime::watcher;
use tokio::sync::watch;

/// A [`Store`] with a readiness every waiter is woken for.
///
/// kube-runtime 5's `Store::wait_until_ready` polls one oneshot receiver
/// under a mutex, and a oneshot keeps one waker: of several tasks waiting at
/// once only the last to poll is woken, the others stay pending forever (and
/// a reconcile stuck there holds its object's slot, so the object is never
/// reconciled again). The readiness here is a broadcast, set when the
/// watcher's `InitDone` has passed through the reflector.
pub struct Cache<K>
where
    K: Lookup + Clone + 'static,
    K::DynamicType: Eq + Hash + Clone,
{
    store: Store<K>,
    ready: watch::Receiver<bool>,
}

/// The watch filling a cache ended before its first list completed (only
/// at shutdown).
#[derive(Debug, thiserror::Error)]
#[error("a cache's watch ended before its first list completed")]
pub struct CacheClosed;

impl<K> Cache<K>
where
    K: Lookup + Clone + 'static,
    K::DynamicType: Eq + Hash + Clone,
{
    /// Waits until the cache holds its first complete list, so a half-filled
    /// cache never reads as "these objects are gone". Any number of tasks
    /// may wait at once.
    pub async fn ready(&self) -> Result<(), CacheClosed> {
        let mut ready = self.ready.clone();
        if ready.wait_for(|ready| *ready).await.is_ok() {
            Ok(())
        } else {
            Err(CacheClosed)
        }
    }

    /// Whether the first list is complete, without waiting (for loops that
    /// skip a tick rather than wait).
    pub fn is_ready(&self) -> bool {
        *self.ready.borrow()
    }

    /// The plain store, for kube-runtime APIs that take one (the applier
    /// waits on it alone, which is safe).
    pub fn store(&self) -> Store<K> {
        self.store.clone()
    }
}

impl<K> Clone for Cache<K>
where
    K: Lookup + Clone + 'static,
    K::DynamicType: Eq + Hash + Clone,
{
    fn clone(&self) -> Self {
        Self {
            store: self.store.clone(),
            ready: self.ready.clone(),
        }
    }
}

impl<K> Deref for Cache<K>
where
    K: Lookup + Clone + 'static,
    K::DynamicType: Eq + Hash + Clone,
{
    type Target = Store<K>;

    fn deref(&self) -> &Store<K> {
        &self.store
    }
}

/// Fills a new cache from a watcher's `events`; the returned stream yields
/// each event after the cache has applied it, and must be polled for the
/// cache to fill and become ready.
pub fn reflect<K, W>(events: W) -> (Cache<K>, impl Stream<Item = W::Item>)
where
    K: Lookup + Clone + 'static,
    K::DynamicType: Eq + Hash + Clone + Default,
    W: Stream<Item = watcher::Result<watcher::Event<K>>>,
{
    let (store, writer) = reflector::store();
    let (ready_tx, ready) = watch::channel(false);
    // The reflector has applied an event to the store before it yields it.
    let events = reflector::reflector(writer, events).inspect(move |event| {
        if matches!(event, Ok(watcher::Event::InitDone)) {
            ready_tx.send_replace(true);
        }
    });
    (Cache { store, ready }, events)
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::time::Duration;

    use futures::stream;
    use k8s_openapi::api::core::v1::ConfigMap;

    use super::*;

    /// How many of three concurrent `wait`s finish once `mark_ready` has run
    /// (each waiter has polled, and so registered, before it runs).
    async fn woken<W, F>(wait: W, mark_ready: impl Future<Output = ()>) -> usize
    where
        W: Fn() -> F,
        F: Future<Output = ()> + Send + 'static,
    {
        let mut waiters: Vec<_> = (0..3).map(|_| tokio::spawn(wait())).collect();
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        mark_ready.await;
        let mut woken = 0;
        for waiter in &mut waiters {
            if tokio::time::timeout(Duration::from_secs(2), waiter)
                .await
                .is_ok()
            {
                woken += 1;
            }
        }
        for waiter in waiters {
            waiter.abort();
        }
        woken
    }

    #[tokio::test]
    async fn every_concurrent_waiter_is_woken_when_the_first_list_completes() {
        let events = stream::iter([
            Ok(watcher::Event::<ConfigMap>::Init),
            Ok(watcher::Event::InitDone),
        ])
        .chain(stream::pending());
        let (cache, events) = reflect(events);
        let mut events = Box::pin(events);
        assert!(!cache.is_ready());
        let wait = || {
            let cache = cache.clone();
            async move { cache.ready().await.expect("the watch is still running") }
        };
        let mark_ready = async {
            events.next().await;
            events.next().await;
        };
        assert_eq!(woken(wait, mark_ready).await, 3);
        assert!(cache.is_ready());
    }

    #[tokio::test]
    async fn a_cache_whose_watch_ends_before_its_first_list_reports_closed() {
        let (cache, events) = reflect(stream::iter([Ok(watcher::Event::<ConfigMap>::Init)]));
        assert_eq!(events.count().await, 1);
        assert!(cache.ready().await.is_err());
    }

    /// Why [`Cache`] exists: when kube-runtime wakes every waiter this
    /// fails, and the caches can wait on `Store::wait_until_ready` again.
    #[tokio::test]
    async fn kube_runtime_store_wakes_only_the_last_of_several_waiters() {
        let (store, mut writer) = reflector::store::<ConfigMap>();
        let wait = || {
            let store = store.clone();
            async move { store.wait_until_ready().await.expect("the writer lives") }
        };
        let mark_ready = async {
            writer.apply_watcher_event(&watcher::Event::Init);
            writer.apply_watcher_event(&watcher::Event::InitDone);
        };
        assert_eq!(woken(wait, mark_ready).await, 1);
    }
}
