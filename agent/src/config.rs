//! What one node is (name, labels, taints, capacity, address) and how the
//! command-line forms of those (`--labels`, `--taints`, `--capacity`) parse.
//! Pure data and functions: nothing here talks to the API or the runtime.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use berth_api::quantity::Quantity;
use berth_api::validation::{is_qualified_name, is_valid_label_value};
use k8s_openapi::api::core::v1::Taint;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity as OpenApiQuantity;

/// The label every node carries with its own name, as kubelet sets it.
pub const HOSTNAME_LABEL: &str = "kubernetes.io/hostname";
/// The label naming the node pool a node belongs to (`--pool`).
pub const POOL_LABEL: &str = "berth.dev/pool";

/// Capacity a node reports when `--capacity` does not name the resource: a
/// modest machine, so a handful of simulated nodes fit a test's pods.
pub const DEFAULT_CAPACITY: &[(&str, &str)] = &[
    ("cpu", "4"),
    ("memory", "16Gi"),
    ("pods", "110"),
    ("ephemeral-storage", "100Gi"),
];

/// Where `local-path` volumes live when the agent is not told
/// (`--local-path-dir`): `local-path` under the default `--data-dir`.
pub const DEFAULT_LOCAL_PATH_DIR: &str = "/var/lib/berth/agent/local-path";

/// A command-line value that does not parse; the text names the flag so the
/// user knows which one to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlagError {
    /// An entry is not `key=value`.
    #[error("{flag}: {entry:?} is not key=value")]
    NotKeyValue {
        /// The flag, e.g. `--labels`.
        flag: &'static str,
        /// The offending entry.
        entry: String,
    },
    /// A label or taint key is not a qualified name.
    #[error("{flag}: key {key:?} is invalid: {reason}")]
    Key {
        /// The flag.
        flag: &'static str,
        /// The key.
        key: String,
        /// What is wrong with it, in upstream's words.
        reason: String,
    },
    /// A label or taint value is not a valid label value.
    #[error("{flag}: value {value:?} of {key:?} is invalid: {reason}")]
    Value {
        /// The flag.
        flag: &'static str,
        /// The key the value belongs to.
        key: String,
        /// The value.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A taint lacks `:Effect` or names an effect that does not exist.
    #[error("{flag}: taint {entry:?} must end in :NoSchedule, :PreferNoSchedule or :NoExecute")]
    Effect {
        /// The flag.
        flag: &'static str,
        /// The offending taint.
        entry: String,
    },
    /// A capacity value is not a non-negative quantity.
    #[error("{flag}: {resource}={value:?} is not a quantity (like 8, 500m, 32Gi): {reason}")]
    Quantity {
        /// The flag.
        flag: &'static str,
        /// The resource name.
        resource: String,
        /// The value given.
        value: String,
        /// Why it does not parse.
        reason: String,
    },
    /// The same key appears twice.
    #[error("{flag}: {key:?} is given twice")]
    Duplicate {
        /// The flag.
        flag: &'static str,
        /// The repeated key.
        key: String,
    },
    /// A duration is not `500ms`, `10s`, `5m` or `1h`.
    #[error("{flag}: {value:?} is not a duration like 500ms, 10s, 5m or 1h")]
    Duration {
        /// The flag.
        flag: &'static str,
        /// The value given.
        value: String,
    },
}

/// Splits `a=1,b=2` into pairs, ignoring empty entries (a trailing comma).
fn key_values<'a>(
    flag: &'static str,
    text: &'a str,
) -> impl Iterator<Item = Result<(&'a str, &'a str), FlagError>> + 'a {
    text.split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(move |entry| {
            entry
                .split_once('=')
                .map(|(k, v)| (k.trim(), v.trim()))
                .ok_or_else(|| FlagError::NotKeyValue {
                    flag,
                    entry: entry.to_owned(),
                })
        })
}

fn check_key(flag: &'static str, key: &str) -> Result<(), FlagError> {
    let errors = is_qualified_name(key);
    if errors.is_empty() {
        Ok(())
    } else {
        Err(FlagError::Key {
            flag,
            key: key.to_owned(),
            reason: errors.join("; "),
        })
    }
}

fn check_value(flag: &'static str, key: &str, value: &str) -> Result<(), FlagError> {
    let errors = is_valid_label_value(value);
    if errors.is_empty() {
        Ok(())
    } else {
        Err(FlagError::Value {
            flag,
            key: key.to_owned(),
            value: value.to_owned(),
            reason: errors.join("; "),
        })
    }
}

