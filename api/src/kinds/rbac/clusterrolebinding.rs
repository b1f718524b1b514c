//! ClusterRoleBindings: grant a ClusterRole everywhere; subjects defaulted and
//! validated as upstream's `pkg/registry/rbac/clusterrolebinding`, `roleRef`
//! fixed once created. Printed with ROLE and (wide) the subjects.

use serde_json::Value;

use crate::field::FieldCause;
use crate::kinds::{KindRules, NameRule};
use crate::rbac::validation;
use crate::table::Column;

/// The rules of `rbac.authorization.k8s.io/v1` ClusterRoleBinding.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClusterRoleBinding;

impl KindRules for ClusterRoleBinding {
    fn name_rule(&self) -> NameRule {
        NameRule::PathSegment
    }

    fn default(&self, obj: &mut Value) {
        validation::default_subjects(obj);
    }

    fn validate(&self, obj: &Value) -> Vec<FieldCause> {
        validation::validate_cluster_role_binding(obj)
    }

    fn validate_update(&self, old: &Value, new: &Value) -> Vec<FieldCause> {
        super::update_only(
            validation::validate_cluster_role_binding_update(new, old),
            &validation::validate_cluster_role_binding(new),
        )
    }

    fn columns(&self) -> Vec<Column> {
        super::binding_columns()
    }

    fn cells(&self, obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        super::binding_cells(obj, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn role_ref_is_fixed_and_subjects_defaulted() {
        let old = json!({"roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "a"},
                         "subjects": [{"kind": "User", "name": "jane"}]});
        let mut new = old.clone();
        ClusterRoleBinding.default(&mut new);
        assert_eq!(new["subjects"][0]["apiGroup"], "rbac.authorization.k8s.io");
        let cases = [("a", 0), ("b", 1)];
        for (name, problems) in cases {
            new["roleRef"]["name"] = json!(name);
            let causes = ClusterRoleBinding.validate_update(&old, &new);
            assert_eq!(causes.len(), problems, "{causes:?}");
            assert!(causes
                .iter()
                .all(|c| c.message.contains("cannot change roleRef")));
        }
        assert!(!ClusterRoleBinding.validate(&json!({})).is_empty());
    }
}
