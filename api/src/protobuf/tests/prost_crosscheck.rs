//! Cross-check against prost (kube-rs's k8s-pb types): prost reads our bytes into the fields
//! we meant and writes them back identically, and what a prost client sends decodes to the
//! JSON Go would write.

use k8s_pb::api::admissionregistration::v1 as admissionregistration;
use k8s_pb::api::apps::v1 as apps;
use k8s_pb::api::authentication::v1 as authentication;
use k8s_pb::api::authorization::v1 as authorization;
use k8s_pb::api::batch::v1 as batch;
use k8s_pb::api::core::v1 as core;
use k8s_pb::api::flowcontrol::v1 as flowcontrol;
use k8s_pb::api::networking::v1 as networking;
use k8s_pb::api::rbac::v1 as rbac;
use k8s_pb::api::storage::v1 as storage;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_pb::apimachinery::pkg::runtime::Unknown;
use k8s_pb::apimachinery::pkg::util::intstr::IntOrString;
use prost::Message as _;
use serde_json::json;

use super::{differences, object_fixture, object_fixtures};
use crate::protobuf::{decode, decode_envelope, encode, encode_object, MAGIC};

/// Decodes `raw` as the k8s-pb type of `api_version` and `kind` and encodes it again with
/// prost. meta/v1 kinds (Status, DeleteOptions) are the same message under any group version.
fn through_prost(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
    macro_rules! via {
        ($(($version:pat, $kind:literal) => $type:ty,)*) => {
            match (api_version, kind) {
                $(($version, $kind) => <$type>::decode(raw).unwrap_or_else(|error| panic!("prost cannot read our {api_version} {kind}: {error}")).encode_to_vec(),)*
                other => panic!("no k8s-pb type listed for {other:?}"),
            }
        };
    }
    via! {
        ("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration") => admissionregistration::MutatingWebhookConfiguration,
        ("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicy") => admissionregistration::ValidatingAdmissionPolicy,
        ("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicyBinding") => admissionregistration::ValidatingAdmissionPolicyBinding,
        ("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration") => admissionregistration::ValidatingWebhookConfiguration,
        ("apiextensions.k8s.io/v1", "CustomResourceDefinition") => k8s_pb::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
        ("apiregistration.k8s.io/v1", "APIService") => k8s_pb::kube_aggregator::pkg::apis::apiregistration::v1::APIService,
        ("apps/v1", "ControllerRevision") => apps::ControllerRevision,
        ("apps/v1", "DaemonSet") => apps::DaemonSet,
        ("apps/v1", "Deployment") => apps::Deployment,
        ("apps/v1", "ReplicaSet") => apps::ReplicaSet,
        ("apps/v1", "StatefulSet") => apps::StatefulSet,
        ("authentication.k8s.io/v1", "SelfSubjectReview") => authentication::SelfSubjectReview,
        ("authentication.k8s.io/v1", "TokenRequest") => authentication::TokenRequest,
        ("authentication.k8s.io/v1", "TokenReview") => authentication::TokenReview,
        ("authorization.k8s.io/v1", "LocalSubjectAccessReview") => authorization::LocalSubjectAccessReview,
        ("authorization.k8s.io/v1", "SelfSubjectAccessReview") => authorization::SelfSubjectAccessReview,
        ("authorization.k8s.io/v1", "SelfSubjectRulesReview") => authorization::SelfSubjectRulesReview,
        ("authorization.k8s.io/v1", "SubjectAccessReview") => authorization::SubjectAccessReview,
        ("autoscaling/v1", "HorizontalPodAutoscaler") => k8s_pb::api::autoscaling::v1::HorizontalPodAutoscaler,
        ("autoscaling/v1", "Scale") => k8s_pb::api::autoscaling::v1::Scale,
        ("autoscaling/v2", "HorizontalPodAutoscaler") => k8s_pb::api::autoscaling::v2::HorizontalPodAutoscaler,
        ("batch/v1", "CronJob") => batch::CronJob,
        ("batch/v1", "Job") => batch::Job,
        ("certificates.k8s.io/v1", "CertificateSigningRequest") => k8s_pb::api::certificates::v1::CertificateSigningRequest,
        ("coordination.k8s.io/v1", "Lease") => k8s_pb::api::coordination::v1::Lease,
        ("discovery.k8s.io/v1", "EndpointSlice") => k8s_pb::api::discovery::v1::EndpointSlice,
        ("events.k8s.io/v1", "Event") => k8s_pb::api::events::v1::Event,
        ("flowcontrol.apiserver.k8s.io/v1", "FlowSchema") => flowcontrol::FlowSchema,
        ("flowcontrol.apiserver.k8s.io/v1", "PriorityLevelConfiguration") => flowcontrol::PriorityLevelConfiguration,
        ("networking.k8s.io/v1", "IPAddress") => networking::IPAddress,
        ("networking.k8s.io/v1", "Ingress") => networking::Ingress,
        ("networking.k8s.io/v1", "IngressClass") => networking::IngressClass,
        ("networking.k8s.io/v1", "NetworkPolicy") => networking::NetworkPolicy,
        ("networking.k8s.io/v1", "ServiceCIDR") => networking::ServiceCIDR,
        ("node.k8s.io/v1", "RuntimeClass") => k8s_pb::api::node::v1::RuntimeClass,
        ("policy/v1", "Eviction") => k8s_pb::api::policy::v1::Eviction,
        ("policy/v1", "PodDisruptionBudget") => k8s_pb::api::policy::v1::PodDisruptionBudget,
        ("rbac.authorization.k8s.io/v1", "ClusterRole") => rbac::ClusterRole,
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding") => rbac::ClusterRoleBinding,
        ("rbac.authorization.k8s.io/v1", "Role") => rbac::Role,
        ("rbac.authorization.k8s.io/v1", "RoleBinding") => rbac::RoleBinding,
        ("scheduling.k8s.io/v1", "PriorityClass") => k8s_pb::api::scheduling::v1::PriorityClass,
        ("storage.k8s.io/v1", "CSIDriver") => storage::CSIDriver,
        ("storage.k8s.io/v1", "CSINode") => storage::CSINode,
        ("storage.k8s.io/v1", "CSIStorageCapacity") => storage::CSIStorageCapacity,
        ("storage.k8s.io/v1", "StorageClass") => storage::StorageClass,
        ("storage.k8s.io/v1", "VolumeAttachment") => storage::VolumeAttachment,
        ("storage.k8s.io/v1", "VolumeAttributesClass") => storage::VolumeAttributesClass,
        ("v1", "Binding") => core::Binding,
        ("v1", "ComponentStatus") => core::ComponentStatus,
        ("v1", "ConfigMap") => core::ConfigMap,
        ("v1", "Endpoints") => core::Endpoints,
        ("v1", "Event") => core::Event,
        ("v1", "LimitRange") => core::LimitRange,
        ("v1", "Namespace") => core::Namespace,
        ("v1", "Node") => core::Node,
        ("v1", "PersistentVolume") => core::PersistentVolume,
        ("v1", "PersistentVolumeClaim") => core::PersistentVolumeClaim,
        ("v1", "Pod") => core::Pod,
        ("v1", "PodTemplate") => core::PodTemplate,
        ("v1", "ReplicationController") => core::ReplicationController,
        ("v1", "ResourceQuota") => core::ResourceQuota,
        ("v1", "Secret") => core::Secret,
        ("v1", "Service") => core::Service,
        ("v1", "ServiceAccount") => core::ServiceAccount,
        (_, "DeleteOptions") => meta::DeleteOptions,
        (_, "Status") => meta::Status,
    }
}

