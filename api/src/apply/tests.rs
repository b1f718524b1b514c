//! Server-side apply end to end on Deployments: ownership on apply, pruning, sharing,
//! conflicts and their messages, force, map-list merges and client-side apply interplay. The
//! helpers here serve the update tests in `tests/updates.rs` too.

mod updates;

use std::sync::OnceLock;

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::Deployment;
use serde_json::{json, Value};

use super::*;

fn schema() -> &'static BuiltinApplySchema {
    static SCHEMA: OnceLock<BuiltinApplySchema> = OnceLock::new();
    SCHEMA.get_or_init(BuiltinApplySchema::for_kind::<Deployment>)
}

fn at(second: i64) -> Timestamp {
    Timestamp::from_second(1_700_000_000 + second).unwrap()
}

fn writer(manager: &str) -> Writer<'_> {
    Writer::new(manager, "apps/v1", at(0))
}

/// A Deployment configuration with the given spec.
fn config(spec: Value) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": spec,
    })
}

/// Applies `applied` as `manager` to `live`, reading and writing managed fields in the object.
fn apply_as(
    live: &Value,
    applied: &Value,
    manager: &str,
    force: bool,
) -> Result<Value, ApplyError> {
    let managed = ManagedFields::from_object(live).unwrap();
    apply(live, &managed, applied, &writer(manager), force, schema()).map(|(object, _)| object)
}

fn managed(object: &Value) -> ManagedFields {
    ManagedFields::from_object(object).unwrap()
}

fn fields_of(object: &Value, manager: &str, operation: Operation) -> Value {
    managed(object)
        .get(manager, operation)
        .unwrap_or_else(|| panic!("no {operation:?} entry for {manager}"))
        .fields
        .to_fields_v1()
}

fn owners(object: &Value, path: &[&str]) -> Vec<String> {
    let mut owners: Vec<String> = managed(object)
        .owners(&Path::fields(path.iter().copied()))
        .into_iter()
        .map(|entry| entry.manager.clone())
        .collect();
    owners.sort();
    owners
}

fn without_managed(object: &Value) -> Value {
    let mut object = object.clone();
    ManagedFields::default().write_into(&mut object);
    object
}

#[test]
fn apply_creates_ownership_of_exactly_the_applied_fields() {
    let applied = config(json!({
        "replicas": 2,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "nginx:1.27", "ports": [{"containerPort": 80}]}]}
        }
    }));
    let (object, managed) = apply(
        &json!({}),
        &ManagedFields::default(),
        &applied,
        &writer("kubectl"),
        false,
        schema(),
    )
    .unwrap();
    assert_eq!(without_managed(&object), applied);
    assert_eq!(managed.entries().len(), 1, "{managed:?}");
    let entry = &managed.entries()[0];
    assert_eq!(
        (
            entry.manager.as_str(),
            entry.operation,
            entry.api_version.as_str(),
            entry.time
        ),
        ("kubectl", Operation::Apply, "apps/v1", Some(at(0)))
    );
    assert_eq!(
        entry.fields.to_fields_v1(),
        json!({"f:spec": {
            "f:replicas": {},
            "f:selector": {},
            "f:template": {
                "f:metadata": {"f:labels": {"f:app": {}}},
                "f:spec": {"f:containers": {"k:{\"name\":\"web\"}": {
                    ".": {},
                    "f:image": {},
                    "f:name": {},
                    "f:ports": {"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {
                        ".": {},
                        "f:containerPort": {}
                    }}
                }}}
            }
        }})
    );
    assert_eq!(ManagedFields::from_object(&object).unwrap(), managed);
}

#[test]
fn reapplying_without_a_field_removes_it_unless_another_manager_owns_it() {
    let first = config(json!({"replicas": 2, "paused": false, "minReadySeconds": 5}));
    let second = config(json!({"minReadySeconds": 5}));
    // (description, what the other manager applies first, fields left in spec)
    let cases: [(&str, Option<Value>, Value); 3] = [
        (
            "nobody else owns them: both go",
            None,
            json!({"minReadySeconds": 5}),
        ),
        (
            "another applier shares replicas: it stays",
            Some(config(json!({"replicas": 2}))),
            json!({"replicas": 2, "minReadySeconds": 5}),
        ),
        (
            "another applier owns a different field only: both go",
            Some(config(json!({"minReadySeconds": 5}))),
            json!({"minReadySeconds": 5}),
        ),
    ];
    for (description, other, expected) in cases {
        let mut object = apply_as(&json!({}), &first, "a", false).unwrap();
        if let Some(other) = other {
            object = apply_as(&object, &other, "b", false).unwrap();
        }
        let object = apply_as(&object, &second, "a", false).unwrap();
        assert_eq!(object["spec"], expected, "{description}");
        assert_eq!(
            fields_of(&object, "a", Operation::Apply),
            json!({"f:spec": {"f:minReadySeconds": {}}}),
            "{description}"
        );
    }
}

