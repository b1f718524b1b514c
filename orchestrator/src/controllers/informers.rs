//! One watch and one cache per kind, shared by every controller of the
//! process, as kube-controller-manager's shared informer factory: ten
//! controllers that follow pods cost the API server one pod watch, and this
//! process one decode and one cached copy of each pod change, not ten.
//!
//! Each subscriber gets its own unbounded queue of the objects touched
//! (applied or deleted) after the shared cache applied them, so a slow
//! controller never holds the others up (client-go's listeners buffer
//! without bound too). A subscriber that joins after the first list gets
//! the cache's objects first, as client-go replays its store to a handler
//! added late.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt::Debug;
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use futures::channel::mpsc;
use futures::{Stream, StreamExt};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Resource};
use serde::de::DeserializeOwned;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::cache::{self, Cache};

/// The shared watches of one controller process; cheap to clone. Each
/// kind's watch starts at its first use and stops with the token given to
/// [`Informers::new`] (or when the last clone is dropped).
#[derive(Clone)]
pub struct Informers {
    inner: Arc<Inner>,
}

struct Inner {
    client: kube::Client,
    cancel: CancellationToken,
    /// `TypeId` of `K` → `Arc<Shared<K>>`.
    kinds: Mutex<HashMap<TypeId, Box<dyn Any + Send + Sync>>>,
    watches: Mutex<JoinSet<()>>,
}

/// What a kind's subscribers share: its cache and their queues.
struct Shared<K>
where
    K: Resource + Clone + 'static,
    K::DynamicType: Eq + Hash + Clone,
{
    cache: Cache<K>,
    fan: Mutex<Fan<K>>,
}

/// The subscribers, and whether the first list has begun (one who joins
/// before it hears all of it).
struct Fan<K> {
    subscribers: Vec<Subscriber<K>>,
    first_list_begun: bool,
}

impl<K> Default for Fan<K> {
    fn default() -> Self {
        Self {
            subscribers: Vec::new(),
            first_list_begun: false,
        }
    }
}

struct Subscriber<K> {
    queue: mpsc::UnboundedSender<Arc<K>>,
    /// Joined while the first list was still arriving: it missed part of it
    /// and gets the whole cache once the list is complete.
    replay_when_listed: bool,
}

impl Informers {
    /// Watches made with `client`, all stopped when `cancel` fires.
    pub fn new(client: kube::Client, cancel: CancellationToken) -> Self {
        Self {
            inner: Arc::new(Inner {
                client,
                cancel,
                kinds: Mutex::default(),
                watches: Mutex::default(),
            }),
        }
    }

    /// The shared cache of every `K` in the cluster, and a stream of each
    /// object touched from now on (after the cache applied it); the stream
    /// must be polled, or its queue grows.
    pub fn watch<K>(
        &self,
    ) -> (
        Cache<K>,
        impl Stream<Item = Result<Arc<K>, watcher::Error>> + Send + 'static,
    )
    where
        K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
        K::DynamicType: Default + Eq + Hash + Clone + Send + Sync,
    {
        let shared = self.shared::<K>();
        (shared.cache.clone(), shared.subscribe())
    }

    /// The shared cache of every `K`, for a controller that reads it but
    /// needs no wake-ups from it.
    pub fn cache<K>(&self) -> Cache<K>
    where
        K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
        K::DynamicType: Default + Eq + Hash + Clone + Send + Sync,
    {
        self.shared::<K>().cache.clone()
    }

    /// The kind's shared state, its watch started on first use.
    fn shared<K>(&self) -> Arc<Shared<K>>
    where
        K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
        K::DynamicType: Default + Eq + Hash + Clone + Send + Sync,
    {
        let mut kinds = lock(&self.inner.kinds);
        if let Some(shared) = kinds
            .get(&TypeId::of::<K>())
            .and_then(|s| s.downcast_ref::<Arc<Shared<K>>>())
        {
            return Arc::clone(shared);
        }
        let api = Api::<K>::all(self.inner.client.clone());
        let (shared, fan_out) =
            Shared::new(watcher(api, watcher::Config::default()).default_backoff());
        kinds.insert(TypeId::of::<K>(), Box::new(Arc::clone(&shared)));
        let cancel = self.inner.cancel.clone();
        lock(&self.inner.watches).spawn(async move {
            tokio::select! {
                _ = cancel.cancelled() => {}
                _ = fan_out => {}
            }
        });
        shared
    }
}