#[test]
fn prost_reads_our_bytes_and_writes_them_back_identically() {
    // prost leaves empty map values out of an entry where Go writes them; those fixtures have
    // an empty map value on purpose, so for them only the decoded JSON must agree.
    let empty_map_values = ["configmap", "node", "secret"];
    for (name, object) in object_fixtures() {
        let kind = object["kind"].as_str().unwrap();
        let body = encode_object(&object).unwrap();
        let envelope = decode_envelope(&body).unwrap();
        let ours = envelope.raw;
        let theirs = through_prost(&envelope.api_version, kind, ours);
        let message = crate::protobuf::message_for_kind(&envelope.api_version, kind).unwrap();
        let diff = differences(
            &decode(message, ours).unwrap(),
            &decode(message, &theirs).unwrap(),
        );
        assert!(
            diff.is_empty(),
            "{name}: prost's re-encoding decodes differently:\n{}",
            diff.join("\n")
        );
        if !empty_map_values.contains(&name.as_str()) {
            assert_eq!(
                theirs, ours,
                "{name}: prost re-encodes our bytes differently"
            );
        }
    }
}

#[test]
fn prost_reads_our_envelope() {
    let body = encode_object(&object_fixture("deployment")).unwrap();
    assert_eq!(body[..4], MAGIC);
    let unknown = Unknown::decode(&body[4..]).unwrap();
    let type_meta = unknown.type_meta.unwrap();
    assert_eq!(type_meta.api_version.as_deref(), Some("apps/v1"));
    assert_eq!(type_meta.kind.as_deref(), Some("Deployment"));
    assert_eq!(
        unknown.raw.as_deref(),
        Some(decode_envelope(&body).unwrap().raw)
    );
    assert_eq!(
        (
            unknown.content_encoding.as_deref(),
            unknown.content_type.as_deref()
        ),
        (Some(""), Some(""))
    );
}

