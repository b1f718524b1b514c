//! Resource arithmetic for scheduling: what a pod requests (init containers,
//! sidecars and overhead counted as upstream does) and what a node can hold.
//! Plain integers (millicores, bytes, counts) so filters compare in O(1).

use std::collections::BTreeMap;

use berth_api::quantity::Quantity;
use k8s_openapi::api::core::v1::{Container, Node, Pod};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity as OpenApiQuantity;

/// CPU (millicores) a container without a CPU request counts as when scoring,
/// as upstream's `DefaultMilliCPURequest`.
pub const DEFAULT_MILLI_CPU_REQUEST: i64 = 100;
/// Memory (bytes) a container without a memory request counts as when scoring,
/// as upstream's `DefaultMemoryRequest` (200 MiB).
pub const DEFAULT_MEMORY_REQUEST: i64 = 200 * 1024 * 1024;

/// An amount of every resource the scheduler accounts for: the request of a
/// pod, the sum requested on a node, or a node's allocatable.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resources {
    /// CPU in millicores.
    pub milli_cpu: i64,
    /// Memory in bytes.
    pub memory: i64,
    /// Ephemeral storage in bytes.
    pub ephemeral_storage: i64,
    /// How many pods (only meaningful for allocatable).
    pub pods: i64,
    /// Extended and other scalar resources (`nvidia.com/gpu`, `hugepages-2Mi`), in whole units.
    pub scalar: BTreeMap<String, i64>,
}

fn quantity_value(name: &str, quantity: &OpenApiQuantity) -> i64 {
    let Ok(parsed) = Quantity::try_from(quantity) else {
        return 0;
    };
    let value = if name == "cpu" {
        parsed.milli_value()
    } else {
        parsed.value()
    };
    value.clamp(i64::MIN as i128, i64::MAX as i128) as i64
}

impl Resources {
    /// Reads a `ResourceList` (requests, overhead, allocatable).
    pub fn from_list(list: Option<&BTreeMap<String, OpenApiQuantity>>) -> Self {
        let mut resources = Resources::default();
        for (name, quantity) in list.into_iter().flatten() {
            resources.set(name, quantity_value(name, quantity));
        }
        resources
    }

    /// The amount of resource `name` (cpu in millicores).
    pub fn get(&self, name: &str) -> i64 {
        match name {
            "cpu" => self.milli_cpu,
            "memory" => self.memory,
            "ephemeral-storage" => self.ephemeral_storage,
            "pods" => self.pods,
            other => self.scalar.get(other).copied().unwrap_or(0),
        }
    }

    /// Sets resource `name` (cpu in millicores).
    pub fn set(&mut self, name: &str, value: i64) {
        match name {
            "cpu" => self.milli_cpu = value,
            "memory" => self.memory = value,
            "ephemeral-storage" => self.ephemeral_storage = value,
            "pods" => self.pods = value,
            other => {
                self.scalar.insert(other.to_owned(), value);
            }
        }
    }

    /// Adds `other` to this amount, resource by resource.
    pub fn add(&mut self, other: &Resources) {
        self.milli_cpu += other.milli_cpu;
        self.memory += other.memory;
        self.ephemeral_storage += other.ephemeral_storage;
        self.pods += other.pods;
        for (name, value) in &other.scalar {
            *self.scalar.entry(name.clone()).or_insert(0) += value;
        }
    }

    /// Subtracts `other`, dropping scalar entries that reach zero.
    pub fn sub(&mut self, other: &Resources) {
        self.milli_cpu -= other.milli_cpu;
        self.memory -= other.memory;
        self.ephemeral_storage -= other.ephemeral_storage;
        self.pods -= other.pods;
        for (name, value) in &other.scalar {
            let entry = self.scalar.entry(name.clone()).or_insert(0);
            *entry -= value;
            if *entry == 0 {
                self.scalar.remove(name);
            }
        }
    }

    /// Raises each resource to at least `other`'s amount.
    pub fn max_with(&mut self, other: &Resources) {
        self.milli_cpu = self.milli_cpu.max(other.milli_cpu);
        self.memory = self.memory.max(other.memory);
        self.ephemeral_storage = self.ephemeral_storage.max(other.ephemeral_storage);
        self.pods = self.pods.max(other.pods);
        for (name, value) in &other.scalar {
            let entry = self.scalar.entry(name.clone()).or_insert(0);
            *entry = (*entry).max(*value);
        }
    }

