//! The HA store: an etcd 3.x cluster reached through `etcd-client`. Revisions,
//! watches and compaction are etcd's own, so this file only translates the
//! [`Store`] calls into transactions; it must never keep state of its own.

mod retry;
pub mod testing;
mod tls;

pub use tls::EtcdTls;

use std::collections::VecDeque;
use std::future::Future;
use std::time::Duration;

use async_trait::async_trait;
use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, DeleteOptions, EventType, GetOptions, KvClient,
    PutOptions, ResponseHeader, Txn, TxnOp, TxnOpResponse, TxnResponse, WatchClient, WatchOptions,
};
use futures::stream;

use super::{EventKind, KeyValue, ListPage, Store, StoreError, StoreEvent, WatchStream};

/// How long `connect` waits for any endpoint to answer before giving up.
const DIAL_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one unary request may take; the balanced channel would otherwise
/// wait forever while every endpoint is down.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest response accepted: a full list or a batch of watch events can be far
/// above gRPC's 4 MiB default (upstream's client lifts the limit the same way).
const MAX_MESSAGE_SIZE: usize = i32::MAX as usize;

/// etcd-backed [`Store`]. Cheap to clone: clones share the connections.
#[derive(Clone)]
pub struct EtcdStore {
    kv: KvClient,
    watch: WatchClient,
    endpoints: String,
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("etcd: {e}"))
}

fn revision_of(header: Option<&ResponseHeader>) -> Result<i64, StoreError> {
    header
        .map(ResponseHeader::revision)
        .ok_or_else(|| backend("response carried no header"))
}

fn to_key_value(kv: &etcd_client::KeyValue) -> KeyValue {
    KeyValue {
        key: String::from_utf8_lossy(kv.key()).into_owned(),
        value: kv.value().to_vec(),
        create_revision: kv.create_revision(),
        mod_revision: kv.mod_revision(),
    }
}

/// The etcd range `[start, end)` for keys under `prefix`, computed on bytes
/// (etcd's `range_end` need not be UTF-8); the empty prefix is every key,
/// which etcd spells `["\0", "\0")`.
fn prefix_range(prefix: &str) -> (Vec<u8>, Vec<u8>) {
    if prefix.is_empty() {
        return (vec![0], vec![0]);
    }
    let start = prefix.as_bytes().to_vec();
    let mut end = start.clone();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return (start, end);
        }
    }
    (start, vec![0])
}

/// True when the request never reached an etcd server (as opposed to etcd
/// answering with an error such as "no leader", which it prefixes `etcdserver:`).
fn is_unreachable(error: &etcd_client::Error) -> bool {
    match error {
        etcd_client::Error::TransportError(_) => true,
        etcd_client::Error::GRpcStatus(status) => {
            i32::from(status.code()) == retry::GRPC_UNAVAILABLE
                && !status.message().starts_with("etcdserver:")
        }
        _ => false,
    }
}

/// True when `error` says nothing about the request itself (see [`retry`]).
fn is_retryable(error: &etcd_client::Error) -> bool {
    match error {
        etcd_client::Error::TransportError(_) => true,
        etcd_client::Error::GRpcStatus(status) => {
            retry::retryable_status(i32::from(status.code()), status.message())
        }
        _ => false,
    }
}

/// The first response of a `Get` placed in a transaction's else-branch.
fn else_get(response: &TxnResponse) -> Option<KeyValue> {
    response.op_responses().into_iter().find_map(|op| match op {
        TxnOpResponse::Get(get) => get.kvs().first().map(to_key_value),
        _ => None,
    })
}

impl EtcdStore {
    /// Connects to an etcd cluster through any of `endpoints` (`HOST:PORT` or
    /// `http://HOST:PORT`) and checks that one answers, so a wrong address fails
    /// at start-up with a message rather than on the first request.
    pub async fn connect<E: AsRef<str>>(endpoints: &[E]) -> Result<Self, StoreError> {
        Self::connect_with(endpoints, None).await
    }

