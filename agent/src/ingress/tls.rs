//! TLS termination of the ingress proxy: the certificate for a connection
//! is picked by SNI from the `kubernetes.io/tls` Secrets the Ingresses'
//! `tls[]` name (in the Ingress's namespace), exact host before `*.`
//! wildcard; any other name gets a self-signed default certificate, as
//! ingress-nginx's "fake certificate".

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::networking::v1::Ingress;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use super::routes::normalise_host;
use super::{by_name, read};

/// The Secret type holding `tls.crt` and `tls.key`.
const TLS_SECRET_TYPE: &str = "kubernetes.io/tls";

/// Certificates by host name.
#[derive(Debug, Default)]
pub struct Certificates {
    exact: HashMap<String, Arc<CertifiedKey>>,
    /// Keyed by what follows `*.`.
    wildcard: HashMap<String, Arc<CertifiedKey>>,
}

impl Certificates {
    /// The certificates the `tls[]` entries of `ingresses` name, from
    /// `secrets`. The oldest Ingress wins a host; a Secret that is missing,
    /// of another type or unparsable is skipped with a warning (its hosts
    /// get the default certificate). A `tls[]` entry without hosts covers
    /// the hosts of its Ingress's rules.
    pub fn build(ingresses: &[Ingress], secrets: &[Secret]) -> Self {
        let mut ingresses: Vec<&Ingress> = ingresses.iter().collect();
        ingresses.sort_by_key(|i| i.metadata.creation_timestamp.as_ref().map(|t| t.0));
        let secrets = by_name(secrets);
        let mut parsed: HashMap<(String, String), Option<Arc<CertifiedKey>>> = HashMap::new();
        let mut certificates = Self::default();
        for ingress in ingresses {
            let namespace = ingress.metadata.namespace.as_deref().unwrap_or("default");
            let Some(spec) = &ingress.spec else { continue };
            for tls in spec.tls.iter().flatten() {
                let Some(secret_name) = tls.secret_name.as_deref() else {
                    continue;
                };
                let key = (namespace.to_owned(), secret_name.to_owned());
                let certified = parsed
                    .entry(key)
                    .or_insert_with(|| {
                        let secret = secrets.get(&(namespace, secret_name))?;
                        match certified_key(secret) {
                            Ok(certified) => Some(Arc::new(certified)),
                            Err(reason) => {
                                tracing::warn!(%namespace, secret = secret_name, %reason, "ingress TLS secret skipped");
                                None
                            }
                        }
                    })
                    .clone();
                let Some(certified) = certified else { continue };
                let rule_hosts = || {
                    spec.rules
                        .iter()
                        .flatten()
                        .filter_map(|r| r.host.clone())
                        .collect::<Vec<_>>()
                };
                let hosts = match &tls.hosts {
                    Some(hosts) if !hosts.is_empty() => hosts.clone(),
                    _ => rule_hosts(),
                };
                for host in hosts {
                    let host = normalise_host(&host);
                    let map = match host.strip_prefix("*.") {
                        Some(suffix) => certificates.wildcard.entry(suffix.to_owned()),
                        None => certificates.exact.entry(host),
                    };
                    map.or_insert_with(|| Arc::clone(&certified));
                }
            }
        }
        certificates
    }

    /// The certificate for SNI name `name`, if an Ingress gave one.
    pub fn get(&self, name: &str) -> Option<&Arc<CertifiedKey>> {
        let name = normalise_host(name);
        self.exact.get(&name).or_else(|| {
            let (first, rest) = name.split_once('.')?;
            (!first.is_empty()).then(|| self.wildcard.get(rest))?
        })
    }
}

