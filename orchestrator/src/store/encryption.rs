//! Encryption at rest: a [`Store`] wrapper that encrypts the values of the
//! configured resources (Secrets, typically) on every write and decrypts them
//! on every read — gets, list pages, watch events and the values deletes
//! return — as kube-apiserver's `--encryption-provider-config` does. The
//! backend (SQLite or etcd) only ever sees ciphertext for those keys; keys,
//! revisions and every other resource pass through untouched.

pub mod aes_gcm;
pub mod config;
pub mod envelope;
pub mod rules;
pub mod transformer;

use std::sync::Arc;

use async_trait::async_trait;
use futures::StreamExt;

use super::{KeyValue, ListPage, Store, StoreError, StoreEvent, WatchStream};
use rules::EncryptionRules;
use transformer::TransformError;

/// The store, with the configured resources' values encrypted.
pub struct EncryptedStore {
    inner: Arc<dyn Store>,
    rules: Arc<EncryptionRules>,
}

impl EncryptedStore {
    /// Wraps `inner` so that keys `rules` covers are stored encrypted.
    pub fn wrap(inner: Arc<dyn Store>, rules: EncryptionRules) -> Arc<dyn Store> {
        Arc::new(Self {
            inner,
            rules: Arc::new(rules),
        })
    }
}

fn transform_error(key: &str, e: TransformError) -> StoreError {
    StoreError::Transform {
        key: key.to_owned(),
        message: e.to_string(),
    }
}

/// What is stored for `value` under `key`; None when `key` is stored as it is.
async fn encrypt(
    rules: &EncryptionRules,
    key: &str,
    value: &[u8],
) -> Option<Result<Vec<u8>, StoreError>> {
    let chain = rules.chain_for(key)?;
    Some(
        chain
            .transform_to_storage(value, key.as_bytes())
            .await
            .map_err(|e| transform_error(key, e)),
    )
}

/// `kv` with its stored value replaced by the plaintext.
async fn decrypt(rules: &EncryptionRules, mut kv: KeyValue) -> Result<KeyValue, StoreError> {
    if let Some(chain) = rules.chain_for(&kv.key) {
        kv.value = chain
            .transform_from_storage(&kv.value, kv.key.as_bytes())
            .await
            .map_err(|e| transform_error(&kv.key, e))?;
    }
    Ok(kv)
}

#[async_trait]
impl Store for EncryptedStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        match self.inner.get(key).await? {
            Some(kv) => Ok(Some(decrypt(&self.rules, kv).await?)),
            None => Ok(None),
        }
    }

    async fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<ListPage, StoreError> {
        let mut page = self.inner.list(prefix, start_after, limit).await?;
        let stored = std::mem::take(&mut page.items);
        page.items.reserve(stored.len());
        for kv in stored {
            page.items.push(decrypt(&self.rules, kv).await?);
        }
        Ok(page)
    }

    async fn create(&self, key: &str, value: Vec<u8>) -> Result<KeyValue, StoreError> {
        let Some(stored) = encrypt(&self.rules, key, &value).await else {
            return self.inner.create(key, value).await;
        };
        let mut kv = self.inner.create(key, stored?).await?;
        kv.value = value;
        Ok(kv)
    }

    async fn update(
        &self,
        key: &str,
        value: Vec<u8>,
        expected_revision: i64,
    ) -> Result<KeyValue, StoreError> {
        let Some(stored) = encrypt(&self.rules, key, &value).await else {
            return self.inner.update(key, value, expected_revision).await;
        };
        let mut kv = self.inner.update(key, stored?, expected_revision).await?;
        kv.value = value;
        Ok(kv)
    }

    async fn delete(
        &self,
        key: &str,
        expected_revision: Option<i64>,
    ) -> Result<KeyValue, StoreError> {
        let deleted = self.inner.delete(key, expected_revision).await?;
        decrypt(&self.rules, deleted).await
    }

    async fn watch(&self, prefix: &str, after_revision: i64) -> Result<WatchStream, StoreError> {
        let events = self.inner.watch(prefix, after_revision).await?;
        let rules = Arc::clone(&self.rules);
        Ok(Box::pin(events.then(move |event| {
            let rules = Arc::clone(&rules);
            async move {
                let StoreEvent { kind, kv } = event?;
                Ok(StoreEvent {
                    kind,
                    kv: decrypt(&rules, kv).await?,
                })
            }
        })))
    }

    async fn compact(&self, revision: i64) -> Result<(), StoreError> {
        self.inner.compact(revision).await
    }

    async fn current_revision(&self) -> Result<i64, StoreError> {
        self.inner.current_revision().await
    }
}

