//! The Job controller (upstream's `pkg/controller/job`): runs a Job's pods to
//! completion — completions and parallelism, NonIndexed and Indexed modes,
//! backoffLimit (per index too) with exponential replacement back-off,
//! activeDeadlineSeconds, podFailurePolicy, suspend — and reports status and
//! conditions as upstream. Every pod carries the `batch.kubernetes.io/job-tracking`
//! finalizer until the Job's status has counted it (`uncountedTerminatedPods`
//! first), so no finished pod is lost. Decisions live in [`sync`]; this file
//! only reads the caches and writes what a pass decided.

pub mod backoff;
pub mod conditions;
pub mod failure_policy;
pub mod indexes;
pub mod pods;
pub mod sync;

use std::collections::{HashMap, HashSet};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use berth_observability::workqueue;
use futures::{stream, Future, StreamExt, TryStreamExt};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Config};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::ResourceExt;
use tokio_util::sync::CancellationToken;

use self::backoff::Backoff;
use super::cache::Cache;
use super::informers::Informers;
use super::pod_control::PodControl;
use super::replicaset::expectations::Expectations;
use super::workload::{claim, controller_of, owners_to_wake};
use super::ControllerError;
use berth_observability::events::{object_reference, EventType, Recorder};

struct Context {
    client: kube::Client,
    pods: Cache<Pod>,
    expectations: Expectations,
    recorder: Recorder,
    backoff: Backoff,
    /// The resourceVersion of each Job's last status write (by UID): a pass
    /// over an older cached Job would count pods again, so it waits instead.
    written: Mutex<HashMap<String, u64>>,
    /// Pods (by UID) whose tracking finalizer this controller removed but the
    /// pod cache may still show (upstream's finalizer expectations): a pass
    /// sees them released, so a stale cache never counts a pod twice.
    released: Mutex<HashSet<String>>,
}