    /// As [`EtcdStore::connect`], over TLS when `tls` is given (`HOST:PORT`
    /// endpoints then mean `https://HOST:PORT`). Requests are balanced over
    /// every endpoint, so the store keeps working while a member is down.
    pub async fn connect_with<E: AsRef<str>>(
        endpoints: &[E],
        tls: Option<&EtcdTls>,
    ) -> Result<Self, StoreError> {
        let list = endpoints
            .iter()
            .map(|e| e.as_ref().to_owned())
            .collect::<Vec<_>>();
        if list.is_empty() {
            return Err(StoreError::Backend(
                "etcd: no endpoints given; pass at least one HOST:PORT".into(),
            ));
        }
        let joined = list.join(",");
        let options = ConnectOptions::new()
            .with_connect_timeout(DIAL_TIMEOUT)
            .with_keep_alive(Duration::from_secs(30), Duration::from_secs(10))
            .with_require_leader(true);
        let options = match tls {
            Some(tls) => options.with_tls(tls.options()),
            None => options,
        };
        let client = Client::connect(&list, Some(options))
            .await
            .map_err(|e| StoreError::Backend(format!("etcd endpoints {joined}: {e}")))?;
        let store = Self {
            kv: client
                .kv_client()
                .max_decoding_message_size(MAX_MESSAGE_SIZE),
            watch: client
                .watch_client()
                .max_decoding_message_size(MAX_MESSAGE_SIZE),
            endpoints: joined,
        };
        let unreachable = |detail: String| {
            StoreError::Backend(format!(
                "no etcd endpoint answered (tried {}): {detail}; check that etcd is running and listening there",
                store.endpoints
            ))
        };
        // Probed until one endpoint answers: the channel may first pick a
        // member that is down while the others serve, or a young cluster may
        // still be electing its first leader.
        let deadline = tokio::time::Instant::now() + DIAL_TIMEOUT;
        let mut attempt = 0;
        loop {
            let mut kv = store.kv.clone();
            let probe = kv.get(vec![0], Some(GetOptions::new().with_count_only()));
            match tokio::time::timeout_at(deadline, probe).await {
                Ok(Ok(_)) => return Ok(store),
                Ok(Err(e))
                    if is_retryable(&e)
                        && tokio::time::Instant::now() + retry::backoff(attempt) < deadline =>
                {
                    tokio::time::sleep(retry::backoff(attempt)).await;
                    attempt += 1;
                }
                Ok(Err(e)) if is_unreachable(&e) => return Err(unreachable(e.to_string())),
                Ok(Err(e)) => {
                    return Err(StoreError::Backend(format!(
                        "etcd at {}: {e}; check that the cluster is healthy and has a leader",
                        store.endpoints
                    )))
                }
                Err(_) => {
                    return Err(unreachable(format!(
                        "no answer within {}s",
                        DIAL_TIMEOUT.as_secs()
                    )))
                }
            }
        }
    }

    /// Runs one unary request, sending it again (to whichever endpoint the
    /// channel picks next) while it fails for reasons [`retry`] deems safe,
    /// all within [`REQUEST_TIMEOUT`]; names the endpoints on failure.
    async fn call<T, Fut>(&self, mut request: impl FnMut() -> Fut) -> Result<T, StoreError>
    where
        Fut: Future<Output = Result<T, etcd_client::Error>>,
    {
        let attempts = async {
            let mut attempt = 0;
            loop {
                match request().await {
                    Err(e) if is_retryable(&e) => {
                        tracing::debug!(error = %e, attempt, "etcd request failed; retrying");
                        tokio::time::sleep(retry::backoff(attempt)).await;
                        attempt += 1;
                    }
                    other => return other,
                }
            }
        };
        match tokio::time::timeout(REQUEST_TIMEOUT, attempts).await {
            Ok(result) => result.map_err(backend),
            Err(_) => Err(StoreError::Backend(format!(
                "etcd at {} did not answer within {}s",
                self.endpoints,
                REQUEST_TIMEOUT.as_secs()
            ))),
        }
    }

    async fn txn(&self, txn: Txn) -> Result<TxnResponse, StoreError> {
        self.call(|| {
            let (mut kv, txn) = (self.kv.clone(), txn.clone());
            async move { kv.txn(txn).await }
        })
        .await
    }
}

