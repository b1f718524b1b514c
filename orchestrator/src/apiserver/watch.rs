//! Watch streams: newline-delimited JSON events (`ADDED`, `MODIFIED`,
//! `DELETED`, `BOOKMARK`, `ERROR`) over a chunked response, resumable from a
//! resourceVersion, with 410 Expired once history is compacted.

mod shared;

use std::collections::{HashSet, VecDeque};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::{FutureExt, Stream, StreamExt};
use serde_json::{json, Value};
use tokio::time::Instant;

use berth_api::protobuf;

use super::catalog::ResourceInfo;
use super::errors::ApiError;
use super::listing::{self, Filter};
use super::negotiate::{self, Rendering};
use super::request::Query;
use super::tables;
use crate::store::{EventKind, Store, StoreError, WatchStream};

use shared::SharedEvent;
pub use shared::SharedEvents;

/// How often an idle watch gets a bookmark when the client allows them.
const BOOKMARK_INTERVAL: Duration = Duration::from_secs(30);
/// Longest a watch lasts without `timeoutSeconds` (upstream picks 30–60 minutes).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30 * 60);

struct WatchState {
    resource: Arc<ResourceInfo>,
    /// The served `apiVersion`: stored objects of another version are converted.
    api_version: String,
    query: Query,
    filter: Filter,
    rendering: Rendering,
    pending: VecDeque<Pending>,
    events: Option<WatchStream>,
    shared: Arc<SharedEvents>,
    deadline: Instant,
    bookmarks: bool,
    next_bookmark: Instant,
    last_revision: i64,
    visible: HashSet<String>,
    sent_columns: bool,
    knows_all: bool,
    done: bool,
}

/// An event waiting to be written: rendered for this watcher alone, or a
/// shared decoded object sent as JSON (serialized once for all watchers).
enum Pending {
    Rendered(Value),
    Shared(&'static str, Arc<SharedEvent>),
}

fn event(kind: &str, object: Value) -> Value {
    json!({"type": kind, "object": object})
}

fn with_type_meta(r: &ResourceInfo, mut obj: Value) -> Value {
    obj["kind"] = json!(r.kind);
    obj["apiVersion"] = json!(r.api_version());
    obj
}

impl WatchState {
    fn render(&mut self, kind: &str, obj: Value) -> Value {
        if self.rendering == Rendering::Table && kind != "BOOKMARK" && kind != "ERROR" {
            let mut table = tables::table(
                &self.resource,
                std::slice::from_ref(&obj),
                json!({}),
                &self.query,
            );
            if self.sent_columns {
                table["columnDefinitions"] = Value::Null;
            }
            self.sent_columns = true;
            return event(kind, table);
        }
        if matches!(self.rendering, Rendering::PartialMetadata { .. })
            && kind != "BOOKMARK"
            && kind != "ERROR"
        {
            return event(kind, negotiate::partial_object(&obj));
        }
        event(kind, with_type_meta(&self.resource, obj))
    }