/// Parses `--labels k=v,k2=v2` (keys and values checked as the API server
/// would, so a bad label fails at start-up rather than at registration).
pub fn parse_labels(text: &str) -> Result<BTreeMap<String, String>, FlagError> {
    const FLAG: &str = "--labels";
    let mut labels = BTreeMap::new();
    for pair in key_values(FLAG, text) {
        let (key, value) = pair?;
        check_key(FLAG, key)?;
        check_value(FLAG, key, value)?;
        if labels.insert(key.to_owned(), value.to_owned()).is_some() {
            return Err(FlagError::Duplicate {
                flag: FLAG,
                key: key.to_owned(),
            });
        }
    }
    Ok(labels)
}

/// Checks `--pool NAME`, which becomes the value of the `berth.dev/pool` label.
pub fn parse_pool(text: &str) -> Result<String, FlagError> {
    let pool = text.trim();
    check_value("--pool", POOL_LABEL, pool)?;
    Ok(pool.to_owned())
}

/// Parses `--taints k=v:Effect,k:Effect`, kubelet's `--register-with-taints` form.
pub fn parse_taints(text: &str) -> Result<Vec<Taint>, FlagError> {
    const FLAG: &str = "--taints";
    let mut taints: Vec<Taint> = Vec::new();
    for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (key_value, effect) = entry.rsplit_once(':').ok_or_else(|| FlagError::Effect {
            flag: FLAG,
            entry: entry.to_owned(),
        })?;
        if !matches!(effect, "NoSchedule" | "PreferNoSchedule" | "NoExecute") {
            return Err(FlagError::Effect {
                flag: FLAG,
                entry: entry.to_owned(),
            });
        }
        let (key, value) = match key_value.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (key_value, None),
        };
        check_key(FLAG, key)?;
        if let Some(value) = value {
            check_value(FLAG, key, value)?;
        }
        if taints.iter().any(|t| t.key == key && t.effect == effect) {
            return Err(FlagError::Duplicate {
                flag: FLAG,
                key: format!("{key}:{effect}"),
            });
        }
        taints.push(Taint {
            key: key.to_owned(),
            value: value.filter(|v| !v.is_empty()).map(str::to_owned),
            effect: effect.to_owned(),
            time_added: None,
        });
    }
    Ok(taints)
}

/// Parses `--capacity cpu=8,memory=32Gi,nvidia.com/gpu=4` on top of
/// [`DEFAULT_CAPACITY`]: named resources override the defaults, others keep them.
/// Values are printed back in canonical form (`1024Mi` → `1Gi`).
pub fn parse_capacity(text: &str) -> Result<BTreeMap<String, OpenApiQuantity>, FlagError> {
    let mut capacity: BTreeMap<String, OpenApiQuantity> = DEFAULT_CAPACITY
        .iter()
        .map(|(k, v)| ((*k).to_owned(), OpenApiQuantity((*v).to_owned())))
        .collect();
    capacity.extend(parse_capacity_overrides(text)?);
    Ok(capacity)
}

/// Only the resources `--capacity` names, for a node whose other
/// capacity comes from the machine itself.
pub fn parse_capacity_overrides(
    text: &str,
) -> Result<BTreeMap<String, OpenApiQuantity>, FlagError> {
    parse_resource_list("--capacity", text)
}

/// `--system-reserved`: what the machine keeps back from pods (kubelet's
/// flag of that name, `cpu=500m,memory=1Gi`); allocatable is capacity less it.
pub fn parse_reserved(text: &str) -> Result<BTreeMap<String, OpenApiQuantity>, FlagError> {
    parse_resource_list("--system-reserved", text)
}

/// What a node offers pods: each capacity less what is reserved of it,
/// never below zero (kubelet's allocatable).
pub fn allocatable(
    capacity: &BTreeMap<String, OpenApiQuantity>,
    reserved: &BTreeMap<String, OpenApiQuantity>,
) -> BTreeMap<String, OpenApiQuantity> {
    capacity
        .iter()
        .map(|(resource, total)| {
            let left = match (
                Quantity::try_from(total),
                reserved.get(resource).map(Quantity::try_from),
            ) {
                (Ok(total), Some(Ok(kept))) => {
                    let format = total.format();
                    let left = total.checked_sub(kept).unwrap_or(total);
                    if left.signum() < 0 {
                        OpenApiQuantity(Quantity::new(0, format).to_string())
                    } else {
                        OpenApiQuantity(left.to_string())
                    }
                }
                _ => total.clone(),
            };
            (resource.clone(), left)
        })
        .collect()
}

