//! `berth cluster etcd-snapshot restore`: a saved etcd snapshot becomes the
//! data of the cluster's masters, as upstream's "restoring an etcd cluster"
//! does: every API server and etcd member stopped, each member's data
//! directory rebuilt from the snapshot with its own name and peer URL and
//! the whole `--initial-cluster`, the old directory kept aside until the
//! API answers again. Works on the running cluster's machines and on fresh
//! ones (after `cluster delete`): the masters are installed as `create`
//! installs them, and nothing starts before the data is in place.

use std::path::{Path, PathBuf};

use crate::config::{Cluster, Datastore, Machine};
use crate::create::{self, CreateError, CreateOptions, Created, Restart, Session, State};
use crate::etcd;
use crate::layout::Layout;
use crate::remote;
use crate::service;
use crate::snapshot::{self, SnapshotError};
use crate::ssh::{self, shell_quote, Source};

/// Why a restore stopped.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// The snapshot cannot be used (or the cluster has no etcd).
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// Installing, restoring or starting failed; a re-run goes on.
    #[error(transparent)]
    Create(#[from] CreateError),
}

/// Where a master keeps what a restore puts down beside its etcd data.
struct RestorePaths {
    /// The uploaded snapshot.
    snapshot: PathBuf,
    /// The data directory being built.
    building: PathBuf,
    /// Where the old data directory goes, by the restore's time stamp.
    aside: PathBuf,
}

impl RestorePaths {
    fn new(layout: &Layout, stamp: &str) -> Self {
        Self {
            snapshot: layout.root().join("snapshots/restore.db"),
            building: layout.root().join("etcd.restoring"),
            aside: layout.root().join(format!("etcd.before-restore-{stamp}")),
        }
    }
}

fn quoted(path: &Path) -> String {
    shell_quote(&path.display().to_string())
}

/// The script that rebuilds `master`'s etcd data directory from the
/// uploaded snapshot: `etcdutl snapshot restore` where etcd 3.5+ gives it,
/// else etcd 3.4's `etcdctl snapshot restore` (Debian 12's `etcd-client`,
/// installed when missing); the old directory moved aside, never deleted.
fn restore_script(cluster: &Cluster, master: &Machine, layout: &Layout, stamp: &str) -> String {
    let paths = RestorePaths::new(layout, stamp);
    let arguments = [
        "snapshot".to_owned(),
        "restore".to_owned(),
        paths.snapshot.display().to_string(),
        "--name".to_owned(),
        master.name.clone(),
        "--initial-cluster".to_owned(),
        etcd::initial_cluster(cluster),
        "--initial-cluster-token".to_owned(),
        cluster.name.clone(),
        "--initial-advertise-peer-urls".to_owned(),
        etcd::peer_url(master),
        "--data-dir".to_owned(),
        paths.building.display().to_string(),
    ]
    .iter()
    .map(|a| shell_quote(a))
    .collect::<Vec<_>>()
    .join(" ");
    let (building, data, aside) = (
        quoted(&paths.building),
        quoted(&layout.etcd_dir()),
        quoted(&paths.aside),
    );
    format!(
        "set -e\n\
         command -v etcdutl >/dev/null || command -v etcdctl >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y etcd-client >/dev/null\n\
         rm -rf {building}\n\
         if command -v etcdutl >/dev/null; then etcdutl {arguments}; else ETCDCTL_API=3 etcdctl {arguments}; fi\n\
         if [ -d {data} ]; then mv {data} {aside}; fi\n\
         mv {building} {data}\n"
    )
}

/// The script that forgets what a restore left once the cluster answers:
/// the uploaded snapshot and the data directories moved aside.
fn cleanup_script(layout: &Layout) -> String {
    let paths = RestorePaths::new(layout, "*");
    format!(
        "rm -f {}\nrm -rf {}.before-restore-*\n",
        quoted(&paths.snapshot),
        quoted(&layout.etcd_dir())
    )
}

