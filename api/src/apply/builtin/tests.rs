//! The apply schema on real k8s-openapi schemas: list and map types found through `$ref`s,
//! where server-side apply differs from strategic merge patch, extensions taking precedence,
//! and a check that every table entry names a property of the right shape.

use std::sync::Arc;

use k8s_openapi::api::apps::v1::Deployment;
use serde_json::{json, Value};

use super::table::{List, ATOMIC_DEFINITIONS, ATOMIC_PROPERTIES, LISTS};
use super::{BuiltinApplySchema, BuiltinApplySchemaError};
use crate::apply::schema::{ApplySchema, ListMapKey, ListType, MapType};
use crate::nodepool::NodePool;

/// What the schema says at a path of field names (`*` steps into list items): the list type,
/// the map type, and whether the last step is a declared field.
fn describe(schema: &dyn ApplySchema, path: &[&str]) -> (ListType, MapType, bool) {
    match path {
        [] => (schema.list_type(), schema.map_type(), true),
        ["*", rest @ ..] => {
            let items = schema.items().expect("a list with an item schema");
            describe(&*items, rest)
        }
        [name, rest @ ..] => {
            let field = schema
                .field(name)
                .unwrap_or_else(|| panic!("no field {name}"));
            let (list_type, map_type, declared) = describe(&*field.schema, rest);
            let declared = if rest.is_empty() {
                field.declared
            } else {
                declared
            };
            (list_type, map_type, declared)
        }
    }
}

fn map_by(keys: &[&str]) -> ListType {
    ListType::Map(
        keys.iter()
            .map(|key| ListMapKey::with_default(*key, json!("")))
            .collect(),
    )
}

#[test]
fn deployment_list_and_map_types_follow_upstream_ssa_tags() {
    let schema = BuiltinApplySchema::for_kind::<Deployment>();
    let pod = ["spec", "template", "spec"];
    let container = ["spec", "template", "spec", "containers", "*"];
    let join = |prefix: &[&'static str], rest: &[&'static str]| -> Vec<&'static str> {
        prefix.iter().chain(rest).copied().collect()
    };
    let ports = ListType::Map(vec![
        ListMapKey::with_default("containerPort", json!(0)),
        ListMapKey::with_default("protocol", json!("TCP")),
    ]);
    let cases: Vec<(Vec<&str>, ListType)> = vec![
        (join(&pod, &["containers"]), map_by(&["name"])),
        (join(&pod, &["initContainers"]), map_by(&["name"])),
        (join(&pod, &["volumes"]), map_by(&["name"])),
        (join(&pod, &["tolerations"]), ListType::Atomic),
        (
            join(&pod, &["topologySpreadConstraints"]),
            map_by(&["topologyKey", "whenUnsatisfiable"]),
        ),
        (join(&container, &["ports"]), ports),
        (join(&container, &["env"]), map_by(&["name"])),
        (join(&container, &["volumeMounts"]), map_by(&["mountPath"])),
        (join(&container, &["args"]), ListType::Atomic),
        (join(&container, &["command"]), ListType::Atomic),
        (join(&container, &["envFrom"]), ListType::Atomic),
        (vec!["metadata", "finalizers"], ListType::Set),
        (vec!["metadata", "ownerReferences"], map_by(&["uid"])),
        (vec!["status", "conditions"], map_by(&["type"])),
    ];
    for (path, expected) in cases {
        assert_eq!(describe(&schema, &path).0, expected, "{}", path.join("."));
    }
}

