//! The resources berth serves: names, scope, verbs and subresources per kind,
//! in one table that discovery, routing, storage keys and tables all read.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use berth_api::apply::BuiltinApplySchema;
use berth_api::kinds::KindRules;
use berth_api::patch::BuiltinSchema;
use serde_json::Value;

mod builtins;

pub use builtins::builtins;

/// Checks that a JSON object decodes into the kind's typed form (field types,
/// enum shapes), the same check kube-apiserver's decoder makes.
pub type TypeCheck = fn(&Value) -> Result<(), String>;

/// Generates the kind's JSON schema (schemars root with `$defs`).
pub type SchemaBuilder = fn() -> Value;

fn json_schema<T: schemars::JsonSchema>() -> Value {
    schemars::SchemaGenerator::default()
        .into_root_schema_for::<T>()
        .to_value()
}

fn schema_name<T: schemars::JsonSchema>() -> String {
    T::schema_name().into_owned()
}

fn typecheck<T: serde::de::DeserializeOwned>(value: &Value) -> Result<(), String> {
    T::deserialize(value).map(|_| ()).map_err(|e| e.to_string())
}

/// Where a kind's schema comes from.
#[derive(Clone)]
pub enum Schema {
    /// A kind with a Rust type: k8s-openapi's for built-in kinds, berth's own for NodePool.
    Typed {
        /// Decoder check for the typed form.
        typecheck: TypeCheck,
        /// The kind's JSON schema generator; see [`ResourceInfo::json_schema`] for the cached copy.
        build: SchemaBuilder,
        /// The schema's definition name (`io.k8s.api.apps.v1.Deployment`).
        name: fn() -> String,
    },
    /// A custom resource: its CRD's schema, wrapped as a document whose `$defs`
    /// hold it under `name` (so apply and pruning read it like a built-in one).
    Custom {
        /// `{"$ref": …, "$defs": {name: schema}}`.
        document: Arc<Value>,
        /// The definition name.
        name: String,
    },
}

/// Everything the server knows about one served resource.
#[derive(Clone)]
pub struct ResourceInfo {
    /// API group; empty for the core group.
    pub group: String,
    /// API version within the group.
    pub version: String,
    /// Kind, e.g. `Deployment`.
    pub kind: String,
    /// Plural resource name used in URLs.
    pub plural: String,
    /// Singular name (`kubectl get deployment`).
    pub singular: String,
    /// Whether objects live in a namespace.
    pub namespaced: bool,
    /// Short names (`deploy`, `po`, …).
    pub short_names: Vec<String>,
    /// Categories (`all` makes `kubectl get all` include it).
    pub categories: Vec<String>,
    /// Whether `/status` is a separate subresource (the main resource then ignores status).
    pub has_status: bool,
    /// Whether `/scale` is served.
    pub has_scale: bool,
    /// Subresources that, like `status`, write one part of the object and keep
    /// the rest: (subresource, JSON pointer of the part), e.g.
    /// `certificatesigningrequests/approval` writes `/status/conditions`.
    pub status_like: Vec<(&'static str, &'static str)>,
    /// Whether this is a Kubernetes built-in kind: those take strategic merge
    /// patches and protobuf; our own and custom kinds do not.
    pub builtin: bool,
    /// The verbs served (and advertised in discovery).
    pub verbs: Vec<&'static str>,
    /// Where the resource's objects come from.
    pub serving: Serving,
    /// The group and resource whose store keys this one shares (events.k8s.io
    /// Events are core Events); None for its own.
    pub stored_with: Option<(&'static str, &'static str)>,
    /// The kind's schema.
    pub schema: Schema,
    /// The kind's own rules: defaults, validation, tables, field selectors.
    pub rules: Arc<dyn KindRules>,
    /// Whether the definition serving it is being deleted (custom resources of
    /// a terminating CRD): new objects are refused, as upstream does.
    pub terminating: bool,
}

/// Where a resource's objects come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Serving {
    /// Objects live in the store: every verb the catalog lists.
    Stored,
    /// Never stored: a create is answered by computing its status (the access
    /// and token reviews).
    Review,
    /// Computed by the API server on each read (ComponentStatus): get and list.
    Computed,
    /// Resource usage scraped from the nodes (`metrics.k8s.io`): get and list.
    ResourceMetrics,
}

impl std::fmt::Debug for ResourceInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResourceInfo")
            .field("group", &self.group)
            .field("version", &self.version)
            .field("plural", &self.plural)
            .finish_non_exhaustive()
    }
}