#[cfg(test)]
mod tests {
    use super::rules::ResourcePattern;
    use super::transformer::{PrefixChain, PrefixTransformer};
    use super::*;
    use crate::store::sqlite::SqliteStore;
    use crate::store::EventKind;

    const SECRET: &str = "/registry/core/secrets/default/db";

    fn rules(keys: &[(&str, u8)]) -> EncryptionRules {
        let chain = keys
            .iter()
            .map(|(name, byte)| PrefixTransformer {
                prefix: format!("k8s:enc:aesgcm:v1:{name}:").into_bytes(),
                transformer: Arc::new(aes_gcm::AesGcm::new(name, &[*byte; 32]).unwrap()),
            })
            .collect();
        EncryptionRules::new(vec![(
            vec![ResourcePattern::parse("secrets")],
            PrefixChain::new(chain).unwrap(),
        )])
    }

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle)
    }

    #[tokio::test]
    async fn encrypted_store_passes_conformance() {
        let dir = tempfile::tempdir().unwrap();
        let n = std::sync::atomic::AtomicUsize::new(0);
        super::super::conformance::run(|| {
            let i = n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let inner: Arc<dyn Store> =
                Arc::new(SqliteStore::open(dir.path().join(format!("db{i}"))).unwrap());
            // The suite's keys (`/t/…`) name no resource: encrypt them all.
            let chain = rules(&[("k", 1)]).rules.remove(0).1;
            EncryptedStore {
                inner,
                rules: Arc::new(EncryptionRules::every_key(chain)),
            }
        })
        .await;
    }

    #[tokio::test]
    async fn every_path_hands_out_plaintext_while_the_backend_holds_ciphertext() {
        let dir = tempfile::tempdir().unwrap();
        let raw: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path().join("db")).unwrap());
        let store = EncryptedStore::wrap(Arc::clone(&raw), rules(&[("k", 1)]));
        let mut events = store.watch("/registry/", 0).await.unwrap();
        let created = store.create(SECRET, b"one".to_vec()).await.unwrap();
        assert_eq!(created.value, b"one");
        store
            .create("/registry/core/configmaps/default/c", b"plain".to_vec())
            .await
            .unwrap();
        let stored = raw.get(SECRET).await.unwrap().unwrap().value;
        assert!(stored.starts_with(b"k8s:enc:aesgcm:v1:k:") && !contains(&stored, b"one"));
        let configmap = raw
            .get("/registry/core/configmaps/default/c")
            .await
            .unwrap();
        assert_eq!(configmap.unwrap().value, b"plain");
        let updated = store
            .update(SECRET, b"two".to_vec(), created.mod_revision)
            .await
            .unwrap();
        assert_eq!(updated.value, b"two");
        assert_eq!(store.get(SECRET).await.unwrap().unwrap().value, b"two");
        let page = store
            .list("/registry/core/secrets/", None, 0)
            .await
            .unwrap();
        assert_eq!(page.items[0].value, b"two");
        assert_eq!(store.delete(SECRET, None).await.unwrap().value, b"two");
        let mut seen = Vec::new();
        for _ in 0..4 {
            let event = events.next().await.unwrap().unwrap();
            seen.push((event.kind, event.kv.value));
        }
        assert_eq!(
            seen,
            [
                (EventKind::Put, b"one".to_vec()),
                (EventKind::Put, b"plain".to_vec()),
                (EventKind::Put, b"two".to_vec()),
                (EventKind::Delete, b"two".to_vec()),
            ]
        );
    }

    #[tokio::test]
    async fn values_stay_readable_through_a_key_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let raw: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path().join("db")).unwrap());
        let old = EncryptedStore::wrap(Arc::clone(&raw), rules(&[("old", 1)]));
        let kv = old.create(SECRET, b"v".to_vec()).await.unwrap();
        let both = EncryptedStore::wrap(Arc::clone(&raw), rules(&[("new", 2), ("old", 1)]));
        assert_eq!(both.get(SECRET).await.unwrap().unwrap().value, b"v");
        both.update(SECRET, b"v".to_vec(), kv.mod_revision)
            .await
            .unwrap();
        let new = EncryptedStore::wrap(Arc::clone(&raw), rules(&[("new", 2)]));
        assert_eq!(new.get(SECRET).await.unwrap().unwrap().value, b"v");
        let err = old.get(SECRET).await.unwrap_err().to_string();
        assert!(
            err.contains(&format!(
                "unable to transform key \"{SECRET}\": no matching prefix found"
            )),
            "{err}"
        );
    }
}
