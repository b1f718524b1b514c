//! Whether a pod's tolerations tolerate a node's taints (upstream's
//! `Toleration.ToleratesTaint`), shared by the scheduler and the node
//! lifecycle controller.

use k8s_openapi::api::core::v1::{Taint, Toleration};

/// Does `toleration` tolerate `taint`?
pub fn tolerates(toleration: &Toleration, taint: &Taint) -> bool {
    if let Some(effect) = toleration.effect.as_deref().filter(|e| !e.is_empty()) {
        if effect != taint.effect {
            return false;
        }
    }
    if let Some(key) = toleration.key.as_deref().filter(|k| !k.is_empty()) {
        if key != taint.key {
            return false;
        }
    }
    match toleration.operator.as_deref().unwrap_or("Equal") {
        "Exists" => true,
        "Equal" | "" => {
            toleration.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or("")
        }
        _ => false,
    }
}

/// Does any of `tolerations` tolerate `taint`?
pub fn tolerated(tolerations: &[Toleration], taint: &Taint) -> bool {
    tolerations.iter().any(|t| tolerates(t, taint))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tolerations_match_taints_as_upstream() {
        let taint: Taint = serde_json::from_value(
            json!({"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}),
        )
        .unwrap();
        let cases = [
            (json!({"key": "nvidia.com/gpu", "operator": "Exists"}), true),
            (json!({"key": "nvidia.com/gpu", "value": "present"}), true),
            (
                json!({"key": "nvidia.com/gpu", "operator": "Equal", "value": "present", "effect": "NoSchedule"}),
                true,
            ),
            (json!({"key": "nvidia.com/gpu", "value": "absent"}), false),
            (
                json!({"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoExecute"}),
                false,
            ),
            (json!({"operator": "Exists"}), true),
            (json!({"key": "other", "operator": "Exists"}), false),
        ];
        for (toleration, want) in cases {
            let t: Toleration = serde_json::from_value(toleration.clone()).unwrap();
            assert_eq!(tolerates(&t, &taint), want, "{toleration}");
        }
    }
}