    /// True when nothing at all is requested.
    pub fn is_empty(&self) -> bool {
        self.milli_cpu == 0
            && self.memory == 0
            && self.ephemeral_storage == 0
            && self.scalar.values().all(|v| *v == 0)
    }
}

/// A container's effective requests: its requests, or its limits where a
/// request is missing (the API defaulting upstream applies).
fn container_requests(container: &Container) -> Resources {
    let resources = container.resources.as_ref();
    let mut requests = Resources::from_list(resources.and_then(|r| r.requests.as_ref()));
    let limits = Resources::from_list(resources.and_then(|r| r.limits.as_ref()));
    for name in ["cpu", "memory", "ephemeral-storage"] {
        let has_request = resources
            .and_then(|r| r.requests.as_ref())
            .is_some_and(|r| r.contains_key(name));
        if !has_request && limits.get(name) != 0 {
            requests.set(name, limits.get(name));
        }
    }
    for (name, value) in &limits.scalar {
        requests.scalar.entry(name.clone()).or_insert(*value);
    }
    requests
}

/// CPU and memory of one container's `requests` as scoring counts them:
/// defaults where unset.
fn non_zero(requests: &Resources) -> (i64, i64) {
    let cpu = if requests.milli_cpu == 0 {
        DEFAULT_MILLI_CPU_REQUEST
    } else {
        requests.milli_cpu
    };
    let memory = if requests.memory == 0 {
        DEFAULT_MEMORY_REQUEST
    } else {
        requests.memory
    };
    (cpu, memory)
}

/// A pod's requests both ways the scheduler counts them, from one pass over
/// its containers: each quantity is parsed once, since this runs for every
/// decision and every placed pod.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodRequests {
    /// What filters count (`pod_requests`).
    pub requests: Resources,
    /// CPU and memory as scoring counts them (`pod_non_zero_requests`).
    pub non_zero: (i64, i64),
}

/// One init container's requests, and whether it is a sidecar
/// (`restartPolicy: Always`, so it keeps running beside the containers).
struct InitRequests {
    requests: Resources,
    sidecar: bool,
}

impl PodRequests {
    /// Works out both for `pod`.
    pub fn of(pod: &Pod) -> Self {
        let Some(spec) = pod.spec.as_ref() else {
            return PodRequests::default();
        };
        let containers: Vec<Resources> = spec.containers.iter().map(container_requests).collect();
        let init: Vec<InitRequests> = spec
            .init_containers
            .iter()
            .flatten()
            .map(|c| InitRequests {
                requests: container_requests(c),
                sidecar: c.restart_policy.as_deref() == Some("Always"),
            })
            .collect();
        let overhead = Resources::from_list(spec.overhead.as_ref());
        PodRequests {
            requests: effective_requests(&containers, &init, &overhead),
            non_zero: non_zero_requests(&containers, &init, &overhead),
        }
    }
}

/// Upstream's `resourcehelper.PodRequests` over parsed container requests.
fn effective_requests(
    containers: &[Resources],
    init: &[InitRequests],
    overhead: &Resources,
) -> Resources {
    let mut sum = Resources::default();
    for requests in containers {
        sum.add(requests);
    }
    let mut sidecars = Resources::default();
    let mut init_max = Resources::default();
    for container in init {
        let during = if container.sidecar {
            sum.add(&container.requests);
            sidecars.add(&container.requests);
            sidecars.clone()
        } else {
            let mut with_sidecars = container.requests.clone();
            with_sidecars.add(&sidecars);
            with_sidecars
        };
        init_max.max_with(&during);
    }
    sum.max_with(&init_max);
    sum.add(overhead);
    sum
}

/// CPU and memory as scoring counts them over parsed container requests.
fn non_zero_requests(
    containers: &[Resources],
    init: &[InitRequests],
    overhead: &Resources,
) -> (i64, i64) {
    let (mut cpu, mut memory) = (0, 0);
    for requests in containers {
        let (c, m) = non_zero(requests);
        cpu += c;
        memory += m;
    }
    for container in init {
        let (c, m) = non_zero(&container.requests);
        cpu = cpu.max(c);
        memory = memory.max(m);
    }
    (cpu + overhead.milli_cpu, memory + overhead.memory)
}

/// What a pod needs from a node, as upstream's `resourcehelper.PodRequests`:
/// the sum of its containers (plus sidecar init containers, which keep
/// running), at least the largest init container (with the sidecars started
/// before it), plus the pod overhead.
pub fn pod_requests(pod: &Pod) -> Resources {
    PodRequests::of(pod).requests
}

