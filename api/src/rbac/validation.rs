//! Create and update validation of Role, ClusterRole, RoleBinding and
//! ClusterRoleBinding, with upstream's field paths and messages, so a bad
//! object is refused with the same 422 causes a Kubernetes API server gives.
//!
//! Only the kind-specific fields are checked here (rules, aggregation rule,
//! roleRef, subjects); metadata goes through the API server's common checks,
//! with [`name_problems`] as the name rule of all four kinds.

use serde_json::Value;

use super::{string, strings, GROUP};
use crate::field::FieldCause;
use crate::selector::LabelSelector;
use crate::validation::{
    is_dns1123_subdomain, is_qualified_name, is_valid_label_value, is_valid_path_segment_name,
};

#[cfg(test)]
mod tests;

/// What is wrong with an RBAC object name: upstream only asks that it be a
/// usable path segment (`system:node`, `system::leader-locking-…` are fine).
pub fn name_problems(name: &str) -> Vec<String> {
    is_valid_path_segment_name(name)
}

/// Fills what upstream's v1 defaulting fills before validation: the API group
/// of User and Group subjects, when left empty.
pub fn default_subjects(binding: &mut Value) {
    let Some(subjects) = binding.get_mut("subjects").and_then(Value::as_array_mut) else {
        return;
    };
    for subject in subjects {
        let kind = string(subject, "kind");
        if matches!(kind, "User" | "Group") && string(subject, "apiGroup").is_empty() {
            if let Some(map) = subject.as_object_mut() {
                map.insert("apiGroup".into(), Value::String(GROUP.into()));
            }
        }
    }
}

/// A Role on create: every rule valid, none on non-resource URLs.
pub fn validate_role(role: &Value) -> Vec<FieldCause> {
    validate_rules(role, true)
}

/// A Role on update: the same checks as on create.
pub fn validate_role_update(role: &Value, _old: &Value) -> Vec<FieldCause> {
    validate_role(role)
}

/// A ClusterRole on create: every rule valid, and an `aggregationRule`, when
/// present, with at least one valid selector.
pub fn validate_cluster_role(role: &Value) -> Vec<FieldCause> {
    let mut causes = validate_rules(role, false);
    let Some(aggregation) = role.get("aggregationRule").filter(|a| !a.is_null()) else {
        return causes;
    };
    let selectors = aggregation
        .get("clusterRoleSelectors")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    if selectors.is_empty() {
        causes.push(FieldCause::required(
            "aggregationRule.clusterRoleSelectors",
            "at least one clusterRoleSelector required if aggregationRule is non-nil",
        ));
    }
    for (i, selector) in selectors.iter().enumerate() {
        let path = format!("aggregationRule.clusterRoleSelectors[{i}]");
        let problems = validate_label_selector(selector, &path);
        if problems.is_empty() && LabelSelector::from_value(selector).is_err() {
            causes.push(FieldCause::invalid(
                &path,
                selector,
                "invalid label selector.",
            ));
        }
        causes.extend(problems);
    }
    causes
}

/// A ClusterRole on update: the same checks as on create.
pub fn validate_cluster_role_update(role: &Value, _old: &Value) -> Vec<FieldCause> {
    validate_cluster_role(role)
}

/// A RoleBinding on create: a `roleRef` to a Role or ClusterRole, and valid
/// subjects (a ServiceAccount may leave its namespace to the binding's).
pub fn validate_role_binding(binding: &Value) -> Vec<FieldCause> {
    validate_binding(binding, true)
}

/// A RoleBinding on update: as on create, and `roleRef` unchanged.
pub fn validate_role_binding_update(binding: &Value, old: &Value) -> Vec<FieldCause> {
    let mut causes = validate_role_binding(binding);
    causes.extend(role_ref_unchanged(binding, old));
    causes
}

/// A ClusterRoleBinding on create: a `roleRef` to a ClusterRole, and valid
/// subjects (ServiceAccounts with their namespace).
pub fn validate_cluster_role_binding(binding: &Value) -> Vec<FieldCause> {
    validate_binding(binding, false)
}

