//! NVIDIA GPUs on a real node: finding them through NVML (loaded at run
//! time, so machines without the driver simply have none), naming them as
//! NVIDIA's feature discovery labels them, and giving them to containers as
//! device nodes plus `NVIDIA_VISIBLE_DEVICES`. Detection never panics and
//! never changes a device.

mod allocator;
pub mod health;
mod monitor;
mod nvml;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

pub use allocator::{GpuAllocator, GpuError};
pub use monitor::{Fault, GpuMonitor, Sample};
pub use nvml::NvmlError;

/// The extended resource pods request GPUs by, as NVIDIA's device plugin
/// advertises it.
pub const RESOURCE_NAME: &str = "nvidia.com/gpu";
/// The node label naming the GPU model (GPU feature discovery's).
pub const PRODUCT_LABEL: &str = "nvidia.com/gpu.product";
/// The node label counting the GPUs (GPU feature discovery's).
pub const COUNT_LABEL: &str = "nvidia.com/gpu.count";
/// The node label giving one GPU's memory in MiB (GPU feature discovery's).
pub const MEMORY_LABEL: &str = "nvidia.com/gpu.memory";
/// The variable the NVIDIA container runtime reads to decide which GPUs a
/// container sees.
pub const VISIBLE_DEVICES_ENV: &str = "NVIDIA_VISIBLE_DEVICES";
/// Device nodes every GPU container needs besides its own `/dev/nvidiaN`.
pub const SHARED_DEVICE_NODES: &[&str] =
    &["/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools"];

/// One GPU as NVML reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gpu {
    /// NVML's index (PCI bus order), for logs; the UUID is what identifies it.
    pub index: u32,
    /// The stable identity, e.g. `GPU-5c2a…`, used in
    /// `NVIDIA_VISIBLE_DEVICES` and to adopt allocations after a restart.
    pub uuid: String,
    /// The model, e.g. `NVIDIA H100 80GB HBM3`.
    pub name: String,
    /// The device node's minor number: the `N` of `/dev/nvidiaN`.
    pub minor: u32,
    /// Framebuffer memory in bytes, when NVML reports it.
    pub memory_bytes: Option<u64>,
}

/// The GPUs of this machine, or why NVML could not list them (the library
/// is missing, the driver is not loaded, …).
pub fn try_detect() -> Result<Vec<Gpu>, NvmlError> {
    nvml::list(&nvml::library_path(None))
}

/// The GPUs the NVML library at `path` lists.
pub fn try_detect_with(path: &std::ffi::OsStr) -> Result<Vec<Gpu>, NvmlError> {
    nvml::list(path)
}

/// The GPUs of this machine; none when NVML is missing or fails. A missing
/// library is the normal case on machines without GPUs and is logged at
/// debug; any other failure is a warning, since GPUs may be going unused.
pub fn detect() -> Vec<Gpu> {
    detect_at(None)
}

/// [`detect`] through the NVML library at `library` (`--nvml-library`), or
/// the driver's when `None`.
pub fn detect_at(library: Option<&Path>) -> Vec<Gpu> {
    match nvml::list(&nvml::library_path(library)) {
        Ok(gpus) => gpus,
        Err(e @ NvmlError::Load(_)) => {
            tracing::debug!(error = %e, "no NVIDIA GPUs");
            Vec::new()
        }
        Err(e) => {
            tracing::warn!(error = %e, "NVIDIA GPUs cannot be listed; the node offers none");
            Vec::new()
        }
    }
}

/// A report of what detection found on this machine (count, models, UUIDs,
/// device nodes, or the reason for none), for an operator checking a GPU
/// node by hand.
pub fn describe() -> String {
    describe_result(&try_detect(), |p| p.exists())
}

