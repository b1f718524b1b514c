//! Ownership on create, update and non-apply patch: changed fields move to the writer, removed
//! fields leave everyone, identity metadata is never recorded, a request may reset managed
//! fields, and old update entries fold into `ancient-changes`.

use serde_json::{json, Value};

use super::*;

#[test]
fn updates_move_changed_fields_to_the_updater() {
    let object = apply_as(
        &json!({}),
        &config(json!({"replicas": 2, "paused": false})),
        "kubectl",
        false,
    )
    .unwrap();
    let mut scaled = without_managed(&object);
    scaled["spec"]["replicas"] = json!(5);
    scaled["metadata"]["resourceVersion"] = json!("42");
    let hpa = Writer::new("horizontal-pod-autoscaler", "apps/v1", at(60));
    let after = update(&object, &scaled, &managed(&object), &hpa, schema());
    let entry = after
        .get("horizontal-pod-autoscaler", Operation::Update)
        .unwrap();
    assert_eq!(
        entry.fields.to_fields_v1(),
        json!({"f:spec": {"f:replicas": {}}})
    );
    assert_eq!(entry.time, Some(at(60)));
    assert_eq!(
        after
            .get("kubectl", Operation::Apply)
            .unwrap()
            .fields
            .to_fields_v1(),
        json!({"f:spec": {"f:paused": {}}})
    );
    // A write that changes nothing but identity metadata records nothing.
    let mut touched = without_managed(&object);
    touched["metadata"]["resourceVersion"] = json!("43");
    let unchanged = update(&object, &touched, &managed(&object), &hpa, schema());
    assert_eq!(unchanged, managed(&object));
    // The applier then conflicts with the updater, naming its version.
    let mut stored = scaled;
    after.write_into(&mut stored);
    let error = apply_as(
        &stored,
        &config(json!({"replicas": 2, "paused": false})),
        "kubectl",
        false,
    )
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        "Apply failed with 1 conflict: conflict with \"horizontal-pod-autoscaler\" using apps/v1: .spec.replicas"
    );
}

#[test]
fn create_records_new_maps_whole_and_removed_fields_leave_every_owner() {
    let new = config(json!({"replicas": 1, "template": {"metadata": {"labels": {"app": "web"}}}}));
    let managed = create(&new, &writer("kubectl-create"), schema());
    assert_eq!(
        managed
            .get("kubectl-create", Operation::Update)
            .unwrap()
            .fields
            .to_fields_v1(),
        json!({"f:spec": {
            ".": {},
            "f:replicas": {},
            "f:template": {".": {}, "f:metadata": {".": {}, "f:labels": {".": {}, "f:app": {}}}}
        }})
    );
    let mut edited = new.clone();
    edited["spec"].as_object_mut().unwrap().remove("template");
    let after = update(&new, &edited, &managed, &writer("kubectl-edit"), schema());
    assert_eq!(after.get("kubectl-edit", Operation::Update), None);
    assert_eq!(
        after
            .get("kubectl-create", Operation::Update)
            .unwrap()
            .fields
            .to_fields_v1(),
        json!({"f:spec": {".": {}, "f:replicas": {}}})
    );
}

#[test]
fn update_entries_beyond_the_cap_fold_into_ancient_changes() {
    let mut object = config(json!({}));
    let mut managed = ManagedFields::default();
    for index in 0..12_i64 {
        let mut new = object.clone();
        new["metadata"]["labels"][format!("l{index}")] = json!("x");
        let name = format!("writer-{index:02}");
        let writer = Writer::new(&name, "apps/v1", at(index));
        managed = update(&object, &new, &managed, &writer, schema());
        object = new;
    }
    let managers: Vec<&str> = managed
        .entries()
        .iter()
        .map(|entry| entry.manager.as_str())
        .collect();
    assert_eq!(managed.entries().len(), MAX_UPDATE_MANAGERS, "{managers:?}");
    assert!(managers.contains(&ANCIENT_CHANGES_MANAGER), "{managers:?}");
    assert!(!managers.contains(&"writer-00"), "{managers:?}");
    assert!(managers.contains(&"writer-11"), "{managers:?}");
}

