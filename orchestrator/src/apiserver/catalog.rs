//! The resources berth serves: names, scope, verbs and subresources per kind,
//! in one table that discovery, routing, storage keys and tables all read.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use berth_api::apply::BuiltinApplySchema;
use berth_api::kinds::{self, KindRules};
use berth_api::patch::BuiltinSchema;
use serde_json::Value;

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

/// Everything the server knows about one served resource.
#[derive(Debug, Clone)]
pub struct ResourceInfo {
    /// API group; empty for the core group.
    pub group: &'static str,
    /// API version within the group.
    pub version: &'static str,
    /// Kind, e.g. `Deployment`.
    pub kind: &'static str,
    /// Plural resource name used in URLs.
    pub plural: &'static str,
    /// Singular name (`kubectl get deployment`).
    pub singular: &'static str,
    /// Whether objects live in a namespace.
    pub namespaced: bool,
    /// Short names (`deploy`, `po`, …).
    pub short_names: &'static [&'static str],
    /// Categories (`all` makes `kubectl get all` include it).
    pub categories: &'static [&'static str],
    /// Whether `/status` is a separate subresource (the main resource then ignores status).
    pub has_status: bool,
    /// Whether `/scale` is served.
    pub has_scale: bool,
    /// OpenAPI definition name, e.g. `io.k8s.api.apps.v1.Deployment`; None for our own kinds.
    pub definition: Option<&'static str>,
    /// Decoder check for the typed form.
    pub typecheck: TypeCheck,
    /// The kind's JSON schema generator; use [`ResourceInfo::json_schema`] for the cached copy.
    pub schema: SchemaBuilder,
    /// The schema's definition name (`io.k8s.api.apps.v1.Deployment`, `dev.berth.v1.NodePool`).
    pub schema_name: fn() -> String,
    /// The kind's own rules: defaults, validation, tables, field selectors.
    pub rules: Arc<dyn KindRules>,
}

impl ResourceInfo {
    /// `apps/v1` or `v1`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_owned()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The store key prefix for all objects of this resource.
    pub fn key_prefix(&self) -> String {
        let group = if self.group.is_empty() {
            "core"
        } else {
            self.group
        };
        format!("/registry/{group}/{}/", self.plural)
    }

    /// The store key of one object.
    pub fn key(&self, namespace: Option<&str>, name: &str) -> String {
        match namespace {
            Some(ns) if self.namespaced => format!("{}{ns}/{name}", self.key_prefix()),
            _ => format!("{}{name}", self.key_prefix()),
        }
    }

    /// The kind's JSON schema, generated once per process and shared.
    pub fn json_schema(&self) -> Arc<Value> {
        static CACHE: OnceLock<Mutex<HashMap<&'static str, Arc<Value>>>> = OnceLock::new();
        let cache = CACHE.get_or_init(Default::default);
        if let Some(schema) = cache
            .lock()
            .expect("schema cache poisoned")
            .get(self.plural)
        {
            return Arc::clone(schema);
        }
        let schema = Arc::new((self.schema)());
        cache
            .lock()
            .expect("schema cache poisoned")
            .insert(self.plural, Arc::clone(&schema));
        schema
    }

    /// The list and map types server-side apply follows for this kind.
    pub fn apply_schema(&self) -> BuiltinApplySchema {
        BuiltinApplySchema::for_definition(self.json_schema(), &(self.schema_name)())
            .expect("a kind's own schema names its root definition")
    }

    /// The merge strategies strategic merge patch follows for this kind.
    pub fn patch_schema(&self) -> BuiltinSchema {
        BuiltinSchema::for_definition(self.json_schema(), &(self.schema_name)())
            .expect("a kind's own schema names its root definition")
    }

    /// Subresources that act on the object rather than view it: `pods/binding`
    /// (the scheduler's bind), `pods/eviction` (drain), `namespaces/finalize`.
    pub fn action_subresources(&self) -> &'static [&'static str] {
        match (self.group, self.kind) {
            ("", "Pod") => &["binding", "eviction"],
            ("", "Namespace") => &["finalize"],
            _ => &[],
        }
    }

    /// Subresources the node serves, proxied to its kubelet: `pods/log`,
    /// `pods/exec`, `pods/attach`, `pods/portforward`.
    pub fn streaming_subresources(&self) -> &'static [&'static str] {
        match (self.group, self.kind) {
            ("", "Pod") => &["attach", "exec", "log", "portforward"],
            _ => &[],
        }
    }

    /// The verbs advertised in discovery.
    pub fn verbs(&self) -> &'static [&'static str] {
        &[
            "create",
            "delete",
            "deletecollection",
            "get",
            "list",
            "patch",
            "update",
            "watch",
        ]
    }
}

macro_rules! resource {
    ($group:literal, $version:literal, $kind:literal, $plural:literal, $singular:literal,
     namespaced: $ns:literal, short: [$($short:literal),*], categories: [$($cat:literal),*],
     status: $status:literal, scale: $scale:literal, definition: $def:expr, ty: $ty:ty, rules: $rules:expr) => {
        ResourceInfo {
            group: $group,
            version: $version,
            kind: $kind,
            plural: $plural,
            singular: $singular,
            namespaced: $ns,
            short_names: &[$($short),*],
            categories: &[$($cat),*],
            has_status: $status,
            has_scale: $scale,
            definition: $def,
            typecheck: typecheck::<$ty>,
            schema: json_schema::<$ty>,
            schema_name: schema_name::<$ty>,
            rules: Arc::new($rules),
        }
    };
}

