//! Which pod holds which GPU on this node (the device plugin's allocation
//! role, without the plugin). Pure bookkeeping over a fixed device list: it
//! never touches a device, and after a restart it is rebuilt with `adopt`
//! from what the running containers were given.

use std::collections::BTreeMap;

use super::Gpu;

/// Why GPUs could not be handed to a pod.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GpuError {
    /// Fewer GPUs are free than the pod asks for; the scheduler should not
    /// have bound it here, so the pod fails admission (`UnexpectedAdmissionError`).
    #[error("pod {pod_uid} asks for {requested} GPU(s) but {free} of {total} are free")]
    Insufficient {
        /// The pod.
        pod_uid: String,
        /// GPUs asked for.
        requested: u32,
        /// GPUs free now.
        free: u32,
        /// GPUs on the node.
        total: u32,
    },
    /// The pod already holds a different number of GPUs; release it first.
    #[error("pod {pod_uid} already holds {held} GPU(s), not {requested}; release it before asking again")]
    CountChanged {
        /// The pod.
        pod_uid: String,
        /// GPUs it holds.
        held: u32,
        /// GPUs it now asks for.
        requested: u32,
    },
    /// A container claims a GPU this node does not have (it was removed, or
    /// the value was `all`); the pod should be restarted.
    #[error("pod {pod_uid} uses GPU {uuid:?}, which this node does not have")]
    UnknownDevice {
        /// The pod.
        pod_uid: String,
        /// The unknown UUID.
        uuid: String,
    },
    /// Two pods claim one GPU; one of them must be stopped.
    #[error("pod {pod_uid} uses GPU {uuid}, which pod {holder} already holds")]
    DeviceInUse {
        /// The pod claiming it.
        pod_uid: String,
        /// The GPU.
        uuid: String,
        /// The pod holding it.
        holder: String,
    },
}

/// Hands this node's GPUs to pods, each GPU to at most one pod.
#[derive(Debug, Clone, Default)]
pub struct GpuAllocator {
    gpus: Vec<Gpu>,
    /// Pod UID → indices into `gpus`, in the order handed out.
    held: BTreeMap<String, Vec<usize>>,
    /// Indices of GPUs withdrawn as unhealthy: never handed out again.
    withdrawn: Vec<usize>,
}

impl GpuAllocator {
    /// An allocator over `gpus`, all free.
    pub fn new(gpus: Vec<Gpu>) -> Self {
        Self {
            gpus,
            held: BTreeMap::new(),
            withdrawn: Vec::new(),
        }
    }

    /// Stops handing out GPU `uuid` (it is unhealthy); a pod holding it
    /// keeps it. Whether it was newly withdrawn.
    pub fn withdraw(&mut self, uuid: &str) -> bool {
        let Some(index) = self.gpus.iter().position(|g| g.uuid == uuid) else {
            return false;
        };
        if self.withdrawn.contains(&index) {
            return false;
        }
        self.withdrawn.push(index);
        true
    }

    /// How many GPUs are withdrawn.
    pub fn withdrawn(&self) -> usize {
        self.withdrawn.len()
    }

    /// Every GPU of the node.
    pub fn gpus(&self) -> &[Gpu] {
        &self.gpus
    }

    /// How many GPUs no pod holds.
    pub fn free(&self) -> u32 {
        self.free_indices().len() as u32
    }

    /// The pods holding GPUs.
    pub fn holders(&self) -> Vec<String> {
        self.held.keys().cloned().collect()
    }

    /// The GPUs `pod_uid` holds, if any.
    pub fn allocation(&self, pod_uid: &str) -> Option<Vec<Gpu>> {
        self.held.get(pod_uid).map(|indices| self.resolve(indices))
    }

    /// Gives `pod_uid` `count` GPUs, the lowest-indexed free ones. Asking
    /// again for the same pod returns the same GPUs, so a reconcile may
    /// call it every time it starts the pod's containers.
    pub fn allocate(&mut self, pod_uid: &str, count: u32) -> Result<Vec<Gpu>, GpuError> {
        if let Some(indices) = self.held.get(pod_uid) {
            if indices.len() == count as usize {
                return Ok(self.resolve(indices));
            }
            return Err(GpuError::CountChanged {
                pod_uid: pod_uid.to_owned(),
                held: indices.len() as u32,
                requested: count,
            });
        }
        if count == 0 {
            return Ok(Vec::new());
        }
        let free = self.free_indices();
        if free.len() < count as usize {
            return Err(GpuError::Insufficient {
                pod_uid: pod_uid.to_owned(),
                requested: count,
                free: free.len() as u32,
                total: self.gpus.len() as u32,
            });
        }
        let chosen: Vec<usize> = free.into_iter().take(count as usize).collect();
        let gpus = self.resolve(&chosen);
        self.held.insert(pod_uid.to_owned(), chosen);
        Ok(gpus)
    }

    /// Frees what `pod_uid` holds (nothing when it holds nothing) and
    /// returns it.
    pub fn release(&mut self, pod_uid: &str) -> Vec<Gpu> {
        self.held
            .remove(pod_uid)
            .map(|indices| self.resolve(&indices))
            .unwrap_or_default()
    }

