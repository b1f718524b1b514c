//! Runtime configs → CRI messages, pure: the sandbox and container configs
//! kubelet would send for the same pod, with its labels so the agent can
//! find a pod's sandboxes and containers again by UID after a restart.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use k8s_cri::v1 as cri;

use crate::runtime::{ContainerConfig, PodSandboxConfig, Resources, VolumeSource};

/// Label with the pod's UID on every sandbox and container.
pub const POD_UID: &str = "io.kubernetes.pod.uid";
/// Label with the pod's name.
pub const POD_NAME: &str = "io.kubernetes.pod.name";
/// Label with the pod's namespace.
pub const POD_NAMESPACE: &str = "io.kubernetes.pod.namespace";
/// Label with the container's name in the pod spec.
pub const CONTAINER_NAME: &str = "io.kubernetes.container.name";
/// Label marking init containers, so the two lists never mix.
pub const CONTAINER_KIND: &str = "berth.dev/container-kind";

/// CRI's NamespaceMode values.
const NAMESPACE_POD: i32 = 0;
const NAMESPACE_NODE: i32 = 2;

/// The directory of a pod's volumes and other files on the node.
pub fn pod_dir(data_dir: &Path, uid: &str) -> PathBuf {
    data_dir.join("pods").join(uid)
}

/// The host directory backing `volume` of pod `uid` (emptyDir and files).
pub fn volume_dir(data_dir: &Path, uid: &str, volume: &str) -> PathBuf {
    pod_dir(data_dir, uid).join("volumes").join(volume)
}

/// The directory of a pod's container logs (`/var/log/pods/NS_NAME_UID` in kubelet).
pub fn log_dir(data_dir: &Path, pod: &PodSandboxConfig) -> PathBuf {
    data_dir
        .join("logs")
        .join(format!("{}_{}_{}", pod.namespace, pod.name, pod.uid))
}

/// A container's log path relative to the pod's log directory.
pub fn log_path(container: &str, attempt: u32) -> String {
    format!("{container}/{attempt}.log")
}

fn pod_labels(pod: &PodSandboxConfig) -> HashMap<String, String> {
    HashMap::from([
        (POD_UID.to_owned(), pod.uid.clone()),
        (POD_NAME.to_owned(), pod.name.clone()),
        (POD_NAMESPACE.to_owned(), pod.namespace.clone()),
    ])
}

/// The sandbox for `pod`, its `attempt`-th.
pub fn sandbox_config(
    data_dir: &Path,
    pod: &PodSandboxConfig,
    attempt: u32,
) -> cri::PodSandboxConfig {
    let mut labels: HashMap<String, String> = pod.labels.clone().into_iter().collect();
    labels.extend(pod_labels(pod));
    let network = if pod.host_network {
        NAMESPACE_NODE
    } else {
        NAMESPACE_POD
    };
    cri::PodSandboxConfig {
        metadata: Some(cri::PodSandboxMetadata {
            name: pod.name.clone(),
            uid: pod.uid.clone(),
            namespace: pod.namespace.clone(),
            attempt,
        }),
        // A host-network sandbox keeps the node's hostname.
        hostname: if pod.host_network {
            String::new()
        } else {
            pod.hostname.clone()
        },
        log_directory: log_dir(data_dir, pod).display().to_string(),
        dns_config: pod.dns.as_ref().map(|dns| cri::DnsConfig {
            servers: dns.servers.clone(),
            searches: dns.searches.clone(),
            options: dns.options.clone(),
        }),
        labels,
        linux: Some(cri::LinuxPodSandboxConfig {
            security_context: Some(cri::LinuxSandboxSecurityContext {
                namespace_options: Some(cri::NamespaceOption {
                    network,
                    pid: 1, // CONTAINER: each container its own PID namespace, as upstream's default
                    ipc: NAMESPACE_POD,
                    ..cri::NamespaceOption::default()
                }),
                ..cri::LinuxSandboxSecurityContext::default()
            }),
            ..cri::LinuxPodSandboxConfig::default()
        }),
        ..cri::PodSandboxConfig::default()
    }
}

/// Kubelet's cgroup values: shares from the request (at least 2), a CFS
/// quota from the limit over a 100 ms period, the memory limit as is.
pub fn linux_resources(resources: &Resources) -> cri::LinuxContainerResources {
    let shares = resources
        .cpu_request_millis
        .map_or(2, |m| (m * 1024 / 1000).max(2));
    let (period, quota) = match resources.cpu_limit_millis {
        Some(limit) => (100_000, (limit * 100).max(1_000)),
        None => (0, 0),
    };
    cri::LinuxContainerResources {
        cpu_period: period,
        cpu_quota: i64::try_from(quota).unwrap_or(i64::MAX),
        cpu_shares: i64::try_from(shares).unwrap_or(i64::MAX),
        memory_limit_in_bytes: resources
            .memory_limit_bytes
            .map_or(0, |b| i64::try_from(b).unwrap_or(i64::MAX)),
        ..cri::LinuxContainerResources::default()
    }
}

