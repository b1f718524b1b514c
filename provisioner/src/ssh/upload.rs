//! Uploading a file to a machine: skipped when the remote sha256 already
//! matches, otherwise streamed over one exec channel into a temporary file
//! beside the target, verified by checksum there and renamed into place, so
//! the target is never seen half-written.

use std::path::Path;
use std::time::Duration;

use super::error::Error;
use super::exec::{self, shell_quote};
use super::host_key::Client;

/// What to upload.
#[derive(Debug, Clone, Copy)]
pub enum Source<'a> {
    /// A local file, streamed.
    File(&'a Path),
    /// Bytes in memory (configs, certificates).
    Bytes(&'a [u8]),
}

/// What an upload did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Uploaded {
    /// The remote file already had this content and mode.
    Unchanged,
    /// The content was there; only the mode was set.
    ModeChanged,
    /// The content was sent (this many bytes).
    Copied {
        /// Bytes sent.
        bytes: u64,
    },
}

/// What the machine has at the target path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RemoteFile {
    /// Hex sha256.
    pub sha256: String,
    /// Octal permission bits as `stat -c %a` prints them.
    pub mode: u32,
}

/// The command that prints the target's sha256 and mode, or nothing when it
/// is not a regular file.
pub(crate) fn probe_command(remote: &str) -> String {
    let path = shell_quote(remote);
    format!("if [ -f {path} ]; then sha256sum < {path} && stat -c %a {path}; fi")
}

/// Reads [`probe_command`]'s output.
pub(crate) fn parse_probe(stdout: &str) -> Option<RemoteFile> {
    let mut lines = stdout.lines();
    let sha256 = lines.next()?.split_whitespace().next()?.to_string();
    let mode = u32::from_str_radix(lines.next()?.trim(), 8).ok()?;
    (sha256.len() == 64 && sha256.bytes().all(|b| b.is_ascii_hexdigit()))
        .then_some(RemoteFile { sha256, mode })
}

/// Exit status of [`install_script`] when the received file's checksum is wrong.
pub(crate) const CORRUPTED: u32 = 13;

/// The script that receives the file on stdin into a temporary file beside
/// `remote`, sets `mode`, checks `sha256` and renames it into place; the
/// temporary file is removed on any failure. On a checksum mismatch it
/// exits [`CORRUPTED`] with the sha256 it found on stderr.
pub(crate) fn install_script(remote: &str, mode: u32, sha256: &str) -> String {
    let (dir, name) = match remote.rsplit_once('/') {
        Some(("", name)) => ("/", name),
        Some((dir, name)) => (dir, name),
        None => (".", remote),
    };
    let dir = shell_quote(dir);
    let dst = shell_quote(remote);
    let tmp_template = shell_quote(&format!(".{name}.berth-upload.XXXXXX"));
    format!(
        "set -u; mkdir -p {dir} || exit 10; \
         tmp=$(mktemp -p {dir} {tmp_template}) || exit 10; \
         fail() {{ rm -f \"$tmp\"; exit \"$1\"; }}; \
         cat > \"$tmp\" || fail 11; \
         chmod {mode:o} \"$tmp\" || fail 12; \
         sum=$(sha256sum < \"$tmp\") || fail 12; sum=${{sum%% *}}; \
         [ \"$sum\" = {sha256} ] || {{ echo \"$sum\" >&2; fail {CORRUPTED}; }}; \
         mv -f \"$tmp\" {dst} || fail 14"
    )
}

/// Hex sha256 and size of what is to be uploaded.
async fn local_digest(source: Source<'_>) -> std::io::Result<(String, u64)> {
    match source {
        Source::Bytes(bytes) => Ok((hex_sha256(bytes), bytes.len() as u64)),
        Source::File(path) => {
            let path = path.to_path_buf();
            tokio::task::spawn_blocking(move || {
                use std::io::Read as _;
                let mut file = std::fs::File::open(path)?;
                let mut context = ring::digest::Context::new(&ring::digest::SHA256);
                let mut buffer = vec![0; 1 << 20];
                let mut size = 0;
                loop {
                    let n = file.read(&mut buffer)?;
                    if n == 0 {
                        break;
                    }
                    size += n as u64;
                    context.update(&buffer[..n]);
                }
                Ok((hex(context.finish().as_ref()), size))
            })
            .await
            .map_err(std::io::Error::other)?
        }
    }
}