impl<K> Shared<K>
where
    K: Resource + Clone + Debug + 'static,
    K::DynamicType: Default + Eq + Hash + Clone,
{
    /// The shared state filled from `events`, and the future that fills it
    /// and feeds the subscribers (to be polled until shutdown).
    fn new(
        events: impl Stream<Item = watcher::Result<watcher::Event<K>>> + Send + 'static,
    ) -> (
        Arc<Self>,
        impl std::future::Future<Output = ()> + Send + 'static,
    )
    where
        K: Send + Sync,
        K::DynamicType: Send + Sync,
    {
        let (cache, events) = cache::reflect(events);
        let shared = Arc::new(Self {
            cache,
            fan: Mutex::default(),
        });
        let fan_out = Arc::clone(&shared);
        (shared, async move { fan_out.run(events).await })
    }

    /// A new subscriber's queue: the cache's objects first when the first
    /// list is complete, then every object touched.
    fn subscribe(&self) -> impl Stream<Item = Result<Arc<K>, watcher::Error>> + Send + 'static
    where
        K: Send + Sync,
    {
        let (queue, events) = mpsc::unbounded();
        let mut fan = lock(&self.fan);
        let listed = self.cache.is_ready();
        if listed {
            for object in self.cache.state() {
                let _ = queue.unbounded_send(object);
            }
        }
        let replay_when_listed = !listed && fan.first_list_begun;
        fan.subscribers.push(Subscriber {
            queue,
            replay_when_listed,
        });
        events.map(Ok)
    }

    /// Hands each event the cache applied on to every subscriber.
    async fn run(&self, events: impl Stream<Item = watcher::Result<watcher::Event<K>>>) {
        let mut events = std::pin::pin!(events);
        while let Some(event) = events.next().await {
            match event {
                Ok(watcher::Event::Apply(object) | watcher::Event::Delete(object))
                | Ok(watcher::Event::InitApply(object)) => self.send(Arc::new(object)),
                Ok(watcher::Event::InitDone) => self.replay_to_late_joiners(),
                Ok(watcher::Event::Init) => lock(&self.fan).first_list_begun = true,
                Err(error) => tracing::debug!(
                    kind = %K::kind(&Default::default()),
                    %error,
                    "shared watch failed; retrying"
                ),
            }
        }
    }

    fn send(&self, object: Arc<K>) {
        lock(&self.fan)
            .subscribers
            .retain(|s| s.queue.unbounded_send(Arc::clone(&object)).is_ok());
    }

    fn replay_to_late_joiners(&self) {
        let mut fan = lock(&self.fan);
        if !fan.subscribers.iter().any(|s| s.replay_when_listed) {
            return;
        }
        let objects = self.cache.state();
        for subscriber in fan.subscribers.iter_mut().filter(|s| s.replay_when_listed) {
            subscriber.replay_when_listed = false;
            for object in &objects {
                let _ = subscriber.queue.unbounded_send(Arc::clone(object));
            }
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use futures::channel::mpsc::UnboundedSender;
    use futures::FutureExt;
    use k8s_openapi::api::core::v1::ConfigMap;

    use super::*;

    type Events = UnboundedSender<watcher::Result<watcher::Event<ConfigMap>>>;

    fn map(name: &str) -> ConfigMap {
        let mut map = ConfigMap::default();
        map.metadata.name = Some(name.into());
        map.metadata.namespace = Some("default".into());
        map
    }

    /// A shared informer fed by hand, its fan-out running on a task.
    fn fed() -> (Events, Arc<Shared<ConfigMap>>, tokio::task::JoinHandle<()>) {
        let (events, source) = mpsc::unbounded();
        let (shared, fan_out) = Shared::new(source);
        (events, shared, tokio::spawn(fan_out))
    }

    /// The names a subscriber has been handed so far.
    async fn received(
        queue: &mut (impl Stream<Item = Result<Arc<ConfigMap>, watcher::Error>> + Unpin),
    ) -> Vec<String> {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let mut names = Vec::new();
        while let Some(Some(Ok(object))) = queue.next().now_or_never() {
            names.push(object.metadata.name.clone().unwrap_or_default());
        }
        names
    }

    fn send(events: &Events, event: watcher::Event<ConfigMap>) {
        events.unbounded_send(Ok(event)).unwrap();
    }

    #[tokio::test]
    async fn every_subscriber_sees_each_change_once_including_deletions() {
        let (events, shared, _fan_out) = fed();
        let mut first = Box::pin(shared.subscribe());
        let mut second = Box::pin(shared.subscribe());
        send(&events, watcher::Event::Init);
        send(&events, watcher::Event::InitApply(map("a")));
        send(&events, watcher::Event::InitDone);
        send(&events, watcher::Event::Apply(map("b")));
        send(&events, watcher::Event::Delete(map("a")));
        // Joined before the list: the list's objects come as events, and
        // no replay repeats them.
        assert_eq!(received(&mut first).await, ["a", "b", "a"]);
        assert_eq!(received(&mut second).await, ["a", "b", "a"]);
        assert_eq!(shared.cache.state().len(), 1, "only b is left");
    }

    #[tokio::test]
    async fn a_late_subscriber_is_handed_the_cache_first() {
        let (events, shared, _fan_out) = fed();
        send(&events, watcher::Event::Init);
        send(&events, watcher::Event::InitApply(map("a")));
        send(&events, watcher::Event::InitDone);
        shared.cache.ready().await.unwrap();
        let mut late = Box::pin(shared.subscribe());
        send(&events, watcher::Event::Apply(map("b")));
        assert_eq!(received(&mut late).await, ["a", "b"]);
    }

    #[tokio::test]
    async fn a_subscriber_joining_during_the_first_list_gets_all_of_it() {
        let (events, shared, _fan_out) = fed();
        send(&events, watcher::Event::Init);
        send(&events, watcher::Event::InitApply(map("a")));
        tokio::time::sleep(Duration::from_millis(20)).await;
        let mut midway = Box::pin(shared.subscribe());
        send(&events, watcher::Event::InitApply(map("b")));
        send(&events, watcher::Event::InitDone);
        let mut names = received(&mut midway).await;
        names.sort();
        names.dedup();
        assert_eq!(names, ["a", "b"], "a was listed before it joined");
    }

    #[tokio::test]
    async fn a_dropped_subscriber_holds_nothing_up() {
        let (events, shared, _fan_out) = fed();
        let gone = shared.subscribe();
        let mut kept = Box::pin(shared.subscribe());
        drop(gone);
        send(&events, watcher::Event::Apply(map("a")));
        assert_eq!(received(&mut kept).await, ["a"]);
        assert_eq!(lock(&shared.fan).subscribers.len(), 1);
    }
}
