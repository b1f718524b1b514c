//! The default RBAC objects a Kubernetes 1.33 API server reconciles at start:
//! the ClusterRoles (user-facing, system and per-controller), their
//! ClusterRoleBindings, and the Roles and RoleBindings in `kube-system` and
//! `kube-public`. Every object carries upstream's bootstrapping label and
//! auto-update annotation, so clients (and the reconciler) treat them as
//! upstream's own defaults.
//!
//! The data lives in three files by origin: `policy` (cluster-wide roles),
//! `controllers` (one role per controller service account) and
//! `namespaced` (the kube-system and kube-public objects). Within a rule,
//! verbs, groups, resources, names and URLs are sorted and de-duplicated, as
//! upstream's rule builder does.

mod controllers;
mod namespaced;
mod policy;
#[cfg(test)]
mod tests;

use serde_json::{json, Map, Value};

/// The API group and version of every RBAC object here.
pub const API_VERSION: &str = "rbac.authorization.k8s.io/v1";
/// The label upstream puts on every default RBAC object.
pub const BOOTSTRAPPING_LABEL: (&str, &str) = ("kubernetes.io/bootstrapping", "rbac-defaults");
/// The annotation telling the reconciler it may update the object at start.
pub const AUTOUPDATE_ANNOTATION: (&str, &str) =
    ("rbac.authorization.kubernetes.io/autoupdate", "true");

/// Every default ClusterRole, sorted by name: the user-facing `cluster-admin`,
/// `admin`, `edit` and `view`, the `system:*` roles and the
/// `system:controller:*` roles. Aggregated roles (`admin`, `edit`, `view`)
/// carry their `aggregationRule` and empty rules, which
/// [`crate::rbac::aggregation`] fills.
pub fn cluster_roles() -> Vec<Value> {
    let mut roles: Vec<Value> = policy::cluster_roles()
        .into_iter()
        .chain(controllers::controller_roles())
        .map(|role| role.to_value("ClusterRole", None))
        .collect();
    sort_by_name(&mut roles);
    roles
}

/// Every default ClusterRoleBinding, sorted by name, including one per
/// controller role binding the controller's `kube-system` service account.
pub fn cluster_role_bindings() -> Vec<Value> {
    let mut bindings: Vec<Value> = policy::cluster_role_bindings()
        .into_iter()
        .chain(controllers::controller_roles().iter().map(|role| {
            let account = role.name.trim_start_matches(controllers::PREFIX);
            Binding::cluster(&role.name).service_account("kube-system", account)
        }))
        .map(|binding| binding.to_value("ClusterRoleBinding", None))
        .collect();
    sort_by_name(&mut bindings);
    bindings
}

/// The default namespaced Roles (in `kube-system` and `kube-public`), sorted
/// by namespace then name.
pub fn roles() -> Vec<Value> {
    let mut roles: Vec<Value> = namespaced::roles()
        .into_iter()
        .map(|(namespace, role)| role.to_value("Role", Some(namespace)))
        .collect();
    sort_by_name(&mut roles);
    roles
}

/// The default namespaced RoleBindings, sorted by namespace then name.
pub fn role_bindings() -> Vec<Value> {
    let mut bindings: Vec<Value> = namespaced::role_bindings()
        .into_iter()
        .map(|(namespace, binding)| binding.to_value("RoleBinding", Some(namespace)))
        .collect();
    sort_by_name(&mut bindings);
    bindings
}

fn sort_by_name(objects: &mut [Value]) {
    objects.sort_by(|a, b| {
        let key = |o: &Value| {
            (
                o["metadata"]["namespace"].as_str().unwrap_or("").to_owned(),
                o["metadata"]["name"].as_str().unwrap_or("").to_owned(),
            )
        };
        key(a).cmp(&key(b))
    });
}

fn metadata(name: &str, namespace: Option<&str>, extra_labels: &[(&str, &str)]) -> Value {
    let mut meta = Map::new();
    meta.insert("name".into(), json!(name));
    if let Some(namespace) = namespace {
        meta.insert("namespace".into(), json!(namespace));
    }
    let mut labels = Map::new();
    for (key, value) in std::iter::once(&BOOTSTRAPPING_LABEL).chain(extra_labels) {
        labels.insert((*key).into(), json!(value));
    }
    meta.insert("labels".into(), Value::Object(labels));
    meta.insert(
        "annotations".into(),
        json!({ AUTOUPDATE_ANNOTATION.0: AUTOUPDATE_ANNOTATION.1 }),
    );
    Value::Object(meta)
}

