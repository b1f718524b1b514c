//! Value transformers, kube-apiserver's `storage/value` seam: a transformer
//! turns an object's bytes into what is stored and back, and a prefix chain
//! picks, for every stored value, the transformer whose prefix it carries.
//! Nothing here does I/O of its own; a transformer never logs a value.

use std::sync::Arc;

use async_trait::async_trait;

/// The prefix every encrypted value starts with; `identity` refuses to read
/// such values as plaintext (upstream reserves it the same way).
pub const ENCRYPTED_PREFIX: &[u8] = b"k8s:enc:";

/// Why a value could not be transformed; shown to the API caller as the
/// cause of a 500, so it names what was wrong and never the value itself.
#[derive(Debug, thiserror::Error)]
pub enum TransformError {
    /// The stored value carries no prefix of a configured provider (e.g. it
    /// is plaintext and `identity` is not listed, or its key was removed).
    #[error("no matching prefix found")]
    NoMatchingPrefix,
    /// `identity` was asked to read a value that starts with `k8s:enc:`.
    #[error("identity transformer tried to read encrypted data")]
    IdentityReadEncrypted,
    /// The stored value is shorter than a nonce and a tag.
    #[error("the stored data was shorter than the required size")]
    TooShort,
    /// Authenticated decryption failed: a different key, an altered value, or
    /// a value copied from another storage key.
    #[error("{provider}: message authentication failed (the value was encrypted with another key, altered, or moved from another storage key)")]
    Authentication {
        /// The provider and key that tried, e.g. `aesgcm key "key1"`.
        provider: String,
    },
    /// Encryption itself failed (upstream's AEAD never does for sane sizes).
    #[error("{provider}: encryption failed")]
    Encryption {
        /// The provider and key that tried.
        provider: String,
    },
    /// A KMS-style key service could not wrap or unwrap a data key.
    #[error("key service {service}: {message}")]
    KeyService {
        /// The provider's name.
        service: String,
        /// What the key service reported.
        message: String,
    },
    /// An envelope's framing could not be read.
    #[error("malformed envelope: {0}")]
    Envelope(String),
    /// Every provider whose prefix matched failed, each for its own reason.
    #[error("{}", join(.0))]
    Several(Vec<TransformError>),
}

fn join(errors: &[TransformError]) -> String {
    let parts: Vec<String> = errors.iter().map(ToString::to_string).collect();
    format!("[{}]", parts.join(", "))
}

/// One way of storing values: encryption with one key, or none.
#[async_trait]
pub trait Transformer: Send + Sync {
    /// What is stored for `plaintext` under storage key `key` (the key is
    /// authenticated data, so a value cannot be moved to another key).
    async fn transform_to_storage(
        &self,
        plaintext: &[u8],
        key: &[u8],
    ) -> Result<Vec<u8>, TransformError>;

    /// The plaintext of `stored` (its prefix already removed) under `key`.
    async fn transform_from_storage(
        &self,
        stored: &[u8],
        key: &[u8],
    ) -> Result<Vec<u8>, TransformError>;
}

/// The `identity` provider: stores plaintext, and reads anything that is not
/// marked encrypted as plaintext.
pub struct Identity;

#[async_trait]
impl Transformer for Identity {
    async fn transform_to_storage(
        &self,
        plaintext: &[u8],
        _key: &[u8],
    ) -> Result<Vec<u8>, TransformError> {
        Ok(plaintext.to_vec())
    }

    async fn transform_from_storage(
        &self,
        stored: &[u8],
        _key: &[u8],
    ) -> Result<Vec<u8>, TransformError> {
        if stored.starts_with(ENCRYPTED_PREFIX) {
            return Err(TransformError::IdentityReadEncrypted);
        }
        Ok(stored.to_vec())
    }
}

/// A transformer and the prefix its stored values carry (empty for `identity`).
#[derive(Clone)]
pub struct PrefixTransformer {
    /// e.g. `k8s:enc:aesgcm:v1:key1:`.
    pub prefix: Vec<u8>,
    /// What reads and writes values with this prefix.
    pub transformer: Arc<dyn Transformer>,
}

/// The providers of one `resources` entry, in the order the file lists them:
/// the first writes, all read.
#[derive(Clone)]
pub struct PrefixChain {
    entries: Vec<PrefixTransformer>,
}

/// Shows the prefixes only: keys are never printed.
impl std::fmt::Debug for PrefixChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(
                self.entries
                    .iter()
                    .map(|e| String::from_utf8_lossy(&e.prefix).into_owned()),
            )
            .finish()
    }
}

impl PrefixChain {
    /// A chain of `entries`; None when there is none (nothing could write).
    pub fn new(entries: Vec<PrefixTransformer>) -> Option<Self> {
        (!entries.is_empty()).then_some(Self { entries })
    }

    /// The prefix new writes get.
    pub fn write_prefix(&self) -> &[u8] {
        &self.entries[0].prefix
    }

    /// Stores `plaintext` with the first provider, behind its prefix.
    pub async fn transform_to_storage(
        &self,
        plaintext: &[u8],
        key: &[u8],
    ) -> Result<Vec<u8>, TransformError> {
        let first = &self.entries[0];
        let body = first
            .transformer
            .transform_to_storage(plaintext, key)
            .await?;
        let mut stored = Vec::with_capacity(first.prefix.len() + body.len());
        stored.extend_from_slice(&first.prefix);
        stored.extend_from_slice(&body);
        Ok(stored)
    }

