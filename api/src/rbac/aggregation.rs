//! ClusterRole aggregation, as upstream's `clusterrole-aggregation-controller`
//! computes it: a ClusterRole with an `aggregationRule` gets the rules of
//! every other ClusterRole one of its selectors matches. Kept pure so the API
//! server can recompute an aggregated role whenever a ClusterRole changes.

use serde_json::Value;

use crate::selector::LabelSelector;

/// The rules `cluster_role` should have, given every ClusterRole in the
/// cluster, or `None` when it has no `aggregationRule` (its own rules stand).
///
/// Upstream's order: selector by selector, the matching roles sorted by
/// name (the aggregating role itself skipped), their rules in order, each
/// rule kept only the first time it appears. A selector that does not parse
/// matches nothing; an empty selector matches every ClusterRole.
pub fn aggregate(cluster_role: &Value, all_cluster_roles: &[Value]) -> Option<Vec<Value>> {
    let rule = cluster_role
        .get("aggregationRule")
        .filter(|r| !r.is_null())?;
    let own_name = cluster_role["metadata"]["name"].as_str().unwrap_or("");
    let mut sorted: Vec<&Value> = all_cluster_roles.iter().collect();
    sorted.sort_by_key(|role| role["metadata"]["name"].as_str().unwrap_or(""));

    let mut rules: Vec<Value> = Vec::new();
    let selectors = rule
        .get("clusterRoleSelectors")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    for selector in selectors {
        let Ok(selector) = LabelSelector::from_value(selector) else {
            continue;
        };
        for role in &sorted {
            if role["metadata"]["name"].as_str().unwrap_or("") == own_name
                || !selector.matches_value(role["metadata"].get("labels"))
            {
                continue;
            }
            let role_rules = role
                .get("rules")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default();
            for candidate in role_rules {
                if !rules.iter().any(|kept| same_rule(kept, candidate)) {
                    rules.push(candidate.clone());
                }
            }
        }
    }
    Some(rules)
}

/// Rule equality as upstream's semantic comparison sees it: a missing,
/// `null` or empty list are all the same empty list.
fn same_rule(a: &Value, b: &Value) -> bool {
    const LISTS: [&str; 5] = [
        "verbs",
        "apiGroups",
        "resources",
        "resourceNames",
        "nonResourceURLs",
    ];
    LISTS.iter().all(|key| list(a, key) == list(b, key))
}

fn list<'a>(rule: &'a Value, key: &str) -> &'a [Value] {
    rule.get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::rbac::bootstrap::cluster_roles;

    fn named<'a>(roles: &'a [Value], name: &str) -> &'a Value {
        roles
            .iter()
            .find(|r| r["metadata"]["name"] == name)
            .unwrap()
    }

    fn role(name: &str, labels: Value, rules: Value) -> Value {
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": { "name": name, "labels": labels },
            "rules": rules,
        })
    }

    /// Aggregates the bootstrap roles bottom-up, as the controller converges.
    fn converged() -> Vec<Value> {
        let mut roles = cluster_roles();
        for name in ["view", "edit", "admin"] {
            let index = roles
                .iter()
                .position(|r| r["metadata"]["name"] == name)
                .unwrap();
            let rules = aggregate(&roles[index], &roles).unwrap();
            roles[index]["rules"] = Value::Array(rules);
        }
        roles
    }

    #[test]
    fn roles_without_aggregation_rule_keep_their_rules() {
        let roles = cluster_roles();
        assert_eq!(aggregate(named(&roles, "cluster-admin"), &roles), None);
        assert_eq!(aggregate(named(&roles, "system:node"), &roles), None);
    }

    #[test]
    fn view_gets_exactly_aggregate_to_view() {
        let roles = converged();
        assert_eq!(
            named(&roles, "view")["rules"],
            named(&roles, "system:aggregate-to-view")["rules"]
        );
    }

    #[test]
    fn edit_aggregates_aggregate_to_edit_then_view() {
        let roles = converged();
        let edit = named(&roles, "edit")["rules"].as_array().unwrap().clone();
        let from_edit = named(&roles, "system:aggregate-to-edit")["rules"]
            .as_array()
            .unwrap()
            .clone();
        let from_view = named(&roles, "view")["rules"].as_array().unwrap().clone();
        // Sorted by name: system:aggregate-to-edit < view.
        assert_eq!(edit[..from_edit.len()], from_edit[..]);
        assert_eq!(edit[from_edit.len()..], from_view[..]);
    }

    #[test]
    fn admin_includes_edit_and_its_own_source() {
        let roles = converged();
        let admin = named(&roles, "admin")["rules"].as_array().unwrap().clone();
        for source in ["edit", "system:aggregate-to-admin"] {
            for rule in named(&roles, source)["rules"].as_array().unwrap() {
                assert!(admin.contains(rule), "{source}: {rule}");
            }
        }
    }

    #[test]
    fn selectors_rules_are_deduplicated_and_ordered() {
        let get_pods = json!({ "verbs": ["get"], "apiGroups": [""], "resources": ["pods"] });
        let list_pods = json!({ "verbs": ["list"], "apiGroups": [""], "resources": ["pods"] });
        let urls = json!({ "verbs": ["get"], "nonResourceURLs": ["/x"] });
        let url_with_empty_lists = json!({
            "verbs": ["get"], "nonResourceURLs": ["/x"], "apiGroups": [], "resources": null,
        });
        let target = json!({
            "metadata": { "name": "target", "labels": { "pick": "a" } },
            "aggregationRule": { "clusterRoleSelectors": [
                { "matchLabels": { "pick": "a" } },
                { "matchExpressions": [{ "key": "tier", "operator": "In", "values": ["x"] }] },
            ]},
        });
        let all = vec![
            role("zeta", json!({ "pick": "a" }), json!([list_pods, get_pods])),
            role("alpha", json!({ "pick": "a" }), json!([get_pods, urls])),
            role(
                "beta",
                json!({ "tier": "x" }),
                json!([url_with_empty_lists, list_pods]),
            ),
            role("other", json!({ "pick": "b" }), json!([{ "verbs": ["*"] }])),
            target.clone(),
        ];
        assert_eq!(
            aggregate(&target, &all).unwrap(),
            vec![get_pods, urls, list_pods]
        );
    }

    #[test]
    fn edge_selectors() {
        let rule = json!({ "verbs": ["get"], "apiGroups": [""], "resources": ["pods"] });
        let all = vec![
            role("a", json!({}), json!([rule])),
            role("b", Value::Null, json!(null)),
        ];
        let cases = [
            // An empty selector matches every role.
            (json!([{}]), vec![rule.clone()]),
            // No selectors, or one that does not parse: nothing.
            (json!([]), vec![]),
            (
                json!([{ "matchExpressions": [{ "key": "k", "operator": "Bogus" }] }]),
                vec![],
            ),
        ];
        for (selectors, want) in cases {
            let target = json!({
                "metadata": { "name": "t" },
                "aggregationRule": { "clusterRoleSelectors": selectors },
            });
            assert_eq!(aggregate(&target, &all).unwrap(), want, "{selectors}");
        }
    }
}
