//! The provisioner's own way to the API: the admin kubeconfig's credentials
//! against whichever master answers first. Commands then work with a master
//! down, and on a machine where `api_endpoint` does not resolve.

use std::path::Path;
use std::time::Duration;

use crate::config::Cluster;
use crate::endpoint::api_url;

/// A client for the first master whose `/readyz` answers `ok` within `timeout`.
pub async fn client(
    cluster: &Cluster,
    state_dir: &Path,
    timeout: Duration,
) -> Result<kube::Client, String> {
    let path = state_dir.join("admin.kubeconfig");
    let kubeconfig = kube::config::Kubeconfig::read_from(&path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let mut refusals = Vec::new();
    for master in &cluster.masters {
        let url = api_url(master);
        match ready_client(&config, &url, timeout).await {
            Ok(client) => return Ok(client),
            Err(e) => refusals.push(format!("{} ({url}): {e}", master.name)),
        }
    }
    Err(format!("no master's API answered: {}", refusals.join("; ")))
}

async fn ready_client(
    config: &kube::Config,
    url: &str,
    timeout: Duration,
) -> Result<kube::Client, String> {
    let mut config = config.clone();
    config.cluster_url = url.parse().map_err(|e| format!("{e}"))?;
    config.connect_timeout = Some(timeout);
    config.read_timeout = Some(timeout);
    let client = kube::Client::try_from(config).map_err(|e| e.to_string())?;
    let request = http::Request::get("/readyz")
        .body(Vec::new())
        .map_err(|e| e.to_string())?;
    let body = tokio::time::timeout(timeout, client.request_text(request))
        .await
        .map_err(|_| format!("no answer within {timeout:?}"))?
        .map_err(|e| e.to_string())?;
    if body.trim() == "ok" {
        Ok(client)
    } else {
        Err(format!("/readyz: {}", body.trim()))
    }
}
