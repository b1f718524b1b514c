//! RunInstances for one named machine: instance types in order of
//! preference, spot falling back to on-demand, subnets spread by use, tags at
//! launch, IMDSv2 required. A launch is idempotent (an instance already
//! tagged with the name is returned, and ClientToken guards a retried call),
//! and an instance whose launch fails after RunInstances is terminated.

use std::collections::BTreeMap;

use aws_sdk_ec2::types::{
    BlockDeviceMapping, EbsBlockDevice, HttpTokensState, IamInstanceProfileSpecification,
    InstanceInterruptionBehavior, InstanceMarketOptionsRequest, InstanceMetadataEndpointState,
    InstanceMetadataOptionsRequest, InstanceType, MarketType, ResourceType, SpotInstanceType,
    SpotMarketOptions, Tag, TagSpecification, VolumeType,
};
use base64::Engine;
use berth_api::nodepool::AwsTemplate;

use super::{AwsError, Ec2, Instance, Role, CLAIM_TAG, CLUSTER_TAG, NAME_TAG, POOL_TAG, ROLE_TAG};

/// ClientToken's longest value.
const MAX_CLIENT_TOKEN: usize = 64;
/// The root device when the AMI does not say.
const DEFAULT_ROOT_DEVICE: &str = "/dev/xvda";

/// One machine to launch.
#[derive(Debug, Clone, Copy)]
pub struct LaunchRequest<'a> {
    /// The claim's (or master's) name: its `Name` tag and ClientToken.
    pub name: &'a str,
    /// What it is for.
    pub role: Role,
    /// The pool of a node (tagged `berth.dev/pool`, and its claim tag is `name`).
    pub pool: Option<&'a str>,
    /// How to launch it.
    pub template: &'a AwsTemplate,
    /// The cloud-init user-data script, plain text.
    pub user_data: &'a str,
}

/// One RunInstances try: which type, which market, which subnet.
#[derive(Debug, Clone, PartialEq)]
struct Attempt<'a> {
    instance_type: &'a str,
    spot: bool,
    subnet: Option<&'a str>,
    client_token: String,
}

impl Ec2 {
    /// Launches the machine of `request`, or returns the live instance already
    /// launched for its name. Capacity errors move on to the next instance
    /// type (and from spot to on-demand); when every choice lacks capacity
    /// the whole sequence is retried with back-off.
    pub async fn launch(&self, request: &LaunchRequest<'_>) -> Result<Instance, AwsError> {
        check(request.template)?;
        if let Some(found) = self.find(request.role, request.name).await? {
            return Ok(found);
        }
        let peers = match request.pool {
            Some(pool) => self.list_pool(pool).await?,
            None => {
                self.list_tagged(&[(ROLE_TAG, request.role.as_str())])
                    .await?
            }
        };
        let subnet = least_used_subnet(&request.template.subnet_ids, &peers);
        let root_device = self.root_device(&request.template.ami).await?;
        let attempts = attempts(request, subnet);
        self.backoff
            .run(AwsError::is_capacity, || async {
                let mut last = None;
                for attempt in &attempts {
                    match self.run_instance(request, attempt, &root_device).await {
                        Ok(instance) => return Ok(instance),
                        Err(e) if e.is_capacity() => {
                            tracing::info!(
                                name = request.name,
                                instance_type = attempt.instance_type,
                                spot = attempt.spot,
                                error = %e,
                                "no capacity, trying the next choice"
                            );
                            last = Some(e);
                        }
                        Err(e) => return Err(e),
                    }
                }
                Err(last.unwrap_or_else(|| AwsError::Invalid("no instance types".into())))
            })
            .await
    }

