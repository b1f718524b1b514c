//! What a namespace uses against a ResourceQuota (upstream's evaluators in
//! `pkg/quota/v1/evaluator/core`): pods' requests and limits, Services'
//! load balancers and node ports, claims' storage, and object counts. Pure:
//! the controller lists the objects and passes them in.

use std::collections::{BTreeMap, BTreeSet};

use berth_api::quantity::{Format, Quantity};
use k8s_openapi::api::core::v1::{Container, PersistentVolumeClaim, Pod, Service};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity as OpenApiQuantity;

/// Resource names mapped to amounts (`requests.cpu` → `500m`).
pub type Usage = BTreeMap<String, Quantity>;

/// Core resources whose legacy quota name is their plural (`configmaps` counts
/// like `count/configmaps`).
const COUNTED_CORE: &[&str] = &[
    "configmaps",
    "persistentvolumeclaims",
    "pods",
    "replicationcontrollers",
    "resourcequotas",
    "secrets",
    "services",
];

/// Suffix of the per-storage-class claim resources.
const STORAGE_CLASS: &str = ".storageclass.storage.k8s.io/";

/// What the quota's hard resources ask the controller to read.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Needs {
    /// The namespace's pods.
    pub pods: bool,
    /// Its Services.
    pub services: bool,
    /// Its PersistentVolumeClaims.
    pub claims: bool,
    /// Other resources to count, as (group, plural).
    pub counted: BTreeSet<(String, String)>,
}

/// `deployments.apps` → (`apps`, `deployments`); `configmaps` → (``, `configmaps`).
fn group_resource(name: &str) -> (String, String) {
    match name.split_once('.') {
        Some((plural, group)) => (group.to_owned(), plural.to_owned()),
        None => (String::new(), name.to_owned()),
    }
}

/// Which objects the hard resources of a quota are computed from.
pub fn needs<'a>(hard: impl IntoIterator<Item = &'a String>) -> Needs {
    let mut needs = Needs::default();
    for name in hard {
        let counted = name.strip_prefix("count/").map(group_resource).or_else(|| {
            COUNTED_CORE
                .contains(&name.as_str())
                .then(|| (String::new(), name.clone()))
        });
        match counted {
            Some((group, plural)) if group.is_empty() && plural == "pods" => needs.pods = true,
            Some((group, plural)) if group.is_empty() && plural == "services" => {
                needs.services = true
            }
            Some((group, plural)) if group.is_empty() && plural == "persistentvolumeclaims" => {
                needs.claims = true
            }
            Some(pair) => {
                needs.counted.insert(pair);
            }
            None if name.starts_with("services.") => needs.services = true,
            None if name == "requests.storage" || name.contains(STORAGE_CLASS) => {
                needs.claims = true
            }
            None => needs.pods = true,
        }
    }
    needs
}

/// The quota name of counted objects: `count/deployments.apps`, `count/configmaps`.
pub fn count_name(group: &str, plural: &str) -> String {
    if group.is_empty() {
        format!("count/{plural}")
    } else {
        format!("count/{plural}.{group}")
    }
}

fn add(usage: &mut Usage, name: impl Into<String>, amount: Quantity) {
    let entry = usage.entry(name.into()).or_default();
    *entry = entry.checked_add(amount).unwrap_or(*entry);
}

fn one() -> Quantity {
    Quantity::new(1, Format::DecimalSI)
}

/// Whether upstream's pod evaluator still charges the pod: not Succeeded or
/// Failed, and not past its deletion grace period at `now`.
pub fn pod_is_charged(pod: &Pod, now: jiff::Timestamp) -> bool {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    if matches!(phase, Some("Succeeded" | "Failed")) {
        return false;
    }
    match (
        &pod.metadata.deletion_timestamp,
        pod.metadata.deletion_grace_period_seconds,
    ) {
        (Some(at), Some(grace)) => at.0 + jiff::SignedDuration::from_secs(grace) >= now,
        _ => true,
    }
}