#[derive(Debug, thiserror::Error)]
enum ReconcileError {
    #[error("{0}")]
    Api(#[from] kube::Error),
    #[error("pod cache closed")]
    CacheClosed,
}

fn resource_version(job: &Job) -> Option<u64> {
    job.metadata.resource_version.as_deref()?.parse().ok()
}

/// Sets a pod's finalizers to `finalizers`, guarded by its resourceVersion.
async fn patch_finalizers(
    api: &Api<Pod>,
    pod: &Pod,
    finalizers: Vec<String>,
) -> Result<Pod, kube::Error> {
    let patch = serde_json::json!({"metadata": {
        "finalizers": finalizers,
        "resourceVersion": pod.metadata.resource_version,
    }});
    api.patch(
        &pod.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await
}

/// Removes the tracking finalizer from `pod`, guarded by its resourceVersion.
async fn remove_finalizer(api: &Api<Pod>, pod: &Pod) -> Result<(), ReconcileError> {
    let finalizers = pod
        .metadata
        .finalizers
        .iter()
        .flatten()
        .filter(|f| *f != pods::TRACKING_FINALIZER)
        .cloned()
        .collect();
    match patch_finalizers(api, pod, finalizers).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// The pods `job` controls (upstream's `getPodsForJob`): orphans its
/// selector matches are adopted and get the tracking finalizer, so they are
/// counted like the Job's own; owned pods that stopped matching are released.
async fn claim_pods(job: &Job, ctx: &Context) -> Result<Vec<Arc<Pod>>, ReconcileError> {
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &job.namespace().unwrap_or_default());
    let Some(selector) = job.spec.as_ref().and_then(|s| s.selector.as_ref()) else {
        return Ok(Vec::new());
    };
    let uid = job.uid().unwrap_or_default();
    let candidates: Vec<Arc<Pod>> = ctx
        .pods
        .state()
        .into_iter()
        .filter(|p| p.namespace() == job.namespace())
        .collect();
    let already: HashSet<String> = candidates
        .iter()
        .filter(|p| controller_of(&p.metadata).is_some_and(|o| o.uid == uid))
        .filter_map(|p| p.uid())
        .collect();
    let mut owned = claim(job, selector, candidates, &api).await?;
    for pod in &mut owned {
        let adopted = !pod.uid().is_some_and(|u| already.contains(&u));
        if adopted
            && !pods::has_tracking_finalizer(pod)
            && pod.metadata.deletion_timestamp.is_none()
        {
            if let Some(tracked) = add_finalizer(&api, pod).await? {
                *pod = Arc::new(tracked);
            }
        }
    }
    Ok(owned)
}

/// Puts the tracking finalizer on an adopted pod, guarded by its
/// resourceVersion; None when it changed or went away meanwhile.
async fn add_finalizer(api: &Api<Pod>, pod: &Pod) -> Result<Option<Pod>, ReconcileError> {
    let mut finalizers = pod.metadata.finalizers.clone().unwrap_or_default();
    finalizers.push(pods::TRACKING_FINALIZER.to_owned());
    match patch_finalizers(api, pod, finalizers).await {
        Ok(patched) => Ok(Some(patched)),
        Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => Ok(None),
        Err(e) => Err(e.into()),
    }
}

#[tracing::instrument(skip_all, fields(job = %format!("{}/{}", job.namespace().unwrap_or_default(), job.name_any())))]
async fn reconcile(job: Arc<Job>, ctx: Arc<Context>) -> Result<Action, ReconcileError> {
    ctx.pods
        .ready()
        .await
        .map_err(|_| ReconcileError::CacheClosed)?;
    let uid = job.uid().unwrap_or_default();
    if job.metadata.deletion_timestamp.is_some() {
        // A Job deleted in the foreground waits for its pods: let them go.
        let api: Api<Pod> =
            Api::namespaced(ctx.client.clone(), &job.namespace().unwrap_or_default());
        for pod in ctx.pods.state().iter().filter(|p| {
            pods::has_tracking_finalizer(p)
                && controller_of(&p.metadata).is_some_and(|o| o.uid == uid)
        }) {
            remove_finalizer(&api, pod).await?;
        }
        return Ok(Action::await_change());
    }
    let written = ctx.written.lock().expect("written lock").get(&uid).copied();
    if written.is_some_and(|w| resource_version(&job).is_none_or(|rv| rv < w)) {
        // The cache has not seen our last status write yet; its event wakes us.
        return Ok(Action::requeue(Duration::from_millis(500)));
    }
    let namespace = job.namespace().unwrap_or_default();
    let claimed = claim_pods(&job, &ctx).await?;
    let owned_pods: Vec<Arc<Pod>> = {
        let mut released = ctx.released.lock().expect("released lock");
        claimed
            .into_iter()
            .map(|p| {
                let pod_uid = p.metadata.uid.as_deref().unwrap_or_default();
                if !released.contains(pod_uid) {
                    return p;
                }
                if !pods::has_tracking_finalizer(&p) {
                    released.remove(pod_uid);
                    return p;
                }
                // Removed by us; the cache has not caught up yet. Only these
                // pods are copied: a pass over thousands of pods stays cheap.
                let mut pod = p.as_ref().clone();
                if let Some(f) = pod.metadata.finalizers.as_mut() {
                    f.retain(|f| f != pods::TRACKING_FINALIZER);
                }
                Arc::new(pod)
            })
            .collect()
    };
    let owned: Vec<&Pod> = owned_pods.iter().map(AsRef::as_ref).collect();
    let satisfied = ctx.expectations.satisfied(
        &uid,
        Instant::now(),
        |name| {
            owned
                .iter()
                .any(|p| p.metadata.name.as_deref() == Some(name))
        },
        |pod_uid| {
            !owned.iter().any(|p| {
                p.metadata.uid.as_deref() == Some(pod_uid)
                    && p.metadata.deletion_timestamp.is_none()
            })
        },
    );
    let now = jiff::Timestamp::now();
    let plan = sync::plan(&job, &owned, now, ctx.backoff);
    let jobs: Api<Job> = Api::namespaced(ctx.client.clone(), &namespace);
    let pods_api: Api<Pod> = Api::namespaced(ctx.client.clone(), &namespace);
    let by_name: HashMap<&str, &Pod> = owned
        .iter()
        .map(|p| (p.metadata.name.as_deref().unwrap_or_default(), *p))
        .collect();
    // The status is written before the finished pods' finalizers go (they
    // are counted first); the next pods are made meanwhile, as upstream's
    // sync makes them before it writes the status.
    let count_and_release = async {
        if job.status.as_ref() != Some(&plan.status) {
            // A replace, not a merge patch: emptied lists (uncountedTerminatedPods)
            // must go, and the resourceVersion guards against a stale cache.
            let mut updated = (*job).clone();
            updated.status = Some(plan.status.clone());
            match jobs
                .replace_status(&job.name_any(), &PostParams::default(), &updated)
                .await
            {
                Ok(updated) => {
                    if let Some(rv) = resource_version(&updated) {
                        ctx.written
                            .lock()
                            .expect("written lock")
                            .insert(uid.clone(), rv);
                    }
                }
                Err(kube::Error::Api(s)) if s.code == 404 => {
                    return Ok(Some(Action::await_change()))
                }
                Err(kube::Error::Api(s)) if s.code == 409 => {
                    return Ok(Some(Action::requeue(Duration::from_millis(500))))
                }
                Err(e) => return Err(ReconcileError::from(e)),
            }
        }
        for event in &plan.events {
            let kind = if event.warning {
                EventType::Warning
            } else {
                EventType::Normal
            };
            ctx.recorder
                .record(job.as_ref(), kind, &event.reason, &event.message)
                .await;
        }
        let removals = plan
            .remove_finalizers
            .iter()
            .filter_map(|name| by_name.get(name.as_str()))
            .map(|pod| async {
                remove_finalizer(&pods_api, pod).await?;
                let pod_uid = pod.uid().unwrap_or_default();
                ctx.released.lock().expect("released lock").insert(pod_uid);
                Ok::<_, ReconcileError>(())
            });
        futures::future::join_all(removals)
            .await
            .into_iter()
            .collect::<Result<Vec<()>, _>>()?;
        Ok(None)
    };
    let manage = async {
        if !satisfied {
            return Ok(false);
        }
        delete_pods(&job, &plan.delete, &by_name, &pods_api, &ctx).await?;
        create_pods(&job, &plan.create, &pods_api, &ctx).await?;
        Ok::<_, ReconcileError>(true)
    };
    let (counted, managed) = futures::join!(count_and_release, manage);
    if let Some(action) = counted? {
        return Ok(action);
    }
    if !managed? {
        return Ok(Action::requeue(Duration::from_secs(5)));
    }
    Ok(plan.requeue.map_or_else(Action::await_change, |d| {
        Action::requeue(d + Duration::from_millis(100))
    }))
}

/// The pods API of the Job's namespace with its events and expectations.
fn pod_control<'a>(job: &Job, api: &Api<Pod>, ctx: &'a Context) -> PodControl<'a> {
    PodControl {
        api: api.clone(),
        recorder: &ctx.recorder,
        owner: object_reference(job),
        expectations: &ctx.expectations,
    }
}

