//! Detection, telemetry, metrics and health through the real dlopen path,
//! against a fake `libnvidia-ml.so.1` compiled from
//! `tests/fake_nvml/fake_nvml.c`. Each test builds its own copy in its own
//! directory, with the `state` file beside it that the fake reads.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;
use serde_json::json;

use super::*;
use crate::config::{parse_capacity, NodeConfig};
use crate::runtime::simulated::{SimulatedConfig, SimulatedRuntime};
use crate::runtime::{ContainerConfig, PodSandboxConfig};
use crate::NodeHandle;

const TWO_GPUS: &str = "\
gpu name=NVIDIA_H100_80GB_HBM3 uuid=GPU-aaa minor=0 total=85899345920 used=1073741824 util=42 memutil=17 temp=55 power=312500 sm=1980 memclk=2619 sbe=3 dbe=0
gpu name=NVIDIA_H100_80GB_HBM3 uuid=GPU-bbb minor=1 total=85899345920 used=0 util=0 memutil=0 power=70000 sm=345 memclk=1593 sbe=0 dbe=0
";

/// A fake NVML in a directory of its own, removed on drop.
struct FakeNvml {
    dir: tempfile::TempDir,
}

impl FakeNvml {
    fn new(state: &str) -> Self {
        Self::compiled(state, &[])
    }

    /// A fake compiled with `defines` (`-DFAKE_NVML_OLD_DRIVER`).
    fn compiled(state: &str, defines: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fake_nvml/fake_nvml.c");
        let status = Command::new("cc")
            .args(defines)
            .args(["-shared", "-fPIC", "-Wall", "-o"])
            .arg(dir.path().join(nvml::LIBRARY))
            .arg(&source)
            .arg("-ldl")
            .status()
            .expect("cc runs");
        assert!(status.success(), "compiling {}", source.display());
        let fake = Self { dir };
        fake.write(state);
        fake
    }

    fn library(&self) -> PathBuf {
        self.dir.path().join(nvml::LIBRARY)
    }

    fn write(&self, state: &str) {
        std::fs::write(self.dir.path().join("state"), state).unwrap();
    }

    fn monitor(&self) -> GpuMonitor {
        let gpus = try_detect_with(self.library().as_os_str()).unwrap();
        GpuMonitor::open_library(self.library().as_os_str(), gpus).unwrap()
    }
}

/// A node with the fake's GPUs, their capacity, and a monitor over them.
fn node(fake: &FakeNvml) -> NodeHandle {
    let gpus = try_detect_with(fake.library().as_os_str()).unwrap();
    let mut config = NodeConfig::new("gpu-node", 7);
    config.capacity = parse_capacity("cpu=8").unwrap();
    config.capacity.extend(capacity(&gpus));
    config.gpus = gpus;
    let runtime = SimulatedRuntime::new(SimulatedConfig::default()).unwrap();
    NodeHandle::new(config, Arc::new(runtime)).with_gpu_monitor(Some(fake.monitor()))
}

fn gpu_pod(uid: &str, count: u32) -> (Pod, PodSandboxConfig) {
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"uid": uid, "name": uid, "namespace": "ml"},
        "spec": {"containers": [{"name": "train", "image": "cuda",
            "resources": {"limits": {"nvidia.com/gpu": count.to_string()}}}]}
    }))
    .unwrap();
    let config = PodSandboxConfig {
        uid: uid.into(),
        name: uid.into(),
        namespace: "ml".into(),
        containers: vec![ContainerConfig {
            name: "train".into(),
            ..ContainerConfig::default()
        }],
        ..PodSandboxConfig::default()
    };
    (pod, config)
}

#[test]
fn detection_and_every_reading_go_through_nvml() {
    let fake = FakeNvml::new(TWO_GPUS);
    let gpus = try_detect_with(fake.library().as_os_str()).unwrap();
    assert_eq!(gpus.len(), 2);
    assert_eq!(gpus[0].name, "NVIDIA H100 80GB HBM3");
    assert_eq!((gpus[1].uuid.as_str(), gpus[1].minor), ("GPU-bbb", 1));
    assert_eq!(gpus[0].memory_bytes, Some(80 << 30));

    let monitor = GpuMonitor::open_library(fake.library().as_os_str(), gpus).unwrap();
    let samples = monitor.sample();
    assert_eq!(
        samples[0],
        Sample {
            utilization_percent: Some(42),
            memory_utilization_percent: Some(17),
            memory_used_bytes: Some(1 << 30),
            memory_free_bytes: Some(79 << 30),
            temperature_celsius: Some(55),
            power_milliwatts: Some(312_500),
            sm_clock_mhz: Some(1980),
            memory_clock_mhz: Some(2619),
            ecc_single_bit_volatile: Some(3),
            ecc_double_bit_volatile: Some(0),
            lost: false,
        }
    );
    assert_eq!(
        samples[1].temperature_celsius, None,
        "NOT_SUPPORTED is no sample"
    );
    assert!(!samples[1].lost);
    assert!(monitor.check().is_empty());
}

