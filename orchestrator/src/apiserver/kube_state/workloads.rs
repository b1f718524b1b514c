//! `kube_deployment_*`, `kube_replicaset_*`, `kube_statefulset_*`,
//! `kube_daemonset_*` and `kube_job_*`: the spec and status counts of the
//! workload controllers, labelled `namespace` and the kind's own label
//! (`deployment`, `replicaset`, …, `job_name`) as kube-state-metrics does.

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::family::MetricFamily;
use super::pods::{push_condition, push_owners, timestamp};

/// A gauge's name, help and value for one object (`None`: no series).
type GaugeSpec<'a, T> = (&'static str, &'static str, &'a dyn Fn(&T) -> Option<f64>);

/// One gauge family per `(name, help, value)`; a `None` value leaves the
/// object out of that family.
fn gauges<T>(
    objects: &[T],
    label: &str,
    meta: impl Fn(&T) -> &ObjectMeta,
    specs: &[GaugeSpec<'_, T>],
) -> Vec<MetricFamily> {
    specs
        .iter()
        .map(|(name, help, value)| {
            let mut family = MetricFamily::gauge(name, help);
            for object in objects {
                if let Some(v) = value(object) {
                    let m = meta(object);
                    let base = [
                        ("namespace", m.namespace.as_deref().unwrap_or_default()),
                        (label, m.name.as_deref().unwrap_or_default()),
                    ];
                    family.push(&base, &[], v);
                }
            }
            family
        })
        .collect()
}

fn count(n: Option<i32>) -> Option<f64> {
    Some(f64::from(n.unwrap_or(0)))
}

fn generation(meta: &ObjectMeta) -> Option<f64> {
    meta.generation.map(|g| g as f64)
}

/// The Deployment families.
pub fn deployments(items: &[Deployment]) -> Vec<MetricFamily> {
    let status = |d: &Deployment| d.status.clone().unwrap_or_default();
    gauges(
        items,
        "deployment",
        |d| &d.metadata,
        &[
            ("kube_deployment_spec_replicas", "Number of desired pods for a deployment.",
                &|d| count(d.spec.as_ref().and_then(|s| s.replicas).or(Some(1)))),
            ("kube_deployment_spec_paused", "Whether the deployment is paused and will not be processed by the deployment controller.",
                &|d| Some(if d.spec.as_ref().and_then(|s| s.paused).unwrap_or(false) { 1.0 } else { 0.0 })),
            ("kube_deployment_status_replicas", "The number of replicas per deployment.",
                &|d| count(status(d).replicas)),
            ("kube_deployment_status_replicas_available", "The number of available replicas per deployment.",
                &|d| count(status(d).available_replicas)),
            ("kube_deployment_status_replicas_unavailable", "The number of unavailable replicas per deployment.",
                &|d| count(status(d).unavailable_replicas)),
            ("kube_deployment_status_replicas_updated", "The number of updated replicas per deployment.",
                &|d| count(status(d).updated_replicas)),
            ("kube_deployment_status_replicas_ready", "The number of ready replicas per deployment.",
                &|d| count(status(d).ready_replicas)),
            ("kube_deployment_status_observed_generation", "The generation observed by the deployment controller.",
                &|d| status(d).observed_generation.map(|g| g as f64)),
            ("kube_deployment_metadata_generation", "Sequence number representing a specific generation of the desired state.",
                &|d| generation(&d.metadata)),
            ("kube_deployment_created", "Unix creation timestamp",
                &|d| timestamp(d.metadata.creation_timestamp.as_ref())),
        ],
    )
}

/// The ReplicaSet families, with `kube_replicaset_owner`.
pub fn replicasets(items: &[ReplicaSet]) -> Vec<MetricFamily> {
    let status = |r: &ReplicaSet| r.status.clone().unwrap_or_default();
    let mut families = gauges(
        items,
        "replicaset",
        |r| &r.metadata,
        &[
            (
                "kube_replicaset_spec_replicas",
                "Number of desired pods for a ReplicaSet.",
                &|r| count(r.spec.as_ref().and_then(|s| s.replicas).or(Some(1))),
            ),
            (
                "kube_replicaset_status_replicas",
                "The number of replicas per ReplicaSet.",
                &|r| Some(f64::from(status(r).replicas)),
            ),
            (
                "kube_replicaset_status_ready_replicas",
                "The number of ready replicas per ReplicaSet.",
                &|r| count(status(r).ready_replicas),
            ),
            (
                "kube_replicaset_status_fully_labeled_replicas",
                "The number of fully labeled replicas per ReplicaSet.",
                &|r| count(status(r).fully_labeled_replicas),
            ),
            (
                "kube_replicaset_status_observed_generation",
                "The generation observed by the ReplicaSet controller.",
                &|r| status(r).observed_generation.map(|g| g as f64),
            ),
            (
                "kube_replicaset_metadata_generation",
                "Sequence number representing a specific generation of the desired state.",
                &|r| generation(&r.metadata),
            ),
        ],
    );
    let mut owner = MetricFamily::gauge(
        "kube_replicaset_owner",
        "Information about the ReplicaSet's owner.",
    );
    for r in items {
        let base = [
            (
                "namespace",
                r.metadata.namespace.as_deref().unwrap_or_default(),
            ),
            ("replicaset", r.metadata.name.as_deref().unwrap_or_default()),
        ];
        push_owners(&mut owner, &base, &r.metadata);
    }
    families.push(owner);
    families
}

/// The StatefulSet families.
pub fn statefulsets(items: &[StatefulSet]) -> Vec<MetricFamily> {
    let status = |s: &StatefulSet| s.status.clone().unwrap_or_default();
    gauges(
        items,
        "statefulset",
        |s| &s.metadata,
        &[
            ("kube_statefulset_replicas", "Number of desired pods for a StatefulSet.",
                &|s| count(s.spec.as_ref().and_then(|s| s.replicas).or(Some(1)))),
            ("kube_statefulset_status_replicas", "The number of replicas per StatefulSet.",
                &|s| Some(f64::from(status(s).replicas))),
            ("kube_statefulset_status_replicas_ready", "The number of ready replicas per StatefulSet.",
                &|s| count(status(s).ready_replicas)),
            ("kube_statefulset_status_replicas_current", "The number of current replicas per StatefulSet.",
                &|s| count(status(s).current_replicas)),
            ("kube_statefulset_status_replicas_updated", "The number of updated replicas per StatefulSet.",
                &|s| count(status(s).updated_replicas)),
            ("kube_statefulset_status_replicas_available", "The number of available replicas per StatefulSet.",
                &|s| count(status(s).available_replicas)),
            ("kube_statefulset_status_observed_generation", "The generation observed by the StatefulSet controller.",
                &|s| status(s).observed_generation.map(|g| g as f64)),
            ("kube_statefulset_metadata_generation", "Sequence number representing a specific generation of the desired state for the StatefulSet.",
                &|s| generation(&s.metadata)),
        ],
    )
}

/// The DaemonSet families.
pub fn daemonsets(items: &[DaemonSet]) -> Vec<MetricFamily> {
    let status = |d: &DaemonSet| d.status.clone().unwrap_or_default();
    gauges(
        items,
        "daemonset",
        |d| &d.metadata,
        &[
            ("kube_daemonset_status_current_number_scheduled", "The number of nodes running at least one daemon pod and are supposed to.",
                &|d| Some(f64::from(status(d).current_number_scheduled))),
            ("kube_daemonset_status_desired_number_scheduled", "The number of nodes that should be running the daemon pod.",
                &|d| Some(f64::from(status(d).desired_number_scheduled))),
            ("kube_daemonset_status_number_available", "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and available",
                &|d| count(status(d).number_available)),
            ("kube_daemonset_status_number_misscheduled", "The number of nodes running a daemon pod but are not supposed to.",
                &|d| Some(f64::from(status(d).number_misscheduled))),
            ("kube_daemonset_status_number_ready", "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and ready.",
                &|d| Some(f64::from(status(d).number_ready))),
            ("kube_daemonset_status_number_unavailable", "The number of nodes that should be running the daemon pod and have none of the daemon pod running and available",
                &|d| count(status(d).number_unavailable)),
            ("kube_daemonset_status_updated_number_scheduled", "The total number of nodes that are running updated daemon pod",
                &|d| count(status(d).updated_number_scheduled)),
            ("kube_daemonset_status_observed_generation", "The most recent generation observed by the daemon set controller.",
                &|d| status(d).observed_generation.map(|g| g as f64)),
            ("kube_daemonset_metadata_generation", "Sequence number representing a specific generation of the desired state.",
                &|d| generation(&d.metadata)),
        ],
    )
}

/// The Job families, with `kube_job_complete` and `kube_job_failed` per
/// condition.
pub fn jobs(items: &[Job]) -> Vec<MetricFamily> {
    let status = |j: &Job| j.status.clone().unwrap_or_default();
    let mut families = gauges(
        items,
        "job_name",
        |j| &j.metadata,
        &[
            (
                "kube_job_status_succeeded",
                "The number of pods which reached Phase Succeeded.",
                &|j| count(status(j).succeeded),
            ),
            (
                "kube_job_status_failed",
                "The number of pods which reached Phase Failed.",
                &|j| count(status(j).failed),
            ),
            (
                "kube_job_status_active",
                "The number of actively running pods.",
                &|j| count(status(j).active),
            ),
            (
                "kube_job_spec_completions",
                "The desired number of successfully finished pods the job should be run with.",
                &|j| j.spec.as_ref().and_then(|s| s.completions).map(f64::from),
            ),
            (
                "kube_job_spec_parallelism",
                "The maximum desired number of pods the job should run at any given time.",
                &|j| j.spec.as_ref().and_then(|s| s.parallelism).map(f64::from),
            ),
            (
                "kube_job_status_start_time",
                "StartTime represents time when the job was acknowledged by the Job Manager.",
                &|j| timestamp(status(j).start_time.as_ref()),
            ),
            (
                "kube_job_status_completion_time",
                "CompletionTime represents time when the job was completed.",
                &|j| timestamp(status(j).completion_time.as_ref()),
            ),
        ],
    );
    let mut complete =
        MetricFamily::gauge("kube_job_complete", "The job has completed its execution.");
    let mut failed = MetricFamily::gauge("kube_job_failed", "The job has failed its execution.");
    for j in items {
        let base = [
            (
                "namespace",
                j.metadata.namespace.as_deref().unwrap_or_default(),
            ),
            ("job_name", j.metadata.name.as_deref().unwrap_or_default()),
        ];
        for condition in j
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .into_iter()
            .flatten()
        {
            match condition.type_.as_str() {
                "Complete" => push_condition(&mut complete, &base, &[], &condition.status),
                "Failed" => push_condition(&mut failed, &base, &[], &condition.status),
                _ => {}
            }
        }
    }
    families.extend([complete, failed]);
    families
}

#[cfg(test)]
mod tests {
    use super::super::family::value_of;
    use super::*;
    use serde_json::json;

    #[test]
    fn deployment_counts_read_the_spec_and_status() {
        let d: Deployment = serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "ns", "generation": 4},
            "spec": {"replicas": 3, "selector": {}, "template": {}},
            "status": {"replicas": 3, "availableReplicas": 2, "unavailableReplicas": 1,
                "updatedReplicas": 3, "readyReplicas": 2, "observedGeneration": 4},
        }))
        .expect("a deployment");
        let families = deployments(&[d]);
        let get = |name: &str| {
            families
                .iter()
                .find(|f| f.name == name)
                .and_then(|f| f.value(&[("namespace", "ns"), ("deployment", "web")]))
        };
        assert_eq!(get("kube_deployment_spec_replicas"), Some(3.0));
        assert_eq!(get("kube_deployment_status_replicas_available"), Some(2.0));
        assert_eq!(
            get("kube_deployment_status_replicas_unavailable"),
            Some(1.0)
        );
        assert_eq!(get("kube_deployment_status_replicas_ready"), Some(2.0));
        assert_eq!(get("kube_deployment_status_observed_generation"), Some(4.0));
        assert_eq!(get("kube_deployment_metadata_generation"), Some(4.0));
    }

    #[test]
    fn replica_sets_statefulsets_and_daemonsets_report_their_counts() {
        let rs: ReplicaSet = serde_json::from_value(json!({
            "metadata": {"name": "web-1", "namespace": "ns", "ownerReferences": [
                {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": "d",
                    "controller": true}]},
            "spec": {"replicas": 3, "selector": {}},
            "status": {"replicas": 3, "readyReplicas": 2},
        }))
        .expect("a replicaset");
        let sts: StatefulSet = serde_json::from_value(json!({
            "metadata": {"name": "db", "namespace": "ns"},
            "spec": {"replicas": 2, "selector": {}, "template": {}, "serviceName": "db"},
            "status": {"replicas": 2, "readyReplicas": 1, "availableReplicas": 1},
        }))
        .expect("a statefulset");
        let ds: DaemonSet = serde_json::from_value(json!({
            "metadata": {"name": "agent", "namespace": "ns", "generation": 3},
            "spec": {"selector": {}, "template": {}},
            "status": {"currentNumberScheduled": 4, "desiredNumberScheduled": 5,
                "numberMisscheduled": 0, "numberReady": 4, "numberUnavailable": 1,
                "observedGeneration": 3},
        }))
        .expect("a daemonset");
        let mut families = replicasets(&[rs]);
        families.extend(statefulsets(&[sts]));
        families.extend(daemonsets(&[ds]));
        let get = |name: &str, labels: &[(&str, &str)]| value_of(&families, name, labels);
        let rs = [("namespace", "ns"), ("replicaset", "web-1")];
        assert_eq!(get("kube_replicaset_spec_replicas", &rs), Some(3.0));
        assert_eq!(get("kube_replicaset_status_ready_replicas", &rs), Some(2.0));
        assert_eq!(
            get(
                "kube_replicaset_owner",
                &[("owner_kind", "Deployment"), ("owner_name", "web")]
            ),
            Some(1.0)
        );
        let sts = [("statefulset", "db")];
        assert_eq!(get("kube_statefulset_replicas", &sts), Some(2.0));
        assert_eq!(
            get("kube_statefulset_status_replicas_ready", &sts),
            Some(1.0)
        );
        let ds = [("daemonset", "agent")];
        assert_eq!(
            get("kube_daemonset_status_desired_number_scheduled", &ds),
            Some(5.0)
        );
        assert_eq!(
            get("kube_daemonset_status_number_unavailable", &ds),
            Some(1.0)
        );
        assert_eq!(
            get("kube_daemonset_status_number_available", &ds),
            Some(0.0)
        );
        assert_eq!(get("kube_daemonset_metadata_generation", &ds), Some(3.0));
    }

    #[test]
    fn a_complete_job_reads_true_on_kube_job_complete() {
        let j: Job = serde_json::from_value(json!({
            "metadata": {"name": "once", "namespace": "ns"},
            "spec": {"completions": 1, "template": {}},
            "status": {"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]},
        }))
        .expect("a job");
        let families = jobs(&[j]);
        let get = |name: &str, extra: &[(&str, &str)]| {
            let mut labels = vec![("job_name", "once")];
            labels.extend_from_slice(extra);
            families
                .iter()
                .find(|f| f.name == name)
                .and_then(|f| f.value(&labels))
        };
        assert_eq!(get("kube_job_status_succeeded", &[]), Some(1.0));
        assert_eq!(get("kube_job_status_active", &[]), Some(0.0));
        assert_eq!(
            get("kube_job_complete", &[("condition", "true")]),
            Some(1.0)
        );
        assert_eq!(
            get("kube_job_complete", &[("condition", "false")]),
            Some(0.0)
        );
    }
}