fn hex_sha256(bytes: &[u8]) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Uploads `source` to `remote` with permission bits `mode` (see module doc).
pub(crate) async fn upload(
    handle: &russh::client::Handle<Client>,
    machine: &str,
    source: Source<'_>,
    remote: &str,
    mode: u32,
    timeout: Duration,
) -> Result<Uploaded, Error> {
    let local_error = |source_error: std::io::Error| Error::LocalFile {
        machine: machine.to_string(),
        path: match source {
            Source::File(path) => path.to_path_buf(),
            Source::Bytes(_) => "(bytes in memory)".into(),
        },
        source: source_error,
    };
    let probe = probe_command(remote);
    // Hash here while the machine hashes its copy.
    let (digest, found) = tokio::join!(
        local_digest(source),
        exec::exec(handle, machine, &probe, None, timeout)
    );
    let (sha256, size) = digest.map_err(local_error)?;
    let found = checked(found?, machine, &probe)?;
    if let Some(found) = parse_probe(&found.stdout).filter(|f| f.sha256 == sha256) {
        if found.mode == mode {
            tracing::info!(machine, remote, "unchanged (same sha256), not sent");
            return Ok(Uploaded::Unchanged);
        }
        let chmod = format!("chmod {mode:o} {}", shell_quote(remote));
        checked(
            exec::exec(handle, machine, &chmod, None, timeout).await?,
            machine,
            &chmod,
        )?;
        return Ok(Uploaded::ModeChanged);
    }
    let script = install_script(remote, mode, &sha256);
    let started = std::time::Instant::now();
    let output = match source {
        Source::Bytes(bytes) => {
            let mut reader = bytes;
            exec::exec(handle, machine, &script, Some(&mut reader), timeout).await?
        }
        Source::File(path) => {
            let file = tokio::fs::File::open(path).await.map_err(local_error)?;
            let mut reader = tokio::io::BufReader::with_capacity(1 << 20, file);
            exec::exec(handle, machine, &script, Some(&mut reader), timeout).await?
        }
    };
    if output.status == super::ExitStatus::Code(CORRUPTED) {
        return Err(Error::UploadCorrupted {
            machine: machine.to_string(),
            remote: remote.to_string(),
            got: output.stderr.trim().to_string(),
            expected: sha256,
        });
    }
    checked(output, machine, &format!("install {remote}"))?;
    let elapsed = started.elapsed();
    tracing::info!(
        machine,
        remote,
        bytes = size,
        seconds = elapsed.as_secs_f64(),
        "uploaded"
    );
    Ok(Uploaded::Copied { bytes: size })
}

/// `output`, or [`Error::CommandFailed`] when it did not exit with 0.
pub(crate) fn checked(
    output: exec::Output,
    machine: &str,
    command: &str,
) -> Result<exec::Output, Error> {
    if output.status.success() {
        return Ok(output);
    }
    let stderr = output.stderr.trim();
    let tail = stderr
        .char_indices()
        .rev()
        .nth(1999)
        .map_or(stderr, |(at, _)| &stderr[at..]);
    Err(Error::CommandFailed {
        machine: machine.to_string(),
        command: command.to_string(),
        status: output.status.to_string(),
        stderr: tail.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_output() {
        let sum = "a".repeat(64);
        let cases = [
            (format!("{sum}  -\n755\n"), Some((sum.clone(), 0o755))),
            (format!("{sum}  -\n600"), Some((sum.clone(), 0o600))),
            (String::new(), None),
            (format!("{sum}  -\n"), None),
            ("zz  -\n755\n".to_string(), None),
            (format!("{sum}  -\nrwx\n"), None),
        ];
        for (stdout, want) in cases {
            let got = parse_probe(&stdout).map(|f| (f.sha256, f.mode));
            assert_eq!(got, want, "{stdout:?}");
        }
    }

    #[test]
    fn install_script_targets_the_folder_of_the_file() {
        let cases = [
            (
                "/usr/local/bin/berth",
                "'/usr/local/bin'",
                "'.berth.berth-upload.XXXXXX'",
            ),
            ("/berth", "'/'", "'.berth.berth-upload.XXXXXX'"),
            ("relative", "'.'", "'.relative.berth-upload.XXXXXX'"),
            ("/tmp/it's", "'/tmp'", r"'.it'\''s.berth-upload.XXXXXX'"),
        ];
        for (remote, dir, template) in cases {
            let script = install_script(remote, 0o755, "ab");
            assert!(
                script.contains(&format!("mktemp -p {dir} {template}")),
                "{script}"
            );
            assert!(script.contains("chmod 755 "), "{script}");
            assert!(
                script.ends_with(&format!(
                    "mv -f \"$tmp\" {} || fail 14",
                    shell_quote(remote)
                )),
                "{script}"
            );
        }
    }

    #[test]
    fn hex_digest() {
        assert_eq!(
            hex_sha256(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn failed_commands_keep_the_end_of_stderr() {
        let output = exec::Output {
            status: exec::ExitStatus::Code(2),
            stdout: String::new(),
            stderr: format!("{}END\n", "x".repeat(5000)),
        };
        let error = checked(output, "root@h:22", "false")
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("root@h:22: `false` failed (exit status 2): xxx"));
        assert!(error.ends_with("END"));
        assert!(error.len() < 2100);
    }
}
