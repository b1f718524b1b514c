//! Answering authorization questions from roles and bindings, with the
//! semantics of upstream's RBAC authorizer: whether one rule covers a request
//! ([`rule_allows`], [`non_resource_rule_allows`]), whether a user may make a
//! request and why (a SubjectAccessReview's answer, [`allows`]), and
//! everything a user may do in a namespace (a SelfSubjectRulesReview's
//! answer, [`rules_for`]).
//!
//! RBAC only grants: a request no rule covers is not denied here but left
//! without an opinion, which the API server reports as not allowed.

use k8s_openapi::api::authorization::v1::{
    NonResourceAttributes, NonResourceRule, ResourceAttributes, ResourceRule,
};
use serde_json::Value;

use super::{string, strings};

#[cfg(test)]
mod tests;

/// The roles and bindings a decision is made from, as stored. Bindings are
/// visited in the order given (cluster-wide ones first), so the first one
/// that allows a request is the one named in the reason.
#[derive(Debug, Clone, Copy, Default)]
pub struct Policy<'a> {
    /// Every Role, in any namespace.
    pub roles: &'a [Value],
    /// Every ClusterRole (aggregated ones with their aggregated rules).
    pub cluster_roles: &'a [Value],
    /// Every RoleBinding, in any namespace.
    pub role_bindings: &'a [Value],
    /// Every ClusterRoleBinding.
    pub cluster_role_bindings: &'a [Value],
}

/// The request being authorized: on a resource, or on a non-resource URL
/// path, as a SubjectAccessReview's spec carries it.
#[derive(Debug, Clone, Copy)]
pub enum Request<'a> {
    /// A request on an API resource (namespaced when it has a namespace).
    Resource(&'a ResourceAttributes),
    /// A request on a path outside the resource API (`/healthz`, `/version`).
    NonResource(&'a NonResourceAttributes),
}

/// What a SelfSubjectRulesReview reports for one user and namespace.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RulesReview {
    /// Rules on resources, one per policy rule naming resources.
    pub resource_rules: Vec<ResourceRule>,
    /// Rules on non-resource URLs, one per policy rule naming URLs.
    pub non_resource_rules: Vec<NonResourceRule>,
    /// Why the list may be incomplete (a binding naming a missing role), as
    /// upstream words it in `status.evaluationError`.
    pub evaluation_error: Option<String>,
}

/// Whether `rule` covers a resource request: verb, API group, resource (as
/// `resource` or `resource/subresource`, with `*` and `*/subresource`) and,
/// when the rule names objects, the object's name.
pub fn rule_allows(rule: &Value, attributes: &ResourceAttributes) -> bool {
    let resource = attributes.resource.as_deref().unwrap_or("");
    let subresource = attributes.subresource.as_deref().unwrap_or("");
    let combined = if subresource.is_empty() {
        resource.to_owned()
    } else {
        format!("{resource}/{subresource}")
    };
    verb_matches(rule, attributes.verb.as_deref().unwrap_or(""))
        && group_matches(rule, attributes.group.as_deref().unwrap_or(""))
        && resource_matches(rule, &combined, subresource)
        && name_matches(rule, attributes.name.as_deref().unwrap_or(""))
}

/// Whether `rule` covers a request on a non-resource URL: the verb, and the
/// path exactly, by `*`, or by a prefix rule ending in `*` (`/healthz/*`).
pub fn non_resource_rule_allows(rule: &Value, attributes: &NonResourceAttributes) -> bool {
    let path = attributes.path.as_deref().unwrap_or("");
    verb_matches(rule, attributes.verb.as_deref().unwrap_or(""))
        && strings(rule, "nonResourceURLs").iter().any(|url| {
            *url == "*"
                || *url == path
                || url
                    .strip_suffix('*')
                    .is_some_and(|prefix| path.starts_with(prefix))
        })
}

fn verb_matches(rule: &Value, verb: &str) -> bool {
    strings(rule, "verbs")
        .iter()
        .any(|v| *v == "*" || *v == verb)
}

fn group_matches(rule: &Value, group: &str) -> bool {
    strings(rule, "apiGroups")
        .iter()
        .any(|g| *g == "*" || *g == group)
}

