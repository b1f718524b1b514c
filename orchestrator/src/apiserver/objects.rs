//! Generic object storage semantics over the [`Store`]: metadata stamping,
//! optimistic concurrency, generation, status/spec separation, finalizers and
//! graceful deletion — the behaviour kube-apiserver's generic registry gives
//! every kind. HTTP concerns stay in the handlers.

mod delete;
mod namespaces;
mod ownership;

use std::sync::{Arc, Mutex, OnceLock};

use rand::Rng;
use serde_json::{json, Map, Value};

use super::admission;
use super::allocator::Allocator;
use super::catalog::ResourceInfo;
use super::errors::FieldCause;
use super::errors::{ApiError, Target};
use super::pod_security;
use super::watch::SharedEvents;
use crate::store::{KeyValue, Store, StoreError};

/// Upstream's message for a stale `resourceVersion`.
pub const MODIFIED: &str =
    "the object has been modified; please apply your changes to the latest version and try again";

/// Options common to writes.
#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    /// `dryRun=All`: validate and answer, but store nothing.
    pub dry_run: bool,
    /// The field manager a create or update is recorded under in `metadata.managedFields`;
    /// None when the caller records ownership itself (server-side apply).
    pub field_manager: Option<String>,
    /// The subresource written through (`status`, `scale`), for the managedFields entry.
    pub subresource: Option<String>,
    /// Where admission leaves warnings for the client's `Warning` headers.
    pub warnings: Warnings,
}

/// Warnings a write collects for the client (upstream's admission warnings,
/// which kubectl prints as `Warning: …`); shared so a handler can read what
/// the write left. Only writes that succeed leave any.
#[derive(Debug, Clone, Default)]
pub struct Warnings(Arc<Mutex<Vec<String>>>);

impl Warnings {
    /// Adds warnings.
    pub fn extend(&self, warnings: Vec<String>) {
        if !warnings.is_empty() {
            self.lock().extend(warnings);
        }
    }

    /// Takes every warning left so far.
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.lock())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<String>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// `DeleteOptions` as sent in the body or query.
#[derive(Debug, Clone, Default)]
pub struct DeleteOptions {
    /// Override of the grace period.
    pub grace_period_seconds: Option<i64>,
    /// `Orphan`, `Background` or `Foreground`.
    pub propagation_policy: Option<String>,
    /// Delete only if the uid still matches.
    pub precondition_uid: Option<String>,
    /// Delete only if the resourceVersion still matches.
    pub precondition_resource_version: Option<String>,
    /// `dryRun=All`.
    pub dry_run: bool,
}

/// The object store as the API sees it.
#[derive(Clone)]
pub struct Objects {
    store: Arc<dyn Store>,
    allocator: Allocator,
    /// Seconds of the tolerations new pods get (DefaultTolerationSeconds admission).
    toleration_seconds: admission::DefaultTolerationSeconds,
    /// Store events decoded once for all watch streams.
    shared_events: Arc<SharedEvents>,
    /// Active namespaces, followed from the store once the first create needs them.
    namespaces: Arc<OnceLock<Arc<namespaces::NamespaceLifecycle>>>,
    /// Pod Security admission's defaults and exemptions.
    pod_security: Arc<berth_api::pod_security::Configuration>,
}

/// A decoded stored object with its revision stamped in.
pub fn decode(kv: &KeyValue) -> Result<Value, ApiError> {
    let mut value: Value = serde_json::from_slice(&kv.value)
        .map_err(|e| ApiError::Internal(format!("stored object {} is corrupt: {e}", kv.key)))?;
    if let Some(meta) = value.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert("resourceVersion".into(), json!(kv.mod_revision.to_string()));
    }
    Ok(value)
}

/// The stored form of `obj`: without its resourceVersion, which the store's
/// revision supplies on every read.
fn encode(obj: &mut Value) -> Result<Vec<u8>, ApiError> {
    drop_empty_metadata(obj);
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("resourceVersion");
    }
    serde_json::to_vec(obj).map_err(|e| ApiError::Internal(e.to_string()))
}