impl ResourceInfo {
    /// `apps/v1` or `v1`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The store key prefix for all objects of this resource (every version shares it).
    pub fn key_prefix(&self) -> String {
        let (group, plural) = match self.stored_with {
            Some((group, plural)) => (group, plural),
            None => (self.group.as_str(), self.plural.as_str()),
        };
        let group = if group.is_empty() { "core" } else { group };
        format!("/registry/{group}/{plural}/")
    }

    /// The store key of one object.
    pub fn key(&self, namespace: Option<&str>, name: &str) -> String {
        match namespace {
            Some(ns) if self.namespaced => format!("{}{ns}/{name}", self.key_prefix()),
            _ => format!("{}{name}", self.key_prefix()),
        }
    }

    /// Checks that an object decodes into the kind's typed form; custom
    /// resources are checked against their schema by their rules instead.
    pub fn typecheck(&self, obj: &Value) -> Result<(), String> {
        match &self.schema {
            Schema::Typed { typecheck, .. } => typecheck(obj),
            Schema::Custom { .. } => Ok(()),
        }
    }

    /// The schema's definition name.
    pub fn schema_name(&self) -> String {
        match &self.schema {
            Schema::Typed { name, .. } => name(),
            Schema::Custom { name, .. } => name.clone(),
        }
    }

    /// The kind's JSON schema document, generated once per process and shared.
    pub fn json_schema(&self) -> Arc<Value> {
        match &self.schema {
            Schema::Typed { build, name, .. } => typed_schema(name(), *build),
            Schema::Custom { document, .. } => Arc::clone(document),
        }
    }

    /// The list and map types server-side apply follows for this kind.
    pub fn apply_schema(&self) -> BuiltinApplySchema {
        BuiltinApplySchema::for_definition(self.json_schema(), &self.schema_name())
            .expect("a kind's own schema names its root definition")
    }

    /// The merge strategies strategic merge patch follows for this kind.
    pub fn patch_schema(&self) -> BuiltinSchema {
        BuiltinSchema::for_definition(self.json_schema(), &self.schema_name())
            .expect("a kind's own schema names its root definition")
    }

