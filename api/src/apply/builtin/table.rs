//! The server-side apply list and map types of built-in kinds, by upstream definition name and
//! property, because the JSON schemas k8s-openapi generates carry no `x-kubernetes-list-type`.
//! Written down from the schema Kubernetes 1.33 generates for server-side apply (client-go's
//! `applyconfigurations/internal`), which follows the `+listType`, `+listMapKey`, `+mapType` and
//! `+structType` tags of the Go types; CustomResourceDefinition and APIService entries come from
//! the tags in apiextensions-apiserver and kube-aggregator. Lists not listed here are atomic.
//!
//! These differ from strategic merge patch's table in places: SSA keys container ports by
//! `containerPort` and `protocol`, service ports by `port` and `protocol`, topology spread
//! constraints by `topologyKey` and `whenUnsatisfiable`; `PodStatus.hostIPs` and
//! `JobStatus.conditions` are atomic for SSA but merge for SMP.

use serde_json::Value;

use crate::apply::schema::{ListMapKey, ListType};

/// The value a map-list item that omits a key field is named with, from the field's schema
/// `default`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum KeyDefault {
    /// No default: the field is left out of the item's key.
    None,
    /// `""`.
    EmptyString,
    /// `0`.
    Zero,
    /// A string.
    Text(&'static str),
}

/// One key field of a map list.
#[derive(Debug, Clone, Copy)]
pub(super) struct Key {
    pub(super) name: &'static str,
    pub(super) default: KeyDefault,
}