async fn delete_pods(
    job: &Job,
    names: &[String],
    by_name: &HashMap<&str, &Pod>,
    api: &Api<Pod>,
    ctx: &Context,
) -> Result<(), ReconcileError> {
    let victims: Vec<&Pod> = names
        .iter()
        .filter_map(|n| by_name.get(n.as_str()).copied())
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect();
    pod_control(job, api, ctx).delete(&victims).await?;
    Ok(())
}

/// Creates the wanted pods (index, failures so far) in slow-start batches.
async fn create_pods(
    job: &Job,
    wanted: &[(Option<i32>, Option<i32>)],
    api: &Api<Pod>,
    ctx: &Context,
) -> Result<(), ReconcileError> {
    pod_control(job, api, ctx)
        .create(wanted.len(), |i| {
            let (index, failures) = wanted[i];
            pods::new_pod(job, index, failures)
        })
        .await?;
    Ok(())
}

fn error_policy(job: Arc<Job>, error: &ReconcileError, _ctx: Arc<Context>) -> Action {
    tracing::warn!(job = %job.name_any(), %error, "job reconcile failed");
    Action::requeue(Duration::from_secs(2))
}

type ReconcileFuture = Pin<Box<dyn Future<Output = Result<Action, ReconcileError>> + Send>>;

