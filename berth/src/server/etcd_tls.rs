//! `--etcd-cafile/--etcd-certfile/--etcd-keyfile` (kube-apiserver's names):
//! the files `berth server` reaches an etcd cluster with over TLS. Only reads
//! the three files and says clearly which one is missing or unreadable.

use std::path::{Path, PathBuf};

use anyhow::Context;
use berth_orchestrator::store::etcd::EtcdTls;
use clap::Args;

/// Flags for TLS to etcd; all three or none.
#[derive(Args, Debug, Default)]
pub struct EtcdTlsFlags {
    /// CA file the etcd members' serving certificates are verified against.
    #[arg(long, env = "BERTH_ETCD_CAFILE")]
    etcd_cafile: Option<PathBuf>,
    /// Client certificate presented to etcd.
    #[arg(long, env = "BERTH_ETCD_CERTFILE")]
    etcd_certfile: Option<PathBuf>,
    /// Private key of --etcd-certfile.
    #[arg(long, env = "BERTH_ETCD_KEYFILE")]
    etcd_keyfile: Option<PathBuf>,
}

/// The three paths, or why the flags do not make a whole.
fn complete(flags: &EtcdTlsFlags) -> anyhow::Result<Option<[(&'static str, &Path); 3]>> {
    let named = [
        ("--etcd-cafile", flags.etcd_cafile.as_deref()),
        ("--etcd-certfile", flags.etcd_certfile.as_deref()),
        ("--etcd-keyfile", flags.etcd_keyfile.as_deref()),
    ];
    let missing: Vec<&str> = named
        .iter()
        .filter(|(_, path)| path.is_none())
        .map(|(name, _)| *name)
        .collect();
    match missing.len() {
        3 => Ok(None),
        0 => Ok(Some(
            named.map(|(name, path)| (name, path.expect("checked"))),
        )),
        _ => anyhow::bail!(
            "--etcd-cafile, --etcd-certfile and --etcd-keyfile go together; missing {}",
            missing.join(", ")
        ),
    }
}

impl EtcdTlsFlags {
    /// True when any of the flags is set.
    pub fn any(&self) -> bool {
        self.etcd_cafile.is_some() || self.etcd_certfile.is_some() || self.etcd_keyfile.is_some()
    }

    /// The TLS material to dial etcd with, `None` when no flag is given.
    pub fn load(&self) -> anyhow::Result<Option<EtcdTls>> {
        let Some(paths) = complete(self)? else {
            return Ok(None);
        };
        let [ca_pem, cert_pem, key_pem] = paths.map(|(name, path)| {
            std::fs::read_to_string(path)
                .with_context(|| format!("{name} {}: cannot read the file", path.display()))
        });
        Ok(Some(EtcdTls {
            ca_pem: ca_pem?,
            cert_pem: cert_pem?,
            key_pem: key_pem?,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(ca: Option<&str>, cert: Option<&str>, key: Option<&str>) -> EtcdTlsFlags {
        EtcdTlsFlags {
            etcd_cafile: ca.map(PathBuf::from),
            etcd_certfile: cert.map(PathBuf::from),
            etcd_keyfile: key.map(PathBuf::from),
        }
    }

    #[test]
    fn the_three_flags_go_together() {
        let cases = [
            ("none", flags(None, None, None), Ok(false)),
            ("all", flags(Some("a"), Some("b"), Some("c")), Ok(true)),
            (
                "no key",
                flags(Some("a"), Some("b"), None),
                Err("missing --etcd-keyfile"),
            ),
            (
                "only the CA",
                flags(Some("a"), None, None),
                Err("missing --etcd-certfile, --etcd-keyfile"),
            ),
        ];
        for (name, flags, want) in cases {
            match (complete(&flags), want) {
                (Ok(got), Ok(want)) => assert_eq!(got.is_some(), want, "{name}"),
                (Err(e), Err(want)) => assert!(e.to_string().contains(want), "{name}: {e}"),
                (got, want) => panic!("{name}: got {:?}, want {want:?}", got.map(|p| p.is_some())),
            }
        }
    }

    #[test]
    fn an_unreadable_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.crt"), "ca").unwrap();
        std::fs::write(dir.path().join("client.crt"), "cert").unwrap();
        let ca = dir.path().join("ca.crt");
        let cert = dir.path().join("client.crt");
        let key = dir.path().join("client.key");
        let flags = flags(ca.to_str(), cert.to_str(), key.to_str());
        let error = format!("{:#}", flags.load().unwrap_err());
        assert!(
            error.contains("--etcd-keyfile") && error.contains("client.key"),
            "{error}"
        );
    }
}