/// Drops the metadata lists and maps Go's `omitempty` never writes when
/// empty or null (labels, annotations, finalizers, ownerReferences,
/// managedFields): a client that removes the last finalizer with a merge
/// patch of `[]` reads the field back as absent, as from kube-apiserver.
fn drop_empty_metadata(obj: &mut Value) {
    let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    for field in [
        "labels",
        "annotations",
        "finalizers",
        "ownerReferences",
        "managedFields",
    ] {
        let empty = match meta.get(field) {
            Some(Value::Array(items)) => items.is_empty(),
            Some(Value::Object(entries)) => entries.is_empty(),
            Some(Value::Null) => true,
            _ => false,
        };
        if empty {
            meta.remove(field);
        }
    }
}

/// A stored object as resource `r` serves it: decoded, with its revision, in
/// `r`'s version.
pub fn decode_as(r: &ResourceInfo, kv: &KeyValue) -> Result<Value, ApiError> {
    let mut value = decode(kv)?;
    r.rules.convert_from_storage(&mut value);
    Ok(value)
}

/// The stored form of `obj`, an object of resource `r`'s version.
fn encode_as(r: &ResourceInfo, obj: &mut Value) -> Result<Vec<u8>, ApiError> {
    drop_empty_metadata(obj);
    match r.rules.convert_to_storage(obj) {
        Some(mut stored) => encode(&mut stored),
        None => encode(obj),
    }
}

/// `obj` as [`decode`] would read it back after [`encode`] stored it at
/// `revision`: answering a write needs no second parse of what was written.
fn stamped(mut obj: Value, revision: i64) -> Value {
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert("resourceVersion".into(), json!(revision.to_string()));
    }
    obj
}

/// The target of an error about `name` of resource `r`.
pub fn target(r: &ResourceInfo, name: &str) -> Target {
    Target {
        group: r.group.to_owned(),
        resource: r.plural.to_owned(),
        kind: r.kind.to_owned(),
        name: name.to_owned(),
    }
}

fn now_rfc3339() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    obj.get("metadata")?.get(field)?.as_str()
}

/// The kinds whose creation the controllers, scheduler and agent follow, so
/// the API server stamps the request's trace context on them (when tracing
/// is on); other objects never carry the annotation.
const TRACED_KINDS: &[&str] = &[
    "Deployment",
    "ReplicaSet",
    "StatefulSet",
    "DaemonSet",
    "Job",
    "CronJob",
    "Pod",
];

fn meta_mut(obj: &mut Value) -> &mut Map<String, Value> {
    let map = obj.as_object_mut().expect("objects are JSON objects");
    let meta = map.entry("metadata").or_insert_with(|| json!({}));
    if !meta.is_object() {
        *meta = json!({});
    }
    meta.as_object_mut().expect("metadata is an object")
}

/// The kind the address allocator acts on: core Services get ClusterIPs and
/// node ports; a custom kind that happens to be called Service does not.
fn allocated_kind(r: &ResourceInfo) -> &str {
    if r.group.is_empty() {
        &r.kind
    } else {
        ""
    }
}

/// Kinds whose status is reset on create (their status is owned by controllers).
fn resets_status_on_create(r: &ResourceInfo) -> bool {
    r.has_status && !r.rules.keeps_status_on_create()
}

/// Upstream's defaulting: nulls are unset fields, then the kind's defaults.
fn default(r: &ResourceInfo, obj: &mut Value) {
    berth_api::kinds::drop_nulls(obj);
    r.rules.default(obj);
}

/// Metadata and the kind's own rules of a new or updated object.
fn validate(r: &ResourceInfo, obj: &Value) -> Vec<FieldCause> {
    let mut causes = berth_api::kinds::validate_metadata(r.rules.name_rule(), obj);
    causes.extend(r.rules.validate(obj));
    causes
}

fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    (0..5)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

