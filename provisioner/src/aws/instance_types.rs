//! What a machine of an EC2 instance type has, from DescribeInstanceTypes:
//! vCPUs, memory, GPUs and pods, as a NodePool's `template.capacity` would
//! say it. Types never change, so each is asked for once per client.
//!
//! Memory is the type's nominal memory. Karpenter subtracts a VM overhead
//! percentage from it (`vmMemoryOverheadPercent`); we do not guess one, so
//! a pod asking for exactly a type's memory is provisioned for and may then
//! not fit the node: write `template.capacity` by hand to be stricter.

use std::collections::BTreeMap;

use aws_sdk_ec2::types::{InstanceType, InstanceTypeInfo};
use berth_api::quantity::{Format, Quantity as Amount};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use super::{AwsError, Ec2};

/// Pods a node takes when nothing says otherwise: `berth agent --max-pods`'s
/// default, which is kubelet's.
pub const DEFAULT_MAX_PODS: i64 = 110;
/// The resource NVIDIA's device plugin advertises.
pub const NVIDIA_GPU: &str = "nvidia.com/gpu";
/// The resource AMD's device plugin advertises.
pub const AMD_GPU: &str = "amd.com/gpu";
/// EC2's error code for an instance type it does not know.
const INVALID_INSTANCE_TYPE: &str = "InvalidInstanceType";

/// What one machine has, by resource name (`cpu`, `memory`, `pods`, GPUs).
pub type Capacity = BTreeMap<String, Quantity>;

impl Ec2 {
    /// The capacity of each of `types`, from the cache or one paginated
    /// DescribeInstanceTypes call for those not yet seen; an error names the
    /// types EC2 does not know.
    pub async fn instance_type_capacity(
        &self,
        types: &[String],
    ) -> Result<BTreeMap<String, Capacity>, AwsError> {
        let mut found = BTreeMap::new();
        let mut missing = Vec::new();
        {
            let cache = self.lock_instance_types();
            for name in types {
                match cache.get(name) {
                    Some(capacity) => {
                        found.insert(name.clone(), capacity.clone());
                    }
                    None if !missing.contains(name) => missing.push(name.clone()),
                    None => {}
                }
            }
        }
        if missing.is_empty() {
            return Ok(found);
        }
        let described = self.describe_instance_types(&missing).await?;
        let unknown: Vec<&str> = missing
            .iter()
            .filter(|t| !described.contains_key(*t))
            .map(String::as_str)
            .collect();
        if !unknown.is_empty() {
            return Err(unknown_types(&unknown, "EC2 does not describe it"));
        }
        self.lock_instance_types().extend(described.clone());
        found.extend(described);
        Ok(found)
    }

    /// DescribeInstanceTypes for `types`, every page, throttling retried.
    async fn describe_instance_types(
        &self,
        types: &[String],
    ) -> Result<BTreeMap<String, Capacity>, AwsError> {
        let wanted: Vec<InstanceType> = types
            .iter()
            .map(|t| InstanceType::from(t.as_str()))
            .collect();
        let pages = self
            .backoff
            .pages(
                AwsError::is_throttling,
                |token| {
                    let request = self
                        .client
                        .describe_instance_types()
                        .set_instance_types(Some(wanted.clone()))
                        .set_next_token(token);
                    async move {
                        request
                            .send()
                            .await
                            .map_err(|e| AwsError::from_sdk("DescribeInstanceTypes", e))
                    }
                },
                |page| page.next_token(),
            )
            .await
            .map_err(|e| match e {
                AwsError::Api { code, message, .. } if code == INVALID_INSTANCE_TYPE => {
                    let names: Vec<&str> = types.iter().map(String::as_str).collect();
                    unknown_types(&names, &message)
                }
                other => other,
            })?;
        let out = pages
            .iter()
            .flat_map(|page| page.instance_types())
            .filter_map(|info| Some((info.instance_type()?.as_str().to_owned(), capacity_of(info))))
            .collect();
        Ok(out)
    }

    fn lock_instance_types(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Capacity>> {
        // A panic while holding the lock cannot leave a half-written entry.
        self.instance_types
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The error for instance types EC2 does not know.
fn unknown_types(types: &[&str], why: &str) -> AwsError {
    AwsError::Invalid(format!(
        "unknown instance type {} ({why}): fix template.aws.instanceTypes or write template.capacity",
        types.join(", ")
    ))
}

/// What a machine of the type `info` describes has.
fn capacity_of(info: &InstanceTypeInfo) -> Capacity {
    let mut capacity = Capacity::new();
    if let Some(vcpus) = info.v_cpu_info().and_then(|v| v.default_v_cpus()) {
        capacity.insert("cpu".into(), quantity(vcpus.into(), Format::DecimalSI));
    }
    if let Some(mib) = info.memory_info().and_then(|m| m.size_in_mib()) {
        capacity.insert(
            "memory".into(),
            quantity(mib.saturating_mul(1024 * 1024), Format::BinarySI),
        );
    }
    let mut gpus: BTreeMap<&str, i64> = BTreeMap::new();
    for gpu in info.gpu_info().map(|g| g.gpus()).unwrap_or_default() {
        let resource = match gpu.manufacturer().map(str::to_ascii_lowercase).as_deref() {
            Some("nvidia") => NVIDIA_GPU,
            Some("amd") => AMD_GPU,
            _ => continue,
        };
        *gpus.entry(resource).or_default() += i64::from(gpu.count().unwrap_or(0));
    }
    for (resource, count) in gpus.into_iter().filter(|(_, n)| *n > 0) {
        capacity.insert(resource.into(), quantity(count, Format::DecimalSI));
    }
    capacity.insert("pods".into(), quantity(DEFAULT_MAX_PODS, Format::DecimalSI));
    capacity
}

fn quantity(value: i64, format: Format) -> Quantity {
    Quantity(Amount::new(value, format).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ec2::types::{GpuDeviceInfo, GpuInfo, MemoryInfo, VCpuInfo};

    fn info(vcpus: i32, mib: i64, gpus: &[(&str, i32)]) -> InstanceTypeInfo {
        let mut gpu_info = GpuInfo::builder();
        for (maker, count) in gpus {
            gpu_info = gpu_info.gpus(
                GpuDeviceInfo::builder()
                    .manufacturer(*maker)
                    .count(*count)
                    .build(),
            );
        }
        InstanceTypeInfo::builder()
            .v_cpu_info(VCpuInfo::builder().default_v_cpus(vcpus).build())
            .memory_info(MemoryInfo::builder().size_in_mib(mib).build())
            .gpu_info(gpu_info.build())
            .build()
    }

    fn text(capacity: &Capacity) -> String {
        let pairs: Vec<String> = capacity
            .iter()
            .map(|(k, v)| format!("{k}={}", v.0))
            .collect();
        pairs.join(" ")
    }

    #[test]
    fn vcpus_memory_gpus_by_maker_and_pods() {
        let cases = [
            ("no gpu", info(4, 16384, &[]), "cpu=4 memory=16Gi pods=110"),
            (
                "nvidia",
                info(8, 32768, &[("NVIDIA", 1), ("NVIDIA", 2)]),
                "cpu=8 memory=32Gi nvidia.com/gpu=3 pods=110",
            ),
            (
                "amd and an unknown maker",
                info(2, 1536, &[("AMD", 1), ("Xilinx", 1)]),
                "amd.com/gpu=1 cpu=2 memory=1536Mi pods=110",
            ),
        ];
        for (name, info, want) in cases {
            assert_eq!(text(&capacity_of(&info)), want, "{name}");
        }
    }
}
