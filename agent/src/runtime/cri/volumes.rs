//! A pod's files on the node: its volume directories (emptyDir, and the
//! files of configMap and secret volumes written out), created before the
//! sandbox starts and removed with the pod, along with its logs.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path};

use super::translate;
use crate::runtime::{PodSandboxConfig, RuntimeError, VolumeSource};

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> RuntimeError + '_ {
    move |e| RuntimeError::Backend(format!("{}: {e}", path.display()))
}

/// Whether `path` stays inside the directory it is joined to (no `..`, not absolute).
fn is_contained(path: &str) -> bool {
    Path::new(path)
        .components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
}

/// Creates the pod's volume directories and files, its log directory, and
/// the directories its sub-path mounts name.
pub fn prepare(data_dir: &Path, pod: &PodSandboxConfig) -> Result<(), RuntimeError> {
    let logs = translate::log_dir(data_dir, pod);
    std::fs::create_dir_all(&logs).map_err(io(&logs))?;
    for volume in &pod.volumes {
        let dir = translate::volume_dir(data_dir, &pod.uid, &volume.name);
        match &volume.source {
            VolumeSource::HostPath(_) => continue,
            VolumeSource::EmptyDir => {
                std::fs::create_dir_all(&dir).map_err(io(&dir))?;
                // Any user in the pod may write, as upstream's emptyDir.
                std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777))
                    .map_err(io(&dir))?;
            }
            VolumeSource::Files(files) => {
                std::fs::create_dir_all(&dir).map_err(io(&dir))?;
                for file in files {
                    if !is_contained(&file.path) {
                        return Err(RuntimeError::Backend(format!(
                            "volume {:?}: path {:?} leaves the volume",
                            volume.name, file.path
                        )));
                    }
                    let path = dir.join(&file.path);
                    if let Some(parent) = path.parent() {
                        std::fs::create_dir_all(parent).map_err(io(parent))?;
                    }
                    let mut out = std::fs::File::create(&path).map_err(io(&path))?;
                    out.write_all(&file.contents).map_err(io(&path))?;
                    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(file.mode))
                        .map_err(io(&path))?;
                }
            }
        }
    }
    for container in pod.init_containers.iter().chain(&pod.containers) {
        for mount in &container.mounts {
            let Some(sub) = mount.sub_path.as_deref() else {
                continue;
            };
            if !is_contained(sub) {
                return Err(RuntimeError::Backend(format!(
                    "container {:?}: subPath {sub:?} leaves volume {:?}",
                    container.name, mount.volume
                )));
            }
            if let Some(path) = translate::mount_source(data_dir, pod, &mount.volume, Some(sub)) {
                std::fs::create_dir_all(&path).map_err(io(&path))?;
            }
        }
    }
    Ok(())
}

/// Removes what [`prepare`] created for pod `uid` (named `namespace/name`
/// when known; otherwise its logs are found by UID).
pub fn remove_pod_files(
    data_dir: &Path,
    uid: &str,
    names: Option<(String, String)>,
) -> Result<(), RuntimeError> {
    let pod_dir = translate::pod_dir(data_dir, uid);
    match std::fs::remove_dir_all(&pod_dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(&pod_dir)(e)),
    }
    let logs = data_dir.join("logs");
    let suffix = format!("_{uid}");
    let entries = std::fs::read_dir(&logs).into_iter().flatten().flatten();
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        let matches = match &names {
            Some((namespace, pod)) => name == format!("{namespace}_{pod}{suffix}"),
            None => name.ends_with(&suffix),
        };
        if matches {
            let path = entry.path();
            std::fs::remove_dir_all(&path).map_err(io(&path))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::{ContainerConfig, Mount, Volume, VolumeFile};

    #[test]
    fn volumes_are_created_then_removed_with_the_logs() {
        let dir = tempfile::tempdir().unwrap();
        let pod = PodSandboxConfig {
            uid: "u1".into(),
            namespace: "default".into(),
            name: "web".into(),
            volumes: vec![
                Volume {
                    name: "www".into(),
                    source: VolumeSource::EmptyDir,
                },
                Volume {
                    name: "conf".into(),
                    source: VolumeSource::Files(vec![VolumeFile {
                        path: "a/b.txt".into(),
                        contents: b"hi".to_vec(),
                        mode: 0o600,
                    }]),
                },
            ],
            containers: vec![ContainerConfig {
                name: "app".into(),
                mounts: vec![Mount {
                    volume: "www".into(),
                    container_path: "/x".into(),
                    sub_path: Some("site".into()),
                    read_only: false,
                }],
                ..ContainerConfig::default()
            }],
            ..PodSandboxConfig::default()
        };
        prepare(dir.path(), &pod).unwrap();
        let file = translate::volume_dir(dir.path(), "u1", "conf").join("a/b.txt");
        assert_eq!(std::fs::read(&file).unwrap(), b"hi");
        assert_eq!(
            std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(translate::volume_dir(dir.path(), "u1", "www")
            .join("site")
            .is_dir());
        assert!(translate::log_dir(dir.path(), &pod).is_dir());
        remove_pod_files(dir.path(), "u1", None).unwrap();
        assert!(!translate::pod_dir(dir.path(), "u1").exists());
        assert!(!translate::log_dir(dir.path(), &pod).exists());
    }

    #[test]
    fn paths_may_not_leave_the_volume() {
        assert!(is_contained("a/b"));
        assert!(!is_contained("../etc/passwd"));
        assert!(!is_contained("/etc/passwd"));
    }
}
