//! NVML kept open for the agent's life: each GPU's telemetry read on
//! demand (every read optional: a missing function or
//! `NVML_ERROR_NOT_SUPPORTED` is simply no sample), and the XID events
//! of an event set drained without blocking. Never waits on the driver and
//! never changes a device.

use std::ffi::{c_uint, c_ulonglong, c_void, OsStr};

use libloading::Library;

use super::{
    symbol, Device, Memory, Nvml, NvmlError, GPU_IS_LOST, NOT_SUPPORTED, SUCCESS, TIMEOUT,
    UUID_BUFFER_SIZE,
};
use crate::gpu::Sample;

type EventSet = *mut c_void;

/// `NVML_TEMPERATURE_GPU`.
const TEMPERATURE_GPU: c_uint = 0;
/// `NVML_CLOCK_SM`.
const CLOCK_SM: c_uint = 1;
/// `NVML_CLOCK_MEM`.
const CLOCK_MEM: c_uint = 2;
/// `NVML_MEMORY_ERROR_TYPE_CORRECTED` (single-bit ECC).
const ERROR_CORRECTED: c_uint = 0;
/// `NVML_MEMORY_ERROR_TYPE_UNCORRECTED` (double-bit ECC).
const ERROR_UNCORRECTED: c_uint = 1;
/// `NVML_VOLATILE_ECC`: counts since the driver loaded.
const VOLATILE_ECC: c_uint = 0;
/// `nvmlEventTypeXidCriticalError`.
const EVENT_XID_CRITICAL_ERROR: c_ulonglong = 0x8;
/// At most this many events are drained per poll, so a storm cannot stall it.
const MAX_EVENTS_PER_POLL: usize = 1024;

/// `nvmlUtilization_t`.
#[repr(C)]
#[derive(Default)]
struct Utilization {
    gpu: c_uint,
    memory: c_uint,
}

/// `nvmlEventData_t`.
#[repr(C)]
struct EventData {
    device: Device,
    event_type: c_ulonglong,
    event_data: c_ulonglong,
    gpu_instance_id: c_uint,
    compute_instance_id: c_uint,
}

type UintRead = unsafe extern "C" fn(Device, *mut c_uint) -> c_uint;
type UintReadOf = unsafe extern "C" fn(Device, c_uint, *mut c_uint) -> c_uint;
type EccRead = unsafe extern "C" fn(Device, c_uint, c_uint, *mut c_ulonglong) -> c_uint;

/// The telemetry functions, each absent on a driver that lacks it.
pub(in crate::gpu) struct Samplers {
    utilization: Option<unsafe extern "C" fn(Device, *mut Utilization) -> c_uint>,
    temperature: Option<UintReadOf>,
    power: Option<UintRead>,
    clock: Option<UintReadOf>,
    ecc: Option<EccRead>,
}

impl Samplers {
    pub(super) fn load(library: &Library) -> Self {
        // SAFETY: each type is nvml.h's declaration of the function named.
        unsafe {
            Self {
                utilization: symbol(library, "nvmlDeviceGetUtilizationRates").ok(),
                temperature: symbol(library, "nvmlDeviceGetTemperature").ok(),
                power: symbol(library, "nvmlDeviceGetPowerUsage").ok(),
                clock: symbol(library, "nvmlDeviceGetClockInfo").ok(),
                ecc: symbol(library, "nvmlDeviceGetTotalEccErrors").ok(),
            }
        }
    }
}

/// The event set functions; all present or the set is not used.
pub(in crate::gpu) struct EventCalls {
    create: unsafe extern "C" fn(*mut EventSet) -> c_uint,
    register: unsafe extern "C" fn(Device, c_ulonglong, EventSet) -> c_uint,
    wait: unsafe extern "C" fn(EventSet, *mut EventData, c_uint) -> c_uint,
    free: unsafe extern "C" fn(EventSet) -> c_uint,
}

impl EventCalls {
    pub(super) fn load(library: &Library) -> Option<Self> {
        // SAFETY: each type is nvml.h's declaration of the function named.
        unsafe {
            Some(Self {
                create: symbol(library, "nvmlEventSetCreate").ok()?,
                register: symbol(library, "nvmlDeviceRegisterEvents").ok()?,
                wait: symbol(library, "nvmlEventSetWait_v2").ok()?,
                free: symbol(library, "nvmlEventSetFree").ok()?,
            })
        }
    }
}

