//! Draining a Node before its machine goes, as `kubectl drain
//! --ignore-daemonsets --delete-emptydir-data` does: cordon it, evict its
//! pods through the Eviction API (so PodDisruptionBudgets hold; a 429 is
//! retried until the time is up), then wait until they are gone, saying
//! what it waits on. Which pods to evict is decided in [`plan`].

pub mod plan;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, EvictParams, ListParams, Patch, PatchParams};

pub use plan::{plan, DrainPlan, PodKey};

/// How often a refused eviction is tried again (kubectl waits 5 s).
const RETRY_EVERY: Duration = Duration::from_secs(5);
/// How often the deletion of evicted pods is checked.
const POLL_EVERY: Duration = Duration::from_secs(1);

/// Why a drain stopped.
#[derive(Debug, thiserror::Error)]
pub enum DrainError {
    /// The API refused or failed a request.
    #[error("{what} on node {node}: {source}")]
    Api {
        /// The node.
        node: String,
        /// What was being done.
        what: &'static str,
        /// The API's answer.
        source: kube::Error,
    },
    /// Pods a drain may not delete are on the node.
    #[error("node {node} has pods a drain may not delete:\n{pods}")]
    Refused {
        /// The node.
        node: String,
        /// One `namespace/name: why` per line.
        pods: String,
    },
    /// An eviction failed for a reason retrying cannot fix.
    #[error("evicting pod {pod}: {reason}")]
    Evict {
        /// The pod.
        pod: PodKey,
        /// The API's answer.
        reason: String,
    },
    /// Pods were still there when the time was up.
    #[error("draining node {node} did not finish within {timeout:?}; still waiting on: {waiting}")]
    Timeout {
        /// The node.
        node: String,
        /// The limit.
        timeout: Duration,
        /// Each pod with what holds it.
        waiting: String,
    },
}

/// What the API's answer to one eviction means for the drain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EvictionAnswer {
    /// Accepted, or the pod is gone already.
    Evicted,
    /// Refused for now (a disruption budget): try again later.
    Retry(String),
    /// Refused for good.
    Failed(String),
}

/// Reads an eviction's answer as kubectl does: 404 means done, 429 means
/// wait and retry (so do 502-504 and a lost connection: a master going
/// away), anything else stops the drain (500 is upstream's answer for a pod
/// under several budgets).
pub fn eviction_answer<T>(result: &Result<T, kube::Error>) -> EvictionAnswer {
    match result {
        Ok(_) => EvictionAnswer::Evicted,
        Err(kube::Error::Api(status)) if status.code == 404 => EvictionAnswer::Evicted,
        Err(kube::Error::Api(status)) if status.code == 429 => {
            EvictionAnswer::Retry(status.message.clone())
        }
        // A master restarting (an upgrade) answers 503 or drops the
        // connection: worth another try, as with a budget.
        Err(kube::Error::Api(status)) if status.code > 500 => {
            EvictionAnswer::Retry(status.message.clone())
        }
        Err(kube::Error::Api(status)) => EvictionAnswer::Failed(status.message.clone()),
        Err(e) => EvictionAnswer::Retry(e.to_string()),
    }
}

/// What a finished drain did.
#[derive(Debug, Default)]
pub struct Drained {
    /// The pods evicted and gone.
    pub evicted: Vec<PodKey>,
    /// The pods left in place, with why.
    pub skipped: Vec<(PodKey, String)>,
}

/// Cordons `node` and evicts its pods within `timeout`; `report` gets a
/// line for each thing worth telling the user (what it waits on).
pub async fn drain(
    client: &kube::Client,
    node: &str,
    timeout: Duration,
    force: bool,
    report: &(dyn Fn(String) + Sync),
) -> Result<Drained, DrainError> {
    let api_error = |what: &'static str| {
        move |source: kube::Error| DrainError::Api {
            node: node.to_owned(),
            what,
            source,
        }
    };
    let deadline = Instant::now() + timeout;
    let nodes: Api<Node> = Api::all(client.clone());
    nodes
        .patch(
            node,
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"unschedulable": true}})),
        )
        .await
        .map_err(api_error("cordoning"))?;
    report(format!("node/{node} cordoned"));
    let pods: Api<Pod> = Api::all(client.clone());
    let on_node = pods
        .list(&ListParams::default().fields(&format!("spec.nodeName={node}")))
        .await
        .map_err(api_error("listing pods"))?
        .items;
    let plan = plan(&on_node, force);
    if !plan.refused.is_empty() {
        let pods: Vec<String> = plan
            .refused
            .iter()
            .map(|(key, why)| format!("  {key}: {why}"))
            .collect();
        return Err(DrainError::Refused {
            node: node.to_owned(),
            pods: pods.join("\n"),
        });
    }
    for (key, why) in &plan.skipped {
        report(format!("ignoring pod {key}: {why}"));
    }
    for warning in &plan.warnings {
        report(format!("warning: {warning}"));
    }
    let uids: BTreeMap<PodKey, Option<String>> = on_node
        .iter()
        .map(|pod| {
            let key = PodKey {
                namespace: pod.metadata.namespace.clone().unwrap_or_default(),
                name: pod.metadata.name.clone().unwrap_or_default(),
            };
            (key, pod.metadata.uid.clone())
        })
        .collect();
    let evictions = plan
        .evict
        .iter()
        .map(|key| evict(client, key, deadline, report));
    let waiting: Vec<String> = futures::future::join_all(evictions)
        .await
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .flatten()
        .collect();
    if !waiting.is_empty() {
        return Err(DrainError::Timeout {
            node: node.to_owned(),
            timeout,
            waiting: waiting.join("; "),
        });
    }
    wait_gone(client, node, &plan.evict, &uids, deadline, timeout, report).await?;
    Ok(Drained {
        evicted: plan.evict,
        skipped: plan.skipped,
    })
}

