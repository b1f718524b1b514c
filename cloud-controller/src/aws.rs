//! The `aws` provider: one network load balancer per Service, with a TCP
//! listener and an instance target group per port on the nodes' NodePorts,
//! as upstream cloud-provider-aws's NLB path. Every call starts from what
//! ELBv2 holds, found by the cluster and Service-UID tags, so a restarted
//! controller finishes what a killed one began and [`AwsProvider::adopt`]
//! removes what belongs to Services deleted while it was down.

mod balancer;
pub mod error;
mod inventory;
pub mod names;
pub mod spec;
mod targets;

use std::collections::BTreeSet;

use aws_sdk_elasticloadbalancingv2::types::LoadBalancer;
use aws_sdk_elasticloadbalancingv2::Client;
use berth_provisioner::aws::{loader, AwsSettings};
use k8s_openapi::api::core::v1::{LoadBalancerIngress, LoadBalancerStatus, Service};

use self::error::Failure;
use self::inventory::Owned;
use self::spec::LbSpec;
use crate::nodes::TargetNode;
use crate::provider::{LoadBalancerProvider, ProviderError};
use crate::service::key;

/// Network load balancers of one cluster in one region.
#[derive(Debug, Clone)]
pub struct AwsProvider {
    client: Client,
    cluster: String,
    subnets: Vec<String>,
}

impl AwsProvider {
    /// Connects with credentials from the standard AWS chain; `subnets` are
    /// used for Services that do not name their own.
    pub async fn connect(settings: &AwsSettings, subnets: Vec<String>) -> Self {
        let config = loader(settings).load().await;
        Self::new(&config, &settings.cluster, subnets)
    }

    /// The provider through an already loaded SDK config (tests add moto's
    /// credentials).
    pub fn new(
        config: impl Into<aws_sdk_elasticloadbalancingv2::Config>,
        cluster: &str,
        subnets: Vec<String>,
    ) -> Self {
        Self {
            client: Client::from_conf(config.into()),
            cluster: cluster.to_owned(),
            subnets,
        }
    }

    /// The load balancers tagged for `uid`.
    async fn load_balancers_of(&self, uid: &str) -> Result<Vec<Owned<LoadBalancer>>, Failure> {
        let all = inventory::load_balancers(&self.client, &self.cluster).await?;
        Ok(all.into_iter().filter(|lb| lb.uid == uid).collect())
    }

    /// The ARNs of the target groups tagged for `uid`.
    async fn target_group_arns_of(&self, uid: &str) -> Result<Vec<String>, Failure> {
        let all = inventory::target_groups(&self.client, &self.cluster).await?;
        Ok(all
            .into_iter()
            .filter(|tg| tg.uid == uid)
            .map(|tg| tg.arn)
            .collect())
    }

    async fn ensure_inner(
        &self,
        service: &Service,
        nodes: &[TargetNode],
    ) -> Result<LoadBalancerStatus, ProviderError> {
        let spec = LbSpec::of(service, &self.cluster, &self.subnets)?;
        let fail = |f: Failure| f.for_service(&key(service));
        let found = self.load_balancers_of(&spec.uid).await.map_err(fail)?;
        let lb = balancer::load_balancer(&self.client, &spec, found)
            .await
            .map_err(fail)?;
        let (Some(lb_arn), Some(vpc)) = (lb.load_balancer_arn(), lb.vpc_id()) else {
            return Err(Failure::build("DescribeLoadBalancers", "no ARN or VPC").into());
        };
        balancer::attributes(&self.client, lb_arn, spec.cross_zone)
            .await
            .map_err(fail)?;
        let all_groups = inventory::target_groups(&self.client, &self.cluster)
            .await
            .map_err(fail)?;
        let mine: Vec<_> = all_groups
            .into_iter()
            .filter(|tg| tg.uid == spec.uid)
            .collect();
        let groups = balancer::target_groups(&self.client, &spec, vpc, &mine)
            .await
            .map_err(fail)?;
        balancer::listeners(&self.client, lb_arn, &groups)
            .await
            .map_err(fail)?;
        let wanted: BTreeSet<&String> = groups.values().collect();
        for stale in mine.iter().filter(|tg| !wanted.contains(&tg.arn)) {
            balancer::delete_target_group(&self.client, &stale.arn)
                .await
                .map_err(fail)?;
        }
        let instances = targets::instance_ids(nodes);
        for arn in groups.values() {
            targets::sync(&self.client, arn, &instances)
                .await
                .map_err(fail)?;
        }
        Ok(status(&lb))
    }
}

/// The ingress of a load balancer: its DNS name.
fn status(lb: &LoadBalancer) -> LoadBalancerStatus {
    LoadBalancerStatus {
        ingress: Some(vec![LoadBalancerIngress {
            hostname: lb.dns_name().map(str::to_owned),
            ..Default::default()
        }]),
    }
}

/// The Service's UID, without which nothing of it can be found.
fn uid(service: &Service) -> Result<&str, ProviderError> {
    service
        .metadata
        .uid
        .as_deref()
        .ok_or_else(|| ProviderError::Invalid {
            service: key(service),
            reason: "the Service has no UID".into(),
        })
}

#[async_trait::async_trait]
impl LoadBalancerProvider for AwsProvider {
    fn name(&self) -> &'static str {
        "aws"
    }

    async fn get(&self, service: &Service) -> Result<Option<LoadBalancerStatus>, ProviderError> {
        let found = self.load_balancers_of(uid(service)?).await?;
        Ok(found.first().map(|lb| status(&lb.resource)))
    }

    async fn ensure(
        &self,
        service: &Service,
        nodes: &[TargetNode],
    ) -> Result<LoadBalancerStatus, ProviderError> {
        self.ensure_inner(service, nodes).await
    }

    async fn update(&self, service: &Service, nodes: &[TargetNode]) -> Result<(), ProviderError> {
        let instances = targets::instance_ids(nodes);
        for arn in self.target_group_arns_of(uid(service)?).await? {
            targets::sync(&self.client, &arn, &instances).await?;
        }
        Ok(())
    }

    async fn delete(&self, service: &Service) -> Result<(), ProviderError> {
        let uid = uid(service)?;
        for lb in self.load_balancers_of(uid).await? {
            balancer::delete_load_balancer(&self.client, &lb.arn).await?;
        }
        for arn in self.target_group_arns_of(uid).await? {
            balancer::delete_target_group(&self.client, &arn).await?;
        }
        Ok(())
    }

    /// Tag-based garbage collection: everything tagged for this cluster
    /// whose Service is not among `services` is deleted.
    async fn adopt(
        &self,
        services: &[Service],
        _nodes: &[TargetNode],
    ) -> Result<(), ProviderError> {
        let live: BTreeSet<&str> = services
            .iter()
            .filter_map(|s| s.metadata.uid.as_deref())
            .collect();
        let lbs = inventory::load_balancers(&self.client, &self.cluster).await?;
        for lb in lbs.iter().filter(|lb| !live.contains(lb.uid.as_str())) {
            tracing::info!(arn = %lb.arn, uid = %lb.uid, "deleting the load balancer of a Service that is gone");
            balancer::delete_load_balancer(&self.client, &lb.arn).await?;
        }
        let groups = inventory::target_groups(&self.client, &self.cluster).await?;
        for tg in groups.iter().filter(|tg| !live.contains(tg.uid.as_str())) {
            tracing::info!(arn = %tg.arn, uid = %tg.uid, "deleting the target group of a Service that is gone");
            balancer::delete_target_group(&self.client, &tg.arn).await?;
        }
        Ok(())
    }
}
