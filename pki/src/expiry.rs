//! When a certificate stops being valid, for `berth cluster status` and for
//! deciding what `renew-certs` must renew.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::PkiError;

/// The `notAfter` time of the first certificate in `pem`.
pub fn expiry(pem: &str) -> Result<SystemTime, PkiError> {
    let (_, block) = x509_parser::pem::parse_x509_pem(pem.as_bytes())
        .map_err(|e| PkiError::NotACertificate(e.to_string()))?;
    let cert = block
        .parse_x509()
        .map_err(|e| PkiError::NotACertificate(e.to_string()))?;
    let seconds = cert.validity().not_after.timestamp();
    Ok(match u64::try_from(seconds) {
        Ok(after) => UNIX_EPOCH + Duration::from_secs(after),
        Err(_) => UNIX_EPOCH - Duration::from_secs(seconds.unsigned_abs()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_reads_not_after_and_refuses_what_is_no_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let pki = crate::Pki::load_or_create(dir.path(), &["127.0.0.1".to_owned()]).unwrap();
        // The single server's certificates end on 2036-01-01.
        let end = UNIX_EPOCH + Duration::from_secs(2_082_758_400);
        assert_eq!(expiry(&pki.ca_pem).unwrap(), end);
        assert_eq!(expiry(&pki.serving_cert_pem).unwrap(), end);
        for bad in [
            "",
            "hello",
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        ] {
            assert!(
                matches!(expiry(bad), Err(PkiError::NotACertificate(_))),
                "{bad:?}"
            );
        }
    }
}