fn is_empty_list(v: Option<&Value>) -> bool {
    v.and_then(Value::as_array).is_none_or(Vec::is_empty)
}

impl Objects {
    /// Wraps a store.
    pub fn new(store: Arc<dyn Store>, allocator: Allocator) -> Self {
        Self {
            store,
            allocator,
            toleration_seconds: admission::DefaultTolerationSeconds::default(),
            shared_events: Arc::default(),
            namespaces: Arc::default(),
            pod_security: Arc::default(),
        }
    }

    /// The same, with these Pod Security defaults and exemptions
    /// (upstream's `PodSecurityConfiguration`).
    pub fn with_pod_security(mut self, config: berth_api::pod_security::Configuration) -> Self {
        self.pod_security = Arc::new(config);
        self
    }

    /// The same, giving new pods these default toleration seconds.
    pub fn with_default_toleration_seconds(
        mut self,
        seconds: admission::DefaultTolerationSeconds,
    ) -> Self {
        self.toleration_seconds = seconds;
        self
    }

    /// The underlying store (watch and list paths read it directly).
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Decoded events every watch stream of this server shares.
    pub(crate) fn shared_events(&self) -> &Arc<SharedEvents> {
        &self.shared_events
    }

    /// Reads one object, or 404.
    pub async fn get(
        &self,
        r: &ResourceInfo,
        ns: Option<&str>,
        name: &str,
    ) -> Result<Value, ApiError> {
        Ok(self.get_kv(r, ns, name).await?.1)
    }

    async fn get_kv(
        &self,
        r: &ResourceInfo,
        ns: Option<&str>,
        name: &str,
    ) -> Result<(KeyValue, Value), ApiError> {
        let kv = self
            .store
            .get(&r.key(ns, name))
            .await?
            .ok_or_else(|| ApiError::NotFound(target(r, name)))?;
        let value = decode_as(r, &kv)?;
        Ok((kv, value))
    }

    /// Checks that an object may be created in `ns` (upstream NamespaceLifecycle).
    async fn check_namespace(&self, created: &Target, ns: &str) -> Result<(), ApiError> {
        let namespaces =
            super::catalog::builtin("", "v1", "namespaces").expect("namespaces served");
        let followed = self.namespaces.get_or_init(|| {
            namespaces::NamespaceLifecycle::start(Arc::clone(&self.store), namespaces.key_prefix())
        });
        if followed.is_active(ns) {
            return Ok(());
        }
        match self.store.get(&namespaces.key(None, ns)).await? {
            None => Err(ApiError::NotFound(target(namespaces, ns))),
            Some(kv) => {
                let namespace = decode(&kv)?;
                if namespace.pointer("/metadata/deletionTimestamp").is_some() {
                    Err(ApiError::forbidden(
                        created,
                        format!("unable to create new content in namespace {ns} because it is being terminated"),
                    ))
                } else {
                    Ok(())
                }
            }
        }
    }

    /// Creates an object from a client's body.
    pub async fn create(
        &self,
        r: &ResourceInfo,
        ns: Option<&str>,
        obj: Value,
        opts: &WriteOptions,
    ) -> Result<Value, ApiError> {
        self.create_inner(r, ns, obj, opts, true).await
    }

    /// Creates an object whose addresses were reserved by the caller (bootstrap).
    pub async fn create_preallocated(
        &self,
        r: &ResourceInfo,
        ns: Option<&str>,
        obj: Value,
    ) -> Result<Value, ApiError> {
        self.create_inner(r, ns, obj, &WriteOptions::default(), false)
            .await
    }