#[test]
fn atomic_structs_and_maps_are_atomic_and_plain_map_keys_are_not_declared() {
    let schema = BuiltinApplySchema::for_kind::<Deployment>();
    let cases: [(&[&str], MapType, bool); 7] = [
        (&["spec"], MapType::Granular, true),
        (&["spec", "selector"], MapType::Atomic, true),
        (
            &["spec", "template", "spec", "nodeSelector"],
            MapType::Atomic,
            true,
        ),
        (
            &[
                "spec",
                "template",
                "spec",
                "affinity",
                "nodeAffinity",
                "requiredDuringSchedulingIgnoredDuringExecution",
            ],
            MapType::Atomic,
            true,
        ),
        (
            &[
                "spec",
                "template",
                "spec",
                "containers",
                "*",
                "env",
                "*",
                "valueFrom",
                "secretKeyRef",
            ],
            MapType::Atomic,
            true,
        ),
        (&["metadata", "labels"], MapType::Granular, true),
        (&["metadata", "labels", "app"], MapType::Granular, false),
    ];
    for (path, map_type, declared) in cases {
        let (_, found_map_type, found_declared) = describe(&schema, path);
        assert_eq!(
            (found_map_type, found_declared),
            (map_type, declared),
            "{}",
            path.join(".")
        );
    }
}

#[test]
fn our_own_kinds_work_through_schemars_option_wrappers() {
    let schema = BuiltinApplySchema::for_kind::<NodePool>();
    assert_eq!(schema.definition(), "dev.berth.v1.NodePool");
    let (list_type, _, declared) = describe(&schema, &["metadata", "finalizers"]);
    assert_eq!((list_type, declared), (ListType::Set, true));
    let (list_type, _, _) = describe(&schema, &["status", "conditions"]);
    assert_eq!(list_type, ListType::Atomic);
    let (_, map_type, declared) = describe(&schema, &["spec", "labels", "zone"]);
    assert_eq!((map_type, declared), (MapType::Granular, false));
}

#[test]
fn schema_extensions_take_precedence_over_the_table() {
    let document = json!({
        "components": {"schemas": {
            "io.k8s.api.core.v1.PodSpec": {
                "type": "object",
                "properties": {
                    // The table says a map by name; the document says atomic.
                    "containers": {"type": "array", "x-kubernetes-list-type": "atomic",
                                   "items": {"$ref": "#/components/schemas/io.k8s.api.core.v1.Container"}},
                    "hosts": {"type": "array", "x-kubernetes-list-type": "map",
                              "x-kubernetes-list-map-keys": ["ip", "port"],
                              "items": {"type": "object", "properties": {
                                  "ip": {"type": "string"},
                                  "port": {"type": "integer", "default": 80}}}},
                    "legacy": {"type": "array", "x-kubernetes-patch-strategy": "merge",
                               "x-kubernetes-patch-merge-key": "name", "items": {"type": "object"}},
                    "selector": {"type": "object", "x-kubernetes-map-type": "atomic"}
                }
            },
            "io.k8s.api.core.v1.Container": {"type": "object"}
        }}
    });
    let schema =
        BuiltinApplySchema::for_definition(document, "io.k8s.api.core.v1.PodSpec").unwrap();
    assert_eq!(describe(&schema, &["containers"]).0, ListType::Atomic);
    assert_eq!(
        describe(&schema, &["hosts"]).0,
        ListType::Map(vec![
            ListMapKey::new("ip"),
            ListMapKey::with_default("port", json!(80))
        ])
    );
    assert_eq!(
        describe(&schema, &["legacy"]).0,
        ListType::Map(vec![ListMapKey::new("name")])
    );
    assert_eq!(describe(&schema, &["selector"]).1, MapType::Atomic);
}

#[test]
fn unknown_definitions_are_rejected() {
    let document = json!({"$defs": {}});
    assert_eq!(
        BuiltinApplySchema::for_definition(document, "io.k8s.api.core.v1.Pod").unwrap_err(),
        BuiltinApplySchemaError::UnknownDefinition {
            definition: "io.k8s.api.core.v1.Pod".into()
        }
    );
}

