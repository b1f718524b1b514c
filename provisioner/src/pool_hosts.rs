//! Bare machines of an `ssh` NodePool: one host per NodeClaim, held by a
//! marker file on the host (written before anything else, so a crash
//! mid-join still shows the host as taken), joined as a `berth agent` the
//! way `cluster create` joins pool machines, and cleaned back to nothing.
//! Provider-neutral: the NodePool glue lives in the berth binary.

pub mod marker;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use berth_api::nodepool::{parse_ssh_host, SshTemplate};
use k8s_openapi::api::core::v1::Taint;

use crate::delete::teardown_at;
use crate::join::{install_node, push_list};
use crate::layout::Layout;
use crate::service::Service;
use crate::ssh::{self, shell_quote, Source, Target};

pub use marker::Marker;

/// The scheme of the provider ids of pool hosts (`ssh://10.0.0.5`).
pub const SCHEME: &str = "ssh://";

/// One host of a pool's inventory: how to log in and where berth lives there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolHost {
    /// The entry as the template lists it (`10.0.0.5`, `node-1:2222`).
    pub entry: String,
    /// Where to log in.
    pub target: Target,
    /// berth's folder on the host.
    pub layout: Layout,
}

impl PoolHost {
    /// Host `entry` of `template`; Err says why the entry is unusable.
    pub fn new(template: &SshTemplate, entry: &str) -> Result<Self, String> {
        let (host, port) = parse_ssh_host(entry).map_err(|e| format!("{entry:?}: {e}"))?;
        Ok(Self {
            entry: entry.to_owned(),
            layout: Layout::new(Path::new(&template.data_dir(&host))),
            target: Target::new(template.user(), host, port),
        })
    }

    /// Every host of `template`, in order.
    pub fn all(template: &SshTemplate) -> Result<Vec<Self>, String> {
        template
            .hosts
            .iter()
            .map(|e| Self::new(template, e))
            .collect()
    }

    /// `ssh://ENTRY`, the id the NodeClaim records.
    pub fn provider_id(&self) -> String {
        format!("{SCHEME}{}", self.entry)
    }

    /// The marker file that says which claim holds the host.
    pub fn marker_path(&self) -> PathBuf {
        self.layout.root().join("nodepool-machine")
    }
}

/// What every joining host gets from the controller's own settings.
#[derive(Debug, Clone)]
pub struct JoinSettings {
    /// The API server URL(s) the agent uses (comma-separated to fail over).
    pub server: String,
    /// The cluster CA the agent trusts the server with (PEM).
    pub ca_pem: Vec<u8>,
    /// The berth binary uploaded to each host.
    pub binary: PathBuf,
    /// `berth agent --runtime` (`cri`, or `simulated` for hollow nodes).
    pub runtime: String,
    /// Further `berth agent` flags (`--network-mode vxlan`, `--cluster-dns …`).
    pub agent_args: Vec<String>,
}

/// The Node a host becomes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeSpec {
    /// Node name.
    pub name: String,
    /// Its pool (`--pool`).
    pub pool: String,
    /// Labels it registers with.
    pub labels: BTreeMap<String, String>,
    /// Taints it registers with.
    pub taints: Vec<Taint>,
}

/// A taint as `berth agent --taints` reads it: `key=value:Effect` or `key:Effect`.
pub fn taint_flag(taint: &Taint) -> String {
    match taint.value.as_deref().filter(|v| !v.is_empty()) {
        Some(value) => format!("{}={value}:{}", taint.key, taint.effect),
        None => format!("{}:{}", taint.key, taint.effect),
    }
}

/// `berth agent` on a pool host, joining with the bootstrap token and CA
/// that [`join`] puts in the host's pki folder.
pub fn agent_service(host: &PoolHost, settings: &JoinSettings, node: &NodeSpec) -> Service {
    let layout = &host.layout;
    let pki = layout.pki_dir();
    let path = |p: PathBuf| p.display().to_string();
    let mut command = vec![
        path(layout.binary()),
        "agent".to_owned(),
        "--runtime".to_owned(),
        settings.runtime.clone(),
        "--server".to_owned(),
        settings.server.clone(),
        "--bootstrap-token-file".to_owned(),
        path(pki.join("bootstrap-token")),
        "--ca-file".to_owned(),
        path(pki.join("ca.crt")),
        "--name".to_owned(),
        node.name.clone(),
        "--data-dir".to_owned(),
        path(layout.agent_dir()),
        "--pool".to_owned(),
        node.pool.clone(),
    ];
    if host.target.host.parse::<IpAddr>().is_ok() {
        command.extend(["--node-ip".to_owned(), host.target.host.clone()]);
    }
    push_list(
        &mut command,
        "--labels",
        node.labels.iter().map(|(k, v)| format!("{k}={v}")),
    );
    push_list(&mut command, "--taints", node.taints.iter().map(taint_flag));
    command.extend(settings.agent_args.iter().cloned());
    Service {
        name: "agent".to_owned(),
        command,
    }
}

