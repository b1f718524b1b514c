//! Certificates and keys for berth clusters, in one crate that the API server
//! and the provisioner both use without depending on each other: the single
//! server's own PKI ([`Pki`]) and what a highly available cluster needs (the
//! cluster, etcd and front-proxy CAs kept on disk, serving, peer and client
//! certificates, the service-account signing key) plus certificate expiry.

#![warn(missing_docs)]

mod authority;
mod cluster;
mod error;
mod expiry;
mod files;
mod leaf;
mod server;

pub use authority::{Authority, CertifiedKey, CA_VALIDITY, LEAF_VALIDITY};
pub use cluster::{ClusterAuthorities, ServiceAccountKey};
pub use error::PkiError;
pub use expiry::expiry;
pub use leaf::{
    api_serving, apiserver_kubelet_client, endpoint_host, etcd_api_client, etcd_peer, etcd_server,
    front_proxy_client, LeafSpec, Usage, CLUSTER_DOMAIN,
};
pub use server::Pki;