#[test]
fn prost_sees_the_fields_we_meant() {
    let raw = |name: &str| {
        decode_envelope(&encode_object(&object_fixture(name)).unwrap())
            .unwrap()
            .raw
            .to_vec()
    };

    let deployment = apps::Deployment::decode(raw("deployment").as_slice()).unwrap();
    let metadata = deployment.metadata.unwrap();
    assert_eq!(
        metadata.creation_timestamp,
        Some(meta::Time {
            seconds: Some(1_704_164_645),
            nanos: Some(0)
        })
    );
    assert_eq!(
        metadata.generate_name.as_deref(),
        Some(""),
        "Go writes value fields even when empty"
    );
    let fields_v1 = metadata.managed_fields[0]
        .fields_v1
        .clone()
        .unwrap()
        .raw
        .unwrap();
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&fields_v1).unwrap(),
        object_fixture("deployment")["metadata"]["managedFields"][0]["fieldsV1"]
    );
    let spec = deployment.spec.unwrap();
    assert_eq!(spec.replicas, Some(0), "a present zero survives");
    let rolling_update = spec.strategy.unwrap().rolling_update.unwrap();
    assert_eq!(
        rolling_update.max_unavailable,
        Some(IntOrString {
            r#type: Some(1),
            int_val: Some(0),
            str_val: Some("25%".into())
        })
    );
    assert_eq!(
        rolling_update.max_surge,
        Some(IntOrString {
            r#type: Some(0),
            int_val: Some(1),
            str_val: Some(String::new())
        })
    );
    let container = &spec.template.unwrap().spec.unwrap().containers[0];
    assert_eq!(container.ports[0].container_port, Some(8080));
    let limits = &container.resources.as_ref().unwrap().limits;
    assert_eq!(limits["nvidia.com/gpu"].string.as_deref(), Some("1"));
    assert_eq!(
        container
            .readiness_probe
            .as_ref()
            .unwrap()
            .termination_grace_period_seconds,
        Some(0)
    );

    let secret = core::Secret::decode(raw("secret").as_slice()).unwrap();
    assert_eq!(secret.data["password"], b"s3cr3t!");
    assert_eq!(secret.data["binary"], [0, 1, 2, 3, 254, 255]);
    assert_eq!(secret.immutable, Some(false));

    let event = core::Event::decode(raw("event").as_slice()).unwrap();
    assert_eq!(
        event.event_time,
        Some(meta::MicroTime {
            seconds: Some(1_704_164_647),
            nanos: Some(123_456_000)
        })
    );

    let service = core::Service::decode(raw("service").as_slice()).unwrap();
    let ports = &service.spec.unwrap().ports;
    assert_eq!(ports[0].target_port.as_ref().unwrap().int_val, Some(8080));
    assert_eq!(
        ports[1].target_port.as_ref().unwrap().str_val.as_deref(),
        Some("https")
    );
}

#[test]
fn bytes_from_a_prost_client_decode_to_go_json() {
    // kube-rs style: only the fields the client set are on the wire.
    let config_map = core::ConfigMap {
        metadata: Some(meta::ObjectMeta {
            name: Some("settings".into()),
            namespace: Some("shop".into()),
            ..Default::default()
        }),
        data: [("a".to_owned(), "b".to_owned())].into(),
        ..Default::default()
    };
    assert_eq!(
        decode("k8s.io.api.core.v1.ConfigMap", &config_map.encode_to_vec()).unwrap(),
        json!({"metadata": {"name": "settings", "namespace": "shop"}, "data": {"a": "b"}})
    );

    let deployment = apps::Deployment {
        spec: Some(apps::DeploymentSpec {
            replicas: Some(0),
            paused: Some(false),
            ..Default::default()
        }),
        ..Default::default()
    };
    // Value structs the client left out are still in Go's JSON, as `{}`; a containers list
    // (no omitempty) is `[]`.
    assert_eq!(
        decode("k8s.io.api.apps.v1.Deployment", &deployment.encode_to_vec()).unwrap(),
        json!({
            "metadata": {},
            "spec": {"replicas": 0, "template": {"metadata": {}, "spec": {"containers": []}}, "strategy": {}},
            "status": {}
        })
    );

    let condition = core::PodCondition {
        r#type: Some("Ready".into()),
        status: Some("True".into()),
        ..Default::default()
    };
    let pod = core::Pod {
        status: Some(core::PodStatus {
            conditions: vec![condition],
            ..Default::default()
        }),
        ..Default::default()
    };
    let decoded = decode("k8s.io.api.core.v1.Pod", &pod.encode_to_vec()).unwrap();
    assert_eq!(
        decoded["status"]["conditions"][0],
        json!({"type": "Ready", "status": "True", "lastProbeTime": null, "lastTransitionTime": null})
    );
}

