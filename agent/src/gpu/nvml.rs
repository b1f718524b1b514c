//! The NVML calls the agent makes, through `libnvidia-ml.so.1` opened at
//! run time, so the agent starts (and finds no GPUs) on machines without the
//! NVIDIA driver. Read-only queries; it never changes a device's settings.
//! The only module with `unsafe`: detection here, the long-lived
//! [`session::Session`] that samples devices and drains XID events beside it.

pub(super) mod session;

use std::ffi::{c_char, c_uint, c_ulonglong, c_void, CStr, OsString};

use libloading::Library;

use super::Gpu;

/// The library's soname, as the driver installs it.
pub(super) const LIBRARY: &str = "libnvidia-ml.so.1";

/// `NVML_SUCCESS`.
const SUCCESS: c_uint = 0;
/// `NVML_ERROR_NOT_SUPPORTED`.
const NOT_SUPPORTED: c_uint = 3;
/// `NVML_ERROR_TIMEOUT`.
const TIMEOUT: c_uint = 10;
/// `NVML_ERROR_GPU_IS_LOST`: the GPU fell off the bus.
const GPU_IS_LOST: c_uint = 15;
/// `NVML_DEVICE_NAME_V2_BUFFER_SIZE`.
const NAME_BUFFER_SIZE: usize = 96;
/// `NVML_DEVICE_UUID_V2_BUFFER_SIZE`.
const UUID_BUFFER_SIZE: usize = 96;

type Device = *mut c_void;

/// `nvmlMemory_t` (v1).
#[repr(C)]
#[derive(Default)]
struct Memory {
    total: c_ulonglong,
    free: c_ulonglong,
    used: c_ulonglong,
}

/// Why NVML could not list the GPUs.
#[derive(Debug, thiserror::Error)]
pub enum NvmlError {
    /// The library is not installed: the machine has no NVIDIA driver (or
    /// the agent's library path does not reach it).
    #[error("cannot load {LIBRARY} (no NVIDIA driver on this machine?): {0}")]
    Load(#[source] libloading::Error),
    /// The library lacks a function: a driver older than this code expects.
    #[error("{LIBRARY} has no {function}; upgrade the NVIDIA driver: {source}")]
    Symbol {
        /// The missing function.
        function: &'static str,
        /// The loader's error.
        source: libloading::Error,
    },
    /// A call returned an error code, e.g. the kernel module is not loaded.
    #[error("{function} failed with NVML error {code}: {message}")]
    Call {
        /// The NVML function.
        function: &'static str,
        /// The `nvmlReturn_t` code.
        code: u32,
        /// NVML's description of the code.
        message: String,
    },
}

/// The library and the functions taken from it; the pointers are valid for
/// as long as `_library` is loaded.
struct Nvml {
    init: unsafe extern "C" fn() -> c_uint,
    shutdown: unsafe extern "C" fn() -> c_uint,
    error_string: unsafe extern "C" fn(c_uint) -> *const c_char,
    count: unsafe extern "C" fn(*mut c_uint) -> c_uint,
    handle_by_index: unsafe extern "C" fn(c_uint, *mut Device) -> c_uint,
    name: unsafe extern "C" fn(Device, *mut c_char, c_uint) -> c_uint,
    uuid: unsafe extern "C" fn(Device, *mut c_char, c_uint) -> c_uint,
    minor: unsafe extern "C" fn(Device, *mut c_uint) -> c_uint,
    memory: Option<unsafe extern "C" fn(Device, *mut Memory) -> c_uint>,
    samplers: session::Samplers,
    events: Option<session::EventCalls>,
    _library: Library,
}

/// Copies function `name` out of `library` as a `T` (a fn-pointer type
/// matching the C declaration).
///
/// # Safety
/// `T` must be the function's true signature, and the result must not be
/// called after `library` is dropped.
unsafe fn symbol<T: Copy>(library: &Library, name: &'static str) -> Result<T, NvmlError> {
    let mut c_name = name.as_bytes().to_vec();
    c_name.push(0);
    library
        .get::<T>(&c_name)
        .map(|s| *s)
        .map_err(|source| NvmlError::Symbol {
            function: name,
            source,
        })
}

impl Nvml {
    fn load(path: &std::ffi::OsStr) -> Result<Self, NvmlError> {
        // SAFETY: loading NVML runs only its own initialisers; each signature
        // below is the one nvml.h declares, and `_library` keeps them valid.
        unsafe {
            let library = Library::new(path).map_err(NvmlError::Load)?;
            Ok(Self {
                init: symbol(&library, "nvmlInit_v2")?,
                shutdown: symbol(&library, "nvmlShutdown")?,
                error_string: symbol(&library, "nvmlErrorString")?,
                count: symbol(&library, "nvmlDeviceGetCount_v2")?,
                handle_by_index: symbol(&library, "nvmlDeviceGetHandleByIndex_v2")?,
                name: symbol(&library, "nvmlDeviceGetName")?,
                uuid: symbol(&library, "nvmlDeviceGetUUID")?,
                minor: symbol(&library, "nvmlDeviceGetMinorNumber")?,
                memory: symbol(&library, "nvmlDeviceGetMemoryInfo").ok(),
                samplers: session::Samplers::load(&library),
                events: session::EventCalls::load(&library),
                _library: library,
            })
        }
    }

