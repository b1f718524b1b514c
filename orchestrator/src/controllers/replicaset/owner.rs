//! Which kind the replica controller serves: ReplicaSets, or
//! ReplicationControllers seen as ReplicaSets with an equality selector, as
//! upstream's replication manager wraps the ReplicaSet controller. The kind
//! decides the owner references, events and status writes; nothing else.

use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetSpec, ReplicaSetStatus};
use k8s_openapi::api::core::v1::{ObjectReference, ReplicationController};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, OwnerReference};
use kube::api::{Api, ApiResource, DynamicObject};

/// The kind whose objects keep replicas of a pod template.
#[derive(Debug, Clone)]
pub struct OwnerKind {
    /// Its group, version, kind and plural.
    pub resource: ApiResource,
    /// The component its events are signed with.
    pub component: &'static str,
    /// Its workqueue's name in the `workqueue_*` metrics, as
    /// kube-controller-manager names it.
    pub queue: &'static str,
}

impl OwnerKind {
    /// `apps/v1` ReplicaSets.
    pub fn replica_set() -> Self {
        Self {
            resource: ApiResource::erase::<ReplicaSet>(&()),
            component: "replicaset-controller",
            queue: "replicaset",
        }
    }

    /// `v1` ReplicationControllers.
    pub fn replication_controller() -> Self {
        Self {
            resource: ApiResource::erase::<ReplicationController>(&()),
            component: "replication-controller",
            queue: "replicationmanager",
        }
    }

    /// The controller reference pods of `rs` carry (blocking its foreground deletion).
    pub fn reference(&self, rs: &ReplicaSet) -> OwnerReference {
        OwnerReference {
            api_version: self.resource.api_version.clone(),
            kind: self.resource.kind.clone(),
            name: rs.metadata.name.clone().unwrap_or_default(),
            uid: rs.metadata.uid.clone().unwrap_or_default(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        }
    }

    /// The `involvedObject` of events about `rs`.
    pub fn object_reference(&self, rs: &ReplicaSet) -> ObjectReference {
        ObjectReference {
            api_version: Some(self.resource.api_version.clone()),
            kind: Some(self.resource.kind.clone()),
            name: rs.metadata.name.clone(),
            namespace: rs.metadata.namespace.clone(),
            uid: rs.metadata.uid.clone(),
            resource_version: rs.metadata.resource_version.clone(),
            field_path: None,
        }
    }

    /// The API of this kind in `namespace` (for status writes).
    pub fn api(&self, client: kube::Client, namespace: &str) -> Api<DynamicObject> {
        Api::namespaced_with(client, namespace, &self.resource)
    }
}

/// A ReplicationController as the ReplicaSet it amounts to: its map selector
/// becomes `matchLabels`; metadata, template and status carry over unchanged.
pub fn as_replica_set(rc: &ReplicationController) -> ReplicaSet {
    let spec = rc.spec.clone().unwrap_or_default();
    let status = rc.status.as_ref().and_then(|s| {
        serde_json::to_value(s)
            .ok()
            .and_then(|v| serde_json::from_value::<ReplicaSetStatus>(v).ok())
    });
    ReplicaSet {
        metadata: rc.metadata.clone(),
        spec: Some(ReplicaSetSpec {
            replicas: spec.replicas,
            min_ready_seconds: spec.min_ready_seconds,
            selector: LabelSelector {
                match_labels: Some(spec.selector.unwrap_or_default()),
                match_expressions: None,
            },
            template: spec.template,
        }),
        status,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn controllers_become_replica_sets_and_own_as_themselves() {
        let rc: ReplicationController = serde_json::from_value(json!({
            "metadata": {"name": "nginx", "namespace": "default", "uid": "u1", "generation": 2},
            "spec": {"replicas": 3, "selector": {"app": "nginx"},
                     "template": {"metadata": {"labels": {"app": "nginx"}},
                                  "spec": {"containers": [{"name": "nginx", "image": "nginx"}]}}},
            "status": {"replicas": 1, "readyReplicas": 1, "observedGeneration": 1,
                       "conditions": [{"type": "ReplicaFailure", "status": "True"}]}
        }))
        .unwrap();
        let rs = as_replica_set(&rc);
        let spec = rs.spec.as_ref().unwrap();
        assert_eq!(spec.replicas, Some(3));
        assert_eq!(spec.selector.match_labels.as_ref().unwrap()["app"], "nginx");
        let status = rs.status.as_ref().unwrap();
        assert_eq!((status.replicas, status.ready_replicas), (1, Some(1)));
        assert_eq!(
            status.conditions.as_ref().unwrap()[0].type_,
            "ReplicaFailure"
        );
        let owner = OwnerKind::replication_controller().reference(&rs);
        assert_eq!(
            (
                owner.api_version.as_str(),
                owner.kind.as_str(),
                owner.uid.as_str()
            ),
            ("v1", "ReplicationController", "u1")
        );
        assert_eq!(owner.controller, Some(true));
        assert_eq!(OwnerKind::replica_set().reference(&rs).kind, "ReplicaSet");
    }
}
