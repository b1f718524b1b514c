//! ClusterRoles: cluster-wide policy rules (and aggregation rules), validated
//! as upstream's `pkg/registry/rbac/clusterrole` does; NAME and CREATED AT.

use serde_json::Value;

use crate::field::FieldCause;
use crate::kinds::{KindRules, NameRule};
use crate::rbac::validation;
use crate::table::Column;

/// The rules of `rbac.authorization.k8s.io/v1` ClusterRole.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClusterRole;

impl KindRules for ClusterRole {
    fn name_rule(&self) -> NameRule {
        NameRule::PathSegment
    }

    fn validate(&self, obj: &Value) -> Vec<FieldCause> {
        validation::validate_cluster_role(obj)
    }

    fn validate_update(&self, old: &Value, new: &Value) -> Vec<FieldCause> {
        super::update_only(
            validation::validate_cluster_role_update(new, old),
            &validation::validate_cluster_role(new),
        )
    }

    fn columns(&self) -> Vec<Column> {
        super::role_columns()
    }

    fn cells(&self, obj: &Value, _now: jiff::Timestamp) -> Vec<Value> {
        super::role_cells(obj)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rules_are_checked() {
        let cases = [
            (
                json!({"rules": [{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}]}),
                0,
            ),
            (
                json!({"rules": [{"apiGroups": [""], "resources": ["pods"]}]}),
                1,
            ),
            (
                json!({"rules": [{"verbs": ["get"], "nonResourceURLs": ["/healthz"]}]}),
                0,
            ),
            (json!({"aggregationRule": {"clusterRoleSelectors": []}}), 1),
            (
                json!({"aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"a": "b"}}]}}),
                0,
            ),
        ];
        for (role, problems) in cases {
            assert_eq!(ClusterRole.validate(&role).len(), problems, "{role}");
        }
        assert_eq!(ClusterRole.name_rule(), NameRule::PathSegment);
    }
}
