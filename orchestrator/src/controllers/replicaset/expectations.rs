//! Creations and deletions a ReplicaSet has in flight, remembered until the
//! pod watch shows them (upstream's `UIDTrackingControllerExpectations`). While
//! any is outstanding the controller does not count pods again, so a slow watch
//! never makes it create or delete twice. Pure bookkeeping, no I/O.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long unobserved expectations hold the controller back (upstream: 5 minutes).
pub const EXPECTATIONS_TIMEOUT: Duration = Duration::from_secs(300);

#[derive(Debug)]
struct Pending {
    /// Names of pods created but not yet seen.
    creations: HashSet<String>,
    /// UIDs of pods deleted but still seen without a deletionTimestamp.
    deletions: HashSet<String>,
    since: Instant,
}

/// Per-owner (by UID) expectations.
#[derive(Debug, Default)]
pub struct Expectations {
    pending: Mutex<HashMap<String, Pending>>,
}

impl Expectations {
    fn with<T>(&self, owner: &str, now: Instant, f: impl FnOnce(&mut Pending) -> T) -> T {
        let mut pending = self.pending.lock().expect("expectations lock");
        let entry = pending.entry(owner.to_owned()).or_insert_with(|| Pending {
            creations: HashSet::new(),
            deletions: HashSet::new(),
            since: now,
        });
        f(entry)
    }

    /// Remembers pods created for `owner` (by name).
    pub fn expect_creations(
        &self,
        owner: &str,
        names: impl IntoIterator<Item = String>,
        now: Instant,
    ) {
        self.with(owner, now, |p| {
            p.creations.extend(names);
            p.since = now;
        });
    }

    /// Remembers pods deleted for `owner` (by UID).
    pub fn expect_deletions(
        &self,
        owner: &str,
        uids: impl IntoIterator<Item = String>,
        now: Instant,
    ) {
        self.with(owner, now, |p| {
            p.deletions.extend(uids);
            p.since = now;
        });
    }

    /// The pod watch saw pod `name` owned by `owner`.
    pub fn observe_creation(&self, owner: &str, name: &str) {
        if let Some(p) = self
            .pending
            .lock()
            .expect("expectations lock")
            .get_mut(owner)
        {
            p.creations.remove(name);
        }
    }

    /// Whether everything `owner` did has been observed: `seen(name)` says a
    /// created pod is in the cache, `gone(uid)` that a deleted pod has left it
    /// or is terminating. Expired expectations count as met (and are dropped).
    pub fn satisfied(
        &self,
        owner: &str,
        now: Instant,
        seen: impl Fn(&str) -> bool,
        gone: impl Fn(&str) -> bool,
    ) -> bool {
        let mut pending = self.pending.lock().expect("expectations lock");
        let Some(p) = pending.get_mut(owner) else {
            return true;
        };
        p.creations.retain(|name| !seen(name));
        p.deletions.retain(|uid| !gone(uid));
        let done = p.creations.is_empty() && p.deletions.is_empty();
        if done || now.duration_since(p.since) >= EXPECTATIONS_TIMEOUT {
            pending.remove(owner);
            return true;
        }
        false
    }

    /// Forgets `owner` (it was deleted).
    pub fn forget(&self, owner: &str) {
        self.pending
            .lock()
            .expect("expectations lock")
            .remove(owner);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creations_block_until_seen_in_the_cache_or_observed() {
        let e = Expectations::default();
        let t0 = Instant::now();
        assert!(e.satisfied("rs", t0, |_| false, |_| false));
        e.expect_creations("rs", ["a".to_owned(), "b".to_owned()], t0);
        assert!(!e.satisfied("rs", t0, |_| false, |_| false));
        assert!(!e.satisfied("rs", t0, |n| n == "a", |_| false));
        e.observe_creation("rs", "b");
        assert!(e.satisfied("rs", t0, |_| false, |_| false));
    }

    #[test]
    fn deletions_block_until_gone_and_everything_expires() {
        let e = Expectations::default();
        let t0 = Instant::now();
        e.expect_deletions("rs", ["uid-1".to_owned()], t0);
        assert!(!e.satisfied("rs", t0, |_| true, |_| false));
        assert!(e.satisfied("rs", t0, |_| true, |u| u == "uid-1"));
        e.expect_creations("rs", ["never".to_owned()], t0);
        assert!(!e.satisfied("rs", t0 + Duration::from_secs(1), |_| false, |_| false));
        assert!(e.satisfied("rs", t0 + EXPECTATIONS_TIMEOUT, |_| false, |_| false));
        e.expect_creations("other", ["x".to_owned()], t0);
        e.forget("other");
        assert!(e.satisfied("other", t0, |_| false, |_| false));
    }
}
