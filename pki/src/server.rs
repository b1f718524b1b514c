//! The server's own PKI on first start: a cluster CA, a serving certificate for
//! the API server, the client certificate it presents to kubelets and an admin
//! token, kept under the data directory and reused on every later start, plus
//! the `admin.kubeconfig` kubectl reads as is.

use std::net::IpAddr;
use std::path::Path;

use base64::Engine;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};

use crate::files::{create_dir, read, write};
use crate::PkiError;

/// The server's TLS material and admin credentials.
#[derive(Debug, Clone)]
pub struct Pki {
    /// PEM of the cluster CA certificate.
    pub ca_pem: String,
    /// PEM of the serving certificate.
    pub serving_cert_pem: String,
    /// PEM of the serving key.
    pub serving_key_pem: String,
    /// PEM of the certificate the API server presents to kubelets (CN
    /// `kube-apiserver-kubelet-client`, O `system:masters`, client auth).
    pub kubelet_client_cert_pem: String,
    /// PEM of its key.
    pub kubelet_client_key_pem: String,
    /// Bearer token of the cluster admin.
    pub admin_token: String,
}

fn random_token() -> String {
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl Pki {
    /// Loads the PKI from `dir/tls`, creating whatever is missing. `hosts` are the
    /// names and addresses the serving certificate must be valid for.
    pub fn load_or_create(dir: &Path, hosts: &[String]) -> Result<Self, PkiError> {
        let tls = dir.join("tls");
        create_dir(&tls)?;
        let (ca_cert, ca_key) = (tls.join("ca.crt"), tls.join("ca.key"));
        let mut ca_created = false;
        let (ca_pem, ca_key_pem) = match (read(&ca_cert)?, read(&ca_key)?) {
            (Some(c), Some(k)) => (c, k),
            _ => {
                ca_created = true;
                let key = KeyPair::generate()?;
                let mut params = CertificateParams::new(Vec::<String>::new())?;
                params
                    .distinguished_name
                    .push(DnType::CommonName, "berth-ca");
                params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
                params.key_usages = vec![
                    KeyUsagePurpose::KeyCertSign,
                    KeyUsagePurpose::CrlSign,
                    KeyUsagePurpose::DigitalSignature,
                ];
                params.not_after = rcgen::date_time_ymd(2036, 1, 1);
                let cert = params.self_signed(&key)?;
                write(&ca_key, &key.serialize_pem(), true)?;
                write(&ca_cert, &cert.pem(), false)?;
                (cert.pem(), key.serialize_pem())
            }
        };
        let (serving_cert, serving_key) = (tls.join("serving.crt"), tls.join("serving.key"));
        let hosts_file = tls.join("serving.hosts");
        let wanted_hosts = hosts.join(",");
        let (serving_cert_pem, serving_key_pem) = match (
            read(&serving_cert)?,
            read(&serving_key)?,
            read(&hosts_file)?,
        ) {
            (Some(c), Some(k), Some(h)) if h == wanted_hosts => (c, k),
            _ => {
                let issuer = Issuer::from_ca_cert_pem(&ca_pem, KeyPair::from_pem(&ca_key_pem)?)?;
                let key = KeyPair::generate()?;
                let mut params = CertificateParams::new(Vec::<String>::new())?;
                params
                    .distinguished_name
                    .push(DnType::CommonName, "kube-apiserver");
                for host in hosts {
                    params.subject_alt_names.push(match host.parse::<IpAddr>() {
                        Ok(ip) => SanType::IpAddress(ip),
                        Err(_) => SanType::DnsName(host.clone().try_into()?),
                    });
                }
                params.not_after = rcgen::date_time_ymd(2036, 1, 1);
                let cert = params.signed_by(&key, &issuer)?;
                write(&serving_key, &key.serialize_pem(), true)?;
                write(&serving_cert, &cert.pem(), false)?;
                write(&hosts_file, &wanted_hosts, false)?;
                (cert.pem(), key.serialize_pem())
            }
        };
        let (client_cert, client_key) = (
            tls.join("kubelet-client.crt"),
            tls.join("kubelet-client.key"),
        );
        let (kubelet_client_cert_pem, kubelet_client_key_pem) =
            match (read(&client_cert)?, read(&client_key)?) {
                (Some(c), Some(k)) if !ca_created => (c, k),
                _ => {
                    let issuer =
                        Issuer::from_ca_cert_pem(&ca_pem, KeyPair::from_pem(&ca_key_pem)?)?;
                    let key = KeyPair::generate()?;
                    let mut params = CertificateParams::new(Vec::<String>::new())?;
                    params
                        .distinguished_name
                        .push(DnType::CommonName, "kube-apiserver-kubelet-client");
                    params
                        .distinguished_name
                        .push(DnType::OrganizationName, "system:masters");
                    params.key_usages = vec![
                        KeyUsagePurpose::DigitalSignature,
                        KeyUsagePurpose::KeyEncipherment,
                    ];
                    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
                    params.not_after = rcgen::date_time_ymd(2036, 1, 1);
                    let cert = params.signed_by(&key, &issuer)?;
                    write(&client_key, &key.serialize_pem(), true)?;
                    write(&client_cert, &cert.pem(), false)?;
                    (cert.pem(), key.serialize_pem())
                }
            };
        let token_file = tls.join("admin.token");
        let admin_token = match read(&token_file)? {
            Some(t) if !t.trim().is_empty() => t.trim().to_owned(),
            _ => {
                let token = random_token();
                write(&token_file, &token, true)?;
                token
            }
        };
        Ok(Self {
            ca_pem,
            serving_cert_pem,
            serving_key_pem,
            kubelet_client_cert_pem,
            kubelet_client_key_pem,
            admin_token,
        })
    }

    /// A kubeconfig for the cluster admin against `server` (e.g. `https://127.0.0.1:6443`).
    pub fn admin_kubeconfig(&self, server: &str) -> String {
        let ca = base64::engine::general_purpose::STANDARD.encode(&self.ca_pem);
        format!(
            "apiVersion: v1
kind: Config
clusters:
- name: berth
  cluster:
    server: {server}
    certificate-authority-data: {ca}
users:
- name: berth-admin
  user:
    token: {token}
contexts:
- name: berth
  context:
    cluster: berth
    user: berth-admin
current-context: berth
preferences: {{}}
",
            token = self.admin_token
        )
    }

    /// Writes the admin kubeconfig to `path` (mode 0600).
    pub fn write_admin_kubeconfig(&self, path: &Path, server: &str) -> Result<(), PkiError> {
        write(path, &self.admin_kubeconfig(server), true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_load_reuses_everything() {
        let dir = tempfile::tempdir().unwrap();
        let hosts = vec!["127.0.0.1".to_owned(), "localhost".to_owned()];
        let first = Pki::load_or_create(dir.path(), &hosts).unwrap();
        let second = Pki::load_or_create(dir.path(), &hosts).unwrap();
        assert_eq!(first.ca_pem, second.ca_pem);
        assert_eq!(first.serving_cert_pem, second.serving_cert_pem);
        assert_eq!(first.admin_token, second.admin_token);
        assert_eq!(
            first.kubelet_client_cert_pem,
            second.kubelet_client_cert_pem
        );
        assert!(dir.path().join("tls/kubelet-client.crt").exists());
        assert!(dir.path().join("tls/kubelet-client.key").exists());
        let der = rustls_pemfile::certs(&mut first.kubelet_client_cert_pem.as_bytes())
            .next()
            .unwrap()
            .unwrap();
        let contains = |needle: &[u8]| der.windows(needle.len()).any(|w| w == needle);
        assert!(contains(b"kube-apiserver-kubelet-client"));
        assert!(contains(b"system:masters"));
        // The clientAuth extended key usage, OID 1.3.6.1.5.5.7.3.2.
        assert!(contains(&[
            0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x02
        ]));
        let config = first.admin_kubeconfig("https://127.0.0.1:6443");
        assert!(config.contains("server: https://127.0.0.1:6443"));
        assert!(config.contains(&first.admin_token));
    }

    /// HA masters: the provisioner puts one CA and admin token on every
    /// master before its first start; each keeps them and issues its own
    /// serving certificate from that CA for its own names.
    #[test]
    fn masters_sharing_a_ca_keep_it_and_serve_their_own_names() {
        let seed = tempfile::tempdir().unwrap();
        let shared = Pki::load_or_create(seed.path(), &["127.0.0.1".to_owned()]).unwrap();
        let masters: Vec<(tempfile::TempDir, Pki)> = ["master-a.test", "master-b.test"]
            .into_iter()
            .map(|name| {
                let dir = tempfile::tempdir().unwrap();
                std::fs::create_dir_all(dir.path().join("tls")).unwrap();
                for file in ["ca.crt", "ca.key", "admin.token"] {
                    std::fs::copy(
                        seed.path().join("tls").join(file),
                        dir.path().join("tls").join(file),
                    )
                    .unwrap();
                }
                let hosts = vec!["127.0.0.1".to_owned(), name.to_owned()];
                let pki = Pki::load_or_create(dir.path(), &hosts).unwrap();
                (dir, pki)
            })
            .collect();
        for ((_, pki), name) in masters.iter().zip(["master-a.test", "master-b.test"]) {
            assert_eq!(pki.ca_pem, shared.ca_pem);
            assert_eq!(pki.admin_token, shared.admin_token);
            assert_ne!(pki.serving_cert_pem, shared.serving_cert_pem);
            let der = rustls_pemfile::certs(&mut pki.serving_cert_pem.as_bytes())
                .next()
                .unwrap()
                .unwrap();
            let names = |needle: &[u8]| der.windows(needle.len()).any(|w| w == needle);
            assert!(
                names(name.as_bytes()),
                "{name} missing from its serving certificate"
            );
            assert!(
                names(b"berth-ca"),
                "serving certificate not issued by the shared CA"
            );
        }
        assert_ne!(masters[0].1.serving_cert_pem, masters[1].1.serving_cert_pem);
    }
}
