//! `berth cluster upgrade --binary PATH`: a rolling upgrade that keeps the
//! API answering. Masters go one at a time (new binary uploaded beside the
//! old, `berth server` stopped gracefully, swapped, started, then its
//! `/readyz` and every etcd member must answer before the next); then pool
//! nodes one at a time (cordon, drain through the Eviction API, swap,
//! restart the agent, wait until the Node reports Ready again, uncordon).
//! A machine whose installed and running binary already have the new
//! checksum is skipped, so a re-run after a failure goes on where it stopped.

mod cordon;

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use k8s_openapi::api::core::v1::Node;
use kube::api::Api;
use tokio::time::Instant;

use crate::config::{Cluster, Datastore, Machine, Pool};
use crate::create::{self, path, State};
use crate::drain;
use crate::etcd;
use crate::join;
use crate::layout::Layout;
use crate::service::Service;
use crate::ssh::{self, shell_quote, Source};

/// How `upgrade` runs.
#[derive(Debug, Clone)]
pub struct UpgradeOptions {
    /// The cluster's secrets and kubeconfig on this machine.
    pub state_dir: PathBuf,
    /// The new berth executable.
    pub binary: PathBuf,
    /// Limit for each SSH connection.
    pub connect_timeout: Duration,
    /// How long a restarted master or node may take to be ready again.
    pub ready_timeout: Duration,
    /// How long draining one node may take.
    pub drain_timeout: Duration,
}

/// Why `upgrade` stopped; a re-run after fixing the cause skips the
/// machines already done.
#[derive(Debug, thiserror::Error)]
pub enum UpgradeError {
    /// The state directory or the new binary could not be read.
    #[error(transparent)]
    Create(#[from] create::CreateError),
    /// The new binary could not be read.
    #[error("reading {path}: {source}")]
    Binary {
        /// The binary.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// One machine could not be upgraded; the machines before it were.
    #[error("{machine}: {step}: {reason}")]
    Machine {
        /// The machine's name in cluster.toml.
        machine: String,
        /// What was being done.
        step: &'static str,
        /// What failed.
        reason: String,
    },
}

/// The berth a machine has, before or after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    /// sha256 of the installed binary (`none` when missing).
    pub installed: String,
    /// sha256 of the running service's executable (`none` when not running).
    pub running: String,
    /// What `berth --version` prints.
    pub version: String,
    /// sha256 of the `berth supervise` keeping etcd running (`none` where
    /// etcd runs under systemd or not at all).
    pub etcd_supervisor: String,
}

impl Installed {
    /// Reads [`probe_script`]'s output.
    fn parse(stdout: &str) -> Self {
        let mut lines = stdout.lines().map(str::trim);
        let mut next = || lines.next().filter(|l| !l.is_empty()).unwrap_or("none");
        Self {
            installed: next().to_owned(),
            running: next().to_owned(),
            version: next().to_owned(),
            etcd_supervisor: next().to_owned(),
        }
    }

    /// Whether the file and every running berth process are `sha256`.
    pub fn is(&self, sha256: &str) -> bool {
        self.installed == sha256 && self.running == sha256 && !self.etcd_needs_restart(sha256)
    }

    /// Whether etcd's supervisor is another berth than `sha256`.
    fn etcd_needs_restart(&self, sha256: &str) -> bool {
        self.etcd_supervisor != "none" && self.etcd_supervisor != sha256
    }
}

impl fmt::Display for Installed {
    /// `berth 0.1.0 (sha256 1a2b3c4d5e6f)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (sha256 {})", self.version, short(&self.running))
    }
}

fn short(sha256: &str) -> &str {
    sha256.get(..12).unwrap_or(sha256)
}

/// What happened to one machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MachineUpgrade {
    /// The machine's name.
    pub machine: String,
    /// What it ran before.
    pub before: Installed,
    /// What it runs now; `None` when it was skipped.
    pub after: Option<Installed>,
}

