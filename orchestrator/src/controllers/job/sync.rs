//! One pass of the Job controller as a pure function (upstream's `syncJob`):
//! from the Job and the pods it controls, the status to write, which finished
//! pods lose their tracking finalizer (only after the status that counts
//! them is written), which pods to delete and which to create. No I/O.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::batch::v1::{Job, JobStatus, UncountedTerminatedPods};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::backoff::{self, Backoff};
use super::conditions::{self, Condition};
use super::failure_policy::{self, Action};
use super::indexes;
use super::pods::{self, INDEX_FAILURE_COUNT};
use crate::controllers::workload::{pod_is_active, pod_is_ready};

/// At most this many pods are created or deleted in one pass (upstream's burst).
pub const BURST: usize = 500;

/// An event to record on the Job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Warning rather than Normal.
    pub warning: bool,
    /// Upstream's reason.
    pub reason: String,
    /// Upstream's message.
    pub message: String,
}

/// What one pass decided.
#[derive(Debug, Default)]
pub struct Plan {
    /// The status the Job should have (written before anything else).
    pub status: JobStatus,
    /// Pods whose tracking finalizer goes, once `status` is written.
    pub remove_finalizers: Vec<String>,
    /// Pods to delete.
    pub delete: Vec<String>,
    /// Pods to create: the completion index (Indexed) and its failure count.
    pub create: Vec<(Option<i32>, Option<i32>)>,
    /// Events of the transitions this pass made.
    pub events: Vec<Event>,
    /// When to look again although nothing changes (back-off, deadline).
    pub requeue: Option<Duration>,
}

/// The spec values a pass needs, with upstream's defaults.
struct Spec {
    parallelism: i32,
    completions: Option<i32>,
    indexed: bool,
    suspended: bool,
    backoff_limit: i32,
    per_index_limit: Option<i32>,
    max_failed_indexes: Option<i32>,
    deadline: Option<i64>,
}

impl Spec {
    fn of(job: &Job) -> Self {
        let spec = job.spec.clone().unwrap_or_default();
        Self {
            parallelism: spec.parallelism.unwrap_or(1).max(0),
            completions: spec.completions,
            indexed: spec.completion_mode.as_deref() == Some("Indexed"),
            suspended: spec.suspend == Some(true),
            backoff_limit: spec.backoff_limit.unwrap_or(6),
            per_index_limit: spec.backoff_limit_per_index,
            max_failed_indexes: spec.max_failed_indexes,
            deadline: spec.active_deadline_seconds,
        }
    }
}

fn uid(pod: &Pod) -> &str {
    pod.metadata.uid.as_deref().unwrap_or_default()
}

fn name(pod: &Pod) -> String {
    pod.metadata.name.clone().unwrap_or_default()
}

/// Whether the Job has a terminal (Complete or Failed) condition.
pub fn is_finished(status: Option<&JobStatus>) -> bool {
    status.is_some_and(|s| {
        conditions::true_condition(s, "Complete").is_some()
            || conditions::true_condition(s, "Failed").is_some()
    })
}

/// How often a pod's index had failed, counting the pod itself when it failed.
fn index_failures(pod: &Pod, failed: bool) -> i32 {
    let before = pod
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(INDEX_FAILURE_COUNT))
        .and_then(|v| v.parse::<i32>().ok())
        .unwrap_or(0);
    before + i32::from(failed)
}

/// The counting half of a pass: moves pods into `uncountedTerminatedPods`,
/// and from there into the counters once their finalizer is gone.
struct Tracking {
    finalizers: Vec<String>,
    fail_job: Option<String>,
}