    /// One RunInstances call and the checks after it; an instance that was
    /// started but fails a check is terminated before the error returns.
    async fn run_instance(
        &self,
        request: &LaunchRequest<'_>,
        attempt: &Attempt<'_>,
        root_device: &str,
    ) -> Result<Instance, AwsError> {
        let template = request.template;
        let tags = TagSpecification::builder()
            .resource_type(ResourceType::Instance)
            .set_tags(Some(
                self.tags(request)
                    .into_iter()
                    .map(|(k, v)| Tag::builder().key(k).value(v).build())
                    .collect(),
            ))
            .build();
        let mut run = self
            .client
            .run_instances()
            .image_id(&template.ami)
            .instance_type(InstanceType::from(attempt.instance_type))
            .min_count(1)
            .max_count(1)
            .client_token(&attempt.client_token)
            .tag_specifications(tags)
            .metadata_options(
                InstanceMetadataOptionsRequest::builder()
                    .http_tokens(HttpTokensState::Required)
                    .http_endpoint(InstanceMetadataEndpointState::Enabled)
                    .build(),
            )
            .user_data(base64::engine::general_purpose::STANDARD.encode(request.user_data))
            .set_subnet_id(attempt.subnet.map(str::to_owned))
            .set_key_name(template.key_name.clone());
        if !template.security_group_ids.is_empty() {
            run = run.set_security_group_ids(Some(template.security_group_ids.clone()));
        }
        if let Some(volume) = &template.root_volume {
            let ebs = EbsBlockDevice::builder()
                .volume_size(volume.size_gib)
                .volume_type(VolumeType::from(volume.type_.as_deref().unwrap_or("gp3")))
                .delete_on_termination(true)
                .encrypted(true)
                .build();
            run = run.block_device_mappings(
                BlockDeviceMapping::builder()
                    .device_name(root_device)
                    .ebs(ebs)
                    .build(),
            );
        }
        if let Some(profile) = &template.iam_instance_profile {
            let spec = IamInstanceProfileSpecification::builder();
            let spec = if profile.starts_with("arn:") {
                spec.arn(profile)
            } else {
                spec.name(profile)
            };
            run = run.iam_instance_profile(spec.build());
        }
        if attempt.spot {
            run = run.instance_market_options(
                InstanceMarketOptionsRequest::builder()
                    .market_type(MarketType::Spot)
                    .spot_options(
                        SpotMarketOptions::builder()
                            .spot_instance_type(SpotInstanceType::OneTime)
                            .instance_interruption_behavior(InstanceInterruptionBehavior::Terminate)
                            .build(),
                    )
                    .build(),
            );
        }
        let out = self
            .backoff
            .run(AwsError::is_throttling, || async {
                run.clone()
                    .send()
                    .await
                    .map_err(|e| AwsError::from_sdk("RunInstances", e))
            })
            .await?;
        let Some(id) = out.instances().first().and_then(|i| i.instance_id()) else {
            return Err(AwsError::Transport {
                operation: "RunInstances",
                message: "the answer names no instance".into(),
            });
        };
        match self.confirm(id, request).await {
            Ok(instance) => Ok(instance),
            Err(e) => {
                tracing::warn!(instance = id, error = %e, "terminating a half-launched instance");
                self.terminate(id).await?;
                Err(e)
            }
        }
    }

    /// Reads the new instance back: it must exist and carry its name tag.
    async fn confirm(&self, id: &str, request: &LaunchRequest<'_>) -> Result<Instance, AwsError> {
        let instance = self.describe(id).await?.ok_or(AwsError::Transport {
            operation: "DescribeInstances",
            message: format!("launched instance {id} is not found"),
        })?;
        if instance.tag(NAME_TAG) != Some(request.name) {
            return Err(AwsError::Transport {
                operation: "RunInstances",
                message: format!("instance {id} lacks its tags"),
            });
        }
        Ok(instance)
    }