/// One document holding every definition the table names.
fn all_tabled_definitions() -> Value {
    let mut generator = schemars::SchemaGenerator::default();
    generator.subschema_for::<k8s_openapi::api::admissionregistration::v1::MatchResources>();
    generator.subschema_for::<k8s_openapi::api::admissionregistration::v1::MutatingWebhook>();
    generator
        .subschema_for::<k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration>(
        );
    generator
        .subschema_for::<k8s_openapi::api::admissionregistration::v1::NamedRuleWithOperations>();
    generator.subschema_for::<k8s_openapi::api::admissionregistration::v1::ParamKind>();
    generator.subschema_for::<k8s_openapi::api::admissionregistration::v1::ParamRef>();
    generator.subschema_for::<k8s_openapi::api::admissionregistration::v1::ValidatingAdmissionPolicyBindingSpec>();
    generator.subschema_for::<k8s_openapi::api::admissionregistration::v1::ValidatingAdmissionPolicySpec>();
    generator.subschema_for::<k8s_openapi::api::admissionregistration::v1::ValidatingAdmissionPolicyStatus>();
    generator.subschema_for::<k8s_openapi::api::admissionregistration::v1::ValidatingWebhook>();
    generator.subschema_for::<k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration>();
    generator.subschema_for::<k8s_openapi::api::admissionregistration::v1::Variable>();
    generator.subschema_for::<k8s_openapi::api::admissionregistration::v1alpha1::MatchResources>();
    generator.subschema_for::<k8s_openapi::api::admissionregistration::v1alpha1::MutatingAdmissionPolicySpec>();
    generator.subschema_for::<k8s_openapi::api::admissionregistration::v1alpha1::NamedRuleWithOperations>();
    generator.subschema_for::<k8s_openapi::api::admissionregistration::v1alpha1::ParamKind>();
    generator.subschema_for::<k8s_openapi::api::admissionregistration::v1alpha1::ParamRef>();
    generator.subschema_for::<k8s_openapi::api::admissionregistration::v1beta1::MatchResources>();
    generator
        .subschema_for::<k8s_openapi::api::admissionregistration::v1beta1::NamedRuleWithOperations>(
        );
    generator.subschema_for::<k8s_openapi::api::admissionregistration::v1beta1::ParamKind>();
    generator.subschema_for::<k8s_openapi::api::admissionregistration::v1beta1::ParamRef>();
    generator.subschema_for::<k8s_openapi::api::admissionregistration::v1beta1::ValidatingAdmissionPolicyBindingSpec>();
    generator.subschema_for::<k8s_openapi::api::admissionregistration::v1beta1::ValidatingAdmissionPolicySpec>();
    generator.subschema_for::<k8s_openapi::api::admissionregistration::v1beta1::ValidatingAdmissionPolicyStatus>();
    generator.subschema_for::<k8s_openapi::api::admissionregistration::v1beta1::Variable>();
    generator
        .subschema_for::<k8s_openapi::api::apiserverinternal::v1alpha1::ServerStorageVersion>();
    generator
        .subschema_for::<k8s_openapi::api::apiserverinternal::v1alpha1::StorageVersionStatus>();
    generator.subschema_for::<k8s_openapi::api::apps::v1::ControllerRevision>();
    generator.subschema_for::<k8s_openapi::api::apps::v1::DaemonSetStatus>();
    generator.subschema_for::<k8s_openapi::api::apps::v1::DeploymentStatus>();
    generator.subschema_for::<k8s_openapi::api::apps::v1::ReplicaSetStatus>();
    generator.subschema_for::<k8s_openapi::api::apps::v1::StatefulSetStatus>();
    generator.subschema_for::<k8s_openapi::api::autoscaling::v1::CrossVersionObjectReference>();
    generator.subschema_for::<k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscalerStatus>();
    generator
        .subschema_for::<k8s_openapi::api::batch::v1::PodFailurePolicyOnExitCodesRequirement>();
    generator.subschema_for::<k8s_openapi::api::batch::v1::UncountedTerminatedPods>();
    generator
        .subschema_for::<k8s_openapi::api::certificates::v1::CertificateSigningRequestStatus>();
    generator.subschema_for::<k8s_openapi::api::core::v1::ComponentStatus>();
    generator.subschema_for::<k8s_openapi::api::core::v1::ConfigMapKeySelector>();
    generator.subschema_for::<k8s_openapi::api::core::v1::Container>();
    generator.subschema_for::<k8s_openapi::api::core::v1::ContainerStatus>();
    generator.subschema_for::<k8s_openapi::api::core::v1::EndpointAddress>();
    generator.subschema_for::<k8s_openapi::api::core::v1::EndpointPort>();
    generator.subschema_for::<k8s_openapi::api::core::v1::EphemeralContainer>();
    generator.subschema_for::<k8s_openapi::api::core::v1::LocalObjectReference>();
    generator.subschema_for::<k8s_openapi::api::core::v1::NamespaceStatus>();
    generator.subschema_for::<k8s_openapi::api::core::v1::NodeSelector>();
    generator.subschema_for::<k8s_openapi::api::core::v1::NodeSelectorTerm>();
    generator.subschema_for::<k8s_openapi::api::core::v1::NodeSpec>();
    generator.subschema_for::<k8s_openapi::api::core::v1::NodeStatus>();
    generator.subschema_for::<k8s_openapi::api::core::v1::ObjectFieldSelector>();
    generator.subschema_for::<k8s_openapi::api::core::v1::ObjectReference>();
    generator.subschema_for::<k8s_openapi::api::core::v1::PersistentVolumeClaimStatus>();
    generator.subschema_for::<k8s_openapi::api::core::v1::PodSpec>();
    generator.subschema_for::<k8s_openapi::api::core::v1::PodStatus>();
    generator.subschema_for::<k8s_openapi::api::core::v1::ReplicationControllerSpec>();
    generator.subschema_for::<k8s_openapi::api::core::v1::ReplicationControllerStatus>();
    generator.subschema_for::<k8s_openapi::api::core::v1::ResourceFieldSelector>();
    generator.subschema_for::<k8s_openapi::api::core::v1::ResourceRequirements>();
    generator.subschema_for::<k8s_openapi::api::core::v1::ResourceStatus>();
    generator.subschema_for::<k8s_openapi::api::core::v1::ScopeSelector>();
    generator.subschema_for::<k8s_openapi::api::core::v1::SecretKeySelector>();
    generator.subschema_for::<k8s_openapi::api::core::v1::SecretReference>();
    generator.subschema_for::<k8s_openapi::api::core::v1::ServiceAccount>();
    generator.subschema_for::<k8s_openapi::api::core::v1::ServiceSpec>();
    generator.subschema_for::<k8s_openapi::api::core::v1::ServiceStatus>();
    generator.subschema_for::<k8s_openapi::api::core::v1::TopologySelectorTerm>();
    generator.subschema_for::<k8s_openapi::api::core::v1::TypedLocalObjectReference>();
    generator.subschema_for::<k8s_openapi::api::discovery::v1::Endpoint>();
    generator.subschema_for::<k8s_openapi::api::discovery::v1::EndpointPort>();
    generator.subschema_for::<k8s_openapi::api::flowcontrol::v1::FlowSchemaStatus>();
    generator.subschema_for::<k8s_openapi::api::flowcontrol::v1::NonResourcePolicyRule>();
    generator
        .subschema_for::<k8s_openapi::api::flowcontrol::v1::PriorityLevelConfigurationStatus>();
    generator.subschema_for::<k8s_openapi::api::flowcontrol::v1::ResourcePolicyRule>();
    generator.subschema_for::<k8s_openapi::api::networking::v1::ServiceBackendPort>();
    generator.subschema_for::<k8s_openapi::api::networking::v1::ServiceCIDRStatus>();
    generator.subschema_for::<k8s_openapi::api::networking::v1beta1::ServiceCIDRStatus>();
    generator.subschema_for::<k8s_openapi::api::node::v1::Scheduling>();
    generator.subschema_for::<k8s_openapi::api::policy::v1::PodDisruptionBudgetStatus>();
    generator.subschema_for::<k8s_openapi::api::rbac::v1::RoleRef>();
    generator.subschema_for::<k8s_openapi::api::rbac::v1::Subject>();
    generator.subschema_for::<k8s_openapi::api::resource::v1alpha3::AllocatedDeviceStatus>();
    generator.subschema_for::<k8s_openapi::api::resource::v1alpha3::OpaqueDeviceConfiguration>();
    generator.subschema_for::<k8s_openapi::api::resource::v1alpha3::ResourceClaimStatus>();
    generator.subschema_for::<k8s_openapi::api::resource::v1beta1::AllocatedDeviceStatus>();
    generator.subschema_for::<k8s_openapi::api::resource::v1beta1::OpaqueDeviceConfiguration>();
    generator.subschema_for::<k8s_openapi::api::resource::v1beta1::ResourceClaimStatus>();
    generator.subschema_for::<k8s_openapi::api::resource::v1beta2::AllocatedDeviceStatus>();
    generator.subschema_for::<k8s_openapi::api::resource::v1beta2::OpaqueDeviceConfiguration>();
    generator.subschema_for::<k8s_openapi::api::resource::v1beta2::ResourceClaimStatus>();
    generator.subschema_for::<k8s_openapi::api::storage::v1::CSIDriverSpec>();
    generator.subschema_for::<k8s_openapi::api::storage::v1::CSINodeSpec>();
    generator.subschema_for::<k8s_openapi::api::storagemigration::v1alpha1::StorageVersionMigrationStatus>();
    generator.subschema_for::<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinitionStatus>();
    generator.subschema_for::<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaProps>();
    generator.subschema_for::<k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector>();
    generator.subschema_for::<k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta>();
    generator.subschema_for::<k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference>();
    generator.subschema_for::<k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIServiceStatus>();
    json!({"$defs": generator.definitions()})
}