/// The marker on the host, None when it has none.
pub async fn read_marker(
    session: &ssh::Machine,
    host: &PoolHost,
) -> Result<Option<Marker>, ssh::Error> {
    let file = shell_quote(&host.marker_path().display().to_string());
    let output = session
        .run_ok(&format!("if [ -e {file} ]; then echo held; cat {file}; fi"))
        .await?;
    Ok(marker::held(&output.stdout))
}

/// Writes `marker` unless the host already has one (atomically: two
/// launches racing for a host cannot both win); returns the marker the host
/// holds afterwards, `marker` itself when it is now ours.
pub async fn take(
    session: &ssh::Machine,
    host: &PoolHost,
    marker: &Marker,
) -> Result<Marker, ssh::Error> {
    let root = shell_quote(&host.layout.root().display().to_string());
    let file = shell_quote(&host.marker_path().display().to_string());
    let text = shell_quote(&marker.to_text());
    let script = format!(
        "set -e\nmkdir -p {root}\nif (set -C; printf '%s' {text} > {file}) 2>/dev/null; then echo held; printf '%s' {text}; else echo held; cat {file}; fi"
    );
    let output = session.run_ok(&script).await?;
    Ok(marker::held(&output.stdout).unwrap_or_default())
}

/// Uploads berth, the CA and `token` to the host and starts its agent as
/// `node` (idempotent: an agent already running the same way is left alone).
pub async fn join(
    session: &ssh::Machine,
    host: &PoolHost,
    settings: &JoinSettings,
    node: &NodeSpec,
    token: &str,
) -> Result<(), ssh::Error> {
    let binary = host.layout.binary().display().to_string();
    let copied = session
        .upload(Source::File(&settings.binary), &binary, 0o755)
        .await?;
    let restart = matches!(copied, ssh::Uploaded::Copied { .. });
    let service = agent_service(host, settings, node);
    let outcome = install_node(
        session,
        &service,
        &host.layout,
        &settings.ca_pem,
        token,
        restart,
    )
    .await?;
    tracing::info!(machine = %session.name(), node = %node.name, outcome, "pool host joined");
    Ok(())
}

/// Stops the agent and removes everything berth put on the host, marker
/// last; Ok when the host is already clean.
pub async fn clean(session: &ssh::Machine, host: &PoolHost) -> Result<(), ssh::Error> {
    session.run_ok(&teardown_at(&host.layout)).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(entry: &str) -> PoolHost {
        let template = SshTemplate {
            hosts: vec![entry.to_owned()],
            user: Some("ops".into()),
            data_dir: Some("/srv/{host}".into()),
        };
        PoolHost::new(&template, entry).unwrap()
    }

    #[test]
    fn hosts_carry_their_login_folder_and_id() {
        let h = host("10.0.0.5:2222");
        assert_eq!(h.target, Target::new("ops", "10.0.0.5", 2222));
        assert_eq!(h.layout.root(), Path::new("/srv/10.0.0.5"));
        assert_eq!(h.provider_id(), "ssh://10.0.0.5:2222");
        assert_eq!(h.marker_path(), Path::new("/srv/10.0.0.5/nodepool-machine"));
        assert!(PoolHost::new(&SshTemplate::default(), "a:b").is_err());
    }

    #[test]
    fn the_agent_registers_with_the_claims_labels_and_taints() {
        let settings = JoinSettings {
            server: "https://10.0.0.1:6443".into(),
            ca_pem: Vec::new(),
            binary: PathBuf::from("/usr/bin/berth"),
            runtime: "simulated".into(),
            agent_args: vec!["--network-mode".into(), "vxlan".into()],
        };
        let node = NodeSpec {
            name: "gpu-abcde".into(),
            pool: "gpu".into(),
            labels: BTreeMap::from([("tier".into(), "gpu".into())]),
            taints: vec![
                Taint {
                    key: "nvidia.com/gpu".into(),
                    value: Some("present".into()),
                    effect: "NoSchedule".into(),
                    ..Default::default()
                },
                Taint {
                    key: "boot".into(),
                    effect: "NoExecute".into(),
                    ..Default::default()
                },
            ],
        };
        let command = agent_service(&host("10.0.0.5"), &settings, &node)
            .command
            .join(" ");
        assert_eq!(
            command,
            "/srv/10.0.0.5/bin/berth agent --runtime simulated --server https://10.0.0.1:6443 \
             --bootstrap-token-file /srv/10.0.0.5/pki/bootstrap-token --ca-file /srv/10.0.0.5/pki/ca.crt \
             --name gpu-abcde --data-dir /srv/10.0.0.5/agent --pool gpu --node-ip 10.0.0.5 \
             --labels tier=gpu --taints nvidia.com/gpu=present:NoSchedule,boot:NoExecute \
             --network-mode vxlan"
        );
    }
}
