//! Whether a pending pod could run on a machine of some shape: its resource
//! requests against the shape's capacity, its nodeSelector and required node
//! affinity against the shape's labels, and its tolerations against the
//! shape's taints. Pure; the same checks the scheduler will make once the
//! machine is a Node, so a pod is only provisioned for where it will land.

use std::collections::BTreeMap;

use berth_api::nodeclaim::NodeClaim;
use berth_api::nodepool::{NodePool, POOL_LABEL};
use k8s_openapi::api::core::v1::{PodSpec, ResourceRequirements, Taint};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use crate::constraints::{Constraints, Misfit};
use crate::plan::nano;

/// Resource amounts in nano units (`cpu: 1` is 1e9), by resource name.
pub type Resources = BTreeMap<String, i128>;

/// The resource every pod takes one of.
pub const PODS: &str = "pods";
/// What a machine holds when its template names no `pods` (kubelet's default).
pub const DEFAULT_MAX_PODS: i128 = 110;
/// One unit in nano units.
pub const ONE: i128 = 1_000_000_000;

/// A machine as the provisioner sees it: the labels and taints its Node
/// will carry and what pods may use of it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Shape {
    /// Labels of the Node (the pool's, `berth.dev/pool`, os and arch).
    pub labels: BTreeMap<String, String>,
    /// Taints that stay on the Node (startup taints go away, so they are
    /// not here, as Karpenter ignores them).
    pub taints: Vec<Taint>,
    /// What pods may use, `pods` included.
    pub capacity: Resources,
}

impl Shape {
    /// The shape of a new machine of `pool`.
    pub fn of_pool(pool: &NodePool) -> Self {
        let spec = &pool.spec;
        let mut labels = spec.labels.clone();
        labels.insert(
            POOL_LABEL.to_owned(),
            pool.metadata.name.clone().unwrap_or_default(),
        );
        let capacity = spec
            .template
            .as_ref()
            .map(|t| t.capacity.clone())
            .unwrap_or_default();
        Self::new(labels, spec.taints.clone(), &capacity)
    }

    /// The shape of a claim's machine, from the snapshot the claim took.
    pub fn of_claim(claim: &NodeClaim) -> Self {
        let mut labels = claim.spec.labels.clone();
        labels.insert(POOL_LABEL.to_owned(), claim.spec.pool.clone());
        Self::new(labels, claim.spec.taints.clone(), &claim.spec.resources)
    }

    fn new(
        mut labels: BTreeMap<String, String>,
        taints: Vec<Taint>,
        capacity: &BTreeMap<String, Quantity>,
    ) -> Self {
        for (key, value) in [
            ("kubernetes.io/os", "linux"),
            ("kubernetes.io/arch", "amd64"),
        ] {
            labels
                .entry(key.to_owned())
                .or_insert_with(|| value.to_owned());
        }
        Self {
            labels,
            taints,
            capacity: machine_capacity(capacity),
        }
    }
}

/// A template's capacity in nano units, with kubelet's default pod count
/// when it names none.
pub fn machine_capacity(capacity: &BTreeMap<String, Quantity>) -> Resources {
    let mut out: Resources = capacity
        .iter()
        .filter_map(|(k, v)| Some((k.clone(), nano(v)?)))
        .collect();
    out.entry(PODS.to_owned()).or_insert(DEFAULT_MAX_PODS * ONE);
    out
}

/// What a pod needs of a node: the sum of its containers' requests, at
/// least each init container's (they run one at a time before), plus its
/// overhead, plus one `pods`. A limit stands in for a missing request, as
/// the API server's defaulting does.
pub fn pod_requests(spec: &PodSpec) -> Resources {
    let mut sum = Resources::new();
    for container in &spec.containers {
        for (k, v) in requests(container.resources.as_ref()) {
            *sum.entry(k).or_default() += v;
        }
    }
    for container in spec.init_containers.iter().flatten() {
        for (k, v) in requests(container.resources.as_ref()) {
            let have = sum.entry(k).or_default();
            *have = (*have).max(v);
        }
    }
    for (k, v) in spec.overhead.iter().flatten() {
        if let Some(v) = nano(v) {
            *sum.entry(k.clone()).or_default() += v;
        }
    }
    *sum.entry(PODS.to_owned()).or_default() += ONE;
    sum.retain(|_, v| *v > 0);
    sum
}

fn requests(resources: Option<&ResourceRequirements>) -> Resources {
    let Some(resources) = resources else {
        return Resources::new();
    };
    let mut out: Resources = resources
        .limits
        .iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.clone(), nano(v)?)))
        .collect();
    for (k, v) in resources.requests.iter().flatten() {
        if let Some(v) = nano(v) {
            out.insert(k.clone(), v);
        }
    }
    out
}

/// Whether `wanted` fits in `free`; a resource `free` lacks has none.
pub fn fits_within(wanted: &Resources, free: &Resources) -> bool {
    wanted
        .iter()
        .all(|(k, v)| *v <= free.get(k).copied().unwrap_or(0))
}

/// Takes `used` from `free`.
pub fn subtract(free: &mut Resources, used: &Resources) {
    for (k, v) in used {
        *free.entry(k.clone()).or_default() -= v;
    }
}