    /// Subresources that act on the object rather than view it: `pods/binding`
    /// (the scheduler's bind), `pods/eviction` (drain), `namespaces/finalize`.
    pub fn action_subresources(&self) -> &'static [&'static str] {
        match (self.group.as_str(), self.kind.as_str()) {
            ("", "Pod") => &["binding", "eviction"],
            ("", "Namespace") => &["finalize"],
            _ => &[],
        }
    }

    /// Subresources the node serves, proxied to its kubelet: `pods/log`,
    /// `pods/exec`, `pods/attach`, `pods/portforward`, `nodes/proxy`.
    pub fn streaming_subresources(&self) -> &'static [&'static str] {
        match (self.group.as_str(), self.kind.as_str()) {
            ("", "Pod") => &["attach", "exec", "log", "portforward"],
            ("", "Node") => &["proxy"],
            _ => &[],
        }
    }

    /// Whether `verb` (as discovery names it) is served.
    pub fn serves(&self, verb: &str) -> bool {
        self.verbs.contains(&verb)
    }

    /// A kind with a Rust type `T`, its names and rules; the builder methods
    /// below add what differs from a cluster-scoped kind with every verb.
    pub fn typed<T: schemars::JsonSchema + serde::de::DeserializeOwned>(
        group: &str,
        version: &str,
        kind: &str,
        plural: &str,
        rules: impl KindRules,
    ) -> Self {
        ResourceInfo {
            group: group.to_owned(),
            version: version.to_owned(),
            kind: kind.to_owned(),
            plural: plural.to_owned(),
            singular: kind.to_lowercase(),
            namespaced: false,
            short_names: Vec::new(),
            categories: Vec::new(),
            has_status: false,
            has_scale: false,
            status_like: Vec::new(),
            builtin: true,
            verbs: ALL_VERBS.to_vec(),
            serving: Serving::Stored,
            stored_with: None,
            schema: Schema::Typed {
                typecheck: typecheck::<T>,
                build: json_schema::<T>,
                name: schema_name::<T>,
            },
            rules: Arc::new(rules),
            terminating: false,
        }
    }

    /// A custom resource served for one version of a CRD: `document` is its
    /// schema as [`custom_document`] wraps it.
    pub fn custom(names: CustomNames, rules: Arc<dyn KindRules>, document: Value) -> Self {
        let definition = custom_definition_name(&names.group, &names.version, &names.kind);
        ResourceInfo {
            group: names.group,
            version: names.version,
            kind: names.kind,
            plural: names.plural,
            singular: names.singular,
            namespaced: names.namespaced,
            short_names: names.short_names,
            categories: names.categories,
            has_status: false,
            has_scale: false,
            status_like: Vec::new(),
            builtin: false,
            verbs: ALL_VERBS.to_vec(),
            serving: Serving::Stored,
            stored_with: None,
            schema: Schema::Custom {
                document: Arc::new(document),
                name: definition,
            },
            rules,
            terminating: false,
        }
    }

    /// Served for a definition being deleted: creates are refused.
    pub fn terminating(mut self) -> Self {
        self.terminating = true;
        self
    }

    /// Objects live in namespaces.
    pub fn namespaced(mut self) -> Self {
        self.namespaced = true;
        self
    }

    /// Short names kubectl accepts (`deploy`).
    pub fn short_names(mut self, names: &[&str]) -> Self {
        self.short_names = names.iter().map(|n| (*n).to_owned()).collect();
        self
    }

    /// Categories (`all`).
    pub fn categories(mut self, categories: &[&str]) -> Self {
        self.categories = categories.iter().map(|c| (*c).to_owned()).collect();
        self
    }

    /// Serves `/status`.
    pub fn status(mut self) -> Self {
        self.has_status = true;
        self
    }

    /// Serves `/scale`.
    pub fn scale(mut self) -> Self {
        self.has_scale = true;
        self
    }

    /// Serves `/<subresource>`, which writes only the part of the object at `pointer`.
    pub fn status_like(mut self, subresource: &'static str, pointer: &'static str) -> Self {
        self.status_like.push((subresource, pointer));
        self
    }

    /// The part of the object a status-like subresource writes, if `sub` is one.
    pub fn status_like_part(&self, sub: &str) -> Option<&'static str> {
        self.status_like
            .iter()
            .find(|(name, _)| *name == sub)
            .map(|(_, pointer)| *pointer)
    }

    /// Only these verbs (read-only or create-only kinds).
    pub fn verbs(mut self, verbs: &[&'static str]) -> Self {
        self.verbs = verbs.to_vec();
        self
    }

    /// Never stored: only `create` is served, and it answers with the object's
    /// computed status (upstream's review resources).
    pub fn not_stored(mut self) -> Self {
        self.serving = Serving::Review;
        self.verbs(&["create"])
    }

    /// Computed on each read, never stored: serves get and list only.
    pub fn computed(mut self) -> Self {
        self.serving = Serving::Computed;
        self.verbs = vec!["get", "list"];
        self
    }

    /// Resource usage the API server scrapes from the nodes, served as
    /// metrics-server serves it: get and list, JSON only.
    pub fn resource_metrics(mut self) -> Self {
        self.serving = Serving::ResourceMetrics;
        self.verbs = vec!["get", "list"];
        self.not_builtin()
    }

    /// Not a Kubernetes built-in kind: no strategic merge patch, no protobuf.
    pub fn not_builtin(mut self) -> Self {
        self.builtin = false;
        self
    }

    /// Shares the store keys of another group's resource.
    pub fn stored_with(mut self, group: &'static str, plural: &'static str) -> Self {
        self.stored_with = Some((group, plural));
        self
    }
}

/// The names a CRD gives one served version of its resource.
#[derive(Debug, Clone, Default)]
pub struct CustomNames {
    /// `spec.group`.
    pub group: String,
    /// The version's name.
    pub version: String,
    /// `spec.names.kind`.
    pub kind: String,
    /// `spec.names.plural`.
    pub plural: String,
    /// `spec.names.singular`.
    pub singular: String,
    /// `spec.scope == Namespaced`.
    pub namespaced: bool,
    /// `spec.names.shortNames`.
    pub short_names: Vec<String>,
    /// `spec.names.categories`.
    pub categories: Vec<String>,
}

/// Upstream's OpenAPI name of a custom kind: the group reversed, then version and kind
/// (`com.example.stable.v1.CronTab`).
pub fn custom_definition_name(group: &str, version: &str, kind: &str) -> String {
    let reversed: Vec<&str> = group.split('.').rev().collect();
    format!("{}.{version}.{kind}", reversed.join("."))
}