/// Whether the pod falls under the quota's pod scopes (`BestEffort`, `Terminating`, …).
pub fn pod_in_scopes(pod: &Pod, scopes: &[String]) -> bool {
    let spec = pod.spec.as_ref();
    let terminating = spec.and_then(|s| s.active_deadline_seconds).is_some();
    let best_effort = || {
        let spec = serde_json::to_value(spec).unwrap_or_default();
        berth_api::kinds::core::pod::spec::qos_class(&spec) == "BestEffort"
    };
    scopes.iter().all(|scope| match scope.as_str() {
        "Terminating" => terminating,
        "NotTerminating" => !terminating,
        "BestEffort" => best_effort(),
        "NotBestEffort" => !best_effort(),
        _ => true,
    })
}

fn quantities(list: Option<&BTreeMap<String, OpenApiQuantity>>) -> Usage {
    list.into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.clone(), Quantity::try_from(v).ok()?)))
        .collect()
}

/// A container's requests (a limit stands in for a missing request, as
/// upstream's defaulting does) and limits.
fn container_amounts(c: &Container) -> (Usage, Usage) {
    let resources = c.resources.as_ref();
    let limits = quantities(resources.and_then(|r| r.limits.as_ref()));
    let mut requests = quantities(resources.and_then(|r| r.requests.as_ref()));
    for (k, v) in &limits {
        requests.entry(k.clone()).or_insert(*v);
    }
    (requests, limits)
}

/// A pod's effective requests and limits: the larger of its containers' sum
/// and its largest init container, per resource, plus the pod overhead.
fn pod_amounts(pod: &Pod) -> (Usage, Usage) {
    let (mut requests, mut limits) = (Usage::new(), Usage::new());
    let Some(spec) = pod.spec.as_ref() else {
        return (requests, limits);
    };
    for c in &spec.containers {
        let (r, l) = container_amounts(c);
        r.into_iter().for_each(|(k, v)| add(&mut requests, k, v));
        l.into_iter().for_each(|(k, v)| add(&mut limits, k, v));
    }
    for c in spec.init_containers.iter().flatten() {
        let (r, l) = container_amounts(c);
        for (total, init) in [(&mut requests, r), (&mut limits, l)] {
            for (k, v) in init {
                let current = total.entry(k).or_default();
                if v > *current {
                    *current = v;
                }
            }
        }
    }
    let overhead = quantities(spec.overhead.as_ref());
    for (k, v) in &overhead {
        add(&mut requests, k.clone(), *v);
        if limits.contains_key(k) {
            add(&mut limits, k.clone(), *v);
        }
    }
    (requests, limits)
}

/// What one charged pod uses, under every name upstream's pod evaluator reports.
pub fn pod_usage(pod: &Pod) -> Usage {
    let mut usage = Usage::new();
    add(&mut usage, "pods", one());
    add(&mut usage, "count/pods", one());
    let (requests, limits) = pod_amounts(pod);
    for native in ["cpu", "memory", "ephemeral-storage"] {
        if let Some(q) = requests.get(native) {
            add(&mut usage, native, *q);
            add(&mut usage, format!("requests.{native}"), *q);
        }
        if let Some(q) = limits.get(native) {
            add(&mut usage, format!("limits.{native}"), *q);
        }
    }
    for (name, q) in &requests {
        if name.starts_with("hugepages-") {
            add(&mut usage, name.clone(), *q);
            add(&mut usage, format!("requests.{name}"), *q);
        } else if name.contains('/') && !name.contains("kubernetes.io/") {
            add(&mut usage, format!("requests.{name}"), *q);
        }
    }
    usage
}

/// What one Service uses: itself, a load balancer, its node ports.
pub fn service_usage(service: &Service) -> Usage {
    let mut usage = Usage::new();
    add(&mut usage, "services", one());
    add(&mut usage, "count/services", one());
    let spec = service.spec.as_ref();
    let ports = spec.and_then(|s| s.ports.as_deref()).unwrap_or_default();
    let node_ports = match spec.and_then(|s| s.type_.as_deref()) {
        Some("NodePort") => ports.len(),
        Some("LoadBalancer") => {
            add(&mut usage, "services.loadbalancers", one());
            if spec.and_then(|s| s.allocate_load_balancer_node_ports) == Some(false) {
                ports
                    .iter()
                    .filter(|p| p.node_port.unwrap_or(0) != 0)
                    .count()
            } else {
                ports.len()
            }
        }
        _ => 0,
    };
    add(
        &mut usage,
        "services.nodeports",
        Quantity::new(node_ports as i64, Format::DecimalSI),
    );
    usage
}

