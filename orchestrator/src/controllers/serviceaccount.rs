//! Service accounts: every active namespace has a `default` ServiceAccount,
//! created as soon as the namespace is and again if someone deletes it, as
//! upstream's serviceaccounts-controller keeps it. Level-triggered: each pass
//! only asks whether the account is there.

use std::sync::Arc;
use std::time::Duration;

use berth_observability::workqueue::RunWithWorkqueue;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use kube::api::{Api, ObjectMeta, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::ResourceExt;
use tokio_util::sync::CancellationToken;

use super::ControllerError;

/// The account every namespace gets.
pub const DEFAULT_ACCOUNT: &str = "default";

struct Context {
    client: kube::Client,
}

async fn reconcile(namespace: Arc<Namespace>, ctx: Arc<Context>) -> Result<Action, kube::Error> {
    if namespace.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let name = namespace.name_any();
    let accounts: Api<ServiceAccount> = Api::namespaced(ctx.client.clone(), &name);
    if accounts.get_opt(DEFAULT_ACCOUNT).await?.is_some() {
        return Ok(Action::await_change());
    }
    let account = ServiceAccount {
        metadata: ObjectMeta {
            name: Some(DEFAULT_ACCOUNT.to_owned()),
            ..ObjectMeta::default()
        },
        ..ServiceAccount::default()
    };
    match accounts.create(&PostParams::default(), &account).await {
        Ok(_) => tracing::debug!(namespace = %name, "created the default service account"),
        // Created meanwhile, or the namespace began terminating: nothing to do.
        Err(kube::Error::Api(status)) if status.code == 409 || status.code == 403 => {}
        Err(e) => return Err(e),
    }
    Ok(Action::await_change())
}

fn error_policy(_namespace: Arc<Namespace>, error: &kube::Error, _ctx: Arc<Context>) -> Action {
    tracing::warn!(%error, "service account reconcile failed");
    Action::requeue(Duration::from_secs(2))
}

/// Runs the service account controller until `cancel` fires.
pub async fn run(client: kube::Client, cancel: CancellationToken) -> Result<(), ControllerError> {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let accounts: Api<ServiceAccount> = Api::all(client.clone());
    let context = Arc::new(Context { client });
    Controller::new(namespaces, watcher::Config::default())
        .watches(
            accounts,
            watcher::Config::default().fields(&format!("metadata.name={DEFAULT_ACCOUNT}")),
            |account| account.namespace().map(|ns| ObjectRef::new(&ns)),
        )
        .graceful_shutdown_on(async move { cancel.cancelled().await })
        .run_with_workqueue("serviceaccount", reconcile, error_policy, context)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "service account controller event");
            }
        })
        .await;
    Ok(())
}