/// A CRD version's `openAPIV3Schema` as a schema document like a typed kind's:
/// the root with `apiVersion`, `kind` and a `metadata` that refers to
/// ObjectMeta, the definitions it refers to in `$defs`, and the root again
/// under its definition name (server-side apply finds it there).
pub fn custom_document(definition: &str, openapi_schema: &Value) -> Value {
    let meta_name = schema_name::<k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta>();
    let mut meta = json_schema::<k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta>();
    let mut defs = meta
        .as_object_mut()
        .and_then(|m| m.remove("$defs"))
        .and_then(|d| match d {
            Value::Object(map) => Some(map),
            _ => None,
        })
        .unwrap_or_default();
    if let Some(map) = meta.as_object_mut() {
        map.remove("$schema");
        map.remove("title");
    }
    defs.insert(meta_name.clone(), meta);
    let mut root = if openapi_schema.is_object() {
        openapi_schema.clone()
    } else {
        serde_json::json!({"type": "object"})
    };
    let properties = root
        .as_object_mut()
        .expect("an object")
        .entry("properties")
        .or_insert_with(|| serde_json::json!({}));
    if let Some(properties) = properties.as_object_mut() {
        for field in ["apiVersion", "kind"] {
            properties
                .entry(field)
                .or_insert_with(|| serde_json::json!({"type": "string"}));
        }
        properties.insert(
            "metadata".into(),
            serde_json::json!({"$ref": format!("#/$defs/{meta_name}")}),
        );
    }
    defs.insert(definition.to_owned(), root.clone());
    root["$defs"] = Value::Object(defs);
    root
}

/// Every verb a stored kind serves.
pub const ALL_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// A typed kind's schema, generated once per process (by definition name) and shared.
fn typed_schema(name: String, build: SchemaBuilder) -> Arc<Value> {
    static CACHE: OnceLock<Mutex<HashMap<String, Arc<Value>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(schema) = cache.lock().expect("schema cache poisoned").get(&name) {
        return Arc::clone(schema);
    }
    let schema = Arc::new(build());
    cache
        .lock()
        .expect("schema cache poisoned")
        .insert(name, Arc::clone(&schema));
    schema
}

/// A built-in resource by group, version and plural name (for the server's own
/// writes: bootstrap, namespaces, nodes); requests resolve through [`Catalog`].
pub fn builtin(group: &str, version: &str, plural: &str) -> Option<&'static Arc<ResourceInfo>> {
    builtins()
        .iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// One API group as discovery lists it: its versions, preferred first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupVersions {
    /// The group's name, empty for core.
    pub name: String,
    /// Versions, highest priority first (upstream's version ordering).
    pub versions: Vec<String>,
}

/// The served resources: the built-in ones and those custom resource
/// definitions add at run time. Clones share one view.
#[derive(Clone, Default)]
pub struct Catalog {
    custom: Arc<RwLock<CustomResources>>,
}

#[derive(Default)]
struct CustomResources {
    /// Resources by the CRD that defines them, in CRD-name order.
    by_definition: BTreeMap<String, Vec<Arc<ResourceInfo>>>,
    /// Bumped on every change, so derived documents (OpenAPI) know when to rebuild.
    revision: u64,
}

impl Catalog {
    /// A catalog serving the built-in resources.
    pub fn new() -> Self {
        Self::default()
    }