/// What one claim uses: itself and its storage request, overall and per class.
pub fn claim_usage(claim: &PersistentVolumeClaim) -> Usage {
    let mut usage = Usage::new();
    add(&mut usage, "persistentvolumeclaims", one());
    add(&mut usage, "count/persistentvolumeclaims", one());
    let spec = claim.spec.as_ref();
    let class = spec.and_then(|s| s.storage_class_name.clone());
    if let Some(class) = &class {
        add(
            &mut usage,
            format!("{class}{STORAGE_CLASS}persistentvolumeclaims"),
            one(),
        );
    }
    let storage = spec
        .and_then(|s| s.resources.as_ref())
        .and_then(|r| r.requests.as_ref())
        .and_then(|r| r.get("storage"))
        .and_then(|q| Quantity::try_from(q).ok());
    if let Some(storage) = storage {
        add(&mut usage, "requests.storage", storage);
        if let Some(class) = &class {
            add(
                &mut usage,
                format!("{class}{STORAGE_CLASS}requests.storage"),
                storage,
            );
        }
    }
    usage
}

/// Everything a namespace holds that a quota charges for.
#[derive(Debug, Default)]
pub struct Observed<'a> {
    /// Its pods (all of them; terminal ones and those out of scope are skipped here).
    pub pods: &'a [Pod],
    /// Its Services.
    pub services: &'a [Service],
    /// Its claims.
    pub claims: &'a [PersistentVolumeClaim],
    /// Object counts by (group, plural).
    pub counts: BTreeMap<(String, String), i64>,
}