/// Every served resource, in discovery order.
pub fn resources() -> &'static [ResourceInfo] {
    use k8s_openapi::api::{
        apps::v1 as apps, coordination::v1 as coordination, core::v1 as core,
        discovery::v1 as discovery,
    };
    static RESOURCES: std::sync::OnceLock<Vec<ResourceInfo>> = std::sync::OnceLock::new();
    RESOURCES.get_or_init(|| {
        vec![
            resource!("", "v1", "Namespace", "namespaces", "namespace", namespaced: false, short: ["ns"], categories: [],
                status: true, scale: false, definition: Some("io.k8s.api.core.v1.Namespace"), ty: core::Namespace, rules: kinds::core::namespace::Namespace),
            resource!("", "v1", "Pod", "pods", "pod", namespaced: true, short: ["po"], categories: ["all"],
                status: true, scale: false, definition: Some("io.k8s.api.core.v1.Pod"), ty: core::Pod, rules: kinds::core::pod::Pod),
            resource!("", "v1", "Service", "services", "service", namespaced: true, short: ["svc"], categories: ["all"],
                status: true, scale: false, definition: Some("io.k8s.api.core.v1.Service"), ty: core::Service, rules: kinds::core::service::Service),
            resource!("", "v1", "Endpoints", "endpoints", "endpoints", namespaced: true, short: ["ep"], categories: [],
                status: false, scale: false, definition: Some("io.k8s.api.core.v1.Endpoints"), ty: core::Endpoints, rules: kinds::core::endpoints::Endpoints),
            resource!("", "v1", "ConfigMap", "configmaps", "configmap", namespaced: true, short: ["cm"], categories: [],
                status: false, scale: false, definition: Some("io.k8s.api.core.v1.ConfigMap"), ty: core::ConfigMap, rules: kinds::core::configmap::ConfigMap),
            resource!("", "v1", "Secret", "secrets", "secret", namespaced: true, short: [], categories: [],
                status: false, scale: false, definition: Some("io.k8s.api.core.v1.Secret"), ty: core::Secret, rules: kinds::core::secret::Secret),
            resource!("", "v1", "Node", "nodes", "node", namespaced: false, short: ["no"], categories: [],
                status: true, scale: false, definition: Some("io.k8s.api.core.v1.Node"), ty: core::Node, rules: kinds::core::node::Node),
            resource!("", "v1", "Event", "events", "event", namespaced: true, short: ["ev"], categories: [],
                status: false, scale: false, definition: Some("io.k8s.api.core.v1.Event"), ty: core::Event, rules: kinds::core::event::Event),
            resource!("", "v1", "ServiceAccount", "serviceaccounts", "serviceaccount", namespaced: true, short: ["sa"], categories: [],
                status: false, scale: false, definition: Some("io.k8s.api.core.v1.ServiceAccount"), ty: core::ServiceAccount, rules: kinds::core::serviceaccount::ServiceAccount),
            resource!("apps", "v1", "Deployment", "deployments", "deployment", namespaced: true, short: ["deploy"], categories: ["all"],
                status: true, scale: true, definition: Some("io.k8s.api.apps.v1.Deployment"), ty: apps::Deployment, rules: kinds::apps::deployment::Deployment),
            resource!("apps", "v1", "ReplicaSet", "replicasets", "replicaset", namespaced: true, short: ["rs"], categories: ["all"],
                status: true, scale: true, definition: Some("io.k8s.api.apps.v1.ReplicaSet"), ty: apps::ReplicaSet, rules: kinds::apps::replicaset::ReplicaSet),
            resource!("coordination.k8s.io", "v1", "Lease", "leases", "lease", namespaced: true, short: [], categories: [],
                status: false, scale: false, definition: Some("io.k8s.api.coordination.v1.Lease"), ty: coordination::Lease, rules: kinds::coordination::lease::Lease),
            resource!("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", "endpointslice", namespaced: true, short: [], categories: [],
                status: false, scale: false, definition: Some("io.k8s.api.discovery.v1.EndpointSlice"), ty: discovery::EndpointSlice, rules: kinds::discovery::endpointslice::EndpointSlice),
            resource!("berth.dev", "v1", "NodePool", "nodepools", "nodepool", namespaced: false, short: ["np"], categories: [],
                status: true, scale: true, definition: None, ty: berth_api::nodepool::NodePool, rules: kinds::berth::nodepool::NodePool),
        ]
    })
}

/// Finds a resource by group, version and plural name.
pub fn find(group: &str, version: &str, plural: &str) -> Option<&'static ResourceInfo> {
    resources()
        .iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// The API groups served besides core, with their versions, in discovery order.
pub fn groups() -> Vec<(&'static str, &'static str)> {
    let mut groups: Vec<(&str, &str)> = Vec::new();
    for r in resources().iter().filter(|r| !r.group.is_empty()) {
        if !groups.contains(&(r.group, r.version)) {
            groups.push((r.group, r.version));
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_separate_namespaces_and_groups() {
        let deploy = find("apps", "v1", "deployments").unwrap();
        assert_eq!(
            deploy.key(Some("default"), "web"),
            "/registry/apps/deployments/default/web"
        );
        let ns = find("", "v1", "namespaces").unwrap();
        assert_eq!(ns.key(None, "default"), "/registry/core/namespaces/default");
        assert_eq!(ns.api_version(), "v1");
        assert_eq!(deploy.api_version(), "apps/v1");
    }

    #[test]
    fn typecheck_rejects_wrong_field_types() {
        let deploy = find("apps", "v1", "deployments").unwrap();
        let bad = serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"replicas": "three"}});
        assert!((deploy.typecheck)(&bad).is_err());
        let good = serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"replicas": 3, "selector": {}, "template": {}}});
        assert!(
            (deploy.typecheck)(&good).is_ok(),
            "{:?}",
            (deploy.typecheck)(&good)
        );
    }
}