/// `resource=quantity,…` for the flag named `flag`.
fn parse_resource_list(
    flag: &'static str,
    text: &str,
) -> Result<BTreeMap<String, OpenApiQuantity>, FlagError> {
    let mut capacity = BTreeMap::new();
    let mut seen = Vec::new();
    for pair in key_values(flag, text) {
        let (resource, value) = pair?;
        check_key(flag, resource)?;
        if seen.contains(&resource) {
            return Err(FlagError::Duplicate {
                flag,
                key: resource.to_owned(),
            });
        }
        seen.push(resource);
        let quantity = Quantity::parse(value).map_err(|e| FlagError::Quantity {
            flag,
            resource: resource.to_owned(),
            value: value.to_owned(),
            reason: e.to_string(),
        })?;
        if quantity.signum() < 0 {
            return Err(FlagError::Quantity {
                flag,
                resource: resource.to_owned(),
                value: value.to_owned(),
                reason: "cannot be negative".into(),
            });
        }
        capacity.insert(resource.to_owned(), OpenApiQuantity(quantity.to_string()));
    }
    Ok(capacity)
}

/// Parses `500ms`, `10s` (a bare number is seconds), `5m` or `1h`, for a flag
/// named in the error. Zero is allowed (a start latency of nothing).
pub fn parse_duration(flag: &'static str, text: &str) -> Result<Duration, FlagError> {
    let error = || FlagError::Duration {
        flag,
        value: text.to_owned(),
    };
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let n: u64 = number.parse().map_err(|_| error())?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        "h" => Ok(Duration::from_secs(n * 3600)),
        _ => Err(error()),
    }
}

/// One node as the agent registers it. The API object is built from this on
/// every start, so what the flags say is what the node shows.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// The Node's name (and its Lease's, and its hostname label).
    pub name: String,
    /// Labels beyond the well-known ones the agent always sets.
    pub labels: BTreeMap<String, String>,
    /// Taints put on the Node when it is first created (as kubelet's
    /// `--register-with-taints`; an existing Node's taints are left alone,
    /// since controllers and users manage them afterwards).
    pub taints: Vec<Taint>,
    /// Capacity: what the machine has.
    pub capacity: BTreeMap<String, OpenApiQuantity>,
    /// Kept back from pods (`--system-reserved`); allocatable is capacity less this.
    pub reserved: BTreeMap<String, OpenApiQuantity>,
    /// The InternalIP the Node reports and pods get as hostIP.
    pub internal_ip: IpAddr,
    /// A number unique among this process's nodes, from which the fallback
    /// pod range and the simulated address are derived.
    pub slot: u32,
    /// The machine a real node runs on (its nodeInfo); `None` for simulated nodes.
    pub host: Option<crate::host::HostFacts>,
    /// The port of the node's kubelet API (logs, exec, port-forward), as
    /// `status.daemonEndpoints` reports it.
    pub kubelet_port: u16,
    /// The node's GPUs, handed to pods that request `nvidia.com/gpu`.
    pub gpus: Vec<crate::gpu::Gpu>,
    /// Where GPU assignments are kept across agent restarts.
    pub gpu_checkpoint: Option<std::path::PathBuf>,
    /// The NVML library to open instead of the driver's `libnvidia-ml.so.1`
    /// (`--nvml-library`): a driver outside the loader's path, or a fake one.
    pub nvml_library: Option<std::path::PathBuf>,
    /// How pods' resolv.conf is composed; `None` (simulated nodes) leaves it to the runtime.
    pub dns: Option<crate::pods::dns::NodeDns>,
    /// Where this node's `local-path` volumes live (`--local-path-dir`),
    /// published on the Node for the provisioner.
    pub local_path_dir: std::path::PathBuf,
}

impl NodeConfig {
    /// A node with the default capacity, no extra labels or taints, and the
    /// address and fallback pod range of `slot`.
    pub fn new(name: impl Into<String>, slot: u32) -> Self {
        Self {
            name: name.into(),
            labels: BTreeMap::new(),
            taints: Vec::new(),
            capacity: parse_capacity("").expect("the default capacity parses"),
            reserved: BTreeMap::new(),
            internal_ip: IpAddr::V4(simulated_address(slot)),
            slot,
            host: None,
            kubelet_port: 10250,
            gpus: Vec::new(),
            gpu_checkpoint: None,
            nvml_library: None,
            dns: None,
            local_path_dir: std::path::PathBuf::from(DEFAULT_LOCAL_PATH_DIR),
        }
    }

    /// Puts the node into pool `pool` (the `berth.dev/pool` label).
    pub fn with_pool(mut self, pool: &str) -> Self {
        self.labels.insert(POOL_LABEL.to_owned(), pool.to_owned());
        self
    }

