//! `berth cluster etcd-snapshot save`: a consistent copy of the cluster's
//! etcd keyspace, streamed from one healthy member over TLS (etcd's
//! maintenance Snapshot call, as `etcdctl snapshot save` does) into a local
//! file that is kept only once its integrity hash checks out. Never writes
//! to the cluster.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::AsyncWriteExt as _;
use tracing::Instrument as _;

use crate::config::{Cluster, Datastore, Machine};
use crate::etcd;

/// Length of the sha256 etcd appends to every snapshot it streams.
const HASH_LEN: u64 = 32;
/// A snapshot's database is whole 512-byte sectors; with the hash appended
/// its size leaves this remainder (etcd's own restore checks the same).
const SECTOR: u64 = 512;

/// Why a snapshot could not be taken or used.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The cluster keeps its data in sqlite, not etcd.
    #[error("cluster {cluster} keeps its data in sqlite on its master, not in etcd; etcd snapshots need datastore = \"etcd\" (back up DATA_DIR/server on the master with the server stopped instead)")]
    Sqlite {
        /// The cluster's name.
        cluster: String,
    },
    /// The state directory lacks etcd's client certificates.
    #[error("{0}; run `berth cluster create` with this state directory first")]
    State(String),
    /// No member gave a complete snapshot.
    #[error("no etcd member gave a complete snapshot:\n{tried}")]
    NoMember {
        /// What each member answered.
        tried: String,
    },
    /// A snapshot file is not usable.
    #[error("{path}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
}

/// A snapshot written and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Saved {
    /// Where it is.
    pub path: PathBuf,
    /// Its size in bytes, hash included.
    pub size: u64,
    /// The keyspace revision the member reported as the snapshot began.
    pub revision: i64,
    /// The member it came from.
    pub member: String,
}

/// `STATE/snapshots/NAME-YYYYMMDDTHHMMSSZ.db`.
pub fn default_path(state_dir: &Path, cluster: &str, now: jiff::Timestamp) -> PathBuf {
    state_dir
        .join("snapshots")
        .join(format!("{cluster}-{}.db", now.strftime("%Y%m%dT%H%M%SZ")))
}

/// Whether `size` bytes can be a database followed by its sha256.
fn size_problem(size: u64) -> Option<String> {
    if size <= HASH_LEN || size % SECTOR != HASH_LEN {
        Some(format!(
            "{size} bytes is not a database of whole {SECTOR}-byte sectors followed by its {HASH_LEN}-byte sha256; the snapshot is truncated or not an etcd snapshot"
        ))
    } else {
        None
    }
}

/// Checks a snapshot file as etcd's restore does: its size, and the sha256
/// at its end against the bytes before it. Its size when it is whole.
pub fn verify_file(path: &Path) -> Result<u64, SnapshotError> {
    let failed = |reason: String| SnapshotError::File {
        path: path.to_owned(),
        reason,
    };
    let mut file = std::fs::File::open(path).map_err(|e| failed(e.to_string()))?;
    let size = file.metadata().map_err(|e| failed(e.to_string()))?.len();
    if let Some(problem) = size_problem(size) {
        return Err(failed(problem));
    }
    let mut context = ring::digest::Context::new(&ring::digest::SHA256);
    let mut left = size - HASH_LEN;
    let mut buffer = vec![0u8; 1 << 16];
    while left > 0 {
        let want = usize::try_from(left.min(buffer.len() as u64)).unwrap_or(buffer.len());
        file.read_exact(&mut buffer[..want])
            .map_err(|e| failed(e.to_string()))?;
        context.update(&buffer[..want]);
        left -= want as u64;
    }
    let mut stored = [0u8; HASH_LEN as usize];
    file.read_exact(&mut stored)
        .map_err(|e| failed(e.to_string()))?;
    if context.finish().as_ref() != stored {
        return Err(failed(
            "the sha256 at its end does not match its contents; the snapshot is corrupted"
                .to_owned(),
        ));
    }
    Ok(size)
}

