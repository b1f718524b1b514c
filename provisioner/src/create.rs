//! `berth cluster create`: from a checked `cluster.toml` to a running
//! control plane, idempotently. Every step looks before it acts (uploads
//! compare checksums, services compare command lines), so a re-run after a
//! failure finishes the job and a re-run on a finished cluster changes
//! nothing. The cluster's secrets live in a state directory on this
//! machine, so every run hands the machines the same ones.

mod timings;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use berth_pki::Pki;

use crate::config::{Cluster, Datastore, Machine, Pool};
use crate::etcd;
use crate::join;
use crate::layout::Layout;
use crate::remote::{self, SettingsError};
use crate::service::Service;
use crate::ssh::{self, Source, Summary, Uploaded};

pub use timings::{parse as parse_timings, Phase, Timings};

/// The API servers' port on every master.
pub const API_PORT: u16 = 6443;

/// How `create` runs.
#[derive(Debug, Clone)]
pub struct CreateOptions {
    /// The cluster's secrets and kubeconfig on this machine.
    pub state_dir: PathBuf,
    /// The berth executable installed on the machines.
    pub binary: PathBuf,
    /// Limit for each SSH connection.
    pub connect_timeout: Duration,
    /// How long the API may take to answer after the servers start.
    pub ready_timeout: Duration,
}

/// Why `create` stopped; a re-run after fixing the cause goes on from there.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    /// A machine's SSH settings cannot be used.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// The state directory could not be prepared.
    #[error("cluster state in {dir}: {reason}")]
    State {
        /// The state directory.
        dir: PathBuf,
        /// What failed.
        reason: String,
    },
    /// Some machines could not be set up.
    #[error("{step} failed on {failed} of {total} machines:\n{summary}")]
    Machines {
        /// What was being done.
        step: &'static str,
        /// How many failed.
        failed: usize,
        /// How many were tried.
        total: usize,
        /// What happened where.
        summary: Summary,
    },
    /// Talking to the new cluster's API failed.
    #[error("the API at {url}: {reason}")]
    Api {
        /// The URL.
        url: String,
        /// What failed.
        reason: String,
    },
    /// Nodes did not become Ready in time.
    #[error("nodes not Ready within {timeout:?}: {nodes}; see data_dir/logs/agent.log on those machines")]
    NodesNotReady {
        /// The limit.
        timeout: Duration,
        /// The nodes still waited for.
        nodes: String,
    },
    /// The API did not answer in time.
    #[error("the API at {url} was not ready within {timeout:?} ({last}); see the server's log under data_dir/logs/server.log on the masters")]
    NotReady {
        /// The URL tried.
        url: String,
        /// The limit.
        timeout: Duration,
        /// The last answer or error.
        last: String,
    },
}

/// What a finished `create` leaves.
#[derive(Debug)]
pub struct Created {
    /// The admin kubeconfig, pointing at the first master.
    pub kubeconfig: PathBuf,
    /// What was done where.
    pub summary: Summary,
    /// How long each phase took.
    pub timings: Timings,
}

/// The cluster's secrets kept on this machine between runs.
pub(crate) struct State {
    pub(crate) dir: PathBuf,
    /// The cluster CA, admin token and kubelet client certificate every
    /// API server shares (`server-seed/tls/…`).
    pub(crate) seed: Pki,
    /// etcd's CA and certificates, on the etcd datastore.
    pub(crate) etcd: Option<etcd::Certificates>,
}

/// The files of `server-seed/tls` every master's `server/tls` gets, with their modes.
const SEED_FILES: [(&str, u32); 5] = [
    ("ca.crt", 0o644),
    ("ca.key", 0o600),
    ("admin.token", 0o600),
    ("kubelet-client.crt", 0o644),
    ("kubelet-client.key", 0o600),
];

impl State {
    pub(crate) fn open(dir: &Path, cluster: &Cluster) -> Result<Self, CreateError> {
        let failed = |reason: String| CreateError::State {
            dir: dir.to_owned(),
            reason,
        };
        std::fs::create_dir_all(dir).map_err(|e| failed(e.to_string()))?;
        let hosts: Vec<String> = cluster.masters.iter().map(|m| m.host.clone()).collect();
        let seed = Pki::load_or_create(&dir.join("server-seed"), &hosts)
            .map_err(|e| failed(e.to_string()))?;
        let etcd = match cluster.datastore {
            Datastore::Etcd => Some(
                etcd::Certificates::load_or_issue(&dir.join("etcd"), &cluster.masters)
                    .map_err(|e| failed(e.to_string()))?,
            ),
            Datastore::Sqlite => None,
        };
        Ok(Self {
            dir: dir.to_owned(),
            seed,
            etcd,
        })
    }