    /// Reads `stored` with every provider whose prefix it carries, in order,
    /// until one succeeds. An `identity` that finds encrypted data lets the
    /// next provider try (so identity may come first while migrating away
    /// from encryption); so does a key that fails (two keys of one kind
    /// share the `k8s:enc:aesgcm:v1:` start).
    pub async fn transform_from_storage(
        &self,
        stored: &[u8],
        key: &[u8],
    ) -> Result<Vec<u8>, TransformError> {
        let mut errors = Vec::new();
        for entry in &self.entries {
            let Some(body) = stored.strip_prefix(entry.prefix.as_slice()) else {
                continue;
            };
            match entry.transformer.transform_from_storage(body, key).await {
                Ok(plaintext) => return Ok(plaintext),
                Err(_) if entry.prefix.is_empty() => continue,
                Err(e) => errors.push(e),
            }
        }
        match errors.len() {
            0 => Err(TransformError::NoMatchingPrefix),
            1 => Err(errors.remove(0)),
            _ => Err(TransformError::Several(errors)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::encryption::aes_gcm::AesGcm;

    fn aes(name: &str, secret: &[u8]) -> PrefixTransformer {
        PrefixTransformer {
            prefix: format!("k8s:enc:aesgcm:v1:{name}:").into_bytes(),
            transformer: Arc::new(AesGcm::new(name, secret).unwrap()),
        }
    }

    fn identity() -> PrefixTransformer {
        PrefixTransformer {
            prefix: Vec::new(),
            transformer: Arc::new(Identity),
        }
    }

    fn chain(entries: Vec<PrefixTransformer>) -> PrefixChain {
        PrefixChain::new(entries).unwrap()
    }

    const KEY: &[u8] = b"/registry/core/secrets/default/db";

    /// What `reader` answers for a value `writer` stored.
    async fn read_error(writer: &PrefixChain, reader: &PrefixChain) -> TransformError {
        let stored = writer.transform_to_storage(b"v", KEY).await.unwrap();
        reader
            .transform_from_storage(&stored, KEY)
            .await
            .unwrap_err()
    }

    #[tokio::test]
    async fn the_first_provider_writes_and_every_provider_reads() {
        let old = chain(vec![aes("old", &[1; 32])]);
        let rotated = chain(vec![aes("new", &[2; 32]), aes("old", &[1; 32])]);
        let stored = old.transform_to_storage(b"hunter2", KEY).await.unwrap();
        assert!(stored.starts_with(b"k8s:enc:aesgcm:v1:old:"));
        assert_eq!(
            rotated.transform_from_storage(&stored, KEY).await.unwrap(),
            b"hunter2"
        );
        let rewritten = rotated.transform_to_storage(b"hunter2", KEY).await.unwrap();
        assert!(rewritten.starts_with(b"k8s:enc:aesgcm:v1:new:"));
        assert!(matches!(
            old.transform_from_storage(&rewritten, KEY).await,
            Err(TransformError::NoMatchingPrefix)
        ));
    }

    #[tokio::test]
    async fn plaintext_is_read_only_when_identity_is_listed() {
        let with_identity = chain(vec![aes("k", &[1; 16]), identity()]);
        let without = chain(vec![aes("k", &[1; 16])]);
        let plain = br#"{"kind":"Secret"}"#;
        assert_eq!(
            with_identity
                .transform_from_storage(plain, KEY)
                .await
                .unwrap(),
            plain
        );
        assert!(matches!(
            without.transform_from_storage(plain, KEY).await,
            Err(TransformError::NoMatchingPrefix)
        ));
    }

    #[tokio::test]
    async fn identity_first_writes_plaintext_and_still_reads_encrypted_values() {
        let encrypting = chain(vec![aes("k", &[3; 24])]);
        let decrypting = chain(vec![identity(), aes("k", &[3; 24])]);
        let stored = encrypting.transform_to_storage(b"v", KEY).await.unwrap();
        assert_eq!(
            decrypting
                .transform_from_storage(&stored, KEY)
                .await
                .unwrap(),
            b"v"
        );
        assert_eq!(
            decrypting.transform_to_storage(b"v", KEY).await.unwrap(),
            b"v"
        );
    }

    #[tokio::test]
    async fn an_unknown_encryption_prefix_is_an_error_even_with_identity() {
        let reading = chain(vec![aes("k", &[1; 32]), identity()]);
        let other = chain(vec![aes("gone", &[9; 32])]);
        let err = read_error(&other, &reading).await;
        assert!(matches!(err, TransformError::NoMatchingPrefix), "{err}");
    }

    #[tokio::test]
    async fn a_wrong_key_under_the_same_name_fails_authentication() {
        let writer = chain(vec![aes("k", &[1; 32])]);
        let reader = chain(vec![aes("k", &[2; 32])]);
        let err = read_error(&writer, &reader).await;
        assert!(
            err.to_string()
                .contains("aesgcm key \"k\": message authentication failed"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn every_failing_provider_is_reported() {
        let writer = chain(vec![aes("k", &[1; 32])]);
        let reader = chain(vec![aes("k", &[2; 32]), aes("k", &[3; 32])]);
        let err = read_error(&writer, &reader).await;
        assert!(
            matches!(&err, TransformError::Several(e) if e.len() == 2),
            "{err}"
        );
        assert!(err.to_string().starts_with('['), "{err}");
    }
}