    async fn create_inner(
        &self,
        r: &ResourceInfo,
        ns: Option<&str>,
        mut obj: Value,
        opts: &WriteOptions,
        allocate: bool,
    ) -> Result<Value, ApiError> {
        if !obj.is_object() {
            return Err(ApiError::BadRequest(
                "the body of the request must be an object".into(),
            ));
        }
        check_type_meta(r, &obj)?;
        obj["kind"] = json!(r.kind);
        obj["apiVersion"] = json!(r.api_version());
        if TRACED_KINDS.contains(&r.kind.as_str()) && berth_observability::propagation::enabled() {
            meta_mut(&mut obj);
            berth_observability::propagation::inject_json_if_absent(&mut obj);
        }
        let meta = meta_mut(&mut obj);
        if r.namespaced {
            let ns = ns.ok_or_else(|| {
                ApiError::BadRequest("a namespace is required to create this resource".into())
            })?;
            match meta.get("namespace").and_then(Value::as_str) {
                Some(body_ns) if !body_ns.is_empty() && body_ns != ns => {
                    return Err(ApiError::BadRequest(
                        "the namespace of the provided object does not match the namespace sent on the request".into(),
                    ))
                }
                _ => {
                    meta.insert("namespace".into(), json!(ns));
                }
            }
        } else {
            meta.remove("namespace");
        }
        let has_name = meta
            .get("name")
            .and_then(Value::as_str)
            .is_some_and(|n| !n.is_empty());
        if !has_name {
            if let Some(prefix) = meta
                .get("generateName")
                .and_then(Value::as_str)
                .filter(|p| !p.is_empty())
            {
                let name = format!("{prefix}{}", random_suffix());
                meta.insert("name".into(), json!(name));
            }
        }
        for field in [
            "resourceVersion",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "selfLink",
        ] {
            meta.remove(field);
        }
        meta.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
        meta.insert("creationTimestamp".into(), json!(now_rfc3339()));
        if r.rules.tracks_generation() {
            meta.insert("generation".into(), json!(1));
        } else {
            meta.remove("generation");
        }
        if resets_status_on_create(r) {
            if let Some(map) = obj.as_object_mut() {
                map.remove("status");
            }
        }
        r.typecheck(&obj)
            .map_err(|e| ApiError::BadRequest(format!("error decoding {}: {e}", r.kind)))?;
        default(r, &mut obj);
        if r.group.is_empty() && r.kind == "Pod" {
            admission::default_tolerations(&mut obj, self.toleration_seconds);
            admission::default_service_account(&mut obj);
        }
        admission::admit_create(self.store.as_ref(), r, &mut obj).await?;
        let name = meta_str(&obj, "name").unwrap_or_default().to_owned();
        let causes = validate(r, &obj);
        if !causes.is_empty() {
            return Err(ApiError::Invalid(target(r, &name), causes));
        }
        let warnings = pod_security::admit(
            self.store.as_ref(),
            &self.pod_security,
            r,
            None,
            &obj,
            opts.subresource.as_deref(),
        )
        .await?;
        ownership::record_ownership(r, None, &mut obj, opts);
        if let Some(ns) = ns.filter(|_| r.namespaced) {
            self.check_namespace(&target(r, &name), ns).await?;
        }
        let key = r.key(ns, &name);
        if opts.dry_run {
            if self.store.get(&key).await?.is_some() {
                return Err(ApiError::AlreadyExists(target(r, &name)));
            }
            opts.warnings.extend(warnings);
            return Ok(obj);
        }
        let allocated = if allocate {
            self.allocator.allocate(allocated_kind(r), &mut obj).await?
        } else {
            Default::default()
        };
        let bytes = encode_as(r, &mut obj)?;
        match self.store.create(&key, bytes).await {
            Ok(kv) => {
                opts.warnings.extend(warnings);
                Ok(stamped(obj, kv.mod_revision))
            }
            Err(e) => {
                self.allocator.release(&allocated).await;
                match e {
                    StoreError::AlreadyExists(_) => Err(ApiError::AlreadyExists(target(r, &name))),
                    other => Err(other.into()),
                }
            }
        }
    }