    pub(crate) fn seed_file(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.dir.join("server-seed/tls").join(name)).unwrap_or_default()
    }
}

/// One connected machine and what it is in the cluster.
pub(crate) struct Session<'c> {
    pub(crate) machine: &'c Machine,
    pub(crate) ssh: ssh::Machine,
}

/// Builds (or finishes, or confirms) the control plane of `cluster`.
pub async fn create(cluster: &Cluster, options: &CreateOptions) -> Result<Created, CreateError> {
    let mut timings = Timings::start();
    let state = State::open(&options.state_dir, cluster)?;
    let masters = connect(cluster.masters.iter().collect(), options.connect_timeout).await?;
    timings.lap(Phase::SshConnect);
    let result = install_masters(cluster, &state, &masters, options, &mut timings).await;
    for session in masters {
        session.ssh.close().await;
    }
    let mut summary = result?;
    let url = api_url(&cluster.masters[0]);
    let kubeconfig = state.dir.join("admin.kubeconfig");
    state
        .seed
        .write_admin_kubeconfig(&kubeconfig, &url)
        .map_err(|e| CreateError::State {
            dir: state.dir.clone(),
            reason: e.to_string(),
        })?;
    wait_ready(&state.seed, &url, options.ready_timeout).await?;
    timings.lap(Phase::ApiReady);
    if !cluster.pools.is_empty() {
        let nodes = join_pools(cluster, &state, options, &url, &mut timings).await?;
        summary.outcomes.extend(nodes.outcomes);
    }
    Ok(Created {
        kubeconfig,
        summary,
        timings,
    })
}

/// The error for a step of `for_each` that failed on some machines.
fn machines_failed(step: &'static str, total: usize, summary: Summary) -> CreateError {
    CreateError::Machines {
        step,
        failed: summary.failures().count(),
        total,
        summary,
    }
}

/// Every pool machine joins through `url`; waits for all to be Ready.
async fn join_pools(
    cluster: &Cluster,
    state: &State,
    options: &CreateOptions,
    url: &str,
    timings: &mut Timings,
) -> Result<Summary, CreateError> {
    let api_error = |reason: String| CreateError::Api {
        url: url.to_owned(),
        reason,
    };
    let client = admin_client(&state.seed, url).await.map_err(api_error)?;
    let token = join::ensure_token(&client, &state.dir)
        .await
        .map_err(api_error)?;
    timings.lap(Phase::NodeJoin);
    let members: Vec<(&Pool, &Machine)> = cluster
        .pools
        .iter()
        .flat_map(|pool| pool.machines.iter().map(move |machine| (pool, machine)))
        .collect();
    let connected = connect(
        members.iter().map(|(_, m)| *m).collect(),
        options.connect_timeout,
    )
    .await?;
    timings.lap(Phase::SshConnect);
    let ca_pem = state.seed_file("ca.crt");
    let indices: Vec<usize> = (0..connected.len()).collect();
    let new_binary: Vec<AtomicBool> = indices.iter().map(|_| AtomicBool::new(false)).collect();
    let (sessions, members, binary) = (&connected, &members, &options.binary);
    let (ca_pem, token, new_binary) = (&ca_pem, &token, &new_binary);
    let uploaded = ssh::for_each(
        &indices,
        |&index| members[index].1.name.clone(),
        |&index, progress| async move {
            let layout = Layout::new(&members[index].1.data_dir);
            progress.step("uploading berth");
            let copied = sessions[index]
                .ssh
                .upload(Source::File(binary), &path(&layout.binary()), 0o755)
                .await?;
            new_binary[index].store(matches!(copied, Uploaded::Copied { .. }), Ordering::Relaxed);
            Ok::<(), ssh::Error>(())
        },
    )
    .await;
    timings.lap(Phase::Upload);
    let summary = if uploaded.all_done() {
        ssh::for_each(
            &indices,
            |&index| members[index].1.name.clone(),
            |&index, progress| async move {
                let (pool, machine) = members[index];
                let layout = Layout::new(&machine.data_dir);
                progress.step("berth agent");
                let service = join::agent_service(cluster, pool, machine, &layout, url);
                let restart = new_binary[index].load(Ordering::Relaxed);
                let outcome = join::install_node(
                    &sessions[index].ssh,
                    &service,
                    &layout,
                    ca_pem,
                    token,
                    restart,
                )
                .await?;
                progress.step(format!("berth agent {outcome}"));
                Ok::<(), ssh::Error>(())
            },
        )
        .await
    } else {
        uploaded
    };
    for session in connected {
        session.ssh.close().await;
    }
    if !summary.all_done() {
        return Err(machines_failed("joining nodes", members.len(), summary));
    }
    let names: Vec<String> = members.iter().map(|(_, m)| m.name.clone()).collect();
    join::wait_ready(&client, &names, options.ready_timeout)
        .await
        .map_err(|waiting| CreateError::NodesNotReady {
            timeout: options.ready_timeout,
            nodes: waiting.join(", "),
        })?;
    timings.lap(Phase::NodeJoin);
    Ok(summary)
}

