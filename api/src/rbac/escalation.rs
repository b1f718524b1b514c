//! Privilege-escalation prevention, as upstream's RBAC storage applies it: a
//! user may only write a Role or ClusterRole whose rules their own rules
//! already cover, unless they may `escalate` (or are in `system:masters`).
//! Coverage works on rules broken down to one group, resource, verb and name
//! each, so what is missing can be listed exactly.

use serde_json::{json, Map, Value};

use super::evaluate::{self, Policy};
use super::strings;

/// The group whose members may always escalate: the API server's own
/// privileged loopback identity belongs to it.
pub const PRIVILEGED_GROUP: &str = "system:masters";

/// Whether `owner_rules` allow everything `servant_rules` do, and the
/// broken-down servant rules no owner rule covers.
pub fn covers(owner_rules: &[Value], servant_rules: &[Value]) -> (bool, Vec<Value>) {
    let uncovered: Vec<Value> = servant_rules
        .iter()
        .flat_map(breakdown_rule)
        .filter(|sub| !owner_rules.iter().any(|owner| rule_covers(owner, sub)))
        .collect();
    (uncovered.is_empty(), uncovered)
}

/// The equivalent rules with at most one group, resource, verb and resource
/// name each (URLs pair with verbs alone), in upstream's order.
pub fn breakdown_rule(rule: &Value) -> Vec<Value> {
    let verbs = strings(rule, "verbs");
    let names = strings(rule, "resourceNames");
    let mut out = Vec::new();
    for group in strings(rule, "apiGroups") {
        for resource in strings(rule, "resources") {
            for verb in &verbs {
                if names.is_empty() {
                    out.push(
                        json!({ "verbs": [verb], "apiGroups": [group], "resources": [resource] }),
                    );
                }
                for name in &names {
                    out.push(json!({
                        "verbs": [verb], "apiGroups": [group], "resources": [resource],
                        "resourceNames": [name],
                    }));
                }
            }
        }
    }
    for url in strings(rule, "nonResourceURLs") {
        for verb in &verbs {
            out.push(json!({ "verbs": [verb], "nonResourceURLs": [url] }));
        }
    }
    out
}

/// Whether `owner` (any shape) covers `sub` (a broken-down rule).
fn rule_covers(owner: &Value, sub: &Value) -> bool {
    let owner_names = strings(owner, "resourceNames");
    let sub_names = strings(sub, "resourceNames");
    let names_match =
        owner_names.is_empty() || (!sub_names.is_empty() && has_all(&owner_names, &sub_names));
    covers_all_or_star(owner, sub, "verbs")
        && covers_all_or_star(owner, sub, "apiGroups")
        && resources_cover(&strings(owner, "resources"), &strings(sub, "resources"))
        && strings(sub, "nonResourceURLs").iter().all(|path| {
            strings(owner, "nonResourceURLs").iter().any(|owned| {
                owned == path
                    || owned
                        .strip_suffix('*')
                        .is_some_and(|prefix| path.starts_with(prefix.trim_end_matches('*')))
            })
        })
        && names_match
}

fn covers_all_or_star(owner: &Value, sub: &Value, key: &str) -> bool {
    let owned = strings(owner, key);
    owned.contains(&"*") || has_all(&owned, &strings(sub, key))
}

fn has_all(set: &[&str], wanted: &[&str]) -> bool {
    wanted.iter().all(|item| set.contains(item))
}

fn resources_cover(owned: &[&str], wanted: &[&str]) -> bool {
    if owned.contains(&"*") || has_all(owned, wanted) {
        return true;
    }
    wanted.iter().all(|path| {
        owned.contains(path)
            || path
                .split_once('/')
                .is_some_and(|(_, sub)| owned.contains(&format!("*/{sub}").as_str()))
    })
}

/// Merges rules on one group and resource (and at most one name) into one
/// rule with all their verbs, as upstream does before listing what is
/// missing; other rules stay as they are.
pub fn compact_rules(rules: &[Value]) -> Vec<Value> {
    let mut compacted: Vec<Value> = Vec::new();
    let mut simple: Vec<(SimpleKey, Value)> = Vec::new();
    for rule in rules {
        let Some(key) = simple_key(rule) else {
            compacted.push(rule.clone());
            continue;
        };
        match simple.iter_mut().find(|(existing, _)| *existing == key) {
            Some((_, merged)) => {
                let mut verbs: Vec<Value> = merged["verbs"].as_array().cloned().unwrap_or_default();
                verbs.extend(strings(rule, "verbs").into_iter().map(|v| json!(v)));
                merged["verbs"] = Value::Array(verbs);
            }
            None => simple.push((key, rule.clone())),
        }
    }
    compacted.extend(simple.into_iter().map(|(_, rule)| rule));
    compacted
}

