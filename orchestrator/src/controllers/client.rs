//! How in-process components get an API client: the same admin kubeconfig a
//! user gets, so they talk to the server over HTTPS like any other client.

use kube::config::{KubeConfigOptions, Kubeconfig};

/// Why a client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The kubeconfig text does not parse.
    #[error("kubeconfig: {0}")]
    Kubeconfig(#[from] kube::config::KubeconfigError),
    /// The client could not be configured (TLS, server URL).
    #[error("client: {0}")]
    Client(#[from] kube::Error),
}

/// A kube client from kubeconfig YAML (as `Pki::admin_kubeconfig` writes it).
pub async fn from_kubeconfig_yaml(yaml: &str) -> Result<kube::Client, ClientError> {
    let kubeconfig = Kubeconfig::from_yaml(yaml)?;
    let config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?;
    Ok(berth_observability::propagation::client(config)?)
}