/// `https://HOST:6443` of a master.
pub fn api_url(master: &Machine) -> String {
    if master.host.contains(':') {
        format!("https://[{}]:{API_PORT}", master.host)
    } else {
        format!("https://{}:{API_PORT}", master.host)
    }
}

/// Connects to every machine at once; fails naming each machine that did not answer.
pub(crate) async fn connect(
    machines: Vec<&Machine>,
    timeout: Duration,
) -> Result<Vec<Session<'_>>, CreateError> {
    let attempts = machines.iter().copied().map(|machine| async move {
        let options = remote::options(machine, timeout)?;
        Ok::<_, CreateError>(
            ssh::Machine::connect(remote::target(machine), &options)
                .await
                .map(|ssh| Session { machine, ssh }),
        )
    });
    let mut sessions = Vec::new();
    let mut failures = Vec::new();
    for (machine, attempt) in machines
        .iter()
        .zip(futures::future::join_all(attempts).await)
    {
        match attempt? {
            Ok(session) => sessions.push(session),
            Err(e) => failures.push((machine.name.clone(), ssh::Outcome::Failed(e.to_string()))),
        }
    }
    if failures.is_empty() {
        return Ok(sessions);
    }
    for session in sessions {
        session.ssh.close().await;
    }
    Err(CreateError::Machines {
        step: "connecting",
        failed: failures.len(),
        total: machines.len(),
        summary: Summary { outcomes: failures },
    })
}