    /// `code` as an error of `function`, or `Ok` for `NVML_SUCCESS`.
    fn check(&self, function: &'static str, code: c_uint) -> Result<(), NvmlError> {
        if code == SUCCESS {
            return Ok(());
        }
        // SAFETY: nvmlErrorString accepts any code and returns a static
        // NUL-terminated string (or null, handled).
        let text = unsafe { (self.error_string)(code) };
        let message = if text.is_null() {
            "unknown error".to_owned()
        } else {
            // SAFETY: non-null, static and NUL-terminated, per nvml.h.
            unsafe { CStr::from_ptr(text) }
                .to_string_lossy()
                .into_owned()
        };
        Err(NvmlError::Call {
            function,
            code,
            message,
        })
    }

    /// A string attribute read into a buffer of `N` bytes.
    fn text<const N: usize>(
        &self,
        function: &'static str,
        call: unsafe extern "C" fn(Device, *mut c_char, c_uint) -> c_uint,
        device: Device,
    ) -> Result<String, NvmlError> {
        let mut buffer = [0u8; N];
        // SAFETY: `device` came from nvmlDeviceGetHandleByIndex_v2 while NVML
        // is initialised; the buffer is writable for the length passed.
        let code = unsafe { call(device, buffer.as_mut_ptr().cast(), N as c_uint) };
        self.check(function, code)?;
        Ok(CStr::from_bytes_until_nul(&buffer)
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|_| String::from_utf8_lossy(&buffer).into_owned()))
    }

    fn device(&self, index: u32) -> Result<Gpu, NvmlError> {
        let mut device: Device = std::ptr::null_mut();
        // SAFETY: NVML is initialised; the out-pointer is valid.
        let code = unsafe { (self.handle_by_index)(index, &mut device) };
        self.check("nvmlDeviceGetHandleByIndex_v2", code)?;
        let name = self.text::<NAME_BUFFER_SIZE>("nvmlDeviceGetName", self.name, device)?;
        let uuid = self.text::<UUID_BUFFER_SIZE>("nvmlDeviceGetUUID", self.uuid, device)?;
        let mut minor: c_uint = 0;
        // SAFETY: a valid handle and out-pointer.
        let code = unsafe { (self.minor)(device, &mut minor) };
        self.check("nvmlDeviceGetMinorNumber", code)?;
        let memory_bytes = self.memory.and_then(|call| {
            let mut memory = Memory::default();
            // SAFETY: a valid handle; `Memory` is nvmlMemory_t's layout.
            let code = unsafe { call(device, &mut memory) };
            match self.check("nvmlDeviceGetMemoryInfo", code) {
                Ok(()) => Some(memory.total),
                Err(e) => {
                    tracing::debug!(index, error = %e, "GPU memory size unknown");
                    None
                }
            }
        });
        Ok(Gpu {
            index,
            uuid,
            name,
            minor,
            memory_bytes,
        })
    }
}

/// The library to open: `library` when given (a path), else the driver's
/// soname, found by the dynamic loader.
pub(super) fn library_path(library: Option<&std::path::Path>) -> OsString {
    library.map_or_else(|| LIBRARY.into(), |path| path.as_os_str().to_owned())
}

/// Every GPU NVML (the library at `path`) sees, by index. A device that
/// cannot be read is skipped with a warning, so one failed GPU does not
/// hide the others.
pub(super) fn list(path: &std::ffi::OsStr) -> Result<Vec<Gpu>, NvmlError> {
    let nvml = Nvml::load(path)?;
    // SAFETY: a function of the loaded library, with nvml.h's signature.
    nvml.check("nvmlInit_v2", unsafe { (nvml.init)() })?;
    let result = (|| {
        let mut count: c_uint = 0;
        // SAFETY: NVML is initialised; the out-pointer is valid.
        nvml.check("nvmlDeviceGetCount_v2", unsafe { (nvml.count)(&mut count) })?;
        let mut gpus = Vec::with_capacity(count as usize);
        for index in 0..count {
            match nvml.device(index) {
                Ok(gpu) => gpus.push(gpu),
                Err(e) => tracing::warn!(index, error = %e, "skipping a GPU NVML cannot read"),
            }
        }
        Ok(gpus)
    })();
    // SAFETY: paired with the successful nvmlInit_v2 above.
    if let Err(e) = nvml.check("nvmlShutdown", unsafe { (nvml.shutdown)() }) {
        tracing::debug!(error = %e, "NVML shutdown failed");
    }
    result
}
