//! Joining like kubelet's TLS bootstrap: a node without a client certificate
//! presents a bootstrap token once, posts a CertificateSigningRequest for
//! `system:node:NAME`, waits for the cluster to approve and issue it, keeps
//! key and certificate under its data directory (0600) and from then on talks
//! to the API server as itself, renewing the certificate (a new key, a new
//! request made as the node) at a random 70–90% of its lifetime.

pub mod client_certificate;
pub mod identity_client;

use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::certificates::v1::{
    CertificateSigningRequest, CertificateSigningRequestSpec,
};
use kube::api::{Api, ObjectMeta, PostParams};
use tokio_util::sync::CancellationToken;

use self::client_certificate::CertificateError;
use self::identity_client::{IdentityError, SwappableCertificate};

/// Where and how the node gets its identity.
#[derive(Debug, Clone)]
pub struct BootstrapConfig {
    /// The API server URL.
    pub server: String,
    /// PEM of the cluster CA the server's certificate is checked against.
    pub ca_pem: String,
    /// The bootstrap token (`ID.SECRET`), needed only while the node has no
    /// usable certificate.
    pub token: Option<String>,
    /// The node's name.
    pub node_name: String,
    /// The agent's data directory; the certificate lives in `pki/` under it.
    pub dir: PathBuf,
    /// How long to wait for a request to be approved and issued.
    pub wait: Duration,
}

/// Why the node could not get or renew its identity.
#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    /// No certificate yet, and no token to get one.
    #[error("no usable client certificate at {0} and no --bootstrap-token to request one; create a token with `berth token create` and pass it")]
    NoCertificate(PathBuf),
    /// The server did not accept the token.
    #[error("the API server refused bootstrap token {id} (401 Unauthorized): the token is wrong, expired or was deleted; create a new one with `berth token create`")]
    TokenRefused {
        /// The token's id.
        id: String,
    },
    /// The request was refused by authorization.
    #[error(
        "the API server does not let {who} request a node certificate (403 Forbidden): {message}"
    )]
    Forbidden {
        /// The token id or node.
        who: String,
        /// The server's message.
        message: String,
    },
    /// Someone denied the request, or the signer failed it.
    #[error("certificate signing request {name} was {outcome}: {message}")]
    NotIssued {
        /// The request's name.
        name: String,
        /// `denied` or `failed`.
        outcome: &'static str,
        /// The condition's message.
        message: String,
    },
    /// Nothing was issued in time.
    #[error("certificate signing request {name} was not approved and issued within {waited:?}; check `kubectl get csr` (is the controller manager running?)")]
    Timeout {
        /// The request's name.
        name: String,
        /// How long the agent waited.
        waited: Duration,
    },
    /// Another API error.
    #[error("API request failed: {0}")]
    Api(#[from] kube::Error),
    /// Reading or writing the certificate file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The certificate material is unusable.
    #[error(transparent)]
    Certificate(#[from] CertificateError),
    /// The client could not be built.
    #[error(transparent)]
    Identity(#[from] IdentityError),
}

/// The file holding the node's certificate and key (kubelet's name).
pub fn certificate_path(dir: &Path) -> PathBuf {
    dir.join("pki").join("kubelet-client-current.pem")
}

/// The node's identity: its current certificate and a client presenting it.
pub struct NodeIdentity {
    config: BootstrapConfig,
    certificate: SwappableCertificate,
    client: kube::Client,
    current_pem: String,
}

impl std::fmt::Debug for NodeIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeIdentity")
            .field("node", &self.config.node_name)
            .finish_non_exhaustive()
    }
}

fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// The node's identity: the certificate kept from an earlier start when it is
/// still valid for this node, else a new one obtained with the bootstrap token.
pub async fn load_or_bootstrap(config: BootstrapConfig) -> Result<NodeIdentity, BootstrapError> {
    let path = certificate_path(&config.dir);
    let kept = match std::fs::read_to_string(&path) {
        Ok(pem) => client_certificate::validity(&pem)
            .ok()
            .filter(|v| client_certificate::usable_for(v, &config.node_name, now()))
            .map(|_| pem),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(source) => return Err(BootstrapError::Io { path, source }),
    };
    let pem = match kept {
        Some(pem) => {
            tracing::info!(path = %path.display(), "using the node's client certificate");
            pem
        }
        None => {
            let Some(token) = config.token.as_deref() else {
                return Err(BootstrapError::NoCertificate(path));
            };
            let id = token.split('.').next().unwrap_or_default().to_owned();
            tracing::info!(token_id = %id, node = %config.node_name, "requesting a client certificate with the bootstrap token");
            let client =
                identity_client::token_client(&config.server, &config.ca_pem, token).await?;
            let pem = request_certificate(&client, &config, &format!("bootstrap token {id}"))
                .await
                .map_err(|e| match e {
                    BootstrapError::Api(kube::Error::Api(status)) if status.code == 401 => {
                        BootstrapError::TokenRefused { id: id.clone() }
                    }
                    other => other,
                })?;
            write_private(&path, &pem)?;
            pem
        }
    };
    let certificate = SwappableCertificate::new(&pem)?;
    let client =
        identity_client::certificate_client(&config.server, &config.ca_pem, certificate.clone())
            .await?;
    Ok(NodeIdentity {
        config,
        certificate,
        client,
        current_pem: pem,
    })
}