fn resource_matches(rule: &Value, combined: &str, subresource: &str) -> bool {
    strings(rule, "resources").iter().any(|r| {
        *r == "*"
            || *r == combined
            || (!subresource.is_empty()
                && r.strip_prefix("*/").is_some_and(|sub| sub == subresource))
    })
}

fn name_matches(rule: &Value, name: &str) -> bool {
    let names = strings(rule, "resourceNames");
    names.is_empty() || names.contains(&name)
}

/// Whether `user` (member of `groups`) may make `request`, with upstream's
/// reason: `RBAC: allowed by ClusterRoleBinding "…" of ClusterRole "…" to
/// Group "…"` when allowed; when not, `""`, or `RBAC: ` and the errors met on
/// the way (a binding naming a missing role).
pub fn allows(
    user: &str,
    groups: &[String],
    request: Request<'_>,
    policy: &Policy<'_>,
) -> (bool, String) {
    let namespace = match request {
        Request::Resource(attributes) => attributes.namespace.as_deref().unwrap_or(""),
        Request::NonResource(_) => "",
    };
    let mut reason = None;
    let errors = visit(user, groups, namespace, policy, |source, rule| {
        let allowed = match request {
            Request::Resource(attributes) => rule_allows(rule, attributes),
            Request::NonResource(attributes) => non_resource_rule_allows(rule, attributes),
        };
        if allowed {
            reason = Some(format!("RBAC: allowed by {}", source()));
        }
        !allowed
    });
    match reason {
        Some(reason) => (true, reason),
        None if errors.is_empty() => (false, String::new()),
        None => (false, format!("RBAC: {}", aggregate(&errors))),
    }
}

/// Everything `user` (member of `groups`) may do in `namespace` (cluster-wide
/// grants only when `None`), as a SelfSubjectRulesReview lists it: one entry
/// per policy rule, in binding order, resource and URL rules apart.
pub fn rules_for(
    user: &str,
    groups: &[String],
    namespace: Option<&str>,
    policy: &Policy<'_>,
) -> RulesReview {
    let mut review = RulesReview::default();
    let owned = |rule: &Value, key: &str| -> Vec<String> {
        strings(rule, key).into_iter().map(str::to_owned).collect()
    };
    let optional = |list: Vec<String>| (!list.is_empty()).then_some(list);
    let errors = visit(user, groups, namespace.unwrap_or(""), policy, |_, rule| {
        if !strings(rule, "resources").is_empty() {
            review.resource_rules.push(ResourceRule {
                verbs: owned(rule, "verbs"),
                api_groups: optional(owned(rule, "apiGroups")),
                resources: optional(owned(rule, "resources")),
                resource_names: optional(owned(rule, "resourceNames")),
            });
        }
        if !strings(rule, "nonResourceURLs").is_empty() {
            review.non_resource_rules.push(NonResourceRule {
                verbs: owned(rule, "verbs"),
                non_resource_urls: optional(owned(rule, "nonResourceURLs")),
            });
        }
        true
    });
    if !errors.is_empty() {
        review.evaluation_error = Some(aggregate(&errors));
    }
    review
}

/// Walks every rule granted to the user, cluster-wide bindings first, then
/// the namespace's RoleBindings, calling `visitor` with a describer of the
/// granting binding until it returns `false`. Returns the errors met.
fn visit(
    user: &str,
    groups: &[String],
    namespace: &str,
    policy: &Policy<'_>,
    mut visitor: impl FnMut(&dyn Fn() -> String, &Value) -> bool,
) -> Vec<String> {
    let mut errors = Vec::new();
    for binding in policy.cluster_role_bindings {
        let Some(subject) = applies_to(user, groups, binding, "") else {
            continue;
        };
        let rules = match role_rules(policy, binding, "") {
            Ok(rules) => rules,
            Err(error) => {
                errors.push(error);
                continue;
            }
        };
        let describe = || describe_binding("ClusterRoleBinding", binding, subject, "");
        for rule in rules {
            if !visitor(&describe, rule) {
                return errors;
            }
        }
    }
    if namespace.is_empty() {
        return errors;
    }
    for binding in policy.role_bindings {
        if string(&binding["metadata"], "namespace") != namespace {
            continue;
        }
        let Some(subject) = applies_to(user, groups, binding, namespace) else {
            continue;
        };
        let rules = match role_rules(policy, binding, namespace) {
            Ok(rules) => rules,
            Err(error) => {
                errors.push(error);
                continue;
            }
        };
        let describe = || describe_binding("RoleBinding", binding, subject, namespace);
        for rule in rules {
            if !visitor(&describe, rule) {
                return errors;
            }
        }
    }
    errors
}

