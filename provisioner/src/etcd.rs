//! The etcd cluster on the masters (datastore `etcd`): one member per
//! master, mutual TLS between members and towards the API servers, from
//! certificates issued once on this machine and kept in the state directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use berth_pki::{
    etcd_api_client, etcd_peer, etcd_server, Authority, CertifiedKey, LeafSpec, PkiError,
};

use crate::config::{Cluster, Machine};
use crate::endpoint::listen_address;
use crate::layout::Layout;
use crate::service::Service;
use crate::ssh::{self, Source};

/// Port etcd serves clients on.
pub const CLIENT_PORT: u16 = 2379;
/// Port etcd members talk to each other on.
pub const PEER_PORT: u16 = 2380;

/// etcd's CA and every certificate the cluster needs from it.
#[derive(Debug)]
pub struct Certificates {
    ca: Authority,
    /// Per member (Node name): (server, peer).
    members: BTreeMap<String, (CertifiedKey, CertifiedKey)>,
    /// What the API servers present to etcd.
    api_client: CertifiedKey,
}

/// A certificate at `dir/NAME.{crt,key}`, issued and written when missing,
/// so every run hands the machines the same files.
fn load_or_issue(
    dir: &Path,
    name: &str,
    issue: impl FnOnce() -> Result<CertifiedKey, PkiError>,
) -> Result<CertifiedKey, PkiError> {
    let (cert, key) = (
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
    );
    if let (Ok(cert_pem), Ok(key_pem)) = (
        std::fs::read_to_string(&cert),
        std::fs::read_to_string(&key),
    ) {
        return Ok(CertifiedKey { cert_pem, key_pem });
    }
    let issued = issue()?;
    let io = |e: std::io::Error| PkiError::Io {
        path: key.clone(),
        source: e,
    };
    std::fs::write(&key, &issued.key_pem).map_err(io)?;
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .map_err(io)?;
    std::fs::write(&cert, &issued.cert_pem).map_err(io)?;
    Ok(issued)
}

/// The file stem of the API servers' client certificate in the state directory's `etcd/`.
const API_CLIENT: &str = "apiserver-etcd-client";

fn server_stem(member: &str) -> String {
    format!("{member}-server")
}

fn peer_stem(member: &str) -> String {
    format!("{member}-peer")
}

/// What each etcd leaf certificate says, by its file stem in the state
/// directory's `etcd/`: every member's server and peer certificate, then
/// the API servers' client certificate. One list, so `create` and
/// `renew-certs` issue the same certificates.
pub fn leaves(masters: &[Machine]) -> Vec<(String, LeafSpec)> {
    let mut leaves = Vec::new();
    for master in masters {
        leaves.push((
            server_stem(&master.name),
            etcd_server(&master.name, &master.host),
        ));
        leaves.push((
            peer_stem(&master.name),
            etcd_peer(&master.name, &master.host),
        ));
    }
    leaves.push((API_CLIENT.to_owned(), etcd_api_client()));
    leaves
}

/// TLS settings for talking to etcd as the API servers do, from the
/// certificates in the state directory's `etcd/`.
pub fn client_tls(state_dir: &Path) -> Result<etcd_client::TlsOptions, String> {
    let dir = state_dir.join("etcd");
    let read = |name: &str| {
        std::fs::read_to_string(dir.join(name))
            .map_err(|e| format!("etcd: {}: {e}", dir.join(name).display()))
    };
    let (ca, cert, key) = (
        read("ca.crt")?,
        read(&format!("{API_CLIENT}.crt"))?,
        read(&format!("{API_CLIENT}.key"))?,
    );
    Ok(etcd_client::TlsOptions::new()
        .ca_certificate(etcd_client::Certificate::from_pem(ca))
        .identity(etcd_client::Identity::from_pem(cert, key)))
}

/// A client of the member on `master` only, with `timeout` for connecting
/// and for each request.
pub async fn member_client(
    tls: &etcd_client::TlsOptions,
    master: &Machine,
    timeout: std::time::Duration,
) -> Result<etcd_client::Client, etcd_client::Error> {
    let endpoint = client_url(master);
    let options = etcd_client::ConnectOptions::new()
        .with_tls(tls.clone())
        .with_connect_timeout(timeout)
        .with_timeout(timeout);
    etcd_client::Client::connect([endpoint.as_str()], Some(options)).await
}

/// Where a member's files go on its machine.
struct MemberFiles {
    dir: PathBuf,
}

impl MemberFiles {
    /// The member's files under `layout`.
    pub fn new(layout: &Layout) -> Self {
        Self {
            dir: layout.pki_dir().join("etcd"),
        }
    }

    fn file(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }
}