fn track(job: &Job, spec: &Spec, owned: &[&Pod], status: &mut JobStatus) -> Tracking {
    let completions = spec.completions.unwrap_or(0);
    let uncounted = status.uncounted_terminated_pods.clone().unwrap_or_default();
    let mut uncounted_succeeded: BTreeSet<String> = uncounted
        .succeeded
        .unwrap_or_default()
        .into_iter()
        .collect();
    let mut uncounted_failed: BTreeSet<String> =
        uncounted.failed.unwrap_or_default().into_iter().collect();
    let by_uid: HashMap<&str, &Pod> = owned.iter().map(|p| (uid(p), *p)).collect();
    let counted = |uid: &String| {
        by_uid
            .get(uid.as_str())
            .is_none_or(|p| !pods::has_tracking_finalizer(p))
    };
    let moved_succeeded = uncounted_succeeded.iter().filter(|u| counted(u)).count() as i32;
    let moved_failed = uncounted_failed.iter().filter(|u| counted(u)).count() as i32;
    uncounted_succeeded.retain(|u| !counted(u));
    uncounted_failed.retain(|u| !counted(u));
    let mut succeeded = status.succeeded.unwrap_or(0) + moved_succeeded;
    status.failed = non_zero(status.failed.unwrap_or(0) + moved_failed);

    let mut completed = indexes::parse(status.completed_indexes.as_deref(), completions);
    let mut failed_indexes = indexes::parse(status.failed_indexes.as_deref(), completions);
    let policy = job
        .spec
        .as_ref()
        .and_then(|s| s.pod_failure_policy.as_ref());
    let mut finalizers = Vec::new();
    let mut fail_job = None;
    for pod in owned.iter().filter(|p| pods::has_tracking_finalizer(p)) {
        let pod_uid = uid(pod).to_owned();
        if uncounted_succeeded.contains(&pod_uid) || uncounted_failed.contains(&pod_uid) {
            finalizers.push(name(pod));
            continue;
        }
        let index = indexes::of_pod(&pod.metadata).filter(|i| *i < completions);
        if pods::succeeded(pod) {
            if spec.indexed {
                if let Some(i) = index {
                    completed.insert(i);
                }
            }
            uncounted_succeeded.insert(pod_uid);
            finalizers.push(name(pod));
        } else if pods::failed(pod, job) {
            finalizers.push(name(pod));
            if spec.suspended && pods::terminating(pod) {
                // Pods removed because the Job was suspended are no failures.
                continue;
            }
            let matched = policy.and_then(|p| failure_policy::matching_rule(p, pod));
            match matched.as_ref().map(|m| &m.action) {
                Some(Action::Ignore) => continue,
                Some(Action::FailJob) => {
                    fail_job = fail_job.or(matched.map(|m| m.message));
                }
                Some(Action::FailIndex) if spec.per_index_limit.is_some() => {
                    failed_indexes.extend(index);
                }
                _ => {
                    if let (Some(limit), Some(i)) = (spec.per_index_limit, index) {
                        if index_failures(pod, true) > limit {
                            failed_indexes.insert(i);
                        }
                    }
                }
            }
            uncounted_failed.insert(pod_uid);
        }
    }
    if spec.indexed {
        succeeded = completed.len() as i32;
        status.completed_indexes = indexes::format(&completed).or(Some(String::new()));
        if spec.per_index_limit.is_some() {
            status.failed_indexes = indexes::format(&failed_indexes).or(Some(String::new()));
        }
    }
    status.succeeded = non_zero(succeeded);
    status.uncounted_terminated_pods = Some(UncountedTerminatedPods {
        succeeded: (!uncounted_succeeded.is_empty())
            .then(|| uncounted_succeeded.into_iter().collect()),
        failed: (!uncounted_failed.is_empty()).then(|| uncounted_failed.into_iter().collect()),
    });
    Tracking {
        finalizers,
        fail_job,
    }
}

fn non_zero(n: i32) -> Option<i32> {
    (n != 0).then_some(n)
}

fn uncounted_len(status: &JobStatus) -> (usize, usize) {
    let u = status.uncounted_terminated_pods.as_ref();
    (
        u.and_then(|u| u.succeeded.as_ref()).map_or(0, Vec::len),
        u.and_then(|u| u.failed.as_ref()).map_or(0, Vec::len),
    )
}

/// Deletion order for excess pods, as upstream's `ActivePods` ranking: not
/// scheduled, then not ready, then the newest first.
fn deletion_rank(pod: &Pod) -> (bool, bool, std::cmp::Reverse<Option<Timestamp>>) {
    let scheduled = pod
        .spec
        .as_ref()
        .and_then(|s| s.node_name.as_ref())
        .is_some();
    let created = pod.metadata.creation_timestamp.as_ref().map(|t| t.0);
    (scheduled, pod_is_ready(pod), std::cmp::Reverse(created))
}