/// An initialised NVML with a handle per GPU (by UUID) and, where the
/// driver supports it, an event set receiving their critical XIDs.
pub(in crate::gpu) struct Session {
    nvml: Nvml,
    devices: Vec<(String, Device)>,
    events: Option<EventSet>,
}

// SAFETY: the handles are opaque tokens of the library, valid on any
// thread until nvmlShutdown, which only `Drop` calls; NVML's functions may
// be called from any thread.
unsafe impl Send for Session {}

impl Session {
    /// Opens the library at `path` for the GPUs `uuids`; those NVML no
    /// longer lists are left out (their reads report them lost).
    pub fn open(path: &OsStr, uuids: &[String]) -> Result<Self, NvmlError> {
        let nvml = Nvml::load(path)?;
        // SAFETY: a function of the loaded library, with nvml.h's signature.
        nvml.check("nvmlInit_v2", unsafe { (nvml.init)() })?;
        let mut session = Self {
            nvml,
            devices: Vec::new(),
            events: None,
        };
        let mut count: c_uint = 0;
        // SAFETY: NVML is initialised; the out-pointer is valid.
        let code = unsafe { (session.nvml.count)(&mut count) };
        session.nvml.check("nvmlDeviceGetCount_v2", code)?;
        for index in 0..count {
            let mut device: Device = std::ptr::null_mut();
            // SAFETY: NVML is initialised; the out-pointer is valid.
            let code = unsafe { (session.nvml.handle_by_index)(index, &mut device) };
            if session
                .nvml
                .check("nvmlDeviceGetHandleByIndex_v2", code)
                .is_err()
            {
                continue;
            }
            let uuid = session.nvml.text::<UUID_BUFFER_SIZE>(
                "nvmlDeviceGetUUID",
                session.nvml.uuid,
                device,
            );
            if let Ok(uuid) = uuid {
                if uuids.contains(&uuid) {
                    session.devices.push((uuid, device));
                }
            }
        }
        session.events = session.register_events();
        Ok(session)
    }

    fn register_events(&self) -> Option<EventSet> {
        let calls = self.nvml.events.as_ref()?;
        let mut set: EventSet = std::ptr::null_mut();
        // SAFETY: NVML is initialised; the out-pointer is valid.
        let code = unsafe { (calls.create)(&mut set) };
        if let Err(e) = self.nvml.check("nvmlEventSetCreate", code) {
            tracing::warn!(error = %e, "GPU XID errors will not be watched");
            return None;
        }
        for (uuid, device) in &self.devices {
            // SAFETY: a valid handle and the set just created.
            let code = unsafe { (calls.register)(*device, EVENT_XID_CRITICAL_ERROR, set) };
            if let Err(e) = self.nvml.check("nvmlDeviceRegisterEvents", code) {
                tracing::warn!(%uuid, error = %e, "XID errors of this GPU will not be watched");
            }
        }
        Some(set)
    }

    /// Whether a read succeeded; a lost GPU is noted in `lost`, other
    /// failures (unsupported, no permission …) are just no sample.
    fn ok(&self, function: &'static str, code: c_uint, lost: &mut bool) -> bool {
        match code {
            SUCCESS => true,
            GPU_IS_LOST => {
                *lost = true;
                false
            }
            NOT_SUPPORTED => false,
            _ => {
                if let Err(e) = self.nvml.check(function, code) {
                    tracing::debug!(error = %e, "GPU reading skipped");
                }
                false
            }
        }
    }