impl Certificates {
    /// The CA and certificates in `dir`, created for `masters` where missing.
    pub fn load_or_issue(dir: &Path, masters: &[Machine]) -> Result<Self, PkiError> {
        let now = SystemTime::now();
        let ca = Authority::load_or_create(dir, "ca", "berth-etcd-ca", now)?;
        let mut issued = BTreeMap::new();
        for (stem, spec) in leaves(masters) {
            let certified = load_or_issue(dir, &stem, || ca.issue(&spec, now))?;
            issued.insert(stem, certified);
        }
        let mut take = |stem: String| issued.remove(&stem).expect("every leaf was issued");
        let members = masters
            .iter()
            .map(|master| {
                let server = take(server_stem(&master.name));
                let peer = take(peer_stem(&master.name));
                (master.name.clone(), (server, peer))
            })
            .collect();
        let api_client = take(API_CLIENT.to_owned());
        Ok(Self {
            ca,
            members,
            api_client,
        })
    }

    /// Puts `master`'s member files and the API servers' client
    /// certificate on it, and etcd itself when the machine lacks it.
    pub async fn install(
        &self,
        session: &ssh::Machine,
        master: &Machine,
        layout: &Layout,
    ) -> Result<(), ssh::Error> {
        let files = MemberFiles::new(layout);
        let (server, peer) = &self.members[&master.name];
        let uploads: [(&str, &str, u32); 7] = [
            ("ca.crt", &self.ca.cert_pem, 0o644),
            ("server.crt", &server.cert_pem, 0o644),
            ("server.key", &server.key_pem, 0o600),
            ("peer.crt", &peer.cert_pem, 0o644),
            ("peer.key", &peer.key_pem, 0o600),
            ("client.crt", &self.api_client.cert_pem, 0o644),
            ("client.key", &self.api_client.key_pem, 0o600),
        ];
        for (name, contents, mode) in uploads {
            session
                .upload(Source::Bytes(contents.as_bytes()), &files.file(name), mode)
                .await?;
        }
        // Debian's package starts its own etcd on loopback; ours replaces it.
        session
            .run_ok(
                "command -v etcd >/dev/null || { DEBIAN_FRONTEND=noninteractive apt-get install -y etcd-server >/dev/null \
                 && if [ -d /run/systemd/system ]; then systemctl disable --now etcd >/dev/null 2>&1 || true; fi; }",
            )
            .await?;
        Ok(())
    }

    /// The flags that point `berth server` at the etcd cluster.
    pub fn server_flags(&self, masters: &[Machine], layout: &Layout) -> Vec<String> {
        let files = MemberFiles::new(layout);
        let endpoints: Vec<String> = masters
            .iter()
            .map(|m| listen_address(&m.host, CLIENT_PORT))
            .collect();
        vec![
            "--datastore".to_owned(),
            format!("etcd://{}", endpoints.join(",")),
            "--etcd-cafile".to_owned(),
            files.file("ca.crt"),
            "--etcd-certfile".to_owned(),
            files.file("client.crt"),
            "--etcd-keyfile".to_owned(),
            files.file("client.key"),
        ]
    }
}

/// How the provisioner talks to etcd: TLS with the API servers' client
/// certificate from the state directory's `etcd/`, short timeouts.
pub fn client_options(state_dir: &Path) -> Result<etcd_client::ConnectOptions, String> {
    Ok(etcd_client::ConnectOptions::new()
        .with_tls(client_tls(state_dir)?)
        .with_connect_timeout(Duration::from_secs(3))
        .with_timeout(Duration::from_secs(5)))
}

/// The client URL of `master`'s member.
pub fn client_url(master: &Machine) -> String {
    url(&master.host, CLIENT_PORT)
}

/// Removes `master`'s member from the etcd cluster through the members in
/// `through` (never through the one removed); `false` when it was not a
/// member any more. etcd refuses when the removal would lose quorum.
pub async fn remove_member(
    state_dir: &Path,
    through: &[&Machine],
    master: &Machine,
) -> Result<bool, String> {
    let endpoints: Vec<String> = through.iter().map(|m| client_url(m)).collect();
    let mut client = etcd_client::Client::connect(&endpoints, Some(client_options(state_dir)?))
        .await
        .map_err(|e| format!("etcd at {}: {e}", endpoints.join(",")))?;
    let peer = url(&master.host, PEER_PORT);
    let members = client
        .member_list()
        .await
        .map_err(|e| format!("listing etcd members: {e}"))?;
    let Some(id) = members
        .members()
        .iter()
        .find(|m| m.name() == master.name || m.peer_urls().contains(&peer))
        .map(|m| m.id())
    else {
        return Ok(false);
    };
    client
        .member_remove(id)
        .await
        .map_err(|e| format!("removing etcd member {} ({id:x}): {e}", master.name))?;
    Ok(true)
}

/// The names of etcd's members, asked through `through`.
pub async fn member_names(state_dir: &Path, through: &[Machine]) -> Result<Vec<String>, String> {
    let endpoints: Vec<String> = through.iter().map(client_url).collect();
    let mut client = etcd_client::Client::connect(&endpoints, Some(client_options(state_dir)?))
        .await
        .map_err(|e| e.to_string())?;
    let members = client.member_list().await.map_err(|e| e.to_string())?;
    let mut names: Vec<String> = members
        .members()
        .iter()
        .map(|m| m.name().to_owned())
        .collect();
    names.sort();
    Ok(names)
}

