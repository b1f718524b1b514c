//! The node's directories behind claim volumes: a `local-path` volume's
//! directory is made on first mount (mode 0777, as rancher's
//! local-path-provisioner makes it, so non-root containers can write) and
//! removed on reclaim — only under `--local-path-dir`, never through a
//! symlink out of it. Plain `local` volumes must exist already (kubelet).

use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use super::claims::{Backing, ClaimMount, MountError};

/// Why a released volume's directory was not removed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RemoveError(pub String);

/// Makes sure `mount`'s path is there to bind: creates a local-path
/// volume's (or a `DirectoryOrCreate` hostPath's) directory, checks the others.
pub fn ensure(mount: &ClaimMount) -> Result<(), MountError> {
    let path = Path::new(&mount.path);
    let pv = &mount.persistent_volume;
    let failed = |what: &str, e: std::io::Error| {
        MountError(format!(
            "MountVolume.SetUp failed for volume {pv:?} : {what} {}: {e}",
            mount.path
        ))
    };
    match &mount.backing {
        Backing::Local {
            provisioned_here: true,
        } => {
            if !path.is_dir() {
                std::fs::create_dir_all(path).map_err(|e| failed("creating", e))?;
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o777))
                    .map_err(|e| failed("setting the mode of", e))?;
                tracing::info!(volume = %pv, path = %mount.path, "local-path directory created");
            }
            Ok(())
        }
        Backing::Local {
            provisioned_here: false,
        } => match path.exists() {
            true => Ok(()),
            false => Err(MountError(format!(
                "MountVolume.NewMounter initialization failed for volume {pv:?} : path {:?} does not exist",
                mount.path
            ))),
        },
        Backing::HostPath { type_ } => match type_.as_str() {
            "" => Ok(()),
            "DirectoryOrCreate" => {
                if !path.is_dir() {
                    std::fs::create_dir_all(path).map_err(|e| failed("creating", e))?;
                    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
                        .map_err(|e| failed("setting the mode of", e))?;
                }
                Ok(())
            }
            "Directory" if !path.is_dir() => Err(MountError(format!(
                "MountVolume.SetUp failed for volume {pv:?} : hostPath type check failed: {} is not a directory",
                mount.path
            ))),
            _ if !path.exists() => Err(MountError(format!(
                "MountVolume.SetUp failed for volume {pv:?} : hostPath type check failed: {} does not exist",
                mount.path
            ))),
            _ => Ok(()),
        },
    }
}

/// The directory to remove for a volume at `path`, checked purely: an
/// absolute path with no `..` strictly inside `root`.
pub fn removal_target(root: &Path, path: &str) -> Result<PathBuf, RemoveError> {
    let target = Path::new(path);
    let plain = target
        .components()
        .all(|c| matches!(c, Component::RootDir | Component::Normal(_)));
    let inside = target.strip_prefix(root).ok();
    match inside {
        Some(rest) if plain && root.is_absolute() && rest.components().next().is_some() => {
            Ok(target.to_owned())
        }
        _ => Err(RemoveError(format!(
            "refusing to remove {path:?}: it does not lie under this node's --local-path-dir {}",
            root.display()
        ))),
    }
}

