//! A pod's volumes as the runtime provides them: directories (emptyDir,
//! hostPath, and the node paths of bound persistentVolumeClaims) and files the agent writes out from the API (configMap,
//! secret, downwardAPI, and projected volumes combining them), with
//! kubelet's file modes and error messages.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{DownwardAPIVolumeFile, KeyToPath, Pod};

use super::env::{field_value, resource_value};
use super::spec::{config_map_data, secret_data, Lookups, SpecError};
use crate::runtime::{Volume, VolumeFile, VolumeSource};

/// Default file mode of configMap, secret and downwardAPI files (upstream 0644).
const DEFAULT_MODE: u32 = 0o644;

fn mode_of(mode: Option<i32>, default_mode: Option<i32>) -> u32 {
    mode.or(default_mode)
        .map_or(DEFAULT_MODE, |m| m.unsigned_abs() & 0o777)
}

/// The files of a configMap/secret source: every key, or only `items`.
fn key_files(
    data: &BTreeMap<String, Vec<u8>>,
    items: Option<&[KeyToPath]>,
    default_mode: Option<i32>,
    volume: &str,
) -> Result<Vec<VolumeFile>, SpecError> {
    let Some(items) = items else {
        return Ok(data
            .iter()
            .map(|(key, contents)| VolumeFile {
                path: key.clone(),
                contents: contents.clone(),
                mode: mode_of(None, default_mode),
            })
            .collect());
    };
    items
        .iter()
        .map(|item| {
            let contents = data.get(&item.key).ok_or_else(|| {
                SpecError(format!(
                    "MountVolume.SetUp failed for volume {volume:?} : configuration key {:?} not found",
                    item.key
                ))
            })?;
            Ok(VolumeFile {
                path: item.path.clone(),
                contents: contents.clone(),
                mode: mode_of(item.mode, default_mode),
            })
        })
        .collect()
}

/// The data of the ConfigMap or Secret (`kind`, lower case as kubelet's
/// messages write it) named `name`, found or not; empty for a missing
/// optional one.
fn source_data(
    found: Option<BTreeMap<String, Vec<u8>>>,
    kind: &str,
    name: &str,
    optional: Option<bool>,
    volume: &str,
) -> Result<BTreeMap<String, Vec<u8>>, SpecError> {
    match found {
        Some(data) => Ok(data),
        None if optional.unwrap_or(false) => Ok(BTreeMap::new()),
        None => Err(SpecError(format!(
            "MountVolume.SetUp failed for volume {volume:?} : {kind} {name:?} not found"
        ))),
    }
}

fn config_map(
    lookups: &Lookups,
    name: &str,
    optional: Option<bool>,
    volume: &str,
) -> Result<BTreeMap<String, Vec<u8>>, SpecError> {
    let found = lookups.config_maps.get(name).map(config_map_data);
    source_data(found, "configmap", name, optional, volume)
}

fn secret(
    lookups: &Lookups,
    name: &str,
    optional: Option<bool>,
    volume: &str,
) -> Result<BTreeMap<String, Vec<u8>>, SpecError> {
    let found = lookups.secrets.get(name).map(secret_data);
    source_data(found, "secret", name, optional, volume)
}

/// `key="value"` lines, sorted, as kubelet writes whole label and annotation maps.
fn map_lines(map: Option<&BTreeMap<String, String>>) -> String {
    map.into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v:?}\n"))
        .collect()
}

/// The files of a downwardAPI source.
fn downward_files(
    pod: &Pod,
    items: &[DownwardAPIVolumeFile],
    default_mode: Option<i32>,
    host_ip: &str,
    volume: &str,
) -> Result<Vec<VolumeFile>, SpecError> {
    items
        .iter()
        .map(|item| {
            let text = match (&item.field_ref, &item.resource_field_ref) {
                (Some(field), _) => match field.field_path.as_str() {
                    "metadata.labels" => map_lines(pod.metadata.labels.as_ref()),
                    "metadata.annotations" => map_lines(pod.metadata.annotations.as_ref()),
                    path => field_value(pod, path, host_ip).ok_or_else(|| {
                        SpecError(format!("volume {volume:?}: unsupported fieldRef {path:?}"))
                    })?,
                },
                (None, Some(resource)) => resource_value(pod, resource, None).to_string(),
                (None, None) => String::new(),
            };
            Ok(VolumeFile {
                path: item.path.clone(),
                contents: text.into_bytes(),
                mode: mode_of(item.mode, default_mode),
            })
        })
        .collect()
}

