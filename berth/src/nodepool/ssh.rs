//! The `ssh` machine provider: a pool's machines are the bare hosts its
//! `template.ssh.hosts` lists, one per NodeClaim. The SSH work (markers,
//! join, clean-up) is the provisioner's `pool_hosts`; this is the glue to
//! NodeClaims. A host's marker is the truth: after a restart, `list` and
//! `describe` read it back over SSH, and a host that cannot be reached is
//! an error, never "gone".

use std::collections::BTreeMap;
use std::sync::Mutex;

use berth_api::nodeclaim::NodeClaim;
use berth_api::nodepool::{NodePool, SshTemplate, POOL_LABEL};
use berth_nodepool::capacity::claim_capacity;
use berth_nodepool::claim::node_labels;
use berth_nodepool::{Machine, MachineProvider, ProviderError};
use berth_provisioner::join::ensure_token;
use berth_provisioner::pool_hosts::{self, Marker, NodeSpec, PoolHost};
use berth_provisioner::ssh;
use kube::api::ListParams;
use kube::{Api, ResourceExt};

use super::ssh_settings::SshSettings;

/// Bare machines over SSH.
pub struct SshProvider {
    client: kube::Client,
    settings: SshSettings,
    /// Hosts by provider id, learned from launches and claims (a cache:
    /// the claims' templates say the same after a restart).
    known: Mutex<BTreeMap<String, PoolHost>>,
}

impl std::fmt::Debug for SshProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SshProvider")
            .field("cluster", &self.settings.cluster)
            .finish()
    }
}

fn transient(operation: &'static str, reason: impl std::fmt::Display) -> ProviderError {
    ProviderError::Transient {
        operation,
        reason: reason.to_string(),
    }
}

/// The machine a marker describes on `host`.
fn machine(host: &PoolHost, marker: &Marker, claim: Option<&NodeClaim>) -> Machine {
    Machine {
        provider_id: host.provider_id(),
        pool: marker.pool.clone(),
        claim: marker.claim.clone(),
        node_name: marker.claim.clone(),
        image_id: None,
        capacity: claim.map(claim_capacity).unwrap_or_default(),
    }
}

impl SshProvider {
    /// A provider that joins hosts to the cluster `client` talks to.
    pub fn new(client: kube::Client, settings: SshSettings) -> Self {
        Self {
            client,
            settings,
            known: Mutex::new(BTreeMap::new()),
        }
    }

    fn marker(&self, pool: &str, claim: &str) -> Marker {
        Marker {
            cluster: self.settings.cluster.clone(),
            pool: pool.to_owned(),
            claim: claim.to_owned(),
        }
    }

    async fn connect(
        &self,
        host: &PoolHost,
        operation: &'static str,
    ) -> Result<ssh::Machine, ProviderError> {
        ssh::Machine::connect(host.target.clone(), &self.settings.connect)
            .await
            .map_err(|e| transient(operation, e))
    }

    /// The marker of each host, read at once; an unreachable host's error.
    async fn markers(&self, hosts: &[PoolHost]) -> Vec<Result<Option<Marker>, String>> {
        futures::future::join_all(hosts.iter().map(|host| async move {
            let session = self
                .connect(host, "reading markers")
                .await
                .map_err(|e| e.to_string())?;
            let marker = pool_hosts::read_marker(&session, host).await;
            session.close().await;
            marker.map_err(|e| e.to_string())
        }))
        .await
    }

    /// The host behind `provider_id` with the claim that holds it, from the
    /// cache or the NodeClaims recording the id.
    async fn host_of(
        &self,
        provider_id: &str,
    ) -> Result<(Option<PoolHost>, Option<NodeClaim>), ProviderError> {
        let claims: Api<NodeClaim> = Api::all(self.client.clone());
        let claim = claims
            .list(&ListParams::default())
            .await
            .map_err(|e| transient("finding the nodeclaim of a host", e))?
            .items
            .into_iter()
            .find(|c| {
                c.status.as_ref().and_then(|s| s.provider_id.as_deref()) == Some(provider_id)
            });
        if let Some(host) = self.known.lock().expect("known lock").get(provider_id) {
            return Ok((Some(host.clone()), claim));
        }
        let entry = provider_id.strip_prefix(pool_hosts::SCHEME);
        let host = claim
            .as_ref()
            .and_then(|c| c.spec.template.ssh.as_ref())
            .zip(entry)
            .and_then(|(template, entry)| PoolHost::new(template, entry).ok());
        Ok((host, claim))
    }

    /// The templates that may list hosts of `pool`: the pool's own and its claims'.
    async fn templates_of(&self, pool: &str) -> Result<Vec<SshTemplate>, ProviderError> {
        let failed = |e: kube::Error| transient("listing pool hosts", e);
        let pools: Api<NodePool> = Api::all(self.client.clone());
        let mut templates: Vec<SshTemplate> = pools
            .get_opt(pool)
            .await
            .map_err(failed)?
            .and_then(|p| p.spec.template.and_then(|t| t.ssh))
            .into_iter()
            .collect();
        let claims: Api<NodeClaim> = Api::all(self.client.clone());
        let selector = ListParams::default().labels(&format!("{POOL_LABEL}={pool}"));
        for claim in claims.list(&selector).await.map_err(failed)?.items {
            templates.extend(claim.spec.template.ssh);
        }
        Ok(templates)
    }

