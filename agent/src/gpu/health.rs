//! When a GPU stops being fit for pods, decided as NVIDIA's device plugin
//! decides it: any critical XID except the application errors it ignores,
//! and beyond it double-bit ECC errors that grow and a GPU fallen off the
//! bus. Pure bookkeeping over what NVML reported; once unhealthy a GPU
//! stays so until the agent restarts, as with the device plugin.

use std::collections::BTreeMap;
use std::fmt;

use super::Sample;

/// XIDs caused by the application rather than the GPU, which leave it
/// healthy (the device plugin's list): 13 graphics engine exception, 31
/// memory page fault, 43 GPU stopped processing, 45 preemptive cleanup,
/// 68 video processor exception, 109 context switch timeout.
pub const APPLICATION_XIDS: [u64; 6] = [13, 31, 43, 45, 68, 109];

/// Why a GPU was found unhealthy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cause {
    /// A critical XID error not in [`APPLICATION_XIDS`] (e.g. 48, 79).
    Xid(u64),
    /// The volatile double-bit ECC count rose from `from` to `to`.
    DoubleBitEcc {
        /// The count first seen.
        from: u64,
        /// The count now.
        to: u64,
    },
    /// NVML answered `NVML_ERROR_GPU_IS_LOST`, or no longer lists it.
    Lost,
}

impl Cause {
    /// The CamelCase reason the Node condition and the Event carry.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Xid(_) => "XidCriticalError",
            Self::DoubleBitEcc { .. } => "DoubleBitEccError",
            Self::Lost => "GPULost",
        }
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Xid(xid) => write!(f, "critical XID error {xid}"),
            Self::DoubleBitEcc { from, to } => {
                write!(f, "volatile double-bit ECC errors rose from {from} to {to}")
            }
            Self::Lost => write!(f, "the GPU has fallen off the bus"),
        }
    }
}

/// What has been seen of each GPU, by UUID.
#[derive(Debug, Default)]
pub struct Health {
    last_xid: BTreeMap<String, u64>,
    first_dbe: BTreeMap<String, u64>,
    unhealthy: BTreeMap<String, Cause>,
}

impl Health {
    /// Notes critical XID `xid` on `uuid`; the cause when this makes the
    /// GPU newly unhealthy.
    pub fn observe_xid(&mut self, uuid: &str, xid: u64) -> Option<Cause> {
        self.last_xid.insert(uuid.to_owned(), xid);
        if APPLICATION_XIDS.contains(&xid) {
            return None;
        }
        self.mark(uuid, Cause::Xid(xid))
    }

    /// Notes a reading of `uuid`; the cause when it shows the GPU newly
    /// unhealthy. The first double-bit count seen is the baseline.
    pub fn observe_sample(&mut self, uuid: &str, sample: &Sample) -> Option<Cause> {
        if sample.lost {
            return self.mark(uuid, Cause::Lost);
        }
        let now = sample.ecc_double_bit_volatile?;
        let from = *self.first_dbe.entry(uuid.to_owned()).or_insert(now);
        if now > from {
            return self.mark(uuid, Cause::DoubleBitEcc { from, to: now });
        }
        None
    }

    fn mark(&mut self, uuid: &str, cause: Cause) -> Option<Cause> {
        if self.unhealthy.contains_key(uuid) {
            return None;
        }
        self.unhealthy.insert(uuid.to_owned(), cause.clone());
        Some(cause)
    }

    /// The last XID reported for `uuid` (what `DCGM_FI_DEV_XID_ERRORS` shows).
    pub fn last_xid(&self, uuid: &str) -> Option<u64> {
        self.last_xid.get(uuid).copied()
    }

    /// The unhealthy GPUs and why.
    pub fn unhealthy(&self) -> &BTreeMap<String, Cause> {
        &self.unhealthy
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn application_xids_leave_the_gpu_healthy_and_others_do_not() {
        let mut health = Health::default();
        assert_eq!(health.observe_xid("GPU-0", 13), None);
        assert_eq!(health.last_xid("GPU-0"), Some(13));
        assert_eq!(health.observe_xid("GPU-0", 79), Some(Cause::Xid(79)));
        assert_eq!(health.observe_xid("GPU-0", 48), None, "reported once");
        assert_eq!(health.last_xid("GPU-0"), Some(48));
        assert_eq!(health.unhealthy()["GPU-0"], Cause::Xid(79));
    }

    #[test]
    fn double_bit_errors_count_from_the_first_reading() {
        let mut health = Health::default();
        let dbe = |n| Sample {
            ecc_double_bit_volatile: Some(n),
            ..Sample::default()
        };
        assert_eq!(health.observe_sample("GPU-1", &dbe(2)), None);
        assert_eq!(health.observe_sample("GPU-1", &dbe(2)), None);
        let cause = health.observe_sample("GPU-1", &dbe(3)).unwrap();
        assert_eq!(cause, Cause::DoubleBitEcc { from: 2, to: 3 });
        assert_eq!(cause.reason(), "DoubleBitEccError");
        let lost = Sample {
            lost: true,
            ..Sample::default()
        };
        assert_eq!(health.observe_sample("GPU-2", &lost), Some(Cause::Lost));
        assert_eq!(Cause::Lost.to_string(), "the GPU has fallen off the bus");
    }
}