    /// One reading of GPU `uuid`; a GPU NVML no longer lists is lost.
    pub fn sample(&self, uuid: &str) -> Sample {
        let mut sample = Sample::default();
        let Some(device) = self
            .devices
            .iter()
            .find(|(u, _)| u == uuid)
            .map(|(_, d)| *d)
        else {
            sample.lost = true;
            return sample;
        };
        let mut lost = false;
        let s = &self.nvml.samplers;
        if let Some(call) = s.utilization {
            let mut value = Utilization::default();
            // SAFETY: a valid handle; a writable nvmlUtilization_t.
            let code = unsafe { call(device, &mut value) };
            if self.ok("nvmlDeviceGetUtilizationRates", code, &mut lost) {
                sample.utilization_percent = Some(value.gpu);
                sample.memory_utilization_percent = Some(value.memory);
            }
        }
        if let Some(call) = self.nvml.memory {
            let mut value = Memory::default();
            // SAFETY: a valid handle; a writable nvmlMemory_t.
            let code = unsafe { call(device, &mut value) };
            if self.ok("nvmlDeviceGetMemoryInfo", code, &mut lost) {
                sample.memory_used_bytes = Some(value.used);
                sample.memory_free_bytes = Some(value.free);
            }
        }
        let mut uint_of = |call: Option<UintReadOf>, arg: c_uint, name: &'static str| {
            let call = call?;
            let mut value: c_uint = 0;
            // SAFETY: a valid handle, an argument nvml.h defines, a writable uint.
            let code = unsafe { call(device, arg, &mut value) };
            self.ok(name, code, &mut lost).then_some(value)
        };
        sample.temperature_celsius =
            uint_of(s.temperature, TEMPERATURE_GPU, "nvmlDeviceGetTemperature");
        sample.sm_clock_mhz = uint_of(s.clock, CLOCK_SM, "nvmlDeviceGetClockInfo");
        sample.memory_clock_mhz = uint_of(s.clock, CLOCK_MEM, "nvmlDeviceGetClockInfo");
        if let Some(call) = s.power {
            let mut value: c_uint = 0;
            // SAFETY: a valid handle; a writable uint.
            let code = unsafe { call(device, &mut value) };
            sample.power_milliwatts = self
                .ok("nvmlDeviceGetPowerUsage", code, &mut lost)
                .then_some(value);
        }
        if let Some(call) = s.ecc {
            let mut ecc = |kind: c_uint| {
                let mut value: c_ulonglong = 0;
                // SAFETY: a valid handle, nvml.h's enum values, a writable counter.
                let code = unsafe { call(device, kind, VOLATILE_ECC, &mut value) };
                self.ok("nvmlDeviceGetTotalEccErrors", code, &mut lost)
                    .then_some(value)
            };
            sample.ecc_single_bit_volatile = ecc(ERROR_CORRECTED);
            sample.ecc_double_bit_volatile = ecc(ERROR_UNCORRECTED);
        }
        sample.lost = lost;
        sample
    }

    /// The critical XIDs that arrived since the last call, as (GPU UUID,
    /// XID), without waiting. A failed wait other than "nothing arrived" is
    /// logged and ends this poll.
    pub fn drain_xids(&self) -> Vec<(String, u64)> {
        let (Some(set), Some(calls)) = (self.events, self.nvml.events.as_ref()) else {
            return Vec::new();
        };
        let mut xids = Vec::new();
        for _ in 0..MAX_EVENTS_PER_POLL {
            let mut data = EventData {
                device: std::ptr::null_mut(),
                event_type: 0,
                event_data: 0,
                gpu_instance_id: 0,
                compute_instance_id: 0,
            };
            // SAFETY: the set this session created; a writable nvmlEventData_t.
            let code = unsafe { (calls.wait)(set, &mut data, 0) };
            if code == TIMEOUT {
                break;
            }
            if let Err(e) = self.nvml.check("nvmlEventSetWait_v2", code) {
                tracing::warn!(error = %e, "reading GPU events failed");
                break;
            }
            if data.event_type & EVENT_XID_CRITICAL_ERROR == 0 {
                continue;
            }
            if let Some((uuid, _)) = self.devices.iter().find(|(_, d)| *d == data.device) {
                xids.push((uuid.clone(), data.event_data));
            }
        }
        xids
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if let (Some(set), Some(calls)) = (self.events, self.nvml.events.as_ref()) {
            // SAFETY: the set this session created, freed once.
            unsafe { (calls.free)(set) };
        }
        // SAFETY: paired with the successful nvmlInit_v2 of `open`.
        if let Err(e) = self
            .nvml
            .check("nvmlShutdown", unsafe { (self.nvml.shutdown)() })
        {
            tracing::debug!(error = %e, "NVML shutdown failed");
        }
    }
}
