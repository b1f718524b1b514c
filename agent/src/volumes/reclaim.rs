//! Reclaiming `local-path` volumes: a loop over PersistentVolumes that, for
//! each one `berth.dev/local-path` made for one of this process's nodes that
//! is `Released` with reclaim policy `Delete`, removes its directory (real
//! nodes only; simulated ones have none) and then deletes the PV object, as
//! rancher's local-path-provisioner does with its helper pod. A failure is a
//! Warning `VolumeFailedDelete` on the PV and a retry; `Retain` is left alone.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::PersistentVolume;
use kube::api::{Api, DeleteParams, Preconditions};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::ResourceExt;
use tokio_util::sync::CancellationToken;

use super::local_path::{self, RemoveError};
use crate::{lock, AgentError, Nodes};
use berth_observability::events::{EventType, Recorder};

/// What to do with one PersistentVolume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Not ours, not released, or kept (`Retain`).
    Ignore,
    /// Remove the directory at `path` on `node`, then delete the PV.
    Delete {
        /// The node the volume lives on.
        node: String,
        /// Its directory (`local.path` or `hostPath.path`).
        path: String,
    },
}

/// Decides, purely, what `pv` asks of the node agent; `ours` says whether
/// this process runs a node of that name.
pub fn decide(pv: &PersistentVolume, ours: impl Fn(&str) -> bool) -> Decision {
    let released = pv.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Released");
    let policy = pv
        .spec
        .as_ref()
        .and_then(|s| s.persistent_volume_reclaim_policy.as_deref());
    if !super::is_local_path(pv)
        || !released
        || policy != Some("Delete")
        || pv.metadata.deletion_timestamp.is_some()
    {
        return Decision::Ignore;
    }
    match (super::affinity_node(pv), super::volume_path(pv)) {
        (Some(node), Some(path)) if ours(node) => Decision::Delete {
            node: node.to_owned(),
            path: path.to_owned(),
        },
        _ => Decision::Ignore,
    }
}