/// Takes a snapshot from the first member of `cluster` that gives a
/// complete one, into `output` (or [`default_path`] in `state_dir`).
pub async fn save(
    cluster: &Cluster,
    state_dir: &Path,
    output: Option<&Path>,
    timeout: Duration,
) -> Result<Saved, SnapshotError> {
    if cluster.datastore == Datastore::Sqlite {
        return Err(SnapshotError::Sqlite {
            cluster: cluster.name.clone(),
        });
    }
    let tls = etcd::client_tls(state_dir).map_err(SnapshotError::State)?;
    let path = output.map_or_else(
        || default_path(state_dir, &cluster.name, jiff::Timestamp::now()),
        Path::to_owned,
    );
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| SnapshotError::File {
            path: parent.to_owned(),
            reason: e.to_string(),
        })?;
    }
    let mut tried = Vec::new();
    for member in &cluster.masters {
        let span = tracing::info_span!("etcd_snapshot", member = %member.name);
        match save_from(&tls, member, &path, timeout)
            .instrument(span)
            .await
        {
            Ok((size, revision)) => {
                return Ok(Saved {
                    path,
                    size,
                    revision,
                    member: member.name.clone(),
                })
            }
            Err(e) => {
                tracing::warn!(error = %e, "snapshot failed; trying the next member");
                tried.push(format!("  {}: {e}", member.name));
            }
        }
    }
    Err(SnapshotError::NoMember {
        tried: tried.join("\n"),
    })
}

/// Streams `member`'s snapshot into `path` (through `path.part`, renamed
/// once checked): its size and the revision it started at.
async fn save_from(
    tls: &etcd_client::TlsOptions,
    member: &Machine,
    path: &Path,
    timeout: Duration,
) -> Result<(u64, i64), String> {
    let mut client = etcd::member_client(tls, member, timeout)
        .await
        .map_err(|e| e.to_string())?;
    let status = client.status().await.map_err(|e| e.to_string())?;
    let revision = status.header().map_or(0, |h| h.revision());
    let part = path.with_extension("db.part");
    let write = |e: std::io::Error| format!("{}: {e}", part.display());
    let mut file = tokio::fs::File::create(&part).await.map_err(write)?;
    let mut stream = client.snapshot().await.map_err(|e| e.to_string())?;
    let mut remaining = None;
    while let Some(message) = stream.message().await.map_err(|e| e.to_string())? {
        file.write_all(message.blob()).await.map_err(write)?;
        remaining = Some(message.remaining_bytes());
    }
    file.sync_all().await.map_err(write)?;
    drop(file);
    let checked = match remaining {
        Some(0) => verify_file(&part).map_err(|e| e.to_string()),
        Some(left) => Err(format!("the stream ended with {left} bytes still to come")),
        None => Err("the stream ended before any data".to_owned()),
    };
    let size = match checked {
        Ok(size) => size,
        Err(e) => {
            let _ = std::fs::remove_file(&part);
            return Err(e);
        }
    };
    std::fs::rename(&part, path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok((size, revision))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A snapshot-shaped file: `sectors` sectors of data and their sha256.
    fn snapshot(sectors: usize) -> Vec<u8> {
        let data: Vec<u8> = (0..sectors * 512).map(|i| (i % 251) as u8).collect();
        let hash = ring::digest::digest(&ring::digest::SHA256, &data);
        [data.as_slice(), hash.as_ref()].concat()
    }

    #[test]
    fn only_a_whole_snapshot_with_its_hash_is_accepted() {
        let dir = tempfile::tempdir().unwrap();
        let whole = snapshot(300);
        let mut corrupted = whole.clone();
        corrupted[700] ^= 1;
        let cases: [(&str, Vec<u8>, Result<u64, &str>); 5] = [
            ("whole", whole.clone(), Ok(whole.len() as u64)),
            (
                "truncated",
                whole[..whole.len() - 1].to_vec(),
                Err("truncated"),
            ),
            ("no hash", whole[..300 * 512].to_vec(), Err("truncated")),
            ("empty", Vec::new(), Err("truncated")),
            ("corrupted", corrupted, Err("corrupted")),
        ];
        for (name, bytes, want) in cases {
            let path = dir.path().join(name);
            std::fs::write(&path, bytes).unwrap();
            match (verify_file(&path), want) {
                (Ok(size), Ok(want)) => assert_eq!(size, want, "{name}"),
                (Err(e), Err(want)) => assert!(e.to_string().contains(want), "{name}: {e}"),
                (got, want) => panic!("{name}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn the_default_file_is_named_after_the_cluster_and_the_utc_time() {
        let at: jiff::Timestamp = "2026-12-06T15:04:05Z".parse().unwrap();
        assert_eq!(
            default_path(Path::new("/state"), "prod", at),
            PathBuf::from("/state/snapshots/prod-20261206T150405Z.db")
        );
    }
}
