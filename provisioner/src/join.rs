//! Pool machines joining the cluster as kubelets do: each gets the berth
//! binary, the cluster CA and a bootstrap token (in a file, so a new token
//! never restarts an agent), and runs `berth agent`, which asks for its own
//! client certificate through a CertificateSigningRequest the controllers
//! approve. The token lives in the state directory and is made again only
//! when its Secret is gone or about to expire.

use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use berth_api::bootstrap_token::{self, NewToken};
use k8s_openapi::api::core::v1::{Node, Secret};
use kube::api::{Api, PostParams};

use crate::config::{Cidr, Cluster, Machine, NetworkMode, Pool};
use crate::layout::Layout;
use crate::service::Service;
use crate::ssh::{self, Source};

/// How long a token the provisioner makes stays valid.
const TOKEN_TTL: Duration = Duration::from_secs(24 * 3600);
/// A kept token closer than this to its expiry is replaced.
const TOKEN_MARGIN: Duration = Duration::from_secs(3600);

/// A bootstrap token (`ID.SECRET`) valid for at least another hour: the one
/// kept in `state_dir/bootstrap-token` while its Secret lasts, else a new one.
pub async fn ensure_token(client: &kube::Client, state_dir: &Path) -> Result<String, String> {
    let kept_path = state_dir.join("bootstrap-token");
    let secrets: Api<Secret> = Api::namespaced(client.clone(), bootstrap_token::NAMESPACE);
    if let Ok(kept) = std::fs::read_to_string(&kept_path) {
        if let Some((id, _)) = bootstrap_token::parse(kept.trim()) {
            let secret = secrets
                .get_opt(&bootstrap_token::secret_name(id))
                .await
                .map_err(|e| format!("reading the bootstrap token Secret: {e}"))?;
            let fresh = secret
                .and_then(|s| serde_json::to_value(s).ok())
                .is_some_and(|s| {
                    let soon = jiff::Timestamp::now()
                        .checked_add(
                            jiff::SignedDuration::try_from(TOKEN_MARGIN).unwrap_or_default(),
                        )
                        .unwrap_or_else(|_| jiff::Timestamp::now());
                    !bootstrap_token::is_expired(&s, soon)
                });
            if fresh {
                return Ok(kept.trim().to_owned());
            }
        }
    }
    let token = create_token(client, "nodes joining through berth cluster create").await?;
    std::fs::write(&kept_path, &token).map_err(|e| e.to_string())?;
    std::fs::set_permissions(
        &kept_path,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .map_err(|e| e.to_string())?;
    Ok(token)
}

/// A new bootstrap token (`ID.SECRET`) valid for a day, stored as its Secret.
pub async fn create_token(client: &kube::Client, description: &str) -> Result<String, String> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), bootstrap_token::NAMESPACE);
    let mut random = [0u8; 22];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut random)
        .map_err(|_| "no randomness for a bootstrap token".to_owned())?;
    let (id, secret) = NewToken::from_random(&random);
    let expiration = jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::try_from(TOKEN_TTL).unwrap_or_default())
        .ok();
    let token = NewToken {
        id,
        secret,
        expiration,
        groups: vec![bootstrap_token::DEFAULT_GROUP.to_owned()],
        description: description.to_owned(),
    };
    let object: Secret = serde_json::from_value(token.secret()).map_err(|e| e.to_string())?;
    secrets
        .create(&PostParams::default(), &object)
        .await
        .map_err(|e| format!("creating the bootstrap token Secret: {e}"))?;
    Ok(token.token())
}

/// The tenth address of the service range: the cluster DNS (`kube-dns`).
/// Adds `flag a,b,c` to an agent command line, nothing when `values` is
/// empty (`--labels` and `--taints` take comma-separated lists).
pub fn push_list(command: &mut Vec<String>, flag: &str, values: impl IntoIterator<Item = String>) {
    let values: Vec<String> = values.into_iter().collect();
    if !values.is_empty() {
        command.extend([flag.to_owned(), values.join(",")]);
    }
}

fn cluster_dns(service_cidr: &Cidr) -> IpAddr {
    match service_cidr.address {
        IpAddr::V4(a) => IpAddr::V4((u32::from(a) + 10).into()),
        IpAddr::V6(a) => IpAddr::V6((u128::from(a) + 10).into()),
    }
}