/// The key and chain of a `kubernetes.io/tls` Secret.
fn certified_key(secret: &Secret) -> Result<CertifiedKey, String> {
    if secret.type_.as_deref() != Some(TLS_SECRET_TYPE) {
        return Err(format!("not of type {TLS_SECRET_TYPE}"));
    }
    let field = |name: &str| {
        secret
            .data
            .as_ref()
            .and_then(|d| d.get(name))
            .map(|b| b.0.clone())
            .ok_or_else(|| format!("no {name}"))
    };
    let (cert, key) = (field("tls.crt")?, field("tls.key")?);
    let chain = rustls_pemfile::certs(&mut cert.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("tls.crt: {e}"))?;
    if chain.is_empty() {
        return Err("tls.crt holds no certificate".into());
    }
    let key = rustls_pemfile::private_key(&mut key.as_slice())
        .map_err(|e| format!("tls.key: {e}"))?
        .ok_or("tls.key holds no private key")?;
    let key = rustls::crypto::ring::sign::any_supported_type(&key)
        .map_err(|e| format!("tls.key: {e}"))?;
    Ok(CertifiedKey::new(chain, key))
}

/// A self-signed certificate for hosts no Ingress has one for.
pub fn default_certificate() -> Result<Arc<CertifiedKey>, String> {
    let key = rcgen::KeyPair::generate().map_err(|e| e.to_string())?;
    let mut params = rcgen::CertificateParams::new(vec!["ingress.local".to_owned()])
        .map_err(|e| e.to_string())?;
    params.distinguished_name.push(
        rcgen::DnType::CommonName,
        "berth ingress default certificate",
    );
    let cert = params.self_signed(&key).map_err(|e| e.to_string())?;
    let der = rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
    let signing =
        rustls::crypto::ring::sign::any_supported_type(&der).map_err(|e| e.to_string())?;
    Ok(Arc::new(CertifiedKey::new(
        vec![cert.der().clone()],
        signing,
    )))
}

/// Picks the certificate by SNI from the current [`Certificates`].
#[derive(Debug)]
pub struct Resolver {
    /// Replaced whenever Ingresses or Secrets change.
    pub current: RwLock<Arc<Certificates>>,
    default: Arc<CertifiedKey>,
}

impl Resolver {
    /// A resolver with no Ingress certificates yet.
    pub fn new(default: Arc<CertifiedKey>) -> Self {
        Self {
            current: RwLock::default(),
            default,
        }
    }
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let current = Arc::clone(&read(&self.current));
        Some(
            hello
                .server_name()
                .and_then(|name| current.get(name).cloned())
                .unwrap_or_else(|| Arc::clone(&self.default)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tls_secret(name: &str, hosts: &[&str]) -> Secret {
        let key = rcgen::KeyPair::generate().unwrap();
        let params =
            rcgen::CertificateParams::new(hosts.iter().map(|h| h.to_string()).collect::<Vec<_>>())
                .unwrap();
        let cert = params.self_signed(&key).unwrap();
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "ns"},
            "type": TLS_SECRET_TYPE,
            "data": {
                "tls.crt": base64(cert.pem().as_bytes()),
                "tls.key": base64(key.serialize_pem().as_bytes()),
            },
        }))
        .unwrap()
    }

    fn base64(bytes: &[u8]) -> String {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    #[test]
    fn sni_picks_the_secret_of_the_host_exact_before_wildcard() {
        let secrets = [
            tls_secret("a", &["a.example.com"]),
            tls_secret("wild", &["*.example.com"]),
            serde_json::from_value(json!({"metadata": {"name": "opaque", "namespace": "ns"},
                "type": "Opaque", "data": {}}))
            .unwrap(),
        ];
        let ingress: Ingress = serde_json::from_value(json!({
            "metadata": {"name": "i", "namespace": "ns"},
            "spec": {
                "tls": [
                    {"hosts": ["a.example.com"], "secretName": "a"},
                    {"hosts": ["*.example.com"], "secretName": "wild"},
                    {"hosts": ["o.example.org"], "secretName": "opaque"},
                    {"secretName": "missing"},
                    {"secretName": "a"},
                ],
                "rules": [{"host": "rule.example.net"}],
            },
        }))
        .unwrap();
        let certs = Certificates::build(&[ingress], &secrets);
        let a = certs.get("A.example.com").unwrap();
        let wild = certs.get("b.example.com").unwrap();
        assert!(!Arc::ptr_eq(a, wild));
        assert!(Arc::ptr_eq(certs.get("rule.example.net").unwrap(), a));
        assert!(certs.get("x.b.example.com").is_none());
        assert!(certs.get("example.com").is_none());
        assert!(certs.get("o.example.org").is_none());
        assert!(default_certificate().is_ok());
    }
}
