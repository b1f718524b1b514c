//! VolumeBinding's PreBind step, the I/O half of the plugin: pre-binds each
//! chosen Available volume to its claim (the PV controller completes the
//! binding), asks for provisioning on the chosen node through the claim's
//! `volume.kubernetes.io/selected-node`, then waits, bounded, until every
//! claim is Bound. The pod is bound only after that, as upstream's.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use super::ClaimBinding;
use crate::controllers::persistent_volume::local_path::{claim_reference, SELECTED_NODE};
use crate::controllers::persistent_volume::sync::{BIND_COMPLETED, BOUND_BY_CONTROLLER};

/// How long PreBind waits for the claims to be Bound (upstream's
/// `bindTimeoutSeconds` is 600; a local-path volume binds in a second).
pub const BIND_TIMEOUT: Duration = Duration::from_secs(60);
/// How often the claims are read while waiting.
const POLL: Duration = Duration::from_millis(200);

/// Why PreBind failed; the pod is scheduled again.
#[derive(Debug, thiserror::Error)]
pub enum PreBindError {
    /// A write or read was refused.
    #[error("binding volumes: {0}")]
    Api(#[from] kube::Error),
    /// A claim was deleted while waiting.
    #[error("binding volumes: persistentvolumeclaim \"{0}\" not found")]
    ClaimGone(String),
    /// The claims were not Bound in time.
    #[error("binding volumes: timed out waiting for the condition")]
    Timeout,
}

fn is_bound(claim: &PersistentVolumeClaim) -> bool {
    let named = claim
        .spec
        .as_ref()
        .and_then(|s| s.volume_name.as_deref())
        .is_some_and(|n| !n.is_empty());
    named
        && claim
            .metadata
            .annotations
            .as_ref()
            .is_some_and(|a| a.contains_key(BIND_COMPLETED))
}

/// Carries out `bindings` for node `node` and waits until every claim is Bound.
pub async fn bind_volumes(
    client: &kube::Client,
    bindings: &[ClaimBinding],
    node: &str,
) -> Result<(), PreBindError> {
    let params = PatchParams::default();
    for binding in bindings {
        let claim = &binding.claim;
        let namespace = claim.metadata.namespace.as_deref().unwrap_or("default");
        let name = claim.metadata.name.as_deref().unwrap_or("");
        match &binding.volume {
            Some(volume) => {
                let patch = json!({
                    "metadata": {"annotations": {BOUND_BY_CONTROLLER: "yes"}},
                    "spec": {"claimRef": claim_reference(claim)},
                });
                Api::<PersistentVolume>::all(client.clone())
                    .patch(volume, &params, &Patch::Merge(&patch))
                    .await?;
            }
            None => {
                let patch = json!({"metadata": {"annotations": {SELECTED_NODE: node}}});
                Api::<PersistentVolumeClaim>::namespaced(client.clone(), namespace)
                    .patch(name, &params, &Patch::Merge(&patch))
                    .await?;
            }
        }
        tracing::debug!(claim = %format!("{namespace}/{name}"), volume = ?binding.volume, node, "volume binding requested");
    }
    let deadline = Instant::now() + BIND_TIMEOUT;
    for binding in bindings {
        let claim = &binding.claim;
        let namespace = claim.metadata.namespace.as_deref().unwrap_or("default");
        let name = claim.metadata.name.as_deref().unwrap_or("");
        let api = Api::<PersistentVolumeClaim>::namespaced(client.clone(), namespace);
        loop {
            match api.get_opt(name).await? {
                None => return Err(PreBindError::ClaimGone(name.to_owned())),
                Some(fresh) if fresh.metadata.uid != claim.metadata.uid => {
                    return Err(PreBindError::ClaimGone(name.to_owned()))
                }
                Some(fresh) if is_bound(&fresh) => break,
                Some(_) => {}
            }
            if Instant::now() >= deadline {
                return Err(PreBindError::Timeout);
            }
            tokio::time::sleep(POLL).await;
        }
    }
    Ok(())
}