fn describe_result(result: &Result<Vec<Gpu>, NvmlError>, exists: impl Fn(&Path) -> bool) -> String {
    let gpus = match result {
        Err(e) => return format!("no GPUs: {e}\n"),
        Ok(gpus) => gpus,
    };
    let mut out = format!("{} NVIDIA GPU(s)\n", gpus.len());
    for gpu in gpus {
        let memory = gpu.memory_bytes.map_or_else(
            || "memory unknown".to_owned(),
            |b| format!("{} MiB", b >> 20),
        );
        let devices: Vec<String> = device_paths_with(gpu, &exists)
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        let _ = writeln!(
            out,
            "  {index}: {name} ({memory}) {uuid}\n     label {PRODUCT_LABEL}={label}\n     devices {devices}",
            index = gpu.index,
            name = gpu.name,
            uuid = gpu.uuid,
            label = product_label(&gpu.name),
            devices = devices.join(" "),
        );
    }
    out
}

/// The `nvidia.com/gpu.product` value for NVML model `name`, as GPU feature
/// discovery writes it (`NVIDIA H100 80GB HBM3` → `NVIDIA-H100-80GB-HBM3`),
/// forced into a valid label value: characters other than `[A-Za-z0-9._-]`
/// become `-`, at most 63 characters, alphanumeric at both ends.
pub fn product_label(name: &str) -> String {
    let mapped: String = name
        .trim()
        .chars()
        .map(|c| match c {
            'A'..='Z' | 'a'..='z' | '0'..='9' | '.' | '_' | '-' => c,
            _ => '-',
        })
        .take(63)
        .collect();
    mapped
        .trim_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_owned()
}

/// The labels GPU feature discovery would put on a node with `gpus`
/// (product and memory of the first GPU, and the count); none without GPUs.
pub fn node_labels(gpus: &[Gpu]) -> BTreeMap<String, String> {
    let Some(first) = gpus.first() else {
        return BTreeMap::new();
    };
    let mut labels = BTreeMap::from([
        (PRODUCT_LABEL.to_owned(), product_label(&first.name)),
        (COUNT_LABEL.to_owned(), gpus.len().to_string()),
    ]);
    if let Some(bytes) = first.memory_bytes {
        labels.insert(MEMORY_LABEL.to_owned(), (bytes >> 20).to_string());
    }
    labels
}

/// The node capacity `gpus` add (`nvidia.com/gpu: N`); none without GPUs.
pub fn capacity(
    gpus: &[Gpu],
) -> BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity> {
    if gpus.is_empty() {
        return BTreeMap::new();
    }
    BTreeMap::from([(
        RESOURCE_NAME.to_owned(),
        k8s_openapi::apimachinery::pkg::api::resource::Quantity(gpus.len().to_string()),
    )])
}

/// The device nodes a container using `gpu` needs: its `/dev/nvidiaN`
/// (always, so a missing node fails loudly at container creation) and the
/// shared control and UVM nodes that exist on this machine.
pub fn device_paths(gpu: &Gpu) -> Vec<PathBuf> {
    device_paths_with(gpu, |p| p.exists())
}

/// [`device_paths`] with the existence check supplied, for tests and for
/// callers that look at a different root.
pub fn device_paths_with(gpu: &Gpu, exists: impl Fn(&Path) -> bool) -> Vec<PathBuf> {
    std::iter::once(PathBuf::from(format!("/dev/nvidia{}", gpu.minor)))
        .chain(
            SHARED_DEVICE_NODES
                .iter()
                .map(PathBuf::from)
                .filter(|p| exists(p)),
        )
        .collect()
}