    /// Replaces an object (`PUT`) or its status (`PUT …/status`).
    pub async fn update(
        &self,
        r: &ResourceInfo,
        ns: Option<&str>,
        name: &str,
        new: Value,
        subresource: Option<&str>,
        opts: &WriteOptions,
    ) -> Result<Value, ApiError> {
        if !new.is_object() {
            return Err(ApiError::BadRequest(
                "the body of the request must be an object".into(),
            ));
        }
        check_type_meta(r, &new)?;
        if let Some(body_name) = meta_str(&new, "name") {
            if body_name != name {
                return Err(ApiError::BadRequest(format!(
                    "the name of the object ({body_name}) does not match the name on the URL ({name})"
                )));
            }
        }
        if let (Some(ns), Some(body_ns)) = (ns, meta_str(&new, "namespace")) {
            if r.namespaced && !body_ns.is_empty() && body_ns != ns {
                return Err(ApiError::BadRequest(
                    "the namespace of the provided object does not match the namespace sent on the request".into(),
                ));
            }
        }
        let pinned = meta_str(&new, "resourceVersion")
            .filter(|rv| !rv.is_empty())
            .map(str::to_owned);
        let (kv, old) = self.get_kv(r, ns, name).await?;
        if let Some(rv) = &pinned {
            if *rv != kv.mod_revision.to_string() {
                return Err(ApiError::Conflict(target(r, name), MODIFIED.into()));
            }
        }
        let merged = merge_for_update(r, &old, new, subresource);
        self.write_update(r, ns, name, (&kv, &old), merged, opts)
            .await
    }

    /// Stores `new` in place of the stored `(kv, old)`, with upstream update semantics.
    pub async fn write_update(
        &self,
        r: &ResourceInfo,
        ns: Option<&str>,
        name: &str,
        (kv, old): (&KeyValue, &Value),
        mut new: Value,
        opts: &WriteOptions,
    ) -> Result<Value, ApiError> {
        new["kind"] = json!(r.kind);
        new["apiVersion"] = json!(r.api_version());
        preserve_system_metadata(old, &mut new);
        if r.rules.tracks_generation() {
            let generation = old
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            let bumped = if old.get("spec") != new.get("spec") {
                generation + 1
            } else {
                generation
            };
            meta_mut(&mut new).insert("generation".into(), json!(bumped));
        }
        r.typecheck(&new)
            .map_err(|e| ApiError::BadRequest(format!("error decoding {}: {e}", r.kind)))?;
        default(r, &mut new);
        let mut causes = berth_api::kinds::validate_metadata(r.rules.name_rule(), &new);
        causes.extend(r.rules.update_causes(old, &new));
        if !causes.is_empty() {
            return Err(ApiError::Invalid(target(r, name), causes));
        }
        let warnings = pod_security::admit(
            self.store.as_ref(),
            &self.pod_security,
            r,
            Some(old),
            &new,
            opts.subresource.as_deref(),
        )
        .await?;
        ownership::record_ownership(r, Some(old), &mut new, opts);
        if opts.dry_run {
            opts.warnings.extend(warnings);
            return Ok(new);
        }
        let key = r.key(ns, name);
        let finished_deleting = new.pointer("/metadata/deletionTimestamp").is_some()
            && is_empty_list(new.pointer("/metadata/finalizers"))
            && !r.rules.deletion_held(&new)
            && new
                .pointer("/metadata/deletionGracePeriodSeconds")
                .and_then(Value::as_i64)
                .unwrap_or(0)
                == 0;
        if finished_deleting {
            return match self.store.delete(&key, Some(kv.mod_revision)).await {
                Ok(deleted) => {
                    self.allocator.release_for(allocated_kind(r), &new).await;
                    let mut value = new;
                    meta_mut(&mut value).insert(
                        "resourceVersion".into(),
                        json!(deleted.mod_revision.to_string()),
                    );
                    Ok(value)
                }
                Err(e) => Err(self.write_error(r, name, e)),
            };
        }
        let allocated = self
            .allocator
            .allocate_update(allocated_kind(r), old, &mut new)
            .await?;
        match self
            .store
            .update(&key, encode_as(r, &mut new)?, kv.mod_revision)
            .await
        {
            Ok(kv) => {
                self.allocator
                    .release_dropped(allocated_kind(r), old, &new)
                    .await;
                opts.warnings.extend(warnings);
                Ok(stamped(new, kv.mod_revision))
            }
            Err(e) => {
                self.allocator.release(&allocated).await;
                Err(self.write_error(r, name, e))
            }
        }
    }