/// The host path a mount of `volume` (with an optional sub-path) binds, or
/// `None` when the pod has no such volume.
pub fn mount_source(
    data_dir: &Path,
    pod: &PodSandboxConfig,
    volume: &str,
    sub_path: Option<&str>,
) -> Option<PathBuf> {
    let found = pod.volumes.iter().find(|v| v.name == volume)?;
    let root = match &found.source {
        VolumeSource::HostPath(path) => PathBuf::from(path),
        VolumeSource::EmptyDir | VolumeSource::Files(_) => volume_dir(data_dir, &pod.uid, volume),
    };
    Some(match sub_path {
        Some(sub) => root.join(sub.trim_start_matches('/')),
        None => root,
    })
}

/// The `attempt`-th run of `container`, `init` for init containers.
pub fn container_config(
    data_dir: &Path,
    pod: &PodSandboxConfig,
    container: &ContainerConfig,
    init: bool,
    attempt: u32,
) -> cri::ContainerConfig {
    let mut labels = pod_labels(pod);
    labels.insert(CONTAINER_NAME.to_owned(), container.name.clone());
    labels.insert(
        CONTAINER_KIND.to_owned(),
        if init { "init" } else { "regular" }.to_owned(),
    );
    let mounts = container
        .mounts
        .iter()
        .filter_map(|m| {
            Some(cri::Mount {
                container_path: m.container_path.clone(),
                host_path: mount_source(data_dir, pod, &m.volume, m.sub_path.as_deref())?
                    .display()
                    .to_string(),
                readonly: m.read_only,
                ..cri::Mount::default()
            })
        })
        .collect();
    cri::ContainerConfig {
        metadata: Some(cri::ContainerMetadata {
            name: container.name.clone(),
            attempt,
        }),
        image: Some(cri::ImageSpec {
            image: container.image.clone(),
            user_specified_image: container.image.clone(),
            ..cri::ImageSpec::default()
        }),
        command: container.command.clone(),
        args: container.args.clone(),
        working_dir: container.working_dir.clone().unwrap_or_default(),
        envs: container
            .env
            .iter()
            .map(|(key, value)| cri::KeyValue {
                key: key.clone(),
                value: value.clone(),
            })
            .collect(),
        mounts,
        devices: container
            .devices
            .iter()
            .map(|path| cri::Device {
                container_path: path.clone(),
                host_path: path.clone(),
                permissions: "rwm".to_owned(),
            })
            .collect(),
        annotations: HashMap::from([(
            "io.kubernetes.container.restartCount".to_owned(),
            attempt.to_string(),
        )]),
        labels,
        log_path: log_path(&container.name, attempt),
        linux: Some(cri::LinuxContainerConfig {
            resources: Some(linux_resources(&container.resources)),
            security_context: Some(cri::LinuxContainerSecurityContext::default()),
        }),
        ..cri::ContainerConfig::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::{Mount, Volume};

    fn pod() -> PodSandboxConfig {
        PodSandboxConfig {
            uid: "u1".into(),
            namespace: "default".into(),
            name: "web".into(),
            hostname: "web".into(),
            volumes: vec![Volume {
                name: "www".into(),
                source: VolumeSource::EmptyDir,
            }],
            ..PodSandboxConfig::default()
        }
    }

    #[test]
    fn sandboxes_carry_the_pod_identity_and_log_directory() {
        let config = sandbox_config(Path::new("/d"), &pod(), 2);
        assert_eq!(config.metadata.as_ref().unwrap().attempt, 2);
        assert_eq!(config.labels[POD_UID], "u1");
        assert_eq!(config.log_directory, "/d/logs/default_web_u1");
        assert_eq!(config.hostname, "web");
        let mut host = pod();
        host.host_network = true;
        let config = sandbox_config(Path::new("/d"), &host, 0);
        assert_eq!(config.hostname, "");
        let ns = config
            .linux
            .unwrap()
            .security_context
            .unwrap()
            .namespace_options
            .unwrap();
        assert_eq!(ns.network, NAMESPACE_NODE);
    }

    #[test]
    fn containers_get_mounts_env_resources_and_their_log_path() {
        let container = ContainerConfig {
            name: "app".into(),
            image: "web:1".into(),
            env: vec![("A".into(), "1".into())],
            mounts: vec![Mount {
                volume: "www".into(),
                container_path: "/www".into(),
                sub_path: Some("site".into()),
                read_only: true,
            }],
            resources: Resources {
                cpu_request_millis: Some(250),
                cpu_limit_millis: Some(500),
                memory_limit_bytes: Some(64 << 20),
            },
            ..ContainerConfig::default()
        };
        let config = container_config(Path::new("/d"), &pod(), &container, false, 3);
        assert_eq!(config.log_path, "app/3.log");
        assert_eq!(config.labels[CONTAINER_NAME], "app");
        assert_eq!(config.envs[0].key, "A");
        assert_eq!(config.mounts[0].host_path, "/d/pods/u1/volumes/www/site");
        assert!(config.mounts[0].readonly);
        let resources = config.linux.unwrap().resources.unwrap();
        assert_eq!(resources.cpu_shares, 256);
        assert_eq!(resources.cpu_quota, 50_000);
        assert_eq!(resources.cpu_period, 100_000);
        assert_eq!(resources.memory_limit_in_bytes, 64 << 20);
        assert_eq!(linux_resources(&Resources::default()).cpu_shares, 2);
    }
}
