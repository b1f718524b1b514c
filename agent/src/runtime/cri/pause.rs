//! A pause image made on the machine itself, so a node needs no registry
//! for its sandboxes: one layer holding Debian's static busybox, whose
//! `sleep` waits forever, packed as an OCI archive and imported into the
//! node's containerd with `ctr`. `berth up` uses it; other nodes may name
//! any pause image they can pull.

use std::path::Path;

use ring::digest::{digest, SHA256};
use serde_json::json;

use crate::runtime::RuntimeError;

/// The name the local pause image is imported under.
pub const LOCAL_PAUSE_IMAGE: &str = "berth.local/pause:3.10";
/// Where Debian's `busybox-static` puts its binary.
pub const BUSYBOX: &str = "/bin/busybox";

fn sha256(data: &[u8]) -> String {
    digest(&SHA256, data)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// One ustar header block for `name`.
fn tar_header(name: &str, size: usize, mode: u32, kind: u8, link: &str) -> [u8; 512] {
    let mut header = [0u8; 512];
    let put = |header: &mut [u8; 512], at: usize, text: &[u8]| {
        header[at..at + text.len()].copy_from_slice(text);
    };
    put(&mut header, 0, name.as_bytes());
    put(&mut header, 100, format!("{mode:07o}\0").as_bytes());
    put(&mut header, 108, b"0000000\0");
    put(&mut header, 116, b"0000000\0");
    put(&mut header, 124, format!("{size:011o}\0").as_bytes());
    put(&mut header, 136, b"00000000000\0");
    header[156] = kind;
    put(&mut header, 157, link.as_bytes());
    put(&mut header, 257, b"ustar\0");
    put(&mut header, 263, b"00");
    // The checksum is computed with its own field as spaces.
    put(&mut header, 148, b"        ");
    let sum: u32 = header.iter().map(|b| u32::from(*b)).sum();
    put(&mut header, 148, format!("{sum:06o}\0 ").as_bytes());
    header
}

/// A tar archive of `(name, contents, mode)` files, symlinks given as
/// `(name, target)`, and directories, in that order.
pub fn tar(dirs: &[&str], files: &[(&str, &[u8], u32)], links: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    for dir in dirs {
        out.extend_from_slice(&tar_header(dir, 0, 0o755, b'5', ""));
    }
    for (name, contents, mode) in files {
        out.extend_from_slice(&tar_header(name, contents.len(), *mode, b'0', ""));
        out.extend_from_slice(contents);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    for (name, target) in links {
        out.extend_from_slice(&tar_header(name, 0, 0o777, b'2', target));
    }
    out.extend_from_slice(&[0u8; 1024]);
    out
}

/// The OCI archive (a tar of an OCI image layout) of the pause image.
pub fn oci_archive(busybox: &[u8]) -> Vec<u8> {
    let layer = tar(
        &["bin/"],
        &[("bin/busybox", busybox, 0o755)],
        &[("bin/sleep", "busybox")],
    );
    let layer_digest = sha256(&layer);
    let config = json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Cmd": ["/bin/sleep", "2147483647"]},
        "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{layer_digest}")]},
    })
    .to_string()
    .into_bytes();
    let config_digest = sha256(&config);
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": format!("sha256:{config_digest}"), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": format!("sha256:{layer_digest}"), "size": layer.len()}],
    })
    .to_string()
    .into_bytes();
    let manifest_digest = sha256(&manifest);
    let index = json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": format!("sha256:{manifest_digest}"),
            "size": manifest.len(),
            "annotations": {
                "io.containerd.image.name": LOCAL_PAUSE_IMAGE,
                "org.opencontainers.image.ref.name": "3.10",
            },
        }],
    })
    .to_string()
    .into_bytes();
    let layout = br#"{"imageLayoutVersion":"1.0.0"}"#;
    let blob = |d: &str| format!("blobs/sha256/{d}");
    let (layer_path, config_path, manifest_path) = (
        blob(&layer_digest),
        blob(&config_digest),
        blob(&manifest_digest),
    );
    tar(
        &["blobs/", "blobs/sha256/"],
        &[
            ("oci-layout", layout, 0o644),
            ("index.json", &index, 0o644),
            (&layer_path, &layer, 0o644),
            (&config_path, &config, 0o644),
            (&manifest_path, &manifest, 0o644),
        ],
        &[],
    )
}

/// Builds the pause image from `/bin/busybox` and imports it into the
/// containerd listening on `socket`.
pub async fn import(socket: &Path, scratch: &Path) -> Result<(), RuntimeError> {
    let busybox = std::fs::read(BUSYBOX).map_err(|e| {
        RuntimeError::Backend(format!(
            "the local pause image is built from {BUSYBOX} ({e}); install it with `apt-get install busybox-static`, or pass --pause-image with an image the node can pull"
        ))
    })?;
    let archive = scratch.join("pause-oci.tar");
    std::fs::write(&archive, oci_archive(&busybox))
        .map_err(|e| RuntimeError::Backend(format!("writing {}: {e}", archive.display())))?;
    let output = tokio::process::Command::new("ctr")
        .arg("--address")
        .arg(socket)
        .args([
            "--namespace",
            "k8s.io",
            "images",
            "import",
            "--all-platforms",
        ])
        .arg(&archive)
        .output()
        .await
        .map_err(|e| {
            RuntimeError::Backend(format!(
                "running ctr (part of Debian's containerd package): {e}"
            ))
        })?;
    let _ = std::fs::remove_file(&archive);
    if !output.status.success() {
        return Err(RuntimeError::Backend(format!(
            "importing the local pause image: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    tracing::info!(image = LOCAL_PAUSE_IMAGE, "local pause image imported");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tar_entries_are_block_aligned_with_valid_checksums() {
        let archive = tar(&["bin/"], &[("bin/x", b"hello", 0o755)], &[("bin/y", "x")]);
        assert_eq!(archive.len() % 512, 0);
        // dir header, file header + one data block, link header, two end blocks
        assert_eq!(archive.len(), 512 * 6);
        let header = &archive[512..1024];
        assert_eq!(&header[..5], b"bin/x");
        assert_eq!(&header[257..262], b"ustar");
        let stored =
            u32::from_str_radix(std::str::from_utf8(&header[148..154]).unwrap(), 8).unwrap();
        let mut copy = header.to_vec();
        copy[148..156].copy_from_slice(b"        ");
        assert_eq!(stored, copy.iter().map(|b| u32::from(*b)).sum::<u32>());
        assert_eq!(&archive[1024..1029], b"hello");
        assert_eq!(archive[1536 + 156], b'2');
    }

    #[test]
    fn the_archive_names_the_image_and_its_blobs_match_their_digests() {
        let archive = oci_archive(b"not really busybox");
        let text = String::from_utf8_lossy(&archive);
        assert!(text.contains(LOCAL_PAUSE_IMAGE));
        assert!(text.contains("imageLayoutVersion"));
        assert!(text.contains("/bin/sleep"));
    }
}
