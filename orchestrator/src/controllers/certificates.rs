//! The certificates controllers of kube-controller-manager that node joining
//! needs: csrapproving (auto-approves kubelet client requests RBAC allows)
//! and csrsigning (issues approved kubelet requests with the cluster CA).

pub mod approver;
pub mod kubelet_csr;
pub mod signer;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use berth_observability::workqueue::RunWithWorkqueue;
use futures::StreamExt;
use k8s_openapi::api::certificates::v1::{
    CertificateSigningRequest, CertificateSigningRequestCondition,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::Api;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use tokio_util::sync::CancellationToken;

/// Runs `reconcile` over every CertificateSigningRequest until `cancel`
/// fires; a failed reconcile is retried after two seconds.
async fn run_over_requests<Ctx, Fut>(
    client: kube::Client,
    controller: &'static str,
    reconcile: impl FnMut(Arc<CertificateSigningRequest>, Arc<Ctx>) -> Fut,
    context: Arc<Ctx>,
    cancel: CancellationToken,
) where
    Ctx: Send + Sync + 'static,
    Fut: Future<Output = Result<Action, kube::Error>> + Send + 'static,
{
    let csrs: Api<CertificateSigningRequest> = Api::all(client);
    let error_policy =
        move |_: Arc<CertificateSigningRequest>, error: &kube::Error, _: Arc<Ctx>| {
            tracing::warn!(%error, controller, "reconcile failed");
            Action::requeue(Duration::from_secs(2))
        };
    Controller::new(csrs, watcher::Config::default())
        .graceful_shutdown_on(async move { cancel.cancelled().await })
        .run_with_workqueue(controller, reconcile, error_policy, context)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, controller, "controller event");
            }
        })
        .await;
}

/// A `True` condition of `kind` set at `now`, as the controllers add them.
pub fn condition(
    kind: &str,
    reason: &str,
    message: &str,
    now: jiff::Timestamp,
) -> CertificateSigningRequestCondition {
    CertificateSigningRequestCondition {
        type_: kind.into(),
        status: "True".into(),
        reason: Some(reason.into()),
        message: Some(message.into()),
        last_update_time: Some(Time(now)),
        last_transition_time: Some(Time(now)),
    }
}