#[test]
fn an_old_driver_without_some_functions_gives_fewer_readings() {
    let fake = FakeNvml::compiled(TWO_GPUS, &["-DFAKE_NVML_OLD_DRIVER"]);
    let monitor = fake.monitor();
    let sample = &monitor.sample()[0];
    assert_eq!(sample.sm_clock_mhz, None, "no nvmlDeviceGetClockInfo");
    assert_eq!(sample.utilization_percent, Some(42));
    // Without an event set XIDs are not seen, and nothing fails.
    fake.write(&format!("{TWO_GPUS}xid 0 79\n"));
    assert!(monitor.check().is_empty());
    assert_eq!(monitor.last_xid("GPU-aaa"), None);
}

#[test]
fn a_missing_library_is_a_load_error() {
    let missing = std::ffi::OsStr::new("/nonexistent/libnvidia-ml.so.1");
    assert!(matches!(try_detect_with(missing), Err(NvmlError::Load(_))));
}

#[test]
fn metrics_carry_dcgm_names_and_the_pod_using_the_gpu() {
    let fake = FakeNvml::new(TWO_GPUS);
    let node = node(&fake);
    let (pod, mut config) = gpu_pod("trainer", 1);
    node.gpus.assign(&pod, &mut config).unwrap();
    let text = node.metrics.registry().encode_text();
    for line in [
        r#"DCGM_FI_DEV_GPU_UTIL{gpu="0",UUID="GPU-aaa",device="nvidia0",modelName="NVIDIA H100 80GB HBM3",Hostname="gpu-node",container="train",namespace="ml",pod="trainer"} 42"#,
        r#"DCGM_FI_DEV_FB_USED{gpu="0",UUID="GPU-aaa",device="nvidia0",modelName="NVIDIA H100 80GB HBM3",Hostname="gpu-node",container="train",namespace="ml",pod="trainer"} 1024"#,
        r#"DCGM_FI_DEV_FB_FREE{gpu="1",UUID="GPU-bbb",device="nvidia1",modelName="NVIDIA H100 80GB HBM3",Hostname="gpu-node"} 81920"#,
        r#"DCGM_FI_DEV_GPU_TEMP{gpu="0",UUID="GPU-aaa",device="nvidia0",modelName="NVIDIA H100 80GB HBM3",Hostname="gpu-node",container="train",namespace="ml",pod="trainer"} 55"#,
        r#"DCGM_FI_DEV_POWER_USAGE{gpu="1",UUID="GPU-bbb",device="nvidia1",modelName="NVIDIA H100 80GB HBM3",Hostname="gpu-node"} 70"#,
        r#"DCGM_FI_DEV_SM_CLOCK{gpu="1",UUID="GPU-bbb",device="nvidia1",modelName="NVIDIA H100 80GB HBM3",Hostname="gpu-node"} 345"#,
        r#"DCGM_FI_DEV_MEM_CLOCK{gpu="1",UUID="GPU-bbb",device="nvidia1",modelName="NVIDIA H100 80GB HBM3",Hostname="gpu-node"} 1593"#,
        r#"DCGM_FI_DEV_MEM_COPY_UTIL{gpu="0",UUID="GPU-aaa",device="nvidia0",modelName="NVIDIA H100 80GB HBM3",Hostname="gpu-node",container="train",namespace="ml",pod="trainer"} 17"#,
        r#"DCGM_FI_DEV_ECC_SBE_VOL_TOTAL{gpu="0",UUID="GPU-aaa",device="nvidia0",modelName="NVIDIA H100 80GB HBM3",Hostname="gpu-node",container="train",namespace="ml",pod="trainer"} 3"#,
        r#"DCGM_FI_DEV_ECC_DBE_VOL_TOTAL{gpu="1",UUID="GPU-bbb",device="nvidia1",modelName="NVIDIA H100 80GB HBM3",Hostname="gpu-node"} 0"#,
        r#"DCGM_FI_DEV_XID_ERRORS{gpu="1",UUID="GPU-bbb",device="nvidia1",modelName="NVIDIA H100 80GB HBM3",Hostname="gpu-node"} 0"#,
        "# TYPE DCGM_FI_DEV_GPU_UTIL gauge",
    ] {
        assert!(text.contains(line), "{line} missing from\n{text}");
    }
    assert!(
        !text.contains(r#"DCGM_FI_DEV_GPU_TEMP{gpu="1""#),
        "no temperature sample for GPU 1"
    );
    // The pod labels go with the pod.
    node.gpus.release("trainer");
    let text = node.metrics.registry().encode_text();
    assert!(!text.contains(r#"pod="trainer""#), "{text}");
    // An XID shows as the last one seen.
    fake.write(&format!("{TWO_GPUS}xid 1 31\n"));
    assert!(crate::gpu_health::check(&node, Timestamp::now()).is_empty());
    let text = node.metrics.registry().encode_text();
    assert!(text.contains(r#"DCGM_FI_DEV_XID_ERRORS{gpu="1",UUID="GPU-bbb",device="nvidia1",modelName="NVIDIA H100 80GB HBM3",Hostname="gpu-node"} 31"#), "{text}");
}

#[test]
fn a_critical_xid_withdraws_the_gpu() {
    let fake = FakeNvml::new(TWO_GPUS);
    let node = node(&fake);
    let before = crate::node::node_status(&node, Timestamp::now());
    assert_eq!(before.allocatable.as_ref().unwrap()[RESOURCE_NAME].0, "2");
    let healthy = condition_of(&before);
    assert_eq!(
        (healthy.status.as_str(), healthy.reason.as_deref()),
        ("False", Some("NvidiaGPUsHealthy"))
    );

    // 13 is an application error (the GPU stays); 79 is fallen off the bus.
    fake.write(&format!("{TWO_GPUS}xid 0 13\nxid 0 79\n"));
    let faults = crate::gpu_health::check(&node, Timestamp::now());
    assert_eq!(faults.len(), 1, "{faults:?}");
    assert_eq!(faults[0].gpu.uuid, "GPU-aaa");
    assert_eq!(faults[0].cause, health::Cause::Xid(79));
    let (reason, message) = crate::gpu_health::event(&faults[0]);
    assert_eq!(reason, "XidCriticalError");
    assert!(message.contains("GPU GPU-aaa (index 0"), "{message}");
    assert!(message.contains("critical XID error 79"), "{message}");
    assert!(
        crate::gpu_health::check(&node, Timestamp::now()).is_empty(),
        "reported once"
    );

    let after = crate::node::node_status(&node, Timestamp::now());
    assert_eq!(after.capacity.as_ref().unwrap()[RESOURCE_NAME].0, "2");
    assert_eq!(after.allocatable.as_ref().unwrap()[RESOURCE_NAME].0, "1");
    let unhealthy = condition_of(&after);
    assert_eq!(
        (unhealthy.status.as_str(), unhealthy.reason.as_deref()),
        ("True", Some("XidCriticalError"))
    );
    let text = unhealthy.message.as_deref().unwrap();
    assert!(
        text.contains("GPU GPU-aaa: critical XID error 79"),
        "{text}"
    );

    // The allocator gives out only the healthy GPU.
    let (both, mut both_config) = gpu_pod("wants-two", 2);
    let refused = node.gpus.assign(&both, &mut both_config).unwrap_err();
    assert!(
        refused.0.starts_with("UnexpectedAdmissionError"),
        "{refused}"
    );
    let (one, mut one_config) = gpu_pod("wants-one", 1);
    node.gpus.assign(&one, &mut one_config).unwrap();
    let visible = one_config.containers[0]
        .env
        .iter()
        .find(|(n, _)| n == VISIBLE_DEVICES_ENV)
        .unwrap();
    assert_eq!(visible.1, "GPU-bbb");
}

#[test]
fn double_bit_errors_and_a_lost_gpu_withdraw_it() {
    let fake = FakeNvml::new(TWO_GPUS);
    let node = node(&fake);
    assert!(crate::gpu_health::check(&node, Timestamp::now()).is_empty());
    fake.write(
        &TWO_GPUS
            .replace("sbe=3 dbe=0", "sbe=3 dbe=2")
            .replace("minor=1 ", "minor=1 lost=1 "),
    );
    let faults = crate::gpu_health::check(&node, Timestamp::now());
    let causes: Vec<_> = faults
        .iter()
        .map(|f| (f.gpu.uuid.as_str(), f.cause.clone()))
        .collect();
    assert_eq!(
        causes,
        [
            ("GPU-aaa", health::Cause::DoubleBitEcc { from: 0, to: 2 }),
            ("GPU-bbb", health::Cause::Lost),
        ]
    );
    let status = crate::node::node_status(&node, Timestamp::now());
    assert_eq!(status.allocatable.as_ref().unwrap()[RESOURCE_NAME].0, "0");
    let message = condition_of(&status).message.clone().unwrap();
    assert!(
        message.contains("GPU GPU-bbb: the GPU has fallen off the bus"),
        "{message}"
    );
    // A lost GPU has no readings left to show.
    let text = node.metrics.registry().encode_text();
    assert!(!text.contains(r#"DCGM_FI_DEV_GPU_UTIL{gpu="1""#), "{text}");
}

fn condition_of(
    status: &k8s_openapi::api::core::v1::NodeStatus,
) -> &k8s_openapi::api::core::v1::NodeCondition {
    status
        .conditions
        .as_ref()
        .unwrap()
        .iter()
        .find(|c| c.type_ == crate::gpu_health::CONDITION)
        .unwrap()
}
