//! Finds a cluster's load balancers and target groups by their tags, never
//! by memory: ELBv2 cannot filter by tag, so every resource of the account
//! and region is listed and its tags read, 20 at a time (the API's limit).

use std::collections::BTreeMap;

use aws_sdk_elasticloadbalancingv2::types::{LoadBalancer, TargetGroup};
use aws_sdk_elasticloadbalancingv2::Client;

use super::error::Failure;
use super::names::{cluster_tag, OWNED, SERVICE_UID_TAG};

/// The most ARNs one DescribeTags takes.
const TAGS_PER_CALL: usize = 20;

/// A resource of the cluster, with the Service UID it is tagged for.
#[derive(Debug, Clone)]
pub struct Owned<T> {
    /// The resource as ELBv2 describes it.
    pub resource: T,
    /// Its ARN.
    pub arn: String,
    /// The UID of the Service it was made for.
    pub uid: String,
}

/// Every load balancer tagged as owned by `cluster` for some Service.
pub async fn load_balancers(
    client: &Client,
    cluster: &str,
) -> Result<Vec<Owned<LoadBalancer>>, Failure> {
    let all: Vec<LoadBalancer> = client
        .describe_load_balancers()
        .into_paginator()
        .items()
        .send()
        .collect::<Result<_, _>>()
        .await
        .map_err(|e| Failure::from_sdk("DescribeLoadBalancers", e))?;
    owned(client, cluster, all, |lb| lb.load_balancer_arn()).await
}

/// Every target group tagged as owned by `cluster` for some Service.
pub async fn target_groups(
    client: &Client,
    cluster: &str,
) -> Result<Vec<Owned<TargetGroup>>, Failure> {
    let all: Vec<TargetGroup> = client
        .describe_target_groups()
        .into_paginator()
        .items()
        .send()
        .collect::<Result<_, _>>()
        .await
        .map_err(|e| Failure::from_sdk("DescribeTargetGroups", e))?;
    owned(client, cluster, all, |tg| tg.target_group_arn()).await
}

/// The resources among `all` whose tags say `cluster` owns them for a
/// Service.
async fn owned<T>(
    client: &Client,
    cluster: &str,
    all: Vec<T>,
    arn_of: impl Fn(&T) -> Option<&str>,
) -> Result<Vec<Owned<T>>, Failure> {
    let arns: Vec<String> = all
        .iter()
        .filter_map(|r| arn_of(r).map(str::to_owned))
        .collect();
    let tags = tags(client, &arns).await?;
    let cluster_key = cluster_tag(cluster);
    Ok(all
        .into_iter()
        .filter_map(|resource| {
            let arn = arn_of(&resource)?.to_owned();
            let tags = tags.get(&arn)?;
            if tags.get(&cluster_key).map(String::as_str) != Some(OWNED) {
                return None;
            }
            let uid = tags.get(SERVICE_UID_TAG)?.clone();
            Some(Owned { resource, arn, uid })
        })
        .collect())
}

/// The tags of each of `arns`.
async fn tags(
    client: &Client,
    arns: &[String],
) -> Result<BTreeMap<String, BTreeMap<String, String>>, Failure> {
    let mut all = BTreeMap::new();
    for chunk in arns.chunks(TAGS_PER_CALL) {
        let answer = client
            .describe_tags()
            .set_resource_arns(Some(chunk.to_vec()))
            .send()
            .await
            .map_err(|e| Failure::from_sdk("DescribeTags", e))?;
        for description in answer.tag_descriptions() {
            let Some(arn) = description.resource_arn() else {
                continue;
            };
            let tags = description
                .tags()
                .iter()
                .filter_map(|t| {
                    Some((
                        t.key()?.to_owned(),
                        t.value().unwrap_or_default().to_owned(),
                    ))
                })
                .collect();
            all.insert(arn.to_owned(), tags);
        }
    }
    Ok(all)
}