    /// Every label the Node carries: the well-known ones, then the configured
    /// ones (which may override `kubernetes.io/arch` and `kubernetes.io/os`,
    /// but never the hostname).
    pub fn all_labels(&self) -> BTreeMap<String, String> {
        let mut labels = BTreeMap::from([
            ("kubernetes.io/os".to_owned(), "linux".to_owned()),
            ("kubernetes.io/arch".to_owned(), "amd64".to_owned()),
            ("beta.kubernetes.io/os".to_owned(), "linux".to_owned()),
            ("beta.kubernetes.io/arch".to_owned(), "amd64".to_owned()),
        ]);
        labels.extend(self.labels.clone());
        labels.insert(HOSTNAME_LABEL.to_owned(), self.name.clone());
        labels
    }
}

/// The loopback-range address of simulated node `slot` (127.1.0.1 onwards).
/// Nothing connects to a simulated node, so all that matters is that nodes of
/// one process differ.
pub fn simulated_address(slot: u32) -> Ipv4Addr {
    Ipv4Addr::from(0x7f01_0001u32.wrapping_add(slot % 0x00fe_0000))
}

/// The pod range a node uses until the API gives it a `spec.podCIDR`:
/// `10.128.0.0/24` onwards, one /24 per slot for 32,768 slots. It lies outside
/// the default cluster CIDR (10.42.0.0/16) so it never collides with a range
/// node IPAM hands out; once `spec.podCIDR` is set, new pods use that instead.
pub fn fallback_pod_cidr(slot: u32) -> String {
    let slot = slot % 32_768;
    format!("10.{}.{}.0/24", 128 + slot / 256, slot % 256)
}

/// A hash of a node's name that is the same in every run and on every
/// platform (FNV-1a, unlike the std hasher), for the names and ranges a
/// node derives from its own (fallback pod range, bridge, nftables table).
pub fn name_hash(name: &str) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in name.bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash
}

