//! The embedded default store: one SQLite file in WAL mode, shaped like etcd
//! (a global revision counter, a history log for watches, compaction), in the
//! spirit of k3s's kine. A write is acknowledged only after its commit is durable.

use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension};
use tokio::sync::oneshot;

use super::event_log::{EventLog, HistorySource};
use super::{
    prefix_end, EventKind, KeyValue, ListPage, Store, StoreError, StoreEvent, WatchStream,
};

mod writer;

use writer::{Job, Writer};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS kv (
    key TEXT PRIMARY KEY,
    value BLOB NOT NULL,
    create_revision INTEGER NOT NULL,
    mod_revision INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS history (
    revision INTEGER PRIMARY KEY,
    key TEXT NOT NULL,
    deleted INTEGER NOT NULL,
    value BLOB NOT NULL,
    create_revision INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
";

/// Number of recent events kept in memory for watchers.
const RING_CAPACITY: usize = 16_384;
/// Read connections kept open beside the single writer.
const READERS: usize = 4;

/// SQLite-backed [`Store`].
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    writer: Writer,
    readers: Mutex<Vec<Connection>>,
    path: std::path::PathBuf,
    events: Arc<EventLog>,
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn open_connection(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path).map_err(backend)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(backend)?;
    conn.execute_batch(
        // 16 MiB of page cache per connection keeps the hot pages of kv and
        // history in memory (the default 2 MiB made every write re-read
        // pages with pread); checkpointing every 4,096 pages rather than
        // 1,000 copies a page rewritten by several commits only once.
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=OFF;
         PRAGMA cache_size=-16384; PRAGMA wal_autocheckpoint=4096;",
    )
    .map_err(backend)?;
    Ok(conn)
}

fn read_meta(conn: &Connection, name: &str) -> Result<i64, StoreError> {
    conn.prepare_cached("SELECT value FROM meta WHERE name = ?1")
        .and_then(|mut stmt| stmt.query_row([name], |r| r.get(0)).optional())
        .map_err(backend)
        .map(|v| v.unwrap_or(0))
}

fn row_to_kv(row: &rusqlite::Row<'_>) -> rusqlite::Result<KeyValue> {
    Ok(KeyValue {
        key: row.get(0)?,
        value: row.get(1)?,
        create_revision: row.get(2)?,
        mod_revision: row.get(3)?,
    })
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        let conn = open_connection(&path)?;
        conn.execute_batch(SCHEMA).map_err(backend)?;
        let revision = read_meta(&conn, "revision")?;
        let readers = (0..READERS)
            .map(|_| open_connection(&path))
            .collect::<Result<Vec<_>, _>>()?;
        let events = Arc::new(EventLog::new(revision, RING_CAPACITY));
        Ok(Self {
            inner: Arc::new(Inner {
                writer: Writer::spawn(conn, revision, Arc::clone(&events))?,
                readers: Mutex::new(readers),
                path,
                events,
            }),
        })
    }

    /// Runs a blocking closure against a read connection.
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || inner.with_reader(f))
            .await
            .map_err(backend)?
    }

    /// Hands one write (a closure producing one event) to the writer thread,
    /// which commits it with whatever other writes are waiting. Answers only
    /// after the commit is durable.
    async fn write(
        &self,
        f: impl FnOnce(&Connection, i64) -> Result<StoreEvent, StoreError> + Send + 'static,
    ) -> Result<KeyValue, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.inner.writer.submit(Job::Write {
            apply: Box::new(f),
            reply,
        })?;
        answer
            .await
            .map_err(|_| StoreError::Backend("the write was dropped before it committed".into()))?
    }
}

impl Inner {
    fn with_reader<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let conn = self.readers.lock().expect("reader pool poisoned").pop();
        let conn = match conn {
            Some(conn) => conn,
            None => open_connection(&self.path)?,
        };
        let result = f(&conn);
        let mut pool = self.readers.lock().expect("reader pool poisoned");
        if pool.len() < READERS {
            pool.push(conn);
        }
        result
    }
}

fn current_row(conn: &Connection, key: &str) -> Result<Option<KeyValue>, StoreError> {
    conn.prepare_cached("SELECT key, value, create_revision, mod_revision FROM kv WHERE key = ?1")
        .and_then(|mut stmt| stmt.query_row([key], row_to_kv).optional())
        .map_err(backend)
}

