//! What `berth up` needs on the machine to run real containers, and
//! installing it from Debian packages when it may: containerd (with `ctr`),
//! runc, the CNI plugins, and busybox for the locally built pause image.

use std::path::Path;
use std::process::Command;

use anyhow::Context;

/// One thing the node needs and the Debian package that provides it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Requirement {
    /// A program on `PATH` or an absolute path.
    pub what: &'static str,
    /// The Debian package that installs it.
    pub package: &'static str,
}

/// Everything a real node needs.
pub const REQUIREMENTS: &[Requirement] = &[
    Requirement {
        what: "containerd",
        package: "containerd",
    },
    Requirement {
        what: "ctr",
        package: "containerd",
    },
    Requirement {
        what: "runc",
        package: "runc",
    },
    Requirement {
        what: "/usr/lib/cni/bridge",
        package: "containernetworking-plugins",
    },
    Requirement {
        what: "/usr/lib/cni/host-local",
        package: "containernetworking-plugins",
    },
    Requirement {
        what: "/usr/lib/cni/portmap",
        package: "containernetworking-plugins",
    },
    Requirement {
        what: "/usr/lib/cni/loopback",
        package: "containernetworking-plugins",
    },
    Requirement {
        what: "/bin/busybox",
        package: "busybox-static",
    },
    Requirement {
        what: "nft",
        package: "nftables",
    },
];

/// Whether `what` exists: an absolute path, or a program in one of `path`'s directories.
pub fn present(what: &str, path: &str) -> bool {
    if what.starts_with('/') {
        return Path::new(what).exists();
    }
    path.split(':')
        .filter(|dir| !dir.is_empty())
        .any(|dir| Path::new(dir).join(what).is_file())
}

/// The requirements this machine lacks.
pub fn missing(path: &str) -> Vec<Requirement> {
    REQUIREMENTS
        .iter()
        .copied()
        .filter(|r| !present(r.what, path))
        .collect()
}

/// The packages that provide `missing`, each once, in order.
pub fn packages(missing: &[Requirement]) -> Vec<&'static str> {
    let mut packages: Vec<&'static str> = Vec::new();
    for requirement in missing {
        if !packages.contains(&requirement.package) {
            packages.push(requirement.package);
        }
    }
    packages
}

/// Installs `packages` with apt-get, its progress shown as it goes.
pub fn install(packages: &[&str]) -> anyhow::Result<()> {
    eprintln!("installing {} from Debian packages…", packages.join(" "));
    let update = Command::new("apt-get")
        .arg("update")
        .status()
        .context("running apt-get update")?;
    anyhow::ensure!(update.success(), "apt-get update failed ({update})");
    let install = Command::new("apt-get")
        .args(["install", "-y", "--no-install-recommends"])
        .args(packages)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .context("running apt-get install")?;
    anyhow::ensure!(
        install.success(),
        "apt-get install {} failed ({install})",
        packages.join(" ")
    );
    Ok(())
}

/// Makes sure every requirement is met: installs what is missing when
/// allowed to (root on a machine with apt-get), otherwise says exactly what
/// is missing and how to install it.
pub fn ensure(may_install: bool) -> anyhow::Result<()> {
    let path = std::env::var("PATH").unwrap_or_default();
    let lacking = missing(&path);
    if lacking.is_empty() {
        return Ok(());
    }
    let needed = packages(&lacking);
    let names: Vec<&str> = lacking.iter().map(|r| r.what).collect();
    let can_apt = present("apt-get", &path);
    if !(may_install && can_apt) {
        anyhow::bail!(
            "berth up runs real containers and this machine lacks {}; install them with `apt-get install {}`{}",
            names.join(", "),
            needed.join(" "),
            if may_install { "" } else { " (or run berth up as root without --no-install to have them installed)" }
        );
    }
    install(&needed)?;
    let path = std::env::var("PATH").unwrap_or_default();
    let still: Vec<&str> = missing(&path).iter().map(|r| r.what).collect();
    anyhow::ensure!(
        still.is_empty(),
        "still missing after installing: {}",
        still.join(", ")
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_are_found_on_the_path_and_paths_directly() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("containerd"), "").unwrap();
        let path = format!("/nonexistent:{}", dir.path().display());
        assert!(present("containerd", &path));
        assert!(!present("runc", &path));
        assert!(present("/", &path));
    }

    #[test]
    fn each_missing_package_is_named_once() {
        let lacking = missing("/nonexistent");
        let packages = packages(&lacking);
        assert!(packages.contains(&"containerd"));
        assert_eq!(packages.iter().filter(|p| **p == "containerd").count(), 1);
    }
}
