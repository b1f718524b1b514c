//! The CronJob controller (upstream's `pkg/controller/cronjob`, v2): creates
//! a Job named `NAME-<minutes since epoch>` at each scheduled time in the
//! CronJob's `timeZone`, honouring startingDeadlineSeconds, concurrencyPolicy
//! (Allow/Forbid/Replace), suspend and the history limits, and keeps
//! `status.active`, `lastScheduleTime` and `lastSuccessfulTime`. It is a plain
//! API client; which time comes next is decided in [`schedule`].

pub mod schedule;

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use berth_api::kinds::batch::cron;
use berth_observability::workqueue;
use futures::{stream, Future, StreamExt, TryStreamExt};
use jiff::tz::TimeZone;
use jiff::Timestamp;
use k8s_openapi::api::batch::v1::{CronJob, CronJobStatus, Job};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, PropagationPolicy};
use kube::runtime::controller::{Action, Config};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};
use tokio_util::sync::CancellationToken;

use super::cache::Cache;
use super::informers::Informers;
use super::job::conditions::true_condition;
use super::workload::{controller_of, controller_ref_of, controller_reference};
use super::ControllerError;
use berth_observability::events::{EventType, Recorder};

/// The annotation holding the time a Job was scheduled for (RFC 3339, in the CronJob's zone).
pub const SCHEDULED_TIMESTAMP: &str = "batch.kubernetes.io/cronjob-scheduled-timestamp";

struct Context {
    client: kube::Client,
    jobs: Cache<Job>,
    recorder: Recorder,
}

#[derive(Debug, thiserror::Error)]
enum ReconcileError {
    #[error("{0}")]
    Api(#[from] kube::Error),
    #[error("job cache closed")]
    CacheClosed,
}

/// How a Job ended, if it did: `Complete` or `Failed`.
fn finished(job: &Job) -> Option<&'static str> {
    let status = job.status.as_ref()?;
    if true_condition(status, "Complete").is_some() {
        Some("Complete")
    } else if true_condition(status, "Failed").is_some() {
        Some("Failed")
    } else {
        None
    }
}

fn reference(job: &Job) -> ObjectReference {
    ObjectReference {
        api_version: Some("batch/v1".into()),
        kind: Some("Job".into()),
        name: job.metadata.name.clone(),
        namespace: job.metadata.namespace.clone(),
        uid: job.metadata.uid.clone(),
        resource_version: job.metadata.resource_version.clone(),
        ..Default::default()
    }
}

/// The name of the Job for `scheduled`: NAME-<minutes since the epoch>.
pub fn job_name(cronjob: &str, scheduled: Timestamp) -> String {
    format!("{cronjob}-{}", scheduled.as_second().div_euclid(60))
}

/// The Job a CronJob starts for `scheduled` (in `tz`), from its jobTemplate.
pub fn job_for(cronjob: &CronJob, scheduled: Timestamp, tz: &TimeZone) -> Job {
    let template = cronjob
        .spec
        .as_ref()
        .map(|s| s.job_template.clone())
        .unwrap_or_default();
    let meta = template.metadata.unwrap_or_default();
    let mut annotations = meta.annotations.unwrap_or_default();
    let at = scheduled.to_zoned(tz.clone());
    annotations.insert(
        SCHEDULED_TIMESTAMP.into(),
        at.strftime("%Y-%m-%dT%H:%M:%S%:z")
            .to_string()
            .replace("+00:00", "Z"),
    );
    Job {
        metadata: ObjectMeta {
            name: Some(job_name(&cronjob.name_any(), scheduled)),
            namespace: cronjob.namespace(),
            labels: meta.labels,
            annotations: Some(annotations),
            owner_references: Some(vec![controller_reference(cronjob)]),
            ..Default::default()
        },
        spec: Some(template.spec.unwrap_or_default()),
        status: None,
    }
}

/// The CronJob's time zone: `spec.timeZone`, else this process's local zone
/// (as upstream uses the controller manager's).
fn time_zone(cronjob: &CronJob) -> Result<TimeZone, String> {
    match cronjob.spec.as_ref().and_then(|s| s.time_zone.as_deref()) {
        None => Ok(TimeZone::system()),
        Some(name) => jiff::tz::db().get(name).map_err(|e| e.to_string()),
    }
}

