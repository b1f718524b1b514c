//! `berth cluster status`: what runs where, read from the machines
//! themselves (services and the installed version over SSH), etcd (members,
//! health and leader), the API (Nodes) and the state directory (when the
//! certificates expire). A part that cannot be read says why in its place;
//! the report is always printed.

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, SystemTime};

use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, ListParams};

use crate::config::{Cluster, Datastore, Machine, Role};
use crate::etcd;
use crate::layout::Layout;
use crate::remote;
use crate::ssh::shell_quote;

/// The services a machine of `role` runs.
fn services(cluster: &Cluster, role: Role<'_>) -> &'static [&'static str] {
    match (role, cluster.datastore) {
        (Role::Master, Datastore::Etcd) => &["etcd", "server"],
        (Role::Master, Datastore::Sqlite) => &["server"],
        (Role::Node(_), _) => &["agent"],
    }
}

/// The script printing `NAME running|stopped` per service, then the installed version.
fn probe_script(layout: &Layout, names: &[&str]) -> String {
    let mut script = String::new();
    for name in names {
        let pid = shell_quote(&layout.pid_file(name).display().to_string());
        let _ = writeln!(
            script,
            "if [ -d /run/systemd/system ] && systemctl is-active --quiet berth-{name}; then echo '{name} running'; \
             elif [ -f {pid} ] && kill -0 \"$(cat {pid})\" 2>/dev/null; then echo '{name} running'; else echo '{name} stopped'; fi"
        );
    }
    let binary = shell_quote(&layout.binary().display().to_string());
    let _ = writeln!(
        script,
        "{binary} --version 2>/dev/null || echo 'not installed'"
    );
    script
}

/// One machine's line: role, services, version, or why it could not be read.
async fn machine_line(
    cluster: &Cluster,
    role: Role<'_>,
    machine: &Machine,
    timeout: Duration,
) -> String {
    let role_name = match role {
        Role::Master => "master".to_owned(),
        Role::Node(pool) => format!("node ({})", pool.name),
    };
    let layout = Layout::new(&machine.data_dir);
    let probe = probe_script(&layout, services(cluster, role));
    match remote::run_once(machine, timeout, &probe).await {
        Ok(stdout) => {
            let lines: Vec<&str> = stdout.lines().collect();
            let (version, services) = lines.split_last().unwrap_or((&"?", &[]));
            format!(
                "{:<12} {:<14} {:<16} {:<34} {}",
                machine.name,
                role_name,
                machine.host,
                services.join(", "),
                version
            )
        }
        Err(e) => format!(
            "{:<12} {:<14} {:<16} unreachable: {e}",
            machine.name, role_name, machine.host
        ),
    }
}

/// etcd's members, their health and the leader, asked over TLS with the
/// API servers' client certificate.
async fn etcd_lines(cluster: &Cluster, state_dir: &Path) -> Vec<String> {
    let mut lines = match etcd::member_health(cluster, state_dir).await {
        Err(e) => return vec![format!("etcd: {e}")],
        Ok(members) => members
            .into_iter()
            .map(|(name, health)| match health {
                Ok(health) => format!(
                    "etcd {name:<12} healthy, {}, version {}",
                    if health.leader { "leader" } else { "follower" },
                    health.version
                ),
                Err(e) => format!("etcd {name:<12} unhealthy: {e}"),
            })
            .collect::<Vec<_>>(),
    };
    lines.push(
        match etcd::member_names(state_dir, &cluster.masters).await {
            Ok(names) => format!("etcd members ({}): {}", names.len(), names.join(", ")),
            Err(e) => format!("etcd members: {e}"),
        },
    );
    lines
}

/// The Nodes as the API sees them: name, Ready, version.
async fn node_lines(client: &kube::Client) -> Vec<String> {
    let nodes: Api<Node> = Api::all(client.clone());
    match nodes.list(&ListParams::default()).await {
        Ok(list) => list
            .items
            .iter()
            .map(|node| {
                let status = node.status.clone().unwrap_or_default();
                let ready = status
                    .conditions
                    .unwrap_or_default()
                    .iter()
                    .find(|c| c.type_ == "Ready")
                    .map_or("Unknown".to_owned(), |c| {
                        if c.status == "True" {
                            "Ready".to_owned()
                        } else {
                            "NotReady".to_owned()
                        }
                    });
                let version = status
                    .node_info
                    .map(|i| i.kubelet_version)
                    .unwrap_or_default();
                format!(
                    "node {:<12} {ready:<9} {version}",
                    node.metadata.name.clone().unwrap_or_default()
                )
            })
            .collect(),
        Err(e) => vec![format!("API: {e}")],
    }
}

/// When each certificate in the state directory expires, soonest first.
fn certificate_lines(state_dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for dir in [state_dir.join("server-seed/tls"), state_dir.join("etcd")] {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "crt") {
                if let Some(expires) = std::fs::read_to_string(&path)
                    .ok()
                    .and_then(|pem| berth_pki::expiry(&pem).ok())
                {
                    let name = path
                        .strip_prefix(state_dir)
                        .unwrap_or(&path)
                        .display()
                        .to_string();
                    found.push((expires, name));
                }
            }
        }
    }
    found.sort();
    let now = SystemTime::now();
    found
        .into_iter()
        .map(|(expires, name)| {
            let days = expires
                .duration_since(now)
                .map_or(0, |left| left.as_secs() / 86_400);
            format!(
                "certificate {name:<40} expires {} ({days} days)",
                format_time(expires)
            )
        })
        .collect()
}

/// A time as the reports print it, to the second (a renewal shows the
/// same day): `2027-12-06 15:04:05 UTC`.
pub fn format_time(time: SystemTime) -> String {
    jiff::Timestamp::try_from(time).map_or_else(
        |_| "?".to_owned(),
        |t| t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string(),
    )
}

/// The whole report for `cluster`, whose state is in `state_dir`; `client`
/// talks to its API with the admin's credentials, when it could be made.
pub async fn report(
    cluster: &Cluster,
    state_dir: &Path,
    client: Option<&kube::Client>,
    timeout: Duration,
) -> String {
    let lines = futures::future::join_all(
        cluster
            .machines()
            .map(|(role, machine)| machine_line(cluster, role, machine, timeout)),
    )
    .await;
    let mut out = format!(
        "{:<12} {:<14} {:<16} {:<34} {}\n",
        "MACHINE", "ROLE", "HOST", "SERVICES", "VERSION"
    );
    for line in lines {
        let _ = writeln!(out, "{line}");
    }
    out.push('\n');
    if cluster.datastore == Datastore::Etcd {
        for line in etcd_lines(cluster, state_dir).await {
            let _ = writeln!(out, "{line}");
        }
    }
    match client {
        Some(client) => {
            for line in node_lines(client).await {
                let _ = writeln!(out, "{line}");
            }
            if cluster.pools.iter().any(|pool| pool.aws.is_some()) {
                for line in crate::nodepools::status_lines(client).await {
                    let _ = writeln!(out, "{line}");
                }
            }
        }
        None => out.push_str("API: no master answered (see the warning above)\n"),
    }
    for line in certificate_lines(state_dir) {
        let _ = writeln!(out, "{line}");
    }
    out
}