/// A ClusterRoleBinding on update: as on create, and `roleRef` unchanged.
pub fn validate_cluster_role_binding_update(binding: &Value, old: &Value) -> Vec<FieldCause> {
    let mut causes = validate_cluster_role_binding(binding);
    causes.extend(role_ref_unchanged(binding, old));
    causes
}

fn validate_rules(role: &Value, namespaced: bool) -> Vec<FieldCause> {
    let rules = role
        .get("rules")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    rules
        .iter()
        .enumerate()
        .flat_map(|(i, rule)| validate_policy_rule(rule, namespaced, &format!("rules[{i}]")))
        .collect()
}

/// One policy rule: verbs always; then either non-resource URLs alone
/// (cluster-wide only) or API groups and resources.
pub fn validate_policy_rule(rule: &Value, namespaced: bool, path: &str) -> Vec<FieldCause> {
    let mut causes = Vec::new();
    if strings(rule, "verbs").is_empty() {
        causes.push(FieldCause::required(
            format!("{path}.verbs"),
            "verbs must contain at least one value",
        ));
    }
    let urls = strings(rule, "nonResourceURLs");
    if !urls.is_empty() {
        let field = format!("{path}.nonResourceURLs");
        let shown = go_strings(&urls);
        if namespaced {
            causes.push(invalid_shown(
                &field,
                &shown,
                "namespaced rules cannot apply to non-resource URLs",
            ));
        }
        let has_resources = ["apiGroups", "resources", "resourceNames"]
            .iter()
            .any(|key| !strings(rule, key).is_empty());
        if has_resources {
            causes.push(invalid_shown(
                &field,
                &shown,
                "rules cannot apply to both regular resources and non-resource URLs",
            ));
        }
        return causes;
    }
    if strings(rule, "apiGroups").is_empty() {
        causes.push(FieldCause::required(
            format!("{path}.apiGroups"),
            "resource rules must supply at least one api group",
        ));
    }
    if strings(rule, "resources").is_empty() {
        causes.push(FieldCause::required(
            format!("{path}.resources"),
            "resource rules must supply at least one resource",
        ));
    }
    causes
}

fn validate_binding(binding: &Value, namespaced: bool) -> Vec<FieldCause> {
    let mut causes = Vec::new();
    let role_ref = &binding["roleRef"];
    let group = string(role_ref, "apiGroup");
    if group != GROUP {
        causes.push(FieldCause::not_supported(
            "roleRef.apiGroup",
            &Value::String(group.into()),
            &[GROUP],
        ));
    }
    let kind = string(role_ref, "kind");
    let kinds: &[&str] = if namespaced {
        &["Role", "ClusterRole"]
    } else {
        &["ClusterRole"]
    };
    if !kinds.contains(&kind) {
        causes.push(FieldCause::not_supported(
            "roleRef.kind",
            &Value::String(kind.into()),
            kinds,
        ));
    }
    let name = string(role_ref, "name");
    if name.is_empty() {
        causes.push(FieldCause::required("roleRef.name", ""));
    }
    for problem in name_problems(name).into_iter().filter(|_| !name.is_empty()) {
        causes.push(FieldCause::invalid(
            "roleRef.name",
            &Value::String(name.into()),
            problem,
        ));
    }
    let subjects = binding
        .get("subjects")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    for (i, subject) in subjects.iter().enumerate() {
        causes.extend(validate_subject(
            subject,
            namespaced,
            &format!("subjects[{i}]"),
        ));
    }
    causes
}