#[derive(Debug, thiserror::Error)]
enum ReclaimError {
    #[error("{0}")]
    Api(#[from] kube::Error),
    #[error("{0}")]
    Remove(#[from] RemoveError),
}

struct Context {
    client: kube::Client,
    nodes: Arc<Nodes>,
    /// One recorder per node that runs real processes.
    recorders: HashMap<String, Recorder>,
    /// Consecutive failures per PV, for exponential backoff.
    failures: Mutex<HashMap<String, u32>>,
}

async fn reconcile(pv: Arc<PersistentVolume>, ctx: Arc<Context>) -> Result<Action, ReclaimError> {
    let Decision::Delete { node, path } = decide(&pv, |name| ctx.nodes.get(name).is_some()) else {
        return Ok(Action::await_change());
    };
    let name = pv.name_any();
    let Some(handle) = ctx.nodes.get(&node) else {
        return Ok(Action::await_change());
    };
    if handle.runtime.runs_processes() {
        let root = handle.config.local_path_dir.clone();
        let removed = tokio::task::spawn_blocking(move || local_path::remove(&root, &path))
            .await
            .unwrap_or_else(|e| Err(RemoveError(format!("the removal panicked: {e}"))));
        if let Err(error) = removed {
            if let Some(recorder) = ctx.recorders.get(&node) {
                let message = format!("failed to delete volume {name}: {error}");
                recorder
                    .record(
                        pv.as_ref(),
                        EventType::Warning,
                        "VolumeFailedDelete",
                        &message,
                    )
                    .await;
            }
            return Err(error.into());
        }
    }
    let api: Api<PersistentVolume> = Api::all(ctx.client.clone());
    let params = DeleteParams {
        preconditions: Some(Preconditions {
            uid: pv.metadata.uid.clone(),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    match api.delete(&name, &params).await {
        Ok(_) => {}
        Err(kube::Error::Api(status)) if status.code == 404 || status.code == 409 => {}
        Err(e) => return Err(e.into()),
    }
    lock(&ctx.failures).remove(&name);
    tracing::info!(volume = %name, node = %node, "released local-path volume deleted");
    Ok(Action::await_change())
}

fn error_policy(pv: Arc<PersistentVolume>, error: &ReclaimError, ctx: Arc<Context>) -> Action {
    let attempt = {
        let mut failures = lock(&ctx.failures);
        let count = failures.entry(pv.name_any()).or_insert(0);
        *count = count.saturating_add(1);
        *count
    };
    let delay = Duration::from_millis(500)
        .saturating_mul(1 << attempt.min(7))
        .min(Duration::from_secs(60));
    tracing::warn!(volume = %pv.name_any(), %error, attempt, "reclaiming the volume failed; retrying in {delay:?}");
    Action::requeue(delay)
}

/// Reclaims the released `local-path` volumes of `nodes` until `cancel` fires.
pub async fn run(
    client: kube::Client,
    nodes: Arc<Nodes>,
    cancel: CancellationToken,
) -> Result<(), AgentError> {
    let recorders = nodes
        .iter()
        .filter(|node| node.runtime.runs_processes())
        .map(|node| {
            let recorder =
                Recorder::new(client.clone(), super::LOCAL_PATH_PROVISIONER).with_host(node.name());
            (node.name().to_owned(), recorder)
        })
        .collect();
    let api: Api<PersistentVolume> = Api::all(client.clone());
    let context = Arc::new(Context {
        client,
        nodes,
        recorders,
        failures: Mutex::new(HashMap::new()),
    });
    Controller::new(api, watcher::Config::default())
        .graceful_shutdown_on(async move { cancel.cancelled().await })
        .run(reconcile, error_policy, context)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "volume reclaim loop event");
            }
        })
        .await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pv(
        annotations: serde_json::Value,
        policy: &str,
        phase: &str,
        node: &str,
    ) -> PersistentVolume {
        serde_json::from_value(json!({
            "metadata": {"name": "pvc-1", "annotations": annotations},
            "spec": {
                "persistentVolumeReclaimPolicy": policy,
                "local": {"path": "/lp/pvc-1_ns_c"},
                "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                    {"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}]}]}}
            },
            "status": {"phase": phase}
        }))
        .unwrap()
    }

    #[test]
    fn only_released_delete_local_path_volumes_of_our_nodes_are_reclaimed() {
        let ours = json!({"pv.kubernetes.io/provisioned-by": "berth.dev/local-path"});
        let delete = Decision::Delete {
            node: "n1".into(),
            path: "/lp/pvc-1_ns_c".into(),
        };
        let cases = [
            (
                "released, Delete, our node",
                pv(ours.clone(), "Delete", "Released", "n1"),
                delete,
            ),
            (
                "Retain is kept",
                pv(ours.clone(), "Retain", "Released", "n1"),
                Decision::Ignore,
            ),
            (
                "still bound",
                pv(ours.clone(), "Delete", "Bound", "n1"),
                Decision::Ignore,
            ),
            (
                "another node's",
                pv(ours.clone(), "Delete", "Released", "n2"),
                Decision::Ignore,
            ),
            (
                "another provisioner's",
                pv(
                    json!({"pv.kubernetes.io/provisioned-by": "rancher.io/local-path"}),
                    "Delete",
                    "Released",
                    "n1",
                ),
                Decision::Ignore,
            ),
            (
                "a static volume",
                pv(json!({}), "Delete", "Released", "n1"),
                Decision::Ignore,
            ),
        ];
        for (case, pv, expected) in cases {
            assert_eq!(decide(&pv, |node| node == "n1"), expected, "{case}");
        }
        let mut deleting = pv(ours, "Delete", "Released", "n1");
        deleting.metadata.deletion_timestamp = Some(
            k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::now()),
        );
        assert_eq!(decide(&deleting, |_| true), Decision::Ignore);
    }
}