/// Evicts one pod, retrying refusals until `deadline`; what still refuses
/// it when the time is up.
async fn evict(
    client: &kube::Client,
    key: &PodKey,
    deadline: Instant,
    report: &(dyn Fn(String) + Sync),
) -> Result<Option<String>, DrainError> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), &key.namespace);
    let mut last = None;
    loop {
        match eviction_answer(&pods.evict(&key.name, &EvictParams::default()).await) {
            EvictionAnswer::Evicted => {
                report(format!("evicting pod {key}"));
                return Ok(None);
            }
            EvictionAnswer::Failed(reason) => {
                return Err(DrainError::Evict {
                    pod: key.clone(),
                    reason,
                })
            }
            EvictionAnswer::Retry(reason) => {
                if last.as_ref() != Some(&reason) {
                    report(format!(
                        "error when evicting pod {key} (will retry after 5s): {reason}"
                    ));
                }
                if Instant::now() + RETRY_EVERY > deadline {
                    return Ok(Some(format!("{key} ({reason})")));
                }
                last = Some(reason);
                tokio::time::sleep(RETRY_EVERY).await;
            }
        }
    }
}

/// Waits until every evicted pod is gone (or replaced by one of the same
/// name, as a StatefulSet does).
async fn wait_gone(
    client: &kube::Client,
    node: &str,
    evicted: &[PodKey],
    uids: &BTreeMap<PodKey, Option<String>>,
    deadline: Instant,
    timeout: Duration,
    report: &(dyn Fn(String) + Sync),
) -> Result<(), DrainError> {
    let mut reported = false;
    loop {
        let mut waiting = Vec::new();
        for key in evicted {
            let pods: Api<Pod> = Api::namespaced(client.clone(), &key.namespace);
            let still = match pods.get_opt(&key.name).await {
                Ok(Some(pod)) => pod.metadata.uid == uids.get(key).cloned().flatten(),
                Ok(None) => false,
                Err(_) => true,
            };
            if still {
                waiting.push(key.to_string());
            }
        }
        if waiting.is_empty() {
            return Ok(());
        }
        if !reported {
            report(format!(
                "waiting for the evicted pods to be deleted: {}",
                waiting.join(", ")
            ));
            reported = true;
        }
        if Instant::now() >= deadline {
            return Err(DrainError::Timeout {
                node: node.to_owned(),
                timeout,
                waiting: waiting
                    .iter()
                    .map(|pod| format!("{pod} (being deleted)"))
                    .collect::<Vec<_>>()
                    .join("; "),
            });
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eviction_answers_are_read_as_kubectl_reads_them() {
        let api = |code: u16, message: &str| -> Result<(), kube::Error> {
            Err(kube::Error::Api(
                kube::core::Status::failure(message, "Reason")
                    .with_code(code)
                    .boxed(),
            ))
        };
        let budget = "Cannot evict pod as it would violate the pod's disruption budget.";
        let cases = [
            (Ok(()), EvictionAnswer::Evicted),
            (api(404, "pods \"web\" not found"), EvictionAnswer::Evicted),
            (api(429, budget), EvictionAnswer::Retry(budget.to_owned())),
            (
                api(500, "This pod has more than one PodDisruptionBudget"),
                EvictionAnswer::Failed(String::new()),
            ),
            (
                api(503, "the server is shutting down"),
                EvictionAnswer::Retry("the server is shutting down".to_owned()),
            ),
        ];
        for (result, expected) in cases {
            let answer = eviction_answer(&result);
            match (&answer, &expected) {
                (EvictionAnswer::Failed(_), EvictionAnswer::Failed(_)) => {}
                _ => assert_eq!(answer, expected),
            }
        }
    }
}
