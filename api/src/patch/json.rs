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
    // Applied one by one on a copy so that `test` can follow kube-apiserver's rules
    // (see [`test_operation`]) while the object stays untouched when any operation fails.
    let mut working = target.clone();
    for (index, operation) in operations.iter().enumerate() {
        let applied = match operation {
            PatchOperation::Test(test) => test_operation(&working, test.path.as_str(), &test.value),
            other => ::json_patch::patch(&mut working, std::slice::from_ref(other))
                .map_err(|error| error.kind.to_string()),
        };
        applied.map_err(|reason| PatchError::JsonPatchFailed {
            index,
            op: operation_name(operation).to_owned(),
            path: operation_path(operation).to_owned(),
            reason,
        })?;
    }
    *target = working;
    Ok(())
}

/// RFC 6902 `test` as kube-apiserver's JSON patch library runs it: an absent member of an
/// existing object equals `null` (kube-rs's finalizer helper tests `/metadata/finalizers`
/// against `null` before adding the first one), and the failure messages are upstream's.
fn test_operation(doc: &Value, path: &str, expected: &Value) -> Result<(), String> {
    let failed = || format!("testing value {path} failed: test failed");
    let actual = match path.rsplit_once('/') {
        None => Some(doc),
        Some((parent, key)) => {
            let key = key.replace("~1", "/").replace("~0", "~");
            match doc.pointer(parent) {
                Some(Value::Object(members)) => members.get(&key),
                Some(Value::Array(items)) => match key.parse::<usize>() {
                    Ok(position) if position < items.len() => items.get(position),
                    _ => {
                        return Err(format!(
                        "error in test for path: '{path}': unable to access invalid index: {key}"
                    ))
                    }
                },
                _ => {
                    return Err(format!(
                        "test operation does not apply: is missing path: {path}"
                    ))
                }
            }
        }
    };
    match actual {
        Some(actual) if actual == expected => Ok(()),
        None if expected.is_null() => Ok(()),
        _ => Err(failed()),
    }
}

/// The `path` of an operation, as the client wrote it.
fn operation_path(operation: &PatchOperation) -> &str {
    match operation {
        PatchOperation::Add(op) => op.path.as_str(),
        PatchOperation::Remove(op) => op.path.as_str(),
        PatchOperation::Replace(op) => op.path.as_str(),
        PatchOperation::Move(op) => op.path.as_str(),
        PatchOperation::Copy(op) => op.path.as_str(),
        PatchOperation::Test(op) => op.path.as_str(),
    }
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

    #[test]
    fn test_of_an_absent_member_against_null_passes_as_upstream() {
        let mut target = json!({"metadata": {"name": "web"}});
        json_patch(
            &mut target,
            &json!([
                {"op": "test", "path": "/metadata/finalizers", "value": null},
                {"op": "add", "path": "/metadata/finalizers", "value": ["example.com/hold"]}
            ]),
        )
        .unwrap();
        assert_eq!(
            target["metadata"]["finalizers"],
            json!(["example.com/hold"])
        );
    }

    #[test]
    fn failed_tests_use_upstream_messages_and_change_nothing() {
        let original = json!({"metadata": {"name": "web", "finalizers": ["a"]}, "list": [1]});
        let cases = [
            (
                json!({"op": "test", "path": "/metadata/finalizers", "value": null}),
                "testing value /metadata/finalizers failed: test failed",
            ),
            (
                json!({"op": "test", "path": "/metadata/labels", "value": {"a": "b"}}),
                "testing value /metadata/labels failed: test failed",
            ),
            (
                json!({"op": "test", "path": "/metadata/uid", "value": "db"}),
                "testing value /metadata/uid failed: test failed",
            ),
            (
                json!({"op": "test", "path": "/spec/replicas", "value": null}),
                "test operation does not apply: is missing path: /spec/replicas",
            ),
            (
                json!({"op": "test", "path": "/list/3", "value": null}),
                "error in test for path: '/list/3': unable to access invalid index: 3",
            ),
            (
                json!({"op": "test", "path": "", "value": {}}),
                "testing value  failed: test failed",
            ),
        ];
        for (test, message) in cases {
            let mut target = original.clone();
            let ops = json!([{"op": "replace", "path": "/metadata/name", "value": "x"}, test]);
            let error = json_patch(&mut target, &ops).unwrap_err();
            assert_eq!(target, original, "the first operation is undone");
            assert!(error.to_string().ends_with(message), "{error}");
        }
    }

    #[test]
    fn tests_that_match_pass_including_escaped_keys_and_the_root() {
        let mut target = json!({"metadata": {"annotations": {"a/b~c": "x"}}, "n": null});
        let whole = target.clone();
        json_patch(
            &mut target,
            &json!([
                {"op": "test", "path": "/metadata/annotations/a~1b~0c", "value": "x"},
                {"op": "test", "path": "/n", "value": null},
                {"op": "test", "path": "", "value": whole}
            ]),
        )
        .unwrap();
    }
}