/// Splits a space-separated word list, reading `-` as the core group `""`,
/// then sorts and de-duplicates it like upstream's rule builder.
fn words(list: &str) -> Vec<String> {
    let mut out: Vec<String> = list
        .split_whitespace()
        .map(|word| {
            if word == "-" {
                String::new()
            } else {
                word.to_owned()
            }
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// One policy rule under construction.
struct Rule {
    verbs: Vec<String>,
    groups: Vec<String>,
    resources: Vec<String>,
    names: Vec<String>,
    urls: Vec<String>,
}

/// A resource rule: `verbs` on `resources` in `groups` (`-` is the core group).
fn r(verbs: &str, groups: &str, resources: &str) -> Rule {
    Rule {
        verbs: words(verbs),
        groups: words(groups),
        resources: words(resources),
        names: Vec::new(),
        urls: Vec::new(),
    }
}

/// A non-resource rule: `verbs` on the URL paths `urls`.
fn u(verbs: &str, urls: &str) -> Rule {
    Rule {
        verbs: words(verbs),
        groups: Vec::new(),
        resources: Vec::new(),
        names: Vec::new(),
        urls: words(urls),
    }
}

/// The rule nearly every controller has: writing events in both groups.
fn events() -> Rule {
    r("create update patch", "- events.k8s.io", "events")
}

impl Rule {
    /// Restricts the rule to the named objects.
    fn names(mut self, names: &str) -> Self {
        self.names = words(names);
        self
    }

    fn to_value(&self) -> Value {
        let mut rule = Map::new();
        rule.insert("verbs".into(), json!(self.verbs));
        for (key, list) in [
            ("apiGroups", &self.groups),
            ("resources", &self.resources),
            ("resourceNames", &self.names),
            ("nonResourceURLs", &self.urls),
        ] {
            if !list.is_empty() {
                rule.insert(key.into(), json!(list));
            }
        }
        Value::Object(rule)
    }
}

/// A (Cluster)Role under construction.
struct Role {
    name: String,
    labels: Vec<(&'static str, &'static str)>,
    /// The `aggregate-to-*` label value this role aggregates, if it does.
    aggregates: Option<&'static str>,
    rules: Vec<Rule>,
}

fn role(name: impl Into<String>, rules: Vec<Rule>) -> Role {
    Role {
        name: name.into(),
        labels: Vec::new(),
        aggregates: None,
        rules,
    }
}

impl Role {
    fn label(mut self, key: &'static str) -> Self {
        self.labels.push((key, "true"));
        self
    }

    fn aggregating(mut self, label: &'static str) -> Self {
        self.aggregates = Some(label);
        self
    }

    fn to_value(&self, kind: &str, namespace: Option<&str>) -> Value {
        let mut object = Map::new();
        object.insert("apiVersion".into(), json!(API_VERSION));
        object.insert("kind".into(), json!(kind));
        object.insert(
            "metadata".into(),
            metadata(&self.name, namespace, &self.labels),
        );
        if let Some(label) = self.aggregates {
            object.insert(
                "aggregationRule".into(),
                json!({ "clusterRoleSelectors": [{ "matchLabels": { label: "true" } }] }),
            );
        }
        let rules: Vec<Value> = self.rules.iter().map(Rule::to_value).collect();
        object.insert("rules".into(), Value::Array(rules));
        Value::Object(object)
    }
}

/// A (Cluster)RoleBinding under construction.
struct Binding {
    name: String,
    role_kind: &'static str,
    role: String,
    subjects: Vec<Value>,
}

impl Binding {
    /// A binding named like the ClusterRole it grants.
    fn cluster(role: &str) -> Self {
        Binding {
            name: role.to_owned(),
            role_kind: "ClusterRole",
            role: role.to_owned(),
            subjects: Vec::new(),
        }
    }

    /// A binding named like the Role (same namespace) it grants.
    fn role(role: &str) -> Self {
        Binding {
            name: role.to_owned(),
            role_kind: "Role",
            role: role.to_owned(),
            subjects: Vec::new(),
        }
    }

    fn named(mut self, name: &str) -> Self {
        self.name = name.to_owned();
        self
    }

    fn users(mut self, names: &[&str]) -> Self {
        for name in names {
            self.subjects.push(json!({
                "kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": name,
            }));
        }
        self
    }

    fn groups(mut self, names: &[&str]) -> Self {
        for name in names {
            self.subjects.push(json!({
                "kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": name,
            }));
        }
        self
    }

    fn service_account(mut self, namespace: &str, name: &str) -> Self {
        self.subjects.push(json!({
            "kind": "ServiceAccount", "name": name, "namespace": namespace,
        }));
        self
    }

    fn to_value(&self, kind: &str, namespace: Option<&str>) -> Value {
        let mut object = Map::new();
        object.insert("apiVersion".into(), json!(API_VERSION));
        object.insert("kind".into(), json!(kind));
        object.insert("metadata".into(), metadata(&self.name, namespace, &[]));
        if !self.subjects.is_empty() {
            object.insert("subjects".into(), Value::Array(self.subjects.clone()));
        }
        object.insert(
            "roleRef".into(),
            json!({
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": self.role_kind,
                "name": self.role,
            }),
        );
        Value::Object(object)
    }
}
