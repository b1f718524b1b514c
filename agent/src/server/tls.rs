//! The kubelet API's TLS: client certificates must chain to the cluster CA;
//! the serving certificate is the configured one or a self-signed one made
//! at start for the node's name and address.

use std::net::IpAddr;
use std::sync::Arc;

use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, KeyPair, SanType};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::RootCertStore;
use tokio_rustls::TlsAcceptor;

use super::{ServerConfig, ServerError};

/// The acceptor for `config`, and the PEM of the certificate it serves.
pub(super) fn acceptor(config: &ServerConfig) -> Result<(TlsAcceptor, String), ServerError> {
    let (cert_pem, key_pem) = match (&config.serving_cert_pem, &config.serving_key_pem) {
        (Some(cert), Some(key)) => (cert.clone(), key.clone()),
        (None, None) => self_signed(config)?,
        _ => return Err(ServerError::Tls(
            "a serving certificate needs its key and a key its certificate; give both or neither"
                .into(),
        )),
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let roots = client_roots(&config.client_ca_pem)?;
    let verifier =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider))
            .build()
            .map_err(|e| ServerError::Tls(format!("client CA: {e}")))?;
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ServerError::Tls(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            certificates(&cert_pem, "serving certificate")?,
            private_key(&key_pem)?,
        )
        .map_err(|e| ServerError::Tls(format!("serving certificate: {e}")))?;
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((TlsAcceptor::from(Arc::new(tls)), cert_pem))
}

/// A self-signed serving certificate for the node's name and listen address
/// (kubelet's fallback without `--tls-cert-file`).
fn self_signed(config: &ServerConfig) -> Result<(String, String), ServerError> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    let name = config.node_name.as_str();
    params
        .distinguished_name
        .push(DnType::CommonName, format!("{name}@berth-agent"));
    match name.parse::<IpAddr>() {
        Ok(ip) => params.subject_alt_names.push(SanType::IpAddress(ip)),
        Err(_) => match name.to_owned().try_into() {
            Ok(dns) => params.subject_alt_names.push(SanType::DnsName(dns)),
            Err(e) => {
                tracing::warn!(node = name, error = %e, "node name left out of the kubelet API certificate")
            }
        },
    }
    let ip = config.listen.ip();
    if !ip.is_unspecified() && !params.subject_alt_names.contains(&SanType::IpAddress(ip)) {
        params.subject_alt_names.push(SanType::IpAddress(ip));
    }
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let cert = params.self_signed(&key)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// The root store of client CAs in `pem`.
fn client_roots(pem: &str) -> Result<RootCertStore, ServerError> {
    let mut roots = RootCertStore::empty();
    for cert in certificates(pem, "client CA")? {
        roots
            .add(cert)
            .map_err(|e| ServerError::Tls(format!("client CA: {e}")))?;
    }
    Ok(roots)
}

/// The certificates of `pem`, which must hold at least one.
fn certificates(pem: &str, what: &str) -> Result<Vec<CertificateDer<'static>>, ServerError> {
    let certs = rustls_pemfile::certs(&mut pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ServerError::Tls(format!("{what}: {e}")))?;
    if certs.is_empty() {
        return Err(ServerError::Tls(format!(
            "{what}: no PEM certificate found"
        )));
    }
    Ok(certs)
}

/// The private key of `pem`.
fn private_key(pem: &str) -> Result<PrivateKeyDer<'static>, ServerError> {
    rustls_pemfile::private_key(&mut pem.as_bytes())
        .map_err(|e| ServerError::Tls(format!("serving key: {e}")))?
        .ok_or_else(|| ServerError::Tls("serving key: no PEM private key found".into()))
}