/// A simple rule's group, resource and (optional) resource name.
type SimpleKey = (String, String, Option<String>);

/// The key of a rule naming exactly one group and one resource, at most one
/// name, and nothing else but verbs.
fn simple_key(rule: &Value) -> Option<SimpleKey> {
    let groups = strings(rule, "apiGroups");
    let resources = strings(rule, "resources");
    let names = strings(rule, "resourceNames");
    let only_known = rule.as_object().is_some_and(|map| {
        map.iter().all(|(key, value)| {
            matches!(
                key.as_str(),
                "verbs" | "apiGroups" | "resources" | "resourceNames"
            ) || value.is_null()
                || value.as_array().is_some_and(Vec::is_empty)
        })
    });
    (groups.len() == 1 && resources.len() == 1 && names.len() <= 1 && only_known).then(|| {
        (
            groups[0].to_owned(),
            resources[0].to_owned(),
            names.first().map(|name| (*name).to_owned()),
        )
    })
}

/// A rule the way upstream's escalation message prints it:
/// `{APIGroups:["apps"], Resources:["deployments"], Verbs:["get"]}`.
pub fn compact_string(rule: &Value) -> String {
    let parts: Vec<String> = [
        ("APIGroups", "apiGroups"),
        ("Resources", "resources"),
        ("NonResourceURLs", "nonResourceURLs"),
        ("ResourceNames", "resourceNames"),
        ("Verbs", "verbs"),
    ]
    .into_iter()
    .filter_map(|(label, key)| {
        let list = strings(rule, key);
        (!list.is_empty()).then(|| format!("{label}:{}", go_quoted(&list)))
    })
    .collect();
    format!("{{{}}}", parts.join(", "))
}

/// A string list as Go's `%q` prints it: `["a" "b"]`.
fn go_quoted(items: &[&str]) -> String {
    let quoted: Vec<String> = items.iter().map(|item| format!("{item:?}")).collect();
    format!("[{}]", quoted.join(" "))
}

/// Whether writing a role with `rules` in `namespace` (cluster-wide when
/// `None`) is allowed to `user`: `Ok` when their own rules there cover all of
/// them or they are in `system:masters`; otherwise upstream's message listing
/// what they lack, which the API server returns as 403 Forbidden. (Holding
/// the `escalate` verb on the role is the caller's check, as upstream does it
/// with an authorization request.)
pub fn confirm_no_escalation(
    user: &str,
    groups: &[String],
    namespace: Option<&str>,
    rules: &[Value],
    policy: &Policy<'_>,
) -> Result<(), String> {
    if groups.iter().any(|group| group == PRIVILEGED_GROUP) {
        return Ok(());
    }
    let review = evaluate::rules_for(user, groups, namespace, policy);
    let owner_rules: Vec<Value> = review
        .resource_rules
        .iter()
        .map(|rule| {
            let mut map = Map::new();
            map.insert("verbs".into(), json!(rule.verbs));
            map.insert("apiGroups".into(), json!(rule.api_groups.clone().unwrap_or_default()));
            map.insert("resources".into(), json!(rule.resources.clone().unwrap_or_default()));
            map.insert("resourceNames".into(), json!(rule.resource_names.clone().unwrap_or_default()));
            Value::Object(map)
        })
        .chain(review.non_resource_rules.iter().map(|rule| {
            json!({ "verbs": rule.verbs, "nonResourceURLs": rule.non_resource_urls.clone().unwrap_or_default() })
        }))
        .collect();
    let (covered, missing) = covers(&owner_rules, rules);
    if covered {
        return Ok(());
    }
    let mut lines: Vec<String> = compact_rules(&missing).iter().map(compact_string).collect();
    lines.sort();
    lines.dedup();
    let group_list: Vec<&str> = groups.iter().map(String::as_str).collect();
    let mut message = format!(
        "user \"{user}\" (groups={}) is attempting to grant RBAC permissions not currently held:\n{}",
        go_quoted(&group_list),
        lines.join("\n"),
    );
    if let Some(error) = review.evaluation_error {
        message.push_str(&format!("; resolution errors: [{error}]"));
    }
    Err(message)
}

#[cfg(test)]
mod tests;
