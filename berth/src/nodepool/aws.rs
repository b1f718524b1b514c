//! The `aws` machine provider: each NodeClaim becomes an EC2 instance launched
//! through `berth_provisioner::aws`, tagged with the cluster, pool and claim,
//! whose user-data joins it with a bootstrap token of its own. A clean-up
//! pass (at start and every minute) terminates instances whose claim is gone,
//! so neither a crash nor a deleted pool leaks an instance.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use berth_api::nodeclaim::NodeClaim;
use berth_api::nodepool::NodePool;
use berth_nodepool::claim::node_labels;
use berth_nodepool::{Machine, MachineProvider, ProviderError};
use berth_provisioner::aws::user_data::{node_script, NodeJoin};
use berth_provisioner::aws::{
    instance_id_of, AwsError, AwsSettings, Ec2, Instance, LaunchRequest, Role, CLAIM_TAG, POOL_TAG,
};
use clap::Args;
use k8s_openapi::api::core::v1::Taint;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::api::ListParams;
use kube::{Api, ResourceExt};
use tokio_util::sync::CancellationToken;

/// How often instances without a claim are looked for.
const CLEAN_UP_INTERVAL: Duration = Duration::from_secs(60);

/// Flags of the `aws` provider; it is on when `--aws-cluster` is set.
#[derive(Args, Debug, Clone, Default)]
pub struct AwsFlags {
    /// Cluster name tagged on every instance (`berth.dev/cluster`); turns the `aws` provider on.
    #[arg(long = "aws-cluster", env = "BERTH_AWS_CLUSTER")]
    pub cluster: Option<String>,
    /// AWS region (default: the AWS chain's, e.g. `AWS_REGION`).
    #[arg(long = "aws-region", env = "BERTH_AWS_REGION")]
    pub region: Option<String>,
    /// An EC2-compatible endpoint URL (moto, a VPC endpoint).
    #[arg(long = "aws-endpoint-url", env = "BERTH_AWS_ENDPOINT_URL")]
    pub endpoint_url: Option<String>,
    /// API server URL(s), comma-separated, that instances join (default under `berth server`: its own URL).
    #[arg(long = "aws-server-url", env = "BERTH_AWS_SERVER_URL")]
    pub server_url: Option<String>,
    /// Where instances download the berth binary from.
    #[arg(long = "aws-binary-url", env = "BERTH_AWS_BINARY_URL")]
    pub binary_url: Option<String>,
    /// The cluster CA certificate instances trust (default under `berth server`: its own CA).
    #[arg(long = "aws-ca-file", env = "BERTH_AWS_CA_FILE")]
    pub ca_file: Option<PathBuf>,
}

/// The `aws` provider's settings, checked.
#[derive(Debug, Clone)]
pub struct AwsConfig {
    settings: AwsSettings,
    server_url: String,
    binary_url: String,
    ca_pem: String,
}

impl AwsFlags {
    /// The account and cluster alone, for the cloud-controller's `aws`
    /// provider in `berth server`, which shares these flags.
    pub fn account(&self) -> Option<AwsSettings> {
        Some(AwsSettings {
            region: self.region.clone(),
            endpoint_url: self.endpoint_url.clone(),
            cluster: self.cluster.clone()?,
        })
    }

    /// The provider's settings, None when it is off; `server_url` and
    /// `ca_pem` stand in for flags left out.
    pub fn config(
        &self,
        server_url: Option<&str>,
        ca_pem: Option<&str>,
    ) -> anyhow::Result<Option<AwsConfig>> {
        let Some(cluster) = &self.cluster else {
            return Ok(None);
        };
        let ca_pem = match (&self.ca_file, ca_pem) {
            (Some(path), _) => std::fs::read_to_string(path)
                .with_context(|| format!("reading --aws-ca-file {}", path.display()))?,
            (None, Some(pem)) => pem.to_owned(),
            (None, None) => anyhow::bail!("the aws provider needs --aws-ca-file"),
        };
        let server_url = self
            .server_url
            .as_deref()
            .or(server_url)
            .context("the aws provider needs --aws-server-url")?;
        let binary_url = self
            .binary_url
            .clone()
            .context("the aws provider needs --aws-binary-url")?;
        Ok(Some(AwsConfig {
            settings: AwsSettings {
                region: self.region.clone(),
                endpoint_url: self.endpoint_url.clone(),
                cluster: cluster.clone(),
            },
            server_url: server_url.to_owned(),
            binary_url,
            ca_pem,
        }))
    }
}

/// EC2 instances for NodeClaims.
pub struct AwsProvider {
    ec2: Ec2,
    client: kube::Client,
    config: AwsConfig,
}

impl std::fmt::Debug for AwsProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsProvider")
            .field("cluster", &self.ec2.cluster())
            .finish()
    }
}

impl AwsProvider {
    /// Connects to EC2 with credentials from the AWS chain.
    pub async fn connect(client: kube::Client, config: AwsConfig) -> Self {
        let ec2 = Ec2::connect(&config.settings).await;
        Self {
            ec2,
            client,
            config,
        }
    }

