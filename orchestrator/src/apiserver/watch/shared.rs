//! Store events decoded once for every watcher. Each change reaches every
//! watch on its prefix (a scheduler, controllers, `kubectl get -w`); without
//! this each of them would parse the same stored JSON and serialize the same
//! object again.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;
use serde_json::Value;

use super::super::errors::ApiError;
use super::super::objects::decode;
use crate::store::KeyValue;

/// How many recent events stay decoded: enough for watchers that trail the
/// newest revision by a few hundred writes under load.
const CAPACITY: usize = 2048;

/// One stored change, decoded (resourceVersion stamped in).
pub struct SharedEvent {
    key: String,
    /// The object as watchers filter and render it.
    pub object: Value,
    json: OnceLock<Bytes>,
}

impl SharedEvent {
    /// The object as JSON, serialized by the first watcher that needs it.
    pub fn json(&self) -> &Bytes {
        self.json
            .get_or_init(|| Bytes::from(serde_json::to_vec(&self.object).unwrap_or_default()))
    }
}

/// Recently decoded events by revision, shared by every watch stream.
#[derive(Default)]
pub struct SharedEvents {
    recent: Mutex<BTreeMap<i64, Arc<SharedEvent>>>,
}

impl SharedEvents {
    /// The decoded form of `kv`, decoding it only if no watcher has yet.
    pub fn decode(&self, kv: &KeyValue) -> Result<Arc<SharedEvent>, ApiError> {
        let revision = kv.mod_revision;
        if let Some(hit) = self.lock().get(&revision) {
            if hit.key == kv.key {
                return Ok(Arc::clone(hit));
            }
        }
        // Decode outside the lock so watchers never wait on each other's parsing.
        let event = Arc::new(SharedEvent {
            key: kv.key.clone(),
            object: decode(kv)?,
            json: OnceLock::new(),
        });
        let mut recent = self.lock();
        recent.entry(revision).or_insert_with(|| Arc::clone(&event));
        while recent.len() > CAPACITY {
            recent.pop_first();
        }
        Ok(event)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<i64, Arc<SharedEvent>>> {
        self.recent.lock().expect("shared watch events poisoned")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(key: &str, revision: i64, name: &str) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: serde_json::to_vec(&serde_json::json!({"metadata": {"name": name}})).unwrap(),
            create_revision: revision,
            mod_revision: revision,
        }
    }

    #[test]
    fn watchers_share_one_decoded_event_per_revision() {
        let shared = SharedEvents::default();
        let first = shared.decode(&kv("/p/a", 7, "a")).unwrap();
        let second = shared.decode(&kv("/p/a", 7, "a")).unwrap();
        assert!(Arc::ptr_eq(&first, &second));
        assert_eq!(first.object["metadata"]["resourceVersion"], "7");
        assert_eq!(
            first.json().as_ref(),
            br#"{"metadata":{"name":"a","resourceVersion":"7"}}"#
        );
    }

    #[test]
    fn a_different_key_at_the_same_revision_is_decoded_on_its_own() {
        let shared = SharedEvents::default();
        shared.decode(&kv("/p/a", 7, "a")).unwrap();
        let other = shared.decode(&kv("/p/b", 7, "b")).unwrap();
        assert_eq!(other.object["metadata"]["name"], "b");
    }

    #[test]
    fn only_recent_revisions_are_kept() {
        let shared = SharedEvents::default();
        for revision in 1..=(CAPACITY as i64 + 10) {
            shared.decode(&kv("/p/a", revision, "a")).unwrap();
        }
        let recent = shared.lock();
        assert_eq!(recent.len(), CAPACITY);
        assert_eq!(recent.keys().next(), Some(&11));
    }
}