impl fmt::Display for MachineUpgrade {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.after {
            Some(after) => write!(f, "{}: {} → {after}", self.machine, self.before),
            None => write!(f, "{}: already on {} (skipped)", self.machine, self.before),
        }
    }
}

/// Every machine, in the order it was upgraded.
#[derive(Debug, Clone, Default)]
pub struct Upgraded {
    /// Per machine.
    pub machines: Vec<MachineUpgrade>,
}

impl Upgraded {
    /// Adds a machine's outcome and says it on stderr as it happens.
    fn record(&mut self, machine: MachineUpgrade) {
        eprintln!("{machine}");
        self.machines.push(machine);
    }
}

impl fmt::Display for Upgraded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for machine in &self.machines {
            writeln!(f, "{machine}")?;
        }
        Ok(())
    }
}

/// The script printing, one per line, the sha256 of the installed binary,
/// of the running service `name`'s executable (its supervisor or systemd's
/// main process), the installed version, and the sha256 of etcd's
/// supervisor where `berth supervise` keeps etcd running.
pub fn probe_script(layout: &Layout, name: &str) -> String {
    let binary = shell_quote(&path(&layout.binary()));
    let pid_file = shell_quote(&path(&layout.pid_file(name)));
    let etcd_pid_file = shell_quote(&path(&layout.pid_file("etcd")));
    format!(
        "sum() {{ if [ -r \"$1\" ]; then s=$(sha256sum < \"$1\") && echo \"${{s%% *}}\"; else echo none; fi; }}\n\
         sum {binary}\n\
         if [ -d /run/systemd/system ] && [ -f /etc/systemd/system/berth-{name}.service ]; then pid=$(systemctl show -p MainPID --value berth-{name}); \
         else pid=$(cat {pid_file} 2>/dev/null || true); fi\n\
         if [ -n \"$pid\" ] && [ \"$pid\" != 0 ] && kill -0 \"$pid\" 2>/dev/null; then sum \"/proc/$pid/exe\"; else echo none; fi\n\
         {binary} --version 2>/dev/null || echo 'not installed'\n\
         pid=$(cat {etcd_pid_file} 2>/dev/null || true)\n\
         if [ -n \"$pid\" ] && kill -0 \"$pid\" 2>/dev/null; then sum \"/proc/$pid/exe\"; else echo none; fi\n"
    )
}

/// The new binary's path beside the installed one.
fn staged(layout: &Layout) -> PathBuf {
    layout.binary().with_file_name("berth.new")
}

/// The script that puts the staged binary in place (running processes
/// keep the old file open until they stop).
fn swap_script(layout: &Layout) -> String {
    format!(
        "mv -f {} {}",
        shell_quote(&path(&staged(layout))),
        shell_quote(&path(&layout.binary())),
    )
}

