//! Which certificates a cluster needs, decided from its checked `cluster.toml`
//! (pure), and issuing them from the cluster's authorities. Where they are
//! copied to, and when, belongs to the bootstrap steps, not here.

use std::time::SystemTime;

use berth_pki::{
    api_serving, etcd_api_client, etcd_peer, etcd_server, front_proxy_client, CertifiedKey,
    ClusterAuthorities, LeafSpec, PkiError,
};

use crate::config::{Cluster, Datastore};

/// Which authority signs a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signer {
    /// The cluster CA.
    Cluster,
    /// The etcd CA.
    Etcd,
    /// The front-proxy CA.
    FrontProxy,
}

/// One certificate the cluster needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedCertificate {
    /// Its file name without extension, kubeadm's layout (`apiserver`, `etcd/master-1-peer`).
    pub name: String,
    /// The Node name of the only master that gets it, or `None` for every master.
    pub master: Option<String>,
    /// Who signs it.
    pub signer: Signer,
    /// What it says.
    pub spec: LeafSpec,
}

/// Every certificate `cluster`'s masters need: the API serving certificate
/// (all masters and `api_endpoint`, or the first master without one), the front-proxy client, and on
/// etcd each member's server and peer certificates plus the API servers'
/// etcd client certificate.
pub fn plan(cluster: &Cluster) -> Vec<PlannedCertificate> {
    let hosts: Vec<String> = cluster.masters.iter().map(|m| m.host.clone()).collect();
    let endpoint = cluster
        .api_endpoint
        .clone()
        .or_else(|| hosts.first().cloned())
        .unwrap_or_default();
    let first_service_ip = cluster.service_cidr.first_address();
    let shared = |name: &str, signer, spec| PlannedCertificate {
        name: name.to_owned(),
        master: None,
        signer,
        spec,
    };
    let mut plan = vec![
        shared(
            "apiserver",
            Signer::Cluster,
            api_serving(&hosts, &endpoint, first_service_ip),
        ),
        shared(
            "front-proxy-client",
            Signer::FrontProxy,
            front_proxy_client(),
        ),
    ];
    if cluster.datastore == Datastore::Etcd {
        plan.push(shared(
            "apiserver-etcd-client",
            Signer::Etcd,
            etcd_api_client(),
        ));
        for master in &cluster.masters {
            let member = |suffix: &str, spec| PlannedCertificate {
                name: format!("etcd/{}-{suffix}", master.name),
                master: Some(master.name.clone()),
                signer: Signer::Etcd,
                spec,
            };
            plan.push(member("server", etcd_server(&master.name, &master.host)));
            plan.push(member("peer", etcd_peer(&master.name, &master.host)));
        }
    }
    plan
}

/// Issues every planned certificate from `authorities`, valid from `now`.
pub fn issue(
    authorities: &ClusterAuthorities,
    plan: &[PlannedCertificate],
    now: SystemTime,
) -> Result<Vec<(PlannedCertificate, CertifiedKey)>, PkiError> {
    plan.iter()
        .map(|planned| {
            let authority = match planned.signer {
                Signer::Cluster => &authorities.cluster,
                Signer::Etcd => &authorities.etcd,
                Signer::FrontProxy => &authorities.front_proxy,
            };
            Ok((planned.clone(), authority.issue(&planned.spec, now)?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config;

    fn example(name: &str) -> Cluster {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../examples")
            .join(name);
        config::load(&path).unwrap()
    }

    #[test]
    fn plans_follow_the_datastore_and_the_masters() {
        let names = |cluster: &Cluster| -> Vec<String> {
            plan(cluster).into_iter().map(|p| p.name).collect()
        };
        assert_eq!(
            names(&example("cluster-single.toml")),
            ["apiserver", "front-proxy-client"]
        );
        let ha = example("cluster-ha.toml");
        assert_eq!(
            names(&ha),
            [
                "apiserver",
                "front-proxy-client",
                "apiserver-etcd-client",
                "etcd/master-1-server",
                "etcd/master-1-peer",
                "etcd/master-2-server",
                "etcd/master-2-peer",
                "etcd/master-3-server",
                "etcd/master-3-peer",
            ]
        );
        let plan = plan(&ha);
        let serving = &plan[0].spec.sans;
        for san in [
            "10.0.0.11",
            "10.0.0.12",
            "10.0.0.13",
            "10.43.0.1",
            "kubernetes.default.svc",
        ] {
            assert!(
                serving.iter().any(|s| s == san),
                "{san} missing from {serving:?}"
            );
        }
        let peer = plan
            .iter()
            .find(|p| p.name == "etcd/master-2-peer")
            .unwrap();
        assert_eq!(peer.master.as_deref(), Some("master-2"));
        assert_eq!(peer.spec.sans, ["10.0.0.12", "127.0.0.1"]);
    }

    #[test]
    fn every_planned_certificate_is_issued_by_its_signer() {
        let dir = tempfile::tempdir().unwrap();
        let now = SystemTime::now();
        let authorities = ClusterAuthorities::load_or_create(dir.path(), now).unwrap();
        let plan = plan(&example("cluster-ha.toml"));
        let issued = issue(&authorities, &plan, now).unwrap();
        assert_eq!(issued.len(), plan.len());
        for (planned, cert) in &issued {
            assert!(
                cert.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"),
                "{}",
                planned.name
            );
            assert!(berth_pki::expiry(&cert.cert_pem).unwrap() > now);
        }
    }
}
