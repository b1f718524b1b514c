//! GPUs for pods, as kubelet's device manager hands out `nvidia.com/gpu`:
//! each pod gets whole devices of its own, its containers see only theirs
//! (their device nodes, and `NVIDIA_VISIBLE_DEVICES` naming them), and
//! containers that asked for none see none. Assignments are checkpointed
//! to a file so an agent that restarts gives running pods the same devices.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use jiff::Timestamp;

use k8s_openapi::api::core::v1::{Container, Pod};

use super::spec::SpecError;
use crate::gpu::{self, health::Cause, Gpu, GpuAllocator};
use crate::lock;
use crate::runtime::{ContainerConfig, PodSandboxConfig};

/// The container a GPU is given to, as dcgm-exporter's pod mapping labels it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GpuOwner {
    /// The pod's name.
    pub pod: String,
    /// The pod's namespace.
    pub namespace: String,
    /// The container's name.
    pub container: String,
}

/// GPU UUID → the container using it, shared with the metrics collector.
pub type GpuOwners = Arc<Mutex<BTreeMap<String, GpuOwner>>>;

/// A GPU taken out of service, and since when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Withdrawn {
    /// Why.
    pub cause: Cause,
    /// When it was withdrawn.
    pub since: Timestamp,
}

/// The node's GPUs and which pod holds which.
pub struct GpuAssignments {
    allocator: Mutex<GpuAllocator>,
    checkpoint: Option<PathBuf>,
    owners: GpuOwners,
    withdrawn: Mutex<BTreeMap<String, Withdrawn>>,
}

/// The GPUs a container asks for (its `nvidia.com/gpu` limit, or request).
fn requested(container: &Container) -> u32 {
    let resources = container.resources.as_ref();
    resources
        .and_then(|r| r.limits.as_ref())
        .and_then(|l| l.get(gpu::RESOURCE_NAME))
        .or_else(|| {
            resources
                .and_then(|r| r.requests.as_ref())
                .and_then(|r| r.get(gpu::RESOURCE_NAME))
        })
        .and_then(|q| q.0.parse().ok())
        .unwrap_or(0)
}

/// What a container sees: the device nodes and the variable for `gpus`.
fn expose(container: &mut ContainerConfig, gpus: &[Gpu]) {
    container
        .env
        .retain(|(name, _)| name != gpu::VISIBLE_DEVICES_ENV);
    container.env.push((
        gpu::VISIBLE_DEVICES_ENV.to_owned(),
        gpu::visible_devices(gpus),
    ));
    for device in gpus.iter().flat_map(gpu::device_paths) {
        let device = device.display().to_string();
        if !container.devices.contains(&device) {
            container.devices.push(device);
        }
    }
}

impl GpuAssignments {
    /// Assignments over `gpus`, resumed from `checkpoint` when it exists.
    pub fn new(gpus: Vec<Gpu>, checkpoint: Option<PathBuf>) -> Self {
        let mut allocator = GpuAllocator::new(gpus);
        if let Some(path) = &checkpoint {
            let saved: BTreeMap<String, Vec<String>> = std::fs::read(path)
                .ok()
                .and_then(|bytes| serde_json::from_slice(&bytes).ok())
                .unwrap_or_default();
            for (uid, uuids) in saved {
                if let Err(e) = allocator.adopt(&uid, &uuids) {
                    tracing::warn!(pod_uid = %uid, error = %e, "a checkpointed GPU assignment no longer applies");
                }
            }
        }
        Self {
            allocator: Mutex::new(allocator),
            checkpoint,
            owners: GpuOwners::default(),
            withdrawn: Mutex::new(BTreeMap::new()),
        }
    }

    /// Which container uses which GPU (those started by this agent process).
    pub fn owners(&self) -> GpuOwners {
        Arc::clone(&self.owners)
    }

    /// Takes GPU `uuid` out of service for `cause` from `now`: no pod is
    /// given it again until the agent restarts. Whether it was newly withdrawn.
    pub fn withdraw(&self, uuid: &str, cause: Cause, now: Timestamp) -> bool {
        if !lock(&self.allocator).withdraw(uuid) {
            return false;
        }
        lock(&self.withdrawn).insert(uuid.to_owned(), Withdrawn { cause, since: now });
        true
    }

    /// The GPUs withdrawn, by UUID.
    pub fn withdrawn(&self) -> BTreeMap<String, Withdrawn> {
        lock(&self.withdrawn).clone()
    }

    /// Whether the node has GPUs at all.
    pub fn is_empty(&self) -> bool {
        lock(&self.allocator).gpus().is_empty()
    }

    fn save(&self, allocator: &GpuAllocator, uids: impl Iterator<Item = String>) {
        let Some(path) = &self.checkpoint else { return };
        let saved: BTreeMap<String, Vec<String>> = uids
            .filter_map(|uid| {
                let gpus = allocator.allocation(&uid)?;
                Some((uid, gpus.into_iter().map(|g| g.uuid).collect()))
            })
            .collect();
        let text = serde_json::to_vec_pretty(&saved).unwrap_or_default();
        if let Err(e) = std::fs::write(path, text) {
            tracing::warn!(path = %path.display(), error = %e, "writing the GPU checkpoint failed");
        }
    }

