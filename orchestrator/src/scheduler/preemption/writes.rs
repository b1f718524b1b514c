//! Preemption's writes, thin on purpose (upstream's `PreemptPod` and
//! `clearNominatedNodeName`): mark a victim `DisruptionTarget=True` with
//! reason `PreemptionByScheduler`, delete it, record the `Preempted` event;
//! clear the nomination of a lower-priority pod. A victim already gone is
//! not an error.

use k8s_openapi::api::core::v1::{ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use serde_json::json;

use super::REASON_PREEMPTION_BY_SCHEDULER;
use crate::scheduler::binder::{self, SCHEDULER_NAME};

fn pods(client: &kube::Client, pod: &Pod) -> Api<Pod> {
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
    Api::namespaced(client.clone(), namespace)
}

fn name(pod: &Pod) -> &str {
    pod.metadata.name.as_deref().unwrap_or("")
}

fn ignore_not_found(result: Result<(), kube::Error>) -> Result<(), kube::Error> {
    match result {
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        other => other,
    }
}

/// The `DisruptionTarget` condition upstream sets on a victim.
pub fn disruption_target(preemptor: &Pod) -> serde_json::Value {
    let scheduler = preemptor
        .spec
        .as_ref()
        .and_then(|s| s.scheduler_name.as_deref())
        .unwrap_or(SCHEDULER_NAME);
    json!({
        "type": "DisruptionTarget",
        "status": "True",
        "reason": REASON_PREEMPTION_BY_SCHEDULER,
        "message": format!("{scheduler}: preempting to accommodate a higher priority pod"),
        "lastTransitionTime": Time(jiff::Timestamp::now()),
    })
}

/// The `Preempted` event's message on the victim.
pub fn preempted_message(preemptor: &Pod, node: &str) -> String {
    format!(
        "Preempted by pod {} on node {node}",
        preemptor.metadata.uid.as_deref().unwrap_or("")
    )
}

/// Preempts `victim` for `preemptor` nominated to `node`: the condition,
/// the delete (with the pod's own grace period), the event. A victim
/// already being deleted is left alone, as upstream does.
pub async fn preempt_victim(
    client: &kube::Client,
    preemptor: &Pod,
    victim: &Pod,
    node: &str,
    identity: &str,
) -> Result<(), kube::Error> {
    if victim.metadata.deletion_timestamp.is_some() {
        return Ok(());
    }
    let api = pods(client, victim);
    let patch = json!({"status": {"conditions": [disruption_target(preemptor)]}});
    let marked = api
        .patch_status(
            name(victim),
            &PatchParams::default(),
            &Patch::Strategic(patch),
        )
        .await
        .map(drop);
    if let Err(kube::Error::Api(status)) = &marked {
        if status.code == 404 {
            return Ok(());
        }
    }
    marked?;
    let deleted = api
        .delete(name(victim), &DeleteParams::default())
        .await
        .map(drop);
    ignore_not_found(deleted)?;
    let mut event = binder::event(
        victim,
        "Normal",
        "Preempted",
        &preempted_message(preemptor, node),
        identity,
    );
    event.action = Some("Preempting".into());
    event.related = Some(ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("Pod".into()),
        name: preemptor.metadata.name.clone(),
        namespace: preemptor.metadata.namespace.clone(),
        uid: preemptor.metadata.uid.clone(),
        ..Default::default()
    });
    if let Err(e) = binder::record(client, &event).await {
        tracing::debug!(error = %e, "could not record the Preempted event");
    }
    Ok(())
}

/// Clears `status.nominatedNodeName` of `pod`.
pub async fn clear_nomination(client: &kube::Client, pod: &Pod) -> Result<(), kube::Error> {
    let patch = json!({"status": {"nominatedNodeName": null}});
    let cleared = pods(client, pod)
        .patch_status(name(pod), &PatchParams::default(), &Patch::Merge(patch))
        .await
        .map(drop);
    ignore_not_found(cleared)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::testing::pod;

    #[test]
    fn the_victim_is_told_who_preempted_it_as_upstream_words_it() {
        let mut p = pod("high", json!({}));
        p.metadata.uid = Some("u-1".into());
        let condition = disruption_target(&p);
        assert_eq!(condition["type"], "DisruptionTarget");
        assert_eq!(condition["status"], "True");
        assert_eq!(condition["reason"], "PreemptionByScheduler");
        assert_eq!(
            condition["message"],
            "default-scheduler: preempting to accommodate a higher priority pod"
        );
        assert_eq!(
            preempted_message(&p, "n1"),
            "Preempted by pod u-1 on node n1"
        );
    }
}
