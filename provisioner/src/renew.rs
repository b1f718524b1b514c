//! `berth cluster renew-certs`: re-issues, from the same CAs, every leaf
//! certificate the provisioner issued (etcd members' server and peer
//! certificates, the API servers' etcd client certificate, the API servers'
//! kubelet client certificate), then hands them to the masters one at a
//! time, restarting each and waiting for its etcd member and its API before
//! the next. The CAs and the admin's credentials never change, so agents
//! and kubeconfigs keep working. The API serving certificates are not here:
//! each `berth server` issues its own from the cluster CA.

use std::path::Path;
use std::time::SystemTime;

use berth_pki::{apiserver_kubelet_client, Authority, CertifiedKey, LeafSpec, LEAF_VALIDITY};

use crate::certificates::Signer;
use crate::config::{Cluster, Datastore};
use crate::create::{self, CreateError, CreateOptions, Restart, State};
use crate::etcd;
use crate::ssh::{self, Summary};
use crate::status::format_time;

/// One certificate to re-issue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Renewal {
    /// Its path in the state directory without extension (`etcd/m1-peer`).
    pub file: String,
    /// The CA that signed it and signs it again.
    pub signer: Signer,
    /// What it says (unchanged by renewal).
    pub spec: LeafSpec,
}

/// Every leaf certificate of `cluster` the provisioner issued, as `create`
/// issues them: the kubelet client certificate, and on etcd the
/// certificates of [`etcd::leaves`].
pub fn plan(cluster: &Cluster) -> Vec<Renewal> {
    let mut plan = vec![Renewal {
        file: "server-seed/tls/kubelet-client".to_owned(),
        signer: Signer::Cluster,
        spec: apiserver_kubelet_client(),
    }];
    if cluster.datastore == Datastore::Etcd {
        plan.extend(
            etcd::leaves(&cluster.masters)
                .into_iter()
                .map(|(stem, spec)| Renewal {
                    file: format!("etcd/{stem}"),
                    signer: Signer::Etcd,
                    spec,
                }),
        );
    }
    plan
}

/// The CA's files in the state directory (without extension).
fn authority_file(signer: Signer) -> Option<&'static str> {
    match signer {
        Signer::Cluster => Some("server-seed/tls/ca"),
        Signer::Etcd => Some("etcd/ca"),
        Signer::FrontProxy => None,
    }
}

/// Whether a certificate expiring at `old` (`None`: missing or unreadable)
/// is re-issued at `now`: unless it already outlives a new one, so a
/// renewal never brings an expiry closer (the kubelet client certificate
/// `create` seeds runs until its CA's end).
fn renews(old: Option<SystemTime>, now: SystemTime) -> bool {
    old.is_none_or(|old| old < now + LEAF_VALIDITY)
}

/// One certificate after renewal: its name, when the old one expired
/// (when it could be read) and when the one now in place does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Renewed {
    /// Its path in the state directory (`etcd/m1-peer.crt`).
    pub name: String,
    /// The old certificate's expiry.
    pub old: Option<SystemTime>,
    /// The expiry of the certificate now in place (the old one's when kept).
    pub new: SystemTime,
    /// Whether it was re-issued (else kept: it outlives a new one).
    pub reissued: bool,
}

impl std::fmt::Display for Renewed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if !self.reissued {
            return write!(
                f,
                "kept    {:<40} expires {}, later than a renewed one would",
                self.name,
                format_time(self.new)
            );
        }
        let old = self
            .old
            .map_or_else(|| "unreadable".to_owned(), format_time);
        write!(
            f,
            "renewed {:<40} expiry was {old}, now expires {}",
            self.name,
            format_time(self.new)
        )
    }
}

/// What `renew` did.
#[derive(Debug)]
pub struct RenewalReport {
    /// Every certificate, old and new expiry.
    pub certificates: Vec<Renewed>,
    /// What was done on each master.
    pub summary: Summary,
}

fn state_error(dir: &Path, reason: impl std::fmt::Display) -> CreateError {
    CreateError::State {
        dir: dir.to_owned(),
        reason: reason.to_string(),
    }
}