/// One subject: a name; a ServiceAccount's name a DNS subdomain, in the core
/// group, with a namespace outside a namespaced binding; a User's or Group's
/// group the RBAC group (an empty one is read as defaulted).
pub fn validate_subject(subject: &Value, namespaced: bool, path: &str) -> Vec<FieldCause> {
    let mut causes = Vec::new();
    let name = string(subject, "name");
    if name.is_empty() {
        causes.push(FieldCause::required(format!("{path}.name"), ""));
    }
    let group = string(subject, "apiGroup");
    let group_value = Value::String(group.into());
    match string(subject, "kind") {
        "ServiceAccount" => {
            if !name.is_empty() {
                for problem in is_dns1123_subdomain(name) {
                    causes.push(FieldCause::invalid(
                        format!("{path}.name"),
                        &Value::String(name.into()),
                        problem,
                    ));
                }
            }
            if !group.is_empty() {
                causes.push(FieldCause::not_supported(
                    format!("{path}.apiGroup"),
                    &group_value,
                    &[""],
                ));
            }
            if !namespaced && string(subject, "namespace").is_empty() {
                causes.push(FieldCause::required(format!("{path}.namespace"), ""));
            }
        }
        "User" | "Group" => {
            if !group.is_empty() && group != GROUP {
                causes.push(FieldCause::not_supported(
                    format!("{path}.apiGroup"),
                    &group_value,
                    &[GROUP],
                ));
            }
        }
        other => causes.push(FieldCause::not_supported(
            format!("{path}.kind"),
            &Value::String(other.into()),
            &["ServiceAccount", "User", "Group"],
        )),
    }
    causes
}

/// `roleRef` may never change: a binding to another role is a new binding.
fn role_ref_unchanged(binding: &Value, old: &Value) -> Option<FieldCause> {
    let parts = |object: &Value| {
        let role_ref = &object["roleRef"];
        [
            string(role_ref, "apiGroup").to_owned(),
            string(role_ref, "kind").to_owned(),
            string(role_ref, "name").to_owned(),
        ]
    };
    let [group, kind, name] = parts(binding);
    (parts(old) != [group.clone(), kind.clone(), name.clone()]).then(|| {
        let shown = format!("rbac.RoleRef{{APIGroup:{group:?}, Kind:{kind:?}, Name:{name:?}}}");
        invalid_shown("roleRef", &shown, "cannot change roleRef")
    })
}

/// Upstream's checks of a structured label selector (`matchLabels` keys and
/// values, `matchExpressions` operators and values).
fn validate_label_selector(selector: &Value, path: &str) -> Vec<FieldCause> {
    let mut causes = Vec::new();
    if let Some(labels) = selector.get("matchLabels").and_then(Value::as_object) {
        for (key, value) in labels {
            for problem in is_qualified_name(key) {
                causes.push(FieldCause::invalid(
                    format!("{path}.matchLabels"),
                    &Value::String(key.clone()),
                    problem,
                ));
            }
            let value_str = value.as_str().unwrap_or("");
            for problem in is_valid_label_value(value_str) {
                causes.push(FieldCause::invalid(
                    format!("{path}.matchLabels"),
                    value,
                    problem,
                ));
            }
        }
    }
    let expressions = selector
        .get("matchExpressions")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    for (i, expression) in expressions.iter().enumerate() {
        let at = format!("{path}.matchExpressions[{i}]");
        let values = strings(expression, "values");
        match string(expression, "operator") {
            "In" | "NotIn" if values.is_empty() => causes.push(FieldCause::required(
                format!("{at}.values"),
                "must be specified when `operator` is 'In' or 'NotIn'",
            )),
            "Exists" | "DoesNotExist" if !values.is_empty() => causes.push(FieldCause::forbidden(
                format!("{at}.values"),
                "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
            )),
            "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
            other => causes.push(FieldCause::invalid(
                format!("{at}.operator"),
                &Value::String(other.into()),
                "not a valid selector operator",
            )),
        }
        let key = string(expression, "key");
        for problem in is_qualified_name(key) {
            causes.push(FieldCause::invalid(
                format!("{at}.key"),
                &Value::String(key.into()),
                problem,
            ));
        }
    }
    causes
}

/// A list of strings as Go's `%#v` prints it, which upstream's messages show.
fn go_strings(items: &[&str]) -> String {
    let quoted: Vec<String> = items.iter().map(|item| format!("{item:?}")).collect();
    format!("[]string{{{}}}", quoted.join(", "))
}

/// `Invalid value` with the value already formatted the way upstream shows it.
fn invalid_shown(field: &str, shown: &str, detail: &str) -> FieldCause {
    FieldCause {
        reason: "FieldValueInvalid",
        field: field.to_owned(),
        message: format!("Invalid value: {shown}: {detail}"),
    }
}