#[async_trait]
impl Store for EtcdStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        let response = self
            .call(|| {
                let mut kv = self.kv.clone();
                async move { kv.get(key, None).await }
            })
            .await?;
        Ok(response.kvs().first().map(to_key_value))
    }

    async fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<ListPage, StoreError> {
        let (mut start, end) = prefix_range(prefix);
        if let Some(after) = start_after {
            // The smallest key greater than `after`.
            let mut next = after.as_bytes().to_vec();
            next.push(0);
            start = start.max(next);
        }
        let mut options = GetOptions::new().with_range(end);
        if limit > 0 {
            options = options.with_limit(i64::try_from(limit).unwrap_or(i64::MAX));
        }
        let response = self
            .call(|| {
                let (mut kv, start, options) = (self.kv.clone(), start.clone(), options.clone());
                async move { kv.get(start, Some(options)).await }
            })
            .await?;
        Ok(ListPage {
            items: response.kvs().iter().map(to_key_value).collect(),
            more: response.more(),
            revision: revision_of(response.header())?,
        })
    }

    async fn create(&self, key: &str, value: Vec<u8>) -> Result<KeyValue, StoreError> {
        let txn = Txn::new()
            .when([Compare::create_revision(key, CompareOp::Equal, 0)])
            .and_then([TxnOp::put(key, value.clone(), None)]);
        let response = self.txn(txn).await?;
        if !response.succeeded() {
            return Err(StoreError::AlreadyExists(key.to_owned()));
        }
        let revision = revision_of(response.header())?;
        Ok(KeyValue {
            key: key.to_owned(),
            value,
            create_revision: revision,
            mod_revision: revision,
        })
    }

    async fn update(
        &self,
        key: &str,
        value: Vec<u8>,
        expected_revision: i64,
    ) -> Result<KeyValue, StoreError> {
        // `version > 0` keeps an update with expected revision 0 from creating a missing key.
        let txn = Txn::new()
            .when([
                Compare::version(key, CompareOp::Greater, 0),
                Compare::mod_revision(key, CompareOp::Equal, expected_revision),
            ])
            .and_then([TxnOp::put(
                key,
                value.clone(),
                Some(PutOptions::new().with_prev_key()),
            )])
            .or_else([TxnOp::get(key, None)]);
        let response = self.txn(txn).await?;
        if !response.succeeded() {
            return Err(match else_get(&response) {
                None => StoreError::NotFound(key.to_owned()),
                Some(current) => StoreError::Conflict {
                    key: key.to_owned(),
                    expected: expected_revision,
                    actual: current.mod_revision,
                },
            });
        }
        let create_revision = response
            .op_responses()
            .into_iter()
            .find_map(|op| match op {
                TxnOpResponse::Put(put) => put.prev_key().map(|kv| kv.create_revision()),
                _ => None,
            })
            .ok_or_else(|| backend(format!("update of {key} returned no previous value")))?;
        Ok(KeyValue {
            key: key.to_owned(),
            value,
            create_revision,
            mod_revision: revision_of(response.header())?,
        })
    }

    async fn delete(
        &self,
        key: &str,
        expected_revision: Option<i64>,
    ) -> Result<KeyValue, StoreError> {
        let mut compares = vec![Compare::version(key, CompareOp::Greater, 0)];
        if let Some(expected) = expected_revision {
            compares.push(Compare::mod_revision(key, CompareOp::Equal, expected));
        }
        let txn = Txn::new()
            .when(compares)
            .and_then([TxnOp::delete(
                key,
                Some(DeleteOptions::new().with_prev_key()),
            )])
            .or_else([TxnOp::get(key, None)]);
        let response = self.txn(txn).await?;
        if !response.succeeded() {
            return Err(match else_get(&response) {
                None => StoreError::NotFound(key.to_owned()),
                Some(current) => StoreError::Conflict {
                    key: key.to_owned(),
                    expected: expected_revision.unwrap_or_default(),
                    actual: current.mod_revision,
                },
            });
        }
        let deleted = response
            .op_responses()
            .into_iter()
            .find_map(|op| match op {
                TxnOpResponse::Delete(delete) => delete.prev_kvs().first().map(to_key_value),
                _ => None,
            })
            .ok_or_else(|| backend(format!("delete of {key} returned no previous value")))?;
        Ok(KeyValue {
            mod_revision: revision_of(response.header())?,
            ..deleted
        })
    }

    async fn watch(&self, prefix: &str, after_revision: i64) -> Result<WatchStream, StoreError> {
        let (key, end) = prefix_range(prefix);
        let options = WatchOptions::new()
            .with_range(end)
            .with_start_revision(after_revision.saturating_add(1).max(1))
            .with_prev_key();
        let inner = self
            .call(|| {
                let (mut client, key, options) = (self.watch.clone(), key.clone(), options.clone());
                async move { client.watch(key, Some(options)).await }
            })
            .await?;
        Ok(Box::pin(watch_events(inner, after_revision)))
    }

    async fn compact(&self, revision: i64) -> Result<(), StoreError> {
        let compacted = self
            .call(|| {
                let mut kv = self.kv.clone();
                async move { kv.compact(revision, None).await }
            })
            .await;
        match compacted {
            // Compacting at or below an earlier compaction is a no-op, as in the SQLite store.
            Err(StoreError::Backend(message))
                if message.contains("required revision has been compacted") =>
            {
                Ok(())
            }
            other => other.map(drop),
        }
    }

    async fn current_revision(&self) -> Result<i64, StoreError> {
        let response = self
            .call(|| {
                let mut kv = self.kv.clone();
                async move {
                    kv.get(vec![0], Some(GetOptions::new().with_count_only()))
                        .await
                }
            })
            .await?;
        revision_of(response.header())
    }
}

