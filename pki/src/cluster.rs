//! The long-lived secrets of a highly available cluster, kept in one folder
//! on the machine running the provisioner (kubeadm's layout): the cluster CA,
//! the etcd CA, the front-proxy CA and the service-account signing key. They
//! are created once and never replaced; leaf certificates are issued from them.

use std::path::Path;
use std::time::SystemTime;

use rcgen::KeyPair;

use crate::authority::Authority;
use crate::files::{create_dir, read, write};
use crate::PkiError;

/// The key pair the API servers sign (private) and verify (public)
/// service-account tokens with; ECDSA P-256, as every master shares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceAccountKey {
    /// PKCS#8 private key, PEM.
    pub private_pem: String,
    /// SubjectPublicKeyInfo, PEM.
    pub public_pem: String,
}

impl ServiceAccountKey {
    /// A new key pair.
    pub fn generate() -> Result<Self, PkiError> {
        let key = KeyPair::generate()?;
        Ok(Self {
            private_pem: key.serialize_pem(),
            public_pem: key.public_key_pem(),
        })
    }

    /// The pair at `dir/sa.key` and `dir/sa.pub`, created when missing.
    pub fn load_or_create(dir: &Path) -> Result<Self, PkiError> {
        let (private_path, public_path) = (dir.join("sa.key"), dir.join("sa.pub"));
        if let (Some(private_pem), Some(public_pem)) = (read(&private_path)?, read(&public_path)?) {
            return Ok(Self {
                private_pem,
                public_pem,
            });
        }
        create_dir(dir)?;
        let key = Self::generate()?;
        write(&private_path, &key.private_pem, true)?;
        write(&public_path, &key.public_pem, false)?;
        Ok(key)
    }
}

/// The cluster's authorities and signing key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterAuthorities {
    /// Signs API serving, kubelet and user certificates (`ca.crt`).
    pub cluster: Authority,
    /// Signs etcd member and client certificates (`etcd/ca.crt`).
    pub etcd: Authority,
    /// Signs the front-proxy client certificate (`front-proxy-ca.crt`).
    pub front_proxy: Authority,
    /// Signs service-account tokens (`sa.key`, `sa.pub`).
    pub service_account: ServiceAccountKey,
}