/// CPU (millicores) and memory (bytes) of a pod as scoring counts them, with
/// upstream's defaults for containers that request nothing.
pub fn pod_non_zero_requests(pod: &Pod) -> (i64, i64) {
    PodRequests::of(pod).non_zero
}

/// What a node offers pods: `status.allocatable`, or `status.capacity` where
/// allocatable is not reported.
pub fn node_allocatable(node: &Node) -> Resources {
    let status = node.status.as_ref();
    match status.and_then(|s| s.allocatable.as_ref()) {
        Some(list) if !list.is_empty() => Resources::from_list(Some(list)),
        _ => Resources::from_list(status.and_then(|s| s.capacity.as_ref())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(spec: serde_json::Value) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": spec})).unwrap()
    }

    #[test]
    fn pod_requests_count_init_containers_sidecars_and_overhead_as_upstream() {
        let cases = [
            (
                "containers are summed",
                json!({"containers": [
                    {"name": "a", "resources": {"requests": {"cpu": "2", "memory": "1G"}}},
                    {"name": "b", "resources": {"requests": {"cpu": "1", "memory": "1G"}}}]}),
                (3000, 2_000_000_000, 0),
            ),
            (
                "the largest init container wins over the sum when bigger",
                json!({"initContainers": [
                    {"name": "i1", "resources": {"requests": {"cpu": "2", "memory": "1G"}}},
                    {"name": "i2", "resources": {"requests": {"cpu": "2", "memory": "3G"}}}],
                    "containers": [
                    {"name": "a", "resources": {"requests": {"cpu": "2", "memory": "1G"}}},
                    {"name": "b", "resources": {"requests": {"cpu": "1", "memory": "1G"}}}]}),
                (3000, 3_000_000_000, 0),
            ),
            (
                "sidecars add to the sum and to later init containers",
                json!({"initContainers": [
                    {"name": "side", "restartPolicy": "Always", "resources": {"requests": {"cpu": "1"}}},
                    {"name": "i", "resources": {"requests": {"cpu": "3"}}}],
                    "containers": [{"name": "a", "resources": {"requests": {"cpu": "1"}}}]}),
                (4000, 0, 0),
            ),
            (
                "overhead is added",
                json!({"overhead": {"cpu": "250m"},
                    "containers": [{"name": "a", "resources": {"requests": {"cpu": "1"}}}]}),
                (1250, 0, 0),
            ),
            (
                "limits stand in for missing requests; extended resources count",
                json!({"containers": [{"name": "a", "resources": {
                    "limits": {"cpu": "500m", "nvidia.com/gpu": "2"}}}]}),
                (500, 0, 2),
            ),
        ];
        for (name, spec, (cpu, memory, gpu)) in cases {
            let requests = pod_requests(&pod(spec));
            assert_eq!(requests.milli_cpu, cpu, "{name}");
            assert_eq!(requests.memory, memory, "{name}");
            assert_eq!(requests.get("nvidia.com/gpu"), gpu, "{name}");
        }
    }

    #[test]
    fn non_zero_requests_default_empty_containers() {
        let p = pod(
            json!({"containers": [{"name": "a"}, {"name": "b", "resources": {"requests": {"cpu": "1"}}}]}),
        );
        assert_eq!(
            pod_non_zero_requests(&p),
            (1100, 2 * DEFAULT_MEMORY_REQUEST)
        );
    }

    #[test]
    fn non_zero_requests_take_the_largest_init_container_plus_overhead() {
        let p = pod(json!({
            "overhead": {"cpu": "50m", "memory": "1Mi"},
            "initContainers": [
                {"name": "i", "resources": {"requests": {"cpu": "3"}}}],
            "containers": [
                {"name": "a", "resources": {"requests": {"cpu": "1", "memory": "1Gi"}}},
                {"name": "b"}]}));
        let both = PodRequests::of(&p);
        assert_eq!(
            both.non_zero,
            (3050, (1 << 30) + DEFAULT_MEMORY_REQUEST + (1 << 20))
        );
        assert_eq!(both.requests.milli_cpu, 3050);
        assert_eq!(both.requests.memory, (1 << 30) + (1 << 20));
        assert_eq!(both.requests, pod_requests(&p));
    }

    #[test]
    fn add_and_sub_round_trip() {
        let mut a = Resources::default();
        let mut b = Resources::default();
        b.set("cpu", 100);
        b.set("nvidia.com/gpu", 1);
        a.add(&b);
        a.add(&b);
        a.sub(&b);
        assert_eq!(a, b);
        a.sub(&b);
        assert!(a.is_empty() && a.scalar.is_empty());
    }
}