#[test]
fn every_table_entry_names_a_property_of_the_right_shape() {
    let document = Arc::new(all_tabled_definitions());
    let property = |definition: &str, property: &str| -> Value {
        let definitions = &document["$defs"];
        assert!(
            definitions.get(definition).is_some(),
            "no definition {definition}"
        );
        definitions[definition]["properties"]
            .get(property)
            .unwrap_or_else(|| panic!("{definition} has no property {property}"))
            .clone()
    };
    for entry in LISTS {
        let found = property(entry.definition, entry.property);
        let name = format!("{}.{}", entry.definition, entry.property);
        assert_eq!(found["type"], "array", "{name}");
        let item = &found["items"];
        match entry.list {
            List::Set => assert!(
                item.get("$ref").is_none() && item.get("properties").is_none(),
                "{name}: a set must hold primitives"
            ),
            List::Map(keys) => {
                let schema =
                    BuiltinApplySchema::for_definition(document.clone(), entry.definition).unwrap();
                let property = schema.field(entry.property).expect("tabled property");
                let items = property
                    .schema
                    .items()
                    .expect("a map list has an item schema");
                for key in keys {
                    assert!(
                        items.field(key.name).is_some_and(|field| field.declared),
                        "{name}: items have no key field {}",
                        key.name
                    );
                }
            }
        }
    }
    for &(definition, name) in ATOMIC_PROPERTIES {
        let found = property(definition, name);
        assert!(
            found.get("type") == Some(&json!("object")) || found.get("$ref").is_some(),
            "{definition}.{name} must be a map"
        );
    }
    for definition in ATOMIC_DEFINITIONS {
        assert!(
            document["$defs"].get(*definition).is_some(),
            "no definition {definition}"
        );
    }
}

#[test]
fn debug_output_names_the_kind_not_the_whole_document() {
    let debug = format!("{:?}", BuiltinApplySchema::for_kind::<Deployment>());
    assert!(debug.contains("io.k8s.api.apps.v1.Deployment"), "{debug}");
    assert!(debug.len() < 200, "{debug}");
}