/// `status.used` of a quota: each hard resource's usage (zero when nothing
/// uses it), in the format of the hard amount when nothing was summed.
pub fn used(
    hard: &BTreeMap<String, Quantity>,
    scopes: &[String],
    observed: &Observed,
    now: jiff::Timestamp,
) -> Usage {
    let mut total = Usage::new();
    let pods = observed
        .pods
        .iter()
        .filter(|p| pod_is_charged(p, now) && pod_in_scopes(p, scopes));
    for usage in pods
        .map(pod_usage)
        .chain(observed.services.iter().map(service_usage))
        .chain(observed.claims.iter().map(claim_usage))
    {
        usage.into_iter().for_each(|(k, v)| add(&mut total, k, v));
    }
    for ((group, plural), count) in &observed.counts {
        let amount = Quantity::new(*count, Format::DecimalSI);
        add(&mut total, count_name(group, plural), amount);
        if group.is_empty() && COUNTED_CORE.contains(&plural.as_str()) {
            add(&mut total, plural.clone(), amount);
        }
    }
    hard.iter()
        .map(|(name, limit)| {
            let amount = total
                .get(name)
                .copied()
                .unwrap_or_else(|| Quantity::new(0, limit.format()));
            (name.clone(), amount)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(value: serde_json::Value) -> Pod {
        serde_json::from_value(value).unwrap()
    }

    fn hard(pairs: &[(&str, &str)]) -> BTreeMap<String, Quantity> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Quantity::parse(v).unwrap()))
            .collect()
    }

    fn shown(usage: &Usage) -> BTreeMap<&str, String> {
        usage
            .iter()
            .map(|(k, v)| (k.as_str(), v.to_string()))
            .collect()
    }

    #[test]
    fn needs_follow_the_hard_resources() {
        let names: Vec<String> = [
            "requests.cpu",
            "count/deployments.apps",
            "configmaps",
            "services.nodeports",
            "requests.storage",
            "count/pods",
        ]
        .map(String::from)
        .to_vec();
        let needs = needs(&names);
        assert!(needs.pods && needs.services && needs.claims);
        let counted: Vec<_> = needs.counted.iter().cloned().collect();
        assert_eq!(
            counted,
            [
                ("".to_owned(), "configmaps".to_owned()),
                ("apps".to_owned(), "deployments".to_owned())
            ]
        );
    }

    #[test]
    fn pods_charge_requests_limits_and_extended_resources() {
        let running = pod(json!({"metadata": {"name": "a"}, "spec": {"containers": [
            {"name": "a", "resources": {"requests": {"cpu": "250m", "memory": "64Mi"}, "limits": {"cpu": "500m", "memory": "128Mi", "nvidia.com/gpu": "1"}}},
            {"name": "b", "resources": {"limits": {"cpu": "1"}}}],
            "initContainers": [{"name": "i", "resources": {"requests": {"cpu": "2"}}}]}}));
        let done = pod(
            json!({"metadata": {"name": "b"}, "spec": {"containers": [{"name": "a",
            "resources": {"requests": {"cpu": "4"}}}]}, "status": {"phase": "Succeeded"}}),
        );
        let pods = [running, done];
        let observed = Observed {
            pods: &pods,
            ..Default::default()
        };
        let limits = hard(&[
            ("pods", "10"),
            ("requests.cpu", "4"),
            ("cpu", "4"),
            ("limits.cpu", "4"),
            ("requests.memory", "1Gi"),
            ("limits.memory", "1Gi"),
            ("requests.nvidia.com/gpu", "2"),
            ("count/pods", "5"),
        ]);
        let used = used(&limits, &[], &observed, jiff::Timestamp::UNIX_EPOCH);
        let expected: BTreeMap<&str, String> = [
            ("count/pods", "1"),
            ("cpu", "2"),
            ("limits.cpu", "1500m"),
            ("limits.memory", "128Mi"),
            ("pods", "1"),
            ("requests.cpu", "2"),
            ("requests.memory", "64Mi"),
            ("requests.nvidia.com/gpu", "1"),
        ]
        .into_iter()
        .map(|(k, v)| (k, v.to_owned()))
        .collect();
        assert_eq!(shown(&used), expected);
    }

    #[test]
    fn services_claims_and_counts() {
        let services: Vec<Service> = vec![
            serde_json::from_value(
                json!({"spec": {"type": "LoadBalancer", "ports": [{"port": 80}, {"port": 443}]}}),
            )
            .unwrap(),
            serde_json::from_value(json!({"spec": {"type": "ClusterIP", "ports": [{"port": 80}]}}))
                .unwrap(),
        ];
        let claims: Vec<PersistentVolumeClaim> = vec![serde_json::from_value(json!({"spec": {
            "storageClassName": "gold", "resources": {"requests": {"storage": "5Gi"}}}}))
        .unwrap()];
        let mut counts = BTreeMap::new();
        counts.insert(("".to_owned(), "configmaps".to_owned()), 3);
        counts.insert(("apps".to_owned(), "deployments".to_owned()), 2);
        let observed = Observed {
            services: &services,
            claims: &claims,
            counts,
            ..Default::default()
        };
        let limits = hard(&[
            ("services", "5"),
            ("services.loadbalancers", "1"),
            ("services.nodeports", "4"),
            ("requests.storage", "10Gi"),
            ("gold.storageclass.storage.k8s.io/requests.storage", "10Gi"),
            ("configmaps", "10"),
            ("count/deployments.apps", "4"),
            ("secrets", "2"),
        ]);
        let used = used(&limits, &[], &observed, jiff::Timestamp::UNIX_EPOCH);
        let expected: BTreeMap<&str, String> = [
            ("configmaps", "3"),
            ("count/deployments.apps", "2"),
            ("gold.storageclass.storage.k8s.io/requests.storage", "5Gi"),
            ("requests.storage", "5Gi"),
            ("secrets", "0"),
            ("services", "2"),
            ("services.loadbalancers", "1"),
            ("services.nodeports", "2"),
        ]
        .into_iter()
        .map(|(k, v)| (k, v.to_owned()))
        .collect();
        assert_eq!(shown(&used), expected);
    }

    #[test]
    fn scopes_pick_pods() {
        let best_effort = pod(json!({"spec": {"containers": [{"name": "a"}]}}));
        let burstable = pod(
            json!({"spec": {"containers": [{"name": "a", "resources": {"requests": {"cpu": "1"}}}], "activeDeadlineSeconds": 30}}),
        );
        assert!(pod_in_scopes(
            &best_effort,
            &["BestEffort".into(), "NotTerminating".into()]
        ));
        assert!(!pod_in_scopes(&burstable, &["BestEffort".into()]));
        assert!(pod_in_scopes(
            &burstable,
            &["NotBestEffort".into(), "Terminating".into()]
        ));
    }
}