#[test]
fn two_appliers_setting_the_same_value_share_the_field() {
    let object = apply_as(&json!({}), &config(json!({"replicas": 2})), "a", false).unwrap();
    let object = apply_as(&object, &config(json!({"replicas": 2})), "b", false).unwrap();
    assert_eq!(object["spec"]["replicas"], 2);
    assert_eq!(owners(&object, &["spec", "replicas"]), ["a", "b"]);
}

#[test]
fn conflicts_name_the_owner_and_fields_in_upstream_words() {
    let created = {
        let new = config(json!({
            "replicas": 1,
            "template": {"spec": {"containers": [{"name": "web", "image": "nginx:1.26"}]}}
        }));
        let mut new = new;
        let managed = create(&new, &writer("kubectl-client-side-apply"), schema());
        managed.write_into(&mut new);
        new
    };
    let applied_by_a = apply_as(&json!({}), &config(json!({"replicas": 1})), "a", false).unwrap();
    // (description, live, configuration, message)
    let cases = [
        (
            "one field owned by an updater",
            created.clone(),
            config(json!({"replicas": 3})),
            "Apply failed with 1 conflict: conflict with \"kubectl-client-side-apply\" using apps/v1: .spec.replicas",
        ),
        (
            "one field owned by an applier",
            applied_by_a,
            config(json!({"replicas": 3})),
            "Apply failed with 1 conflict: conflict with \"a\": .spec.replicas",
        ),
        (
            "two fields owned by an updater",
            created,
            config(json!({
                "replicas": 3,
                "template": {"spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}
            })),
            "Apply failed with 2 conflicts: conflicts with \"kubectl-client-side-apply\" using apps/v1:\n\
             - .spec.replicas\n\
             - .spec.template.spec.containers[name=\"web\"].image",
        ),
    ];
    for (description, live, applied, message) in cases {
        let error = apply_as(&live, &applied, "kubectl", false).unwrap_err();
        assert_eq!(error.to_string(), message, "{description}");
        let ApplyError::Conflicts(conflicts) = error else {
            panic!("{description}: not a conflict");
        };
        assert_eq!(
            conflicts.conflicts()[0].field(),
            ".spec.replicas",
            "{description}"
        );
    }
}

#[test]
fn conflicts_with_several_managers_are_grouped_by_manager() {
    let object = apply_as(&json!({}), &config(json!({"replicas": 1})), "b", false).unwrap();
    let object = apply_as(&object, &config(json!({"paused": false})), "a", false).unwrap();
    let error = apply_as(
        &object,
        &config(json!({"replicas": 2, "paused": true})),
        "c",
        false,
    )
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        "Apply failed with 2 conflicts: conflicts with \"a\":\n- .spec.paused\nconflicts with \"b\":\n- .spec.replicas"
    );
    let ApplyError::Conflicts(conflicts) = error else {
        panic!("not a conflict")
    };
    let causes: Vec<(String, String)> = conflicts
        .conflicts()
        .iter()
        .map(|conflict| (conflict.cause_message(), conflict.field()))
        .collect();
    assert_eq!(
        causes,
        [
            ("conflict with \"a\"".to_owned(), ".spec.paused".to_owned()),
            (
                "conflict with \"b\"".to_owned(),
                ".spec.replicas".to_owned()
            ),
        ]
    );
}