/// Jobs beyond the history limit, oldest first (by start, then creation time).
fn beyond_limit(mut jobs: Vec<&Job>, limit: i32) -> Vec<&Job> {
    let limit = limit.max(0) as usize;
    if jobs.len() <= limit {
        return Vec::new();
    }
    jobs.sort_by_key(|j| {
        (
            j.status
                .as_ref()
                .and_then(|s| s.start_time.as_ref())
                .map(|t| t.0),
            j.metadata.creation_timestamp.as_ref().map(|t| t.0),
        )
    });
    let excess = jobs.len() - limit;
    jobs.into_iter().take(excess).collect()
}

async fn delete_job(
    api: &Api<Job>,
    cronjob: &CronJob,
    job: &Job,
    ctx: &Context,
) -> Result<(), ReconcileError> {
    let params = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Background),
        ..DeleteParams::default()
    };
    match api.delete(&job.name_any(), &params).await {
        Ok(_) => {
            ctx.recorder
                .record(
                    cronjob,
                    EventType::Normal,
                    "SuccessfulDelete",
                    &format!("Deleted job {}", job.name_any()),
                )
                .await;
            Ok(())
        }
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

fn until(now: Timestamp, at: Timestamp) -> Duration {
    Duration::try_from(now.duration_until(at)).unwrap_or_default() + Duration::from_millis(100)
}

#[tracing::instrument(skip_all, fields(cronjob = %format!("{}/{}", cronjob.namespace().unwrap_or_default(), cronjob.name_any())))]
async fn reconcile(cronjob: Arc<CronJob>, ctx: Arc<Context>) -> Result<Action, ReconcileError> {
    ctx.jobs
        .ready()
        .await
        .map_err(|_| ReconcileError::CacheClosed)?;
    let namespace = cronjob.namespace().unwrap_or_default();
    let uid = cronjob.uid().unwrap_or_default();
    let all_jobs = ctx.jobs.state();
    let owned: Vec<&Job> = all_jobs
        .iter()
        .map(|j| j.as_ref())
        .filter(|j| j.metadata.namespace.as_deref() == Some(namespace.as_str()))
        .filter(|j| controller_of(&j.metadata).is_some_and(|o| o.uid == uid))
        .collect();
    let spec = cronjob.spec.clone().unwrap_or_default();
    let old_status = cronjob.status.clone().unwrap_or_default();
    let mut status = old_status.clone();
    let mut active: Vec<ObjectReference> = Vec::new();
    for r in old_status.active.iter().flatten() {
        let Some(job) = owned.iter().find(|j| j.metadata.uid == r.uid) else {
            continue;
        };
        match finished(job) {
            Some(how) => {
                ctx.recorder
                    .record(
                        cronjob.as_ref(),
                        EventType::Normal,
                        "SawCompletedJob",
                        &format!("Saw completed job: {}, status: {how}", job.name_any()),
                    )
                    .await;
                if how == "Complete" {
                    let done = job.status.as_ref().and_then(|s| s.completion_time.clone());
                    if done.as_ref().map(|t| t.0)
                        > status.last_successful_time.as_ref().map(|t| t.0)
                    {
                        status.last_successful_time = done;
                    }
                }
            }
            None => active.push(r.clone()),
        }
    }
    for job in owned.iter().filter(|j| finished(j).is_none()) {
        if !active.iter().any(|r| r.uid == job.metadata.uid) {
            ctx.recorder
                .record(
                    cronjob.as_ref(),
                    EventType::Normal,
                    "UnexpectedJob",
                    &format!(
                        "Saw a job that the controller did not create or forgot: {}",
                        job.name_any()
                    ),
                )
                .await;
            active.push(reference(job));
        }
    }
    status.active = (!active.is_empty()).then_some(active);
    let jobs_api: Api<Job> = Api::namespaced(ctx.client.clone(), &namespace);
    let now = Timestamp::now();
    let mut action = Action::await_change();
    if cronjob.metadata.deletion_timestamp.is_none() {
        action = schedule_jobs(&cronjob, &spec, &owned, &mut status, now, &jobs_api, &ctx).await?;
        // History limits, as upstream's cleanupFinishedJobs.
        let succeeded: Vec<&Job> = owned
            .iter()
            .copied()
            .filter(|j| finished(j) == Some("Complete"))
            .collect();
        let failed: Vec<&Job> = owned
            .iter()
            .copied()
            .filter(|j| finished(j) == Some("Failed"))
            .collect();
        let limits = [
            (succeeded, spec.successful_jobs_history_limit.unwrap_or(3)),
            (failed, spec.failed_jobs_history_limit.unwrap_or(1)),
        ];
        for (jobs, limit) in limits {
            for job in beyond_limit(jobs, limit) {
                delete_job(&jobs_api, &cronjob, job, &ctx).await?;
            }
        }
    }
    if status != old_status {
        let api: Api<CronJob> = Api::namespaced(ctx.client.clone(), &namespace);
        let patch = serde_json::json!({"status": {
            "active": status.active,
            "lastScheduleTime": status.last_schedule_time,
            "lastSuccessfulTime": status.last_successful_time,
        }});
        match api
            .patch_status(
                &cronjob.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(action)
}

/// Starts the Job of the most recent missed time when upstream would, and
/// says when to come back (the next scheduled time).
async fn schedule_jobs(
    cronjob: &CronJob,
    spec: &k8s_openapi::api::batch::v1::CronJobSpec,
    owned: &[&Job],
    status: &mut CronJobStatus,
    now: Timestamp,
    jobs_api: &Api<Job>,
    ctx: &Context,
) -> Result<Action, ReconcileError> {
    let tz = match time_zone(cronjob) {
        Ok(tz) => tz,
        Err(e) => {
            let zone = spec.time_zone.clone().unwrap_or_default();
            ctx.recorder
                .record(
                    cronjob,
                    EventType::Warning,
                    "UnknownTimeZone",
                    &format!("invalid timeZone: {zone:?}: {e}"),
                )
                .await;
            return Ok(Action::await_change());
        }
    };
    let schedule = match cron::parse(&spec.schedule) {
        Ok(s) => s,
        Err(e) => {
            ctx.recorder
                .record(
                    cronjob,
                    EventType::Warning,
                    "UnparseableSchedule",
                    &format!("unparseable schedule: {:?} : {e}", spec.schedule),
                )
                .await;
            return Ok(Action::await_change());
        }
    };
    if spec.suspend == Some(true) {
        return Ok(Action::await_change());
    }
    let created = cronjob
        .metadata
        .creation_timestamp
        .as_ref()
        .map_or(now, |t| t.0);
    let mut earliest = status.last_schedule_time.as_ref().map_or(created, |t| t.0);
    if let Some(seconds) = spec.starting_deadline_seconds {
        earliest = earliest.max(now - jiff::SignedDuration::from_secs(seconds));
    }
    let (latest, missed) = schedule::most_recent(&schedule, earliest, now, &tz);
    let next = schedule::next_after(&schedule, now, &tz);
    let come_back = next.map_or_else(Action::await_change, |at| Action::requeue(until(now, at)));
    let Some(scheduled) = latest else {
        return Ok(come_back);
    };
    if missed > 100 {
        ctx.recorder
            .record(cronjob, EventType::Warning, "TooManyMissedTimes", "too many missed start times. Set or decrease .spec.startingDeadlineSeconds or check clock skew")
            .await;
    }
    if let Some(seconds) = spec.starting_deadline_seconds {
        if scheduled + jiff::SignedDuration::from_secs(seconds) < now {
            let at = scheduled
                .to_zoned(tz.clone())
                .strftime("%a, %d %b %Y %H:%M:%S %z")
                .to_string();
            ctx.recorder
                .record(
                    cronjob,
                    EventType::Warning,
                    "MissSchedule",
                    &format!("Missed scheduled time to start a job: {at}"),
                )
                .await;
            return Ok(come_back);
        }
    }
    let name = job_name(&cronjob.name_any(), scheduled);
    let already = owned
        .iter()
        .any(|j| j.metadata.name.as_deref() == Some(name.as_str()))
        || status
            .last_schedule_time
            .as_ref()
            .is_some_and(|t| t.0 >= scheduled);
    if already {
        return Ok(come_back);
    }
    let running: Vec<&Job> = owned
        .iter()
        .copied()
        .filter(|j| finished(j).is_none())
        .filter(|j| {
            status
                .active
                .iter()
                .flatten()
                .any(|r| r.uid == j.metadata.uid)
        })
        .collect();
    match spec.concurrency_policy.as_deref() {
        Some("Forbid") if !running.is_empty() => {
            ctx.recorder
                .record(cronjob, EventType::Normal, "JobAlreadyActive", "Not starting job because prior execution is running and concurrency policy is Forbid")
                .await;
            return Ok(come_back);
        }
        Some("Replace") => {
            for job in &running {
                delete_job(jobs_api, cronjob, job, ctx).await?;
                if let Some(active) = status.active.as_mut() {
                    active.retain(|r| r.uid != job.metadata.uid);
                }
            }
            if status.active.as_ref().is_some_and(Vec::is_empty) {
                status.active = None;
            }
        }
        _ => {}
    }
    let job = job_for(cronjob, scheduled, &tz);
    match jobs_api.create(&PostParams::default(), &job).await {
        Ok(made) => {
            ctx.recorder
                .record(
                    cronjob,
                    EventType::Normal,
                    "SuccessfulCreate",
                    &format!("Created job {}", made.name_any()),
                )
                .await;
            status
                .active
                .get_or_insert_with(Vec::new)
                .push(reference(&made));
        }
        Err(kube::Error::Api(s)) if s.code == 409 => {}
        Err(e) => {
            ctx.recorder
                .record(
                    cronjob,
                    EventType::Warning,
                    "FailedCreate",
                    &format!("Error creating job: {e}"),
                )
                .await;
            return Err(e.into());
        }
    }
    status.last_schedule_time = Some(Time(scheduled));
    Ok(come_back)
}

fn error_policy(cronjob: Arc<CronJob>, error: &ReconcileError, _ctx: Arc<Context>) -> Action {
    tracing::warn!(cronjob = %cronjob.name_any(), %error, "cronjob reconcile failed");
    Action::requeue(Duration::from_secs(5))
}

type ReconcileFuture = Pin<Box<dyn Future<Output = Result<Action, ReconcileError>> + Send>>;

/// Runs the CronJob controller until `cancel` fires.
pub async fn run(
    client: kube::Client,
    informers: Informers,
    cancel: CancellationToken,
) -> Result<(), ControllerError> {
    let (cronjobs, cronjob_events) = informers.watch::<CronJob>();
    let (jobs, job_events) = informers.watch::<Job>();
    let queue = stream::select(
        cronjob_events
            .map_ok(|c| vec![ObjectRef::from_obj(&*c)])
            .boxed(),
        job_events
            .map_ok(|j| {
                controller_ref_of::<CronJob>(j.meta())
                    .into_iter()
                    .collect::<Vec<_>>()
            })
            .boxed(),
    )
    .map_ok(|refs| stream::iter(refs.into_iter().map(Ok::<_, watcher::Error>)))
    .try_flatten();
    let context = Arc::new(Context {
        recorder: Recorder::new(client.clone(), "cronjob-controller"),
        client,
        jobs,
    });
    workqueue::named("cronjob")
        .applier(
            |cronjob: Arc<CronJob>, ctx| -> ReconcileFuture { Box::pin(reconcile(cronjob, ctx)) },
            error_policy,
            context,
            cronjobs.store(),
            queue,
            Config::default(),
        )
        .take_until(cancel.cancelled())
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "cronjob controller event");
            }
        })
        .await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_are_named_by_minute_and_carry_the_scheduled_time() {
        let cronjob: CronJob = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "hello", "namespace": "ns", "uid": "u"},
            "spec": {"schedule": "*/1 * * * *", "jobTemplate": {
                "metadata": {"labels": {"team": "a"}},
                "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}}
            }}
        }))
        .unwrap();
        let at: Timestamp = "2026-03-01T10:01:00Z".parse().unwrap();
        let job = job_for(&cronjob, at, &TimeZone::UTC);
        assert_eq!(job.metadata.name.as_deref(), Some("hello-29539321"));
        let annotations = job.metadata.annotations.unwrap();
        assert_eq!(annotations[SCHEDULED_TIMESTAMP], "2026-03-01T10:01:00Z");
        assert_eq!(job.metadata.labels.unwrap()["team"], "a");
        assert_eq!(job.metadata.owner_references.unwrap()[0].kind, "CronJob");
    }
}