    fn bookmark(&self, initial_events_end: bool) -> Value {
        let mut metadata = json!({"resourceVersion": self.last_revision.to_string()});
        if initial_events_end {
            metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        event(
            "BOOKMARK",
            json!({"kind": self.resource.kind, "apiVersion": self.resource.api_version(), "metadata": metadata}),
        )
    }

    /// The watch event for a decoded store event, if this watcher sees it.
    fn pending_for(
        &mut self,
        kind: EventKind,
        event: Arc<SharedEvent>,
        is_create: bool,
    ) -> Option<Pending> {
        let stored_as_served = event.object.get("kind").is_some()
            && event.object.get("apiVersion").and_then(Value::as_str)
                == Some(self.api_version.as_str());
        if stored_as_served {
            let kind = self.translate(kind, &event.object, is_create)?;
            if self.rendering == Rendering::Json {
                return Some(Pending::Shared(kind, event));
            }
            return Some(Pending::Rendered(self.render(kind, event.object.clone())));
        }
        let mut object = event.object.clone();
        self.resource.rules.convert_from_storage(&mut object);
        let kind = self.translate(kind, &object, is_create)?;
        Some(Pending::Rendered(self.render(kind, object)))
    }

    /// The event type a store event becomes for this watcher, handling
    /// selector transitions; None when the watcher does not see it.
    fn translate(&mut self, kind: EventKind, obj: &Value, is_create: bool) -> Option<&'static str> {
        let key = format!(
            "{}/{}",
            obj.pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .unwrap_or(""),
            obj.pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("")
        );
        let matches = self.filter.matches(obj);
        let was_visible = self.visible.contains(&key);
        let kind = match (kind, matches, was_visible) {
            (EventKind::Delete, true, _) | (EventKind::Delete, false, true) => {
                self.visible.remove(&key);
                "DELETED"
            }
            (EventKind::Delete, false, false) => return None,
            (EventKind::Put, true, _) => {
                self.visible.insert(key);
                // Without the initial list we cannot tell "newly matching" from
                // "changed": report MODIFIED as upstream does for history it lacks.
                if is_create || (!was_visible && self.knows_all) {
                    "ADDED"
                } else {
                    "MODIFIED"
                }
            }
            (EventKind::Put, false, true) => {
                self.visible.remove(&key);
                "DELETED"
            }
            (EventKind::Put, false, false) => return None,
        };
        Some(kind)
    }
}

/// Appends one event to `chunk` as it goes on the wire: a JSON line, or a
/// length-prefixed protobuf `WatchEvent`.
fn frame_into(chunk: &mut Vec<u8>, rendering: Rendering, pending: Pending) {
    match pending {
        Pending::Rendered(value) => chunk.extend_from_slice(&frame_value(rendering, &value)),
        Pending::Shared(kind, event) => {
            // Byte for byte what serializing {"type": kind, "object": object} gives.
            chunk.extend_from_slice(b"{\"type\":\"");
            chunk.extend_from_slice(kind.as_bytes());
            chunk.extend_from_slice(b"\",\"object\":");
            chunk.extend_from_slice(event.json());
            chunk.extend_from_slice(b"}\n");
        }
    }
}

fn frame_value(rendering: Rendering, value: &Value) -> Bytes {
    if rendering.is_protobuf() {
        let object = &value["object"];
        let api_version = object["apiVersion"].as_str().unwrap_or_default();
        let kind = object["kind"].as_str().unwrap_or_default();
        let event_type = value["type"].as_str().unwrap_or_default();
        let encoded = protobuf::message_for_kind(api_version, kind)
            .ok_or_else(|| format!("{kind} in {api_version} has no protobuf message"))
            .and_then(|message| protobuf::encode(message, object).map_err(|e| e.to_string()));
        match encoded {
            Ok(raw) => {
                return Bytes::from(protobuf::encode_watch_event(
                    event_type,
                    api_version,
                    kind,
                    &raw,
                ))
            }
            Err(e) => tracing::warn!(error = %e, "cannot encode a watch event in protobuf"),
        }
    }
    line(value)
}

fn line(value: &Value) -> Bytes {
    let mut bytes = serde_json::to_vec(value).unwrap_or_default();
    bytes.push(b'\n');
    Bytes::from(bytes)
}

fn expired(message: String) -> Value {
    event("ERROR", ApiError::Expired(message).to_status())
}

/// Starts a watch and returns the stream of encoded events.
pub async fn start(
    store: &dyn Store,
    shared: Arc<SharedEvents>,
    resource: Arc<ResourceInfo>,
    namespace: Option<&str>,
    name: Option<&str>,
    mut query: Query,
    rendering: Rendering,
) -> Result<impl Stream<Item = Result<Bytes, Infallible>> + Send + 'static, ApiError> {
    if let Some(name) = name {
        query = query.with_field_selector_name(name);
    }
    let filter = Filter::from_query(&resource, &query)?;
    let timeout = query
        .number("timeoutSeconds")?
        .filter(|s| *s > 0)
        .map_or(DEFAULT_TIMEOUT, |s| Duration::from_secs(s as u64));
    let send_initial = query.flag("sendInitialEvents");
    let requested = query.get("resourceVersion").unwrap_or("").to_owned();
    let mut state = WatchState {
        api_version: resource.api_version(),
        resource: Arc::clone(&resource),
        query: query.clone(),
        filter,
        rendering,
        pending: VecDeque::new(),
        events: None,
        shared,
        deadline: Instant::now() + timeout,
        bookmarks: query.flag("allowWatchBookmarks"),
        next_bookmark: Instant::now() + BOOKMARK_INTERVAL,
        last_revision: 0,
        visible: HashSet::new(),
        sent_columns: false,
        knows_all: false,
        done: false,
    };
    let start_revision = if requested.is_empty() || requested == "0" || send_initial {
        let mut initial_query = query.clone();
        initial_query.remove("limit");
        initial_query.remove("continue");
        let listed = listing::list(store, &resource, namespace, &initial_query).await?;
        for obj in listed.items {
            let key = format!(
                "{}/{}",
                obj.pointer("/metadata/namespace")
                    .and_then(Value::as_str)
                    .unwrap_or(""),
                obj.pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or("")
            );
            state.visible.insert(key);
            let rendered = state.render("ADDED", obj);
            state.pending.push_back(Pending::Rendered(rendered));
        }
        state.last_revision = listed.revision;
        state.knows_all = true;
        if send_initial {
            let bookmark = state.bookmark(true);
            state.pending.push_back(Pending::Rendered(bookmark));
        }
        listed.revision
    } else {
        let rv: i64 = requested
            .parse()
            .map_err(|_| ApiError::BadRequest(format!("invalid resource version: {requested}")))?;
        state.last_revision = rv;
        rv
    };
    match store
        .watch(&listing::prefix(&resource, namespace), start_revision)
        .await
    {
        Ok(events) => state.events = Some(events),
        Err(StoreError::Compacted { requested, .. }) => {
            state.pending.push_back(Pending::Rendered(expired(format!(
                "too old resource version: {requested}"
            ))));
            state.done = true;
        }
        Err(e) => return Err(e.into()),
    }
    Ok(futures::stream::unfold(state, next_event).map(Ok::<_, Infallible>))
}