/// Which active pods to delete and which to create so the Job moves toward
/// its wanted number of active pods.
fn manage(
    job: &Job,
    spec: &Spec,
    owned: &[&Pod],
    active: &[&Pod],
    status: &JobStatus,
    plan: &mut Plan,
) {
    let succeeded = status.succeeded.unwrap_or(0) + uncounted_len(status).0 as i32;
    if !spec.indexed {
        let want = match spec.completions {
            Some(c) => spec.parallelism.min(c - succeeded).max(0),
            None if succeeded > 0 => 0,
            None => spec.parallelism,
        } as usize;
        if active.len() > want {
            let mut victims = active.to_vec();
            victims.sort_by_key(|p| deletion_rank(p));
            plan.delete.extend(
                victims
                    .iter()
                    .take((active.len() - want).min(BURST))
                    .map(|p| name(p)),
            );
        } else {
            plan.create.extend(std::iter::repeat_n(
                (None, None),
                (want - active.len()).min(BURST),
            ));
        }
        return;
    }
    let completions = spec.completions.unwrap_or(0);
    let completed = indexes::parse(status.completed_indexes.as_deref(), completions);
    let failed = indexes::parse(status.failed_indexes.as_deref(), completions);
    let mut kept: BTreeMap<i32, &Pod> = BTreeMap::new();
    let mut sorted = active.to_vec();
    sorted.sort_by_key(|p| std::cmp::Reverse(deletion_rank(p)));
    for pod in sorted {
        match indexes::of_pod(&pod.metadata) {
            Some(i)
                if i < completions
                    && !completed.contains(&i)
                    && !failed.contains(&i)
                    && !kept.contains_key(&i) =>
            {
                kept.insert(i, pod);
            }
            _ => plan.delete.push(name(pod)),
        }
    }
    while kept.len() > spec.parallelism as usize {
        let (_, pod) = kept.pop_last().expect("non-empty");
        plan.delete.push(name(pod));
    }
    let room = (spec.parallelism as usize - kept.len()).min(BURST);
    let mut failures: HashMap<i32, i32> = HashMap::new();
    for pod in owned {
        if let Some(i) = indexes::of_pod(&pod.metadata) {
            let count = index_failures(pod, pods::failed(pod, job));
            let entry = failures.entry(i).or_insert(0);
            *entry = (*entry).max(count);
        }
    }
    let pending = (0..completions)
        .filter(|i| !completed.contains(i) && !failed.contains(i) && !kept.contains_key(i))
        .take(room);
    plan.create.extend(pending.map(|i| {
        let count = spec
            .per_index_limit
            .map(|_| failures.get(&i).copied().unwrap_or(0));
        (Some(i), count)
    }));
}

/// The first `spec.successPolicy` rule the completed indexes satisfy
/// (Indexed jobs): all its `succeededIndexes` done, or `succeededCount` of
/// them (of all indexes when it names none).
fn success_policy_rule(job: &Job, completions: i32, completed: &BTreeSet<i32>) -> Option<usize> {
    let policy = job.spec.as_ref()?.success_policy.as_ref()?;
    policy.rules.iter().position(|rule| {
        let done = match rule.succeeded_indexes.as_deref() {
            Some(text) => {
                let wanted = indexes::parse(Some(text), completions);
                let done = wanted.intersection(completed).count();
                if rule.succeeded_count.is_none() {
                    return !wanted.is_empty() && done == wanted.len();
                }
                done
            }
            None => completed.len(),
        };
        rule.succeeded_count.is_some_and(|n| done as i32 >= n)
    })
}

/// Whether the Job's success criteria are met (before a terminal condition).
fn success(spec: &Spec, status: &JobStatus, active: usize) -> bool {
    let succeeded = status.succeeded.unwrap_or(0) + uncounted_len(status).0 as i32;
    if spec.indexed {
        let completions = spec.completions.unwrap_or(0);
        return indexes::parse(status.completed_indexes.as_deref(), completions).len() as i32
            >= completions;
    }
    match spec.completions {
        Some(c) => succeeded >= c,
        None => succeeded > 0 && active == 0,
    }
}