/// The masters in three passes, each on all of them at once: files, then
/// the etcd members until all are healthy, then the API servers.
async fn install_masters(
    cluster: &Cluster,
    state: &State,
    masters: &[Session<'_>],
    options: &CreateOptions,
    timings: &mut Timings,
) -> Result<Summary, CreateError> {
    // By index, so each machine's work borrows the sessions, not the argument.
    let indices: Vec<usize> = (0..masters.len()).collect();
    let name = |&index: &usize| masters[index].machine.name.clone();
    let new_binary: Vec<AtomicBool> = indices.iter().map(|_| AtomicBool::new(false)).collect();
    let (binary, new_binary) = (&options.binary, &new_binary);
    let uploaded = ssh::for_each(&indices, name, |&index, progress| async move {
        let session = &masters[index];
        let layout = Layout::new(&session.machine.data_dir);
        progress.step("uploading berth");
        let copied = session
            .ssh
            .upload(Source::File(binary), &path(&layout.binary()), 0o755)
            .await?;
        new_binary[index].store(matches!(copied, Uploaded::Copied { .. }), Ordering::Relaxed);
        progress.step("certificates");
        for (name, mode) in SEED_FILES {
            let remote = layout.server_dir().join("tls").join(name);
            session
                .ssh
                .upload(Source::Bytes(&state.seed_file(name)), &path(&remote), mode)
                .await?;
        }
        Ok::<(), ssh::Error>(())
    })
    .await;
    timings.lap(Phase::Upload);
    if !uploaded.all_done() {
        return Err(machines_failed(
            "setting up masters",
            masters.len(),
            uploaded,
        ));
    }
    if let Some(etcd) = &state.etcd {
        let formed = ssh::for_each(&indices, name, |&index, progress| async move {
            let session = &masters[index];
            let layout = Layout::new(&session.machine.data_dir);
            progress.step("etcd");
            let member = etcd.install(&session.ssh, session.machine, &layout).await?;
            let service = etcd::service(cluster, session.machine, &layout, &member);
            session
                .ssh
                .run_ok(&service.ensure_running(&layout, false))
                .await?;
            Ok::<(), ssh::Error>(())
        })
        .await;
        if !formed.all_done() {
            return Err(machines_failed("starting etcd", masters.len(), formed));
        }
        etcd::wait_healthy(cluster, &state.dir, options.ready_timeout)
            .await
            .map_err(|reason| CreateError::State {
                dir: state.dir.join("etcd"),
                reason: format!(
                    "etcd members: {reason}; see data_dir/logs/etcd.log on the masters"
                ),
            })?;
        timings.lap(Phase::EtcdFormation);
    }
    let summary = ssh::for_each(&indices, name, |&index, progress| async move {
        let session = &masters[index];
        let layout = Layout::new(&session.machine.data_dir);
        progress.step("berth server");
        let service = server_service(cluster, session.machine, &layout, state.etcd.as_ref());
        let restart = new_binary[index].load(Ordering::Relaxed);
        let outcome = session
            .ssh
            .run_ok(&service.ensure_running(&layout, restart))
            .await?;
        progress.step(format!("berth server {}", outcome.stdout.trim()));
        Ok::<(), ssh::Error>(())
    })
    .await;
    if summary.all_done() {
        Ok(summary)
    } else {
        Err(machines_failed(
            "setting up masters",
            masters.len(),
            summary,
        ))
    }
}

pub(crate) fn path(path: &Path) -> String {
    path.display().to_string()
}

/// `berth server` on a master.
pub(crate) fn server_service(
    cluster: &Cluster,
    master: &Machine,
    layout: &Layout,
    etcd: Option<&etcd::Certificates>,
) -> Service {
    let mut command = vec![
        path(&layout.binary()),
        "server".to_owned(),
        "--data-dir".to_owned(),
        path(&layout.server_dir()),
        "--listen".to_owned(),
        listen_address(&master.host, API_PORT),
        "--advertise-address".to_owned(),
        master.host.clone(),
        "--service-cidr".to_owned(),
        cluster.service_cidr.to_string(),
        "--cluster-cidr".to_owned(),
        cluster.cluster_cidr.to_string(),
        "--tls-san".to_owned(),
        cluster
            .masters
            .iter()
            .map(|m| m.host.clone())
            .collect::<Vec<_>>()
            .join(","),
    ];
    if let Some(etcd) = etcd {
        command.extend(etcd.server_flags(&cluster.masters, layout));
        command.push("--leader-elect".to_owned());
    }
    Service {
        name: "server".to_owned(),
        command,
    }
}

/// `HOST:PORT`, bracketing IPv6 addresses.
pub fn listen_address(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Polls `url/readyz` with the admin credentials until it answers `ok`.
pub(crate) async fn wait_ready(
    seed: &Pki,
    url: &str,
    timeout: Duration,
) -> Result<(), CreateError> {
    let started = Instant::now();
    loop {
        let last = match readyz(seed, url).await {
            Ok(body) if body.trim() == "ok" => return Ok(()),
            Ok(body) => body,
            Err(e) => e,
        };
        if started.elapsed() >= timeout {
            return Err(CreateError::NotReady {
                url: url.to_owned(),
                timeout,
                last,
            });
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// A client with the cluster admin's credentials against `url`.
pub(crate) async fn admin_client(seed: &Pki, url: &str) -> Result<kube::Client, String> {
    let kubeconfig = kube::config::Kubeconfig::from_yaml(&seed.admin_kubeconfig(url))
        .map_err(|e| e.to_string())?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .map_err(|e| e.to_string())?;
    kube::Client::try_from(config).map_err(|e| e.to_string())
}

async fn readyz(seed: &Pki, url: &str) -> Result<String, String> {
    let client = admin_client(seed, url).await?;
    let request = http::Request::get("/readyz")
        .body(Vec::new())
        .map_err(|e| e.to_string())?;
    client
        .request_text(request)
        .await
        .map_err(|e| e.to_string())
}
