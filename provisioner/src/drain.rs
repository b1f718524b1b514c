//! Draining a Node before its machine is touched, as `kubectl drain
//! --ignore-daemonsets --delete-emptydir-data --force` does: cordon, then
//! evict every pod through the Eviction API (so PodDisruptionBudgets hold;
//! a 429 is retried every 5 s as kubectl does), then wait until the evicted
//! pods are gone. DaemonSet pods and mirror pods stay, as upstream leaves
//! them. Never deletes a pod directly.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, EvictParams, ListParams, Patch, PatchParams};
use tokio::time::Instant;

/// How long kubectl waits before retrying an eviction a budget refused.
const EVICTION_RETRY: Duration = Duration::from_secs(5);
/// How often the evicted pods are looked for.
const POLL: Duration = Duration::from_millis(500);

/// Why a drain (or a cordon) did not finish.
#[derive(Debug, thiserror::Error)]
pub enum DrainError {
    /// The API refused or failed a request.
    #[error("node {node}: {action}: {source}")]
    Api {
        /// The Node.
        node: String,
        /// What was being done.
        action: String,
        /// The API's answer.
        source: kube::Error,
    },
    /// Some pods were still there when the time was up (a budget that
    /// allows no disruption keeps them).
    #[error("node {node}: not drained within {timeout:?}; still there: {pods} (a PodDisruptionBudget may allow no disruption)")]
    Timeout {
        /// The Node.
        node: String,
        /// The limit.
        timeout: Duration,
        /// `namespace/name` of the pods left.
        pods: String,
    },
}

/// Marks `node` unschedulable (`cordon`) or schedulable again (`uncordon`).
pub async fn set_unschedulable(
    client: &kube::Client,
    node: &str,
    unschedulable: bool,
) -> Result<(), DrainError> {
    let nodes: Api<Node> = Api::all(client.clone());
    // As kubectl: uncordon removes the field rather than setting it false.
    let value = if unschedulable {
        serde_json::Value::Bool(true)
    } else {
        serde_json::Value::Null
    };
    let patch = serde_json::json!({ "spec": { "unschedulable": value } });
    nodes
        .patch(node, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map(|_| ())
        .map_err(|source| DrainError::Api {
            node: node.to_owned(),
            action: if unschedulable { "cordon" } else { "uncordon" }.to_owned(),
            source,
        })
}

/// Whether a drain leaves `pod` where it is: mirror pods (the agent owns
/// them) and pods of a DaemonSet (its controller would put them back).
pub fn stays(pod: &Pod) -> bool {
    let mirror = pod
        .metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key("kubernetes.io/config.mirror"));
    let daemon = pod
        .metadata
        .owner_references
        .iter()
        .flatten()
        .any(|owner| owner.controller == Some(true) && owner.kind == "DaemonSet");
    mirror || daemon
}

/// One pod being evicted: its key and uid (a new pod of the same name is not it).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Evicting {
    namespace: String,
    name: String,
    uid: Option<String>,
}

impl Evicting {
    fn of(pod: &Pod) -> Self {
        Self {
            namespace: pod.metadata.namespace.clone().unwrap_or_default(),
            name: pod.metadata.name.clone().unwrap_or_default(),
            uid: pod.metadata.uid.clone(),
        }
    }

    fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// Cordons `node`, evicts its pods and waits until they are gone, all
/// within `timeout`. The node stays cordoned; uncordon it with
/// [`set_unschedulable`] once the machine is back.
#[tracing::instrument(skip(client))]
pub async fn drain(client: &kube::Client, node: &str, timeout: Duration) -> Result<(), DrainError> {
    let deadline = Instant::now() + timeout;
    set_unschedulable(client, node, true).await?;
    let api_error = |action: &str, source| DrainError::Api {
        node: node.to_owned(),
        action: action.to_owned(),
        source,
    };
    let listed = Api::<Pod>::all(client.clone())
        .list(&ListParams::default().fields(&format!("spec.nodeName={node}")))
        .await
        .map_err(|e| api_error("listing its pods", e))?;
    let mut pending: Vec<Evicting> = listed
        .items
        .iter()
        .filter(|pod| !stays(pod))
        .map(Evicting::of)
        .collect();
    let mut evicted = Vec::new();
    while !pending.is_empty() {
        let mut refused = Vec::new();
        for pod in pending {
            let pods: Api<Pod> = Api::namespaced(client.clone(), &pod.namespace);
            match pods.evict(&pod.name, &EvictParams::default()).await {
                Ok(_) => evicted.push(pod),
                Err(kube::Error::Api(status)) if status.code == 404 => {}
                Err(kube::Error::Api(status)) if status.code == 429 => {
                    tracing::info!(pod = %pod.key(), message = %status.message, "eviction refused; retrying");
                    refused.push(pod);
                }
                // An API server busy or between etcd leaders: try again.
                Err(e) if transient(&e) => {
                    tracing::info!(pod = %pod.key(), error = %e, "eviction failed; retrying");
                    refused.push(pod);
                }
                Err(e) => return Err(api_error(&format!("evicting {}", pod.key()), e)),
            }
        }
        pending = refused;
        if !pending.is_empty() {
            if Instant::now() + EVICTION_RETRY > deadline {
                return Err(timed_out(node, timeout, &pending));
            }
            tokio::time::sleep(EVICTION_RETRY).await;
        }
    }
    loop {
        let mut left = Vec::new();
        for pod in evicted {
            let pods: Api<Pod> = Api::namespaced(client.clone(), &pod.namespace);
            let current = pods
                .get_opt(&pod.name)
                .await
                .map_err(|e| api_error(&format!("reading {}", pod.key()), e))?;
            if current.is_some_and(|c| c.metadata.uid == pod.uid) {
                left.push(pod);
            }
        }
        if left.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(timed_out(node, timeout, &left));
        }
        evicted = left;
        tokio::time::sleep(POLL).await;
    }
}

/// Whether `error` may pass by itself: a 5xx answer or no answer at all.
fn transient(error: &kube::Error) -> bool {
    match error {
        kube::Error::Api(status) => status.code >= 500,
        kube::Error::HyperError(_) | kube::Error::Service(_) => true,
        _ => false,
    }
}

fn timed_out(node: &str, timeout: Duration, pods: &[Evicting]) -> DrainError {
    DrainError::Timeout {
        node: node.to_owned(),
        timeout,
        pods: pods
            .iter()
            .map(Evicting::key)
            .collect::<Vec<_>>()
            .join(", "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(owner: Option<(&str, bool)>, mirror: bool) -> Pod {
        let mut value = serde_json::json!({
            "metadata": { "name": "p", "namespace": "default", "uid": "u1" }
        });
        if let Some((kind, controller)) = owner {
            value["metadata"]["ownerReferences"] = serde_json::json!([{
                "apiVersion": "apps/v1", "kind": kind, "name": "o", "uid": "o1",
                "controller": controller
            }]);
        }
        if mirror {
            value["metadata"]["annotations"] =
                serde_json::json!({ "kubernetes.io/config.mirror": "abc" });
        }
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn daemonset_and_mirror_pods_stay_the_rest_is_evicted() {
        let cases = [
            (pod(None, false), false, "a bare pod is evicted (--force)"),
            (
                pod(Some(("ReplicaSet", true)), false),
                false,
                "a ReplicaSet's pod",
            ),
            (
                pod(Some(("DaemonSet", true)), false),
                true,
                "a DaemonSet's pod",
            ),
            (
                pod(Some(("DaemonSet", false)), false),
                false,
                "owned by a DaemonSet but not controlled by it",
            ),
            (pod(None, true), true, "a mirror pod"),
        ];
        for (pod, want, case) in cases {
            assert_eq!(stays(&pod), want, "{case}");
        }
    }

    #[test]
    fn an_evicting_pod_is_named_by_namespace_and_name() {
        let evicting = Evicting::of(&pod(None, false));
        assert_eq!(evicting.key(), "default/p");
        assert_eq!(evicting.uid.as_deref(), Some("u1"));
        let error = timed_out("n1", Duration::from_secs(3), &[evicting.clone(), evicting]);
        assert!(
            error.to_string().contains("default/p, default/p"),
            "{error}"
        );
    }
}