/// The revisions of `key` (create, mod) without reading its value: what a
/// create or a conditional update checks before writing.
fn current_revisions(conn: &Connection, key: &str) -> Result<Option<(i64, i64)>, StoreError> {
    conn.prepare_cached("SELECT create_revision, mod_revision FROM kv WHERE key = ?1")
        .and_then(|mut stmt| {
            stmt.query_row([key], |row| Ok((row.get(0)?, row.get(1)?)))
                .optional()
        })
        .map_err(backend)
}

/// Runs one cached statement that changes rows.
fn execute(conn: &Connection, sql: &str, params: impl rusqlite::Params) -> Result<(), StoreError> {
    conn.prepare_cached(sql)
        .and_then(|mut stmt| stmt.execute(params))
        .map(drop)
        .map_err(backend)
}

impl HistorySource for Inner {
    fn read_history(
        &self,
        prefix: &str,
        after: i64,
        upto: i64,
    ) -> Result<Vec<StoreEvent>, StoreError> {
        let end = prefix_end(prefix);
        self.with_reader(|conn| {
            let compacted = read_meta(conn, "compacted")?;
            if after < compacted - 1 {
                return Err(StoreError::Compacted {
                    requested: after,
                    compacted,
                });
            }
            let mut stmt = conn
                .prepare_cached(
                    "SELECT key, value, create_revision, revision, deleted FROM history
                     WHERE revision > ?1 AND revision <= ?2 AND key >= ?3 AND key < ?4
                     ORDER BY revision",
                )
                .map_err(backend)?;
            let rows = stmt
                .query_map(params![after, upto, prefix, end], |row| {
                    let deleted: bool = row.get(4)?;
                    Ok(StoreEvent {
                        kind: if deleted {
                            EventKind::Delete
                        } else {
                            EventKind::Put
                        },
                        kv: row_to_kv(row)?,
                    })
                })
                .map_err(backend)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(backend)
        })
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        let key = key.to_owned();
        self.read(move |conn| current_row(conn, &key)).await
    }

    async fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<ListPage, StoreError> {
        let start = start_after.unwrap_or("").max(prefix).to_owned();
        let inclusive = start_after.is_none() || start_after < Some(prefix);
        let end = prefix_end(prefix);
        let fetch = if limit == 0 {
            i64::MAX
        } else {
            limit as i64 + 1
        };
        self.read(move |conn| {
            let tx = conn.unchecked_transaction().map_err(backend)?;
            let revision = read_meta(&tx, "revision")?;
            let sql = if inclusive {
                "SELECT key, value, create_revision, mod_revision FROM kv WHERE key >= ?1 AND key < ?2 ORDER BY key LIMIT ?3"
            } else {
                "SELECT key, value, create_revision, mod_revision FROM kv WHERE key > ?1 AND key < ?2 ORDER BY key LIMIT ?3"
            };
            let mut items = {
                let mut stmt = tx.prepare_cached(sql).map_err(backend)?;
                let rows = stmt
                    .query_map(params![start, end, fetch], row_to_kv)
                    .map_err(backend)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(backend)?
            };
            let more = limit != 0 && items.len() > limit;
            items.truncate(if limit == 0 { items.len() } else { limit });
            Ok(ListPage {
                items,
                more,
                revision,
            })
        })
        .await
    }

    async fn create(&self, key: &str, value: Vec<u8>) -> Result<KeyValue, StoreError> {
        let key = key.to_owned();
        self.write(move |tx, revision| {
            if current_revisions(tx, &key)?.is_some() {
                return Err(StoreError::AlreadyExists(key));
            }
            execute(
                tx,
                "INSERT INTO kv (key, value, create_revision, mod_revision) VALUES (?1, ?2, ?3, ?3)",
                params![key, value, revision],
            )?;
            Ok(StoreEvent {
                kind: EventKind::Put,
                kv: KeyValue {
                    key,
                    value,
                    create_revision: revision,
                    mod_revision: revision,
                },
            })
        })
        .await
    }

