//! The TTL-after-finished controller (upstream's `pkg/controller/ttlafterfinished`):
//! deletes a finished Job (Complete or Failed) `spec.ttlSecondsAfterFinished`
//! after it finished, in the background so its pods follow through the
//! garbage collector. Before deleting it reads the Job afresh, so a TTL
//! changed meanwhile is honoured.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use berth_observability::workqueue;
use futures::{Future, StreamExt};
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::batch::v1::Job;
use kube::api::{Api, DeleteParams, Preconditions, PropagationPolicy};
use kube::runtime::controller::{Action, Config};
use kube::runtime::reflector::ObjectRef;
use kube::ResourceExt;
use tokio_util::sync::CancellationToken;

use super::informers::Informers;
use super::job::conditions::true_condition;
use super::ControllerError;

/// When `job` expires: its finish time plus its TTL; none while it runs or
/// without a TTL. The finish time is the terminal condition's transition time.
pub fn expires_at(job: &Job) -> Option<Timestamp> {
    let ttl = job.spec.as_ref()?.ttl_seconds_after_finished?;
    let status = job.status.as_ref()?;
    let condition =
        true_condition(status, "Complete").or_else(|| true_condition(status, "Failed"))?;
    let finished = condition
        .last_transition_time
        .as_ref()
        .map(|t| t.0)
        .or_else(|| status.completion_time.as_ref().map(|t| t.0))?;
    finished
        .checked_add(SignedDuration::from_secs(i64::from(ttl)))
        .ok()
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct ReconcileError(#[from] kube::Error);

async fn reconcile(job: Arc<Job>, client: Arc<kube::Client>) -> Result<Action, ReconcileError> {
    if job.metadata.deletion_timestamp.is_some() || expires_at(&job).is_none() {
        return Ok(Action::await_change());
    }
    let api: Api<Job> = Api::namespaced((*client).clone(), &job.namespace().unwrap_or_default());
    // The cache may be stale: decide on the Job as it is now.
    let Some(fresh) = api.get_opt(&job.name_any()).await? else {
        return Ok(Action::await_change());
    };
    let Some(expiry) = expires_at(&fresh) else {
        return Ok(Action::await_change());
    };
    let now = Timestamp::now();
    if expiry > now {
        let wait = Duration::try_from(now.duration_until(expiry)).unwrap_or_default();
        return Ok(Action::requeue(wait + Duration::from_millis(100)));
    }
    let params = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Background),
        preconditions: Some(Preconditions {
            uid: fresh.metadata.uid.clone(),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    tracing::info!(job = %format!("{}/{}", fresh.namespace().unwrap_or_default(), fresh.name_any()), "deleting finished job after its TTL");
    match api.delete(&fresh.name_any(), &params).await {
        Ok(_) => Ok(Action::await_change()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(Action::await_change()),
        Err(kube::Error::Api(s)) if s.code == 409 => {
            tracing::info!(job = %fresh.name_any(), "job changed while deleting it; looking again");
            Ok(Action::requeue(Duration::from_secs(1)))
        }
        Err(e) => Err(e.into()),
    }
}

fn error_policy(job: Arc<Job>, error: &ReconcileError, _client: Arc<kube::Client>) -> Action {
    tracing::warn!(job = %job.name_any(), %error, "ttl-after-finished failed");
    Action::requeue(Duration::from_secs(5))
}

type ReconcileFuture = Pin<Box<dyn Future<Output = Result<Action, ReconcileError>> + Send>>;

/// Runs the TTL-after-finished controller until `cancel` fires.
pub async fn run(
    client: kube::Client,
    informers: Informers,
    cancel: CancellationToken,
) -> Result<(), ControllerError> {
    let (jobs, job_events) = informers.watch::<Job>();
    let queue = job_events.map(|r| r.map(|j| ObjectRef::from_obj(&*j)));
    workqueue::named("ttl_jobs_to_delete")
        .applier(
            |job: Arc<Job>, client| -> ReconcileFuture { Box::pin(reconcile(job, client)) },
            error_policy,
            Arc::new(client),
            jobs.store(),
            queue,
            Config::default(),
        )
        .take_until(cancel.cancelled())
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "ttl-after-finished event");
            }
        })
        .await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn expiry_is_the_finish_time_plus_the_ttl() {
        let job = |ttl: serde_json::Value, conditions: serde_json::Value| -> Job {
            serde_json::from_value(json!({
                "metadata": {"name": "j"},
                "spec": {"template": {}, "ttlSecondsAfterFinished": ttl},
                "status": {"conditions": conditions}
            }))
            .unwrap()
        };
        let done = json!([{"type": "Complete", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"}]);
        let failed = json!([{"type": "Failed", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"}]);
        let running = json!([{"type": "Suspended", "status": "False"}]);
        let cases = [
            (job(json!(30), done), Some("2026-01-01T00:00:30Z")),
            (job(json!(0), failed), Some("2026-01-01T00:00:00Z")),
            (job(json!(30), running), None),
            (job(json!(null), json!([])), None),
        ];
        for (job, expected) in cases {
            let expected = expected.map(|t| t.parse::<Timestamp>().unwrap());
            assert_eq!(expires_at(&job), expected);
        }
    }
}
