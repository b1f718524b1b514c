//! The state store: an etcd-shaped, revisioned key-value interface that the API
//! server persists every object through. Backends live in child modules; nothing
//! outside the API server may talk to a store directly.

pub mod compactor;
pub mod conformance;
pub mod encryption;
pub mod etcd;
mod event_log;
pub mod instrumented;
pub mod sqlite;

use std::pin::Pin;

use async_trait::async_trait;
use futures::Stream;

/// One stored key with the revisions etcd would report for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    /// Full key, e.g. `/registry/core/pods/default/web`.
    pub key: String,
    /// Serialized object (JSON bytes).
    pub value: Vec<u8>,
    /// Revision at which the key was created; stays fixed across updates.
    pub create_revision: i64,
    /// Revision of the last change; becomes the object's `resourceVersion`.
    pub mod_revision: i64,
}

/// A page of keys read at one revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListPage {
    /// Keys in ascending order.
    pub items: Vec<KeyValue>,
    /// True when more keys follow the last one returned.
    pub more: bool,
    /// Store revision the page was read at; a watch resumes from here.
    pub revision: i64,
}

/// Whether a change created/updated a key or removed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// The key was created or updated.
    Put,
    /// The key was deleted.
    Delete,
}

/// One change, as a watcher sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreEvent {
    /// What happened.
    pub kind: EventKind,
    /// For `Put`, the new value; for `Delete`, the last value before deletion,
    /// with `mod_revision` set to the revision of the deletion (as upstream reports it).
    pub kv: KeyValue,
}

impl StoreEvent {
    /// True when a `Put` created the key (upstream's `ADDED`), false for updates.
    pub fn is_create(&self) -> bool {
        self.kind == EventKind::Put && self.kv.create_revision == self.kv.mod_revision
    }
}

/// A stream of changes under a prefix, in revision order. It ends with an
/// error item if the backend can no longer follow (e.g. history compacted).
pub type WatchStream = Pin<Box<dyn Stream<Item = Result<StoreEvent, StoreError>> + Send>>;

/// Errors a caller can act on; everything else is `Backend`.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// `create` found the key already present.
    #[error("key {0} already exists")]
    AlreadyExists(String),
    /// The key does not exist.
    #[error("key {0} not found")]
    NotFound(String),
    /// `update`/`delete` was conditioned on a revision that is no longer current.
    #[error("key {key} was modified: expected revision {expected}, found {actual}")]
    Conflict {
        /// Key that was written concurrently.
        key: String,
        /// Revision the caller expected.
        expected: i64,
        /// Revision actually stored.
        actual: i64,
    },
    /// The requested revision is older than the oldest kept history.
    #[error("required revision {requested} has been compacted (oldest available is {compacted})")]
    Compacted {
        /// Revision the caller asked for.
        requested: i64,
        /// Newest compacted revision.
        compacted: i64,
    },
    /// A value could not be encrypted or decrypted (encryption at rest):
    /// upstream's wording, naming the key and never the value.
    #[error("unable to transform key {key:?}: {message}")]
    Transform {
        /// The storage key whose value failed.
        key: String,
        /// Why, e.g. `no matching prefix found`.
        message: String,
    },
    /// The backend itself failed (disk, connection, corruption).
    #[error("storage backend error: {0}")]
    Backend(String),
}

/// An etcd-shaped store: every write gets the next revision of one global counter.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Reads one key at the latest revision.
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError>;

    /// Lists keys starting with `prefix`, after `start_after` (exclusive) when
    /// given, at most `limit` of them (0 = no limit).
    async fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<ListPage, StoreError>;

    /// Creates a key that must not exist yet.
    async fn create(&self, key: &str, value: Vec<u8>) -> Result<KeyValue, StoreError>;

    /// Replaces a key's value if its `mod_revision` still equals `expected_revision`.
    async fn update(
        &self,
        key: &str,
        value: Vec<u8>,
        expected_revision: i64,
    ) -> Result<KeyValue, StoreError>;

    /// Deletes a key, optionally only if its `mod_revision` equals `expected_revision`.
    /// Returns the value that was deleted, with `mod_revision` set to the deletion revision.
    async fn delete(
        &self,
        key: &str,
        expected_revision: Option<i64>,
    ) -> Result<KeyValue, StoreError>;

    /// Streams changes under `prefix` with revisions strictly greater than `after_revision`.
    async fn watch(&self, prefix: &str, after_revision: i64) -> Result<WatchStream, StoreError>;

    /// Forgets history below `revision`, as etcd does: a watch must start at
    /// `revision` or later (`after_revision >= revision - 1`), else it gets `Compacted`.
    async fn compact(&self, revision: i64) -> Result<(), StoreError>;

    /// The newest revision written.
    async fn current_revision(&self) -> Result<i64, StoreError>;
}

/// The smallest key greater than every key with this prefix (etcd's `range_end`).
pub fn prefix_end(prefix: &str) -> String {
    let mut bytes = prefix.as_bytes().to_vec();
    while let Some(last) = bytes.pop() {
        if last < 0xff {
            bytes.push(last + 1);
            return String::from_utf8_lossy(&bytes).into_owned();
        }
    }
    "\u{0}".to_owned()
}