    /// Terminates instances without a claim now and every minute, until `cancel`.
    pub async fn clean_up_until(&self, cancel: CancellationToken) {
        loop {
            match self.clean_up().await {
                Ok(ids) if !ids.is_empty() => {
                    tracing::info!(?ids, "terminated instances whose NodeClaim is gone")
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %format!("{e:#}"), "EC2 clean-up failed"),
            }
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(CLEAN_UP_INTERVAL) => {}
            }
        }
    }

    /// One clean-up pass: the ids of the instances it terminated.
    pub async fn clean_up(&self) -> anyhow::Result<Vec<String>> {
        let claims: Api<NodeClaim> = Api::all(self.client.clone());
        self.ec2
            .clean_up(|| async {
                let listed = claims
                    .list(&ListParams::default())
                    .await
                    .context("listing NodeClaims")?;
                Ok::<_, anyhow::Error>(listed.items.iter().map(|c| c.name_any()).collect())
            })
            .await
    }

    /// The user-data of `claim`'s instance, with a new bootstrap token.
    async fn user_data(
        &self,
        claim: &NodeClaim,
        extra: Option<&str>,
    ) -> Result<String, ProviderError> {
        let name = claim.name_any();
        let token = berth_provisioner::join::create_token(
            &self.client,
            &format!("node of NodeClaim {name} (aws provider)"),
        )
        .await
        .map_err(|reason| ProviderError::Transient {
            operation: "creating a bootstrap token",
            reason,
        })?;
        let taints = claim
            .spec
            .taints
            .iter()
            .chain(&claim.spec.startup_taints)
            .map(taint_text)
            .collect();
        Ok(node_script(&NodeJoin {
            binary_url: self.config.binary_url.clone(),
            server_url: self.config.server_url.clone(),
            ca_pem: self.config.ca_pem.clone(),
            token,
            node_name: name,
            pool: claim.spec.pool.clone(),
            labels: node_labels(claim),
            taints,
            extra: extra.map(str::to_owned),
        }))
    }
}

/// `key=value:Effect`, as `--taints` takes it.
fn taint_text(taint: &Taint) -> String {
    match &taint.value {
        Some(value) => format!("{}={value}:{}", taint.key, taint.effect),
        None => format!("{}:{}", taint.key, taint.effect),
    }
}

/// The machine an instance is, as the controller sees it.
fn machine(instance: &Instance) -> Machine {
    let claim = instance.tag(CLAIM_TAG).unwrap_or_default().to_owned();
    Machine {
        provider_id: instance.provider_id(),
        pool: instance.tag(POOL_TAG).unwrap_or_default().to_owned(),
        node_name: claim.clone(),
        claim,
        image_id: instance.image_id.clone(),
        capacity: Default::default(),
    }
}

/// A provider error for `claim` (launch) or an operation.
fn provider_error(operation: &'static str, claim: Option<&str>, error: AwsError) -> ProviderError {
    match (claim, error.is_transient()) {
        (Some(claim), false) => ProviderError::Invalid {
            claim: claim.to_owned(),
            reason: error.to_string(),
        },
        _ => ProviderError::Transient {
            operation,
            reason: error.to_string(),
        },
    }
}

#[async_trait::async_trait]
impl MachineProvider for AwsProvider {
    fn name(&self) -> &'static str {
        "aws"
    }

    async fn launch(&self, claim: &NodeClaim) -> Result<Machine, ProviderError> {
        let name = claim.name_any();
        let Some(template) = &claim.spec.template.aws else {
            return Err(ProviderError::Invalid {
                claim: name,
                reason: "the pool's template has no aws block".into(),
            });
        };
        let launched = self
            .ec2
            .find(Role::Node, &name)
            .await
            .map_err(|e| provider_error("DescribeInstances", None, e))?;
        let instance = match launched {
            Some(instance) => instance,
            None => {
                let user_data = self.user_data(claim, template.user_data.as_deref()).await?;
                let request = LaunchRequest {
                    name: &name,
                    role: Role::Node,
                    pool: Some(&claim.spec.pool),
                    template,
                    user_data: &user_data,
                };
                self.ec2
                    .launch(&request)
                    .await
                    .map_err(|e| provider_error("RunInstances", Some(&name), e))?
            }
        };
        Ok(Machine {
            capacity: claim.spec.resources.clone(),
            ..machine(&instance)
        })
    }

    async fn template_capacity(
        &self,
        pool: &NodePool,
    ) -> Result<Option<BTreeMap<String, Quantity>>, ProviderError> {
        let preferred = pool
            .spec
            .template
            .as_ref()
            .and_then(|t| t.aws.as_ref())
            .and_then(|aws| aws.instance_types.first());
        let Some(preferred) = preferred else {
            return Ok(None);
        };
        let mut described = self
            .ec2
            .instance_type_capacity(std::slice::from_ref(preferred))
            .await
            .map_err(|e| {
                if e.is_transient() {
                    ProviderError::Transient {
                        operation: "DescribeInstanceTypes",
                        reason: e.to_string(),
                    }
                } else {
                    ProviderError::InvalidTemplate {
                        pool: pool.name_any(),
                        reason: e.to_string(),
                    }
                }
            })?;
        Ok(described.remove(preferred))
    }

    async fn describe(&self, provider_id: &str) -> Result<Option<Machine>, ProviderError> {
        let Some(id) = instance_id_of(provider_id) else {
            return Ok(None);
        };
        let found = self
            .ec2
            .describe(id)
            .await
            .map_err(|e| provider_error("DescribeInstances", None, e))?;
        Ok(found.filter(Instance::live).as_ref().map(machine))
    }

    async fn list(&self, pool: &str) -> Result<Vec<Machine>, ProviderError> {
        let instances = self
            .ec2
            .list_pool(pool)
            .await
            .map_err(|e| provider_error("DescribeInstances", None, e))?;
        Ok(instances.iter().filter(|i| i.live()).map(machine).collect())
    }

    async fn terminate(&self, provider_id: &str) -> Result<(), ProviderError> {
        let Some(id) = instance_id_of(provider_id) else {
            return Ok(());
        };
        self.ec2
            .terminate(id)
            .await
            .map_err(|e| provider_error("TerminateInstances", None, e))
    }
}
