//! The seam a KMS v2-style provider plugs into: envelope encryption, where
//! each value is encrypted with a fresh data key (DEK) and only the DEK is
//! sent to a [`KeyService`] to be wrapped by a key that never leaves it.
//!
//! Not wired to configuration yet: berth has no gRPC client for upstream's
//! KMS v2 plugin API, so a `kms` provider in the file is refused. The only
//! key service today is [`LocalKeyService`] (an AES-GCM key held in memory),
//! which exercises the seam; a gRPC plugin would be a second implementation.
//! The stored framing is berth's own, not upstream's protobuf `EncryptedObject`.

use async_trait::async_trait;

use super::aes_gcm::AesGcm;
use super::transformer::{TransformError, Transformer};

/// A DEK wrapped by a key service, and which of its keys wrapped it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrappedKey {
    /// The key service's current key id (KMS v2's `key_id`), kept so a
    /// rotated-away key can still unwrap old values.
    pub key_id: String,
    /// The DEK, encrypted by the key service.
    pub ciphertext: Vec<u8>,
}

/// What a KMS plugin does for the API server (KMS v2's `Encrypt`/`Decrypt`):
/// wrap and unwrap data keys with a key the API server never sees.
#[async_trait]
pub trait KeyService: Send + Sync {
    /// Wraps a fresh data key.
    async fn encrypt(&self, dek: &[u8]) -> Result<WrappedKey, TransformError>;

    /// Unwraps a data key [`KeyService::encrypt`] produced.
    async fn decrypt(&self, wrapped: &WrappedKey) -> Result<Vec<u8>, TransformError>;
}

/// A key service whose key is a local AES-GCM key: the implementation used
/// until a gRPC KMS plugin client exists, and the one tests use.
pub struct LocalKeyService {
    key_id: String,
    key: AesGcm,
}

impl LocalKeyService {
    /// A service wrapping with `secret` (16, 24 or 32 bytes) under `key_id`.
    pub fn new(key_id: &str, secret: &[u8]) -> Option<Self> {
        Some(Self {
            key_id: key_id.to_owned(),
            key: AesGcm::new(key_id, secret)?,
        })
    }
}

#[async_trait]
impl KeyService for LocalKeyService {
    async fn encrypt(&self, dek: &[u8]) -> Result<WrappedKey, TransformError> {
        Ok(WrappedKey {
            key_id: self.key_id.clone(),
            ciphertext: self.key.seal(dek, self.key_id.as_bytes())?,
        })
    }

    async fn decrypt(&self, wrapped: &WrappedKey) -> Result<Vec<u8>, TransformError> {
        if wrapped.key_id != self.key_id {
            return Err(TransformError::KeyService {
                service: self.key_id.clone(),
                message: format!("unknown key id {:?}", wrapped.key_id),
            });
        }
        self.key.open(&wrapped.ciphertext, self.key_id.as_bytes())
    }
}

/// Envelope encryption over a [`KeyService`]: AES-256-GCM with a new DEK per
/// write (the storage key as authenticated data), the wrapped DEK stored
/// beside the value as `len(key_id) key_id len(dek) dek value`, lengths u16
/// big-endian.
pub struct Envelope<K> {
    service: K,
}

impl<K: KeyService> Envelope<K> {
    /// Envelope encryption through `service`.
    pub fn new(service: K) -> Self {
        Self { service }
    }
}

fn put_field(out: &mut Vec<u8>, field: &[u8]) -> Result<(), TransformError> {
    let len = u16::try_from(field.len())
        .map_err(|_| TransformError::Envelope("a field is over 65535 bytes".into()))?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(field);
    Ok(())
}

fn take_field<'a>(data: &mut &'a [u8]) -> Result<&'a [u8], TransformError> {
    let short = || TransformError::Envelope("truncated".into());
    let (len, rest) = data.split_first_chunk::<2>().ok_or_else(short)?;
    let len = usize::from(u16::from_be_bytes(*len));
    let (field, rest) = rest.split_at_checked(len).ok_or_else(short)?;
    *data = rest;
    Ok(field)
}

#[async_trait]
impl<K: KeyService> Transformer for Envelope<K> {
    async fn transform_to_storage(
        &self,
        plaintext: &[u8],
        key: &[u8],
    ) -> Result<Vec<u8>, TransformError> {
        let dek: [u8; 32] = rand::random();
        let sealed = AesGcm::new("dek", &dek)
            .ok_or_else(|| TransformError::Envelope("data key".into()))?
            .seal(plaintext, key)?;
        let wrapped = self.service.encrypt(&dek).await?;
        let mut out =
            Vec::with_capacity(4 + wrapped.key_id.len() + wrapped.ciphertext.len() + sealed.len());
        put_field(&mut out, wrapped.key_id.as_bytes())?;
        put_field(&mut out, &wrapped.ciphertext)?;
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    async fn transform_from_storage(
        &self,
        stored: &[u8],
        key: &[u8],
    ) -> Result<Vec<u8>, TransformError> {
        let mut rest = stored;
        let key_id = String::from_utf8_lossy(take_field(&mut rest)?).into_owned();
        let ciphertext = take_field(&mut rest)?.to_vec();
        let dek = self
            .service
            .decrypt(&WrappedKey { key_id, ciphertext })
            .await?;
        AesGcm::new("dek", &dek)
            .ok_or_else(|| {
                TransformError::Envelope("the unwrapped data key has the wrong size".into())
            })?
            .open(rest, key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"/registry/core/secrets/default/db";

    #[tokio::test]
    async fn values_round_trip_through_the_key_service() {
        let envelope = Envelope::new(LocalKeyService::new("kek-1", &[4; 32]).unwrap());
        let stored = envelope.transform_to_storage(b"s3cr3t", KEY).await.unwrap();
        assert!(!stored.windows(6).any(|w| w == b"s3cr3t"));
        assert_eq!(
            envelope.transform_from_storage(&stored, KEY).await.unwrap(),
            b"s3cr3t"
        );
        let moved = envelope
            .transform_from_storage(&stored, b"/elsewhere")
            .await;
        assert!(matches!(moved, Err(TransformError::Authentication { .. })));
    }

    #[tokio::test]
    async fn another_key_service_key_or_a_truncated_envelope_is_refused() {
        let envelope = Envelope::new(LocalKeyService::new("kek-1", &[4; 32]).unwrap());
        let other = Envelope::new(LocalKeyService::new("kek-2", &[5; 32]).unwrap());
        let stored = envelope.transform_to_storage(b"v", KEY).await.unwrap();
        let err = other
            .transform_from_storage(&stored, KEY)
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("unknown key id \"kek-1\""),
            "{err}"
        );
        for cut in [0, 1, 3, 10] {
            assert!(envelope
                .transform_from_storage(&stored[..cut], KEY)
                .await
                .is_err());
        }
    }
}