impl ClusterAuthorities {
    /// Loads the authorities under `dir`, creating whichever is missing.
    pub fn load_or_create(dir: &Path, now: SystemTime) -> Result<Self, PkiError> {
        create_dir(dir)?;
        Ok(Self {
            cluster: Authority::load_or_create(dir, "ca", "berth-ca", now)?,
            etcd: Authority::load_or_create(&dir.join("etcd"), "ca", "berth-etcd-ca", now)?,
            front_proxy: Authority::load_or_create(
                dir,
                "front-proxy-ca",
                "berth-front-proxy-ca",
                now,
            )?,
            service_account: ServiceAccountKey::load_or_create(dir)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;
    use std::process::Command;
    use std::time::Duration;

    use super::*;
    use crate::{
        api_serving, etcd_api_client, etcd_peer, etcd_server, expiry, front_proxy_client,
        CertifiedKey, CA_VALIDITY, LEAF_VALIDITY,
    };

    /// Runs `openssl ARGS` in `dir` and returns its output, or `None` when
    /// openssl is not installed.
    fn openssl(dir: &Path, args: &[&str]) -> Option<String> {
        let output = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "openssl {args:?}: {text}");
        Some(text)
    }

    fn verify(dir: &Path, ca: &Authority, leaf: &CertifiedKey, name: &str, purpose: &str) {
        std::fs::write(dir.join(format!("{name}-ca.pem")), &ca.cert_pem).unwrap();
        std::fs::write(dir.join(format!("{name}.pem")), &leaf.cert_pem).unwrap();
        let ca_file = format!("{name}-ca.pem");
        let leaf_file = format!("{name}.pem");
        if let Some(out) = openssl(
            dir,
            &[
                "verify", "-CAfile", &ca_file, "-purpose", purpose, &leaf_file,
            ],
        ) {
            assert_eq!(out.trim(), format!("{leaf_file}: OK"));
        }
    }

    fn sans(dir: &Path, name: &str) -> Option<String> {
        let file = format!("{name}.pem");
        openssl(
            dir,
            &["x509", "-noout", "-ext", "subjectAltName", "-in", &file],
        )
    }

    #[test]
    fn authorities_persist_and_issue_chains_openssl_accepts() {
        let dir = tempfile::tempdir().unwrap();
        let now = SystemTime::now();
        let first = ClusterAuthorities::load_or_create(dir.path(), now).unwrap();
        let again =
            ClusterAuthorities::load_or_create(dir.path(), now + Duration::from_secs(60)).unwrap();
        assert_eq!(first, again);
        for key in ["ca.key", "etcd/ca.key", "front-proxy-ca.key", "sa.key"] {
            let mode = std::fs::metadata(dir.path().join(key))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{key}");
        }
        assert_ne!(first.cluster.cert_pem, first.etcd.cert_pem);

        let work = tempfile::tempdir().unwrap();
        let masters = [
            "10.0.0.11".to_owned(),
            "10.0.0.12".to_owned(),
            "10.0.0.13".to_owned(),
        ];
        let spec = api_serving(
            &masters,
            "https://api.example.com:6443",
            "10.43.0.1".parse().unwrap(),
        );
        let serving = first.cluster.issue(&spec, now).unwrap();
        verify(
            work.path(),
            &first.cluster,
            &serving,
            "apiserver",
            "sslserver",
        );
        if let Some(text) = sans(work.path(), "apiserver") {
            for name in [
                "DNS:api.example.com",
                "IP Address:10.0.0.12",
                "DNS:kubernetes.default.svc.cluster.local",
                "IP Address:10.43.0.1",
            ] {
                assert!(text.contains(name), "{name} missing from {text}");
            }
        }
        let peer = first
            .etcd
            .issue(&etcd_peer("master-1", "10.0.0.11"), now)
            .unwrap();
        verify(work.path(), &first.etcd, &peer, "etcd-peer", "sslserver");
        verify(work.path(), &first.etcd, &peer, "etcd-peer", "sslclient");
        let server = first
            .etcd
            .issue(&etcd_server("master-1", "10.0.0.11"), now)
            .unwrap();
        verify(
            work.path(),
            &first.etcd,
            &server,
            "etcd-server",
            "sslserver",
        );
        if let Some(text) = sans(work.path(), "etcd-server") {
            assert!(
                text.contains("IP Address:10.0.0.11, IP Address:127.0.0.1"),
                "{text}"
            );
        }
        let client = first.etcd.issue(&etcd_api_client(), now).unwrap();
        verify(
            work.path(),
            &first.etcd,
            &client,
            "etcd-client",
            "sslclient",
        );
        let proxy = first.front_proxy.issue(&front_proxy_client(), now).unwrap();
        verify(
            work.path(),
            &first.front_proxy,
            &proxy,
            "front-proxy-client",
            "sslclient",
        );
        // A certificate from one CA does not chain to another.
        std::fs::write(work.path().join("wrong-ca.pem"), &first.cluster.cert_pem).unwrap();
        if let Ok(output) = Command::new("openssl")
            .args(["verify", "-CAfile", "wrong-ca.pem", "etcd-client.pem"])
            .current_dir(work.path())
            .output()
        {
            assert!(!output.status.success());
        }

        let seconds = |t: SystemTime| t.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        assert_eq!(
            seconds(expiry(&serving.cert_pem).unwrap()),
            seconds(now + LEAF_VALIDITY)
        );
        assert_eq!(
            seconds(expiry(&first.cluster.cert_pem).unwrap()),
            seconds(now + CA_VALIDITY)
        );
    }

    #[test]
    fn service_account_public_key_matches_its_private_key() {
        let dir = tempfile::tempdir().unwrap();
        let key = ServiceAccountKey::load_or_create(dir.path()).unwrap();
        assert!(key.public_pem.starts_with("-----BEGIN PUBLIC KEY-----"));
        let derived = KeyPair::from_pem(&key.private_pem)
            .unwrap()
            .public_key_pem();
        assert_eq!(derived, key.public_pem);
        assert_eq!(ServiceAccountKey::load_or_create(dir.path()).unwrap(), key);
    }
}
