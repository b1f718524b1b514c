//! Pod → [`PodSandboxConfig`], pure: what the runtime should run for a Pod,
//! with environment and volume contents resolved from the ConfigMaps and
//! Secrets the agent fetched beforehand ([`Lookups`]). Errors name what is
//! missing in kubelet's words, so the pod's status can show them.

use std::collections::BTreeMap;

use berth_api::quantity::Quantity;

use super::env::{environment, expand};
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, PersistentVolume, PersistentVolumeClaim, Pod, PodSpec, Secret,
};

use crate::runtime::{
    ContainerConfig, Mount, PodSandboxConfig, PullPolicy, RegistryAuth, Resources, RestartPolicy,
};

/// The ConfigMaps and Secrets a pod refers to, by name, as fetched from its
/// namespace; a name missing here does not exist.
#[derive(Debug, Clone, Default)]
pub struct Lookups {
    /// ConfigMaps by name.
    pub config_maps: BTreeMap<String, ConfigMap>,
    /// Secrets by name.
    pub secrets: BTreeMap<String, Secret>,
    /// The PersistentVolumeClaims the pod's volumes name, by name.
    pub persistent_volume_claims: BTreeMap<String, PersistentVolumeClaim>,
    /// The PersistentVolumes those claims are bound to, by name.
    pub persistent_volumes: BTreeMap<String, PersistentVolume>,
}

/// Why a pod's spec cannot be turned into containers yet (kubelet's
/// `CreateContainerConfigError` and failed mounts).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SpecError(pub String);

/// The ConfigMap and Secret names `pod` refers to (env, envFrom, volumes),
/// so the agent knows what to fetch.
pub fn referenced_names(pod: &Pod) -> (Vec<String>, Vec<String>) {
    let mut config_maps = Vec::new();
    let mut secrets = Vec::new();
    let Some(spec) = pod.spec.as_ref() else {
        return (config_maps, secrets);
    };
    for container in all_containers(spec) {
        for env in container.env.iter().flatten() {
            let source = env.value_from.as_ref();
            if let Some(r) = source.and_then(|s| s.config_map_key_ref.as_ref()) {
                config_maps.push(r.name.clone());
            }
            if let Some(r) = source.and_then(|s| s.secret_key_ref.as_ref()) {
                secrets.push(r.name.clone());
            }
        }
        for from in container.env_from.iter().flatten() {
            if let Some(r) = &from.config_map_ref {
                config_maps.push(r.name.clone());
            }
            if let Some(r) = &from.secret_ref {
                secrets.push(r.name.clone());
            }
        }
    }
    for pull in spec.image_pull_secrets.iter().flatten() {
        secrets.push(pull.name.clone());
    }
    for volume in spec.volumes.iter().flatten() {
        if let Some(c) = &volume.config_map {
            config_maps.push(c.name.clone());
        }
        if let Some(name) = volume.secret.as_ref().and_then(|s| s.secret_name.clone()) {
            secrets.push(name);
        }
    }
    config_maps.sort();
    config_maps.dedup();
    secrets.sort();
    secrets.dedup();
    (config_maps, secrets)
}

pub(super) fn all_containers(spec: &PodSpec) -> impl Iterator<Item = &Container> {
    spec.init_containers
        .iter()
        .flatten()
        .chain(spec.containers.iter())
}

/// What the runtime should run for `pod` on the node `node_name` at `host_ip`.
pub fn sandbox_config(
    pod: &Pod,
    lookups: &Lookups,
    host_ip: &str,
) -> Result<PodSandboxConfig, SpecError> {
    let spec = pod.spec.clone().unwrap_or_default();
    let meta = &pod.metadata;
    let name = meta.name.clone().unwrap_or_default();
    let containers = |list: &[Container]| {
        list.iter()
            .map(|c| container_config(pod, c, lookups, host_ip))
            .collect::<Result<Vec<_>, _>>()
    };
    Ok(PodSandboxConfig {
        uid: meta.uid.clone().unwrap_or_default(),
        namespace: meta.namespace.clone().unwrap_or_default(),
        name: name.clone(),
        init_containers: containers(spec.init_containers.as_deref().unwrap_or_default())?,
        containers: containers(&spec.containers)?,
        previous_ip: pod
            .status
            .as_ref()
            .and_then(|s| s.pod_ip.as_deref())
            .and_then(|ip| ip.parse().ok()),
        restart_policy: RestartPolicy::from_spec(spec.restart_policy.as_deref()),
        host_network: spec.host_network.unwrap_or(false),
        hostname: spec.hostname.clone().unwrap_or(name),
        labels: meta.labels.clone().unwrap_or_default(),
        annotations: meta.annotations.clone().unwrap_or_default(),
        volumes: super::volumes::volumes(pod, lookups, host_ip)?,
        registry_auths: registry_auths(&spec, lookups),
        dns: None,
    })
}