    /// Gives `pod` its GPUs and shows each container its share: the pod
    /// holds the larger of its containers' total and any init container's
    /// request; regular containers take theirs in order, init containers
    /// from the start.
    pub fn assign(&self, pod: &Pod, config: &mut PodSandboxConfig) -> Result<(), SpecError> {
        if self.is_empty() {
            return Ok(());
        }
        let Some(spec) = pod.spec.as_ref() else {
            return Ok(());
        };
        let regular: Vec<u32> = spec.containers.iter().map(requested).collect();
        let init: Vec<u32> = spec
            .init_containers
            .iter()
            .flatten()
            .map(requested)
            .collect();
        let total = regular
            .iter()
            .sum::<u32>()
            .max(init.iter().copied().max().unwrap_or(0));
        let mut allocator = lock(&self.allocator);
        let held = allocator
            .allocate(&config.uid, total)
            .map_err(|e| SpecError(format!("UnexpectedAdmissionError: {e}")))?;
        if total > 0 {
            let known = self.known_uids(&allocator, &config.uid);
            self.save(&allocator, known.into_iter());
        }
        drop(allocator);
        let mut next = 0usize;
        let mut owners = lock(&self.owners);
        for (container, want) in config.containers.iter_mut().zip(&regular) {
            let share = &held[next..next + *want as usize];
            next += *want as usize;
            expose(container, share);
            for gpu in share {
                let owner = GpuOwner {
                    pod: config.name.clone(),
                    namespace: config.namespace.clone(),
                    container: container.name.clone(),
                };
                owners.insert(gpu.uuid.clone(), owner);
            }
        }
        drop(owners);
        for (container, want) in config.init_containers.iter_mut().zip(&init) {
            expose(container, &held[..*want as usize]);
        }
        Ok(())
    }

    fn known_uids(&self, allocator: &GpuAllocator, also: &str) -> Vec<String> {
        let mut uids: Vec<String> = allocator.holders();
        if !uids.iter().any(|u| u == also) {
            uids.push(also.to_owned());
        }
        uids
    }

    /// Frees what pod `uid` held.
    pub fn release(&self, uid: &str) {
        let mut allocator = lock(&self.allocator);
        let freed = allocator.release(uid);
        let mut owners = lock(&self.owners);
        for gpu in &freed {
            owners.remove(&gpu.uuid);
        }
        drop(owners);
        if !freed.is_empty() {
            let known = allocator.holders();
            self.save(&allocator, known.into_iter());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn gpus() -> Vec<Gpu> {
        (0..2)
            .map(|i| Gpu {
                index: i,
                uuid: format!("GPU-{i}"),
                name: "NVIDIA H100 80GB HBM3".into(),
                minor: i,
                memory_bytes: None,
            })
            .collect()
    }

    fn pod(uid: &str, gpus_for: &[u32]) -> (Pod, PodSandboxConfig) {
        let containers: Vec<_> = gpus_for
            .iter()
            .enumerate()
            .map(|(i, n)| json!({"name": format!("c{i}"), "image": "cuda", "resources": {"limits": {"nvidia.com/gpu": n.to_string()}}}))
            .collect();
        let pod: Pod = serde_json::from_value(
            json!({"metadata": {"uid": uid}, "spec": {"containers": containers}}),
        )
        .unwrap();
        let config = PodSandboxConfig {
            uid: uid.into(),
            containers: gpus_for
                .iter()
                .enumerate()
                .map(|(i, _)| ContainerConfig {
                    name: format!("c{i}"),
                    ..ContainerConfig::default()
                })
                .collect(),
            ..PodSandboxConfig::default()
        };
        (pod, config)
    }

    fn env(container: &ContainerConfig) -> &str {
        &container
            .env
            .iter()
            .find(|(n, _)| n == gpu::VISIBLE_DEVICES_ENV)
            .unwrap()
            .1
    }

    #[test]
    fn pods_get_their_own_devices_and_others_none() {
        let dir = tempfile::tempdir().unwrap();
        let checkpoint = dir.path().join("gpus.json");
        let assignments = GpuAssignments::new(gpus(), Some(checkpoint.clone()));
        let (a, mut a_config) = pod("a", &[1, 0]);
        assignments.assign(&a, &mut a_config).unwrap();
        assert_eq!(env(&a_config.containers[0]), "GPU-0");
        assert!(a_config.containers[0]
            .devices
            .contains(&"/dev/nvidia0".to_owned()));
        assert_eq!(
            env(&a_config.containers[1]),
            "void",
            "asked for none, sees none"
        );
        assert!(a_config.containers[1].devices.is_empty());
        let (b, mut b_config) = pod("b", &[1]);
        assignments.assign(&b, &mut b_config).unwrap();
        assert_eq!(env(&b_config.containers[0]), "GPU-1");
        let (c, mut c_config) = pod("c", &[1]);
        let full = assignments.assign(&c, &mut c_config).unwrap_err();
        assert!(full.0.starts_with("UnexpectedAdmissionError"), "{full}");

        // A restarted agent gives the running pods the same devices.
        let resumed = GpuAssignments::new(gpus(), Some(checkpoint));
        let (b, mut again) = pod("b", &[1]);
        resumed.assign(&b, &mut again).unwrap();
        assert_eq!(env(&again.containers[0]), "GPU-1");
        resumed.release("a");
        let (c, mut c_config) = pod("c", &[1]);
        resumed.assign(&c, &mut c_config).unwrap();
        assert_eq!(env(&c_config.containers[0]), "GPU-0");
    }
}