/// Restores `snapshot` into the masters of `cluster`, installing them
/// first where needed, and waits until the API answers.
pub async fn restore(
    cluster: &Cluster,
    options: &CreateOptions,
    snapshot: &Path,
) -> Result<Created, RestoreError> {
    if cluster.datastore == Datastore::Sqlite {
        return Err(SnapshotError::Sqlite {
            cluster: cluster.name.clone(),
        }
        .into());
    }
    let size = snapshot::verify_file(snapshot)?;
    tracing::info!(snapshot = %snapshot.display(), size, "restoring");
    let state = State::open(&options.state_dir, cluster)?;
    let stamp = jiff::Timestamp::now()
        .strftime("%Y%m%dT%H%M%SZ")
        .to_string();
    let masters =
        create::connect(cluster.masters.iter().collect(), options.connect_timeout).await?;
    let result = restore_on(cluster, &state, &masters, options, snapshot, &stamp).await;
    for session in masters {
        session.ssh.close().await;
    }
    result?;
    let (kubeconfig, url) = create::serve_kubeconfig(cluster, &state, options).await?;
    let tls = etcd::client_tls(&state.dir).map_err(SnapshotError::State)?;
    for master in &cluster.masters {
        etcd::wait_member_healthy(&tls, master, options.ready_timeout)
            .await
            .map_err(|reason| CreateError::Api {
                url: url.clone(),
                reason,
            })?;
    }
    let cleaned = ssh::for_each(
        &cluster.masters.iter().collect::<Vec<_>>(),
        |master| master.name.clone(),
        |&master, progress| async move {
            progress.step("removing the old etcd data");
            let layout = Layout::new(&master.data_dir);
            remote::run_once(master, options.connect_timeout, &cleanup_script(&layout))
                .await
                .map(|_| ())
        },
    )
    .await;
    // Every earlier step succeeded everywhere, or we would not be here.
    let summary =
        create::check_summary(cleaned, "removing the old etcd data", cluster.masters.len())?;
    Ok(Created {
        timings: create::Timings::default(),
        kubeconfig,
        summary,
        node_pools: Vec::new(),
    })
}

/// Installs, stops, restores and starts every master.
async fn restore_on(
    cluster: &Cluster,
    state: &State,
    masters: &[Session<'_>],
    options: &CreateOptions,
    snapshot: &Path,
    stamp: &str,
) -> Result<(), CreateError> {
    let indices: Vec<usize> = (0..masters.len()).collect();
    let restored = ssh::for_each(
        &indices,
        |&index| masters[index].machine.name.clone(),
        |&index, progress| async move {
            let session = &masters[index];
            let layout = Layout::new(&session.machine.data_dir);
            create::prepare_master(state, session, &options.binary, &progress).await?;
            progress.step("stopping berth server and etcd");
            session
                .ssh
                .run_ok(&(service::stop(&layout, "server") + &service::stop(&layout, "etcd")))
                .await?;
            progress.step("uploading the snapshot");
            let paths = RestorePaths::new(&layout, stamp);
            session
                .ssh
                .upload(
                    Source::File(snapshot),
                    &paths.snapshot.display().to_string(),
                    0o600,
                )
                .await?;
            progress.step("restoring etcd's data");
            session
                .ssh
                .run_ok(&restore_script(cluster, session.machine, &layout, stamp))
                .await?;
            Ok::<(), ssh::Error>(())
        },
    )
    .await;
    create::check_summary(restored, "restoring the snapshot", masters.len())?;
    // Every member's data is in place before any starts: they form one new cluster.
    let started = ssh::for_each(
        &indices,
        |&index| masters[index].machine.name.clone(),
        |&index, progress| async move {
            let restart = Restart {
                etcd: false,
                server: false,
            };
            create::start_master(cluster, state, &masters[index], restart, &progress).await
        },
    )
    .await;
    create::check_summary(started, "starting the masters", masters.len()).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config;

    fn ha() -> Cluster {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/cluster-ha.toml");
        config::load(&path).unwrap()
    }

    #[test]
    fn each_member_is_restored_with_its_own_name_and_the_whole_cluster() {
        let cluster = ha();
        let master = &cluster.masters[1];
        let layout = Layout::new(Path::new("/var/lib/berth"));
        let script = restore_script(&cluster, master, &layout, "20261206T150405Z");
        for wanted in [
            "'snapshot' 'restore' '/var/lib/berth/snapshots/restore.db'",
            "'--name' 'master-2'",
            "'--initial-cluster' 'master-1=https://10.0.0.11:2380,master-2=https://10.0.0.12:2380,master-3=https://10.0.0.13:2380'",
            &format!("'--initial-cluster-token' '{}'", cluster.name),
            "'--initial-advertise-peer-urls' 'https://10.0.0.12:2380'",
            "'--data-dir' '/var/lib/berth/etcd.restoring'",
            "then etcdutl 'snapshot'",
            "else ETCDCTL_API=3 etcdctl 'snapshot'",
            "mv '/var/lib/berth/etcd' '/var/lib/berth/etcd.before-restore-20261206T150405Z'",
            "mv '/var/lib/berth/etcd.restoring' '/var/lib/berth/etcd'\n",
        ] {
            assert!(script.contains(wanted), "{wanted} missing from:\n{script}");
        }
        assert!(
            !script.contains("rm -rf '/var/lib/berth/etcd'\n"),
            "{script}"
        );
        // The token and the peer URL are the ones the etcd service starts with.
        let service = etcd::service(&cluster, master, &layout).command.join(" ");
        assert!(service.contains(&format!("--initial-cluster-token {}", cluster.name)));
        assert!(service.contains(&etcd::initial_cluster(&cluster)));
    }

    #[test]
    fn cleanup_removes_only_the_snapshot_and_the_old_data() {
        let script = cleanup_script(&Layout::new(Path::new("/d")));
        assert_eq!(
            script,
            "rm -f '/d/snapshots/restore.db'\nrm -rf '/d/etcd'.before-restore-*\n"
        );
    }
}
