//! The scheduler's writes, thin on purpose: bind through `pods/binding`,
//! mark an unschedulable pod's `PodScheduled` condition through
//! `pods/status`, and record core/v1 Events as `default-scheduler`.
//! Creates go out as the typed `Api` would send them, but their replies are
//! only checked, never decoded: nothing reads them, and decoding them (and
//! setting up a typed `Api` per call) is CPU spent on every scheduled pod.

use berth_observability::propagation;
use k8s_openapi::api::core::v1::{Binding, Event, EventSource, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::core::Request;
use kube::Resource;
use serde::Serialize;
use serde_json::json;
use tracing::Instrument;

/// The name upstream's scheduler reports itself as, and pods ask for.
pub const SCHEDULER_NAME: &str = "default-scheduler";

fn pod_name(pod: &Pod) -> (&str, &str) {
    (
        pod.metadata.namespace.as_deref().unwrap_or("default"),
        pod.metadata.name.as_deref().unwrap_or(""),
    )
}

/// Sends a create built by `build` from the JSON of `body` and checks its
/// status (an API error comes back as `kube::Error::Api`, as from `Api`);
/// `verb` names the request in kube's tracing, as `Api` names it.
async fn post<T: Serialize>(
    client: &kube::Client,
    verb: &'static str,
    body: &T,
    build: impl FnOnce(Vec<u8>) -> Result<http::Request<Vec<u8>>, kube::core::request::Error>,
) -> Result<(), kube::Error> {
    let bytes = serde_json::to_vec(body).map_err(kube::Error::SerdeError)?;
    let mut request = build(bytes).map_err(kube::Error::BuildRequest)?;
    request.extensions_mut().insert(verb);
    client.request_text(request).await.map(drop)
}

/// `POST pods/NAME/binding` to `node`.
pub async fn bind(client: &kube::Client, pod: &Pod, node: &str) -> Result<(), kube::Error> {
    let (namespace, name) = pod_name(pod);
    let span =
        propagation::object_span("scheduler", "bind", name, pod.metadata.annotations.as_ref());
    post_binding(client, pod, namespace, name, node)
        .instrument(span)
        .await
}

async fn post_binding(
    client: &kube::Client,
    pod: &Pod,
    namespace: &str,
    name: &str,
    node: &str,
) -> Result<(), kube::Error> {
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
    let pods = Request::new(Pod::url_path(&(), Some(namespace)));
    post(client, "create_subresource", &binding, |body| {
        pods.create_subresource("binding", name, &PostParams::default(), body)
    })
    .await
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

/// What a failed scheduling attempt does to the pod's `status.nominatedNodeName`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Nomination {
    /// Leave it as it is.
    Keep,
    /// Nominate the pod to this node (preemption made room there).
    Set(String),
    /// Clear it (preemption cannot help anywhere).
    Clear,
}

/// The `status.nominatedNodeName` value to write, `None` when it stays.
fn nomination_change(pod: &Pod, nomination: &Nomination) -> Option<serde_json::Value> {
    let current = pod
        .status
        .as_ref()
        .and_then(|s| s.nominated_node_name.as_deref())
        .unwrap_or("");
    match nomination {
        Nomination::Set(node) if node != current => Some(json!(node)),
        Nomination::Clear if !current.is_empty() => Some(serde_json::Value::Null),
        _ => None,
    }
}

/// Sets `PodScheduled=False` with `reason` and `message`, and the
/// nomination, in one `pods/status` patch (nothing is sent when neither changes).
pub async fn mark_unschedulable(
    client: &kube::Client,
    pod: &Pod,
    reason: &str,
    message: &str,
    nomination: &Nomination,
) -> Result<(), kube::Error> {
    let condition = unschedulable_condition(pod, reason, message);
    let nominated = nomination_change(pod, nomination);
    if condition.is_none() && nominated.is_none() {
        return Ok(());
    }
    let mut status = serde_json::Map::new();
    if let Some(condition) = condition {
        status.insert("conditions".into(), json!([condition]));
    }
    if let Some(nominated) = nominated {
        status.insert("nominatedNodeName".into(), nominated);
    }
    let (namespace, name) = pod_name(pod);
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let patch = json!({ "status": status });
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
    let events = Request::new(Event::url_path(&(), Some(namespace)));
    post(client, "create", event, |body| {
        events.create(&PostParams::default(), body)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::testing::pod;
    use std::sync::{Arc, Mutex};

    /// What a fake API server was sent: method, path and query, JSON body.
    type Sent = Arc<Mutex<Vec<(String, String, serde_json::Value)>>>;

    /// A client whose API server answers every request with `code` and
    /// `reply`, recording what it was sent.
    fn fake_api(code: u16, reply: &'static str) -> (kube::Client, Sent) {
        let sent = Sent::default();
        let record = sent.clone();
        let service = tower::service_fn(move |request: http::Request<kube::client::Body>| {
            let record = record.clone();
            async move {
                let (parts, body) = request.into_parts();
                let body = body.collect_bytes().await?;
                record.lock().unwrap().push((
                    parts.method.to_string(),
                    parts.uri.to_string(),
                    serde_json::from_slice(&body).unwrap(),
                ));
                let reply = http_body_util::Full::new(bytes::Bytes::from_static(reply.as_bytes()));
                Ok::<_, kube::Error>(http::Response::builder().status(code).body(reply).unwrap())
            }
        });
        (kube::Client::new(service, "default"), sent)
    }

    #[tokio::test]
    async fn bindings_and_events_are_posted_as_the_typed_api_posts_them() {
        // An empty reply: it is checked for its status, never decoded.
        let (client, sent) = fake_api(201, "");
        let p = pod("web", json!({}));
        bind(&client, &p, "n1").await.unwrap();
        let e = event(&p, "Normal", "Scheduled", "assigned", "id");
        record(&client, &e).await.unwrap();
        let sent = sent.lock().unwrap();
        let (method, path, body) = &sent[0];
        assert_eq!(
            (method.as_str(), path.as_str()),
            ("POST", "/api/v1/namespaces/default/pods/web/binding?")
        );
        assert_eq!(body["kind"], "Binding");
        assert_eq!(body["metadata"]["name"], "web");
        assert_eq!(
            body["target"],
            json!({"apiVersion": "v1", "kind": "Node", "name": "n1"})
        );
        let (method, path, body) = &sent[1];
        assert_eq!(
            (method.as_str(), path.as_str()),
            ("POST", "/api/v1/namespaces/default/events?")
        );
        assert_eq!(body["kind"], "Event");
        assert_eq!(body["reason"], "Scheduled");
        assert_eq!(body["involvedObject"]["name"], "web");
    }

    #[tokio::test]
    async fn a_refused_binding_comes_back_as_the_api_status() {
        let status = r#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"pod web is already assigned","reason":"Conflict","code":409}"#;
        let (client, _) = fake_api(409, status);
        match bind(&client, &pod("web", json!({})), "n1").await {
            Err(kube::Error::Api(status)) => assert_eq!(status.code, 409),
            other => panic!("want the 409 status, got {other:?}"),
        }
    }

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
    fn the_nomination_is_written_only_when_it_changes() {
        let mut p = pod("p", json!({}));
        let set = Nomination::Set("n1".into());
        assert_eq!(nomination_change(&p, &set), Some(json!("n1")));
        assert_eq!(nomination_change(&p, &Nomination::Clear), None);
        assert_eq!(nomination_change(&p, &Nomination::Keep), None);
        p.status = Some(serde_json::from_value(json!({"nominatedNodeName": "n1"})).unwrap());
        assert_eq!(nomination_change(&p, &set), None);
        assert_eq!(
            nomination_change(&p, &Nomination::Set("n2".into())),
            Some(json!("n2"))
        );
        assert_eq!(
            nomination_change(&p, &Nomination::Clear),
            Some(serde_json::Value::Null)
        );
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