    async fn update(
        &self,
        key: &str,
        value: Vec<u8>,
        expected_revision: i64,
    ) -> Result<KeyValue, StoreError> {
        let key = key.to_owned();
        self.write(move |tx, revision| {
            let (create_revision, mod_revision) =
                current_revisions(tx, &key)?.ok_or_else(|| StoreError::NotFound(key.clone()))?;
            if mod_revision != expected_revision {
                return Err(StoreError::Conflict {
                    key,
                    expected: expected_revision,
                    actual: mod_revision,
                });
            }
            execute(
                tx,
                "UPDATE kv SET value = ?2, mod_revision = ?3 WHERE key = ?1",
                params![key, value, revision],
            )?;
            Ok(StoreEvent {
                kind: EventKind::Put,
                kv: KeyValue {
                    key,
                    value,
                    create_revision,
                    mod_revision: revision,
                },
            })
        })
        .await
    }

    async fn delete(
        &self,
        key: &str,
        expected_revision: Option<i64>,
    ) -> Result<KeyValue, StoreError> {
        let key = key.to_owned();
        self.write(move |tx, revision| {
            let current =
                current_row(tx, &key)?.ok_or_else(|| StoreError::NotFound(key.clone()))?;
            if let Some(expected) = expected_revision {
                if current.mod_revision != expected {
                    return Err(StoreError::Conflict {
                        key,
                        expected,
                        actual: current.mod_revision,
                    });
                }
            }
            execute(tx, "DELETE FROM kv WHERE key = ?1", [&key])?;
            Ok(StoreEvent {
                kind: EventKind::Delete,
                kv: KeyValue {
                    mod_revision: revision,
                    ..current
                },
            })
        })
        .await
    }

    async fn watch(&self, prefix: &str, after_revision: i64) -> Result<WatchStream, StoreError> {
        let compacted = self.read(|conn| read_meta(conn, "compacted")).await?;
        if after_revision < compacted - 1 {
            return Err(StoreError::Compacted {
                requested: after_revision,
                compacted,
            });
        }
        let history: Arc<dyn HistorySource> = self.inner.clone();
        Ok(self
            .inner
            .events
            .watch(history, prefix.to_owned(), after_revision))
    }

    async fn compact(&self, revision: i64) -> Result<(), StoreError> {
        let (reply, answer) = oneshot::channel();
        self.inner.writer.submit(Job::Compact { revision, reply })?;
        answer
            .await
            .map_err(|_| StoreError::Backend("the sqlite writer stopped while compacting".into()))?
    }

    async fn current_revision(&self) -> Result<i64, StoreError> {
        Ok(self.inner.writer.revision())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sqlite_store_passes_conformance() {
        let dir = tempfile::tempdir().unwrap();
        let counter = std::sync::atomic::AtomicUsize::new(0);
        super::super::conformance::run(|| {
            let n = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            SqliteStore::open(dir.path().join(format!("db{n}.sqlite"))).unwrap()
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn grouped_writes_fail_alone_and_leave_no_revision_gaps() {
        use futures::StreamExt;
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("db")).unwrap();
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..200 {
            let store = store.clone();
            // Every key is created twice: one create wins, the other must fail alone.
            tasks.spawn(async move { store.create(&format!("/g/{}", i % 100), vec![b'x']).await });
        }
        let (mut created, mut refused) = (0, 0);
        while let Some(result) = tasks.join_next().await {
            match result.unwrap() {
                Ok(_) => created += 1,
                Err(StoreError::AlreadyExists(_)) => refused += 1,
                Err(other) => panic!("{other}"),
            }
        }
        assert_eq!((created, refused), (100, 100));
        assert_eq!(store.current_revision().await.unwrap(), 100);
        let mut events = store.watch("/g/", 0).await.unwrap();
        for expected in 1..=100 {
            let event = events.next().await.unwrap().unwrap();
            assert_eq!(event.kv.mod_revision, expected);
        }
        let reopened = SqliteStore::open(dir.path().join("db")).unwrap();
        assert_eq!(
            reopened.list("/g/", None, 0).await.unwrap().items.len(),
            100
        );
    }

    #[tokio::test]
    async fn reopening_keeps_keys_and_revisions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let created = {
            let store = SqliteStore::open(&path).unwrap();
            store.create("/a", b"1".to_vec()).await.unwrap()
        };
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(store.get("/a").await.unwrap(), Some(created));
        assert_eq!(store.current_revision().await.unwrap(), 1);
        let next = store.create("/b", b"2".to_vec()).await.unwrap();
        assert_eq!(next.mod_revision, 2);
    }
}