/// How a tabled list merges.
#[derive(Debug, Clone, Copy)]
pub(super) enum List {
    /// `+listType=set`.
    Set,
    /// `+listType=map` with these `+listMapKey`s.
    Map(&'static [Key]),
}

/// One non-atomic list property of one definition.
#[derive(Debug, Clone, Copy)]
pub(super) struct ListEntry {
    /// Upstream definition name, as k8s-openapi's `JsonSchema::schema_name` spells it.
    pub(super) definition: &'static str,
    /// JSON name of the property.
    pub(super) property: &'static str,
    /// How it merges.
    pub(super) list: List,
}

impl ListEntry {
    fn list_type(&self) -> ListType {
        match self.list {
            List::Set => ListType::Set,
            List::Map(keys) => ListType::Map(
                keys.iter()
                    .map(|key| ListMapKey {
                        name: key.name.to_owned(),
                        default: match key.default {
                            KeyDefault::None => None,
                            KeyDefault::EmptyString => Some(Value::from("")),
                            KeyDefault::Zero => Some(Value::from(0)),
                            KeyDefault::Text(text) => Some(Value::from(text)),
                        },
                    })
                    .collect(),
            ),
        }
    }
}

/// The list type of `property` of `definition`, if it is not atomic.
pub(super) fn list_type(definition: &str, property: &str) -> Option<ListType> {
    LISTS
        .iter()
        .find(|entry| entry.property == property && entry.definition == definition)
        .map(ListEntry::list_type)
}

/// Whether `property` of `definition` is an atomic map.
pub(super) fn is_atomic_property(definition: &str, property: &str) -> bool {
    ATOMIC_PROPERTIES
        .iter()
        .any(|&(tabled_definition, tabled_property)| {
            tabled_property == property && tabled_definition == definition
        })
}

/// Whether values of `definition` are atomic wherever they appear.
pub(super) fn is_atomic_definition(definition: &str) -> bool {
    ATOMIC_DEFINITIONS.contains(&definition)
}

const fn set(definition: &'static str, property: &'static str) -> ListEntry {
    ListEntry {
        definition,
        property,
        list: List::Set,
    }
}

const fn map(definition: &'static str, property: &'static str, keys: &'static [Key]) -> ListEntry {
    ListEntry {
        definition,
        property,
        list: List::Map(keys),
    }
}

const fn key(name: &'static str, default: KeyDefault) -> Key {
    Key { name, default }
}

/// Every list that is not atomic, by definition and property.
pub(super) const LISTS: &[ListEntry] = &[
    map(
        "io.k8s.api.admissionregistration.v1.MutatingWebhook",
        "matchConditions",
        &[key("name", KeyDefault::EmptyString)],
    ),
    map(
        "io.k8s.api.admissionregistration.v1.MutatingWebhookConfiguration",
        "webhooks",
        &[key("name", KeyDefault::EmptyString)],
    ),
    set(
        "io.k8s.api.admissionregistration.v1.ValidatingAdmissionPolicyBindingSpec",
        "validationActions",
    ),
    map(
        "io.k8s.api.admissionregistration.v1.ValidatingAdmissionPolicySpec",
        "matchConditions",
        &[key("name", KeyDefault::EmptyString)],
    ),
    map(
        "io.k8s.api.admissionregistration.v1.ValidatingAdmissionPolicySpec",
        "variables",
        &[key("name", KeyDefault::EmptyString)],
    ),
    map(
        "io.k8s.api.admissionregistration.v1.ValidatingAdmissionPolicyStatus",
        "conditions",
        &[key("type", KeyDefault::EmptyString)],
    ),
    map(
        "io.k8s.api.admissionregistration.v1.ValidatingWebhook",
        "matchConditions",
        &[key("name", KeyDefault::EmptyString)],
    ),
    map(
        "io.k8s.api.admissionregistration.v1.ValidatingWebhookConfiguration",
        "webhooks",
        &[key("name", KeyDefault::EmptyString)],
    ),
    map(
        "io.k8s.api.admissionregistration.v1alpha1.MutatingAdmissionPolicySpec",
        "matchConditions",
        &[key("name", KeyDefault::EmptyString)],
    ),
    set(
        "io.k8s.api.admissionregistration.v1beta1.ValidatingAdmissionPolicyBindingSpec",
        "validationActions",
    ),
    map(
        "io.k8s.api.admissionregistration.v1beta1.ValidatingAdmissionPolicySpec",
        "matchConditions",
        &[key("name", KeyDefault::EmptyString)],
    ),
    map(
        "io.k8s.api.admissionregistration.v1beta1.ValidatingAdmissionPolicySpec",
        "variables",
        &[key("name", KeyDefault::EmptyString)],
    ),
    map(
        "io.k8s.api.admissionregistration.v1beta1.ValidatingAdmissionPolicyStatus",
        "conditions",
        &[key("type", KeyDefault::EmptyString)],
    ),
    set(
        "io.k8s.api.apiserverinternal.v1alpha1.ServerStorageVersion",
        "decodableVersions",
    ),
    set(
        "io.k8s.api.apiserverinternal.v1alpha1.ServerStorageVersion",
        "servedVersions",
    ),
    map(
        "io.k8s.api.apiserverinternal.v1alpha1.StorageVersionStatus",
        "conditions",
        &[key("type", KeyDefault::EmptyString)],
    ),
    map(
        "io.k8s.api.apiserverinternal.v1alpha1.StorageVersionStatus",
        "storageVersions",
        &[key("apiServerID", KeyDefault::None)],
    ),
    map(
        "io.k8s.api.apps.v1.DaemonSetStatus",
        "conditions",
        &[key("type", KeyDefault::EmptyString)],
    ),
    map(
        "io.k8s.api.apps.v1.DeploymentStatus",
        "conditions",
        &[key("type", KeyDefault::EmptyString)],
    ),
    map(
        "io.k8s.api.apps.v1.ReplicaSetStatus",
        "conditions",
        &[key("type", KeyDefault::EmptyString)],
    ),
    map(
        "io.k8s.api.apps.v1.StatefulSetStatus",
        "conditions",
        &[key("type", KeyDefault::EmptyString)],
    ),
    map(
        "io.k8s.api.autoscaling.v2.HorizontalPodAutoscalerStatus",
        "conditions",
        &[key("type", KeyDefault::EmptyString)],
    ),
    set(
        "io.k8s.api.batch.v1.PodFailurePolicyOnExitCodesRequirement",
        "values",
    ),
    set("io.k8s.api.batch.v1.UncountedTerminatedPods", "failed"),
    set("io.k8s.api.batch.v1.UncountedTerminatedPods", "succeeded"),
    map(
        "io.k8s.api.certificates.v1.CertificateSigningRequestStatus",
        "conditions",
        &[key("type", KeyDefault::EmptyString)],
    ),
    map(
        "io.k8s.api.core.v1.ComponentStatus",
        "conditions",
        &[key("type", KeyDefault::EmptyString)],
    ),
    map(
        "io.k8s.api.core.v1.Container",
        "env",
        &[key("name", KeyDefault::EmptyString)],
    ),
    map(
        "io.k8s.api.core.v1.Container",
        "ports",
        &[
            key("containerPort", KeyDefault::Zero),
            key("protocol", KeyDefault::Text("TCP")),
        ],
    ),
    map(
        "io.k8s.api.core.v1.Container",
        "volumeDevices",
        &[key("devicePath", KeyDefault::EmptyString)],
    ),
    map(
        "io.k8s.api.core.v1.Container",
        "volumeMounts",
        &[key("mountPath", KeyDefault::EmptyString)],
    ),
    map(
        "io.k8s.api.core.v1.ContainerStatus",
        "allocatedResourcesStatus",
        &[key("name", KeyDefault::EmptyString)],
    ),
    map(
        "io.k8s.api.core.v1.ContainerStatus",
        "volumeMounts",
        &[key("mountPath", KeyDefault::EmptyString)],
    ),
    map(
        "io.k8s.api.core.v1.EphemeralContainer",
        "env",
        &[key("name", KeyDefault::EmptyString)],
    ),
    map(
        "io.k8s.api.core.v1.EphemeralContainer",
        "ports",
        &[
            key("containerPort", KeyDefault::Zero),
            key("protocol", KeyDefault::Text("TCP")),
        ],
    ),
    map(
        "io.k8s.api.core.v1.EphemeralContainer",
        "volumeDevices",
        &[key("devicePath", KeyDefault::EmptyString)],
    ),
    map(
        "io.k8s.api.core.v1.EphemeralContainer",
        "volumeMounts",
        &[key("mountPath", KeyDefault::EmptyString)],
    ),
    map(
        "io.k8s.api.core.v1.NamespaceStatus",
        "conditions",
        &[key("type", KeyDefault::EmptyString)],
    ),
    set("io.k8s.api.core.v1.NodeSpec", "podCIDRs"),
    map(
        "io.k8s.api.core.v1.NodeStatus",
        "addresses",
        &[key("type", KeyDefault::EmptyString)],
    ),
    map(
        "io.k8s.api.core.v1.NodeStatus",
        "conditions",
        &[key("type", KeyDefault::EmptyString)],
    ),
    map(
        "io.k8s.api.core.v1.PersistentVolumeClaimStatus",
        "conditions",
        &[key("type", KeyDefault::EmptyString)],
    ),
    map(
        "io.k8s.api.core.v1.PodSpec",
        "containers",
        &[key("name", KeyDefault::EmptyString)],
    ),
    map(
        "io.k8s.api.core.v1.PodSpec",
        "ephemeralContainers",
        &[key("name", KeyDefault::EmptyString)],
    ),
    map(
        "io.k8s.api.core.v1.PodSpec",
        "hostAliases",
        &[key("ip", KeyDefault::EmptyString)],
    ),
    map(
        "io.k8s.api.core.v1.PodSpec",
        "imagePullSecrets",
        &[key("name", KeyDefault::EmptyString)],
    ),
    map(
        "io.k8s.api.core.v1.PodSpec",
        "initContainers",
        &[key("name", KeyDefault::EmptyString)],
    ),
    map(
        "io.k8s.api.core.v1.PodSpec",
        "resourceClaims",
        &[key("name", KeyDefault::EmptyString)],
    ),
    map(
        "io.k8s.api.core.v1.PodSpec",
        "schedulingGates",
        &[key("name", KeyDefault::EmptyString)],
    ),
    map(
        "io.k8s.api.core.v1.PodSpec",
        "topologySpreadConstraints",
        &[
            key("topologyKey", KeyDefault::EmptyString),
            key("whenUnsatisfiable", KeyDefault::EmptyString),
        ],
    ),
    map(
        "io.k8s.api.core.v1.PodSpec",
        "volumes",
        &[key("name", KeyDefault::EmptyString)],
    ),
    map(
        "io.k8s.api.core.v1.PodStatus",
        "conditions",
        &[key("type", KeyDefault::EmptyString)],
    ),
    map(
        "io.k8s.api.core.v1.PodStatus",
        "podIPs",
        &[key("ip", KeyDefault::EmptyString)],
    ),
    map(
        "io.k8s.api.core.v1.PodStatus",
        "resourceClaimStatuses",
        &[key("name", KeyDefault::EmptyString)],
    ),
    map(
        "io.k8s.api.core.v1.ReplicationControllerStatus",
        "conditions",
        &[key("type", KeyDefault::EmptyString)],
    ),
    map(
        "io.k8s.api.core.v1.ResourceRequirements",
        "claims",
        &[key("name", KeyDefault::EmptyString)],
    ),
    map(
        "io.k8s.api.core.v1.ResourceStatus",
        "resources",
        &[key("resourceID", KeyDefault::EmptyString)],
    ),
    map(
        "io.k8s.api.core.v1.ServiceAccount",
        "secrets",
        &[key("name", KeyDefault::None)],
    ),
    map(
        "io.k8s.api.core.v1.ServiceSpec",
        "ports",
        &[
            key("port", KeyDefault::Zero),
            key("protocol", KeyDefault::Text("TCP")),
        ],
    ),
    map(
        "io.k8s.api.core.v1.ServiceStatus",
        "conditions",
        &[key("type", KeyDefault::EmptyString)],
    ),
    set("io.k8s.api.discovery.v1.Endpoint", "addresses"),
    map(
        "io.k8s.api.flowcontrol.v1.FlowSchemaStatus",
        "conditions",
        &[key("type", KeyDefault::None)],
    ),
    set(
        "io.k8s.api.flowcontrol.v1.NonResourcePolicyRule",
        "nonResourceURLs",
    ),
    set("io.k8s.api.flowcontrol.v1.NonResourcePolicyRule", "verbs"),
    map(
        "io.k8s.api.flowcontrol.v1.PriorityLevelConfigurationStatus",
        "conditions",
        &[key("type", KeyDefault::None)],
    ),
    set("io.k8s.api.flowcontrol.v1.ResourcePolicyRule", "apiGroups"),
    set("io.k8s.api.flowcontrol.v1.ResourcePolicyRule", "namespaces"),
    set("io.k8s.api.flowcontrol.v1.ResourcePolicyRule", "resources"),
    set("io.k8s.api.flowcontrol.v1.ResourcePolicyRule", "verbs"),
    map(
        "io.k8s.api.networking.v1.ServiceCIDRStatus",
        "conditions",
        &[key("type", KeyDefault::EmptyString)],
    ),
    map(
        "io.k8s.api.networking.v1beta1.ServiceCIDRStatus",
        "conditions",
        &[key("type", KeyDefault::EmptyString)],
    ),
    map(
        "io.k8s.api.policy.v1.PodDisruptionBudgetStatus",
        "conditions",
        &[key("type", KeyDefault::EmptyString)],
    ),
    map(
        "io.k8s.api.resource.v1alpha3.AllocatedDeviceStatus",
        "conditions",
        &[key("type", KeyDefault::EmptyString)],
    ),
    map(
        "io.k8s.api.resource.v1alpha3.ResourceClaimStatus",
        "devices",
        &[
            key("driver", KeyDefault::EmptyString),
            key("device", KeyDefault::EmptyString),
            key("pool", KeyDefault::EmptyString),
        ],
    ),
    map(
        "io.k8s.api.resource.v1alpha3.ResourceClaimStatus",
        "reservedFor",
        &[key("uid", KeyDefault::EmptyString)],
    ),
    map(
        "io.k8s.api.resource.v1beta1.AllocatedDeviceStatus",
        "conditions",
        &[key("type", KeyDefault::EmptyString)],
    ),
    map(
        "io.k8s.api.resource.v1beta1.ResourceClaimStatus",
        "devices",
        &[
            key("driver", KeyDefault::EmptyString),
            key("device", KeyDefault::EmptyString),
            key("pool", KeyDefault::EmptyString),
        ],
    ),
    map(
        "io.k8s.api.resource.v1beta1.ResourceClaimStatus",
        "reservedFor",
        &[key("uid", KeyDefault::EmptyString)],
    ),
    map(
        "io.k8s.api.resource.v1beta2.AllocatedDeviceStatus",
        "conditions",
        &[key("type", KeyDefault::EmptyString)],
    ),
    map(
        "io.k8s.api.resource.v1beta2.ResourceClaimStatus",
        "devices",
        &[
            key("driver", KeyDefault::EmptyString),
            key("device", KeyDefault::EmptyString),
            key("pool", KeyDefault::EmptyString),
        ],
    ),
    map(
        "io.k8s.api.resource.v1beta2.ResourceClaimStatus",
        "reservedFor",
        &[key("uid", KeyDefault::EmptyString)],
    ),
    set(
        "io.k8s.api.storage.v1.CSIDriverSpec",
        "volumeLifecycleModes",
    ),
    map(
        "io.k8s.api.storage.v1.CSINodeSpec",
        "drivers",
        &[key("name", KeyDefault::EmptyString)],
    ),
    map(
        "io.k8s.api.storagemigration.v1alpha1.StorageVersionMigrationStatus",
        "conditions",
        &[key("type", KeyDefault::EmptyString)],
    ),
    set(
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        "finalizers",
    ),
    map(
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        "ownerReferences",
        &[key("uid", KeyDefault::EmptyString)],
    ),
    map(
        "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinitionStatus",
        "conditions",
        &[key("type", KeyDefault::EmptyString)],
    ),
    map(
        "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps",
        "x-kubernetes-validations",
        &[key("rule", KeyDefault::EmptyString)],
    ),
    map(
        "io.k8s.kube-aggregator.pkg.apis.apiregistration.v1.APIServiceStatus",
        "conditions",
        &[key("type", KeyDefault::EmptyString)],
    ),
];

/// Properties that are atomic maps (`+mapType=atomic`) or untyped blobs.
pub(super) const ATOMIC_PROPERTIES: &[(&str, &str)] = &[
    ("io.k8s.api.apps.v1.ControllerRevision", "data"),
    ("io.k8s.api.core.v1.PodSpec", "nodeSelector"),
    ("io.k8s.api.core.v1.ReplicationControllerSpec", "selector"),
    ("io.k8s.api.core.v1.ServiceSpec", "selector"),
    ("io.k8s.api.node.v1.Scheduling", "nodeSelector"),
    ("io.k8s.api.resource.v1alpha3.AllocatedDeviceStatus", "data"),
    (
        "io.k8s.api.resource.v1alpha3.OpaqueDeviceConfiguration",
        "parameters",
    ),
    ("io.k8s.api.resource.v1beta1.AllocatedDeviceStatus", "data"),
    (
        "io.k8s.api.resource.v1beta1.OpaqueDeviceConfiguration",
        "parameters",
    ),
    ("io.k8s.api.resource.v1beta2.AllocatedDeviceStatus", "data"),
    (
        "io.k8s.api.resource.v1beta2.OpaqueDeviceConfiguration",
        "parameters",
    ),
];

/// Definitions that are atomic wherever they appear (`+structType=atomic`).
pub(super) const ATOMIC_DEFINITIONS: &[&str] = &[
    "io.k8s.api.admissionregistration.v1.MatchResources",
    "io.k8s.api.admissionregistration.v1.NamedRuleWithOperations",
    "io.k8s.api.admissionregistration.v1.ParamKind",
    "io.k8s.api.admissionregistration.v1.ParamRef",
    "io.k8s.api.admissionregistration.v1.Variable",
    "io.k8s.api.admissionregistration.v1alpha1.MatchResources",
    "io.k8s.api.admissionregistration.v1alpha1.NamedRuleWithOperations",
    "io.k8s.api.admissionregistration.v1alpha1.ParamKind",
    "io.k8s.api.admissionregistration.v1alpha1.ParamRef",
    "io.k8s.api.admissionregistration.v1beta1.MatchResources",
    "io.k8s.api.admissionregistration.v1beta1.NamedRuleWithOperations",
    "io.k8s.api.admissionregistration.v1beta1.ParamKind",
    "io.k8s.api.admissionregistration.v1beta1.ParamRef",
    "io.k8s.api.admissionregistration.v1beta1.Variable",
    "io.k8s.api.autoscaling.v1.CrossVersionObjectReference",
    "io.k8s.api.core.v1.ConfigMapKeySelector",
    "io.k8s.api.core.v1.EndpointAddress",
    "io.k8s.api.core.v1.EndpointPort",
    "io.k8s.api.core.v1.LocalObjectReference",
    "io.k8s.api.core.v1.NodeSelector",
    "io.k8s.api.core.v1.NodeSelectorTerm",
    "io.k8s.api.core.v1.ObjectFieldSelector",
    "io.k8s.api.core.v1.ObjectReference",
    "io.k8s.api.core.v1.ResourceFieldSelector",
    "io.k8s.api.core.v1.ScopeSelector",
    "io.k8s.api.core.v1.SecretKeySelector",
    "io.k8s.api.core.v1.SecretReference",
    "io.k8s.api.core.v1.TopologySelectorTerm",
    "io.k8s.api.core.v1.TypedLocalObjectReference",
    "io.k8s.api.discovery.v1.EndpointPort",
    "io.k8s.api.networking.v1.ServiceBackendPort",
    "io.k8s.api.rbac.v1.RoleRef",
    "io.k8s.api.rbac.v1.Subject",
    "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector",
    "io.k8s.apimachinery.pkg.apis.meta.v1.OwnerReference",
];