#[test]
fn updates_start_from_the_managed_fields_the_request_asks_for() {
    let live = {
        let mut live = config(json!({"replicas": 1}));
        create(&live, &writer("creator"), schema()).write_into(&mut live);
        live
    };
    let requested = json!([{"manager": "other", "operation": "Update", "apiVersion": "apps/v1",
                            "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:paused": {}}}}]);
    let with = |fields: Option<Value>| {
        let mut new = without_managed(&live);
        if let Some(fields) = fields {
            new["metadata"]["managedFields"] = fields;
        }
        new
    };
    let cases = [
        ("absent: the live ones", with(None), vec!["creator"]),
        ("empty list: reset", with(Some(json!([]))), vec![]),
        ("one empty entry: reset", with(Some(json!([{}]))), vec![]),
        ("given: the request's", with(Some(requested)), vec!["other"]),
        (
            "malformed: the live ones",
            with(Some(json!([{"operation": "x"}]))),
            vec!["creator"],
        ),
    ];
    for (description, new, expected) in cases {
        let managers: Vec<String> = ManagedFields::for_update(&live, &new)
            .entries()
            .iter()
            .map(|entry| entry.manager.clone())
            .collect();
        assert_eq!(managers, expected, "{description}");
    }
}

#[test]
fn an_update_to_an_object_that_does_not_fit_its_schema_records_no_owners() {
    let old = config(json!({"replicas": 1}));
    let bad = config(json!({"template": {"spec": {"containers": [7]}}}));
    let managed = create(&old, &writer("creator"), schema());
    assert!(!managed.is_empty());
    assert!(update(&old, &bad, &managed, &writer("editor"), schema()).is_empty());
}

#[test]
fn writers_without_a_manager_are_named_after_their_user_agent() {
    let cases = [
        ("kubectl/v1.33.0 (linux/amd64) kubernetes/abc", "kubectl"),
        ("kube-controller-manager/v1.33.0", "kube-controller-manager"),
        ("curl", "curl"),
        ("bad\u{7}name/1", "badname"),
        ("", ""),
    ];
    for (user_agent, manager) in cases {
        assert_eq!(
            manager_from_user_agent(user_agent),
            manager,
            "{user_agent:?}"
        );
    }
    assert_eq!(
        manager_from_user_agent(&"x".repeat(200)).len(),
        FIELD_MANAGER_MAX_LENGTH
    );
}

#[test]
fn managed_fields_in_either_version_are_not_fields_anyone_changes() {
    let object = apply_as(
        &json!({}),
        &config(json!({"replicas": 2})),
        "kubectl",
        false,
    )
    .unwrap();
    // The new version carries other managed fields (a client echoing an old read) and
    // changes one field: only that field moves.
    let mut scaled = object.clone();
    scaled["spec"]["replicas"] = json!(3);
    scaled["metadata"]["managedFields"] =
        json!([{"manager": "someone", "operation": "Update", "fieldsV1": {"f:spec": {}}}]);
    let hpa = Writer::new("horizontal-pod-autoscaler", "apps/v1", at(60));
    let after = update(&object, &scaled, &managed(&object), &hpa, schema());
    assert_eq!(
        after
            .get("horizontal-pod-autoscaler", Operation::Update)
            .unwrap()
            .fields
            .to_fields_v1(),
        json!({"f:spec": {"f:replicas": {}}})
    );
    // The same object with different managed fields only changes nothing.
    let mut echoed = object.clone();
    echoed["metadata"]["managedFields"] = json!([]);
    assert_eq!(
        update(&object, &echoed, &managed(&object), &hpa, schema()),
        managed(&object)
    );
}
