//! The agent's API client: a kubeconfig file, optionally pointed at another
//! server URL (`--server`), like kubectl's `--server` override. Building a
//! client does no I/O beyond reading the file.

use std::path::Path;

use kube::config::{KubeConfigOptions, Kubeconfig};

/// Why a client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The kubeconfig file is missing or does not parse.
    #[error("kubeconfig {path}: {source}; pass the file `berth server` wrote (admin.kubeconfig) with --kubeconfig")]
    Kubeconfig {
        /// The file.
        path: String,
        /// What went wrong.
        source: kube::config::KubeconfigError,
    },
    /// `--server` is not a URL.
    #[error("--server {url:?} is not a URL like https://127.0.0.1:6443")]
    Server {
        /// The text given.
        url: String,
    },
    /// The client could not be configured (TLS material, server URL).
    #[error("building the API client: {0}")]
    Client(#[from] kube::Error),
}

/// A client from the kubeconfig at `path`, talking to `server` when given
/// instead of the kubeconfig's own server.
pub async fn from_kubeconfig_file(
    path: &Path,
    server: Option<&str>,
) -> Result<kube::Client, ClientError> {
    let kubeconfig_error = |source| ClientError::Kubeconfig {
        path: path.display().to_string(),
        source,
    };
    let kubeconfig = Kubeconfig::read_from(path).map_err(kubeconfig_error)?;
    let mut config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .map_err(kubeconfig_error)?;
    if let Some(url) = server {
        config.cluster_url = url
            .parse::<http::Uri>()
            .ok()
            .filter(|uri| uri.scheme().is_some() && uri.host().is_some())
            .ok_or_else(|| ClientError::Server {
                url: url.to_owned(),
            })?;
    }
    Ok(berth_observability::propagation::client(config)?)
}