/// Removes the volume directory at `path` under `root` and everything in it;
/// a directory already gone is fine. A symlink on the way from `root` to it
/// is refused; the directory itself, if a symlink, is unlinked, not followed.
pub fn remove(root: &Path, path: &str) -> Result<(), RemoveError> {
    let target = removal_target(root, path)?;
    let mut walked = root.to_owned();
    let rest = target.strip_prefix(root).unwrap_or(&target).to_owned();
    let components: Vec<_> = rest.components().collect();
    for (i, component) in components.iter().enumerate() {
        walked.push(component);
        let meta = match std::fs::symlink_metadata(&walked) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(RemoveError(format!("{}: {e}", walked.display()))),
        };
        let last = i + 1 == components.len();
        if meta.file_type().is_symlink() {
            if last {
                return std::fs::remove_file(&walked)
                    .map_err(|e| RemoveError(format!("removing {}: {e}", walked.display())));
            }
            return Err(RemoveError(format!(
                "refusing to remove {path:?}: {} is a symlink",
                walked.display()
            )));
        }
    }
    let removed = if std::fs::symlink_metadata(&target).is_ok_and(|m| m.is_dir()) {
        std::fs::remove_dir_all(&target)
    } else {
        std::fs::remove_file(&target)
    };
    match removed {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(RemoveError(format!("removing {path}: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_paths_strictly_inside_the_root_may_be_removed() {
        let root = Path::new("/var/lib/berth/agent/local-path");
        let cases = [
            ("/var/lib/berth/agent/local-path/pvc-1_ns_c", true),
            ("/var/lib/berth/agent/local-path/a/b", true),
            ("/var/lib/berth/agent/local-path", false),
            ("/var/lib/berth/agent/local-path/", false),
            ("/var/lib/berth/agent/local-path/../etc", false),
            // `.` is the same directory (paths are compared by component).
            ("/var/lib/berth/agent/local-path/./x", true),
            ("/var/lib/berth/agent/local-pathx/y", false),
            ("/etc", false),
            ("relative/pvc", false),
        ];
        for (path, allowed) in cases {
            assert_eq!(removal_target(root, path).is_ok(), allowed, "{path}");
        }
        assert!(removal_target(Path::new("relative"), "relative/x").is_err());
    }

    #[test]
    fn removal_never_follows_a_symlink_out_of_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("local-path");
        let outside = dir.path().join("precious");
        std::fs::create_dir_all(outside.join("keep")).unwrap();
        std::fs::write(outside.join("keep/file"), b"x").unwrap();
        std::fs::create_dir_all(root.join("pvc-1/sub")).unwrap();
        std::fs::write(root.join("pvc-1/sub/data"), b"x").unwrap();
        // A link inside the volume to outside: removed as a link.
        std::os::unix::fs::symlink(&outside, root.join("pvc-1/escape")).unwrap();
        // A volume path that goes through a link: refused.
        std::os::unix::fs::symlink(&outside, root.join("via")).unwrap();
        // A volume that is itself a link: the link goes, not its target.
        std::os::unix::fs::symlink(&outside, root.join("pvc-2")).unwrap();

        let path = |p: &str| root.join(p).display().to_string();
        remove(&root, &path("pvc-1")).unwrap();
        assert!(!root.join("pvc-1").exists());
        assert!(remove(&root, &path("via/keep")).is_err());
        remove(&root, &path("pvc-2")).unwrap();
        assert!(std::fs::symlink_metadata(root.join("pvc-2")).is_err());
        assert!(
            outside.join("keep/file").exists(),
            "nothing outside removed"
        );
        remove(&root, &path("pvc-gone")).unwrap();
        let outside_path = outside.display().to_string();
        assert!(remove(&root, &outside_path).is_err());
    }

    #[test]
    fn local_path_directories_are_made_writable_and_plain_local_paths_must_exist() {
        let dir = tempfile::tempdir().unwrap();
        let mount = |path: &Path, backing| ClaimMount {
            volume: "data".into(),
            persistent_volume: "pv1".into(),
            path: path.display().to_string(),
            backing,
        };
        let made = dir.path().join("lp/pvc-1");
        ensure(&mount(
            &made,
            Backing::Local {
                provisioned_here: true,
            },
        ))
        .unwrap();
        let mode = std::fs::metadata(&made).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o777);
        let missing = dir.path().join("disk");
        let error = ensure(&mount(
            &missing,
            Backing::Local {
                provisioned_here: false,
            },
        ))
        .unwrap_err();
        assert!(error.0.ends_with("does not exist"), "{error}");
        assert!(!missing.exists());
        let host = dir.path().join("host");
        ensure(&mount(
            &host,
            Backing::HostPath {
                type_: "DirectoryOrCreate".into(),
            },
        ))
        .unwrap();
        assert!(host.is_dir());
        let error = ensure(&mount(
            &missing,
            Backing::HostPath {
                type_: "Directory".into(),
            },
        ))
        .unwrap_err();
        assert!(error.0.contains("is not a directory"), "{error}");
    }
}