/// Whether a pod with `constraints` and `requests` fits an empty machine of
/// `shape`.
pub fn fits(constraints: &Constraints, requests: &Resources, shape: &Shape) -> Result<(), Misfit> {
    if let Some((resource, _)) = requests
        .iter()
        .find(|(k, v)| **v > shape.capacity.get(*k).copied().unwrap_or(0))
    {
        return Err(Misfit::Resource(resource.clone()));
    }
    constraints.admit(&shape.labels, &shape.taints)
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_api::nodepool::{MachineTemplate, NodePoolSpec};
    use k8s_openapi::api::core::v1::Pod;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use serde_json::json;

    fn pool(taints: serde_json::Value, labels: serde_json::Value) -> NodePool {
        NodePool {
            metadata: ObjectMeta {
                name: Some("gpu".into()),
                ..ObjectMeta::default()
            },
            spec: NodePoolSpec {
                labels: serde_json::from_value(labels).unwrap(),
                taints: serde_json::from_value(taints).unwrap(),
                template: Some(MachineTemplate {
                    capacity: serde_json::from_value(
                        json!({"cpu": "8", "memory": "32Gi", "pods": "4", "nvidia.com/gpu": "2"}),
                    )
                    .unwrap(),
                    ..MachineTemplate::default()
                }),
                ..NodePoolSpec::default()
            },
            ..NodePool::default()
        }
    }

    fn pod(spec: serde_json::Value) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": spec})).unwrap()
    }

    fn check(p: &Pod, pool: &NodePool) -> Result<(), Misfit> {
        let spec = p.spec.clone().unwrap();
        fits(
            &Constraints::of(p),
            &pod_requests(&spec),
            &Shape::of_pool(pool),
        )
    }

    #[test]
    fn requests_add_containers_take_the_largest_init_and_overhead() {
        let p = pod(json!({
            "containers": [
                {"name": "a", "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}}},
                {"name": "b", "resources": {"limits": {"cpu": "1", "nvidia.com/gpu": "1"}}}
            ],
            "initContainers": [
                {"name": "i", "resources": {"requests": {"cpu": "2"}}},
                {"name": "j", "resources": {"requests": {"memory": "512Mi"}}}
            ],
            "overhead": {"cpu": "100m"}
        }));
        let got = pod_requests(p.spec.as_ref().unwrap());
        let want: Resources = [
            ("cpu", 2_100_000_000),
            ("memory", 1024 * 1024 * 1024 * ONE),
            ("nvidia.com/gpu", ONE),
            ("pods", ONE),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn fit_checks_resources_labels_affinity_and_taints() {
        let gpu_taint =
            json!([{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}]);
        let tainted = pool(gpu_taint, json!({"tier": "gpu"}));
        let plain = pool(
            json!([{"key": "soft", "effect": "PreferNoSchedule"}]),
            json!({}),
        );
        let tolerate = json!([{"key": "nvidia.com/gpu", "operator": "Exists"}]);
        let gpus = |n: &str| json!([{"name": "c", "resources": {"limits": {"nvidia.com/gpu": n}}}]);
        let cases: Vec<(&str, serde_json::Value, &NodePool, Result<(), Misfit>)> = vec![
            (
                "fits",
                json!({"containers": gpus("2"), "tolerations": tolerate}),
                &tainted,
                Ok(()),
            ),
            (
                "too many gpus",
                json!({"containers": gpus("3"), "tolerations": tolerate}),
                &tainted,
                Err(Misfit::Resource("nvidia.com/gpu".into())),
            ),
            (
                "untolerated taint",
                json!({"containers": gpus("1")}),
                &tainted,
                Err(Misfit::Taint("nvidia.com/gpu=present:NoSchedule".into())),
            ),
            (
                "PreferNoSchedule is no bar",
                json!({"containers": gpus("1")}),
                &plain,
                Ok(()),
            ),
            (
                "selector on the pool label",
                json!({"containers": [], "nodeSelector": {"berth.dev/pool": "gpu", "kubernetes.io/os": "linux"}}),
                &plain,
                Ok(()),
            ),
            (
                "selector missing",
                json!({"containers": [], "nodeSelector": {"tier": "gpu"}}),
                &plain,
                Err(Misfit::Selector("tier=gpu".into())),
            ),
            (
                "affinity, one term of two",
                json!({"containers": [], "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["cpu"]}]},
                    {"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["gpu"]}, {"key": "zone", "operator": "DoesNotExist"}]}
                ]}}}}),
                &plain,
                Ok(()),
            ),
            (
                "affinity unmatched",
                json!({"containers": [], "tolerations": tolerate, "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["gpu"]}]}
                ]}}}}),
                &tainted,
                Err(Misfit::Affinity),
            ),
            (
                "pod count",
                json!({"containers": [], "overhead": {"pods": "4"}}),
                &plain,
                Err(Misfit::Resource("pods".into())),
            ),
        ];
        for (name, spec, pool, want) in cases {
            assert_eq!(check(&pod(spec), pool), want, "{name}");
        }
    }
}