    /// The tags an instance of `request` is launched with.
    fn tags(&self, request: &LaunchRequest<'_>) -> BTreeMap<&'static str, String> {
        let mut tags = BTreeMap::from([
            (CLUSTER_TAG, self.cluster.clone()),
            (ROLE_TAG, request.role.as_str().to_owned()),
            (NAME_TAG, request.name.to_owned()),
        ]);
        if let Some(pool) = request.pool {
            tags.insert(POOL_TAG, pool.to_owned());
            tags.insert(CLAIM_TAG, request.name.to_owned());
        }
        tags
    }

    /// The AMI's root device name, which a root volume setting must name.
    async fn root_device(&self, ami: &str) -> Result<String, AwsError> {
        let out = self
            .backoff
            .run(AwsError::is_throttling, || async {
                self.client
                    .describe_images()
                    .image_ids(ami)
                    .send()
                    .await
                    .map_err(|e| AwsError::from_sdk("DescribeImages", e))
            })
            .await?;
        Ok(out
            .images()
            .first()
            .and_then(|i| i.root_device_name())
            .unwrap_or(DEFAULT_ROOT_DEVICE)
            .to_owned())
    }
}

/// Refuses templates RunInstances cannot take.
fn check(template: &AwsTemplate) -> Result<(), AwsError> {
    if template.instance_types.is_empty() {
        return Err(AwsError::Invalid("instanceTypes is empty".into()));
    }
    if template.ami.is_empty() {
        return Err(AwsError::Invalid("ami is empty".into()));
    }
    Ok(())
}

/// The subnet with the fewest live `peers`, the first listed among equals.
fn least_used_subnet<'a>(subnets: &'a [String], peers: &[Instance]) -> Option<&'a str> {
    subnets
        .iter()
        .enumerate()
        .min_by_key(|(i, subnet)| {
            let used = peers
                .iter()
                .filter(|p| p.live() && p.subnet_id.as_deref() == Some(subnet.as_str()))
                .count();
            (used, *i)
        })
        .map(|(_, subnet)| subnet.as_str())
}

/// The tries of a launch, in order: every type as spot (when asked for),
/// then every type on-demand. The first try's ClientToken is the name
/// itself; later ones add their number, since EC2 refuses one token with
/// other parameters.
fn attempts<'a>(request: &LaunchRequest<'a>, subnet: Option<&'a str>) -> Vec<Attempt<'a>> {
    let markets: &[bool] = if request.template.wants_spot() {
        &[true, false]
    } else {
        &[false]
    };
    let mut attempts = Vec::new();
    for &spot in markets {
        for instance_type in &request.template.instance_types {
            let n = attempts.len();
            let token = if n == 0 {
                request.name.to_owned()
            } else {
                format!("{}-{n}", request.name)
            };
            attempts.push(Attempt {
                instance_type,
                spot,
                subnet,
                client_token: token.chars().take(MAX_CLIENT_TOKEN).collect(),
            });
        }
    }
    attempts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spot_tries_every_type_before_on_demand() {
        let template = AwsTemplate {
            instance_types: vec!["g5.xlarge".into(), "g5.2xlarge".into()],
            ami: "ami-1".into(),
            capacity_type: Some("spot".into()),
            ..AwsTemplate::default()
        };
        let request = LaunchRequest {
            name: "gpu-abcde",
            role: Role::Node,
            pool: Some("gpu"),
            template: &template,
            user_data: "",
        };
        let tries: Vec<(&str, bool, String)> = attempts(&request, Some("subnet-1"))
            .into_iter()
            .map(|a| (a.instance_type, a.spot, a.client_token))
            .collect();
        assert_eq!(
            tries,
            [
                ("g5.xlarge", true, "gpu-abcde".to_owned()),
                ("g5.2xlarge", true, "gpu-abcde-1".to_owned()),
                ("g5.xlarge", false, "gpu-abcde-2".to_owned()),
                ("g5.2xlarge", false, "gpu-abcde-3".to_owned()),
            ]
        );
    }

    #[test]
    fn subnets_fill_evenly() {
        let subnets = ["subnet-a".to_owned(), "subnet-b".to_owned()];
        let peer = |subnet: &str, state: &str| Instance {
            subnet_id: Some(subnet.into()),
            state: state.into(),
            ..Instance::default()
        };
        assert_eq!(least_used_subnet(&subnets, &[]), Some("subnet-a"));
        let peers = [peer("subnet-a", "running")];
        assert_eq!(least_used_subnet(&subnets, &peers), Some("subnet-b"));
        let peers = [peer("subnet-a", "terminated")];
        assert_eq!(least_used_subnet(&subnets, &peers), Some("subnet-a"));
        assert_eq!(least_used_subnet(&[], &peers), None);
    }
}
