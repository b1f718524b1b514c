//! The `aesgcm` provider: AES-GCM with one local key, a fresh random 12-byte
//! nonce per write and the storage key as authenticated data, stored as
//! `nonce || ciphertext || tag` after the provider's prefix (upstream's layout).
//! Keys never leave this type and are never printed.

use aes_gcm::aead::consts::U12;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::aes::Aes192;
use aes_gcm::{Aes128Gcm, Aes256Gcm, Nonce};
use async_trait::async_trait;

use super::transformer::{TransformError, Transformer};

/// Bytes of the random nonce each value starts with.
const NONCE_SIZE: usize = 12;
/// Bytes of the authentication tag each value ends with.
const TAG_SIZE: usize = 16;

/// AES key sizes the provider accepts (AES-128, -192, -256).
pub const KEY_SIZES: [usize; 3] = [16, 24, 32];

enum Cipher {
    Aes128(Box<Aes128Gcm>),
    Aes192(Box<aes_gcm::AesGcm<Aes192, U12>>),
    Aes256(Box<Aes256Gcm>),
}

impl Cipher {
    fn new(secret: &[u8]) -> Option<Self> {
        Some(match secret.len() {
            16 => Self::Aes128(Box::new(Aes128Gcm::new_from_slice(secret).ok()?)),
            24 => Self::Aes192(Box::new(
                aes_gcm::AesGcm::<Aes192, U12>::new_from_slice(secret).ok()?,
            )),
            32 => Self::Aes256(Box::new(Aes256Gcm::new_from_slice(secret).ok()?)),
            _ => return None,
        })
    }

    fn seal(
        &self,
        nonce: &Nonce<U12>,
        payload: Payload<'_, '_>,
    ) -> Result<Vec<u8>, aes_gcm::Error> {
        match self {
            Self::Aes128(c) => c.encrypt(nonce, payload),
            Self::Aes192(c) => c.encrypt(nonce, payload),
            Self::Aes256(c) => c.encrypt(nonce, payload),
        }
    }

    fn open(
        &self,
        nonce: &Nonce<U12>,
        payload: Payload<'_, '_>,
    ) -> Result<Vec<u8>, aes_gcm::Error> {
        match self {
            Self::Aes128(c) => c.decrypt(nonce, payload),
            Self::Aes192(c) => c.decrypt(nonce, payload),
            Self::Aes256(c) => c.decrypt(nonce, payload),
        }
    }
}

/// One `aesgcm` key.
pub struct AesGcm {
    /// `aesgcm key "NAME"`, for errors.
    provider: String,
    cipher: Cipher,
}

impl AesGcm {
    /// The key `name` with its raw (already base64-decoded) `secret`; None
    /// unless the secret is 16, 24 or 32 bytes long.
    pub fn new(name: &str, secret: &[u8]) -> Option<Self> {
        Some(Self {
            provider: format!("aesgcm key {name:?}"),
            cipher: Cipher::new(secret)?,
        })
    }

    /// Encrypts with `aad` bound in (the envelope seam wraps data keys this way too).
    pub(super) fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, TransformError> {
        let nonce_bytes: [u8; NONCE_SIZE] = rand::random();
        let nonce = Nonce::<U12>::from_slice(&nonce_bytes);
        let sealed = self
            .cipher
            .seal(
                nonce,
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .map_err(|_| TransformError::Encryption {
                provider: self.provider.clone(),
            })?;
        let mut stored = Vec::with_capacity(NONCE_SIZE + sealed.len());
        stored.extend_from_slice(&nonce_bytes);
        stored.extend_from_slice(&sealed);
        Ok(stored)
    }

    /// Decrypts what [`AesGcm::seal`] produced under the same `aad`.
    pub(super) fn open(&self, stored: &[u8], aad: &[u8]) -> Result<Vec<u8>, TransformError> {
        if stored.len() < NONCE_SIZE + TAG_SIZE {
            return Err(TransformError::TooShort);
        }
        let (nonce, sealed) = stored.split_at(NONCE_SIZE);
        self.cipher
            .open(
                Nonce::<U12>::from_slice(nonce),
                Payload { msg: sealed, aad },
            )
            .map_err(|_| TransformError::Authentication {
                provider: self.provider.clone(),
            })
    }
}

#[async_trait]
impl Transformer for AesGcm {
    async fn transform_to_storage(
        &self,
        plaintext: &[u8],
        key: &[u8],
    ) -> Result<Vec<u8>, TransformError> {
        self.seal(plaintext, key)
    }

    async fn transform_from_storage(
        &self,
        stored: &[u8],
        key: &[u8],
    ) -> Result<Vec<u8>, TransformError> {
        self.open(stored, key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"/registry/core/secrets/default/db";

    #[tokio::test]
    async fn values_round_trip_with_every_key_size() {
        for size in KEY_SIZES {
            let aes = AesGcm::new("k", &vec![7; size]).unwrap();
            let stored = aes.transform_to_storage(b"s3cr3t", KEY).await.unwrap();
            assert_eq!(stored.len(), NONCE_SIZE + 6 + TAG_SIZE);
            assert!(!stored.windows(6).any(|w| w == b"s3cr3t"));
            assert_eq!(
                aes.transform_from_storage(&stored, KEY).await.unwrap(),
                b"s3cr3t"
            );
        }
    }

    #[tokio::test]
    async fn each_write_gets_its_own_nonce() {
        let aes = AesGcm::new("k", &[1; 32]).unwrap();
        let a = aes.transform_to_storage(b"same", KEY).await.unwrap();
        let b = aes.transform_to_storage(b"same", KEY).await.unwrap();
        assert_ne!(a[..NONCE_SIZE], b[..NONCE_SIZE]);
    }

    #[tokio::test]
    async fn a_value_moved_to_another_storage_key_does_not_decrypt() {
        let aes = AesGcm::new("k", &[1; 32]).unwrap();
        let stored = aes.transform_to_storage(b"v", KEY).await.unwrap();
        let err = aes
            .transform_from_storage(&stored, b"/registry/core/secrets/default/other")
            .await
            .unwrap_err();
        assert!(
            matches!(err, TransformError::Authentication { .. }),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_wrong_key_or_altered_or_short_value_is_refused() {
        let aes = AesGcm::new("k", &[1; 16]).unwrap();
        let other = AesGcm::new("k", &[2; 16]).unwrap();
        let mut stored = aes.transform_to_storage(b"v", KEY).await.unwrap();
        assert!(other.transform_from_storage(&stored, KEY).await.is_err());
        let last = stored.len() - 1;
        stored[last] ^= 1;
        assert!(aes.transform_from_storage(&stored, KEY).await.is_err());
        assert!(matches!(
            aes.transform_from_storage(&stored[..20], KEY).await,
            Err(TransformError::TooShort)
        ));
    }

    #[test]
    fn only_aes_key_sizes_are_accepted() {
        assert!(AesGcm::new("k", &[0; 15]).is_none());
        assert!(AesGcm::new("k", &[0; 33]).is_none());
    }
}
