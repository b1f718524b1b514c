//! An API client whose TLS client certificate can be replaced while it runs:
//! every new connection presents the certificate current at that moment, so
//! a rotated certificate is used without rebuilding the client (and the
//! watches built on it).

use std::sync::{Arc, RwLock};

use kube::client::ConfigExt;
use rustls::client::ResolvesClientCert;
use rustls::sign::CertifiedKey;
use rustls::SignatureScheme;

/// Why the client or its certificate could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// The certificate or key PEM is unusable.
    #[error("the client certificate: {0}")]
    Certificate(String),
    /// kube could not be configured.
    #[error("building the API client: {0}")]
    Client(#[from] kube::Error),
    /// The kubeconfig built in memory was refused.
    #[error("building the API client: {0}")]
    Config(#[from] kube::config::KubeconfigError),
}

/// The certificate the client presents, shared with whoever rotates it.
#[derive(Debug, Clone)]
pub struct SwappableCertificate(Arc<RwLock<Arc<CertifiedKey>>>);

impl SwappableCertificate {
    /// Holds the certificate and key in `pem` (certificate first).
    pub fn new(pem: &str) -> Result<Self, IdentityError> {
        Ok(Self(Arc::new(RwLock::new(certified_key(pem)?))))
    }

    /// From now on, new connections present the certificate in `pem`.
    pub fn replace(&self, pem: &str) -> Result<(), IdentityError> {
        let key = certified_key(pem)?;
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = key;
        Ok(())
    }

    fn current(&self) -> Arc<CertifiedKey> {
        Arc::clone(&self.0.read().unwrap_or_else(|e| e.into_inner()))
    }
}

impl ResolvesClientCert for SwappableCertificate {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

fn certified_key(pem: &str) -> Result<Arc<CertifiedKey>, IdentityError> {
    let bad = |e: String| IdentityError::Certificate(e);
    let certs = rustls_pemfile::certs(&mut pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(e.to_string()))?;
    if certs.is_empty() {
        return Err(bad("no certificate in the PEM".into()));
    }
    let key = rustls_pemfile::private_key(&mut pem.as_bytes())
        .map_err(|e| bad(e.to_string()))?
        .ok_or_else(|| bad("no private key in the PEM".into()))?;
    let provider = rustls::crypto::ring::default_provider();
    let signing_key = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| bad(e.to_string()))?;
    Ok(Arc::new(CertifiedKey::new(certs, signing_key)))
}

/// A kubeconfig (YAML) for `server` trusting `ca_pem`, with `token` as the
/// bearer token when given.
pub fn kubeconfig_yaml(server: &str, ca_pem: &str, token: Option<&str>) -> String {
    use base64::Engine;
    let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    let user = match token {
        Some(token) => format!("{{token: \"{token}\"}}"),
        None => "{}".to_owned(),
    };
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: cluster\n  cluster: {{server: \"{server}\", certificate-authority-data: \"{ca}\"}}\nusers:\n- name: user\n  user: {user}\ncontexts:\n- name: default\n  context: {{cluster: cluster, user: user}}\ncurrent-context: default\n"
    )
}

async fn config(yaml: &str) -> Result<kube::Config, IdentityError> {
    let kubeconfig = kube::config::Kubeconfig::from_yaml(yaml)?;
    Ok(kube::Config::from_custom_kubeconfig(
        kubeconfig,
        &kube::config::KubeConfigOptions::default(),
    )
    .await?)
}

/// A client for `server` that authenticates with the bearer `token`.
pub async fn token_client(
    server: &str,
    ca_pem: &str,
    token: &str,
) -> Result<kube::Client, IdentityError> {
    let config = config(&kubeconfig_yaml(server, ca_pem, Some(token))).await?;
    Ok(kube::Client::try_from(config)?)
}

/// A client for `server` that presents `certificate` (as it is at each new
/// connection).
pub async fn certificate_client(
    server: &str,
    ca_pem: &str,
    certificate: SwappableCertificate,
) -> Result<kube::Client, IdentityError> {
    let config = config(&kubeconfig_yaml(server, ca_pem, None)).await?;
    let mut tls = config.rustls_client_config()?;
    tls.client_auth_cert_resolver = Arc::new(certificate);
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_only()
        .enable_http1()
        .build();
    let http = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build(https);
    let service = tower::ServiceBuilder::new()
        .layer(config.base_uri_layer())
        .service(http);
    Ok(kube::Client::new(service, config.default_namespace))
}