    /// Records that `pod_uid` already holds the GPUs `uuids` (read back
    /// from its running containers after the agent restarted), replacing
    /// whatever it held here. All or nothing: on error nothing changes.
    pub fn adopt(&mut self, pod_uid: &str, uuids: &[String]) -> Result<Vec<Gpu>, GpuError> {
        let mut indices = Vec::with_capacity(uuids.len());
        for uuid in uuids {
            let index = self
                .gpus
                .iter()
                .position(|g| &g.uuid == uuid)
                .ok_or_else(|| GpuError::UnknownDevice {
                    pod_uid: pod_uid.to_owned(),
                    uuid: uuid.clone(),
                })?;
            if let Some(holder) = self.holder(index).filter(|h| *h != pod_uid) {
                return Err(GpuError::DeviceInUse {
                    pod_uid: pod_uid.to_owned(),
                    uuid: uuid.clone(),
                    holder: holder.to_owned(),
                });
            }
            if !indices.contains(&index) {
                indices.push(index);
            }
        }
        let gpus = self.resolve(&indices);
        if indices.is_empty() {
            self.held.remove(pod_uid);
        } else {
            self.held.insert(pod_uid.to_owned(), indices);
        }
        Ok(gpus)
    }

    fn holder(&self, index: usize) -> Option<&str> {
        self.held
            .iter()
            .find(|(_, indices)| indices.contains(&index))
            .map(|(pod, _)| pod.as_str())
    }

    fn free_indices(&self) -> Vec<usize> {
        (0..self.gpus.len())
            .filter(|i| self.holder(*i).is_none() && !self.withdrawn.contains(i))
            .collect()
    }

    fn resolve(&self, indices: &[usize]) -> Vec<Gpu> {
        indices.iter().map(|i| self.gpus[*i].clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(count: u32) -> GpuAllocator {
        GpuAllocator::new(
            (0..count)
                .map(|i| Gpu {
                    index: i,
                    uuid: format!("GPU-{i}"),
                    name: "NVIDIA H100 80GB HBM3".into(),
                    minor: i,
                    memory_bytes: None,
                })
                .collect(),
        )
    }

    fn uuids(gpus: &[Gpu]) -> Vec<&str> {
        gpus.iter().map(|g| g.uuid.as_str()).collect()
    }

    #[test]
    fn allocation_hands_out_distinct_lowest_free_gpus() {
        let mut gpus = node(4);
        assert_eq!(uuids(&gpus.allocate("a", 2).unwrap()), ["GPU-0", "GPU-1"]);
        assert_eq!(uuids(&gpus.allocate("b", 1).unwrap()), ["GPU-2"]);
        assert_eq!(gpus.free(), 1);
    }

    #[test]
    fn allocation_is_idempotent_per_pod() {
        let mut gpus = node(4);
        let first = gpus.allocate("a", 2).unwrap();
        assert_eq!(gpus.allocate("a", 2).unwrap(), first);
        assert_eq!(gpus.free(), 2);
        assert!(matches!(
            gpus.allocate("a", 3),
            Err(GpuError::CountChanged {
                held: 2,
                requested: 3,
                ..
            })
        ));
    }

    #[test]
    fn allocation_fails_when_too_few_are_free() {
        let mut gpus = node(2);
        gpus.allocate("a", 1).unwrap();
        let err = gpus.allocate("b", 2).unwrap_err();
        assert_eq!(
            err,
            GpuError::Insufficient {
                pod_uid: "b".into(),
                requested: 2,
                free: 1,
                total: 2
            }
        );
        assert_eq!(gpus.free(), 1, "a failed allocation takes nothing");
        assert_eq!(gpus.allocate("c", 0).unwrap(), []);
    }

    #[test]
    fn release_frees_the_pods_gpus() {
        let mut gpus = node(2);
        gpus.allocate("a", 2).unwrap();
        assert_eq!(gpus.release("a").len(), 2);
        assert!(gpus.release("a").is_empty());
        assert_eq!(uuids(&gpus.allocate("b", 2).unwrap()), ["GPU-0", "GPU-1"]);
    }

    #[test]
    fn withdrawn_gpus_are_not_handed_out_again() {
        let mut gpus = node(2);
        assert_eq!(uuids(&gpus.allocate("a", 1).unwrap()), ["GPU-0"]);
        assert!(gpus.withdraw("GPU-0"));
        assert!(gpus.withdraw("GPU-1"));
        assert!(!gpus.withdraw("GPU-1"), "once");
        assert!(!gpus.withdraw("GPU-9"));
        assert_eq!(gpus.withdrawn(), 2);
        assert_eq!(uuids(&gpus.allocation("a").unwrap()), ["GPU-0"], "kept");
        assert!(matches!(
            gpus.allocate("b", 1),
            Err(GpuError::Insufficient { free: 0, .. })
        ));
        gpus.release("a");
        assert_eq!(gpus.free(), 0);
    }

    #[test]
    fn adopt_restores_allocations_after_a_restart() {
        let mut gpus = node(4);
        let adopted = gpus.adopt("a", &["GPU-3".into(), "GPU-1".into()]).unwrap();
        assert_eq!(uuids(&adopted), ["GPU-3", "GPU-1"]);
        assert_eq!(gpus.allocate("a", 2).unwrap(), adopted);
        assert_eq!(uuids(&gpus.allocate("b", 2).unwrap()), ["GPU-0", "GPU-2"]);
        assert_eq!(gpus.allocation("a").unwrap(), adopted);
    }

    #[test]
    fn adopt_rejects_unknown_and_taken_gpus_without_changing_anything() {
        let mut gpus = node(2);
        gpus.allocate("a", 1).unwrap();
        let taken = gpus.adopt("b", &["GPU-1".into(), "GPU-0".into()]);
        assert!(matches!(taken, Err(GpuError::DeviceInUse { holder, .. }) if holder == "a"));
        let unknown = gpus.adopt("b", &["GPU-9".into()]);
        assert!(matches!(unknown, Err(GpuError::UnknownDevice { uuid, .. }) if uuid == "GPU-9"));
        assert_eq!(gpus.free(), 1);
        assert!(gpus.allocation("b").is_none());
    }
}
