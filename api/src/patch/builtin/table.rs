//! The patch strategies of built-in kinds, by upstream definition name and property, written down
//! from the `patchStrategy` / `patchMergeKey` tags of the Kubernetes 1.33 Go types, because the
//! JSON schemas k8s-openapi generates do not carry them. Fields not listed here have no strategy:
//! maps merge and lists are replaced (tolerations, args, command, …).

use crate::patch::schema::PatchStrategy;

/// How one tagged property merges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Merge {
    /// `patchStrategy:"merge"` with `patchMergeKey`: a list of objects merged by that field.
    ByKey(&'static str),
    /// `patchStrategy:"merge"` without a key: a list of primitives merged as a set.
    Set,
    /// `patchStrategy:"replace"`: replaced whole.
    Replace,
    /// Only `patchStrategy:"retainKeys"`: a map that otherwise merges as usual.
    RetainKeysOnly,
}

/// One tagged property of one definition.
#[derive(Debug, Clone, Copy)]
pub(super) struct Entry {
    /// Upstream definition name, as k8s-openapi's `JsonSchema::schema_name` spells it.
    pub(super) definition: &'static str,
    /// JSON name of the property.
    pub(super) property: &'static str,
    /// How it merges.
    pub(super) merge: Merge,
    /// Whether `retainKeys` is part of its strategy.
    pub(super) retain_keys: bool,
}

impl Entry {
    /// The strategy the patcher sees for this property.
    pub(super) fn strategy(&self) -> PatchStrategy {
        let strategy = match self.merge {
            Merge::ByKey(key) => PatchStrategy::merge_by(key),
            Merge::Set => PatchStrategy::merge_set(),
            Merge::Replace => PatchStrategy::replace(),
            Merge::RetainKeysOnly => PatchStrategy::default(),
        };
        if self.retain_keys {
            strategy.with_retain_keys()
        } else {
            strategy
        }
    }
}

/// The strategy of `property` of the definition named `definition`, if it has one.
pub(super) fn lookup(definition: &str, property: &str) -> Option<PatchStrategy> {
    ENTRIES
        .iter()
        .find(|entry| entry.property == property && entry.definition == definition)
        .map(Entry::strategy)
}

const fn by_key(definition: &'static str, property: &'static str, key: &'static str) -> Entry {
    Entry {
        definition,
        property,
        merge: Merge::ByKey(key),
        retain_keys: false,
    }
}

const fn by_key_retaining(
    definition: &'static str,
    property: &'static str,
    key: &'static str,
) -> Entry {
    Entry {
        definition,
        property,
        merge: Merge::ByKey(key),
        retain_keys: true,
    }
}

const fn set(definition: &'static str, property: &'static str) -> Entry {
    Entry {
        definition,
        property,
        merge: Merge::Set,
        retain_keys: false,
    }
}

const fn replace(definition: &'static str, property: &'static str) -> Entry {
    Entry {
        definition,
        property,
        merge: Merge::Replace,
        retain_keys: false,
    }
}

const fn retain_keys(definition: &'static str, property: &'static str) -> Entry {
    Entry {
        definition,
        property,
        merge: Merge::RetainKeysOnly,
        retain_keys: true,
    }
}

/// Conditions lists all merge by `type`.
const fn conditions(definition: &'static str) -> Entry {
    by_key(definition, "conditions", "type")
}