/// sha256 of the local file at `path`, as `sha256sum` prints it.
fn local_sha256(path: &std::path::Path) -> Result<String, UpgradeError> {
    let bytes = std::fs::read(path).map_err(|source| UpgradeError::Binary {
        path: path.to_owned(),
        source,
    })?;
    Ok(ring::digest::digest(&ring::digest::SHA256, &bytes)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// One machine's SSH session for the length of its upgrade.
struct Step<'m> {
    machine: &'m Machine,
    layout: Layout,
    ssh: ssh::Machine,
}

impl<'m> Step<'m> {
    async fn connect(machine: &'m Machine, timeout: Duration) -> Result<Self, UpgradeError> {
        let failed = |reason: String| UpgradeError::Machine {
            machine: machine.name.clone(),
            step: "connecting",
            reason,
        };
        let options =
            crate::remote::options(machine, timeout).map_err(|e| failed(e.to_string()))?;
        let ssh = ssh::Machine::connect(crate::remote::target(machine), &options)
            .await
            .map_err(|e| failed(e.to_string()))?;
        Ok(Self {
            machine,
            layout: Layout::new(&machine.data_dir),
            ssh,
        })
    }

    fn failed(&self, step: &'static str) -> impl Fn(String) -> UpgradeError + '_ {
        move |reason| UpgradeError::Machine {
            machine: self.machine.name.clone(),
            step,
            reason,
        }
    }

    async fn probe(&self, service: &str) -> Result<Installed, UpgradeError> {
        let output = self
            .ssh
            .run_ok(&probe_script(&self.layout, service))
            .await
            .map_err(|e| self.failed("reading the installed berth")(e.to_string()))?;
        Ok(Installed::parse(&output.stdout))
    }

    /// Uploads the new binary beside the old one and moves it over it.
    async fn swap(&self, binary: &std::path::Path) -> Result<(), UpgradeError> {
        self.ssh
            .upload(Source::File(binary), &path(&staged(&self.layout)), 0o755)
            .await
            .map_err(|e| self.failed("uploading the new binary")(e.to_string()))?;
        self.ssh
            .run_ok(&swap_script(&self.layout))
            .await
            .map_err(|e| self.failed("swapping the binary")(e.to_string()))?;
        Ok(())
    }

    /// Makes sure `service` runs, restarting it when `restart`.
    async fn restart(&self, service: &Service, restart: bool) -> Result<(), UpgradeError> {
        self.ssh
            .run_ok(&service.ensure_running(&self.layout, restart))
            .await
            .map_err(|e| self.failed("restarting")(format!("{}: {e}", service.name)))?;
        Ok(())
    }
}

/// Upgrades every machine of `cluster` to `options.binary`, masters first.
pub async fn upgrade(
    cluster: &Cluster,
    options: &UpgradeOptions,
) -> Result<Upgraded, UpgradeError> {
    let state = State::open(&options.state_dir, cluster)?;
    let sha256 = local_sha256(&options.binary)?;
    let mut upgraded = Upgraded::default();
    for master in &cluster.masters {
        let step = Step::connect(master, options.connect_timeout).await?;
        let result = roll(&step, "server", &sha256, |before| {
            let restart_etcd = before.etcd_needs_restart(&sha256);
            upgrade_master(cluster, &state, &step, restart_etcd, options)
        })
        .await;
        step.ssh.close().await;
        upgraded.record(result?);
    }
    if cluster.pools.is_empty() {
        return Ok(upgraded);
    }
    let url = create::api_url(&cluster.masters[0]);
    let client = create::admin_client(&state.seed, &url)
        .await
        .map_err(|reason| create::CreateError::Api {
            url: url.clone(),
            reason,
        })?;
    for pool in &cluster.pools {
        for machine in &pool.machines {
            let step = Step::connect(machine, options.connect_timeout).await?;
            let mut result = roll(&step, "agent", &sha256, |_| {
                upgrade_node(cluster, pool, &client, &step, options)
            })
            .await;
            // Also for a node a failed run left cordoned after its swap.
            if result.is_ok() {
                if let Err(reason) =
                    cordon::release(&client, &machine.name, options.ready_timeout).await
                {
                    result = Err(step.failed("uncordoning")(reason));
                }
            }
            step.ssh.close().await;
            upgraded.record(result?);
        }
    }
    Ok(upgraded)
}

/// Reads what the machine runs (its `service`); unless that is already
/// `sha256`, does `work` and reads it again.
async fn roll<Fut>(
    step: &Step<'_>,
    service: &str,
    sha256: &str,
    work: impl FnOnce(Installed) -> Fut,
) -> Result<MachineUpgrade, UpgradeError>
where
    Fut: std::future::Future<Output = Result<(), UpgradeError>>,
{
    let before = step.probe(service).await?;
    let after = if before.is(sha256) {
        None
    } else {
        work(before.clone()).await?;
        Some(step.probe(service).await?)
    };
    Ok(MachineUpgrade {
        machine: step.machine.name.clone(),
        before,
        after,
    })
}

#[tracing::instrument(skip_all, fields(machine = %step.machine.name))]
async fn upgrade_master(
    cluster: &Cluster,
    state: &State,
    step: &Step<'_>,
    restart_etcd: bool,
    options: &UpgradeOptions,
) -> Result<(), UpgradeError> {
    step.swap(&options.binary).await?;
    if cluster.datastore == Datastore::Etcd {
        // Under `berth supervise`, etcd's supervisor is berth too: restarted
        // (etcd hands over leadership when stopped) and healthy before the server.
        let member = etcd::service(cluster, step.machine, &step.layout);
        step.restart(&member, restart_etcd).await?;
        etcd::wait_healthy(cluster, &options.state_dir, options.ready_timeout)
            .await
            .map_err(step.failed("waiting for etcd"))?;
    }
    let service = create::server_service(cluster, step.machine, &step.layout, state.etcd.as_ref());
    step.restart(&service, true).await?;
    let url = create::api_url(step.machine);
    create::wait_ready(&state.seed, &url, options.ready_timeout)
        .await
        .map_err(|e| step.failed("waiting for /readyz")(e.to_string()))?;
    if cluster.datastore == Datastore::Etcd {
        etcd::wait_healthy(cluster, &options.state_dir, options.ready_timeout)
            .await
            .map_err(step.failed("waiting for etcd"))?;
    }
    Ok(())
}

#[tracing::instrument(skip_all, fields(machine = %step.machine.name))]
async fn upgrade_node(
    cluster: &Cluster,
    pool: &Pool,
    client: &kube::Client,
    step: &Step<'_>,
    options: &UpgradeOptions,
) -> Result<(), UpgradeError> {
    let node = &step.machine.name;
    cordon::cordon(client, node)
        .await
        .map_err(step.failed("cordoning"))?;
    let report = |line: String| tracing::info!(node = %node, "{line}");
    drain::drain(client, node, options.drain_timeout, false, &report)
        .await
        .map_err(|e| step.failed("draining")(e.to_string()))?;
    let service = join::agent_service(cluster, pool, step.machine, &step.layout);
    // Heartbeats carry whole seconds.
    let restarted = jiff::Timestamp::from_second(jiff::Timestamp::now().as_second())
        .unwrap_or_else(|_| jiff::Timestamp::now());
    step.swap(&options.binary).await?;
    step.restart(&service, true).await?;
    wait_node_ready_since(client, node, restarted, options.ready_timeout)
        .await
        .map_err(step.failed("waiting for the Node to be Ready"))
}

/// Whether `node` is Ready by a heartbeat sent at or after `since` (so by
/// the restarted agent, not the status its predecessor left).
pub fn ready_since(node: &Node, since: jiff::Timestamp) -> bool {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .any(|c| {
            c.type_ == "Ready"
                && c.status == "True"
                && c.last_heartbeat_time.as_ref().is_some_and(|t| t.0 >= since)
        })
}

async fn wait_node_ready_since(
    client: &kube::Client,
    node: &str,
    since: jiff::Timestamp,
    timeout: Duration,
) -> Result<(), String> {
    let nodes: Api<Node> = Api::all(client.clone());
    let deadline = Instant::now() + timeout;
    loop {
        let last = match nodes.get_opt(node).await {
            Ok(Some(n)) if ready_since(&n, since) => return Ok(()),
            Ok(Some(_)) => "not Ready since the restart".to_owned(),
            Ok(None) => "no such Node".to_owned(),
            Err(e) => e.to_string(),
        };
        if Instant::now() >= deadline {
            return Err(format!("{last} after {timeout:?}"));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    #[test]
    fn only_a_machine_whose_file_and_process_are_new_is_skipped() {
        let cases = [
            (format!("{A}\n{A}\nberth 0.1.0\n"), true, "both new"),
            (
                format!("{A}\n{A}\nberth 0.1.0\n{A}\n"),
                true,
                "etcd's supervisor new too",
            ),
            (
                format!("{A}\n{A}\nberth 0.1.0\nnone\n"),
                true,
                "etcd under systemd",
            ),
            (
                format!("{A}\n{A}\nberth 0.1.0\n{B}\n"),
                false,
                "etcd's supervisor old",
            ),
            (
                format!("{A}\n{B}\nberth 0.1.0\n"),
                false,
                "swapped, not restarted",
            ),
            (
                format!("{B}\n{A}\nberth 0.1.0\n"),
                false,
                "file replaced since",
            ),
            (format!("{A}\nnone\nberth 0.1.0\n"), false, "not running"),
            (
                "none\nnone\nnot installed\n".to_owned(),
                false,
                "nothing there",
            ),
            (String::new(), false, "no answer"),
        ];
        for (stdout, skipped, case) in cases {
            assert_eq!(Installed::parse(&stdout).is(A), skipped, "{case}");
        }
    }

    #[test]
    fn each_machine_prints_old_and_new_version_with_checksums() {
        let before = Installed::parse(&format!("{B}\n{B}\nberth 0.1.0\n"));
        let after = Installed::parse(&format!("{A}\n{A}\nberth 0.2.0\n"));
        let upgraded = MachineUpgrade {
            machine: "m1".to_owned(),
            before: before.clone(),
            after: Some(after),
        };
        assert_eq!(
            upgraded.to_string(),
            "m1: berth 0.1.0 (sha256 bbbbbbbbbbbb) → berth 0.2.0 (sha256 aaaaaaaaaaaa)"
        );
        let skipped = MachineUpgrade {
            machine: "n1".to_owned(),
            before,
            after: None,
        };
        assert_eq!(
            skipped.to_string(),
            "n1: already on berth 0.1.0 (sha256 bbbbbbbbbbbb) (skipped)"
        );
    }

    fn probe(layout: &Layout) -> Installed {
        let output = std::process::Command::new("sh")
            .arg("-c")
            .arg(probe_script(layout, "server"))
            .output()
            .unwrap();
        Installed::parse(&String::from_utf8_lossy(&output.stdout))
    }

    #[test]
    fn the_probe_reads_what_the_script_prints() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path());
        let found = probe(&layout);
        assert_eq!(found.installed, "none");
        assert_eq!(found.running, "none");
        assert_eq!(found.version, "not installed");
        std::fs::create_dir_all(dir.path().join("bin")).unwrap();
        std::fs::write(layout.binary(), "x").unwrap();
        std::fs::create_dir_all(dir.path().join("run")).unwrap();
        std::fs::write(layout.pid_file("server"), std::process::id().to_string()).unwrap();
        let found = probe(&layout);
        assert_eq!(found.installed, local_sha256(&layout.binary()).unwrap());
        let exe = std::fs::read_link("/proc/self/exe").unwrap();
        assert_eq!(found.running, local_sha256(&exe).unwrap());
    }

    #[test]
    fn a_node_counts_as_ready_only_by_a_heartbeat_after_the_restart() {
        let node = |status: &str, heartbeat: &str| -> Node {
            serde_json::from_value(serde_json::json!({
                "metadata": { "name": "n1" },
                "status": { "conditions": [{
                    "type": "Ready", "status": status, "lastHeartbeatTime": heartbeat
                }]}
            }))
            .unwrap()
        };
        let since: jiff::Timestamp = "2026-01-01T00:00:10Z".parse().unwrap();
        let cases = [
            ("True", "2026-01-01T00:00:11Z", true),
            ("True", "2026-01-01T00:00:10Z", true),
            ("True", "2026-01-01T00:00:09Z", false),
            ("False", "2026-01-01T00:00:11Z", false),
        ];
        for (status, heartbeat, want) in cases {
            assert_eq!(
                ready_since(&node(status, heartbeat), since),
                want,
                "{status} {heartbeat}"
            );
        }
    }
}