#[test]
fn prost_and_we_agree_on_a_hand_built_lease() {
    let lease = k8s_pb::api::coordination::v1::Lease {
        metadata: Some(meta::ObjectMeta {
            name: Some("leader".into()),
            ..Default::default()
        }),
        spec: Some(k8s_pb::api::coordination::v1::LeaseSpec {
            holder_identity: Some("node-a".into()),
            lease_duration_seconds: Some(15),
            renew_time: Some(meta::MicroTime {
                seconds: Some(1_704_164_645),
                nanos: Some(678_901_000),
            }),
            lease_transitions: Some(0),
            ..Default::default()
        }),
    };
    let json = decode("k8s.io.api.coordination.v1.Lease", &lease.encode_to_vec()).unwrap();
    assert_eq!(
        json,
        json!({
            "metadata": {"name": "leader"},
            "spec": {"holderIdentity": "node-a", "leaseDurationSeconds": 15, "renewTime": "2024-01-02T03:04:05.678901Z", "leaseTransitions": 0}
        })
    );
    let ours = encode("k8s.io.api.coordination.v1.Lease", &json).unwrap();
    let back = k8s_pb::api::coordination::v1::Lease::decode(ours.as_slice()).unwrap();
    assert_eq!(back.spec, lease.spec);
}

#[test]
fn prost_and_we_agree_on_schema_unions_and_extra_values() {
    use k8s_pb::apiextensions_apiserver::pkg::apis::apiextensions::v1 as apiextensions;
    let string = || apiextensions::JsonSchemaProps {
        r#type: Some("string".into()),
        ..Default::default()
    };
    let schema = apiextensions::JsonSchemaProps {
        items: Some(Box::new(apiextensions::JsonSchemaPropsOrArray {
            schema: None,
            j_son_schemas: vec![string(), string()],
        })),
        additional_properties: Some(Box::new(apiextensions::JsonSchemaPropsOrBool {
            allows: Some(true),
            schema: None,
        })),
        additional_items: Some(Box::new(apiextensions::JsonSchemaPropsOrBool {
            allows: Some(true),
            schema: Some(Box::new(string())),
        })),
        dependencies: [
            (
                "a".to_owned(),
                apiextensions::JsonSchemaPropsOrStringArray {
                    schema: None,
                    property: vec!["b".into(), "c".into()],
                },
            ),
            (
                "d".to_owned(),
                apiextensions::JsonSchemaPropsOrStringArray {
                    schema: Some(string()),
                    property: Vec::new(),
                },
            ),
        ]
        .into(),
        ..Default::default()
    };
    let name = "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps";
    let json = decode(name, &schema.encode_to_vec()).unwrap();
    assert_eq!(
        json,
        json!({
            "items": [{"type": "string"}, {"type": "string"}],
            "additionalProperties": true,
            "dependencies": {"a": ["b", "c"], "d": {"type": "string"}},
            "additionalItems": {"type": "string"},
        })
    );
    let back =
        apiextensions::JsonSchemaProps::decode(encode(name, &json).unwrap().as_slice()).unwrap();
    assert_eq!(back.items.unwrap().j_son_schemas.len(), 2);
    assert_eq!(back.additional_properties.unwrap().allows, Some(true));
    assert_eq!(
        back.additional_items
            .unwrap()
            .schema
            .unwrap()
            .r#type
            .as_deref(),
        Some("string")
    );
    assert_eq!(back.dependencies["a"].property, ["b", "c"]);
    assert!(back.dependencies["d"].schema.is_some());

    let spec = authorization::SubjectAccessReviewSpec {
        extra: [(
            "scopes".to_owned(),
            authorization::ExtraValue {
                items: vec!["openid".into(), "email".into()],
            },
        )]
        .into(),
        ..Default::default()
    };
    let name = "k8s.io.api.authorization.v1.SubjectAccessReviewSpec";
    let json = decode(name, &spec.encode_to_vec()).unwrap();
    assert_eq!(json["extra"], json!({"scopes": ["openid", "email"]}));
    let back =
        authorization::SubjectAccessReviewSpec::decode(encode(name, &json).unwrap().as_slice())
            .unwrap();
    assert_eq!(back.extra, spec.extra);
}
