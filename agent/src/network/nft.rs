//! Running `nft` (Debian package nftables) on a whole script: one script is
//! one kernel transaction, so a table is replaced atomically or not at all.
//! Only the process edge; the scripts come from the pure rule builders.

use std::process::Stdio;

use tokio::io::AsyncWriteExt;

/// Why a script was not applied.
#[derive(Debug, thiserror::Error)]
pub enum NftError {
    /// `nft` could not be started.
    #[error("running nft (install Debian's nftables; the agent needs root): {0}")]
    Spawn(std::io::Error),
    /// Talking to `nft` failed.
    #[error("feeding the script to nft: {0}")]
    Io(std::io::Error),
    /// `nft` refused the script; nothing of it was applied.
    #[error("nft rejected the script: {0}")]
    Rejected(String),
}

/// Applies `script` as one transaction (`nft -f -`).
pub async fn apply(script: &str) -> Result<(), NftError> {
    let mut child = tokio::process::Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .map_err(NftError::Spawn)?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .await
            .map_err(NftError::Io)?;
    }
    let output = child.wait_with_output().await.map_err(NftError::Io)?;
    if output.status.success() {
        Ok(())
    } else {
        Err(NftError::Rejected(
            String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        ))
    }
}

/// Whether `object` (such as `chain ip t prerouting`) exists: `nft list`
/// finds it.
pub async fn exists(object: &str) -> bool {
    tokio::process::Command::new("nft")
        .arg("list")
        .args(object.split_whitespace())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await
        .is_ok_and(|status| status.success())
}

/// Checks `script` without applying it (`nft -c`), for tests: `Ok` where
/// nft is missing, so unit tests still run on machines without it.
#[cfg(test)]
pub fn check(script: &str) -> Result<(), String> {
    use std::io::Write;
    let Ok(mut child) = std::process::Command::new("nft")
        .args(["-c", "-f", "-"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    else {
        return Ok(());
    };
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .map_err(|e| e.to_string())?;
    }
    let output = child.wait_with_output().map_err(|e| e.to_string())?;
    if output.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}
