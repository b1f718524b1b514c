//! The built-in schema on real k8s-openapi schemas: strategies found through `$ref`s, real
//! Deployment patches as kubectl sends them, and a check that every table entry names a
//! property that exists with the right shape.

use std::sync::Arc;

use k8s_openapi::api::apps::v1::Deployment;
use serde_json::{json, Value};

use super::table::{Merge, ENTRIES};
use super::{BuiltinSchema, BuiltinSchemaError};
use crate::patch::{strategic_merge_patch, MergeStrategy, PatchSchema, PatchStrategy};

fn deployment() -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "finalizers": ["example.com/keep"]},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {
                            "name": "app",
                            "image": "registry.example/app:1.0",
                            "args": ["--port=8080"],
                            "env": [
                                {"name": "MODE", "value": "production"},
                                {"name": "LOG_LEVEL", "value": "info"}
                            ],
                            "ports": [{"containerPort": 8080, "name": "http"}],
                            "resources": {"limits": {"cpu": "1", "memory": "512Mi"}}
                        },
                        {
                            "name": "sidecar",
                            "image": "registry.example/proxy:2.3",
                            "env": [{"name": "UPSTREAM", "value": "127.0.0.1:8080"}]
                        }
                    ],
                    "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "web"}],
                    "volumes": [{"name": "cache", "emptyDir": {}}]
                }
            }
        }
    })
}

fn apply(original: &Value, patch: Value) -> Value {
    let schema = BuiltinSchema::for_kind::<Deployment>();
    let mut target = original.clone();
    strategic_merge_patch(&mut target, &patch, &schema).unwrap();
    target
}

