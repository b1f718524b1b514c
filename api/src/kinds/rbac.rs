//! The `rbac.authorization.k8s.io` group's kinds: thin wrappers that hang the
//! pure rules of [`crate::rbac::validation`] on the catalog, plus the tables
//! upstream prints for roles (CREATED AT) and bindings (ROLE, subjects).

pub mod clusterrole;
pub mod clusterrolebinding;
pub mod role;
pub mod rolebinding;

use serde_json::{json, Value};

use crate::field::FieldCause;
use crate::table::print::str_at;
use crate::table::{col, Column, AGE, NAME};

/// The CREATED AT column of roles.
const CREATED_AT: Column = col(
    "Created At",
    "date",
    0,
    "CreationTimestamp is a timestamp representing the server time when this object was created.",
);

/// The causes of an update check that its create check does not report
/// (the server runs `validate` on updates too, so only the extra ones count).
pub(crate) fn update_only(update: Vec<FieldCause>, create: &[FieldCause]) -> Vec<FieldCause> {
    update.into_iter().filter(|c| !create.contains(c)).collect()
}

/// NAME and CREATED AT, as upstream prints Roles and ClusterRoles.
pub(crate) fn role_columns() -> Vec<Column> {
    vec![NAME, CREATED_AT]
}

/// The cells of [`role_columns`]: the creation time in RFC 3339 (UTC).
pub(crate) fn role_cells(obj: &Value) -> Vec<Value> {
    let created = str_at(obj, &["metadata", "creationTimestamp"])
        .and_then(|t| t.parse::<jiff::Timestamp>().ok())
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default();
    vec![crate::table::name_cell(obj), json!(created)]
}

/// NAME, ROLE, AGE, and with `-o wide` USERS, GROUPS, SERVICEACCOUNTS.
pub(crate) fn binding_columns() -> Vec<Column> {
    vec![
        NAME,
        col(
            "Role",
            "string",
            0,
            "Role is the role referenced by the binding.",
        ),
        AGE,
        col("Users", "string", 1, "Users in the binding."),
        col("Groups", "string", 1, "Groups in the binding."),
        col(
            "ServiceAccounts",
            "string",
            1,
            "ServiceAccounts in the binding.",
        ),
    ]
}

/// The cells of [`binding_columns`].
pub(crate) fn binding_cells(obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
    let role = format!(
        "{}/{}",
        str_at(obj, &["roleRef", "kind"]).unwrap_or_default(),
        str_at(obj, &["roleRef", "name"]).unwrap_or_default()
    );
    let (users, groups, accounts) = subjects_by_kind(obj);
    vec![
        crate::table::name_cell(obj),
        json!(role),
        crate::table::age_cell(obj, now),
        json!(users.join(", ")),
        json!(groups.join(", ")),
        json!(accounts.join(", ")),
    ]
}

/// Users, groups and service accounts (`namespace:name`) a binding names.
fn subjects_by_kind(obj: &Value) -> (Vec<String>, Vec<String>, Vec<String>) {
    let (mut users, mut groups, mut accounts) = (Vec::new(), Vec::new(), Vec::new());
    let subjects = obj.get("subjects").and_then(Value::as_array);
    for subject in subjects.into_iter().flatten() {
        let name = str_at(subject, &["name"]).unwrap_or_default().to_owned();
        match str_at(subject, &["kind"]).unwrap_or_default() {
            "User" => users.push(name),
            "Group" => groups.push(name),
            "ServiceAccount" => {
                let ns = str_at(subject, &["namespace"]).unwrap_or_default();
                accounts.push(format!("{ns}:{name}"));
            }
            _ => {}
        }
    }
    (users, groups, accounts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_print_as_upstream() {
        let now: jiff::Timestamp = "2024-01-01T01:00:00Z".parse().unwrap();
        let cases = [
            (
                json!({"metadata": {"name": "b", "creationTimestamp": "2024-01-01T00:00:00Z"},
                       "roleRef": {"kind": "ClusterRole", "name": "view"},
                       "subjects": [{"kind": "User", "name": "jane"},
                                    {"kind": "Group", "name": "devs"},
                                    {"kind": "ServiceAccount", "name": "default", "namespace": "ns"},
                                    {"kind": "User", "name": "joe"}]}),
                vec![
                    json!("b"),
                    json!("ClusterRole/view"),
                    json!("60m"),
                    json!("jane, joe"),
                    json!("devs"),
                    json!("ns:default"),
                ],
            ),
            (
                json!({"metadata": {"name": "c", "creationTimestamp": "2024-01-01T00:59:00Z"},
                       "roleRef": {"kind": "Role", "name": "r"}}),
                vec![
                    json!("c"),
                    json!("Role/r"),
                    json!("60s"),
                    json!(""),
                    json!(""),
                    json!(""),
                ],
            ),
        ];
        for (obj, cells) in cases {
            assert_eq!(binding_cells(&obj, now), cells);
            assert_eq!(binding_columns().len(), cells.len());
        }
        let role = json!({"metadata": {"name": "r", "creationTimestamp": "2024-01-01T00:00:00Z"}});
        assert_eq!(
            role_cells(&role),
            vec![json!("r"), json!("2024-01-01T00:00:00Z")]
        );
        assert_eq!(role_columns()[1].name, "Created At");
    }
}
