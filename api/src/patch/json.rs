//! JSON merge patch (RFC 7386) and JSON patch (RFC 6902) as the API server applies them, thin
//! wrappers over the `json-patch` crate that turn its errors into [`PatchError`]s naming the
//! failing operation.

use ::json_patch::PatchOperation;
use serde_json::Value;

use super::path::json_type;
use super::PatchError;

/// Applies an RFC 7386 JSON merge patch (`application/merge-patch+json`): maps merge
/// recursively, `null` deletes a key, and anything else (lists included) replaces the value.
pub fn json_merge_patch(target: &mut Value, patch: &Value) {
    ::json_patch::merge(target, patch);
}

/// Applies an RFC 6902 JSON patch (`application/json-patch+json`): `ops` must be a list of
/// operations. Either every operation applies or `target` is left unchanged.
pub fn json_patch(target: &mut Value, ops: &Value) -> Result<(), PatchError> {
    let Value::Array(items) = ops else {
        return Err(PatchError::InvalidJsonPatch {
            reason: format!(
                "the body must be a list of operations, but it is a {}",
                json_type(ops)
            ),
        });
    };
    let operations = items
        .iter()
        .enumerate()
        .map(|(index, item)| {
            serde_json::from_value::<PatchOperation>(item.clone()).map_err(|error| {
                PatchError::InvalidJsonPatch {
                    reason: format!("operation {index} ({item}) is invalid: {error}"),
                }
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    ::json_patch::patch(target, &operations).map_err(|error| PatchError::JsonPatchFailed {
        index: error.operation,
        op: operations
            .get(error.operation)
            .map_or("operation", operation_name)
            .to_owned(),
        path: error.path.to_string(),
        reason: error.kind.to_string(),
    })
}

/// The RFC 6902 name of an operation, as the client wrote it.
fn operation_name(operation: &PatchOperation) -> &'static str {
    match operation {
        PatchOperation::Add(_) => "add",
        PatchOperation::Remove(_) => "remove",
        PatchOperation::Replace(_) => "replace",
        PatchOperation::Move(_) => "move",
        PatchOperation::Copy(_) => "copy",
        PatchOperation::Test(_) => "test",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn merge_patch_merges_maps_deletes_nulls_and_replaces_lists() {
        let mut target = json!({
            "metadata": {"labels": {"app": "web", "tier": "front"}},
            "spec": {"containers": [{"name": "a"}, {"name": "b"}], "replicas": 1}
        });
        json_merge_patch(
            &mut target,
            &json!({
                "metadata": {"labels": {"tier": null, "team": "x"}},
                "spec": {"containers": [{"name": "c"}]}
            }),
        );
        assert_eq!(
            target,
            json!({
                "metadata": {"labels": {"app": "web", "team": "x"}},
                "spec": {"containers": [{"name": "c"}], "replicas": 1}
            })
        );
    }

    #[test]
    fn json_patch_applies_operations_in_order() {
        let mut target = json!({"spec": {"replicas": 1, "paused": true}});
        json_patch(
            &mut target,
            &json!([
                {"op": "test", "path": "/spec/replicas", "value": 1},
                {"op": "replace", "path": "/spec/replicas", "value": 3},
                {"op": "remove", "path": "/spec/paused"},
                {"op": "add", "path": "/metadata", "value": {"labels": {"a": "b"}}}
            ]),
        )
        .unwrap();
        assert_eq!(
            target,
            json!({"spec": {"replicas": 3}, "metadata": {"labels": {"a": "b"}}})
        );
    }

    #[test]
    fn json_patch_failure_names_the_operation_and_leaves_the_object_alone() {
        let original = json!({"spec": {"replicas": 1}});
        let mut target = original.clone();
        let error = json_patch(
            &mut target,
            &json!([
                {"op": "replace", "path": "/spec/replicas", "value": 3},
                {"op": "remove", "path": "/spec/missing"}
            ]),
        )
        .unwrap_err();
        assert_eq!(target, original);
        match &error {
            PatchError::JsonPatchFailed {
                index, op, path, ..
            } => {
                assert_eq!(
                    (*index, op.as_str(), path.as_str()),
                    (1, "remove", "/spec/missing")
                );
            }
            other => panic!("unexpected error {other:?}"),
        }
        assert!(error
            .to_string()
            .contains("operation 1 (remove /spec/missing)"));
    }

    #[test]
    fn json_patch_rejects_bodies_that_are_not_operations() {
        let mut target = json!({});
        let not_a_list = json_patch(&mut target, &json!({"op": "add"})).unwrap_err();
        assert!(
            not_a_list.to_string().contains("must be a list"),
            "{not_a_list}"
        );
        let bad_op =
            json_patch(&mut target, &json!([{"op": "frobnicate", "path": "/a"}])).unwrap_err();
        assert!(bad_op.to_string().contains("operation 0"), "{bad_op}");
    }
}