    /// Joins `host` (held for `claim`) as the claim's node.
    async fn join(
        &self,
        session: &ssh::Machine,
        host: &PoolHost,
        claim: &NodeClaim,
    ) -> Result<(), ProviderError> {
        let token = ensure_token(&self.client, &self.settings.state_dir)
            .await
            .map_err(|e| transient("making a bootstrap token", e))?;
        let mut taints = claim.spec.taints.clone();
        taints.extend(claim.spec.startup_taints.iter().cloned());
        let node = NodeSpec {
            name: claim.name_any(),
            pool: claim.spec.pool.clone(),
            labels: node_labels(claim),
            taints,
        };
        pool_hosts::join(session, host, &self.settings.join, &node, &token)
            .await
            .map_err(|e| transient("joining", e))
    }
}

#[async_trait::async_trait]
impl MachineProvider for SshProvider {
    fn name(&self) -> &'static str {
        "ssh"
    }

    async fn launch(&self, claim: &NodeClaim) -> Result<Machine, ProviderError> {
        let name = claim.name_any();
        let invalid = |reason: String| ProviderError::Invalid {
            claim: name.clone(),
            reason,
        };
        let template = claim
            .spec
            .template
            .ssh
            .as_ref()
            .ok_or_else(|| invalid("the ssh provider needs template.ssh.hosts".to_owned()))?;
        let hosts = PoolHost::all(template).map_err(invalid)?;
        let mine = self.marker(&claim.spec.pool, &name);
        let markers = self.markers(&hosts).await;
        // The host this claim already holds first, then the free ones in order.
        let mut candidates: Vec<usize> = (0..hosts.len())
            .filter(|&i| matches!(&markers[i], Ok(Some(m)) if *m == mine))
            .collect();
        candidates.extend((0..hosts.len()).filter(|&i| matches!(markers[i], Ok(None))));
        let mut taken = Vec::new();
        for index in candidates {
            let host = &hosts[index];
            let session = self.connect(host, "launch").await?;
            let joined: Result<Option<Marker>, ProviderError> = async {
                let holder = pool_hosts::take(&session, host, &mine)
                    .await
                    .map_err(|e| transient("launch", e))?;
                if holder != mine {
                    return Ok(Some(holder));
                }
                self.known
                    .lock()
                    .expect("known lock")
                    .insert(host.provider_id(), host.clone());
                self.join(&session, host, claim).await.map(|()| None)
            }
            .await;
            session.close().await;
            match joined? {
                None => {
                    tracing::info!(claim = %name, host = %host.entry, "launched pool host");
                    return Ok(machine(host, &mine, Some(claim)));
                }
                Some(holder) => taken.push(format!("{} by {}", host.entry, holder.claim)),
            }
        }
        for (host, marker) in hosts.iter().zip(&markers) {
            match marker {
                Ok(Some(holder)) if *holder != mine => {
                    taken.push(format!("{} by {}", host.entry, holder.claim))
                }
                Err(e) => taken.push(format!("{} unreachable ({e})", host.entry)),
                _ => {}
            }
        }
        Err(transient(
            "launch",
            format!(
                "no free host in template.ssh.hosts of pool {}: all {} are taken ({}); add hosts or lower the pool's replicas",
                claim.spec.pool,
                hosts.len(),
                taken.join(", ")
            ),
        ))
    }

    async fn describe(&self, provider_id: &str) -> Result<Option<Machine>, ProviderError> {
        let (Some(host), claim) = self.host_of(provider_id).await? else {
            return Ok(None);
        };
        let session = self.connect(&host, "describe").await?;
        let marker = pool_hosts::read_marker(&session, &host).await;
        session.close().await;
        let marker = marker.map_err(|e| transient("describe", e))?;
        let ours = |m: &Marker| {
            m.cluster == self.settings.cluster
                && claim.as_ref().is_none_or(|c| c.name_any() == m.claim)
        };
        Ok(marker
            .filter(ours)
            .map(|m| machine(&host, &m, claim.as_ref())))
    }

    async fn list(&self, pool: &str) -> Result<Vec<Machine>, ProviderError> {
        let mut hosts: Vec<PoolHost> = Vec::new();
        for template in self.templates_of(pool).await? {
            for entry in &template.hosts {
                let Ok(host) = PoolHost::new(&template, entry) else {
                    continue;
                };
                if !hosts.iter().any(|h| h.entry == host.entry) {
                    hosts.push(host);
                }
            }
        }
        let markers = self.markers(&hosts).await;
        let mut machines = Vec::new();
        for (host, marker) in hosts.iter().zip(markers) {
            let marker = marker.map_err(|e| transient("list", format!("{}: {e}", host.entry)))?;
            if let Some(marker) = marker.filter(|m| m.belongs_to(&self.settings.cluster, pool)) {
                self.known
                    .lock()
                    .expect("known lock")
                    .insert(host.provider_id(), host.clone());
                machines.push(machine(host, &marker, None));
            }
        }
        Ok(machines)
    }

    async fn terminate(&self, provider_id: &str) -> Result<(), ProviderError> {
        let (Some(host), _) = self.host_of(provider_id).await? else {
            tracing::warn!(
                provider_id,
                "no pool lists this host any more; nothing to clean"
            );
            return Ok(());
        };
        let session = self.connect(&host, "terminate").await?;
        let cleaned = pool_hosts::clean(&session, &host).await;
        session.close().await;
        cleaned.map_err(|e| transient("terminate", e))?;
        self.known.lock().expect("known lock").remove(provider_id);
        tracing::info!(provider_id, "cleaned pool host");
        Ok(())
    }
}