/// `berth agent` on a pool machine, failing over between every master.
pub fn agent_service(
    cluster: &Cluster,
    pool: &Pool,
    machine: &Machine,
    layout: &Layout,
) -> Service {
    let pki = layout.pki_dir();
    let mut command = vec![
        layout.binary().display().to_string(),
        "agent".to_owned(),
        "--runtime".to_owned(),
        "cri".to_owned(),
        "--server".to_owned(),
        crate::endpoint::agent_servers(cluster),
        "--bootstrap-token-file".to_owned(),
        pki.join("bootstrap-token").display().to_string(),
        "--ca-file".to_owned(),
        pki.join("ca.crt").display().to_string(),
        "--name".to_owned(),
        machine.name.clone(),
        "--data-dir".to_owned(),
        layout.agent_dir().display().to_string(),
        "--network-mode".to_owned(),
        match cluster.network_mode {
            NetworkMode::Routed => "routed",
            NetworkMode::Vxlan => "vxlan",
        }
        .to_owned(),
        "--cluster-dns".to_owned(),
        cluster_dns(&cluster.service_cidr).to_string(),
        "--pool".to_owned(),
        pool.name.clone(),
    ];
    if machine.host.parse::<IpAddr>().is_ok() {
        command.extend(["--node-ip".to_owned(), machine.host.clone()]);
    }
    push_list(
        &mut command,
        "--labels",
        pool.labels
            .iter()
            .map(|(key, value)| format!("{key}={value}")),
    );
    push_list(
        &mut command,
        "--taints",
        pool.taints.iter().map(ToString::to_string),
    );
    if let Some(max_pods) = pool.max_pods {
        command.extend(["--max-pods".to_owned(), max_pods.to_string()]);
    }
    let reserved: Vec<String> = [
        ("cpu", &pool.reserved_cpu),
        ("memory", &pool.reserved_memory),
    ]
    .into_iter()
    .filter_map(|(resource, kept)| kept.as_ref().map(|q| format!("{resource}={q}")))
    .collect();
    if !reserved.is_empty() {
        command.extend(["--system-reserved".to_owned(), reserved.join(",")]);
    }
    for registry in &cluster.insecure_registries {
        command.extend(["--insecure-registry".to_owned(), registry.clone()]);
    }
    Service {
        name: "agent".to_owned(),
        command,
    }
}

/// Installs what a pool machine needs and starts its agent; `restart`
/// when its binary changed. Returns what the service script printed.
pub async fn install_node(
    session: &ssh::Machine,
    service: &Service,
    layout: &Layout,
    ca_pem: &[u8],
    token: &str,
    restart: bool,
) -> Result<String, ssh::Error> {
    let pki = layout.pki_dir();
    session
        .upload(
            Source::Bytes(ca_pem),
            &pki.join("ca.crt").display().to_string(),
            0o644,
        )
        .await?;
    session
        .upload(
            Source::Bytes(token.as_bytes()),
            &pki.join("bootstrap-token").display().to_string(),
            0o600,
        )
        .await?;
    session
        .run_ok(
            "command -v containerd >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y \
             containerd runc containernetworking-plugins nftables busybox-static >/dev/null",
        )
        .await?;
    let output = session
        .run_ok(&service.ensure_running(layout, restart))
        .await?;
    Ok(output.stdout.trim().to_owned())
}

/// Waits until every Node in `names` is Ready; the ones that are not, on timeout.
pub async fn wait_ready(
    client: &kube::Client,
    names: &[String],
    timeout: Duration,
) -> Result<(), Vec<String>> {
    let nodes: Api<Node> = Api::all(client.clone());
    let started = Instant::now();
    loop {
        let mut waiting = Vec::new();
        for name in names {
            let ready = nodes
                .get_opt(name)
                .await
                .ok()
                .flatten()
                .is_some_and(|node| {
                    node.status
                        .and_then(|s| s.conditions)
                        .unwrap_or_default()
                        .iter()
                        .any(|c| c.type_ == "Ready" && c.status == "True")
                });
            if !ready {
                waiting.push(name.clone());
            }
        }
        if waiting.is_empty() {
            return Ok(());
        }
        if started.elapsed() >= timeout {
            return Err(waiting);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