/// A slot for a node that runs alone in its process (`berth agent`): a hash of
/// its name, so separately started agents rarely share a fallback range.
pub fn slot_for_name(name: &str) -> u32 {
    name_hash(name) % 32_768
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocatable_is_capacity_less_what_is_reserved_never_below_zero() {
        let capacity = parse_capacity("cpu=4,memory=16Gi,pods=110").unwrap();
        let reserved = parse_reserved("cpu=500m,memory=17Gi").unwrap();
        let left = allocatable(&capacity, &reserved);
        assert_eq!(left["cpu"].0, "3500m");
        assert_eq!(left["memory"].0, "0");
        assert_eq!(left["pods"].0, "110");
        assert!(matches!(
            parse_reserved("cpu=-1"),
            Err(FlagError::Quantity {
                flag: "--system-reserved",
                ..
            })
        ));
    }

    #[test]
    fn labels_parse_into_a_map() {
        let labels = parse_labels("disk=ssd, zone=a,,example.com/team=ml").unwrap();
        assert_eq!(labels.len(), 3);
        assert_eq!(labels["disk"], "ssd");
        assert_eq!(labels["example.com/team"], "ml");
        assert!(parse_labels("").unwrap().is_empty());
        assert_eq!(parse_labels("empty=").unwrap()["empty"], "");
    }

    #[test]
    fn label_errors_name_the_flag() {
        let cases = [
            ("disk", "--labels: \"disk\" is not key=value"),
            ("a=1,a=2", "--labels: \"a\" is given twice"),
            ("bad key=1", "--labels: key \"bad key\" is invalid"),
            (
                "k=not valid",
                "--labels: value \"not valid\" of \"k\" is invalid",
            ),
        ];
        for (input, expected) in cases {
            let error = parse_labels(input).unwrap_err().to_string();
            assert!(error.starts_with(expected), "{input:?}: {error}");
        }
    }

    #[test]
    fn pool_names_are_label_values() {
        assert_eq!(parse_pool("gpu").unwrap(), "gpu");
        let error = parse_pool("gpu pool").unwrap_err().to_string();
        assert!(
            error.starts_with("--pool: value \"gpu pool\" of \"berth.dev/pool\" is invalid"),
            "{error}"
        );
    }

    #[test]
    fn taints_parse_with_and_without_values() {
        let taints = parse_taints("nvidia.com/gpu=present:NoSchedule,dedicated:NoExecute").unwrap();
        assert_eq!(taints.len(), 2);
        assert_eq!(taints[0].key, "nvidia.com/gpu");
        assert_eq!(taints[0].value.as_deref(), Some("present"));
        assert_eq!(taints[0].effect, "NoSchedule");
        assert_eq!(taints[1].key, "dedicated");
        assert_eq!(taints[1].value, None);
        assert_eq!(taints[1].effect, "NoExecute");
    }

    #[test]
    fn taint_errors_name_the_flag() {
        let cases = [
            ("k=v", "--taints: taint \"k=v\" must end in :NoSchedule"),
            ("k=v:Never", "--taints: taint \"k=v:Never\" must end in"),
            ("-bad=v:NoSchedule", "--taints: key \"-bad\" is invalid"),
            (
                "k=v v:NoSchedule",
                "--taints: value \"v v\" of \"k\" is invalid",
            ),
            (
                "k=a:NoSchedule,k=b:NoSchedule",
                "--taints: \"k:NoSchedule\" is given twice",
            ),
        ];
        for (input, expected) in cases {
            let error = parse_taints(input).unwrap_err().to_string();
            assert!(error.starts_with(expected), "{input:?}: {error}");
        }
    }

    #[test]
    fn capacity_overrides_defaults_and_adds_extended_resources() {
        let capacity = parse_capacity("cpu=8,memory=32768Mi,nvidia.com/gpu=4").unwrap();
        assert_eq!(capacity["cpu"].0, "8");
        assert_eq!(capacity["memory"].0, "32Gi");
        assert_eq!(capacity["nvidia.com/gpu"].0, "4");
        assert_eq!(capacity["pods"].0, "110");
        assert_eq!(capacity["ephemeral-storage"].0, "100Gi");
        let defaults = parse_capacity("").unwrap();
        assert_eq!(defaults["cpu"].0, "4");
        assert_eq!(defaults["memory"].0, "16Gi");
    }

    #[test]
    fn capacity_errors_name_the_flag() {
        let cases = [
            ("cpu", "--capacity: \"cpu\" is not key=value"),
            ("cpu=lots", "--capacity: cpu=\"lots\" is not a quantity"),
            ("cpu=-1", "--capacity: cpu=\"-1\" is not a quantity"),
            ("cpu=1,cpu=2", "--capacity: \"cpu\" is given twice"),
            ("gpu vendor=1", "--capacity: key \"gpu vendor\" is invalid"),
        ];
        for (input, expected) in cases {
            let error = parse_capacity(input).unwrap_err().to_string();
            assert!(error.starts_with(expected), "{input:?}: {error}");
        }
    }

    #[test]
    fn durations_parse_and_name_the_flag() {
        let flag = "--heartbeat-interval";
        assert_eq!(
            parse_duration(flag, "10s").unwrap(),
            Duration::from_secs(10)
        );
        assert_eq!(parse_duration(flag, "10").unwrap(), Duration::from_secs(10));
        assert_eq!(
            parse_duration(flag, "250ms").unwrap(),
            Duration::from_millis(250)
        );
        assert_eq!(
            parse_duration(flag, "2m").unwrap(),
            Duration::from_secs(120)
        );
        assert_eq!(parse_duration(flag, "0s").unwrap(), Duration::ZERO);
        let error = parse_duration(flag, "soon").unwrap_err().to_string();
        assert!(
            error.starts_with("--heartbeat-interval: \"soon\""),
            "{error}"
        );
        assert!(parse_duration(flag, "5d").is_err());
    }

    #[test]
    fn well_known_labels_are_set_and_hostname_cannot_be_overridden() {
        let mut node = NodeConfig::new("n1", 0).with_pool("gpu");
        node.labels.insert(HOSTNAME_LABEL.into(), "other".into());
        node.labels.insert("disk".into(), "ssd".into());
        let labels = node.all_labels();
        assert_eq!(labels[HOSTNAME_LABEL], "n1");
        assert_eq!(labels["kubernetes.io/os"], "linux");
        assert_eq!(labels["kubernetes.io/arch"], "amd64");
        assert_eq!(labels[POOL_LABEL], "gpu");
        assert_eq!(labels["disk"], "ssd");
    }

    #[test]
    fn slots_give_distinct_addresses_and_ranges() {
        assert_eq!(simulated_address(0), Ipv4Addr::new(127, 1, 0, 1));
        assert_eq!(simulated_address(300), Ipv4Addr::new(127, 1, 1, 45));
        assert_eq!(fallback_pod_cidr(0), "10.128.0.0/24");
        assert_eq!(fallback_pod_cidr(257), "10.129.1.0/24");
        assert_eq!(fallback_pod_cidr(32_767), "10.255.255.0/24");
        assert_eq!(slot_for_name("n1"), slot_for_name("n1"));
        assert_ne!(slot_for_name("n1"), slot_for_name("n2"));
    }
}