fn containers(deployment: &Value) -> &Vec<Value> {
    deployment["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
}

#[test]
fn patching_one_containers_image_leaves_the_other_untouched() {
    let original = deployment();
    let patched = apply(
        &original,
        json!({"spec": {"template": {"spec": {"containers": [
            {"name": "sidecar", "image": "registry.example/proxy:2.4"}
        ]}}}}),
    );
    let (before, after) = (containers(&original), containers(&patched));
    assert_eq!(after.len(), 2);
    assert_eq!(after[0], before[0]);
    assert_eq!(after[1]["image"], "registry.example/proxy:2.4");
    assert_eq!(after[1]["env"], before[1]["env"]);
}

#[test]
fn env_merges_by_name_inside_the_named_container() {
    let patched = apply(
        &deployment(),
        json!({"spec": {"template": {"spec": {"containers": [{
            "name": "app",
            "env": [{"name": "LOG_LEVEL", "value": "debug"}, {"name": "MODE", "$patch": "delete"}],
            "ports": [{"containerPort": 8080, "protocol": "TCP"}],
            "resources": {"limits": {"memory": "1Gi"}}
        }]}}}}),
    );
    let app = &containers(&patched)[0];
    assert_eq!(app["env"], json!([{"name": "LOG_LEVEL", "value": "debug"}]));
    assert_eq!(
        app["ports"],
        json!([{"containerPort": 8080, "name": "http", "protocol": "TCP"}])
    );
    assert_eq!(
        app["resources"],
        json!({"limits": {"cpu": "1", "memory": "1Gi"}})
    );
    assert_eq!(app["args"], json!(["--port=8080"]));
}

#[test]
fn lists_without_a_strategy_are_replaced_and_finalizers_merge_as_a_set() {
    let patched = apply(
        &deployment(),
        json!({
            "metadata": {"finalizers": ["example.com/other"]},
            "spec": {"template": {"spec": {
                "tolerations": [{"key": "gpu", "operator": "Exists"}],
                "containers": [{"name": "app", "args": ["--port=9090"]}]
            }}}
        }),
    );
    // Union; without $setElementOrder upstream puts the new value first.
    assert_eq!(
        patched["metadata"]["finalizers"],
        json!(["example.com/other", "example.com/keep"])
    );
    assert_eq!(
        patched["spec"]["template"]["spec"]["tolerations"],
        json!([{"key": "gpu", "operator": "Exists"}])
    );
    assert_eq!(containers(&patched)[0]["args"], json!(["--port=9090"]));
}

#[test]
fn kubectl_apply_three_way_patch_with_directives() {
    // What client-side `kubectl apply` sends after the user dropped the sidecar, added a
    // worker container, switched to the Recreate strategy and removed a finalizer.
    let patched = apply(
        &deployment(),
        json!({
            "metadata": {
                "$setElementOrder/finalizers": [],
                "$deleteFromPrimitiveList/finalizers": ["example.com/keep"]
            },
            "spec": {
                "strategy": {"$retainKeys": ["type"], "type": "Recreate"},
                "template": {"spec": {
                    "$setElementOrder/containers": [{"name": "worker"}, {"name": "app"}],
                    "containers": [
                        {"name": "worker", "image": "registry.example/worker:1.0"},
                        {"name": "sidecar", "$patch": "delete"}
                    ]
                }}
            }
        }),
    );
    assert_eq!(patched["metadata"]["finalizers"], json!([]));
    assert_eq!(patched["spec"]["strategy"], json!({"type": "Recreate"}));
    let names: Vec<&str> = containers(&patched)
        .iter()
        .map(|container| container["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["worker", "app"]);
    assert_eq!(containers(&patched)[1], containers(&deployment())[0]);
}

#[test]
fn strategies_are_found_through_refs() {
    let schema = BuiltinSchema::for_kind::<Deployment>();
    let pod_spec = schema.field("spec").and_then(|spec| {
        spec.field("template")
            .and_then(|template| template.field("spec").map(|pod| pod.strategy()))
    });
    assert_eq!(pod_spec, Some(PatchStrategy::default()));

    let spec = schema.field("spec").unwrap();
    let template = spec.field("template").unwrap();
    let pod = template.field("spec").unwrap();
    let containers = pod.field("containers").unwrap();
    assert_eq!(containers.strategy(), PatchStrategy::merge_by("name"));
    let container = containers.items().unwrap();
    assert_eq!(
        container.field("ports").unwrap().strategy(),
        PatchStrategy::merge_by("containerPort")
    );
    assert_eq!(
        container.field("args").unwrap().strategy(),
        PatchStrategy::default()
    );
    assert_eq!(
        pod.field("volumes").unwrap().strategy(),
        PatchStrategy::merge_by("name").with_retain_keys()
    );
    assert_eq!(
        pod.field("tolerations").unwrap().strategy(),
        PatchStrategy::default()
    );
    // A map of quantities: its values are reachable through additionalProperties.
    let limits = container.field("resources").and_then(|resources| {
        resources
            .field("limits")
            .map(|limits| limits.field("cpu").is_some())
    });
    assert_eq!(limits, Some(true));
    let metadata = schema.field("metadata").unwrap();
    assert_eq!(
        metadata.field("finalizers").unwrap().strategy(),
        PatchStrategy::merge_set()
    );
    assert!(schema.field("noSuchField").is_none());
}

#[test]
fn one_document_can_serve_many_kinds() {
    let mut generator = schemars::SchemaGenerator::default();
    generator.subschema_for::<k8s_openapi::api::core::v1::Service>();
    generator.subschema_for::<k8s_openapi::api::core::v1::Node>();
    let document = Arc::new(json!({"$defs": generator.definitions()}));

    let service =
        BuiltinSchema::for_definition(document.clone(), "io.k8s.api.core.v1.Service").unwrap();
    assert_eq!(service.definition(), "io.k8s.api.core.v1.Service");
    let mut object =
        json!({"spec": {"ports": [{"port": 80, "name": "http"}, {"port": 443, "name": "https"}]}});
    strategic_merge_patch(
        &mut object,
        &json!({"spec": {"ports": [{"port": 443, "targetPort": 8443}]}}),
        &service,
    )
    .unwrap();
    assert_eq!(
        object["spec"]["ports"],
        json!([{"port": 80, "name": "http"}, {"port": 443, "name": "https", "targetPort": 8443}])
    );

    let node = BuiltinSchema::for_definition(document, "io.k8s.api.core.v1.Node").unwrap();
    let mut object = json!({"status": {"conditions": [
        {"type": "Ready", "status": "False"},
        {"type": "MemoryPressure", "status": "False"}
    ]}});
    strategic_merge_patch(
        &mut object,
        &json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}}),
        &node,
    )
    .unwrap();
    assert_eq!(
        object["status"]["conditions"],
        json!([{"type": "Ready", "status": "True"}, {"type": "MemoryPressure", "status": "False"}])
    );
}

#[test]
fn from_schema_accepts_schemars_output_and_rejects_unknown_names() {
    let root = schemars::SchemaGenerator::default().root_schema_for::<Deployment>();
    let schema = BuiltinSchema::from_schema(root.clone(), "io.k8s.api.apps.v1.Deployment").unwrap();
    assert!(schema.field("spec").is_some());
    // A definition the document holds only among its $defs.
    let pod_spec = BuiltinSchema::from_schema(root.clone(), "io.k8s.api.core.v1.PodSpec").unwrap();
    assert_eq!(
        pod_spec.field("containers").unwrap().strategy(),
        PatchStrategy::merge_by("name")
    );
    assert_eq!(
        BuiltinSchema::from_schema(root, "io.k8s.api.core.v1.Nope").unwrap_err(),
        BuiltinSchemaError::UnknownDefinition {
            definition: "io.k8s.api.core.v1.Nope".to_owned()
        }
    );
}

