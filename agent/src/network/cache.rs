//! The plumbing every network loop of the agent shares: a cluster-wide
//! cache of one kind with the stream that fills it, and the wait for the
//! next burst of changes to settle, so each loop rewrites its kernel state
//! once per burst however much churns.

use std::time::Duration;

use futures::{FutureExt, Stream, StreamExt};
use kube::api::Api;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, WatchStreamExt};
use tokio_util::sync::CancellationToken;

/// A cache of every `K` in the cluster (or those `config` selects) and the
/// stream that fills it, yielding once per change.
pub fn reflected<K>(
    client: &kube::Client,
    config: watcher::Config,
) -> (Store<K>, impl Stream<Item = ()> + Send)
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    let (store, writer) = reflector::store::<K>();
    let events = watcher(Api::<K>::all(client.clone()), config)
        .default_backoff()
        .reflect(writer)
        .map(|_| ());
    (store, events)
}

/// Whether a cache holds its first complete list (a half-filled cache
/// would look like "these objects are gone").
pub fn ready<K>(store: &Store<K>) -> bool
where
    K: kube::Resource + Clone + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    matches!(store.wait_until_ready().now_or_never(), Some(Ok(())))
}

/// The objects of a cache, owned.
pub fn objects<K>(store: &Store<K>) -> Vec<K>
where
    K: kube::Resource + Clone + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    store.state().iter().map(|o| (**o).clone()).collect()
}

/// Waits for a change (or `retry_after`, when set, or `every`, when set),
/// then lets the burst settle for `settle`. `false` when `cancel` fired or
/// the changes ended: the loop should stop.
pub async fn next_burst(
    changes: &mut (impl Stream<Item = ()> + Unpin),
    settle: Duration,
    retry_after: Option<Duration>,
    every: Option<&mut tokio::time::Interval>,
    cancel: &CancellationToken,
) -> bool {
    let retry = tokio::time::sleep(retry_after.unwrap_or(Duration::MAX / 4));
    let tick = async {
        match every {
            Some(interval) => {
                interval.tick().await;
            }
            None => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = cancel.cancelled() => return false,
        change = changes.next() => if change.is_none() { return false },
        _ = retry => {}
        _ = tick => {}
    }
    let settled = tokio::time::sleep(settle);
    tokio::pin!(settled);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return false,
            _ = &mut settled => return true,
            change = changes.next() => if change.is_none() { return false },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_burst_is_one_wake_up_and_cancel_ends_it() {
        let cancel = CancellationToken::new();
        let mut changes = futures::stream::iter([(), (), ()]).chain(futures::stream::pending());
        let settle = Duration::from_millis(10);
        assert!(next_burst(&mut changes, settle, None, None, &cancel).await);
        // All three changes were taken by that one burst; only the retry wakes now.
        let started = tokio::time::Instant::now();
        assert!(
            next_burst(
                &mut changes,
                settle,
                Some(Duration::from_secs(1)),
                None,
                &cancel
            )
            .await
        );
        assert!(started.elapsed() >= Duration::from_secs(1));
        cancel.cancel();
        assert!(!next_burst(&mut changes, settle, None, None, &cancel).await);
        let mut ended = futures::stream::empty::<()>();
        assert!(!next_burst(&mut ended, settle, None, None, &CancellationToken::new()).await);
    }
}