/// The `NVIDIA_VISIBLE_DEVICES` value for a container given `gpus`: their
/// UUIDs, comma-separated. With none it is `void`, which a container that
/// asked for no GPU must get too: CUDA images default the variable to
/// `all`, which would otherwise expose every GPU of the node.
pub fn visible_devices(gpus: &[Gpu]) -> String {
    if gpus.is_empty() {
        return "void".to_owned();
    }
    gpus.iter()
        .map(|g| g.uuid.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// The GPU UUIDs in an `NVIDIA_VISIBLE_DEVICES` value read back from a
/// running container, for [`GpuAllocator::adopt`]; `void`, `none` and empty
/// mean none. Other values (`all`, indices) come back as they are, and
/// adopt rejects them as unknown devices.
pub fn parse_visible_devices(value: &str) -> Vec<String> {
    match value.trim() {
        "" | "void" | "none" => Vec::new(),
        list => list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
    }
}

#[cfg(test)]
mod fake_nvml_tests;

#[cfg(test)]
mod tests {
    use super::*;

    fn h100(index: u32) -> Gpu {
        Gpu {
            index,
            uuid: format!("GPU-{index}"),
            name: "NVIDIA H100 80GB HBM3".into(),
            minor: index,
            memory_bytes: Some(81559 << 20),
        }
    }

    #[test]
    fn detect_finds_nothing_without_nvml() {
        // This machine has no libnvidia-ml, so NVML fails to load and detect
        // returns nothing; on a GPU machine it must agree with try_detect.
        let gpus = detect();
        match try_detect() {
            Err(e) => {
                assert!(gpus.is_empty(), "{gpus:?} despite {e}");
                assert!(describe().starts_with("no GPUs: "), "{}", describe());
            }
            Ok(found) => assert_eq!(gpus, found),
        }
    }

    #[test]
    fn product_labels_are_valid_label_values() {
        let cases = [
            ("NVIDIA H100 80GB HBM3", "NVIDIA-H100-80GB-HBM3"),
            ("Tesla V100-SXM2-16GB", "Tesla-V100-SXM2-16GB"),
            ("NVIDIA A100-SXM4-80GB", "NVIDIA-A100-SXM4-80GB"),
            ("  Quadro RTX 6000/8000 ", "Quadro-RTX-6000-8000"),
            ("(GPU) Model (TM)", "GPU--Model--TM"),
            ("", ""),
        ];
        for (name, want) in cases {
            assert_eq!(product_label(name), want, "{name}");
        }
        let long = product_label(&"A ".repeat(50));
        assert!(long.len() <= 63 && long.ends_with('A'), "{long}");
        for (name, _) in cases {
            let label = product_label(name);
            assert!(
                berth_api::validation::is_valid_label_value(&label).is_empty(),
                "{label}"
            );
        }
    }

    #[test]
    fn device_paths_include_the_gpu_and_the_shared_nodes_that_exist() {
        let gpu = Gpu {
            minor: 3,
            ..h100(0)
        };
        let paths = device_paths_with(&gpu, |p| p != Path::new("/dev/nvidia-uvm-tools"));
        assert_eq!(
            paths,
            ["/dev/nvidia3", "/dev/nvidiactl", "/dev/nvidia-uvm"].map(PathBuf::from)
        );
        assert_eq!(
            device_paths_with(&gpu, |_| false),
            [PathBuf::from("/dev/nvidia3")]
        );
    }

    #[test]
    fn visible_devices_round_trip() {
        let gpus = [h100(0), h100(1)];
        assert_eq!(visible_devices(&gpus), "GPU-0,GPU-1");
        assert_eq!(parse_visible_devices("GPU-0, GPU-1"), ["GPU-0", "GPU-1"]);
        assert_eq!(visible_devices(&[]), "void");
        assert!(parse_visible_devices("void").is_empty());
        assert!(parse_visible_devices("").is_empty());
    }

    #[test]
    fn node_labels_follow_gpu_feature_discovery() {
        let labels = node_labels(&[h100(0), h100(1)]);
        assert_eq!(labels[PRODUCT_LABEL], "NVIDIA-H100-80GB-HBM3");
        assert_eq!(labels[COUNT_LABEL], "2");
        assert_eq!(labels[MEMORY_LABEL], "81559");
        assert!(node_labels(&[]).is_empty());
    }

    #[test]
    fn describe_lists_each_gpu() {
        let text = describe_result(&Ok(vec![h100(0)]), |_| true);
        assert!(text.starts_with("1 NVIDIA GPU(s)\n"), "{text}");
        assert!(
            text.contains("NVIDIA H100 80GB HBM3 (81559 MiB) GPU-0"),
            "{text}"
        );
        assert!(
            text.contains("devices /dev/nvidia0 /dev/nvidiactl"),
            "{text}"
        );
    }
}
