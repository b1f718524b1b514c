//! TLS to etcd, as kube-apiserver's `--etcd-cafile/--etcd-certfile/--etcd-keyfile`
//! set it up: the members are verified against one CA and the API server
//! presents a client certificate. Holds PEM text only; it never reads files.

use etcd_client::{Certificate, Identity, TlsOptions};

/// The CA that signed the etcd members' serving certificates, and the client
/// certificate and key the store presents to them (all PEM).
#[derive(Clone)]
pub struct EtcdTls {
    /// PEM of the CA the members' certificates are verified against.
    pub ca_pem: String,
    /// PEM of the client certificate.
    pub cert_pem: String,
    /// PEM of the client certificate's private key.
    pub key_pem: String,
}

impl std::fmt::Debug for EtcdTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key stays out of logs.
        f.debug_struct("EtcdTls").finish_non_exhaustive()
    }
}

impl EtcdTls {
    /// The client's TLS options: trust only this CA, present this identity.
    pub(crate) fn options(&self) -> TlsOptions {
        TlsOptions::new()
            .ca_certificate(Certificate::from_pem(&self.ca_pem))
            .identity(Identity::from_pem(&self.cert_pem, &self.key_pem))
    }
}
