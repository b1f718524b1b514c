//! Namespace lifecycle: a namespace being deleted has everything in it deleted
//! (every namespaced resource discovery lists), then its `kubernetes`
//! finalizer released through `namespaces/finalize`, as upstream's namespace
//! controller does. Level-triggered: each pass re-reads what is left.

use std::sync::Arc;
use std::time::Duration;

use berth_observability::workqueue::RunWithWorkqueue;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, PostParams};
use kube::discovery::{verbs, Discovery, Scope};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::ResourceExt;
use tokio_util::sync::CancellationToken;

use super::ControllerError;

/// The finalizer the API server puts on every namespace.
const KUBERNETES_FINALIZER: &str = "kubernetes";

struct Context {
    client: kube::Client,
}

#[derive(Debug, thiserror::Error)]
enum ReconcileError {
    #[error("{0}")]
    Api(#[from] kube::Error),
}

/// Deletes everything in `namespace`; returns how many objects are still there.
async fn delete_contents(client: &kube::Client, namespace: &str) -> Result<usize, kube::Error> {
    let discovery = Discovery::new(client.clone()).run().await?;
    let mut remaining = 0;
    for group in discovery.groups() {
        for (resource, capabilities) in group.recommended_resources() {
            if capabilities.scope != Scope::Namespaced
                || !capabilities.supports_operation(verbs::LIST)
            {
                continue;
            }
            let api: Api<DynamicObject> =
                Api::namespaced_with(client.clone(), namespace, &resource);
            let objects = api.list(&ListParams::default()).await?;
            for object in &objects.items {
                if object.metadata.deletion_timestamp.is_none() {
                    match api
                        .delete(&object.name_any(), &DeleteParams::background())
                        .await
                    {
                        Ok(_) => {}
                        Err(kube::Error::Api(status)) if status.code == 404 => {}
                        Err(e) => return Err(e),
                    }
                }
            }
            remaining += api.list(&ListParams::default()).await?.items.len();
        }
    }
    Ok(remaining)
}

async fn reconcile(namespace: Arc<Namespace>, ctx: Arc<Context>) -> Result<Action, ReconcileError> {
    if namespace.metadata.deletion_timestamp.is_none() {
        return Ok(Action::await_change());
    }
    let finalizers = namespace
        .spec
        .as_ref()
        .and_then(|s| s.finalizers.clone())
        .unwrap_or_default();
    if !finalizers.iter().any(|f| f == KUBERNETES_FINALIZER) {
        return Ok(Action::await_change());
    }
    let name = namespace.name_any();
    let remaining = delete_contents(&ctx.client, &name).await?;
    if remaining > 0 {
        tracing::debug!(namespace = %name, remaining, "waiting for namespace contents to go");
        return Ok(Action::requeue(Duration::from_secs(1)));
    }
    let mut released = (*namespace).clone();
    if let Some(spec) = released.spec.as_mut() {
        spec.finalizers = Some(
            finalizers
                .into_iter()
                .filter(|f| f != KUBERNETES_FINALIZER)
                .collect(),
        );
    }
    released.metadata.managed_fields = None;
    let api: Api<Namespace> = Api::all(ctx.client.clone());
    api.replace_subresource("finalize", &name, &PostParams::default(), &released)
        .await?;
    tracing::info!(namespace = %name, "namespace finalized");
    Ok(Action::await_change())
}

fn error_policy(_namespace: Arc<Namespace>, error: &ReconcileError, _ctx: Arc<Context>) -> Action {
    tracing::warn!(%error, "namespace reconcile failed");
    Action::requeue(Duration::from_secs(2))
}

/// Runs the namespace controller until `cancel` fires.
pub async fn run(client: kube::Client, cancel: CancellationToken) -> Result<(), ControllerError> {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let context = Arc::new(Context { client });
    Controller::new(namespaces, watcher::Config::default())
        .graceful_shutdown_on(async move { cancel.cancelled().await })
        .run_with_workqueue("namespace", reconcile, error_policy, context)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "namespace controller event");
            }
        })
        .await;
    Ok(())
}
