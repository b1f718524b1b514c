//! Role-based access control, the pure part: the default roles and bindings
//! an API server creates ([`bootstrap`]), ClusterRole aggregation
//! ([`aggregation`]), answering "may this user do that" and "what may this
//! user do" from roles and bindings ([`evaluate`]), refusing roles that
//! grant more than their writer holds ([`escalation`]), bringing stored
//! defaults up to date at start ([`reconciliation`]), and create/update
//! validation of the four RBAC kinds ([`validation`]). Objects are plain
//! `serde_json::Value`s as stored, so the API server can call these on what it
//! reads without converting.

pub mod aggregation;
pub mod bootstrap;
pub mod escalation;
pub mod evaluate;
pub mod reconciliation;
pub mod validation;

use serde_json::Value;

/// The RBAC API group, which `roleRef` and User/Group subjects name.
pub const GROUP: &str = "rbac.authorization.k8s.io";

/// The strings of a list field (`verbs`, `apiGroups`, …); absent, `null` or
/// non-string entries count as nothing, as in upstream's typed structs.
pub(crate) fn strings<'a>(object: &'a Value, key: &str) -> Vec<&'a str> {
    object
        .get(key)
        .and_then(Value::as_array)
        .map(|items| items.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// A string field, `""` when absent, as Go's zero value.
pub(crate) fn string<'a>(object: &'a Value, key: &str) -> &'a str {
    object.get(key).and_then(Value::as_str).unwrap_or("")
}