/// Every tagged property of the built-in kinds berth serves.
pub(super) const ENTRIES: &[Entry] = &[
    // meta/v1
    set(
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        "finalizers",
    ),
    by_key(
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        "ownerReferences",
        "uid",
    ),
    // core/v1: pods
    by_key("io.k8s.api.core.v1.PodSpec", "containers", "name"),
    by_key("io.k8s.api.core.v1.PodSpec", "initContainers", "name"),
    by_key("io.k8s.api.core.v1.PodSpec", "ephemeralContainers", "name"),
    by_key_retaining("io.k8s.api.core.v1.PodSpec", "volumes", "name"),
    by_key("io.k8s.api.core.v1.PodSpec", "imagePullSecrets", "name"),
    by_key("io.k8s.api.core.v1.PodSpec", "hostAliases", "ip"),
    by_key(
        "io.k8s.api.core.v1.PodSpec",
        "topologySpreadConstraints",
        "topologyKey",
    ),
    by_key("io.k8s.api.core.v1.PodSpec", "schedulingGates", "name"),
    by_key_retaining("io.k8s.api.core.v1.PodSpec", "resourceClaims", "name"),
    by_key("io.k8s.api.core.v1.Container", "ports", "containerPort"),
    by_key("io.k8s.api.core.v1.Container", "env", "name"),
    by_key("io.k8s.api.core.v1.Container", "volumeMounts", "mountPath"),
    by_key(
        "io.k8s.api.core.v1.Container",
        "volumeDevices",
        "devicePath",
    ),
    by_key(
        "io.k8s.api.core.v1.EphemeralContainer",
        "ports",
        "containerPort",
    ),
    by_key("io.k8s.api.core.v1.EphemeralContainer", "env", "name"),
    by_key(
        "io.k8s.api.core.v1.EphemeralContainer",
        "volumeMounts",
        "mountPath",
    ),
    by_key(
        "io.k8s.api.core.v1.EphemeralContainer",
        "volumeDevices",
        "devicePath",
    ),
    conditions("io.k8s.api.core.v1.PodStatus"),
    by_key("io.k8s.api.core.v1.PodStatus", "podIPs", "ip"),
    by_key("io.k8s.api.core.v1.PodStatus", "hostIPs", "ip"),
    by_key_retaining(
        "io.k8s.api.core.v1.PodStatus",
        "resourceClaimStatuses",
        "name",
    ),
    by_key(
        "io.k8s.api.core.v1.ContainerStatus",
        "volumeMounts",
        "mountPath",
    ),
    by_key(
        "io.k8s.api.core.v1.ContainerStatus",
        "allocatedResourcesStatus",
        "name",
    ),
    // core/v1: everything else
    by_key("io.k8s.api.core.v1.ServiceSpec", "ports", "port"),
    conditions("io.k8s.api.core.v1.ServiceStatus"),
    by_key("io.k8s.api.core.v1.ServiceAccount", "secrets", "name"),
    set("io.k8s.api.core.v1.NodeSpec", "podCIDRs"),
    conditions("io.k8s.api.core.v1.NodeStatus"),
    by_key("io.k8s.api.core.v1.NodeStatus", "addresses", "type"),
    conditions("io.k8s.api.core.v1.NamespaceStatus"),
    conditions("io.k8s.api.core.v1.PersistentVolumeClaimStatus"),
    conditions("io.k8s.api.core.v1.ReplicationControllerStatus"),
    conditions("io.k8s.api.core.v1.ComponentStatus"),
    // apps/v1
    retain_keys("io.k8s.api.apps.v1.DeploymentSpec", "strategy"),
    conditions("io.k8s.api.apps.v1.DeploymentStatus"),
    conditions("io.k8s.api.apps.v1.ReplicaSetStatus"),
    conditions("io.k8s.api.apps.v1.StatefulSetStatus"),
    conditions("io.k8s.api.apps.v1.DaemonSetStatus"),
    // batch/v1, autoscaling/v2, policy/v1
    conditions("io.k8s.api.batch.v1.JobStatus"),
    conditions("io.k8s.api.autoscaling.v2.HorizontalPodAutoscalerStatus"),
    replace("io.k8s.api.policy.v1.PodDisruptionBudgetSpec", "selector"),
    conditions("io.k8s.api.policy.v1.PodDisruptionBudgetStatus"),
    // networking, flowcontrol, storage, resource
    conditions("io.k8s.api.networking.v1.ServiceCIDRStatus"),
    conditions("io.k8s.api.networking.v1beta1.ServiceCIDRStatus"),
    conditions("io.k8s.api.flowcontrol.v1.FlowSchemaStatus"),
    conditions("io.k8s.api.flowcontrol.v1.PriorityLevelConfigurationStatus"),
    by_key("io.k8s.api.storage.v1.CSINodeSpec", "drivers", "name"),
    by_key(
        "io.k8s.api.resource.v1beta1.ResourceClaimStatus",
        "reservedFor",
        "uid",
    ),
    by_key(
        "io.k8s.api.resource.v1beta2.ResourceClaimStatus",
        "reservedFor",
        "uid",
    ),
    // admissionregistration/v1
    by_key(
        "io.k8s.api.admissionregistration.v1.ValidatingWebhookConfiguration",
        "webhooks",
        "name",
    ),
    by_key(
        "io.k8s.api.admissionregistration.v1.MutatingWebhookConfiguration",
        "webhooks",
        "name",
    ),
    by_key(
        "io.k8s.api.admissionregistration.v1.ValidatingWebhook",
        "matchConditions",
        "name",
    ),
    by_key(
        "io.k8s.api.admissionregistration.v1.MutatingWebhook",
        "matchConditions",
        "name",
    ),
    by_key(
        "io.k8s.api.admissionregistration.v1.ValidatingAdmissionPolicySpec",
        "matchConditions",
        "name",
    ),
    by_key(
        "io.k8s.api.admissionregistration.v1.ValidatingAdmissionPolicySpec",
        "variables",
        "name",
    ),
    // kube-aggregator
    conditions("io.k8s.kube-aggregator.pkg.apis.apiregistration.v1.APIServiceStatus"),
];
