//! ClusterRole aggregation, as upstream's clusterrole-aggregation controller:
//! every ClusterRole with an `aggregationRule` keeps, as its `rules`, the rules
//! of the ClusterRoles its selectors match ([`berth_api::rbac::aggregation`]).
//! Level-triggered: any ClusterRole change (deletions included) recomputes
//! every aggregated role, and aggregated roles are re-checked periodically.

use std::sync::Arc;
use std::time::Duration;

use berth_observability::workqueue::RunWithWorkqueue;
use futures::StreamExt;
use k8s_openapi::api::rbac::v1::ClusterRole;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::reflector::Store;
use kube::runtime::watcher::{self, watcher};
use kube::ResourceExt;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::ControllerError;

/// The field manager the controller writes under.
const MANAGER: &str = "clusterrole-aggregation-controller";

struct Context {
    api: Api<ClusterRole>,
    roles: Store<ClusterRole>,
}

#[derive(Debug, thiserror::Error)]
enum ReconcileError {
    #[error("{0}")]
    Api(#[from] kube::Error),
    #[error("encoding a ClusterRole: {0}")]
    Encode(#[from] serde_json::Error),
}

/// The aggregated roles whose stored rules differ from what their selectors
/// gather: `(name, rules)` to write. Pure, over the roles as JSON.
fn stale_roles(all: &[Value]) -> Vec<(String, Vec<Value>)> {
    all.iter()
        .filter_map(|role| {
            let rules = berth_api::rbac::aggregation::aggregate(role, all)?;
            let current = role
                .get("rules")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let name = role["metadata"]["name"].as_str()?.to_owned();
            (current != rules).then_some((name, rules))
        })
        .collect()
}

/// How often an aggregated role is re-checked without any change seen.
const RESYNC: Duration = Duration::from_secs(30);

async fn reconcile(changed: Arc<ClusterRole>, ctx: Arc<Context>) -> Result<Action, ReconcileError> {
    // The Controller runs no reconcile before its own cache (`roles`) has
    // its first list, and nothing else waits on it: no wait here.
    let all = ctx
        .roles
        .state()
        .iter()
        .map(|role| serde_json::to_value(role.as_ref()))
        .collect::<Result<Vec<_>, _>>()?;
    let params = PatchParams {
        field_manager: Some(MANAGER.to_owned()),
        ..PatchParams::default()
    };
    for (name, rules) in stale_roles(&all) {
        let patch = json!({"rules": rules});
        ctx.api.patch(&name, &params, &Patch::Merge(&patch)).await?;
        tracing::debug!(clusterrole = %name, "aggregated rules updated");
    }
    if changed.aggregation_rule.is_some() {
        return Ok(Action::requeue(RESYNC));
    }
    Ok(Action::await_change())
}

fn error_policy(role: Arc<ClusterRole>, error: &ReconcileError, _ctx: Arc<Context>) -> Action {
    tracing::warn!(clusterrole = %role.name_any(), %error, "clusterrole aggregation failed");
    Action::requeue(Duration::from_secs(2))
}

/// Runs the aggregation controller until `cancel` fires.
pub async fn run(client: kube::Client, cancel: CancellationToken) -> Result<(), ControllerError> {
    let api: Api<ClusterRole> = Api::all(client);
    // A deleted role is not reconciled itself: its deletion re-checks them all.
    let deletions =
        watcher(api.clone(), watcher::Config::default()).filter_map(|event| async move {
            matches!(event, Ok(watcher::Event::Delete(_))).then_some(())
        });
    let controller = Controller::new(api.clone(), watcher::Config::default())
        .with_config(controller::Config::default().concurrency(1))
        .reconcile_all_on(deletions);
    let context = Arc::new(Context {
        api,
        roles: controller.store(),
    });
    controller
        .graceful_shutdown_on(async move { cancel.cancelled().await })
        .run_with_workqueue("ClusterRoleAggregator", reconcile, error_policy, context)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "clusterrole aggregation controller event");
            }
        })
        .await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_aggregated_roles_that_lag_are_written() {
        let rule = json!({"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]});
        let selector = json!({"clusterRoleSelectors": [{"matchLabels": {"agg": "true"}}]});
        let source =
            json!({"metadata": {"name": "src", "labels": {"agg": "true"}}, "rules": [rule]});
        let cases = [
            (
                json!({"metadata": {"name": "view"}, "aggregationRule": selector}),
                1,
            ),
            (
                json!({"metadata": {"name": "view"}, "aggregationRule": selector, "rules": [rule]}),
                0,
            ),
            (json!({"metadata": {"name": "plain"}, "rules": []}), 0),
        ];
        for (role, stale) in cases {
            let found = stale_roles(&[role.clone(), source.clone()]);
            assert_eq!(found.len(), stale, "{role}");
            if stale == 1 {
                assert_eq!(found[0], ("view".to_owned(), vec![rule.clone()]));
            }
        }
    }
}
