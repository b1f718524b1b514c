//! Fan-out of committed changes to watchers for backends without native watch
//! (SQLite). Recent events stay in a bounded ring so most watchers never touch
//! the database; older ones are read back from the backend's history table.

use std::collections::VecDeque;
use std::sync::{Arc, RwLock};

use futures::stream;
use tokio::sync::watch;

use super::{StoreError, StoreEvent, WatchStream};

/// Reads history that has fallen out of the ring (blocking; called off the runtime).
pub(crate) trait HistorySource: Send + Sync + 'static {
    /// Events under `prefix` with `after < revision <= upto`, in order.
    fn read_history(
        &self,
        prefix: &str,
        after: i64,
        upto: i64,
    ) -> Result<Vec<StoreEvent>, StoreError>;
}

struct Ring {
    events: VecDeque<Arc<StoreEvent>>,
    capacity: usize,
}

/// Recent events plus a signal that moves whenever a new revision commits.
pub(crate) struct EventLog {
    ring: RwLock<Ring>,
    latest: watch::Sender<i64>,
}

impl EventLog {
    pub(crate) fn new(current_revision: i64, capacity: usize) -> Self {
        let (latest, _) = watch::channel(current_revision);
        Self {
            ring: RwLock::new(Ring {
                events: VecDeque::with_capacity(capacity),
                capacity,
            }),
            latest,
        }
    }

    /// Records a committed event. Callers publish in revision order.
    pub(crate) fn publish(&self, event: StoreEvent) {
        let revision = event.kv.mod_revision;
        {
            let mut ring = self.ring.write().expect("event ring poisoned");
            if ring.events.len() == ring.capacity {
                ring.events.pop_front();
            }
            ring.events.push_back(Arc::new(event));
        }
        self.latest.send_replace(revision);
    }

    /// Events after `after` up to `upto`, if the ring still holds all of them.
    fn recent(&self, prefix: &str, after: i64, upto: i64) -> Option<Vec<StoreEvent>> {
        let ring = self.ring.read().expect("event ring poisoned");
        let oldest = ring.events.front()?.kv.mod_revision;
        if oldest > after + 1 {
            return None;
        }
        // The ring is in revision order: skip straight to the first new event.
        let first = ring.events.partition_point(|e| e.kv.mod_revision <= after);
        Some(
            ring.events
                .range(first..)
                .take_while(|e| e.kv.mod_revision <= upto)
                .filter(|e| e.kv.key.starts_with(prefix))
                .map(|e| (**e).clone())
                .collect(),
        )
    }

    /// A stream of events under `prefix` after `after`, read from the ring when
    /// possible and from `history` otherwise.
    pub(crate) fn watch(
        self: &Arc<Self>,
        history: Arc<dyn HistorySource>,
        prefix: String,
        after: i64,
    ) -> WatchStream {
        struct State {
            log: Arc<EventLog>,
            history: Arc<dyn HistorySource>,
            prefix: String,
            after: i64,
            pending: VecDeque<StoreEvent>,
            latest: watch::Receiver<i64>,
            failed: bool,
        }
        let state = State {
            log: Arc::clone(self),
            history,
            prefix,
            after,
            pending: VecDeque::new(),
            latest: self.latest.subscribe(),
            failed: false,
        };
        Box::pin(stream::unfold(state, |mut s| async move {
            loop {
                if s.failed {
                    return None;
                }
                if let Some(event) = s.pending.pop_front() {
                    return Some((Ok(event), s));
                }
                let upto = *s.latest.borrow_and_update();
                if upto > s.after {
                    let batch = match s.log.recent(&s.prefix, s.after, upto) {
                        Some(batch) => Ok(batch),
                        None => {
                            let (history, prefix, after) =
                                (Arc::clone(&s.history), s.prefix.clone(), s.after);
                            tokio::task::spawn_blocking(move || {
                                history.read_history(&prefix, after, upto)
                            })
                            .await
                            .unwrap_or_else(|e| Err(StoreError::Backend(e.to_string())))
                        }
                    };
                    match batch {
                        Ok(batch) => {
                            s.pending.extend(batch);
                            s.after = upto;
                            continue;
                        }
                        Err(e) => {
                            s.failed = true;
                            return Some((Err(e), s));
                        }
                    }
                }
                if s.latest.changed().await.is_err() {
                    return None;
                }
            }
        }))
    }
}