#[test]
fn schema_extensions_take_precedence_over_the_table() {
    // An OpenAPI-style document that carries upstream's extensions itself.
    let document = json!({"components": {"schemas": {
        "example.v1.Thing": {"type": "object", "properties": {
            "items": {
                "type": "array",
                "items": {"$ref": "#/components/schemas/example.v1.Item"},
                "x-kubernetes-patch-strategy": "merge,retainKeys",
                "x-kubernetes-patch-merge-key": "id"
            },
            "selector": {"type": "object", "x-kubernetes-patch-strategy": "replace"}
        }},
        "example.v1.Item": {"type": "object", "properties": {"id": {"type": "string"}}}
    }}});
    let schema = BuiltinSchema::for_definition(document, "example.v1.Thing").unwrap();
    assert_eq!(
        schema.field("items").unwrap().strategy(),
        PatchStrategy::merge_by("id").with_retain_keys()
    );
    assert_eq!(
        schema.field("selector").unwrap().strategy().merge,
        MergeStrategy::Replace
    );
    assert!(schema
        .field("items")
        .unwrap()
        .items()
        .unwrap()
        .field("id")
        .is_some());
}

/// Generates one document holding the definitions of every kind the table mentions.
fn all_tabled_definitions() -> Value {
    use k8s_openapi::api::{
        admissionregistration, apps, autoscaling, batch, core, flowcontrol, networking, policy,
        resource, storage,
    };
    use k8s_openapi::kube_aggregator::pkg::apis::apiregistration;

    let mut generator = schemars::SchemaGenerator::default();
    generator.subschema_for::<apps::v1::Deployment>();
    generator.subschema_for::<apps::v1::ReplicaSet>();
    generator.subschema_for::<apps::v1::StatefulSet>();
    generator.subschema_for::<apps::v1::DaemonSet>();
    generator.subschema_for::<batch::v1::Job>();
    generator.subschema_for::<core::v1::Pod>();
    generator.subschema_for::<core::v1::Service>();
    generator.subschema_for::<core::v1::ServiceAccount>();
    generator.subschema_for::<core::v1::Node>();
    generator.subschema_for::<core::v1::Namespace>();
    generator.subschema_for::<core::v1::PersistentVolumeClaim>();
    generator.subschema_for::<core::v1::ReplicationController>();
    generator.subschema_for::<core::v1::ComponentStatus>();
    generator.subschema_for::<autoscaling::v2::HorizontalPodAutoscaler>();
    generator.subschema_for::<policy::v1::PodDisruptionBudget>();
    generator.subschema_for::<networking::v1::ServiceCIDR>();
    generator.subschema_for::<networking::v1beta1::ServiceCIDR>();
    generator.subschema_for::<flowcontrol::v1::FlowSchema>();
    generator.subschema_for::<flowcontrol::v1::PriorityLevelConfiguration>();
    generator.subschema_for::<storage::v1::CSINode>();
    generator.subschema_for::<resource::v1beta1::ResourceClaim>();
    generator.subschema_for::<resource::v1beta2::ResourceClaim>();
    generator.subschema_for::<admissionregistration::v1::ValidatingWebhookConfiguration>();
    generator.subschema_for::<admissionregistration::v1::MutatingWebhookConfiguration>();
    generator.subschema_for::<admissionregistration::v1::ValidatingAdmissionPolicy>();
    generator.subschema_for::<apiregistration::v1::APIService>();
    json!({"$defs": generator.definitions()})
}

#[test]
fn every_table_entry_names_a_property_of_the_right_shape() {
    let document = Arc::new(all_tabled_definitions());
    for entry in ENTRIES {
        let schema = BuiltinSchema::for_definition(document.clone(), entry.definition)
            .unwrap_or_else(|error| panic!("{}: {error}", entry.definition));
        let property = schema
            .field(entry.property)
            .unwrap_or_else(|| panic!("{} has no property {}", entry.definition, entry.property));
        assert_eq!(property.strategy(), entry.strategy());
        let definition = &document["$defs"][entry.definition]["properties"][entry.property];
        let property_type = definition.get("type").and_then(Value::as_str);
        match entry.merge {
            Merge::ByKey(key) => {
                assert_eq!(
                    property_type,
                    Some("array"),
                    "{}.{}",
                    entry.definition,
                    entry.property
                );
                let item = property.items().expect("a keyed list has an item schema");
                assert!(
                    item.field(key).is_some(),
                    "{}.{}: items have no merge key {key}",
                    entry.definition,
                    entry.property
                );
            }
            Merge::Set => {
                assert_eq!(
                    property_type,
                    Some("array"),
                    "{}.{}",
                    entry.definition,
                    entry.property
                );
                let item = &definition["items"];
                assert!(
                    item.get("$ref").is_none() && item.get("properties").is_none(),
                    "{}.{}: a set must hold primitives",
                    entry.definition,
                    entry.property
                );
            }
            Merge::Replace | Merge::RetainKeysOnly => {
                assert!(property.field("nonexistent").is_none());
            }
        }
    }
}

#[test]
fn debug_output_names_the_kind_not_the_whole_document() {
    let schema = BuiltinSchema::for_kind::<Deployment>();
    let debug = format!("{schema:?}");
    assert!(debug.contains("io.k8s.api.apps.v1.Deployment"), "{debug}");
    assert!(debug.len() < 200, "{debug}");
}