/// One pass over `job` and the pods it controls (`owned`) at `now`.
pub fn plan(job: &Job, owned: &[&Pod], now: Timestamp, backoff: Backoff) -> Plan {
    let spec = Spec::of(job);
    let mut plan = Plan {
        status: job.status.clone().unwrap_or_default(),
        ..Plan::default()
    };
    if is_finished(job.status.as_ref()) {
        // A finished Job lets go of every pod it still holds.
        plan.remove_finalizers = owned
            .iter()
            .filter(|p| pods::has_tracking_finalizer(p))
            .map(|p| name(p))
            .collect();
        return plan;
    }
    let tracking = track(job, &spec, owned, &mut plan.status);
    plan.remove_finalizers = tracking.finalizers;
    let active: Vec<&Pod> = owned.iter().copied().filter(|p| pod_is_active(p)).collect();
    let terminating = owned.iter().filter(|p| pods::terminating(p)).count();
    let status = &mut plan.status;
    // Go's omitempty: active, succeeded and failed are left out at zero.
    status.active = non_zero(active.len() as i32);
    status.ready = Some(active.iter().filter(|p| pod_is_ready(p)).count() as i32);
    status.terminating = Some(terminating as i32);

    let started = status.start_time.as_ref().map(|t| t.0);
    let failed_total = status.failed.unwrap_or(0) + uncounted_len(status).1 as i32;
    let deadline_at = started
        .zip(spec.deadline)
        .map(|(start, seconds)| start + jiff::SignedDuration::from_secs(seconds));
    let failure_target = conditions::true_condition(status, "FailureTarget").is_some();
    let success_met = conditions::true_condition(status, "SuccessCriteriaMet").is_some();
    if !failure_target && !success_met {
        let completions = spec.completions.unwrap_or(0);
        let failed_indexes = indexes::parse(status.failed_indexes.as_deref(), completions);
        let completed = indexes::parse(status.completed_indexes.as_deref(), completions);
        let failure = if let Some(message) = tracking.fail_job {
            Some(("PodFailurePolicy", message))
        } else if spec.per_index_limit.is_none() && failed_total > spec.backoff_limit {
            Some(conditions::backoff_limit_exceeded())
        } else if !spec.suspended && deadline_at.is_some_and(|at| at <= now) {
            Some(conditions::deadline_exceeded())
        } else if spec
            .max_failed_indexes
            .is_some_and(|max| failed_indexes.len() as i32 > max)
        {
            Some((
                "MaxFailedIndexesExceeded",
                "Job has exceeded the specified maximal number of failed indexes".into(),
            ))
        } else if spec.per_index_limit.is_some()
            && !failed_indexes.is_empty()
            && (failed_indexes.len() + completed.len()) as i32 >= completions
        {
            Some(("FailedIndexes", "Job has failed indexes".into()))
        } else {
            None
        };
        let by_policy = if spec.indexed {
            success_policy_rule(job, completions, &completed)
        } else {
            None
        };
        if let Some((reason, message)) = failure {
            conditions::set(
                status,
                &Condition::truthy("FailureTarget", reason, message),
                now,
            );
        } else if let Some(rule) = by_policy {
            let met = Condition::truthy(
                "SuccessCriteriaMet",
                "SuccessPolicy",
                format!("Matched rules at index {rule}"),
            );
            conditions::set(status, &met, now);
        } else if success(&spec, status, active.len()) {
            let (reason, message) = conditions::completions_reached();
            conditions::set(
                status,
                &Condition::truthy("SuccessCriteriaMet", reason, message),
                now,
            );
        }
    }
    let target = conditions::true_condition(status, "FailureTarget")
        .or_else(|| conditions::true_condition(status, "SuccessCriteriaMet"))
        .cloned();
    if let Some(target) = target {
        plan.delete.extend(active.iter().map(|p| name(p)));
        let (uncounted_s, uncounted_f) = uncounted_len(status);
        if active.is_empty() && terminating == 0 && uncounted_s == 0 && uncounted_f == 0 {
            let reason = target.reason.clone().unwrap_or_default();
            let message = target.message.clone().unwrap_or_default();
            let failed = target.type_ == "FailureTarget";
            let terminal = if failed { "Failed" } else { "Complete" };
            conditions::set(
                status,
                &Condition::truthy(terminal, reason.clone(), message.clone()),
                now,
            );
            if failed {
                plan.events.push(Event {
                    warning: true,
                    reason,
                    message,
                });
            } else {
                status.completion_time = Some(Time(now));
                plan.events.push(Event {
                    warning: false,
                    reason: "Completed".into(),
                    message: "Job completed".into(),
                });
            }
        }
        return plan;
    }
    if spec.suspended {
        plan.delete.extend(active.iter().map(|p| name(p)));
        let suspended = Condition::truthy("Suspended", "JobSuspended", "Job suspended");
        if conditions::set(status, &suspended, now) {
            plan.events.push(Event {
                warning: false,
                reason: "Suspended".into(),
                message: "Job suspended".into(),
            });
        }
        return plan;
    }
    if conditions::true_condition(status, "Suspended").is_some() {
        let resumed = Condition {
            status: "False",
            ..Condition::truthy("Suspended", "JobResumed", "Job resumed")
        };
        conditions::set(status, &resumed, now);
        status.start_time = Some(Time(now));
        plan.events.push(Event {
            warning: false,
            reason: "Resumed".into(),
            message: "Job resumed".into(),
        });
    }
    let start = status.start_time.get_or_insert(Time(now)).clone();
    if let Some(seconds) = spec.deadline {
        let at = start.0 + jiff::SignedDuration::from_secs(seconds);
        plan.requeue = Some(Duration::try_from(now.duration_until(at)).unwrap_or_default());
    }
    let status = plan.status.clone();
    let mut managed = Plan::default();
    manage(job, &spec, owned, &active, &status, &mut managed);
    plan.delete.extend(managed.delete);
    if !managed.create.is_empty() {
        let finished = owned
            .iter()
            .filter(|p| pods::succeeded(p) || pods::failed(p, job))
            .map(|p| (*p, !pods::succeeded(p)));
        let record = backoff::record(finished);
        match backoff.remaining(&record, now) {
            Some(wait) => {
                plan.requeue = Some(plan.requeue.map_or(wait, |r| r.min(wait)));
            }
            None => plan.create = managed.create,
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> Timestamp {
        "2026-01-01T00:10:00Z".parse().unwrap()
    }

    fn job(spec: serde_json::Value, status: serde_json::Value) -> Job {
        let mut spec = spec;
        spec["template"] = json!({"spec": {"containers": [{"name": "c", "image": "i"}]}});
        serde_json::from_value(json!({
            "metadata": {"name": "j", "namespace": "ns", "uid": "job-uid"},
            "spec": spec,
            "status": status
        }))
        .unwrap()
    }

    /// A pod of the job: `state` is Running, Succeeded or Failed; `finalizer` whether it is still held.
    fn pod(name: &str, state: &str, finalizer: bool, index: Option<i32>) -> Pod {
        let finished = json!({"terminated": {"exitCode": if state == "Failed" {1} else {0}, "finishedAt": "2026-01-01T00:09:55Z"}});
        serde_json::from_value(json!({
            "metadata": {
                "name": name, "namespace": "ns", "uid": format!("uid-{name}"),
                "finalizers": if finalizer { json!([pods::TRACKING_FINALIZER]) } else { json!([]) },
                "annotations": index.map(|i| json!({indexes::COMPLETION_INDEX: i.to_string()})).unwrap_or(json!({})),
                "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": "j", "uid": "job-uid", "controller": true}]
            },
            "status": {
                "phase": state,
                "containerStatuses": [{"name": "c", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
                    "state": if state == "Running" { json!({"running": {}}) } else { finished }}]
            }
        }))
        .unwrap()
    }

    fn conditions(status: &JobStatus) -> Vec<String> {
        status
            .conditions
            .iter()
            .flatten()
            .map(|c| {
                format!(
                    "{}={}/{}",
                    c.type_,
                    c.status,
                    c.reason.clone().unwrap_or_default()
                )
            })
            .collect()
    }

    #[test]
    fn a_new_job_starts_parallelism_pods() {
        let job = job(json!({"parallelism": 2, "completions": 3}), json!({}));
        let plan = plan(&job, &[], now(), Backoff::default());
        assert_eq!(plan.create, vec![(None, None), (None, None)]);
        assert_eq!(plan.status.start_time, Some(Time(now())));
        assert_eq!(plan.status.active, None);
    }

    #[test]
    fn finished_pods_are_counted_through_uncounted_terminated_pods() {
        let job1 = job(
            json!({"parallelism": 1, "completions": 2}),
            json!({"startTime": "2026-01-01T00:00:00Z"}),
        );
        let done = pod("a", "Succeeded", true, None);
        let first = plan(&job1, &[&done], now(), Backoff::default());
        let uncounted = first.status.uncounted_terminated_pods.clone().unwrap();
        assert_eq!(uncounted.succeeded, Some(vec!["uid-a".to_string()]));
        assert_eq!(first.status.succeeded, None);
        assert_eq!(first.remove_finalizers, vec!["a".to_string()]);
        // The finalizer is gone: the pod moves into the counter.
        let job2 = job(
            json!({"parallelism": 1, "completions": 2}),
            serde_json::to_value(&first.status).unwrap(),
        );
        let released = pod("a", "Succeeded", false, None);
        let second = plan(&job2, &[&released], now(), Backoff::default());
        assert_eq!(second.status.succeeded, Some(1));
        assert_eq!(
            second.status.uncounted_terminated_pods,
            Some(UncountedTerminatedPods::default())
        );
        assert_eq!(second.create.len(), 1);
    }

    #[test]
    fn failures_back_off_then_fail_the_job_past_the_backoff_limit() {
        let running = json!({"startTime": "2026-01-01T00:00:00Z"});
        let job1 = job(json!({"backoffLimit": 1}), running.clone());
        let failed = pod("a", "Failed", false, None);
        // One failure counted: a replacement waits 10 s from 00:09:55.
        let status = json!({"startTime": "2026-01-01T00:00:00Z", "failed": 1});
        let waiting = plan(
            &job(json!({"backoffLimit": 1}), status),
            &[&failed],
            now(),
            Backoff::default(),
        );
        assert!(waiting.create.is_empty());
        assert_eq!(waiting.requeue, Some(Duration::from_secs(5)));
        // A second failure exceeds the limit: FailureTarget, then Failed once nothing runs.
        let second = pod("b", "Failed", true, None);
        let status = json!({"startTime": "2026-01-01T00:00:00Z", "failed": 1});
        let target = plan(
            &job(json!({"backoffLimit": 1}), status),
            &[&failed, &second],
            now(),
            Backoff::default(),
        );
        assert_eq!(
            conditions(&target.status),
            ["FailureTarget=True/BackoffLimitExceeded"]
        );
        let counted = serde_json::to_value(&target.status).unwrap();
        let released = pod("b", "Failed", false, None);
        let done = plan(
            &job(json!({"backoffLimit": 1}), counted),
            &[&failed, &released],
            now(),
            Backoff::default(),
        );
        assert_eq!(
            conditions(&done.status),
            [
                "FailureTarget=True/BackoffLimitExceeded",
                "Failed=True/BackoffLimitExceeded"
            ]
        );
        assert_eq!(done.status.failed, Some(2));
        assert_eq!(done.events[0].reason, "BackoffLimitExceeded");
        let _ = job1;
    }

    #[test]
    fn indexed_jobs_create_missing_indexes_and_complete_on_all_indexes() {
        let spec = json!({"completionMode": "Indexed", "parallelism": 2, "completions": 3});
        let started = json!({"startTime": "2026-01-01T00:00:00Z"});
        let running = pod("j-0", "Running", true, Some(0));
        let p = plan(
            &job(spec.clone(), started),
            &[&running],
            now(),
            Backoff::default(),
        );
        assert_eq!(p.create, vec![(Some(1), None)]);
        let status =
            json!({"startTime": "2026-01-01T00:00:00Z", "completedIndexes": "0-1", "succeeded": 2});
        let last = pod("j-2", "Succeeded", true, Some(2));
        let p = plan(&job(spec, status), &[&last], now(), Backoff::default());
        assert_eq!(p.status.completed_indexes.as_deref(), Some("0-2"));
        assert_eq!(
            conditions(&p.status),
            ["SuccessCriteriaMet=True/CompletionsReached"]
        );
    }

    #[test]
    fn a_success_policy_completes_an_indexed_job_early() {
        let spec = json!({"completionMode": "Indexed", "parallelism": 3, "completions": 3,
            "successPolicy": {"rules": [{"succeededIndexes": "0,2"}, {"succeededCount": 1}]}});
        let started = json!({"startTime": "2026-01-01T00:00:00Z"});
        let leader = pod("j-1", "Succeeded", true, Some(1));
        let worker = pod("j-0", "Running", true, Some(0));
        let p = plan(
            &job(spec, started),
            &[&leader, &worker],
            now(),
            Backoff::default(),
        );
        assert_eq!(
            conditions(&p.status),
            ["SuccessCriteriaMet=True/SuccessPolicy"]
        );
        let met = &p.status.conditions.as_ref().unwrap()[0];
        assert_eq!(met.message.as_deref(), Some("Matched rules at index 1"));
        assert_eq!(p.delete, vec!["j-0".to_string()]);
    }

    #[test]
    fn suspended_jobs_delete_their_pods_and_say_so() {
        let running = pod("a", "Running", true, None);
        let p = plan(
            &job(json!({"suspend": true}), json!({})),
            &[&running],
            now(),
            Backoff::default(),
        );
        assert_eq!(p.delete, vec!["a".to_string()]);
        assert_eq!(conditions(&p.status), ["Suspended=True/JobSuspended"]);
        assert_eq!(p.events[0].reason, "Suspended");
    }
}
