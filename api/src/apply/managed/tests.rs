//! The `metadata.managedFields` encoding: round trips in upstream's order and upstream's
//! reasons for rejecting malformed entries.

use serde_json::json;

use super::*;

#[test]
fn managed_fields_round_trip_through_json_in_upstream_order() {
    let encoded = json!([
        {
            "manager": "kubectl",
            "operation": "Apply",
            "apiVersion": "apps/v1",
            "time": "2024-05-01T10:00:00Z",
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:spec": {"f:replicas": {}}}
        },
        {
            "manager": "kube-controller-manager",
            "operation": "Update",
            "apiVersion": "apps/v1",
            "time": "2024-05-01T10:00:05Z",
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:status": {"f:replicas": {}}},
            "subresource": "status"
        },
        {
            "manager": "kubectl-client-side-apply",
            "operation": "Update",
            "apiVersion": "apps/v1",
            "time": "2024-05-01T10:00:07Z",
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:metadata": {"f:annotations": {".": {}, "f:kubectl.kubernetes.io/last-applied-configuration": {}}}}
        }
    ]);
    let decoded = ManagedFields::from_value(&encoded).unwrap();
    assert_eq!(decoded.to_value(), encoded);
    let mut shuffled: Vec<ManagedFieldsEntry> = decoded.entries().to_vec();
    shuffled.reverse();
    assert_eq!(ManagedFields::new(shuffled).to_value(), encoded);
}

#[test]
fn malformed_managed_fields_are_rejected_with_upstream_reasons() {
    let cases = [
        (json!({}), "must be a list"),
        (
            json!([{"manager": "m", "operation": "Patch", "apiVersion": "v1", "fieldsType": "FieldsV1"}]),
            "operation must be `Apply` or `Update`",
        ),
        (
            json!([{"manager": "m", "operation": "Apply", "fieldsType": "FieldsV1"}]),
            "apiVersion must not be empty",
        ),
        (
            json!([{"manager": "m", "operation": "Apply", "apiVersion": "v1"}]),
            "missing fieldsType in managed fields entry 0",
        ),
        (
            json!([{"manager": "m", "operation": "Apply", "apiVersion": "v1", "fieldsType": "FieldsV2"}]),
            "invalid fieldsType \"FieldsV2\"",
        ),
        (
            json!([{"manager": "m", "operation": "Apply", "apiVersion": "v1", "fieldsType": "FieldsV1", "fieldsV1": {"x": {}}}]),
            "invalid fieldsV1",
        ),
    ];
    for (value, reason) in cases {
        let error = ManagedFields::from_value(&value).unwrap_err();
        assert!(error.to_string().contains(reason), "{error}");
    }
}
