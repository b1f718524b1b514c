//! The GPUs' telemetry and health while the agent runs: one NVML session
//! opened at start, read at every scrape and polled for faults. It only
//! reads; it never resets or reconfigures a GPU.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::sync::Mutex;

use super::health::{Cause, Health};
use super::nvml::session::Session;
use super::{Gpu, NvmlError};
use crate::lock;

/// One reading of one GPU; `None` where NVML has no such reading for it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sample {
    /// GPU utilisation over the driver's last sample period, in percent.
    pub utilization_percent: Option<u32>,
    /// Memory (copy) utilisation over the same period, in percent.
    pub memory_utilization_percent: Option<u32>,
    /// Framebuffer memory in use, in bytes.
    pub memory_used_bytes: Option<u64>,
    /// Framebuffer memory free, in bytes.
    pub memory_free_bytes: Option<u64>,
    /// The GPU die's temperature, in °C.
    pub temperature_celsius: Option<u32>,
    /// The board's power draw, in milliwatts.
    pub power_milliwatts: Option<u32>,
    /// The SM clock, in MHz.
    pub sm_clock_mhz: Option<u32>,
    /// The memory clock, in MHz.
    pub memory_clock_mhz: Option<u32>,
    /// Corrected (single-bit) ECC errors since the driver loaded.
    pub ecc_single_bit_volatile: Option<u64>,
    /// Uncorrected (double-bit) ECC errors since the driver loaded.
    pub ecc_double_bit_volatile: Option<u64>,
    /// NVML answered `NVML_ERROR_GPU_IS_LOST` (fallen off the bus).
    pub lost: bool,
}

/// A GPU found unhealthy by [`GpuMonitor::check`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// The GPU.
    pub gpu: Gpu,
    /// Why it is unhealthy.
    pub cause: Cause,
}

/// This node's GPUs as NVML sees them now.
pub struct GpuMonitor {
    gpus: Vec<Gpu>,
    /// One caller at a time: scrapes are rare, and a stand-in library
    /// (tests' fake NVML) need not be thread-safe as the driver's is.
    session: Mutex<Session>,
    health: Mutex<Health>,
}

impl std::fmt::Debug for GpuMonitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuMonitor")
            .field("gpus", &self.gpus)
            .finish_non_exhaustive()
    }
}

impl GpuMonitor {
    /// Opens NVML (the library at `library`, or the driver's) for `gpus`.
    pub fn open(library: Option<&std::path::Path>, gpus: Vec<Gpu>) -> Result<Self, NvmlError> {
        Self::open_library(&super::nvml::library_path(library), gpus)
    }

    /// Opens the NVML library at `path` for `gpus`.
    pub fn open_library(path: &OsStr, gpus: Vec<Gpu>) -> Result<Self, NvmlError> {
        let uuids: Vec<String> = gpus.iter().map(|g| g.uuid.clone()).collect();
        Ok(Self {
            session: Mutex::new(Session::open(path, &uuids)?),
            gpus,
            health: Mutex::new(Health::default()),
        })
    }

    /// The GPUs watched.
    pub fn gpus(&self) -> &[Gpu] {
        &self.gpus
    }

    /// A reading of every GPU, in [`Self::gpus`]' order.
    pub fn sample(&self) -> Vec<Sample> {
        let session = lock(&self.session);
        self.gpus.iter().map(|g| session.sample(&g.uuid)).collect()
    }

    /// The last critical XID reported for `uuid`.
    pub fn last_xid(&self, uuid: &str) -> Option<u64> {
        lock(&self.health).last_xid(uuid)
    }

    /// The GPUs found unhealthy so far, and why.
    pub fn unhealthy(&self) -> BTreeMap<String, Cause> {
        lock(&self.health).unhealthy().clone()
    }

    /// Drains the XID events and reads every GPU; the GPUs that became
    /// unhealthy since the last check.
    pub fn check(&self) -> Vec<Fault> {
        let xids = lock(&self.session).drain_xids();
        let samples = self.sample();
        let mut health = lock(&self.health);
        let mut faults = Vec::new();
        let mut found = |uuid: &str, cause: Option<Cause>| {
            let gpu = self.gpus.iter().find(|g| g.uuid == uuid);
            if let (Some(gpu), Some(cause)) = (gpu, cause) {
                faults.push(Fault {
                    gpu: gpu.clone(),
                    cause,
                });
            }
        };
        for (uuid, xid) in xids {
            let cause = health.observe_xid(&uuid, xid);
            found(&uuid, cause);
        }
        for (gpu, sample) in self.gpus.iter().zip(&samples) {
            let cause = health.observe_sample(&gpu.uuid, sample);
            found(&gpu.uuid, cause);
        }
        faults
    }
}