/// Writes `contents` to `path` through a temporary file beside it, so a
/// crash never leaves half a certificate.
fn write_file(path: &Path, contents: &str, secret: bool) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let temporary = path.with_extension("renewing");
    std::fs::write(&temporary, contents)?;
    let mode = if secret { 0o600 } else { 0o644 };
    std::fs::set_permissions(&temporary, std::fs::Permissions::from_mode(mode))?;
    std::fs::rename(&temporary, path)
}

/// Issues every certificate of `plan` again from its CA in `dir` and
/// replaces the files there.
fn reissue(dir: &Path, plan: &[Renewal], now: SystemTime) -> Result<Vec<Renewed>, CreateError> {
    let read = |file: &str| {
        std::fs::read_to_string(dir.join(file)).map_err(|e| {
            state_error(
                dir,
                format!("{file}: {e}; renew-certs re-issues from the CAs `berth cluster create` keeps in the state directory"),
            )
        })
    };
    let mut renewed = Vec::new();
    for renewal in plan {
        let ca = authority_file(renewal.signer)
            .ok_or_else(|| state_error(dir, format!("{}: no CA kept for it", renewal.file)))?;
        let authority = Authority {
            cert_pem: read(&format!("{ca}.crt"))?,
            key_pem: read(&format!("{ca}.key"))?,
        };
        let (cert, key) = (
            dir.join(format!("{}.crt", renewal.file)),
            dir.join(format!("{}.key", renewal.file)),
        );
        let old = std::fs::read_to_string(&cert)
            .ok()
            .and_then(|pem| berth_pki::expiry(&pem).ok());
        if let Some(old) = old.filter(|_| !renews(old, now)) {
            renewed.push(Renewed {
                name: format!("{}.crt", renewal.file),
                old: Some(old),
                new: old,
                reissued: false,
            });
            continue;
        }
        let CertifiedKey { cert_pem, key_pem } = authority
            .issue(&renewal.spec, now)
            .map_err(|e| state_error(dir, e))?;
        let new = berth_pki::expiry(&cert_pem).map_err(|e| state_error(dir, e))?;
        write_file(&key, &key_pem, true).map_err(|e| state_error(dir, e))?;
        write_file(&cert, &cert_pem, false).map_err(|e| state_error(dir, e))?;
        renewed.push(Renewed {
            name: format!("{}.crt", renewal.file),
            old,
            new,
            reissued: true,
        });
    }
    Ok(renewed)
}