    /// Finds a resource by group, version and plural name.
    pub fn find(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceInfo>> {
        let matches =
            |r: &&Arc<ResourceInfo>| r.group == group && r.version == version && r.plural == plural;
        if let Some(found) = builtins().iter().find(matches) {
            return Some(Arc::clone(found));
        }
        let custom = self.custom.read().expect("catalog poisoned");
        custom
            .by_definition
            .values()
            .flatten()
            .find(matches)
            .cloned()
    }

    /// Every served resource, built-in ones first.
    pub fn resources(&self) -> Vec<Arc<ResourceInfo>> {
        let custom = self.custom.read().expect("catalog poisoned");
        builtins()
            .iter()
            .chain(custom.by_definition.values().flatten())
            .cloned()
            .collect()
    }

    /// The groups besides core, each with its versions (preferred first), in discovery order.
    pub fn groups(&self) -> Vec<GroupVersions> {
        let mut groups: Vec<GroupVersions> = Vec::new();
        for r in self.resources().iter().filter(|r| !r.group.is_empty()) {
            match groups.iter_mut().find(|g| g.name == r.group) {
                Some(group) if !group.versions.contains(&r.version) => {
                    group.versions.push(r.version.clone())
                }
                Some(_) => {}
                None => groups.push(GroupVersions {
                    name: r.group.clone(),
                    versions: vec![r.version.clone()],
                }),
            }
        }
        for group in &mut groups {
            group.versions.sort_by(|a, b| compare_versions(b, a));
        }
        groups
    }

    /// Changes with every addition or removal of custom resources.
    pub fn revision(&self) -> u64 {
        self.custom.read().expect("catalog poisoned").revision
    }

    /// Serves `resources` on behalf of the definition `owner`, replacing what it served before.
    pub fn set_custom(&self, owner: &str, resources: Vec<Arc<ResourceInfo>>) {
        let mut custom = self.custom.write().expect("catalog poisoned");
        custom.by_definition.insert(owner.to_owned(), resources);
        custom.revision += 1;
    }

    /// Stops serving what the definition `owner` added.
    pub fn remove_custom(&self, owner: &str) {
        let mut custom = self.custom.write().expect("catalog poisoned");
        if custom.by_definition.remove(owner).is_some() {
            custom.revision += 1;
        }
    }
}

/// Upstream's version priority: GA before beta before alpha, higher numbers
/// first within each, and versions that do not look like Kubernetes versions
/// last in alphabetical order.
pub fn compare_versions(a: &str, b: &str) -> std::cmp::Ordering {
    fn parse(v: &str) -> Option<(u64, u8, u64)> {
        let rest = v.strip_prefix('v')?;
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        let major = digits.parse().ok()?;
        let tail = &rest[digits.len()..];
        if tail.is_empty() {
            return Some((major, 2, 0));
        }
        let (stage, number) = if let Some(n) = tail.strip_prefix("beta") {
            (1, n)
        } else if let Some(n) = tail.strip_prefix("alpha") {
            (0, n)
        } else {
            return None;
        };
        Some((major, stage, number.parse().ok()?))
    }
    match (parse(a), parse(b)) {
        (Some((ma, sa, na)), Some((mb, sb, nb))) => sa.cmp(&sb).then(ma.cmp(&mb)).then(na.cmp(&nb)),
        (Some(_), None) => std::cmp::Ordering::Greater,
        (None, Some(_)) => std::cmp::Ordering::Less,
        (None, None) => b.cmp(a),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_separate_namespaces_and_groups() {
        let deploy = builtin("apps", "v1", "deployments").unwrap();
        assert_eq!(
            deploy.key(Some("default"), "web"),
            "/registry/apps/deployments/default/web"
        );
        let ns = builtin("", "v1", "namespaces").unwrap();
        assert_eq!(ns.key(None, "default"), "/registry/core/namespaces/default");
        assert_eq!(ns.api_version(), "v1");
        assert_eq!(deploy.api_version(), "apps/v1");
    }

    #[test]
    fn typecheck_rejects_wrong_field_types() {
        let deploy = builtin("apps", "v1", "deployments").unwrap();
        let bad = serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"replicas": "three"}});
        assert!(deploy.typecheck(&bad).is_err());
        let good = serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"replicas": 3, "selector": {}, "template": {}}});
        assert!(
            deploy.typecheck(&good).is_ok(),
            "{:?}",
            deploy.typecheck(&good)
        );
    }

    #[test]
    fn status_like_subresources_write_only_their_part() {
        use serde_json::json;
        let csr = builtin("certificates.k8s.io", "v1", "certificatesigningrequests").unwrap();
        assert_eq!(csr.status_like_part("approval"), Some("/status/conditions"));
        assert_eq!(csr.status_like_part("finalize"), None);
        let old = json!({"metadata": {"name": "c"}, "spec": {"signerName": "a/b"},
            "status": {"certificate": "Zm9v"}});
        let new = json!({"metadata": {"name": "c", "resourceVersion": "7"}, "spec": {"signerName": "x/y"},
            "status": {"certificate": "", "conditions": [{"type": "Approved", "status": "True"}]}});
        let merged = crate::apiserver::objects::merge_for_update(csr, &old, new, Some("approval"));
        assert_eq!(merged["spec"]["signerName"], "a/b");
        assert_eq!(merged["status"]["certificate"], "Zm9v");
        assert_eq!(merged["status"]["conditions"][0]["type"], "Approved");
        assert_eq!(merged["metadata"]["resourceVersion"], "7");
        let cleared = crate::apiserver::objects::merge_for_update(
            csr,
            &merged,
            json!({"metadata": {}}),
            Some("approval"),
        );
        assert!(cleared["status"].get("conditions").is_none());
        assert_eq!(cleared["status"]["certificate"], "Zm9v");
    }

    #[test]
    fn versions_sort_as_upstream_prefers_them() {
        let mut versions = vec![
            "v1alpha1",
            "v1",
            "v2beta1",
            "foo",
            "v1beta2",
            "v2",
            "v11alpha2",
            "bar",
        ];
        versions.sort_by(|a, b| compare_versions(b, a));
        assert_eq!(
            versions,
            [
                "v2",
                "v1",
                "v2beta1",
                "v1beta2",
                "v11alpha2",
                "v1alpha1",
                "bar",
                "foo"
            ]
        );
    }
}
