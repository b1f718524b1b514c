//! A StatefulSet pod's stable identity (upstream's `stateful_set_utils.go`):
//! the name `SET-ORDINAL`, hostname and subdomain for per-pod DNS through the
//! governing Service, the `statefulset.kubernetes.io/pod-name`,
//! `apps.kubernetes.io/pod-index` and `controller-revision-hash` labels, and
//! one claim `TEMPLATE-SET-ORDINAL` per volumeClaimTemplate mounted as the
//! template's volume. Pure: it builds objects, the controller sends them.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{
    PersistentVolumeClaim, PersistentVolumeClaimVolumeSource, Pod, PodTemplateSpec, Volume,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::ResourceExt;

use crate::controllers::history::CONTROLLER_REVISION_HASH;
use crate::controllers::workload::controller_reference;

/// The label naming the pod, so a Service can select one replica.
pub const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";
/// The label carrying the pod's ordinal.
pub const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";

/// The first ordinal (`spec.ordinals.start`, default 0).
pub fn start_ordinal(set: &StatefulSet) -> i32 {
    set.spec
        .as_ref()
        .and_then(|s| s.ordinals.as_ref())
        .and_then(|o| o.start)
        .unwrap_or(0)
}

/// `spec.replicas` (default 1).
pub fn replicas(set: &StatefulSet) -> i32 {
    set.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

/// `SET-ORDINAL`.
pub fn pod_name(set: &str, ordinal: i32) -> String {
    format!("{set}-{ordinal}")
}

/// The ordinal of a pod named `SET-ORDINAL`, None for any other name
/// (upstream's `getParentNameAndOrdinal`).
pub fn ordinal_of(set: &str, pod: &str) -> Option<i32> {
    let rest = pod.strip_prefix(set)?.strip_prefix('-')?;
    if rest.is_empty() || !rest.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    rest.parse().ok()
}

/// `TEMPLATE-SET-ORDINAL` (upstream's `getPersistentVolumeClaimName`).
pub fn claim_name(template: &str, set: &str, ordinal: i32) -> String {
    format!("{template}-{set}-{ordinal}")
}

/// The pod of `ordinal` made from `template` at revision `hash`.
pub fn new_pod(set: &StatefulSet, template: &PodTemplateSpec, ordinal: i32, hash: &str) -> Pod {
    let name = pod_name(&set.name_any(), ordinal);
    let meta = template.metadata.clone().unwrap_or_default();
    let mut labels = meta.labels.unwrap_or_default();
    labels.insert(POD_NAME_LABEL.into(), name.clone());
    labels.insert(POD_INDEX_LABEL.into(), ordinal.to_string());
    labels.insert(CONTROLLER_REVISION_HASH.into(), hash.into());
    let mut spec = template.spec.clone().unwrap_or_default();
    spec.hostname = Some(name.clone());
    spec.subdomain = set
        .spec
        .as_ref()
        .and_then(|s| s.service_name.clone())
        .filter(|s| !s.is_empty());
    let mut volumes = spec.volumes.take().unwrap_or_default();
    for claim in claim_templates(set) {
        let template_name = claim.name_any();
        volumes.retain(|v| v.name != template_name);
        volumes.push(Volume {
            name: template_name.clone(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: claim_name(&template_name, &set.name_any(), ordinal),
                read_only: None,
            }),
            ..Default::default()
        });
    }
    spec.volumes = (!volumes.is_empty()).then_some(volumes);
    Pod {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: set.namespace(),
            labels: Some(labels),
            annotations: meta.annotations,
            owner_references: Some(vec![controller_reference(set)]),
            ..Default::default()
        },
        spec: Some(spec),
        status: None,
    }
}

/// `spec.volumeClaimTemplates`.
pub fn claim_templates(set: &StatefulSet) -> &[PersistentVolumeClaim] {
    set.spec
        .as_ref()
        .and_then(|s| s.volume_claim_templates.as_deref())
        .unwrap_or_default()
}

/// Whether the retention policy field `pick` (whenDeleted or whenScaled) is Delete.
pub fn deletes_claims(set: &StatefulSet, when_scaled: bool) -> bool {
    let policy = set
        .spec
        .as_ref()
        .and_then(|s| s.persistent_volume_claim_retention_policy.as_ref());
    let value = policy.and_then(|p| {
        if when_scaled {
            p.when_scaled.as_deref()
        } else {
            p.when_deleted.as_deref()
        }
    });
    value == Some("Delete")
}