/// Posts a request for this node's client certificate and waits until it is
/// issued; returns the certificate followed by the new key, as PEM.
async fn request_certificate(
    client: &kube::Client,
    config: &BootstrapConfig,
    who: &str,
) -> Result<String, BootstrapError> {
    let (key_pem, request_pem) = client_certificate::new_request(&config.node_name)?;
    let csrs: Api<CertificateSigningRequest> = Api::all(client.clone());
    let request = CertificateSigningRequest {
        metadata: ObjectMeta {
            generate_name: Some("node-csr-".into()),
            ..ObjectMeta::default()
        },
        spec: CertificateSigningRequestSpec {
            request: k8s_openapi::ByteString(request_pem.into_bytes()),
            signer_name: client_certificate::SIGNER.into(),
            usages: Some(
                client_certificate::USAGES
                    .iter()
                    .map(|u| (*u).to_owned())
                    .collect(),
            ),
            ..CertificateSigningRequestSpec::default()
        },
        ..CertificateSigningRequest::default()
    };
    let created = csrs
        .create(&PostParams::default(), &request)
        .await
        .map_err(|e| match e {
            kube::Error::Api(status) if status.code == 403 => BootstrapError::Forbidden {
                who: who.to_owned(),
                message: status.message.clone(),
            },
            other => BootstrapError::Api(other),
        })?;
    let name = created.metadata.name.unwrap_or_default();
    tracing::info!(csr = %name, "certificate signing request posted; waiting for approval");
    let started = std::time::Instant::now();
    loop {
        let csr = csrs.get(&name).await?;
        let status = csr.status.unwrap_or_default();
        for condition in status.conditions.iter().flatten() {
            let outcome = match condition.type_.as_str() {
                "Denied" => "denied",
                "Failed" => "failed",
                _ => continue,
            };
            return Err(BootstrapError::NotIssued {
                name,
                outcome,
                message: condition.message.clone().unwrap_or_default(),
            });
        }
        if let Some(certificate) = status.certificate.filter(|c| !c.0.is_empty()) {
            tracing::info!(csr = %name, "client certificate issued");
            let mut pem = String::from_utf8_lossy(&certificate.0).into_owned();
            if !pem.ends_with('\n') {
                pem.push('\n');
            }
            pem.push_str(&key_pem);
            return Ok(pem);
        }
        if started.elapsed() >= config.wait {
            return Err(BootstrapError::Timeout {
                name,
                waited: config.wait,
            });
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Writes `contents` to `path` readable by its owner only, atomically.
fn write_private(path: &Path, contents: &str) -> Result<(), BootstrapError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let io = |source| BootstrapError::Io {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io)?;
    file.write_all(contents.as_bytes()).map_err(io)?;
    file.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

impl NodeIdentity {
    /// A client that authenticates as the node with its current certificate.
    pub fn client(&self) -> kube::Client {
        self.client.clone()
    }

    /// The PEM (certificate and key) the node presents now.
    pub fn current_pem(&self) -> &str {
        &self.current_pem
    }

    /// Renews the certificate at a random 70–90% of each one's lifetime,
    /// until `cancel` fires; a failed renewal is retried with back-off while
    /// the current certificate lasts.
    pub async fn rotate_until(mut self, cancel: CancellationToken) {
        let path = certificate_path(&self.config.dir);
        let mut retry = Duration::from_secs(1);
        loop {
            let wait = match client_certificate::validity(&self.current_pem) {
                Ok(validity) => {
                    let fraction = 0.7 + 0.2 * rand::random::<f64>();
                    let deadline = client_certificate::rotation_deadline(&validity, fraction);
                    client_certificate::wait_until(deadline, now())
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the node's certificate; renewing now");
                    Duration::ZERO
                }
            };
            tracing::info!(wait_s = wait.as_secs(), "next client certificate rotation");
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
            let who = format!("system:node:{}", self.config.node_name);
            let renewed = tokio::select! {
                _ = cancel.cancelled() => return,
                renewed = request_certificate(&self.client, &self.config, &who) => renewed,
            };
            let installed = renewed.and_then(|pem| {
                write_private(&path, &pem)?;
                self.certificate.replace(&pem)?;
                Ok(pem)
            });
            match installed {
                Ok(pem) => {
                    tracing::info!(path = %path.display(), "client certificate rotated");
                    self.current_pem = pem;
                    retry = Duration::from_secs(1);
                }
                Err(error) => {
                    tracing::warn!(%error, retry_s = retry.as_secs(), "client certificate rotation failed");
                    tokio::select! {
                        _ = cancel.cancelled() => return,
                        _ = tokio::time::sleep(retry) => {}
                    }
                    retry = (retry * 2).min(Duration::from_secs(60));
                }
            }
        }
    }
}
