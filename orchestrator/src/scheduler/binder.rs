//! The scheduler's writes, thin on purpose: bind through `pods/binding`,
//! mark an unschedulable pod's `PodScheduled` condition through
//! `pods/status`, and record core/v1 Events as `default-scheduler`.

use k8s_openapi::api::core::v1::{Binding, Event, EventSource, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

/// The name upstream's scheduler reports itself as, and pods ask for.
pub const SCHEDULER_NAME: &str = "default-scheduler";

fn pod_name(pod: &Pod) -> (&str, &str) {
    (
        pod.metadata.namespace.as_deref().unwrap_or("default"),
        pod.metadata.name.as_deref().unwrap_or(""),
    )
}

/// `POST pods/NAME/binding` to `node`.
pub async fn bind(client: &kube::Client, pod: &Pod, node: &str) -> Result<(), kube::Error> {
    let (namespace, name) = pod_name(pod);
    let binding = Binding {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(namespace.to_owned()),
            uid: pod.metadata.uid.clone(),
            ..Default::default()
        },
        target: ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Node".into()),
            name: Some(node.to_owned()),
            ..Default::default()
        },
    };
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let _: serde_json::Value = api
        .create_subresource("binding", name, &PostParams::default(), &binding)
        .await?;
    Ok(())
}

/// The `PodScheduled=False` condition for `message`, unless the pod has it already.
pub fn unschedulable_condition(
    pod: &Pod,
    reason: &str,
    message: &str,
) -> Option<serde_json::Value> {
    let current = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "PodScheduled"));
    if let Some(c) = current {
        if c.status == "False"
            && c.reason.as_deref() == Some(reason)
            && c.message.as_deref() == Some(message)
        {
            return None;
        }
    }
    let transition = match current {
        Some(c) if c.status == "False" => c.last_transition_time.clone(),
        _ => None,
    }
    .unwrap_or_else(|| Time(jiff::Timestamp::now()));
    Some(json!({
        "type": "PodScheduled",
        "status": "False",
        "reason": reason,
        "message": message,
        "lastProbeTime": null,
        "lastTransitionTime": transition,
    }))
}

/// Sets `PodScheduled=False` with `reason` and `message` through `pods/status`.
pub async fn mark_unschedulable(
    client: &kube::Client,
    pod: &Pod,
    reason: &str,
    message: &str,
) -> Result<(), kube::Error> {
    let Some(condition) = unschedulable_condition(pod, reason, message) else {
        return Ok(());
    };
    let (namespace, name) = pod_name(pod);
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let patch = json!({"status": {"conditions": [condition]}});
    api.patch_status(name, &PatchParams::default(), &Patch::Strategic(patch))
        .await?;
    Ok(())
}

/// A core/v1 Event about `pod` from `default-scheduler`.
pub fn event(pod: &Pod, type_: &str, reason: &str, message: &str, instance: &str) -> Event {
    let (namespace, name) = pod_name(pod);
    let now = Time(jiff::Timestamp::now());
    Event {
        metadata: ObjectMeta {
            name: Some(format!("{name}.{:x}", rand::random::<u64>())),
            namespace: Some(namespace.to_owned()),
            ..Default::default()
        },
        involved_object: ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Pod".into()),
            name: Some(name.to_owned()),
            namespace: Some(namespace.to_owned()),
            uid: pod.metadata.uid.clone(),
            resource_version: pod.metadata.resource_version.clone(),
            ..Default::default()
        },
        reason: Some(reason.to_owned()),
        message: Some(message.to_owned()),
        type_: Some(type_.to_owned()),
        source: Some(EventSource {
            component: Some(SCHEDULER_NAME.into()),
            host: None,
        }),
        reporting_component: Some(SCHEDULER_NAME.into()),
        reporting_instance: Some(instance.to_owned()),
        first_timestamp: Some(now.clone()),
        last_timestamp: Some(now),
        count: Some(1),
        ..Default::default()
    }
}

/// Creates `event` in its namespace.
pub async fn record(client: &kube::Client, event: &Event) -> Result<(), kube::Error> {
    let namespace = event.metadata.namespace.as_deref().unwrap_or("default");
    let api: Api<Event> = Api::namespaced(client.clone(), namespace);
    api.create(&PostParams::default(), event).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::testing::pod;

    #[test]
    fn the_condition_is_written_only_when_it_changes() {
        let mut p = pod("p", json!({}));
        let c = unschedulable_condition(&p, "Unschedulable", "m1").unwrap();
        assert_eq!(c["status"], "False");
        p.status = Some(serde_json::from_value(json!({"conditions": [c]})).unwrap());
        assert!(unschedulable_condition(&p, "Unschedulable", "m1").is_none());
        assert!(unschedulable_condition(&p, "Unschedulable", "m2").is_some());
    }

    #[test]
    fn events_name_the_pod_and_the_scheduler() {
        let p = pod("web", json!({}));
        let e = event(
            &p,
            "Normal",
            "Scheduled",
            "Successfully assigned default/web to n1",
            "id",
        );
        assert_eq!(e.involved_object.name.as_deref(), Some("web"));
        assert_eq!(e.involved_object.kind.as_deref(), Some("Pod"));
        assert_eq!(e.source.unwrap().component.as_deref(), Some(SCHEDULER_NAME));
        assert_eq!(e.reporting_component.as_deref(), Some(SCHEDULER_NAME));
        assert!(e.metadata.name.unwrap().starts_with("web."));
    }
}