/// Runs the Job controller with upstream's pod-failure back-off until `cancel` fires.
pub async fn run(
    client: kube::Client,
    informers: Informers,
    cancel: CancellationToken,
) -> Result<(), ControllerError> {
    run_with(client, informers, Backoff::default(), cancel).await
}

/// Runs the Job controller with the given back-off until `cancel` fires.
pub async fn run_with(
    client: kube::Client,
    informers: Informers,
    backoff: Backoff,
    cancel: CancellationToken,
) -> Result<(), ControllerError> {
    let (jobs, job_events) = informers.watch::<Job>();
    let (pods, pod_events) = informers.watch::<Pod>();
    let context = Arc::new(Context {
        recorder: Recorder::new(client.clone(), "job-controller"),
        client,
        pods,
        expectations: Expectations::default(),
        backoff,
        written: Mutex::new(HashMap::new()),
        released: Mutex::new(HashSet::new()),
    });
    let queue = stream::select(
        job_events
            .map_ok(|j| vec![ObjectRef::from_obj(&*j)])
            .boxed(),
        pod_events
            .map_ok({
                let context = context.clone();
                let jobs = jobs.clone();
                move |pod| {
                    if let Some(o) = controller_of(&pod.metadata) {
                        context
                            .expectations
                            .observe_creation(&o.uid, &pod.name_any());
                    }
                    // Orphans wake the Jobs whose selector matches them, to be adopted.
                    owners_to_wake(&pod.metadata, &jobs, |job: &Job| {
                        job.spec.as_ref().and_then(|s| s.selector.as_ref())
                    })
                }
            })
            .boxed(),
    )
    .map_ok(|refs| stream::iter(refs.into_iter().map(Ok::<_, watcher::Error>)))
    .try_flatten();
    let sweep = release_orphans(context.clone(), jobs.clone(), cancel.clone());
    let controller = workqueue::named("job")
        .applier(
            |job: Arc<Job>, ctx| -> ReconcileFuture { Box::pin(reconcile(job, ctx)) },
            error_policy,
            context,
            jobs.store(),
            queue,
            Config::default(),
        )
        .take_until(cancel.cancelled())
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "job controller event");
            }
        });
    futures::join!(controller, sweep);
    Ok(())
}

/// How often finished pods whose Job is gone are looked for.
const ORPHAN_SWEEP: Duration = Duration::from_secs(10);

/// Removes the tracking finalizer from finished or terminating pods whose Job
/// no longer exists (deleted in the background, as the TTL controller and
/// kubectl do), as upstream does for orphans; the API is asked before each,
/// so a Job the cache has not seen yet keeps its pods.
async fn release_orphans(ctx: Arc<Context>, jobs: Cache<Job>, cancel: CancellationToken) {
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(ORPHAN_SWEEP) => {}
        }
        if ctx.pods.ready().await.is_err() || jobs.ready().await.is_err() {
            return;
        }
        let known: HashSet<String> = jobs.state().iter().filter_map(|j| j.uid()).collect();
        for pod in ctx.pods.state() {
            let finished = pods::succeeded(&pod)
                || pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Failed")
                || pod.metadata.deletion_timestamp.is_some();
            let Some(owner) = controller_of(&pod.metadata).filter(|o| o.kind == "Job") else {
                continue;
            };
            if !finished || !pods::has_tracking_finalizer(&pod) || known.contains(&owner.uid) {
                continue;
            }
            let namespace = pod.namespace().unwrap_or_default();
            let api: Api<Job> = Api::namespaced(ctx.client.clone(), &namespace);
            let gone = match api.get_opt(&owner.name).await {
                Ok(found) => found.is_none_or(|j| j.uid().as_deref() != Some(owner.uid.as_str())),
                Err(_) => false,
            };
            if gone {
                let pods_api: Api<Pod> = Api::namespaced(ctx.client.clone(), &namespace);
                if let Err(e) = remove_finalizer(&pods_api, &pod).await {
                    tracing::debug!(pod = %pod.name_any(), error = %e, "releasing an orphaned job pod failed");
                }
            }
        }
    }
}
