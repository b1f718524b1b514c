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

pub use crate::endpoint::{api_url, listen_address, API_PORT};
pub use timings::{parse as parse_timings, Phase, Timings};

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
    /// The admin kubeconfig, naming `api_endpoint` (or the first master).
    pub kubeconfig: PathBuf,
    /// What was done where.
    pub summary: Summary,
    /// How long each phase took.
    pub timings: Timings,
    /// The NodePools applied for the `aws` pools.
    pub node_pools: Vec<String>,
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
pub(crate) const SEED_FILES: [(&str, u32); 5] = [
    ("ca.crt", 0o644),
    ("ca.key", 0o600),
    ("admin.token", 0o600),
    ("kubelet-client.crt", 0o644),
    ("kubelet-client.key", 0o600),
];

impl State {
    /// The state in `dir`, created for `cluster` where missing.
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

    fn seed_file(&self, name: &str) -> Vec<u8> {
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
    let (kubeconfig, url) = serve_kubeconfig(cluster, &state, options).await?;
    timings.lap(Phase::ApiReady);
    let node_pools = apply_node_pools(cluster, &state, &url).await?;
    if !cluster.pools.is_empty() {
        let nodes = join_pools(cluster, &state, options, &url).await?;
        summary.outcomes.extend(nodes.outcomes);
        timings.lap(Phase::NodeJoin);
    }
    Ok(Created {
        kubeconfig,
        summary,
        timings,
        node_pools,
    })
}

/// Applies the NodePool of every `aws` pool through `url`; their names.
async fn apply_node_pools(
    cluster: &Cluster,
    state: &State,
    url: &str,
) -> Result<Vec<String>, CreateError> {
    if cluster.pools.iter().all(|pool| pool.aws.is_none()) {
        return Ok(Vec::new());
    }
    let api_error = |reason: String| CreateError::Api {
        url: url.to_owned(),
        reason,
    };
    let client = admin_client(&state.seed, url).await.map_err(api_error)?;
    crate::nodepools::apply(&client, cluster)
        .await
        .map_err(api_error)
}

/// Writes the admin kubeconfig (naming `api_endpoint` or the first master) once the
/// masters run, and waits until the API answers there: the kubeconfig's
/// path and the API's URL.
pub(crate) async fn serve_kubeconfig(
    cluster: &Cluster,
    state: &State,
    options: &CreateOptions,
) -> Result<(PathBuf, String), CreateError> {
    let url = api_url(&cluster.masters[0]);
    let kubeconfig = state.dir.join("admin.kubeconfig");
    state
        .seed
        .write_admin_kubeconfig(&kubeconfig, &crate::endpoint::admin_server(cluster))
        .map_err(|e| CreateError::State {
            dir: state.dir.clone(),
            reason: e.to_string(),
        })?;
    wait_ready(&state.seed, &url, options.ready_timeout).await?;
    Ok((kubeconfig, url))
}

/// Every pool machine joins through `url`; waits for all to be Ready.
async fn join_pools(
    cluster: &Cluster,
    state: &State,
    options: &CreateOptions,
    url: &str,
) -> Result<Summary, CreateError> {
    let members: Vec<(&Pool, &Machine)> = cluster
        .pools
        .iter()
        .flat_map(|pool| pool.machines.iter().map(move |machine| (pool, machine)))
        .collect();
    join_machines(cluster, state, options, url, &members).await
}

/// `members` (pool machines) join through `url`, as `create` joins them
/// (binary, containerd, bootstrap token, agent service); waits for their
/// Nodes to be Ready.
pub(crate) async fn join_machines(
    cluster: &Cluster,
    state: &State,
    options: &CreateOptions,
    url: &str,
    members: &[(&Pool, &Machine)],
) -> Result<Summary, CreateError> {
    let api_error = |reason: String| CreateError::Api {
        url: url.to_owned(),
        reason,
    };
    let client = admin_client(&state.seed, url).await.map_err(api_error)?;
    let token = join::ensure_token(&client, &state.dir)
        .await
        .map_err(api_error)?;
    let connected = connect(
        members.iter().map(|(_, m)| *m).collect(),
        options.connect_timeout,
    )
    .await?;
    let ca_pem = state.seed_file("ca.crt");
    let indices: Vec<usize> = (0..connected.len()).collect();
    let (sessions, binary) = (&connected, &options.binary);
    let (ca_pem, token) = (&ca_pem, &token);
    let summary = ssh::for_each(
        &indices,
        |&index| members[index].1.name.clone(),
        |&index, progress| async move {
            let (pool, machine) = members[index];
            let session = &sessions[index].ssh;
            let layout = Layout::new(&machine.data_dir);
            progress.step("uploading berth");
            let new_binary = matches!(
                session
                    .upload(Source::File(binary), &path(&layout.binary()), 0o755)
                    .await?,
                Uploaded::Copied { .. }
            );
            progress.step("berth agent");
            let service = join::agent_service(cluster, pool, machine, &layout);
            let outcome =
                join::install_node(session, &service, &layout, ca_pem, token, new_binary).await?;
            progress.step(format!("berth agent {outcome}"));
            Ok::<(), ssh::Error>(())
        },
    )
    .await;
    let failed = summary.failures().count();
    for session in connected {
        session.ssh.close().await;
    }
    if failed > 0 {
        return Err(CreateError::Machines {
            step: "joining nodes",
            failed,
            total: members.len(),
            summary,
        });
    }
    let names: Vec<String> = members.iter().map(|(_, m)| m.name.clone()).collect();
    join::wait_ready(&client, &names, options.ready_timeout)
        .await
        .map_err(|waiting| CreateError::NodesNotReady {
            timeout: options.ready_timeout,
            nodes: waiting.join(", "),
        })?;
    Ok(summary)
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

/// The masters in two passes, each on all of them at once: files (binary,
/// certificates, etcd installed), then their services; on etcd it then
/// waits until every member is healthy.
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
    let prepared = ssh::for_each(&indices, name, |&index, progress| async move {
        let changed = prepare_master(state, &masters[index], binary, &progress).await?;
        new_binary[index].store(changed, Ordering::Relaxed);
        Ok::<(), ssh::Error>(())
    })
    .await;
    check_summary(prepared, "setting up masters", masters.len())?;
    timings.lap(Phase::Upload);
    let started = ssh::for_each(&indices, name, |&index, progress| async move {
        let restart = Restart {
            etcd: false,
            server: new_binary[index].load(Ordering::Relaxed),
        };
        start_master(cluster, state, &masters[index], restart, &progress).await
    })
    .await;
    let summary = check_summary(started, "setting up masters", masters.len())?;
    if state.etcd.is_some() {
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
    Ok(summary)
}

/// `summary` when every machine is done, else the error naming `step`.
pub(crate) fn check_summary(
    summary: Summary,
    step: &'static str,
    total: usize,
) -> Result<Summary, CreateError> {
    if summary.all_done() {
        Ok(summary)
    } else {
        Err(CreateError::Machines {
            step,
            failed: summary.failures().count(),
            total,
            summary,
        })
    }
}

/// Puts berth, the shared certificates and (on etcd) the member's files
/// and etcd itself on a master without starting anything; whether the
/// binary changed.
pub(crate) async fn prepare_master(
    state: &State,
    session: &Session<'_>,
    binary: &Path,
    progress: &ssh::Progress,
) -> Result<bool, ssh::Error> {
    let layout = Layout::new(&session.machine.data_dir);
    progress.step("uploading berth");
    let new_binary = matches!(
        session
            .ssh
            .upload(Source::File(binary), &path(&layout.binary()), 0o755)
            .await?,
        Uploaded::Copied { .. }
    );
    progress.step("certificates");
    for (name, mode) in SEED_FILES {
        let remote = layout.server_dir().join("tls").join(name);
        session
            .ssh
            .upload(Source::Bytes(&state.seed_file(name)), &path(&remote), mode)
            .await?;
    }
    if let Some(etcd) = &state.etcd {
        progress.step("etcd");
        etcd.install(&session.ssh, session.machine, &layout).await?;
    }
    Ok(new_binary)
}

/// What [`start_master`] restarts even when its command line is unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Restart {
    /// The etcd member (it read new certificates).
    pub etcd: bool,
    /// `berth server` (a new binary or new certificates).
    pub server: bool,
}

/// Makes sure a prepared master runs its etcd member (on etcd) and
/// `berth server` with the wanted command lines, restarting what `restart` says.
pub(crate) async fn start_master(
    cluster: &Cluster,
    state: &State,
    session: &Session<'_>,
    restart: Restart,
    progress: &ssh::Progress,
) -> Result<(), ssh::Error> {
    let layout = Layout::new(&session.machine.data_dir);
    if state.etcd.is_some() {
        let service = etcd::service(cluster, session.machine, &layout);
        let outcome = session
            .ssh
            .run_ok(&service.ensure_running(&layout, restart.etcd))
            .await?;
        progress.step(format!("etcd {}", outcome.stdout.trim()));
    }
    progress.step("berth server");
    let service = server_service(cluster, session.machine, &layout, state.etcd.as_ref());
    let outcome = session
        .ssh
        .run_ok(&service.ensure_running(&layout, restart.server))
        .await?;
    progress.step(format!("berth server {}", outcome.stdout.trim()));
    Ok(())
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
            .chain(
                cluster
                    .api_endpoint
                    .as_deref()
                    .map(berth_pki::endpoint_host),
            )
            .collect::<Vec<_>>()
            .join(","),
    ];
    if let Some(etcd) = etcd {
        command.extend(etcd.server_flags(&cluster.masters, layout));
        command.push("--leader-elect".to_owned());
    }
    if let Some(aws) = cluster.aws.as_ref().filter(|aws| aws.launches_nodes()) {
        command.extend(aws.config.server_flags(&cluster.name));
    }
    Service {
        name: "server".to_owned(),
        command,
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
    kube::Client::try_from(admin_config(seed, url).await?).map_err(|e| e.to_string())
}

/// The client configuration with the cluster admin's credentials against `url`.
pub(crate) async fn admin_config(seed: &Pki, url: &str) -> Result<kube::Config, String> {
    let kubeconfig = kube::config::Kubeconfig::from_yaml(&seed.admin_kubeconfig(url))
        .map_err(|e| e.to_string())?;
    kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .map_err(|e| e.to_string())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn server_command(aws: &str) -> Vec<String> {
        let text =
            format!("name = \"lab\"\n[masters]\nmachines = [{{ host = \"10.0.0.1\" }}]\n{aws}");
        let cluster = crate::config::parse("cluster.toml", &text).expect("valid");
        let layout = Layout::new(&cluster.masters[0].data_dir);
        server_service(&cluster, &cluster.masters[0], &layout, None).command
    }

    #[test]
    fn the_aws_block_switches_the_servers_aws_provider_on() {
        let plain = server_command("");
        assert!(
            !plain.iter().any(|arg| arg.starts_with("--aws")),
            "{plain:?}"
        );
        let aws = server_command(
            "[aws]\nregion = \"eu-west-1\"\nendpoint_url = \"http://127.0.0.1:5000\"\n\
             binary_url = \"https://example.com/berth\"\n",
        );
        let tail = &aws[aws.len() - 8..];
        assert_eq!(
            tail,
            [
                "--aws-cluster",
                "lab",
                "--aws-region",
                "eu-west-1",
                "--aws-endpoint-url",
                "http://127.0.0.1:5000",
                "--aws-binary-url",
                "https://example.com/berth"
            ]
        );
    }
}
