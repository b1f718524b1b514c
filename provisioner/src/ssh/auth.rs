//! User authentication once the handshake is done: a private key file
//! (ed25519, RSA, ECDSA; without passphrase) or every key an ssh-agent
//! holds, tried in turn.

use std::path::PathBuf;
use std::sync::Arc;

use russh::client::Handle;
use russh::keys::{HashAlg, PrivateKeyWithHashAlg};

use super::error::Error;
use super::fingerprint;
use super::host_key::Client;

/// How to prove who we are to the machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// A private key file without passphrase (OpenSSH or PEM format).
    KeyFile(PathBuf),
    /// The keys of the ssh-agent listening on this socket.
    Agent {
        /// The agent's socket (what `$SSH_AUTH_SOCK` names).
        socket: PathBuf,
    },
}

impl Auth {
    /// The agent that `$SSH_AUTH_SOCK` names, if it is set.
    pub fn agent_from_env() -> Option<Auth> {
        std::env::var_os("SSH_AUTH_SOCK")
            .filter(|s| !s.is_empty())
            .map(|socket| Auth::Agent {
                socket: socket.into(),
            })
    }
}

/// Authenticates `user` on the session; `machine` names it in errors.
pub(crate) async fn authenticate(
    handle: &mut Handle<Client>,
    machine: &str,
    user: &str,
    auth: &Auth,
) -> Result<(), Error> {
    let session_error = |e: russh::Error| Error::Session {
        machine: machine.to_string(),
        doing: "authenticating".to_string(),
        reason: e.to_string(),
    };
    // `None`: the server did not say (no ext-info); every OpenSSH since 7.2
    // takes SHA-256 signatures. `Some(None)`: it only takes SHA-1.
    let rsa_hash = handle
        .best_supported_rsa_hash()
        .await
        .map_err(session_error)?
        .unwrap_or(Some(HashAlg::Sha256));
    match auth {
        Auth::KeyFile(path) => {
            let key = russh::keys::load_secret_key(path, None).map_err(|e| Error::KeyFile {
                machine: machine.to_string(),
                path: path.clone(),
                reason: e.to_string(),
            })?;
            let offered = format!(
                "key {} ({})",
                path.display(),
                key.public_key()
                    .to_bytes()
                    .map(|b| fingerprint::sha256(&b))
                    .unwrap_or_default()
            );
            let result = handle
                .authenticate_publickey(user, PrivateKeyWithHashAlg::new(Arc::new(key), rsa_hash))
                .await
                .map_err(session_error)?;
            if result.success() {
                return Ok(());
            }
            Err(rejected(machine, user, offered))
        }
        Auth::Agent { socket } => {
            let agent_error = |reason: String| Error::Agent {
                machine: machine.to_string(),
                reason,
            };
            let mut agent = russh::keys::agent::client::AgentClient::connect_uds(socket)
                .await
                .map_err(|e| agent_error(format!("cannot reach {}: {e}", socket.display())))?;
            let keys = agent
                .request_identities()
                .await
                .map_err(|e| agent_error(format!("cannot list keys: {e}")))?;
            if keys.is_empty() {
                return Err(agent_error("it holds no keys".to_string()));
            }
            let mut offered = Vec::new();
            for key in keys {
                offered.push(
                    key.to_bytes()
                        .map(|b| fingerprint::sha256(&b))
                        .unwrap_or_default(),
                );
                let hash = key.algorithm().is_rsa().then_some(rsa_hash).flatten();
                let result = handle
                    .authenticate_publickey_with(user, key, hash, &mut agent)
                    .await
                    .map_err(|e| agent_error(format!("signing failed: {e}")))?;
                if result.success() {
                    return Ok(());
                }
            }
            Err(rejected(
                machine,
                user,
                format!("the agent's keys {}", offered.join(", ")),
            ))
        }
    }
}

fn rejected(machine: &str, user: &str, offered: String) -> Error {
    Error::AuthRejected {
        machine: machine.to_string(),
        user: user.to_string(),
        offered,
    }
}