/// The claims of `ordinal`: each template named `TEMPLATE-SET-ORDINAL`,
/// labelled with the selector's matchLabels, owned (not controlled) by the
/// set when `whenDeleted: Delete` so the garbage collector removes them with it.
pub fn new_claims(set: &StatefulSet, ordinal: i32) -> Vec<PersistentVolumeClaim> {
    let match_labels: BTreeMap<String, String> = set
        .spec
        .as_ref()
        .and_then(|s| s.selector.match_labels.clone())
        .unwrap_or_default();
    let owner =
        deletes_claims(set, false).then(|| non_controller_reference(controller_reference(set)));
    claim_templates(set)
        .iter()
        .map(|template| {
            let mut claim = template.clone();
            let mut labels = claim.metadata.labels.take().unwrap_or_default();
            labels.extend(match_labels.clone());
            claim.metadata = ObjectMeta {
                name: Some(claim_name(&template.name_any(), &set.name_any(), ordinal)),
                namespace: set.namespace(),
                labels: Some(labels),
                annotations: claim.metadata.annotations.take(),
                owner_references: owner.clone().map(|o| vec![o]),
                ..Default::default()
            };
            claim.status = None;
            claim
        })
        .collect()
}

/// `reference` as a plain owner (upstream's claim owner refs are not controllers).
pub fn non_controller_reference(mut reference: OwnerReference) -> OwnerReference {
    reference.controller = None;
    reference
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::{
        StatefulSetPersistentVolumeClaimRetentionPolicy, StatefulSetSpec,
    };
    use k8s_openapi::api::core::v1::PodSpec;

    fn set() -> StatefulSet {
        let claim = PersistentVolumeClaim {
            metadata: ObjectMeta {
                name: Some("www".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        StatefulSet {
            metadata: ObjectMeta {
                name: Some("web".into()),
                namespace: Some("ns".into()),
                uid: Some("u".into()),
                ..Default::default()
            },
            spec: Some(StatefulSetSpec {
                service_name: Some("nginx".into()),
                selector: k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector {
                    match_labels: Some(BTreeMap::from([("app".into(), "web".into())])),
                    ..Default::default()
                },
                volume_claim_templates: Some(vec![claim]),
                persistent_volume_claim_retention_policy: Some(
                    StatefulSetPersistentVolumeClaimRetentionPolicy {
                        when_deleted: Some("Delete".into()),
                        when_scaled: Some("Retain".into()),
                    },
                ),
                ..Default::default()
            }),
            status: None,
        }
    }

    #[test]
    fn ordinals_parse_only_from_set_dash_digits() {
        let cases = [
            ("web", "web-0", Some(0)),
            ("web", "web-12", Some(12)),
            ("web", "web-x", None),
            ("web", "web-", None),
            ("web", "webb-1", None),
            ("web", "web-1-2", None),
            ("my-web", "my-web-3", Some(3)),
        ];
        for (set, pod, expected) in cases {
            assert_eq!(ordinal_of(set, pod), expected, "{pod}");
        }
    }

    #[test]
    fn pods_carry_identity_labels_dns_names_and_claim_volumes() {
        let template = PodTemplateSpec {
            metadata: Some(ObjectMeta {
                labels: Some(BTreeMap::from([("app".into(), "web".into())])),
                ..Default::default()
            }),
            spec: Some(PodSpec::default()),
        };
        let pod = new_pod(&set(), &template, 2, "abc");
        assert_eq!(pod.name_any(), "web-2");
        let labels = pod.labels();
        assert_eq!(labels[POD_NAME_LABEL], "web-2");
        assert_eq!(labels[POD_INDEX_LABEL], "2");
        assert_eq!(labels[CONTROLLER_REVISION_HASH], "abc");
        assert_eq!(labels["app"], "web");
        let spec = pod.spec.unwrap();
        assert_eq!(spec.hostname.as_deref(), Some("web-2"));
        assert_eq!(spec.subdomain.as_deref(), Some("nginx"));
        let volumes = spec.volumes.unwrap();
        assert_eq!(volumes[0].name, "www");
        assert_eq!(
            volumes[0]
                .persistent_volume_claim
                .as_ref()
                .unwrap()
                .claim_name,
            "www-web-2"
        );
        assert_eq!(
            pod.metadata.owner_references.unwrap()[0].controller,
            Some(true)
        );
    }

    #[test]
    fn claims_follow_the_retention_policy() {
        let claims = new_claims(&set(), 1);
        assert_eq!(claims[0].name_any(), "www-web-1");
        assert_eq!(claims[0].labels()["app"], "web");
        let owners = claims[0].metadata.owner_references.clone().unwrap();
        assert_eq!((owners[0].uid.as_str(), owners[0].controller), ("u", None));
        let mut retained = set();
        retained
            .spec
            .as_mut()
            .unwrap()
            .persistent_volume_claim_retention_policy = None;
        assert!(new_claims(&retained, 1)[0]
            .metadata
            .owner_references
            .is_none());
        assert!(!deletes_claims(&set(), true));
    }
}