#[test]
fn force_moves_ownership_to_the_applier() {
    let object = apply_as(
        &json!({}),
        &config(json!({"replicas": 1, "paused": false})),
        "a",
        false,
    )
    .unwrap();
    let object = apply_as(&object, &config(json!({"replicas": 3})), "b", true).unwrap();
    assert_eq!(object["spec"]["replicas"], 3);
    assert_eq!(owners(&object, &["spec", "replicas"]), ["b"]);
    assert_eq!(owners(&object, &["spec", "paused"]), ["a"]);
    // The loser no longer conflicts with anyone: it re-applies and takes the field back only by
    // force, and re-applying without it leaves the value alone.
    let error = apply_as(
        &object,
        &config(json!({"replicas": 1, "paused": false})),
        "a",
        false,
    )
    .unwrap_err();
    assert!(error.to_string().contains("conflict with \"b\""), "{error}");
    let object = apply_as(&object, &config(json!({"paused": false})), "a", false).unwrap();
    assert_eq!(object["spec"]["replicas"], 3);
}

#[test]
fn map_lists_merge_by_key_and_appliers_own_their_own_items() {
    let containers = |object: &Value| -> Vec<Value> {
        object["spec"]["template"]["spec"]["containers"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    let with_containers =
        |containers: Value| config(json!({"template": {"spec": {"containers": containers}}}));
    let object = apply_as(
        &json!({}),
        &with_containers(json!([{"name": "web", "image": "web:1"}])),
        "app",
        false,
    )
    .unwrap();
    let object = apply_as(
        &object,
        &with_containers(json!([{"name": "proxy", "image": "proxy:1"}])),
        "mesh",
        false,
    )
    .unwrap();
    assert_eq!(
        containers(&object),
        [
            json!({"name": "web", "image": "web:1"}),
            json!({"name": "proxy", "image": "proxy:1"})
        ]
    );
    // Each applier changes its own container without conflict...
    let object = apply_as(
        &object,
        &with_containers(json!([{"name": "web", "image": "web:2", "args": ["--fast"]}])),
        "app",
        false,
    )
    .unwrap();
    let object = apply_as(
        &object,
        &with_containers(json!([{"name": "proxy", "image": "proxy:2"}])),
        "mesh",
        false,
    )
    .unwrap();
    assert_eq!(
        containers(&object),
        [
            json!({"name": "web", "image": "web:2", "args": ["--fast"]}),
            json!({"name": "proxy", "image": "proxy:2"})
        ]
    );
    // ...but not the other's.
    let error = apply_as(
        &object,
        &with_containers(json!([{"name": "proxy", "image": "proxy:3"}])),
        "app",
        false,
    )
    .unwrap_err();
    assert!(error
        .to_string()
        .contains(".spec.template.spec.containers[name=\"proxy\"].image"));
    // An applier that stops applying its container removes it and only it.
    let object = apply_as(&object, &with_containers(json!([])), "mesh", false).unwrap();
    assert_eq!(
        containers(&object),
        [json!({"name": "web", "image": "web:2", "args": ["--fast"]})]
    );
}

#[test]
fn list_types_decide_how_lists_merge() {
    let pod_spec = |spec: Value| config(json!({"template": {"spec": spec}}));
    // (description, first applier's pod spec, second applier's, merged pod spec or conflict)
    let cases: [(&str, Value, Value, Result<Value, &str>); 4] = [
        (
            "ports are keyed by containerPort and protocol",
            json!({"containers": [{"name": "dns", "ports": [{"containerPort": 53}]}]}),
            json!({"containers": [{"name": "dns", "ports": [{"containerPort": 53, "protocol": "UDP"}]}]}),
            Ok(json!({"containers": [{"name": "dns", "ports": [
                {"containerPort": 53},
                {"containerPort": 53, "protocol": "UDP"}
            ]}]})),
        ),
        (
            "env merges by name",
            json!({"containers": [{"name": "web", "env": [{"name": "A", "value": "1"}]}]}),
            json!({"containers": [{"name": "web", "env": [{"name": "B", "value": "2"}]}]}),
            Ok(json!({"containers": [{"name": "web", "env": [
                {"name": "A", "value": "1"},
                {"name": "B", "value": "2"}
            ]}]})),
        ),
        (
            "tolerations are atomic",
            json!({"tolerations": [{"key": "a", "operator": "Exists"}]}),
            json!({"tolerations": [{"key": "b", "operator": "Exists"}]}),
            Err(".spec.template.spec.tolerations"),
        ),
        (
            "args are atomic",
            json!({"containers": [{"name": "web", "args": ["-a"]}]}),
            json!({"containers": [{"name": "web", "args": ["-b"]}]}),
            Err(".spec.template.spec.containers[name=\"web\"].args"),
        ),
    ];
    for (description, first, second, expected) in cases {
        let object = apply_as(&json!({}), &pod_spec(first), "one", false).unwrap();
        let result = apply_as(&object, &pod_spec(second), "two", false);
        match (result, expected) {
            (Ok(object), Ok(expected)) => {
                assert_eq!(
                    object["spec"]["template"]["spec"], expected,
                    "{description}"
                )
            }
            (Err(error), Err(field)) => {
                assert!(error.to_string().ends_with(field), "{description}: {error}")
            }
            (result, expected) => panic!("{description}: got {result:?}, want {expected:?}"),
        }
    }
}

#[test]
fn finalizers_are_a_set_that_appliers_share() {
    let with_finalizers = |finalizers: Value| {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": "web", "finalizers": finalizers}})
    };
    let object = apply_as(
        &json!({}),
        &with_finalizers(json!(["a.io/x"])),
        "one",
        false,
    )
    .unwrap();
    let object = apply_as(
        &object,
        &with_finalizers(json!(["b.io/y", "a.io/x"])),
        "two",
        false,
    )
    .unwrap();
    assert_eq!(
        object["metadata"]["finalizers"],
        json!(["b.io/y", "a.io/x"])
    );
    let object = apply_as(&object, &with_finalizers(json!([])), "two", false).unwrap();
    assert_eq!(object["metadata"]["finalizers"], json!(["a.io/x"]));
    assert_eq!(
        fields_of(&object, "one", Operation::Apply),
        json!({"f:metadata": {"f:finalizers": {"v:\"a.io/x\"": {}}}})
    );
}

#[test]
fn first_apply_to_an_untracked_object_finds_its_fields_owned_by_before_first_apply() {
    let last_applied = config(json!({"replicas": 2}));
    let mut live = last_applied.clone();
    live["metadata"]["annotations"] = json!({
        LAST_APPLIED_ANNOTATION: serde_json::to_string(&last_applied).unwrap()
    });
    live["spec"]["paused"] = json!(false);

    let converted = before_first_apply(&live, &writer("ignored"), schema()).unwrap();
    let entry = converted
        .get(BEFORE_FIRST_APPLY_MANAGER, Operation::Update)
        .unwrap();
    assert_eq!(
        entry.fields.to_fields_v1(),
        json!({
            "f:metadata": {"f:annotations": {".": {}, "f:kubectl.kubernetes.io/last-applied-configuration": {}}},
            "f:spec": {".": {}, "f:paused": {}, "f:replicas": {}}
        })
    );

    // Another manager conflicts with before-first-apply...
    let error = apply_as(&live, &config(json!({"replicas": 3})), "ci", false).unwrap_err();
    assert_eq!(
        error.to_string(),
        "Apply failed with 1 conflict: conflict with \"before-first-apply\" using apps/v1: .spec.replicas"
    );
    // ...but `kubectl apply --server-side` takes over what its last client-side apply set...
    let object = apply_as(&live, &config(json!({"replicas": 3})), "kubectl", false).unwrap();
    assert_eq!(object["spec"]["replicas"], 3);
    assert_eq!(owners(&object, &["spec", "replicas"]), ["kubectl"]);
    // ...and records the configuration it applied for the next client-side apply.
    let annotation = object["metadata"]["annotations"][LAST_APPLIED_ANNOTATION]
        .as_str()
        .unwrap();
    assert_eq!(
        annotation,
        "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"name\":\"web\",\"namespace\":\"default\"},\"spec\":{\"replicas\":3}}\n"
    );
    // A field the annotation does not cover still conflicts.
    let error = apply_as(&live, &config(json!({"paused": true})), "kubectl", false).unwrap_err();
    assert!(error.to_string().ends_with(".spec.paused"), "{error}");
}

#[test]
fn reset_fields_are_never_owned_through_the_endpoint() {
    let status_reset = FieldSet::from_paths([Path::fields(["status"])]);
    let main = writer("kubectl").with_reset_fields(&status_reset);
    let mut applied = config(json!({"replicas": 1}));
    applied["status"] = json!({});
    let (_, managed) = apply(
        &json!({}),
        &ManagedFields::default(),
        &applied,
        &main,
        false,
        schema(),
    )
    .unwrap();
    assert_eq!(
        managed.entries()[0].fields.to_fields_v1(),
        json!({"f:spec": {"f:replicas": {}}})
    );
}

#[test]
fn invalid_configurations_are_rejected() {
    let cases = [
        (
            {
                let mut applied = config(json!({}));
                applied["metadata"]["managedFields"] = json!([]);
                applied
            },
            "metadata.managedFields must be nil",
        ),
        (
            config(json!({"template": {"spec": {"containers": [{"name": "a"}, {"name": "a"}]}}})),
            ".spec.template.spec.containers: duplicate entries for key [name=\"a\"]",
        ),
        (
            json!({"metadata": {"finalizers": [{"a": 1}]}}),
            ".metadata.finalizers: element 0: associative list without keys has an element that's a map type",
        ),
    ];
    for (applied, message) in cases {
        let error = apply_as(&json!({}), &applied, "kubectl", false).unwrap_err();
        assert!(error.to_string().ends_with(message), "{error}");
    }
}

#[test]
fn a_noop_apply_keeps_the_previous_time() {
    let applied = config(json!({"replicas": 1}));
    let object = apply_as(&json!({}), &applied, "kubectl", false).unwrap();
    let later = Writer::new("kubectl", "apps/v1", at(300));
    let (_, again) = apply(
        &object,
        &managed(&object),
        &applied,
        &later,
        false,
        schema(),
    )
    .unwrap();
    assert_eq!(
        again.get("kubectl", Operation::Apply).unwrap().time,
        Some(at(0))
    );
    let (_, changed) = apply(
        &object,
        &managed(&object),
        &config(json!({"replicas": 2})),
        &later,
        false,
        schema(),
    )
    .unwrap();
    assert_eq!(
        changed.get("kubectl", Operation::Apply).unwrap().time,
        Some(at(300))
    );
}

#[test]
fn custom_kinds_without_a_schema_use_deduced_types() {
    let object = json!({
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w"},
        "spec": {"size": 3, "tags": ["a", "b"], "nested": {"x": 1}}
    });
    let fields = FieldSet::from_object(&object, &DeducedSchema).unwrap();
    assert_eq!(
        fields.to_fields_v1(),
        json!({
            "f:apiVersion": {},
            "f:kind": {},
            "f:metadata": {".": {}, "f:name": {}},
            "f:spec": {".": {}, "f:nested": {".": {}, "f:x": {}}, "f:size": {}, "f:tags": {}}
        })
    );
    let (_, managed) = apply(
        &json!({}),
        &ManagedFields::default(),
        &object,
        &Writer::new("kubectl", "example.com/v1", at(0)),
        false,
        &DeducedSchema,
    )
    .unwrap();
    assert_eq!(
        managed.entries()[0].fields.to_fields_v1(),
        json!({"f:spec": {".": {}, "f:nested": {".": {}, "f:x": {}}, "f:size": {}, "f:tags": {}}})
    );
}

#[test]
fn service_ports_are_keyed_by_port_and_protocol_and_the_selector_is_atomic() {
    let schema = BuiltinApplySchema::for_kind::<k8s_openapi::api::core::v1::Service>();
    let applied = json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web"},
        "spec": {"ports": [{"port": 80, "targetPort": 8080}], "selector": {"app": "web"}}
    });
    let fields = FieldSet::from_object(&applied, &schema).unwrap();
    assert_eq!(
        fields.to_fields_v1()["f:spec"],
        json!({
            "f:ports": {"k:{\"port\":80,\"protocol\":\"TCP\"}": {".": {}, "f:port": {}, "f:targetPort": {}}},
            "f:selector": {}
        })
    );
}

#[test]
fn a_null_in_a_configuration_owns_the_field_and_leaves_it_unset() {
    let object = apply_as(
        &json!({}),
        &config(json!({"replicas": null, "paused": true})),
        "a",
        false,
    )
    .unwrap();
    assert_eq!(object["spec"], json!({"paused": true}));
    assert_eq!(
        fields_of(&object, "a", Operation::Apply),
        json!({"f:spec": {"f:paused": {}, "f:replicas": {}}})
    );
}