/// The first subject of `binding` that names the user, directly, by group
/// or as a service account (defaulting its namespace to the binding's).
fn applies_to<'a>(
    user: &str,
    groups: &[String],
    binding: &'a Value,
    namespace: &str,
) -> Option<&'a Value> {
    let subjects = binding.get("subjects").and_then(Value::as_array)?;
    subjects.iter().find(|subject| {
        let name = string(subject, "name");
        match string(subject, "kind") {
            "User" => user == name,
            "Group" => groups.iter().any(|group| group == name),
            "ServiceAccount" => {
                let account_namespace = match string(subject, "namespace") {
                    "" => namespace,
                    explicit => explicit,
                };
                !account_namespace.is_empty()
                    && user
                        .strip_prefix("system:serviceaccount:")
                        .and_then(|rest| rest.strip_prefix(account_namespace))
                        .and_then(|rest| rest.strip_prefix(':'))
                        == Some(name)
            }
            _ => false,
        }
    })
}

/// The rules of the role `binding` refers to (a Role looked up in
/// `namespace`), or upstream's error text; what a binding grants, which the
/// API server also needs when checking that a new binding escalates nothing.
pub fn role_rules<'a>(
    policy: &Policy<'a>,
    binding: &Value,
    namespace: &str,
) -> Result<&'a [Value], String> {
    let role_ref = &binding["roleRef"];
    let name = string(role_ref, "name");
    let found = match string(role_ref, "kind") {
        "Role" => policy.roles.iter().find(|role| {
            string(&role["metadata"], "name") == name
                && string(&role["metadata"], "namespace") == namespace
        }),
        "ClusterRole" => policy
            .cluster_roles
            .iter()
            .find(|role| string(&role["metadata"], "name") == name),
        other => return Err(format!("unsupported role reference kind: \"{other}\"")),
    };
    let resource = if string(role_ref, "kind") == "Role" {
        "role"
    } else {
        "clusterrole"
    };
    let role = found
        .ok_or_else(|| format!("{resource}.rbac.authorization.k8s.io \"{name}\" not found"))?;
    Ok(role
        .get("rules")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default())
}

/// Upstream's description of a granting binding, as reasons quote it.
fn describe_binding(kind: &str, binding: &Value, subject: &Value, namespace: &str) -> String {
    let name = string(&binding["metadata"], "name");
    let shown_name = if kind == "RoleBinding" {
        format!("{name}/{namespace}")
    } else {
        name.to_owned()
    };
    let role_ref = &binding["roleRef"];
    format!(
        "{kind} \"{shown_name}\" of {} \"{}\" to {}",
        string(role_ref, "kind"),
        string(role_ref, "name"),
        describe_subject(subject, namespace),
    )
}

fn describe_subject(subject: &Value, binding_namespace: &str) -> String {
    let kind = string(subject, "kind");
    let name = string(subject, "name");
    if kind == "ServiceAccount" {
        let namespace = match string(subject, "namespace") {
            "" => binding_namespace,
            explicit => explicit,
        };
        format!("{kind} \"{name}/{namespace}\"")
    } else {
        format!("{kind} \"{name}\"")
    }
}

/// Several errors as upstream's aggregate error prints them: one alone, or
/// the distinct ones bracketed and comma-separated.
fn aggregate(errors: &[String]) -> String {
    let mut distinct: Vec<&str> = Vec::new();
    for error in errors {
        if !distinct.contains(&error.as_str()) {
            distinct.push(error);
        }
    }
    match distinct.as_slice() {
        [one] => (*one).to_owned(),
        many => format!("[{}]", many.join(", ")),
    }
}