fn url(host: &str, port: u16) -> String {
    format!("https://{}", listen_address(host, port))
}

/// The URL `master`'s member is reached on by the others.
pub fn peer_url(master: &Machine) -> String {
    url(&master.host, PEER_PORT)
}

/// etcd's `--initial-cluster`: every master's `NAME=PEER_URL`.
pub fn initial_cluster(cluster: &Cluster) -> String {
    cluster
        .masters
        .iter()
        .map(|m| format!("{}={}", m.name, peer_url(m)))
        .collect::<Vec<_>>()
        .join(",")
}

/// Waits until the member on `master` answers a status request, at most `timeout`.
pub async fn wait_member_healthy(
    tls: &etcd_client::TlsOptions,
    master: &Machine,
    timeout: std::time::Duration,
) -> Result<(), String> {
    let started = std::time::Instant::now();
    loop {
        let attempt = async {
            let mut client = member_client(tls, master, std::time::Duration::from_secs(3)).await?;
            client.status().await
        };
        match attempt.await {
            Ok(_) => return Ok(()),
            Err(e) if started.elapsed() >= timeout => {
                return Err(format!(
                    "etcd member {} not healthy within {timeout:?}: {e}",
                    master.name
                ))
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(500)).await,
        }
    }
}

/// The etcd member of `master`.
pub fn service(cluster: &Cluster, master: &Machine, layout: &Layout) -> Service {
    let files = MemberFiles::new(layout);
    let command = [
        "etcd",
        "--name",
        &master.name,
        "--data-dir",
        &layout.etcd_dir().display().to_string(),
        "--listen-client-urls",
        &format!(
            "{},https://127.0.0.1:{CLIENT_PORT}",
            url(&master.host, CLIENT_PORT)
        ),
        "--advertise-client-urls",
        &url(&master.host, CLIENT_PORT),
        "--listen-peer-urls",
        &url(&master.host, PEER_PORT),
        "--initial-advertise-peer-urls",
        &peer_url(master),
        "--initial-cluster",
        &initial_cluster(cluster),
        "--initial-cluster-state",
        "new",
        "--initial-cluster-token",
        &cluster.name,
        "--client-cert-auth",
        "--trusted-ca-file",
        &files.file("ca.crt"),
        "--cert-file",
        &files.file("server.crt"),
        "--key-file",
        &files.file("server.key"),
        "--peer-client-cert-auth",
        "--peer-trusted-ca-file",
        &files.file("ca.crt"),
        "--peer-cert-file",
        &files.file("peer.crt"),
        "--peer-key-file",
        &files.file("peer.key"),
    ];
    Service {
        name: "etcd".to_owned(),
        command: command.iter().map(|s| (*s).to_owned()).collect(),
    }
}

/// What one member says of itself when asked for its status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberHealth {
    /// Whether it is the leader.
    pub leader: bool,
    /// etcd's version.
    pub version: String,
}

/// Asks each master's member for its status over TLS, with the API
/// servers' client certificate from `state_dir/etcd`; per master (in
/// `cluster.toml` order) its answer or why there was none. Fails only when
/// the certificates are not there.
pub async fn member_health(
    cluster: &Cluster,
    state_dir: &Path,
) -> Result<Vec<(String, Result<MemberHealth, String>)>, String> {
    let tls = client_tls(state_dir)?;
    let asks = cluster.masters.iter().map(|master| {
        let tls = tls.clone();
        async move {
            let status = async {
                let mut client = member_client(&tls, master, Duration::from_secs(3)).await?;
                client.status().await
            };
            let health = status
                .await
                .map(|status| MemberHealth {
                    leader: status.header().map_or(0, |h| h.member_id()) == status.leader(),
                    version: status.version().to_owned(),
                })
                .map_err(|e| e.to_string());
            (master.name.clone(), health)
        }
    });
    Ok(futures::future::join_all(asks).await)
}

/// Waits until every member answers its status; the last problem on
/// timeout. Masters behind a jump host cannot be asked from here: then it
/// returns at once, and the API servers' readiness speaks for etcd.
pub async fn wait_healthy(
    cluster: &Cluster,
    state_dir: &Path,
    timeout: Duration,
) -> Result<(), String> {
    if cluster.masters.iter().any(|m| m.ssh.jump_host.is_some()) {
        return Ok(());
    }
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let problem = member_health(cluster, state_dir)
            .await?
            .into_iter()
            .find_map(|(name, health)| health.err().map(|e| format!("member {name}: {e}")));
        let Some(problem) = problem else {
            return Ok(());
        };
        if tokio::time::Instant::now() >= deadline {
            return Err(format!("not healthy within {timeout:?}: {problem}"));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