/// Most bytes one chunk carries when events are coalesced.
const MAX_CHUNK: usize = 256 * 1024;

impl WatchState {
    /// Queues what one item of the store's watch becomes; false when the
    /// store's stream has ended.
    fn on_store_item(
        &mut self,
        item: Option<Result<crate::store::StoreEvent, StoreError>>,
    ) -> bool {
        match item {
            None => return false,
            Some(Err(StoreError::Compacted { requested, .. })) => {
                self.pending.push_back(Pending::Rendered(expired(format!(
                    "too old resource version: {requested}"
                ))));
                self.done = true;
            }
            Some(Err(e)) => {
                self.pending.push_back(Pending::Rendered(event(
                    "ERROR",
                    ApiError::from(e).to_status(),
                )));
                self.done = true;
            }
            Some(Ok(change)) => {
                self.last_revision = change.kv.mod_revision;
                let is_create = change.is_create();
                match self.shared.decode(&change.kv) {
                    Ok(decoded) => {
                        if let Some(pending) = self.pending_for(change.kind, decoded, is_create) {
                            self.pending.push_back(pending);
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "skipping undecodable object in watch"),
                }
            }
        }
        true
    }

    /// Takes the store events that are already available without waiting, so
    /// a busy watch sends them in one chunk (one TLS record and one write)
    /// rather than one each.
    fn absorb_ready_events(&mut self) {
        while !self.done && self.pending.len() < 512 {
            let Some(events) = self.events.as_mut() else {
                return;
            };
            match events.next().now_or_never() {
                Some(item) => {
                    if !self.on_store_item(item) {
                        self.done = true;
                    }
                }
                None => return,
            }
        }
    }

    /// Every pending event, framed and concatenated (up to [`MAX_CHUNK`]).
    fn take_chunk(&mut self) -> Bytes {
        let mut chunk = Vec::new();
        while let Some(pending) = self.pending.pop_front() {
            frame_into(&mut chunk, self.rendering, pending);
            if chunk.len() >= MAX_CHUNK {
                break;
            }
        }
        Bytes::from(chunk)
    }
}

async fn next_event(mut state: WatchState) -> Option<(Bytes, WatchState)> {
    loop {
        if !state.pending.is_empty() {
            state.absorb_ready_events();
            let chunk = state.take_chunk();
            return Some((chunk, state));
        }
        if state.done {
            return None;
        }
        let events = state.events.as_mut()?;
        let wake = if state.bookmarks {
            state.next_bookmark.min(state.deadline)
        } else {
            state.deadline
        };
        tokio::select! {
            item = events.next() => {
                if !state.on_store_item(item) {
                    return None;
                }
            }
            _ = tokio::time::sleep_until(wake) => {
                if Instant::now() >= state.deadline {
                    return None;
                }
                state.next_bookmark = Instant::now() + BOOKMARK_INTERVAL;
                let bookmark = state.bookmark(false);
                state.pending.push_back(Pending::Rendered(bookmark));
            }
        }
    }
}