    fn write_error(&self, r: &ResourceInfo, name: &str, e: StoreError) -> ApiError {
        match e {
            StoreError::Conflict { .. } => ApiError::Conflict(target(r, name), MODIFIED.into()),
            StoreError::NotFound(_) => ApiError::NotFound(target(r, name)),
            other => other.into(),
        }
    }

    /// Reads, transforms and writes back an object, retrying on concurrent writes
    /// (upstream's GuaranteedUpdate, used by patch and subresources).
    pub async fn read_modify_write<F>(
        &self,
        r: &ResourceInfo,
        ns: Option<&str>,
        name: &str,
        opts: &WriteOptions,
        mut modify: F,
    ) -> Result<Value, ApiError>
    where
        F: FnMut(&Value) -> Result<Value, ApiError>,
    {
        let mut attempts = 0;
        loop {
            attempts += 1;
            let (kv, old) = self.get_kv(r, ns, name).await?;
            let new = modify(&old)?;
            if let Some(rv) = meta_str(&new, "resourceVersion").filter(|rv| !rv.is_empty()) {
                if rv != kv.mod_revision.to_string() {
                    return Err(ApiError::Conflict(target(r, name), MODIFIED.into()));
                }
            }
            match self.write_update(r, ns, name, (&kv, &old), new, opts).await {
                Err(ApiError::Conflict(..)) if attempts < 5 => continue,
                other => return other,
            }
        }
    }

    /// Reads, transforms and stores an object without update validation or defaulting,
    /// retrying on concurrent writes: for subresources whose rules are their own
    /// (a binding may set `spec.nodeName`, which a pod update may not). Answers
    /// the new resourceVersion: such subresources reply with a `Status`, so the
    /// object is not decoded again.
    pub async fn update_bypassing_validation<F>(
        &self,
        r: &ResourceInfo,
        ns: Option<&str>,
        name: &str,
        mut modify: F,
    ) -> Result<i64, ApiError>
    where
        F: FnMut(&Value) -> Result<Value, ApiError>,
    {
        for _ in 0..5 {
            let (kv, old) = self.get_kv(r, ns, name).await?;
            let mut new = modify(&old)?;
            match self
                .store
                .update(&kv.key, encode_as(r, &mut new)?, kv.mod_revision)
                .await
            {
                Ok(kv) => return Ok(kv.mod_revision),
                Err(StoreError::Conflict { .. }) => continue,
                Err(e) => return Err(self.write_error(r, name, e)),
            }
        }
        Err(ApiError::Conflict(target(r, name), MODIFIED.into()))
    }
}

/// Rejects bodies whose kind or apiVersion name another resource.
fn check_type_meta(r: &ResourceInfo, obj: &Value) -> Result<(), ApiError> {
    if let Some(kind) = obj
        .get("kind")
        .and_then(Value::as_str)
        .filter(|k| !k.is_empty())
    {
        if kind != r.kind {
            return Err(ApiError::BadRequest(format!(
                "the API version in the data ({}) does not match the expected API version ({}) or kind {kind} does not match {}",
                obj.get("apiVersion").and_then(Value::as_str).unwrap_or(""),
                r.api_version(),
                r.kind
            )));
        }
    }
    if let Some(api_version) = obj
        .get("apiVersion")
        .and_then(Value::as_str)
        .filter(|v| !v.is_empty())
    {
        if api_version != r.api_version() {
            return Err(ApiError::BadRequest(format!(
                "the API version in the data ({api_version}) does not match the expected API version ({})",
                r.api_version()
            )));
        }
    }
    Ok(())
}