/// Re-issues `cluster`'s leaf certificates and rolls them out, one master
/// at a time; stops at the first master that does not come back.
pub async fn renew(
    cluster: &Cluster,
    options: &CreateOptions,
) -> Result<RenewalReport, CreateError> {
    let dir = &options.state_dir;
    let certificates = reissue(dir, &plan(cluster), SystemTime::now())?;
    let state = State::open(dir, cluster)?;
    let tls = match state.etcd {
        Some(_) => Some(etcd::client_tls(dir).map_err(|e| state_error(dir, e))?),
        None => None,
    };
    let masters =
        create::connect(cluster.masters.iter().collect(), options.connect_timeout).await?;
    let mut summary = Summary {
        outcomes: Vec::new(),
    };
    let mut failure = None;
    for index in 0..masters.len() {
        let (state, tls, masters) = (&state, &tls, &masters);
        let done = ssh::for_each(
            &[index],
            |&index| masters[index].machine.name.clone(),
            |&index, progress| async move {
                let session = &masters[index];
                create::prepare_master(state, session, &options.binary, &progress)
                    .await
                    .map_err(|e| e.to_string())?;
                let restart = Restart {
                    etcd: true,
                    server: true,
                };
                create::start_master(cluster, state, session, restart, &progress)
                    .await
                    .map_err(|e| e.to_string())?;
                if let Some(tls) = tls {
                    progress.step("waiting for etcd");
                    etcd::wait_member_healthy(tls, session.machine, options.ready_timeout).await?;
                }
                progress.step("waiting for /readyz");
                let url = create::api_url(session.machine);
                create::wait_ready(&state.seed, &url, options.ready_timeout)
                    .await
                    .map_err(|e| e.to_string())
            },
        )
        .await;
        match create::check_summary(done, "restarting with the new certificates", 1) {
            Ok(done) => summary.outcomes.extend(done.outcomes),
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    for session in masters {
        session.ssh.close().await;
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(RenewalReport {
            certificates,
            summary,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config;
    use std::time::Duration;

    fn example(name: &str) -> Cluster {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../examples")
            .join(name);
        config::load(&path).unwrap()
    }

    #[test]
    fn the_plan_covers_what_create_issued_for_each_datastore() {
        let files = |cluster: &Cluster| -> Vec<(String, Signer)> {
            plan(cluster)
                .into_iter()
                .map(|r| (r.file, r.signer))
                .collect()
        };
        let cases: [(&str, &[(&str, Signer)]); 2] = [
            (
                "cluster-single.toml",
                &[("server-seed/tls/kubelet-client", Signer::Cluster)],
            ),
            (
                "cluster-ha.toml",
                &[
                    ("server-seed/tls/kubelet-client", Signer::Cluster),
                    ("etcd/master-1-server", Signer::Etcd),
                    ("etcd/master-1-peer", Signer::Etcd),
                    ("etcd/master-2-server", Signer::Etcd),
                    ("etcd/master-2-peer", Signer::Etcd),
                    ("etcd/master-3-server", Signer::Etcd),
                    ("etcd/master-3-peer", Signer::Etcd),
                    ("etcd/apiserver-etcd-client", Signer::Etcd),
                ],
            ),
        ];
        for (example_name, want) in cases {
            let want: Vec<(String, Signer)> =
                want.iter().map(|(f, s)| ((*f).to_owned(), *s)).collect();
            assert_eq!(files(&example(example_name)), want, "{example_name}");
        }
    }

    #[test]
    fn a_renewal_never_brings_an_expiry_closer() {
        let now = SystemTime::now();
        let day = Duration::from_secs(86_400);
        let cases = [
            (None, true),
            (Some(now - day), true),
            (Some(now + 30 * day), true),
            (Some(now + LEAF_VALIDITY - day), true),
            (Some(now + LEAF_VALIDITY + day), false),
            (Some(now + 3650 * day), false),
        ];
        for (old, want) in cases {
            assert_eq!(renews(old, now), want, "{old:?}");
        }
    }

    #[test]
    fn renewal_keeps_the_cas_and_what_each_certificate_says() {
        let dir = tempfile::tempdir().unwrap();
        let cluster = example("cluster-ha.toml");
        // What `create` leaves: the seed and etcd's certificates.
        let hosts: Vec<String> = cluster.masters.iter().map(|m| m.host.clone()).collect();
        berth_pki::Pki::load_or_create(&dir.path().join("server-seed"), &hosts).unwrap();
        etcd::Certificates::load_or_issue(&dir.path().join("etcd"), &cluster.masters).unwrap();
        let read = |file: &str| std::fs::read_to_string(dir.path().join(file)).unwrap();
        let (cluster_ca, etcd_ca) = (read("server-seed/tls/ca.crt"), read("etcd/ca.crt"));
        let old_peer = read("etcd/master-2-peer.crt");
        // Renewed a day later: every new certificate outlives its old one.
        let tomorrow = SystemTime::now() + Duration::from_secs(86_400);
        let renewed = reissue(dir.path(), &plan(&cluster), tomorrow).unwrap();
        assert_eq!(renewed.len(), 8);
        // The seeded kubelet client certificate runs to 2036: kept.
        assert!(!renewed[0].reissued, "{}", renewed[0]);
        assert!(renewed[0]
            .to_string()
            .starts_with("kept    server-seed/tls/kubelet-client.crt"));
        assert_eq!(read("server-seed/tls/ca.crt"), cluster_ca);
        assert_eq!(read("etcd/ca.crt"), etcd_ca);
        assert_ne!(read("etcd/master-2-peer.crt"), old_peer);
        for certificate in &renewed[1..] {
            assert!(certificate.reissued, "{certificate}");
            assert!(certificate.new > certificate.old.unwrap(), "{certificate}");
            assert!(dir.path().join(&certificate.name).exists(), "{certificate}");
        }
        let line = renewed[2].to_string();
        assert!(
            line.starts_with("renewed etcd/master-1-peer.crt "),
            "{line}"
        );
        assert!(line.contains(" UTC, now expires "), "{line}");
        // A missing CA is an error that says where the CAs are kept.
        let empty = tempfile::tempdir().unwrap();
        let error = reissue(empty.path(), &plan(&cluster), SystemTime::now()).unwrap_err();
        assert!(
            error.to_string().contains("server-seed/tls/ca.crt"),
            "{error}"
        );
    }
}
