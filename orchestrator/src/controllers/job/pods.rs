//! A Job's pods: how each is made from the template (tracking finalizer,
//! completion index annotation/label/env/hostname for Indexed jobs) and how a
//! pod's state counts (active, succeeded, failed, terminating), as upstream's
//! `isPodFailed`. Pure functions, no I/O.

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Container, EnvVar, EnvVarSource, ObjectFieldSelector, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::indexes::COMPLETION_INDEX;
use crate::controllers::workload::controller_reference;

/// The finalizer that keeps a finished pod until the Job has counted it.
pub const TRACKING_FINALIZER: &str = "batch.kubernetes.io/job-tracking";
/// How often a pod's index had failed before it was created (backoffLimitPerIndex).
pub const INDEX_FAILURE_COUNT: &str = "batch.kubernetes.io/job-index-failure-count";
/// The environment variable Indexed jobs' containers read their index from.
pub const INDEX_ENV: &str = "JOB_COMPLETION_INDEX";

/// Whether the pod still carries the tracking finalizer.
pub fn has_tracking_finalizer(pod: &Pod) -> bool {
    pod.metadata
        .finalizers
        .iter()
        .flatten()
        .any(|f| f == TRACKING_FINALIZER)
}

fn phase(pod: &Pod) -> Option<&str> {
    pod.status.as_ref().and_then(|s| s.phase.as_deref())
}

/// Whether the pod succeeded.
pub fn succeeded(pod: &Pod) -> bool {
    phase(pod) == Some("Succeeded")
}

/// Whether the pod counts as failed: phase Failed, or being deleted before it
/// succeeded (upstream's default `podReplacementPolicy: TerminatingOrFailed`);
/// with `Failed` replacement or a podFailurePolicy only the phase counts.
pub fn failed(pod: &Pod, job: &Job) -> bool {
    if phase(pod) == Some("Failed") {
        return true;
    }
    let spec = job.spec.as_ref();
    let only_failed = spec.is_some_and(|s| {
        s.pod_failure_policy.is_some() || s.pod_replacement_policy.as_deref() == Some("Failed")
    });
    !only_failed && pod.metadata.deletion_timestamp.is_some() && !succeeded(pod)
}

/// Whether the pod is being deleted and has not reached a terminal phase.
pub fn terminating(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some() && !matches!(phase(pod), Some("Succeeded" | "Failed"))
}

/// The generateName upstream gives a Job's pods: `NAME-` or `NAME-INDEX-`.
fn generate_name(job_name: &str, index: Option<i32>) -> String {
    match index {
        Some(i) => format!("{job_name}-{i}-"),
        None => format!("{job_name}-"),
    }
}

fn add_index_env(container: &mut Container) {
    let env = container.env.get_or_insert_with(Vec::new);
    if env.iter().any(|e| e.name == INDEX_ENV) {
        return;
    }
    env.push(EnvVar {
        name: INDEX_ENV.into(),
        value: None,
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                api_version: None,
                field_path: format!("metadata.annotations['{COMPLETION_INDEX}']"),
            }),
            ..Default::default()
        }),
    });
}

/// A new pod for `job` (with completion `index` for Indexed jobs, and how
/// often that index failed before when backoffLimitPerIndex is set).
pub fn new_pod(job: &Job, index: Option<i32>, index_failures: Option<i32>) -> Pod {
    let template = job
        .spec
        .as_ref()
        .map(|s| s.template.clone())
        .unwrap_or_default();
    let template_meta = template.metadata.unwrap_or_default();
    let job_name = job.metadata.name.clone().unwrap_or_default();
    let mut labels = template_meta.labels.unwrap_or_default();
    let mut annotations = template_meta.annotations.unwrap_or_default();
    let mut finalizers = template_meta.finalizers.unwrap_or_default();
    finalizers.push(TRACKING_FINALIZER.into());
    let mut spec = template.spec.unwrap_or_default();
    if let Some(i) = index {
        annotations.insert(COMPLETION_INDEX.into(), i.to_string());
        labels.insert(COMPLETION_INDEX.into(), i.to_string());
        if let Some(count) = index_failures {
            annotations.insert(INDEX_FAILURE_COUNT.into(), count.to_string());
        }
        spec.hostname = Some(format!("{job_name}-{i}"));
        spec.containers.iter_mut().for_each(add_index_env);
        spec.init_containers
            .iter_mut()
            .flatten()
            .for_each(add_index_env);
    }
    Pod {
        metadata: ObjectMeta {
            generate_name: Some(generate_name(&job_name, index)),
            namespace: job.metadata.namespace.clone(),
            labels: Some(labels),
            annotations: (!annotations.is_empty()).then_some(annotations),
            finalizers: Some(finalizers),
            owner_references: Some(vec![controller_reference(job)]),
            ..Default::default()
        },
        spec: Some(spec),
        status: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn job(spec: serde_json::Value) -> Job {
        serde_json::from_value(json!({
            "metadata": {"name": "pi", "namespace": "ns", "uid": "u"},
            "spec": spec
        }))
        .unwrap()
    }

    #[test]
    fn indexed_pods_carry_their_index_everywhere_upstream_puts_it() {
        let job = job(json!({"completionMode": "Indexed", "template": {
            "metadata": {"labels": {"job-name": "pi"}},
            "spec": {"containers": [{"name": "c", "image": "i"}], "restartPolicy": "Never"}
        }}));
        let pod = new_pod(&job, Some(3), None);
        let meta = &pod.metadata;
        assert_eq!(meta.generate_name.as_deref(), Some("pi-3-"));
        assert_eq!(meta.annotations.as_ref().unwrap()[COMPLETION_INDEX], "3");
        assert_eq!(meta.labels.as_ref().unwrap()[COMPLETION_INDEX], "3");
        assert_eq!(meta.labels.as_ref().unwrap()["job-name"], "pi");
        assert_eq!(
            meta.finalizers.as_deref(),
            Some(&[TRACKING_FINALIZER.to_string()][..])
        );
        let spec = pod.spec.unwrap();
        assert_eq!(spec.hostname.as_deref(), Some("pi-3"));
        let env = spec.containers[0].env.as_ref().unwrap();
        assert_eq!(env[0].name, INDEX_ENV);
        let plain = new_pod(&job, None, None);
        assert_eq!(plain.metadata.generate_name.as_deref(), Some("pi-"));
        assert!(plain.spec.unwrap().hostname.is_none());
    }

    #[test]
    fn deleted_pods_count_as_failed_unless_only_failed_pods_are_replaced() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p", "deletionTimestamp": "2026-01-01T00:00:00Z"},
            "status": {"phase": "Running"}
        }))
        .unwrap();
        assert!(failed(&pod, &job(json!({"template": {}}))));
        assert!(terminating(&pod));
        assert!(!failed(
            &pod,
            &job(json!({"template": {}, "podReplacementPolicy": "Failed"}))
        ));
    }
}