/// The registry credentials of the pod's `imagePullSecrets`
/// (`kubernetes.io/dockerconfigjson` or the older `dockercfg`); secrets
/// that are missing or malformed are skipped, as kubelet does, and the pull
/// then fails with the registry's own error.
fn registry_auths(spec: &PodSpec, lookups: &Lookups) -> Vec<RegistryAuth> {
    let mut auths = Vec::new();
    for pull in spec.image_pull_secrets.iter().flatten() {
        let Some(secret) = lookups.secrets.get(&pull.name) else {
            continue;
        };
        let data = secret_data(secret);
        let parsed: Option<serde_json::Value> = data
            .get(".dockerconfigjson")
            .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(bytes).ok())
            .and_then(|v| v.get("auths").cloned())
            .or_else(|| {
                data.get(".dockercfg")
                    .and_then(|bytes| serde_json::from_slice(bytes).ok())
            });
        let Some(serde_json::Value::Object(entries)) = parsed else {
            continue;
        };
        for (server, entry) in entries {
            let field = |name: &str| {
                entry
                    .get(name)
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_owned()
            };
            auths.push(RegistryAuth {
                server: registry_host(&server),
                username: field("username"),
                password: field("password"),
                auth: field("auth"),
            });
        }
    }
    auths
}

/// The `host[:port]` of a registry as docker config keys write it
/// (`https://index.docker.io/v1/`, `registry.example.com:5000`).
pub fn registry_host(server: &str) -> String {
    let bare = server
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let host = bare.split('/').next().unwrap_or(bare);
    match host {
        "index.docker.io" | "registry-1.docker.io" => "docker.io".to_owned(),
        other => other.to_owned(),
    }
}

/// The registry an image reference pulls from (`docker.io` when it names none).
pub fn image_registry(image: &str) -> String {
    match image.split_once('/') {
        Some((host, _)) if host.contains('.') || host.contains(':') || host == "localhost" => {
            registry_host(host)
        }
        _ => "docker.io".to_owned(),
    }
}

/// Every key of a ConfigMap (text and binary) with its bytes.
pub(super) fn config_map_data(map: &ConfigMap) -> BTreeMap<String, Vec<u8>> {
    let mut data: BTreeMap<String, Vec<u8>> = map
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.clone().into_bytes()))
        .collect();
    data.extend(
        map.binary_data
            .iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.0.clone())),
    );
    data
}

/// Every key of a Secret (`data` and `stringData`) with its bytes.
pub(super) fn secret_data(secret: &Secret) -> BTreeMap<String, Vec<u8>> {
    let mut data: BTreeMap<String, Vec<u8>> = secret
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.0.clone()))
        .collect();
    data.extend(
        secret
            .string_data
            .iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.clone().into_bytes())),
    );
    data
}

fn container_config(
    pod: &Pod,
    container: &Container,
    lookups: &Lookups,
    host_ip: &str,
) -> Result<ContainerConfig, SpecError> {
    let env = environment(pod, container, lookups, host_ip)?;
    let expand_all = |list: &Option<Vec<String>>| {
        list.iter()
            .flatten()
            .map(|s| expand(s, &env))
            .collect::<Vec<_>>()
    };
    let image = container.image.clone().unwrap_or_default();
    Ok(ContainerConfig {
        name: container.name.clone(),
        pull_policy: pull_policy(container.image_pull_policy.as_deref(), &image),
        image,
        command: expand_all(&container.command),
        args: expand_all(&container.args),
        working_dir: container.working_dir.clone().filter(|d| !d.is_empty()),
        mounts: container
            .volume_mounts
            .iter()
            .flatten()
            .map(|m| Mount {
                volume: m.name.clone(),
                container_path: m.mount_path.clone(),
                sub_path: m.sub_path.clone().filter(|p| !p.is_empty()),
                read_only: m.read_only.unwrap_or(false)
                    || super::volumes::is_read_only_volume(pod, &m.name),
            })
            .collect(),
        resources: resources(container),
        env,
        devices: Vec::new(),
    })
}

