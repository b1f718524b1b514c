//! Keeping the default roles and bindings current, as upstream's API server
//! does at every start: a missing default is created; an existing one gains
//! the labels, annotations, rules, aggregation selectors or subjects it lacks
//! (nothing is taken away, so an administrator's additions survive); a
//! binding whose `roleRef` differs is recreated; and an object annotated
//! `rbac.authorization.kubernetes.io/autoupdate: "false"` is left alone.

use serde_json::{Map, Value};

use super::bootstrap::AUTOUPDATE_ANNOTATION;
use super::escalation::covers;

/// The annotation by which an administrator opts an object out of updates.
const AUTOUPDATE: &str = AUTOUPDATE_ANNOTATION.0;

/// What to do with one default object.
#[derive(Debug, Clone, PartialEq)]
pub enum Reconciled {
    /// Stored and current: nothing to write.
    Unchanged,
    /// The administrator opted out (`autoupdate: "false"`): nothing to write,
    /// whatever the object lacks.
    Protected,
    /// Not stored yet: create this object.
    Create(Value),
    /// Stored but behind: replace it with this object (the stored one with
    /// what it lacked added).
    Update(Value),
    /// A binding whose `roleRef` differs, which cannot be updated: delete the
    /// stored one and create this one.
    Recreate(Value),
}

/// Reconciles a default Role or ClusterRole (`expected`) with what is
/// stored (`existing`), in upstream's union mode.
pub fn reconcile_role(existing: Option<&Value>, expected: &Value) -> Reconciled {
    let Some(existing) = existing else {
        return Reconciled::Create(expected.clone());
    };
    if is_protected(existing) {
        return Reconciled::Protected;
    }
    let mut role = existing.clone();
    let mut changed = merge_metadata(&mut role, expected);

    let (_, missing) = covers(list(existing, "rules"), list(expected, "rules"));
    if !missing.is_empty() {
        let mut rules = list(existing, "rules").to_vec();
        rules.extend(missing);
        role["rules"] = Value::Array(rules);
        changed = true;
    }

    let expected_rule = aggregation(expected);
    let existing_rule = aggregation(existing);
    match (expected_rule, existing_rule) {
        (None, Some(_)) => {
            if let Some(map) = role.as_object_mut() {
                map.remove("aggregationRule");
            }
            changed = true;
        }
        (Some(expected_rule), existing_rule) => {
            let owned = existing_rule.map(selectors).unwrap_or_default();
            let missing: Vec<Value> = selectors(expected_rule)
                .into_iter()
                .filter(|selector| !owned.contains(selector))
                .collect();
            if !missing.is_empty() {
                let mut all = owned;
                all.extend(missing);
                role["aggregationRule"] = serde_json::json!({ "clusterRoleSelectors": all });
                changed = true;
            }
        }
        (None, None) => {}
    }
    if changed {
        Reconciled::Update(role)
    } else {
        Reconciled::Unchanged
    }
}

/// Reconciles a default RoleBinding or ClusterRoleBinding (`expected`) with
/// what is stored (`existing`): missing subjects are added, extra ones kept.
pub fn reconcile_binding(existing: Option<&Value>, expected: &Value) -> Reconciled {
    let Some(existing) = existing else {
        return Reconciled::Create(expected.clone());
    };
    if is_protected(existing) {
        return Reconciled::Protected;
    }
    if role_ref(existing) != role_ref(expected) {
        return Reconciled::Recreate(expected.clone());
    }
    let mut binding = existing.clone();
    let mut changed = merge_metadata(&mut binding, expected);
    let owned = list(existing, "subjects");
    let missing: Vec<Value> = list(expected, "subjects")
        .iter()
        .filter(|subject| !owned.iter().any(|have| same_subject(have, subject)))
        .cloned()
        .collect();
    if !missing.is_empty() {
        let mut subjects = owned.to_vec();
        subjects.extend(missing);
        binding["subjects"] = Value::Array(subjects);
        changed = true;
    }
    if changed {
        Reconciled::Update(binding)
    } else {
        Reconciled::Unchanged
    }
}

fn is_protected(object: &Value) -> bool {
    object["metadata"]["annotations"][AUTOUPDATE] == "false"
}

/// Adds the expected labels and annotations the object lacks (the stored
/// values win); whether anything was added.
fn merge_metadata(object: &mut Value, expected: &Value) -> bool {
    let mut changed = false;
    for key in ["labels", "annotations"] {
        let Some(wanted) = expected["metadata"][key].as_object() else {
            continue;
        };
        let mut merged: Map<String, Value> = object["metadata"][key]
            .as_object()
            .cloned()
            .unwrap_or_default();
        let mut added = false;
        for (name, value) in wanted {
            if !merged.contains_key(name) {
                merged.insert(name.clone(), value.clone());
                added = true;
            }
        }
        if added {
            changed = true;
            if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
                meta.insert(key.into(), Value::Object(merged));
            }
        }
    }
    changed
}

fn list<'a>(object: &'a Value, key: &str) -> &'a [Value] {
    object
        .get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

fn aggregation(role: &Value) -> Option<&Value> {
    role.get("aggregationRule").filter(|rule| !rule.is_null())
}

fn selectors(rule: &Value) -> Vec<Value> {
    list(rule, "clusterRoleSelectors").to_vec()
}

fn role_ref(binding: &Value) -> [&str; 3] {
    let role_ref = &binding["roleRef"];
    ["apiGroup", "kind", "name"].map(|key| role_ref[key].as_str().unwrap_or(""))
}

/// Subjects are the same when kind, API group, name and namespace all are.
fn same_subject(a: &Value, b: &Value) -> bool {
    ["kind", "apiGroup", "name", "namespace"]
        .iter()
        .all(|key| a[*key].as_str().unwrap_or("") == b[*key].as_str().unwrap_or(""))
}

#[cfg(test)]
mod tests;
