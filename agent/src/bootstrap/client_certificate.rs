//! The node's client certificate as data: the key and request a node sends
//! (`CN=system:node:NAME, O=system:nodes`, client auth), the PEM file it keeps
//! (certificate then key, like kubelet's `kubelet-client-current.pem`), and
//! when to rotate it (kubelet's jittered 70–90% of its lifetime). No I/O.

use std::time::Duration;

use x509_parser::prelude::{FromDer, X509Certificate};

/// The signer node client certificates come from.
pub const SIGNER: &str = "kubernetes.io/kube-apiserver-client-kubelet";
/// The usages a node asks for (ECDSA keys need no key encipherment).
pub const USAGES: &[&str] = &["digital signature", "client auth"];

/// Why certificate material is unusable.
#[derive(Debug, thiserror::Error)]
pub enum CertificateError {
    /// Generating the key or request failed.
    #[error("generating the key or request: {0}")]
    Generate(#[from] rcgen::Error),
    /// The PEM has no certificate or no key, or does not parse.
    #[error("{0}")]
    Parse(String),
}

/// A fresh key and the PEM certificate request for node `node`.
pub fn new_request(node: &str) -> Result<(String, String), CertificateError> {
    let key = rcgen::KeyPair::generate()?;
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "system:nodes");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, format!("system:node:{node}"));
    let request = params.serialize_request(&key)?.pem()?;
    Ok((key.serialize_pem(), request))
}

/// A certificate's subject and validity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validity {
    /// The subject's common name.
    pub common_name: String,
    /// Start of validity (Unix seconds).
    pub not_before: i64,
    /// End of validity (Unix seconds).
    pub not_after: i64,
}

/// The first certificate in `pem`: its subject and validity.
pub fn validity(pem: &str) -> Result<Validity, CertificateError> {
    let der = rustls_pemfile::certs(&mut pem.as_bytes())
        .next()
        .ok_or_else(|| CertificateError::Parse("no certificate in the PEM".into()))?
        .map_err(|e| CertificateError::Parse(e.to_string()))?;
    let (_, cert) =
        X509Certificate::from_der(&der).map_err(|e| CertificateError::Parse(e.to_string()))?;
    let common_name = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .unwrap_or_default()
        .to_owned();
    let validity = Validity {
        common_name,
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
    };
    Ok(validity)
}

/// When to ask for a new certificate: at `fraction` (kubelet draws it from
/// 0.7–0.9) of the way from not-before to not-after, in Unix seconds.
pub fn rotation_deadline(validity: &Validity, fraction: f64) -> i64 {
    let total = (validity.not_after - validity.not_before).max(0) as f64;
    validity.not_before + (total * fraction.clamp(0.0, 1.0)) as i64
}

/// How long to wait at `now` (Unix seconds) before rotating at `deadline`.
pub fn wait_until(deadline: i64, now: i64) -> Duration {
    Duration::from_secs(deadline.saturating_sub(now).max(0).unsigned_abs())
}

/// Whether the certificate is usable at `now` for node `node`.
pub fn usable_for(validity: &Validity, node: &str, now: i64) -> bool {
    validity.common_name == format!("system:node:{node}") && validity.not_after > now
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_names_the_node() {
        let (key, request) = new_request("n1").unwrap();
        assert!(key.contains("PRIVATE KEY"));
        let params = rcgen::CertificateSigningRequestParams::from_pem(&request).unwrap();
        let dn = &params.params.distinguished_name;
        assert_eq!(
            dn.get(&rcgen::DnType::CommonName),
            Some(&rcgen::DnValue::Utf8String("system:node:n1".into()))
        );
    }

    #[test]
    fn rotation_falls_between_seventy_and_ninety_percent() {
        let v = Validity {
            common_name: "system:node:n1".into(),
            not_before: 1000,
            not_after: 2000,
        };
        for (fraction, want) in [(0.7, 1700), (0.9, 1900), (0.8, 1800), (2.0, 2000)] {
            assert_eq!(rotation_deadline(&v, fraction), want, "{fraction}");
        }
        assert_eq!(wait_until(1700, 1650), Duration::from_secs(50));
        assert_eq!(wait_until(1700, 1800), Duration::ZERO);
    }

    #[test]
    fn usable_only_for_this_node_and_before_expiry() {
        let v = Validity {
            common_name: "system:node:n1".into(),
            not_before: 0,
            not_after: 100,
        };
        assert!(usable_for(&v, "n1", 50));
        assert!(!usable_for(&v, "n2", 50));
        assert!(!usable_for(&v, "n1", 100));
    }

    #[test]
    fn validity_reads_a_certificate() {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "system:node:n1");
        params.not_before = rcgen::date_time_ymd(2026, 1, 1);
        params.not_after = rcgen::date_time_ymd(2026, 1, 2);
        let pem = params.self_signed(&key).unwrap().pem();
        let v = validity(&pem).unwrap();
        assert_eq!(v.common_name, "system:node:n1");
        assert_eq!(v.not_after - v.not_before, 86400);
        assert!(validity("nothing").is_err());
    }
}
