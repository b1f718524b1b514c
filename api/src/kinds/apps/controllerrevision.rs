//! ControllerRevisions: the snapshots DaemonSets and StatefulSets keep of their
//! templates. `data` is required and immutable, `revision` non-negative; the
//! `kubectl get controllerrevisions` columns name the owning controller.

use serde_json::{json, Value};

use super::workload::non_negative_fields;
use crate::field::FieldCause;
use crate::kinds::{immutable_fields, KindRules};
use crate::table::{col, Column, AGE, NAME};

/// The rules of `apps/v1` ControllerRevision.
#[derive(Debug, Clone, Copy, Default)]
pub struct ControllerRevision;

impl KindRules for ControllerRevision {
    fn validate(&self, obj: &Value) -> Vec<FieldCause> {
        let mut causes = Vec::new();
        if obj.get("data").is_none_or(Value::is_null) {
            causes.push(FieldCause::required("data", "data is mandatory"));
        }
        causes.extend(non_negative_fields(obj, &["revision"]));
        causes
    }

    fn validate_update(&self, old: &Value, new: &Value) -> Vec<FieldCause> {
        immutable_fields(old, new, &["/data"])
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            NAME,
            col("Controller", "string", 0, "Controller of the object"),
            col(
                "Revision",
                "string",
                0,
                "Revision indicates the revision of the state represented by Data.",
            ),
            AGE,
        ]
    }

    fn cells(&self, obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        vec![
            crate::table::name_cell(obj),
            json!(controller_name(obj)),
            json!(obj.get("revision").and_then(Value::as_i64).unwrap_or(0)),
            crate::table::age_cell(obj, now),
        ]
    }
}

/// The owner reference marked as controller, as `kind.group/name` (lower-cased
/// kind, as upstream's `formatResourceName`), `<none>` without one.
fn controller_name(obj: &Value) -> String {
    let controller = obj
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true));
    let Some(owner) = controller else {
        return "<none>".to_owned();
    };
    let api_version = owner
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    let group = match api_version.split_once('/') {
        Some((group, _)) => group,
        None => "",
    };
    let kind = owner.get("kind").and_then(Value::as_str).unwrap_or("");
    let name = owner.get("name").and_then(Value::as_str).unwrap_or("");
    match (kind, group) {
        ("", "") => name.to_owned(),
        (kind, "") => format!("{}/{name}", kind.to_lowercase()),
        (kind, group) => format!("{}.{group}/{name}", kind.to_lowercase()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_is_required_and_immutable() {
        let revision = json!({"metadata": {"name": "web-1"}, "revision": 1, "data": {"spec": {}}});
        assert!(ControllerRevision.validate(&revision).is_empty());
        let causes =
            ControllerRevision.validate(&json!({"metadata": {"name": "r"}, "revision": -1}));
        assert_eq!(causes[0].message, "Required value: data is mandatory");
        assert_eq!(causes[1].field, "revision");
        let mut changed = revision.clone();
        changed["data"] = json!({"spec": {"x": 1}});
        assert_eq!(
            ControllerRevision.validate_update(&revision, &changed)[0].field,
            "data"
        );
    }

    #[test]
    fn controller_column() {
        let revision = json!({"metadata": {"name": "web-1", "ownerReferences": [
            {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web", "uid": "u", "controller": true}]},
            "revision": 3, "data": {}});
        let row = ControllerRevision.cells(&revision, jiff::Timestamp::now());
        assert_eq!(row[1], "statefulset.apps/web");
        assert_eq!(row[2], 3);
        let orphan = json!({"metadata": {"name": "x"}, "revision": 1, "data": {}});
        assert_eq!(
            ControllerRevision.cells(&orphan, jiff::Timestamp::now())[1],
            "<none>"
        );
    }
}
