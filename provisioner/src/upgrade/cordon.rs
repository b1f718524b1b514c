//! Remembering on the Node itself that the upgrade cordoned it (an
//! annotation), so the upgrade, or its re-run after a failure, uncordons
//! the Nodes it cordoned and never one an operator cordoned on purpose.

use std::time::Duration;

use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, Patch, PatchParams};
use serde_json::{json, Value};

use crate::join;

/// Set on a Node while the upgrade holds it cordoned.
pub const ANNOTATION: &str = "berth.dev/cordoned-by-upgrade";

/// The merge patch that cordons a Node and says the upgrade did.
pub fn cordon_patch() -> Value {
    json!({
        "metadata": { "annotations": { ANNOTATION: "true" } },
        "spec": { "unschedulable": true }
    })
}

/// The merge patch that uncordons a Node (removing the field, as `kubectl
/// uncordon` leaves it) and forgets that the upgrade cordoned it.
pub fn release_patch() -> Value {
    json!({
        "metadata": { "annotations": { ANNOTATION: null } },
        "spec": { "unschedulable": null }
    })
}

/// Whether `node` is cordoned by the upgrade.
pub fn cordoned_by_upgrade(node: &Node) -> bool {
    node.metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(ANNOTATION))
}

/// Whether `node` takes new pods now.
pub fn schedulable(node: &Node) -> bool {
    node.spec
        .as_ref()
        .and_then(|s| s.unschedulable)
        .is_none_or(|u| !u)
}

async fn patch(nodes: &Api<Node>, name: &str, patch: &Value) -> Result<(), String> {
    nodes
        .patch(name, &PatchParams::default(), &Patch::Merge(patch))
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Cordons Node `name` for the upgrade, unless it is cordoned already.
pub async fn cordon(client: &kube::Client, name: &str) -> Result<(), String> {
    let nodes: Api<Node> = Api::all(client.clone());
    let node = nodes.get(name).await.map_err(|e| e.to_string())?;
    if schedulable(&node) {
        patch(&nodes, name, &cordon_patch()).await?;
    }
    Ok(())
}

/// Uncordons Node `name` once Ready (within `timeout`) if the upgrade
/// cordoned it; leaves it alone otherwise.
pub async fn release(client: &kube::Client, name: &str, timeout: Duration) -> Result<(), String> {
    let nodes: Api<Node> = Api::all(client.clone());
    let Some(node) = nodes.get_opt(name).await.map_err(|e| e.to_string())? else {
        return Ok(());
    };
    if !cordoned_by_upgrade(&node) {
        return Ok(());
    }
    join::wait_ready(client, &[name.to_owned()], timeout)
        .await
        .map_err(|_| format!("not Ready within {timeout:?}"))?;
    patch(&nodes, name, &release_patch()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(unschedulable: Option<bool>, annotated: bool) -> Node {
        let mut value = json!({ "metadata": { "name": "n1" }, "spec": {} });
        if let Some(u) = unschedulable {
            value["spec"]["unschedulable"] = json!(u);
        }
        if annotated {
            value["metadata"]["annotations"] = json!({ ANNOTATION: "true" });
        }
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn only_nodes_the_upgrade_cordoned_are_released() {
        let cases = [
            (
                node(None, false),
                true,
                false,
                "schedulable: cordoned by us",
            ),
            (node(Some(false), false), true, false, "unschedulable false"),
            (
                node(Some(true), false),
                false,
                false,
                "cordoned by an operator",
            ),
            (
                node(Some(true), true),
                false,
                true,
                "cordoned by an earlier run",
            ),
        ];
        for (node, want_schedulable, want_ours, case) in cases {
            assert_eq!(schedulable(&node), want_schedulable, "{case}");
            assert_eq!(cordoned_by_upgrade(&node), want_ours, "{case}");
        }
    }

    #[test]
    fn applying_the_patches_cordons_then_restores_the_node() {
        let mut value = serde_json::to_value(node(None, false)).unwrap();
        json_patch_merge(&mut value, &cordon_patch());
        let cordoned: Node = serde_json::from_value(value.clone()).unwrap();
        assert!(!schedulable(&cordoned) && cordoned_by_upgrade(&cordoned));
        json_patch_merge(&mut value, &release_patch());
        let released: Node = serde_json::from_value(value).unwrap();
        assert!(schedulable(&released) && !cordoned_by_upgrade(&released));
        assert_eq!(released.spec.unwrap().unschedulable, None);
    }

    /// RFC 7386 merge patch, enough for these patches.
    fn json_patch_merge(target: &mut Value, patch: &Value) {
        let Value::Object(patch) = patch else {
            *target = patch.clone();
            return;
        };
        if !target.is_object() {
            *target = json!({});
        }
        let object = target.as_object_mut().unwrap();
        for (key, value) in patch {
            if value.is_null() {
                object.remove(key);
            } else {
                json_patch_merge(object.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
    }
}
