//! The single writer thread behind [`super::SqliteStore`]: it owns the write
//! connection, takes every write queued while the previous commit was being
//! made durable, and applies them as one transaction (one fsync) in which each
//! write has its own savepoint, so a failing write affects no other.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;

use rusqlite::{params, Connection, TransactionBehavior};
use tokio::sync::oneshot;

use super::super::{EventKind, KeyValue, StoreError, StoreEvent};
use super::backend;
use crate::store::event_log::EventLog;

/// One write's change to the database at the revision it is given.
pub(super) type WriteFn =
    Box<dyn FnOnce(&Connection, i64) -> Result<StoreEvent, StoreError> + Send>;

/// Where a write's outcome goes once its group is committed.
pub(super) type Reply = oneshot::Sender<Result<KeyValue, StoreError>>;

/// A write waiting for the next group commit.
type Queued = (WriteFn, Reply);

/// What the writer thread is asked to do.
pub(super) enum Job {
    /// A revisioned write, answered once its group is durable.
    Write { apply: WriteFn, reply: Reply },
    /// Drop history before `revision` (no revision of its own).
    Compact {
        revision: i64,
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
}

/// Handle to the writer thread; dropping every clone ends the thread.
pub(super) struct Writer {
    jobs: mpsc::Sender<Job>,
    revision: Arc<AtomicI64>,
}

impl Writer {
    /// Starts the thread on `conn`, whose last committed revision is `revision`.
    pub(super) fn spawn(
        conn: Connection,
        revision: i64,
        events: Arc<EventLog>,
    ) -> Result<Self, StoreError> {
        let (jobs, queue) = mpsc::channel();
        let shared = Arc::new(AtomicI64::new(revision));
        let mut state = WriterThread {
            conn,
            revision,
            published: Arc::clone(&shared),
            events,
        };
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || state.run(queue))
            .map_err(backend)?;
        Ok(Self {
            jobs,
            revision: shared,
        })
    }

    /// Queues a job; fails only when the thread is gone.
    pub(super) fn submit(&self, job: Job) -> Result<(), StoreError> {
        self.jobs
            .send(job)
            .map_err(|_| StoreError::Backend("the sqlite writer has stopped".into()))
    }

    /// The revision of the last durable commit.
    pub(super) fn revision(&self) -> i64 {
        self.revision.load(Ordering::Acquire)
    }
}

struct WriterThread {
    conn: Connection,
    revision: i64,
    published: Arc<AtomicI64>,
    events: Arc<EventLog>,
}

/// A write applied inside the open transaction, waiting for its commit.
type Applied = (Reply, Result<StoreEvent, StoreError>);

impl WriterThread {
    fn run(&mut self, queue: mpsc::Receiver<Job>) {
        while let Ok(first) = queue.recv() {
            let mut writes = Vec::new();
            let mut next = Some(first);
            while let Some(job) = next {
                match job {
                    Job::Write { apply, reply } => writes.push((apply, reply)),
                    Job::Compact { revision, reply } => {
                        // Keep order: commit what came before, then compact.
                        self.commit_group(std::mem::take(&mut writes));
                        let _ = reply.send(self.compact(revision));
                    }
                }
                next = queue.try_recv().ok();
            }
            self.commit_group(writes);
        }
    }

    /// Applies `writes` in one transaction and answers each after the commit.
    fn commit_group(&mut self, writes: Vec<Queued>) {
        if writes.is_empty() {
            return;
        }
        match self.apply_group(writes) {
            Ok((applied, last)) => {
                self.revision = last;
                self.published.store(last, Ordering::Release);
                for (reply, outcome) in applied {
                    match outcome {
                        Ok(event) => {
                            let kv = event.kv.clone();
                            self.events.publish(event);
                            let _ = reply.send(Ok(kv));
                        }
                        Err(e) => {
                            let _ = reply.send(Err(e));
                        }
                    }
                }
            }
            Err((replies, error)) => {
                for reply in replies {
                    let _ = reply.send(Err(StoreError::Backend(error.clone())));
                }
            }
        }
    }

    /// On a commit failure nothing was stored and every writer gets the error.
    fn apply_group(
        &mut self,
        writes: Vec<Queued>,
    ) -> Result<(Vec<Applied>, i64), (Vec<Reply>, String)> {
        let start = self.revision;
        let tx = match self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
        {
            Ok(tx) => tx,
            Err(e) => return Err((writes.into_iter().map(|(_, r)| r).collect(), e.to_string())),
        };
        let mut last = start;
        let mut applied = Vec::with_capacity(writes.len());
        for (apply, reply) in writes {
            let outcome = in_savepoint(&tx, |conn| {
                let event = apply(conn, last + 1)?;
                record_history(conn, last + 1, &event)?;
                Ok(event)
            });
            if outcome.is_ok() {
                last += 1;
            }
            applied.push((reply, outcome));
        }
        let finish = |tx: rusqlite::Transaction<'_>| -> Result<(), String> {
            if last > start {
                tx.prepare_cached(
                    "INSERT INTO meta (name, value) VALUES ('revision', ?1) ON CONFLICT(name) DO UPDATE SET value = excluded.value",
                )
                .and_then(|mut stmt| stmt.execute([last]))
                .map_err(|e| e.to_string())?;
            }
            tx.commit().map_err(|e| e.to_string())
        };
        match finish(tx) {
            Ok(()) => Ok((applied, last)),
            Err(e) => Err((applied.into_iter().map(|(reply, _)| reply).collect(), e)),
        }
    }

    fn compact(&mut self, revision: i64) -> Result<(), StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend)?;
        tx.execute("DELETE FROM history WHERE revision < ?1", [revision])
            .map_err(backend)?;
        tx.execute(
            "INSERT INTO meta (name, value) VALUES ('compacted', ?1) ON CONFLICT(name) DO UPDATE SET value = max(value, excluded.value)",
            [revision],
        )
        .map_err(backend)?;
        tx.commit().map_err(backend)
    }
}

/// Runs `f` in a savepoint, rolled back when it fails. Cached statements keep
/// this cheap: it runs once per write.
fn in_savepoint<T>(
    conn: &Connection,
    f: impl FnOnce(&Connection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let exec = |sql: &str| {
        conn.prepare_cached(sql)
            .and_then(|mut stmt| stmt.execute([]))
            .map_err(backend)
    };
    exec("SAVEPOINT write")?;
    match f(conn) {
        Ok(value) => {
            exec("RELEASE write")?;
            Ok(value)
        }
        Err(e) => {
            exec("ROLLBACK TO write")?;
            exec("RELEASE write")?;
            Err(e)
        }
    }
}

fn record_history(conn: &Connection, revision: i64, event: &StoreEvent) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO history (revision, key, deleted, value, create_revision) VALUES (?1, ?2, ?3, ?4, ?5)",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            revision,
            event.kv.key,
            event.kind == EventKind::Delete,
            event.kv.value,
            event.kv.create_revision
        ])
    })
    .map_err(backend)?;
    Ok(())
}
