//! The etcd cluster on the masters (datastore `etcd`): one member per
//! master, mutual TLS between members and towards the API servers, from
//! certificates issued once on this machine and kept in the state directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use berth_pki::{etcd_api_client, etcd_peer, etcd_server, Authority, CertifiedKey, PkiError};

use crate::config::{Cluster, Machine};
use crate::create::listen_address;
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

/// Where a member's files go on its machine.
pub struct MemberFiles {
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
        let mut members = BTreeMap::new();
        for master in masters {
            let server = load_or_issue(dir, &format!("{}-server", master.name), || {
                ca.issue(&etcd_server(&master.name, &master.host), now)
            })?;
            let peer = load_or_issue(dir, &format!("{}-peer", master.name), || {
                ca.issue(&etcd_peer(&master.name, &master.host), now)
            })?;
            members.insert(master.name.clone(), (server, peer));
        }
        let api_client = load_or_issue(dir, "apiserver-etcd-client", || {
            ca.issue(&etcd_api_client(), now)
        })?;
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
    ) -> Result<MemberFiles, ssh::Error> {
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
        Ok(files)
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

fn url(host: &str, port: u16) -> String {
    format!("https://{}", listen_address(host, port))
}

/// The etcd member of `master`.
pub fn service(
    cluster: &Cluster,
    master: &Machine,
    layout: &Layout,
    files: &MemberFiles,
) -> Service {
    let initial_cluster: Vec<String> = cluster
        .masters
        .iter()
        .map(|m| format!("{}={}", m.name, url(&m.host, PEER_PORT)))
        .collect();
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
        &url(&master.host, PEER_PORT),
        "--initial-cluster",
        &initial_cluster.join(","),
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
    let dir = state_dir.join("etcd");
    let read = |name: &str| std::fs::read_to_string(dir.join(name));
    let (Ok(ca), Ok(cert), Ok(key)) = (
        read("ca.crt"),
        read("apiserver-etcd-client.crt"),
        read("apiserver-etcd-client.key"),
    ) else {
        return Err(format!("no etcd certificates in {}", dir.display()));
    };
    let tls = etcd_client::TlsOptions::new()
        .ca_certificate(etcd_client::Certificate::from_pem(ca))
        .identity(etcd_client::Identity::from_pem(cert, key));
    let asks = cluster.masters.iter().map(|master| {
        let endpoint = url(&master.host, CLIENT_PORT);
        let options = etcd_client::ConnectOptions::new()
            .with_tls(tls.clone())
            .with_connect_timeout(Duration::from_secs(3))
            .with_timeout(Duration::from_secs(3));
        async move {
            let status = async {
                let mut client =
                    etcd_client::Client::connect([endpoint.as_str()], Some(options)).await?;
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