/// Fields of metadata only the server sets; clients cannot change them by update.
fn preserve_system_metadata(old: &Value, new: &mut Value) {
    let old_meta = old.get("metadata").cloned().unwrap_or_else(|| json!({}));
    let meta = meta_mut(new);
    for field in [
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "namespace",
        "name",
        "generation",
    ] {
        match old_meta.get(field) {
            Some(v) => {
                meta.insert(field.into(), v.clone());
            }
            None => {
                meta.remove(field);
            }
        }
    }
    meta.remove("resourceVersion");
}

/// Sets (or, with None, removes) the value at a JSON pointer, creating parent objects.
fn set_pointer(obj: &mut Value, pointer: &str, value: Option<Value>) {
    let parts: Vec<&str> = pointer.split('/').skip(1).collect();
    let Some((last, parents)) = parts.split_last() else {
        return;
    };
    let mut at = obj;
    for part in parents {
        if !at.get(*part).is_some_and(Value::is_object) {
            if value.is_none() {
                return;
            }
            at[*part] = json!({});
        }
        at = &mut at[*part];
    }
    match (value, at.as_object_mut()) {
        (Some(v), Some(map)) => {
            map.insert((*last).to_owned(), v);
        }
        (None, Some(map)) => {
            map.remove(*last);
        }
        _ => {}
    }
}

/// Combines a client's full object with the stored one: the main resource keeps the
/// stored status, the status subresource keeps everything but status.
pub fn merge_for_update(
    r: &ResourceInfo,
    old: &Value,
    new: Value,
    subresource: Option<&str>,
) -> Value {
    match subresource {
        Some("status") => {
            let mut merged = old.clone();
            match new.get("status") {
                Some(status) => merged["status"] = status.clone(),
                None => {
                    if let Some(map) = merged.as_object_mut() {
                        map.remove("status");
                    }
                }
            }
            // Status writers still pass resourceVersion for optimistic concurrency.
            if let Some(rv) = new.pointer("/metadata/resourceVersion") {
                meta_mut(&mut merged).insert("resourceVersion".into(), rv.clone());
            }
            merged
        }
        Some(sub) if r.status_like_part(sub).is_some() => {
            let pointer = r.status_like_part(sub).unwrap_or_default();
            let mut merged = old.clone();
            set_pointer(&mut merged, pointer, new.pointer(pointer).cloned());
            if let Some(rv) = new.pointer("/metadata/resourceVersion") {
                meta_mut(&mut merged).insert("resourceVersion".into(), rv.clone());
            }
            merged
        }
        _ if r.has_status => {
            let mut merged = new;
            if let Some(map) = merged.as_object_mut() {
                match old.get("status") {
                    Some(status) => {
                        map.insert("status".into(), status.clone());
                    }
                    None => {
                        map.remove("status");
                    }
                }
            }
            // After the status is carried over, so a kind may reset it (a Service
            // that stops being a LoadBalancer loses its load balancer status).
            r.rules.prepare_for_update(old, &mut merged);
            merged
        }
        _ => {
            let mut merged = new;
            r.rules.prepare_for_update(old, &mut merged);
            merged
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_metadata_lists_and_maps_are_not_stored_as_upstream_omits_them() {
        let mut obj = json!({
            "metadata": {
                "name": "web",
                "resourceVersion": "7",
                "finalizers": [],
                "labels": {},
                "annotations": null,
                "ownerReferences": [],
                "managedFields": []
            },
            "spec": {"ports": []}
        });
        let stored: Value = serde_json::from_slice(&encode(&mut obj).unwrap()).unwrap();
        assert_eq!(
            stored,
            json!({"metadata": {"name": "web"}, "spec": {"ports": []}})
        );
        let mut kept = json!({"metadata": {"finalizers": ["a"], "labels": {"app": "web"}}});
        let stored: Value = serde_json::from_slice(&encode(&mut kept).unwrap()).unwrap();
        assert_eq!(stored["metadata"]["finalizers"], json!(["a"]));
        assert_eq!(stored["metadata"]["labels"], json!({"app": "web"}));
    }
}