/// Where a watch is: still reading, or done after it yielded its final error.
struct WatchState {
    inner: Option<etcd_client::WatchStream>,
    ready: VecDeque<StoreEvent>,
    requested: i64,
}

/// Turns etcd's watch responses into [`StoreEvent`]s. The etcd stream is owned
/// by the returned stream, so dropping it closes the gRPC stream and etcd
/// cancels the watcher; no task is left behind.
fn watch_events(
    inner: etcd_client::WatchStream,
    requested: i64,
) -> impl futures::Stream<Item = Result<StoreEvent, StoreError>> + Send {
    let state = WatchState {
        inner: Some(inner),
        ready: VecDeque::new(),
        requested,
    };
    stream::unfold(state, |mut state| async move {
        loop {
            if let Some(event) = state.ready.pop_front() {
                return Some((Ok(event), state));
            }
            let inner = state.inner.as_mut()?;
            let failure = match inner.message().await {
                Ok(Some(response)) if response.canceled() => {
                    if response.compact_revision() > 0 {
                        StoreError::Compacted {
                            requested: state.requested,
                            compacted: response.compact_revision(),
                        }
                    } else {
                        backend(format!(
                            "the watch was cancelled: {}",
                            response.cancel_reason()
                        ))
                    }
                }
                Ok(Some(response)) => {
                    state
                        .ready
                        .extend(response.events().iter().filter_map(to_store_event));
                    continue;
                }
                Ok(None) => backend("the watch stream was closed by the server"),
                Err(e) => backend(e),
            };
            state.inner = None;
            return Some((Err(failure), state));
        }
    })
}

