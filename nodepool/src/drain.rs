//! Draining a node before its machine goes: cordon it, then evict its pods
//! through the Eviction API so PodDisruptionBudgets are respected (a 429 is
//! "not now", never forced), as `kubectl drain` does.

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{EvictParams, ListParams, Patch, PatchParams};
use kube::{Api, ResourceExt};
use serde_json::json;

use crate::plan::evictable_pods;

/// How long one eviction may take. kube-rs clients retry a 429 themselves
/// (honouring `Retry-After`), which would hold the reconcile for minutes
/// while a budget refuses; past this wait the pod counts as blocked and the
/// claim is requeued instead.
const EVICTION_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// Where a drain stands after one step.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DrainProgress {
    /// Whether this step cordoned the node (it was schedulable before).
    pub cordoned: bool,
    /// Pods still on the node that a drain must see gone.
    pub remaining: usize,
    /// Pods whose eviction a PodDisruptionBudget refused (`namespace/name`).
    pub blocked: Vec<String>,
    /// Pods evicted in this step.
    pub evicted: Vec<String>,
}

impl DrainProgress {
    /// Whether nothing is left to evict.
    pub fn done(&self) -> bool {
        self.remaining == 0
    }
}

/// Cordons `node` and asks for the eviction of every evictable pod on it
/// that is not already terminating; call again until [`DrainProgress::done`].
pub async fn step(client: &kube::Client, node: &Node) -> kube::Result<DrainProgress> {
    let name = node.name_any();
    let mut progress = DrainProgress::default();
    let unschedulable = node.spec.as_ref().and_then(|s| s.unschedulable) == Some(true);
    if !unschedulable {
        let nodes: Api<Node> = Api::all(client.clone());
        let patch = json!({"spec": {"unschedulable": true}});
        nodes
            .patch(&name, &PatchParams::default(), &Patch::Merge(patch))
            .await?;
        progress.cordoned = true;
    }
    let all: Api<Pod> = Api::all(client.clone());
    let on_node = all
        .list(&ListParams::default().fields(&format!("spec.nodeName={name}")))
        .await?
        .items;
    let pods = evictable_pods(&on_node, &name);
    progress.remaining = pods.len();
    for pod in pods {
        if pod.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let namespace = pod.namespace().unwrap_or_default();
        let key = format!("{namespace}/{}", pod.name_any());
        let api: Api<Pod> = Api::namespaced(client.clone(), &namespace);
        let (pod_name, params) = (pod.name_any(), EvictParams::default());
        let eviction = api.evict(&pod_name, &params);
        match tokio::time::timeout(EVICTION_WAIT, eviction).await {
            Ok(Ok(_)) => progress.evicted.push(key),
            Ok(Err(kube::Error::Api(s))) if s.code == 429 => progress.blocked.push(key),
            Err(_elapsed) => progress.blocked.push(key),
            Ok(Err(kube::Error::Api(s))) if s.code == 404 => {}
            Ok(Err(e)) => return Err(e),
        }
    }
    Ok(progress)
}