/// Whether the pod's volume `name` is read-only as a whole (a
/// `persistentVolumeClaim` volume with `readOnly`), so every mount of it is.
pub fn is_read_only_volume(pod: &Pod, name: &str) -> bool {
    pod.spec
        .iter()
        .flat_map(|s| s.volumes.iter().flatten())
        .filter(|v| v.name == name)
        .filter_map(|v| v.persistent_volume_claim.as_ref())
        .any(|c| c.read_only == Some(true))
}

/// Every volume of `pod`, with file contents and claims resolved from `lookups`.
pub fn volumes(pod: &Pod, lookups: &Lookups, host_ip: &str) -> Result<Vec<Volume>, SpecError> {
    let mut out = Vec::new();
    let Some(spec) = pod.spec.as_ref() else {
        return Ok(out);
    };
    for volume in spec.volumes.iter().flatten() {
        let name = volume.name.as_str();
        let source = if volume.empty_dir.is_some() {
            VolumeSource::EmptyDir
        } else if let Some(host) = &volume.host_path {
            if host.type_.as_deref() == Some("DirectoryOrCreate") {
                std::fs::create_dir_all(&host.path).map_err(|e| {
                    SpecError(format!(
                        "MountVolume.SetUp failed for volume {name:?} : {e}"
                    ))
                })?;
            }
            VolumeSource::HostPath(host.path.clone())
        } else if let Some(claim) = &volume.persistent_volume_claim {
            let mount = crate::volumes::claims::resolve_volume(
                pod,
                name,
                &claim.claim_name,
                &lookups.persistent_volume_claims,
                &lookups.persistent_volumes,
            )
            .map_err(|reason| {
                SpecError(format!(
                    "volume {name:?}: error processing PVC {}/{}: {reason}",
                    pod.metadata.namespace.as_deref().unwrap_or_default(),
                    claim.claim_name
                ))
            })?;
            VolumeSource::HostPath(mount.path)
        } else if let Some(source) = &volume.config_map {
            let data = config_map(lookups, &source.name, source.optional, name)?;
            VolumeSource::Files(key_files(
                &data,
                source.items.as_deref(),
                source.default_mode,
                name,
            )?)
        } else if let Some(source) = &volume.secret {
            let secret_name = source.secret_name.clone().unwrap_or_default();
            let data = secret(lookups, &secret_name, source.optional, name)?;
            VolumeSource::Files(key_files(
                &data,
                source.items.as_deref(),
                source.default_mode,
                name,
            )?)
        } else if let Some(source) = &volume.downward_api {
            let items = source.items.as_deref().unwrap_or_default();
            VolumeSource::Files(downward_files(
                pod,
                items,
                source.default_mode,
                host_ip,
                name,
            )?)
        } else if let Some(projected) = &volume.projected {
            let mode = projected.default_mode;
            let mut files = Vec::new();
            for part in projected.sources.iter().flatten() {
                if let Some(c) = &part.config_map {
                    let data = config_map(lookups, &c.name, c.optional, name)?;
                    files.extend(key_files(&data, c.items.as_deref(), mode, name)?);
                } else if let Some(s) = &part.secret {
                    let data = secret(lookups, &s.name, s.optional, name)?;
                    files.extend(key_files(&data, s.items.as_deref(), mode, name)?);
                } else if let Some(d) = &part.downward_api {
                    let items = d.items.as_deref().unwrap_or_default();
                    files.extend(downward_files(pod, items, mode, host_ip, name)?);
                } else {
                    return Err(SpecError(format!(
                        "volume {name:?}: only configMap, secret and downwardAPI projections are supported by berth's agent"
                    )));
                }
            }
            VolumeSource::Files(files)
        } else {
            return Err(SpecError(format!(
                "volume {name:?}: only emptyDir, hostPath, persistentVolumeClaim, configMap, secret, downwardAPI and projected volumes are supported by berth's agent"
            )));
        };
        out.push(Volume {
            name: volume.name.clone(),
            source,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
    use serde_json::json;

    #[test]
    fn downward_api_and_projected_volumes_become_files() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "shop", "uid": "u1", "labels": {"app": "web", "tier": "front"}},
            "spec": {
                "containers": [{"name": "app", "image": "web:1", "resources": {"limits": {"memory": "64Mi"}}}],
                "volumes": [
                    {"name": "info", "downwardAPI": {"items": [
                        {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
                        {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}},
                        {"path": "mem", "resourceFieldRef": {"containerName": "app", "resource": "limits.memory", "divisor": "1Mi"}}
                    ]}},
                    {"name": "all", "projected": {"defaultMode": 0o440, "sources": [
                        {"configMap": {"name": "settings"}},
                        {"downwardAPI": {"items": [{"path": "ns", "fieldRef": {"fieldPath": "metadata.namespace"}}]}}
                    ]}}
                ]
            }
        }))
        .unwrap();
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
        let resolved = volumes(&pod, &lookups, "10.0.0.1").unwrap();
        let VolumeSource::Files(info) = &resolved[0].source else {
            panic!()
        };
        assert_eq!(info[0].contents, b"app=\"web\"\ntier=\"front\"\n");
        assert_eq!(info[1].contents, b"web");
        assert_eq!(info[2].contents, b"64");
        let VolumeSource::Files(all) = &resolved[1].source else {
            panic!()
        };
        assert_eq!(
            (
                all[0].path.as_str(),
                all[0].contents.as_slice(),
                all[0].mode
            ),
            ("mode", &b"fast"[..], 0o440)
        );
        assert_eq!(
            (all[1].path.as_str(), all[1].contents.as_slice()),
            ("ns", &b"shop"[..])
        );
        assert!(volumes(&pod, &Lookups::default(), "10.0.0.1")
            .unwrap_err()
            .0
            .contains("configmap \"settings\" not found"));
    }

    #[test]
    fn bound_claims_become_their_volume_path_and_read_only_claims_bind_read_only() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "db", "namespace": "shop", "uid": "u1"},
            "spec": {"nodeName": "n1",
                "containers": [{"name": "db", "image": "db:1", "volumeMounts": [
                    {"name": "data", "mountPath": "/data"},
                    {"name": "seed", "mountPath": "/seed", "subPath": "v1"}]}],
                "volumes": [
                    {"name": "data", "persistentVolumeClaim": {"claimName": "data-db"}},
                    {"name": "seed", "persistentVolumeClaim": {"claimName": "seed", "readOnly": true}}
                ]}
        }))
        .unwrap();
        let claim = |name: &str, volume: &str| -> (String, PersistentVolumeClaim) {
            let value = json!({"metadata": {"name": name, "namespace": "shop"}, "spec": {"volumeName": volume}});
            (name.to_owned(), serde_json::from_value(value).unwrap())
        };
        let volume =
            |name: &str, claim: &str, source: serde_json::Value| -> (String, PersistentVolume) {
                let mut spec = json!({"claimRef": {"namespace": "shop", "name": claim}});
                spec.as_object_mut()
                    .unwrap()
                    .extend(source.as_object().unwrap().clone());
                let value = json!({"metadata": {"name": name}, "spec": spec});
                (name.to_owned(), serde_json::from_value(value).unwrap())
            };
        let lookups = Lookups {
            persistent_volume_claims: BTreeMap::from([
                claim("data-db", "pv-a"),
                claim("seed", "pv-b"),
            ]),
            persistent_volumes: BTreeMap::from([
                volume("pv-a", "data-db", json!({"local": {"path": "/lp/a"}})),
                volume("pv-b", "seed", json!({"hostPath": {"path": "/srv/seed"}})),
            ]),
            ..Lookups::default()
        };
        let config = super::super::spec::sandbox_config(&pod, &lookups, "10.0.0.1").unwrap();
        assert_eq!(
            config.volumes[0].source,
            VolumeSource::HostPath("/lp/a".into())
        );
        assert_eq!(
            config.volumes[1].source,
            VolumeSource::HostPath("/srv/seed".into())
        );
        let mounts = &config.containers[0].mounts;
        assert!(!mounts[0].read_only);
        assert!(
            mounts[1].read_only,
            "a readOnly claim volume binds read-only"
        );
        assert_eq!(mounts[1].sub_path.as_deref(), Some("v1"));

        let unbound = Lookups {
            persistent_volume_claims: BTreeMap::from([claim("data-db", ""), claim("seed", "pv-b")]),
            ..lookups
        };
        let error = volumes(&pod, &unbound, "10.0.0.1").unwrap_err();
        assert_eq!(
            error.0,
            "volume \"data\": error processing PVC shop/data-db: PVC is not bound"
        );
    }
}