/// Upstream's default: `Always` for `:latest` or untagged images, else `IfNotPresent`.
fn pull_policy(policy: Option<&str>, image: &str) -> PullPolicy {
    match policy {
        Some("Always") => PullPolicy::Always,
        Some("Never") => PullPolicy::Never,
        Some("IfNotPresent") => PullPolicy::IfNotPresent,
        _ => {
            let name = image.split('@').next().unwrap_or(image);
            let last = name.rsplit('/').next().unwrap_or(name);
            match last.split_once(':') {
                _ if image.contains('@') => PullPolicy::IfNotPresent,
                Some((_, "latest")) | None => PullPolicy::Always,
                Some(_) => PullPolicy::IfNotPresent,
            }
        }
    }
}

fn resources(container: &Container) -> Resources {
    let get = |list: Option<
        &BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>,
    >,
               name: &str| {
        list.and_then(|l| l.get(name))
            .and_then(|q| Quantity::parse(&q.0).ok())
    };
    let requests = container
        .resources
        .as_ref()
        .and_then(|r| r.requests.as_ref());
    let limits = container.resources.as_ref().and_then(|r| r.limits.as_ref());
    let millis = |q: Option<Quantity>| q.and_then(|q| u64::try_from(q.milli_value()).ok());
    Resources {
        // Upstream: a limit without a request requests the limit.
        cpu_request_millis: millis(get(requests, "cpu").or_else(|| get(limits, "cpu"))),
        cpu_limit_millis: millis(get(limits, "cpu")),
        memory_limit_bytes: get(limits, "memory").and_then(|q| u64::try_from(q.value()).ok()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::{VolumeFile, VolumeSource};
    use serde_json::json;

    fn pod(spec: serde_json::Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "default", "uid": "u1", "labels": {"app": "web"}},
            "spec": spec,
            "status": {"podIP": "10.42.0.9"}
        }))
        .unwrap()
    }

    #[test]
    fn containers_commands_and_previous_ip_are_taken() {
        let pod = pod(json!({
            "restartPolicy": "OnFailure",
            "initContainers": [{"name": "setup", "image": "busybox", "command": ["sh", "-c", "echo $(GREETING)"],
                "env": [{"name": "GREETING", "value": "hi"}]}],
            "containers": [{"name": "app", "image": "web:1", "args": ["-p", "80"], "workingDir": "/www"}]
        }));
        let config = sandbox_config(&pod, &Lookups::default(), "10.0.0.1").unwrap();
        assert_eq!(config.uid, "u1");
        assert_eq!(config.hostname, "web");
        assert_eq!(config.restart_policy, RestartPolicy::OnFailure);
        assert_eq!(
            config.init_containers[0].command,
            ["sh", "-c", "echo hi"],
            "$(VAR) expands"
        );
        assert_eq!(config.init_containers[0].pull_policy, PullPolicy::Always);
        assert_eq!(config.containers[0].pull_policy, PullPolicy::IfNotPresent);
        assert_eq!(config.containers[0].working_dir.as_deref(), Some("/www"));
        assert_eq!(config.previous_ip, Some("10.42.0.9".parse().unwrap()));
        assert_eq!(config.labels["app"], "web");
    }

    #[test]
    fn env_resolves_config_maps_secrets_and_the_downward_api() {
        let pod = pod(json!({
            "nodeName": "n1",
            "containers": [{"name": "app", "image": "web:1",
                "resources": {"limits": {"memory": "64Mi", "cpu": "500m"}},
                "envFrom": [{"configMapRef": {"name": "settings"}, "prefix": "S_"}],
                "env": [
                    {"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "mode"}}},
                    {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}},
                    {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                    {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
                    {"name": "HOST", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}},
                    {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}},
                    {"name": "GONE", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "nope", "optional": true}}},
                    {"name": "BOTH", "value": "$(MODE)-$(POD)-$$(POD)-$(UNKNOWN)"}
                ]}]
        }));
        let lookups = Lookups {
            config_maps: BTreeMap::from([(
                "settings".into(),
                serde_json::from_value(
                    json!({"metadata": {"name": "settings"}, "data": {"mode": "fast"}}),
                )
                .unwrap(),
            )]),
            secrets: BTreeMap::from([(
                "creds".into(),
                serde_json::from_value(
                    json!({"metadata": {"name": "creds"}, "data": {"token": "czNjcjN0"}}),
                )
                .unwrap(),
            )]),
            ..Lookups::default()
        };
        let config = sandbox_config(&pod, &lookups, "10.0.0.1").unwrap();
        let env: BTreeMap<_, _> = config.containers[0].env.iter().cloned().collect();
        assert_eq!(env["S_mode"], "fast");
        assert_eq!(env["MODE"], "fast");
        assert_eq!(env["TOKEN"], "s3cr3t");
        assert_eq!(env["POD"], "web");
        assert_eq!(env["APP"], "web");
        assert_eq!(env["HOST"], "10.0.0.1");
        assert_eq!(env["MEM"], "64");
        assert!(!env.contains_key("GONE"));
        assert_eq!(env["BOTH"], "fast-web-$(POD)-$(UNKNOWN)");
        let resources = config.containers[0].resources;
        assert_eq!(resources.memory_limit_bytes, Some(64 << 20));
        assert_eq!(resources.cpu_limit_millis, Some(500));
        assert_eq!(resources.cpu_request_millis, Some(500));

        let missing = sandbox_config(&pod, &Lookups::default(), "10.0.0.1").unwrap_err();
        assert_eq!(missing.0, "configmap \"settings\" not found");
    }

    #[test]
    fn volumes_become_directories_and_files() {
        let pod = pod(json!({
            "containers": [{"name": "app", "image": "web:1",
                "volumeMounts": [{"name": "www", "mountPath": "/www"}, {"name": "conf", "mountPath": "/etc/app", "readOnly": true}]}],
            "volumes": [
                {"name": "www", "emptyDir": {}},
                {"name": "conf", "configMap": {"name": "settings", "items": [{"key": "mode", "path": "sub/mode.txt", "mode": 0o600}]}}
            ]
        }));
        let lookups = Lookups {
            config_maps: BTreeMap::from([(
                "settings".into(),
                serde_json::from_value(
                    json!({"metadata": {"name": "settings"}, "data": {"mode": "fast"}}),
                )
                .unwrap(),
            )]),
            ..Lookups::default()
        };
        assert_eq!(referenced_names(&pod).0, ["settings"]);
        let config = sandbox_config(&pod, &lookups, "10.0.0.1").unwrap();
        assert_eq!(config.volumes[0].source, VolumeSource::EmptyDir);
        assert_eq!(
            config.volumes[1].source,
            VolumeSource::Files(vec![VolumeFile {
                path: "sub/mode.txt".into(),
                contents: b"fast".to_vec(),
                mode: 0o600
            }])
        );
        assert!(config.containers[0].mounts[1].read_only);
        let error = sandbox_config(&pod, &Lookups::default(), "10.0.0.1").unwrap_err();
        assert!(
            error.0.contains("configmap \"settings\" not found"),
            "{error}"
        );
    }

    #[test]
    fn image_pull_secrets_become_registry_credentials() {
        let pod = pod(json!({
            "imagePullSecrets": [{"name": "regcred"}, {"name": "missing"}],
            "containers": [{"name": "app", "image": "registry.example.com:5000/team/app:1"}]
        }));
        assert_eq!(referenced_names(&pod).1, ["missing", "regcred"]);
        let config = json!({"auths": {"https://registry.example.com:5000/v1/": {"username": "u", "password": "p", "auth": "dTpw"}}});
        let encoded = base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            config.to_string(),
        );
        let lookups = Lookups {
            secrets: BTreeMap::from([(
                "regcred".into(),
                serde_json::from_value(json!({"metadata": {"name": "regcred"}, "type": "kubernetes.io/dockerconfigjson", "data": {".dockerconfigjson": encoded}})).unwrap(),
            )]),
            ..Lookups::default()
        };
        let config = sandbox_config(&pod, &lookups, "10.0.0.1").unwrap();
        assert_eq!(
            config.registry_auths,
            [RegistryAuth {
                server: "registry.example.com:5000".into(),
                username: "u".into(),
                password: "p".into(),
                auth: "dTpw".into()
            }]
        );
        assert_eq!(
            image_registry("registry.example.com:5000/team/app:1"),
            "registry.example.com:5000"
        );
        assert_eq!(image_registry("nginx:1.27"), "docker.io");
        assert_eq!(image_registry("library/nginx"), "docker.io");
        assert_eq!(registry_host("https://index.docker.io/v1/"), "docker.io");
    }
}
