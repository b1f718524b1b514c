//! The cloud-init user-data of a pool instance: a shell script run once at
//! first boot that downloads the berth binary, writes the cluster CA and a
//! bootstrap token, and starts `berth agent` as a systemd unit, as SSH pool
//! machines join (see `join.rs`). The AMI brings containerd.

use std::collections::BTreeMap;

/// Where the agent's files go on the instance.
const BINARY: &str = "/usr/local/bin/berth";
const PKI_DIR: &str = "/etc/berth/pki";
const DATA_DIR: &str = "/var/lib/berth/agent";
const UNIT: &str = "/etc/systemd/system/berth-agent.service";

/// What a new instance needs to join the cluster.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeJoin {
    /// Where the instance downloads the berth binary from (https).
    pub binary_url: String,
    /// The API servers, comma-separated (`https://10.0.0.10:6443,…`).
    pub server_url: String,
    /// The cluster CA certificate, PEM.
    pub ca_pem: String,
    /// A bootstrap token (`ID.SECRET`).
    pub token: String,
    /// The Node name (the claim's).
    pub node_name: String,
    /// The pool.
    pub pool: String,
    /// Node labels.
    pub labels: BTreeMap<String, String>,
    /// Taints the node registers with (`key=value:Effect`).
    pub taints: Vec<String>,
    /// The template's extra shell, run before the agent is installed.
    pub extra: Option<String>,
}

/// Quotes `text` for a POSIX shell.
fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// The `berth agent` command line of the instance.
fn agent_command(join: &NodeJoin) -> Vec<String> {
    let mut command: Vec<String> = [
        BINARY,
        "agent",
        "--runtime",
        "cri",
        "--server",
        &join.server_url,
        "--bootstrap-token-file",
        &format!("{PKI_DIR}/bootstrap-token"),
        "--ca-file",
        &format!("{PKI_DIR}/ca.crt"),
        "--name",
        &join.node_name,
        "--data-dir",
        DATA_DIR,
        "--pool",
        &join.pool,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if !join.labels.is_empty() {
        let labels: Vec<String> = join
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        command.extend(["--labels".to_owned(), labels.join(",")]);
    }
    if !join.taints.is_empty() {
        command.extend(["--taints".to_owned(), join.taints.join(",")]);
    }
    command
}

/// The user-data script of a pool instance.
pub fn node_script(join: &NodeJoin) -> String {
    let exec = agent_command(join)
        .iter()
        .map(|arg| quote(arg))
        .collect::<Vec<_>>()
        .join(" ");
    let extra = join.extra.as_deref().unwrap_or_default();
    format!(
        r#"#!/bin/sh
# berth: join this instance to the cluster as node {name} (cloud-init, first boot).
set -eu
{extra}
mkdir -p {pki} {data}
curl -fsSL --retry 10 --retry-connrefused -o {binary}.new {url}
chmod 0755 {binary}.new
mv {binary}.new {binary}
cat > {pki}/ca.crt <<'BERTH_CA'
{ca}
BERTH_CA
umask 077
printf '%s\n' {token} > {pki}/bootstrap-token
umask 022
cat > {unit} <<'BERTH_UNIT'
[Unit]
Description=berth agent
After=network-online.target containerd.service
Wants=network-online.target

[Service]
ExecStart={exec}
Restart=always
RestartSec=5

[Install]
WantedBy=multi-user.target
BERTH_UNIT
systemctl daemon-reload
systemctl enable --now berth-agent.service
"#,
        name = join.node_name,
        pki = PKI_DIR,
        data = DATA_DIR,
        binary = BINARY,
        url = quote(&join.binary_url),
        ca = join.ca_pem.trim_end(),
        token = quote(&join.token),
        unit = UNIT,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_installs_berth_and_starts_the_agent() {
        let join = NodeJoin {
            binary_url: "https://example.com/berth".into(),
            server_url: "https://10.0.0.10:6443".into(),
            ca_pem: "-----BEGIN CERTIFICATE-----\nabc\n-----END CERTIFICATE-----\n".into(),
            token: "abcdef.0123456789abcdef".into(),
            node_name: "gpu-x1".into(),
            pool: "gpu".into(),
            labels: BTreeMap::from([("berth.dev/pool".into(), "gpu".into())]),
            taints: vec!["nvidia.com/gpu=present:NoSchedule".into()],
            extra: Some("echo it's extra".into()),
        };
        let script = node_script(&join);
        assert!(script.starts_with("#!/bin/sh\n"));
        assert!(script.contains("curl -fsSL --retry 10 --retry-connrefused -o /usr/local/bin/berth.new 'https://example.com/berth'"));
        assert!(script
            .contains("\n-----BEGIN CERTIFICATE-----\nabc\n-----END CERTIFICATE-----\nBERTH_CA\n"));
        assert!(script
            .contains("printf '%s\\n' 'abcdef.0123456789abcdef' > /etc/berth/pki/bootstrap-token"));
        assert!(script.contains("ExecStart='/usr/local/bin/berth' 'agent' '--runtime' 'cri' '--server' 'https://10.0.0.10:6443'"));
        assert!(script.contains("'--name' 'gpu-x1'"));
        assert!(script.contains(
            "'--labels' 'berth.dev/pool=gpu' '--taints' 'nvidia.com/gpu=present:NoSchedule'"
        ));
        assert!(script.contains("echo it's extra\n"));
        assert_eq!(quote("it's"), r"'it'\''s'");
    }
}
