//! A certificate authority: a self-signed CA certificate and its key, kept on
//! disk as `NAME.crt` / `NAME.key` and reused on every later load, that signs
//! leaf certificates from a [`LeafSpec`].

use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};

use crate::files::{create_dir, read, write};
use crate::leaf::{LeafSpec, Usage};
use crate::PkiError;

/// How long a CA is valid (kubeadm's ten years).
pub const CA_VALIDITY: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
/// How long a leaf certificate is valid (kubeadm's one year; `renew-certs` renews).
pub const LEAF_VALIDITY: Duration = Duration::from_secs(365 * 24 * 3600);
/// Certificates start a little in the past so machines with skewed clocks accept them.
const CLOCK_SKEW: Duration = Duration::from_secs(5 * 60);

/// A CA certificate and its private key, both PEM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authority {
    /// The CA certificate.
    pub cert_pem: String,
    /// Its private key.
    pub key_pem: String,
}

/// A certificate and its private key, both PEM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertifiedKey {
    /// The certificate.
    pub cert_pem: String,
    /// Its private key.
    pub key_pem: String,
}

fn validity(params: &mut CertificateParams, now: SystemTime, lifetime: Duration) {
    params.not_before = (now - CLOCK_SKEW).into();
    params.not_after = (now + lifetime).into();
}

impl Authority {
    /// A new CA named `common_name`, valid for [`CA_VALIDITY`] from `now`.
    pub fn generate(common_name: &str, now: SystemTime) -> Result<Self, PkiError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        validity(&mut params, now, CA_VALIDITY);
        let cert = params.self_signed(&key)?;
        Ok(Self {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// The CA at `dir/NAME.crt` and `dir/NAME.key`, created (and written, the
    /// key 0600) when either file is missing. A CA is never replaced once
    /// written: everything in the cluster trusts it.
    pub fn load_or_create(
        dir: &Path,
        name: &str,
        common_name: &str,
        now: SystemTime,
    ) -> Result<Self, PkiError> {
        let (cert_path, key_path) = (
            dir.join(format!("{name}.crt")),
            dir.join(format!("{name}.key")),
        );
        if let (Some(cert_pem), Some(key_pem)) = (read(&cert_path)?, read(&key_path)?) {
            return Ok(Self { cert_pem, key_pem });
        }
        if let Some(parent) = cert_path.parent() {
            create_dir(parent)?;
        }
        let authority = Self::generate(common_name, now)?;
        write(&key_path, &authority.key_pem, true)?;
        write(&cert_path, &authority.cert_pem, false)?;
        Ok(authority)
    }

    /// A new key and a certificate for it as `spec` describes, signed by this
    /// CA and valid for [`LEAF_VALIDITY`] from `now`.
    pub fn issue(&self, spec: &LeafSpec, now: SystemTime) -> Result<CertifiedKey, PkiError> {
        let issuer = Issuer::from_ca_cert_pem(&self.cert_pem, KeyPair::from_pem(&self.key_pem)?)?;
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params
            .distinguished_name
            .push(DnType::CommonName, spec.common_name.as_str());
        for organization in &spec.organizations {
            params
                .distinguished_name
                .push(DnType::OrganizationName, organization.as_str());
        }
        for name in &spec.sans {
            params.subject_alt_names.push(match name.parse::<IpAddr>() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) => SanType::DnsName(name.clone().try_into()?),
            });
        }
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = match spec.usage {
            Usage::Server => vec![ExtendedKeyUsagePurpose::ServerAuth],
            Usage::Client => vec![ExtendedKeyUsagePurpose::ClientAuth],
            Usage::ServerAndClient => vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ],
        };
        params.use_authority_key_identifier_extension = true;
        validity(&mut params, now, LEAF_VALIDITY);
        let cert = params.signed_by(&key, &issuer)?;
        Ok(CertifiedKey {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}
