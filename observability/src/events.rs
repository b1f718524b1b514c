//! A small event recorder shared by the controllers and node agents: writes core/v1 Events
//! (involvedObject, reason, message, type, source, timestamps, count) so
//! `kubectl describe` tells the story of what a controller did. Repeats of the
//! same event are folded into one object with a growing count, as upstream's
//! recorder does. Recording is best effort: it never fails a reconcile.

use std::collections::HashMap;
use std::sync::Mutex;

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::Resource;

/// Whether an event reports normal operation or something to look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// `Normal`.
    Normal,
    /// `Warning`.
    Warning,
}

impl EventType {
    fn as_str(self) -> &'static str {
        match self {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        }
    }
}

/// Which object an event is about and what it says; the key repeats fold on.
type EventKey = (String, String, String, String, &'static str);

/// Records Events on behalf of one component (`source.component`).
pub struct Recorder {
    client: kube::Client,
    component: &'static str,
    /// `source.host`: the node, for events a node agent records.
    host: Option<String>,
    /// Events already written: key → (event name, count), for folding repeats.
    seen: Mutex<HashMap<EventKey, (String, i32)>>,
}

impl Recorder {
    /// A recorder that signs its events with `component` (e.g. `replicaset-controller`).
    pub fn new(client: kube::Client, component: &'static str) -> Self {
        Self {
            client,
            component,
            host: None,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// The same recorder, signing its events as coming from node `host` (kubelet's `source.host`).
    pub fn with_host(mut self, host: impl Into<String>) -> Self {
        self.host = Some(host.into());
        self
    }

    /// Records an event about the object `involved` refers to (which may
    /// name a part of it in `fieldPath`, as kubelet names a container);
    /// errors are logged, never returned.
    pub async fn record_reference(
        &self,
        involved: ObjectReference,
        event_type: EventType,
        reason: &str,
        message: &str,
    ) {
        if let Err(e) = self.write(involved, event_type, reason, message).await {
            tracing::debug!(error = %e, reason, "could not record event");
        }
    }

    /// Records an event about `object`; errors are logged, never returned.
    pub async fn record<K: Resource<DynamicType = ()>>(
        &self,
        object: &K,
        event_type: EventType,
        reason: &str,
        message: &str,
    ) {
        let involved = object_reference(object);
        if let Err(e) = self.write(involved, event_type, reason, message).await {
            tracing::debug!(error = %e, reason, "could not record event");
        }
    }

    async fn write(
        &self,
        involved: ObjectReference,
        event_type: EventType,
        reason: &str,
        message: &str,
    ) -> Result<(), kube::Error> {
        let namespace = involved
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        let api: Api<Event> = Api::namespaced(self.client.clone(), &namespace);
        let now = Time(jiff::Timestamp::now());
        let key = (
            involved.uid.clone().unwrap_or_default(),
            involved.name.clone().unwrap_or_default(),
            reason.to_owned(),
            message.to_owned(),
            event_type.as_str(),
        );
        let previous = self.seen.lock().expect("recorder lock").get(&key).cloned();
        if let Some((name, count)) = previous {
            let patch = serde_json::json!({"count": count + 1, "lastTimestamp": now});
            if api
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .is_ok()
            {
                self.seen
                    .lock()
                    .expect("recorder lock")
                    .insert(key, (name, count + 1));
                return Ok(());
            }
        }
        let object_name = involved.name.clone().unwrap_or_default();
        // The clock alone repeats when two events are recorded back to back
        // (a container's Created and Started); a process-wide sequence
        // keeps the names apart.
        static SEQUENCE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let sequence = SEQUENCE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let suffix = (jiff::Timestamp::now().as_nanosecond() as u64).wrapping_add(sequence);
        let event = Event {
            metadata: ObjectMeta {
                name: Some(format!("{object_name}.{suffix:x}")),
                namespace: Some(namespace),
                ..Default::default()
            },
            involved_object: involved,
            reason: Some(reason.to_owned()),
            message: Some(message.to_owned()),
            type_: Some(event_type.as_str().to_owned()),
            source: Some(EventSource {
                component: Some(self.component.to_owned()),
                host: self.host.clone(),
            }),
            reporting_component: Some(self.component.to_owned()),
            reporting_instance: Some(self.component.to_owned()),
            first_timestamp: Some(now.clone()),
            last_timestamp: Some(now),
            count: Some(1),
            ..Default::default()
        };
        let created = api.create(&PostParams::default(), &event).await?;
        let mut seen = self.seen.lock().expect("recorder lock");
        if seen.len() > 4096 {
            seen.clear();
        }
        seen.insert(key, (created.metadata.name.unwrap_or_default(), 1));
        Ok(())
    }
}

/// The `involvedObject` reference for `object`.
pub fn object_reference<K: Resource<DynamicType = ()>>(object: &K) -> ObjectReference {
    let meta = object.meta();
    ObjectReference {
        api_version: Some(K::api_version(&()).into_owned()),
        kind: Some(K::kind(&()).into_owned()),
        name: meta.name.clone(),
        namespace: meta.namespace.clone(),
        uid: meta.uid.clone(),
        resource_version: meta.resource_version.clone(),
        field_path: None,
    }
}