/// One etcd event as the trait reports it: a delete carries the last value
/// (from `prev_kv`) with the revision of the deletion.
fn to_store_event(event: &etcd_client::Event) -> Option<StoreEvent> {
    let kv = event.kv()?;
    Some(match event.event_type() {
        EventType::Put => StoreEvent {
            kind: EventKind::Put,
            kv: to_key_value(kv),
        },
        EventType::Delete => {
            let last = event.prev_kv().map(to_key_value);
            StoreEvent {
                kind: EventKind::Delete,
                kv: KeyValue {
                    key: String::from_utf8_lossy(kv.key()).into_owned(),
                    value: last.as_ref().map(|l| l.value.clone()).unwrap_or_default(),
                    create_revision: last.map_or(0, |l| l.create_revision),
                    mod_revision: kv.mod_revision(),
                },
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use futures::StreamExt;

    use super::testing::EtcdProcess;
    use super::*;

    /// Connects from inside a synchronous factory (the conformance suite's `make`).
    fn connect_blocking(process: &EtcdProcess) -> EtcdStore {
        let endpoint = process.endpoint();
        tokio::task::block_in_place(|| {
            tokio::runtime::Handle::current().block_on(EtcdStore::connect(&[endpoint]))
        })
        .expect("connecting to the test etcd")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn etcd_store_passes_conformance() {
        // One etcd per check: compaction is cluster-wide, so checks must not share one.
        let current: Mutex<Option<EtcdProcess>> = Mutex::new(None);
        super::super::conformance::run(|| {
            let process = tokio::task::block_in_place(EtcdProcess::start);
            let store = connect_blocking(&process);
            // Replacing the previous process stops it; the last one stops when `current` drops.
            *current.lock().unwrap() = Some(process);
            store
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn etcd_specific_edges_match_the_trait() {
        let process = tokio::task::block_in_place(EtcdProcess::start);
        let store = EtcdStore::connect(&[process.endpoint()]).await.unwrap();

        // An update expecting revision 0 must not create a missing key.
        assert!(matches!(
            store.update("/e/missing", b"x".to_vec(), 0).await,
            Err(StoreError::NotFound(_))
        ));
        assert_eq!(store.get("/e/missing").await.unwrap(), None);

        // A conflict reports the revision actually stored.
        let created = store.create("/e/a", b"1".to_vec()).await.unwrap();
        match store
            .update("/e/a", b"2".to_vec(), created.mod_revision + 7)
            .await
        {
            Err(StoreError::Conflict { actual, .. }) => assert_eq!(actual, created.mod_revision),
            other => panic!("expected Conflict, got {other:?}"),
        }

        // A conditional delete with the right revision returns the last value.
        let deleted = store
            .delete("/e/a", Some(created.mod_revision))
            .await
            .unwrap();
        assert_eq!(deleted.value, b"1");
        assert_eq!(deleted.create_revision, created.create_revision);
        assert_eq!(deleted.mod_revision, created.mod_revision + 1);

        // start_after before the prefix lists from the prefix; after it lists nothing.
        store.create("/e/l/a", b"a".to_vec()).await.unwrap();
        store.create("/e/l/b", b"b".to_vec()).await.unwrap();
        let page = store.list("/e/l/", Some("/a"), 0).await.unwrap();
        assert_eq!(page.items.len(), 2);
        let page = store.list("/e/l/", Some("/z"), 0).await.unwrap();
        assert!(page.items.is_empty() && !page.more);
        let all = store.list("", None, 0).await.unwrap();
        assert_eq!(all.items.len(), 2);

        // Compacting twice at the same revision is not an error.
        let revision = store.current_revision().await.unwrap();
        store.compact(revision).await.unwrap();
        store.compact(revision).await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn dropping_a_watch_cancels_it_in_etcd() {
        let process = tokio::task::block_in_place(EtcdProcess::start);
        let store = EtcdStore::connect(&[process.endpoint()]).await.unwrap();
        let watchers = || {
            process
                .metric("etcd_debugging_mvcc_watcher_total")
                .expect("etcd reports its watcher count")
        };
        let start = store.current_revision().await.unwrap();
        let mut events = store.watch("/d/", start).await.unwrap();
        store.create("/d/a", b"1".to_vec()).await.unwrap();
        let event = tokio::time::timeout(Duration::from_secs(5), events.next())
            .await
            .expect("watch event within 5s")
            .expect("watch open")
            .unwrap();
        assert_eq!(event.kv.key, "/d/a");
        assert_eq!(tokio::task::block_in_place(watchers), 1.0);
        drop(events);
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while tokio::task::block_in_place(watchers) != 0.0 {
            assert!(
                std::time::Instant::now() < deadline,
                "etcd still has a watcher 5s after the stream was dropped"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    #[tokio::test]
    async fn connecting_where_nothing_listens_says_so() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let endpoint = format!("127.0.0.1:{port}");
        let message = match EtcdStore::connect(&[endpoint.as_str()]).await {
            Ok(_) => panic!("connected to a port nobody listens on"),
            Err(e) => e.to_string(),
        };
        assert!(
            message.contains("no etcd endpoint answered") && message.contains(&endpoint),
            "{message}"
        );
        assert!(EtcdStore::connect::<&str>(&[]).await.is_err());
    }
}
