//! What the collector remembers between events, in the spirit of upstream's
//! dependency graph and `absentOwnerCache`: which dependents name each owner
//! UID (so an owner's deletion finds them without scanning every cache), and
//! which owner UIDs are known to be gone (so a thousand pods of one deleted
//! ReplicaSet cost one live read, not a thousand).

use std::collections::{HashMap, HashSet, VecDeque};

/// An object the collector follows: (index of its kind, namespace, name).
pub type Key = (usize, Option<String>, String);

/// Owner UID → the dependents whose ownerReferences name it.
#[derive(Debug, Default)]
pub struct DependentsIndex {
    by_owner: HashMap<String, HashSet<Key>>,
    owners_of: HashMap<Key, Vec<String>>,
}

impl DependentsIndex {
    /// Records that `key` now names exactly `owners` (UIDs); an object with
    /// no owners is forgotten.
    pub fn set(&mut self, key: Key, owners: Vec<String>) {
        if self.owners_of.get(&key) == Some(&owners) {
            return;
        }
        self.remove(&key);
        if owners.is_empty() {
            return;
        }
        for uid in &owners {
            self.by_owner
                .entry(uid.clone())
                .or_default()
                .insert(key.clone());
        }
        self.owners_of.insert(key, owners);
    }

    /// Forgets `key`, as its object was deleted.
    pub fn remove(&mut self, key: &Key) {
        let Some(owners) = self.owners_of.remove(key) else {
            return;
        };
        for uid in owners {
            if let Some(dependents) = self.by_owner.get_mut(&uid) {
                dependents.remove(key);
                if dependents.is_empty() {
                    self.by_owner.remove(&uid);
                }
            }
        }
    }

    /// The dependents that name `uid` as an owner.
    pub fn dependents(&self, uid: &str) -> Vec<Key> {
        self.by_owner
            .get(uid)
            .map(|keys| keys.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Drops every entry, as the caches were listed afresh.
    pub fn clear(&mut self) {
        self.by_owner.clear();
        self.owners_of.clear();
    }
}

/// How many gone owner UIDs are remembered (upstream's absentOwnerCache
/// holds 500); the oldest is forgotten first.
pub const ABSENT_OWNERS_REMEMBERED: usize = 500;

/// Owner UIDs known to be gone. A UID is never reused, so once seen gone
/// (a watch's delete event, a live read's 404) it stays gone.
#[derive(Debug)]
pub struct AbsentOwners {
    capacity: usize,
    order: VecDeque<String>,
    known: HashSet<String>,
}

impl AbsentOwners {
    /// An empty memory of at most `capacity` UIDs.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            order: VecDeque::with_capacity(capacity),
            known: HashSet::with_capacity(capacity),
        }
    }

    /// Remembers `uid` as gone.
    pub fn insert(&mut self, uid: &str) {
        if self.capacity == 0 || self.known.contains(uid) {
            return;
        }
        if self.order.len() == self.capacity {
            if let Some(oldest) = self.order.pop_front() {
                self.known.remove(&oldest);
            }
        }
        self.order.push_back(uid.to_owned());
        self.known.insert(uid.to_owned());
    }

    /// Whether `uid` is known to be gone.
    pub fn contains(&self, uid: &str) -> bool {
        self.known.contains(uid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str) -> Key {
        (0, Some("default".into()), name.into())
    }

    #[test]
    fn dependents_follow_their_owner_references_as_they_change() {
        let mut index = DependentsIndex::default();
        index.set(key("a"), vec!["rs-1".into()]);
        index.set(key("b"), vec!["rs-1".into(), "other".into()]);
        let mut found = index.dependents("rs-1");
        found.sort();
        assert_eq!(found, vec![key("a"), key("b")]);

        // Adopted by another owner: no longer a dependent of the first.
        index.set(key("a"), vec!["rs-2".into()]);
        assert_eq!(index.dependents("rs-1"), vec![key("b")]);
        assert_eq!(index.dependents("rs-2"), vec![key("a")]);

        // Orphaned, then deleted: nothing is left behind.
        index.set(key("b"), vec![]);
        index.remove(&key("a"));
        assert!(index.dependents("rs-1").is_empty());
        assert!(index.dependents("rs-2").is_empty());
        assert!(index.dependents("other").is_empty());
        assert!(index.by_owner.is_empty() && index.owners_of.is_empty());
    }

    #[test]
    fn absent_owners_forget_the_oldest_beyond_their_capacity() {
        let mut absent = AbsentOwners::new(2);
        absent.insert("a");
        absent.insert("b");
        absent.insert("a");
        assert!(absent.contains("a") && absent.contains("b"));
        absent.insert("c");
        assert!(!absent.contains("a"));
        assert!(absent.contains("b") && absent.contains("c"));
        assert!(!AbsentOwners::new(0).contains("a"));
    }
}
