//! A moto world for the `aws` provider's tests: a VPC, a subnet and two
//! running instances, and a read-out of every ELBv2 resource tagged for a
//! cluster, so tests compare what exists with what the Service asks for.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_elasticloadbalancingv2 as elbv2;
use berth_cloud_controller::nodes::TargetNode;
use berth_provisioner::aws::{self, AwsSettings, Credentials};
use k8s_openapi::api::core::v1::Service;
use serde_json::json;

/// The region of every call.
pub const REGION: &str = "us-east-1";
/// One of moto's default AMIs.
const AMI: &str = "ami-03cf127a";

/// The clients of one endpoint (moto, or a proxy in front of it).
pub struct Clients {
    /// EC2, to make the world.
    pub ec2: aws_sdk_ec2::Client,
    /// ELBv2's config, for a provider.
    pub elb_config: elbv2::Config,
    /// ELBv2, to read what the provider made.
    pub elb: elbv2::Client,
}

/// Clients for `url` with moto's test credentials.
pub async fn clients(url: &str) -> Clients {
    let settings = AwsSettings {
        region: Some(REGION.into()),
        endpoint_url: Some(url.into()),
        cluster: String::new(),
    };
    let config = aws::loader(&settings)
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .load()
        .await;
    let elb_config = elbv2::Config::from(&config);
    Clients {
        ec2: aws_sdk_ec2::Client::new(&config),
        elb: elbv2::Client::from_conf(elb_config.clone()),
        elb_config,
    }
}

/// A subnet and two running instances in it.
pub struct World {
    /// The subnet's id.
    pub subnet: String,
    /// The instances' ids.
    pub instances: Vec<String>,
}

/// Makes a VPC, a subnet and two instances.
pub async fn world(ec2: &aws_sdk_ec2::Client, cidr: &str) -> World {
    let vpc = ec2
        .create_vpc()
        .cidr_block(format!("{cidr}.0.0/16"))
        .send()
        .await
        .expect("CreateVpc");
    let vpc_id = vpc.vpc().and_then(|v| v.vpc_id()).expect("a VPC id");
    let subnet = ec2
        .create_subnet()
        .vpc_id(vpc_id)
        .cidr_block(format!("{cidr}.1.0/24"))
        .availability_zone(format!("{REGION}a"))
        .send()
        .await
        .expect("CreateSubnet");
    let subnet = subnet
        .subnet()
        .and_then(|s| s.subnet_id())
        .expect("a subnet id")
        .to_owned();
    let run = ec2
        .run_instances()
        .image_id(AMI)
        .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
        .subnet_id(&subnet)
        .min_count(2)
        .max_count(2)
        .send()
        .await
        .expect("RunInstances");
    let instances = run
        .instances()
        .iter()
        .filter_map(|i| i.instance_id().map(str::to_owned))
        .collect();
    World { subnet, instances }
}

/// The `spec.providerID` of an instance, as the nodes of an EC2 cluster have.
pub fn provider_id(instance: &str) -> String {
    format!("aws:///{REGION}a/{instance}")
}

/// `shop/NAME` of type LoadBalancer with TCP `(port, nodePort)` pairs.
pub fn service(name: &str, uid: &str, ports: &[(i32, i32)]) -> Service {
    let ports: Vec<_> = ports
        .iter()
        .map(|(port, node_port)| json!({"port": port, "nodePort": node_port, "protocol": "TCP"}))
        .collect();
    serde_json::from_value(json!({
        "metadata": {"namespace": "shop", "name": name, "uid": uid},
        "spec": {"type": "LoadBalancer", "ports": ports},
    }))
    .expect("a Service")
}

/// Nodes on the world's instances.
pub fn nodes(world: &World) -> Vec<TargetNode> {
    world
        .instances
        .iter()
        .enumerate()
        .map(|(i, id)| TargetNode {
            name: format!("node-{i}"),
            address: format!("10.0.1.{}", i + 10).parse().expect("an address"),
            provider_id: Some(provider_id(id)),
        })
        .collect()
}

/// One load balancer as the tests look at it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Balancer {
    /// The Service it is tagged for, `namespace/name`.
    pub service: String,
    /// Its name.
    pub name: String,
    /// Its DNS name, the Service's hostname.
    pub dns_name: String,
    /// `internal` or `internet-facing`.
    pub scheme: String,
    /// Listener port → the port of the target group it forwards to.
    pub listeners: BTreeMap<i32, i32>,
}

/// One target group as the tests look at it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// The Service it is tagged for, `namespace/name`.
    pub service: String,
    /// Its port (the NodePort).
    pub port: i32,
    /// The health check's protocol, port and path.
    pub health: (String, String, Option<String>),
    /// The registered instances.
    pub targets: BTreeSet<String>,
}

/// Everything tagged `kubernetes.io/cluster/<cluster>`: load balancers and
/// target groups. A controller at work may delete a resource between the
/// list and the look at it: that snapshot is taken again.
pub async fn tagged(elb: &elbv2::Client, cluster: &str) -> (Vec<Balancer>, Vec<Group>) {
    let key = format!("kubernetes.io/cluster/{cluster}");
    for _ in 0..50 {
        if let Some(snapshot) = snapshot(elb, &key).await {
            return snapshot;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("resources tagged {key} kept vanishing while being listed");
}

/// One look at every resource tagged `key`; None when one vanished midway.
async fn snapshot(elb: &elbv2::Client, key: &str) -> Option<(Vec<Balancer>, Vec<Group>)> {
    let lbs = elb
        .describe_load_balancers()
        .send()
        .await
        .expect("DescribeLoadBalancers");
    let tgs = elb
        .describe_target_groups()
        .send()
        .await
        .expect("DescribeTargetGroups");
    let mut port_of = BTreeMap::new();
    let mut groups = Vec::new();
    for tg in tgs.target_groups() {
        let arn = tg.target_group_arn().expect("an ARN");
        let Some(service) = tagged_for(elb, arn, key).await? else {
            continue;
        };
        port_of.insert(arn.to_owned(), tg.port().unwrap_or_default());
        let health = elb
            .describe_target_health()
            .target_group_arn(arn)
            .send()
            .await
            .ok()?;
        groups.push(Group {
            service,
            port: tg.port().unwrap_or_default(),
            health: (
                tg.health_check_protocol()
                    .map(|p| p.as_str().to_owned())
                    .unwrap_or_default(),
                tg.health_check_port().unwrap_or_default().to_owned(),
                tg.health_check_path().map(str::to_owned),
            ),
            targets: health
                .target_health_descriptions()
                .iter()
                .filter_map(|d| Some(d.target()?.id()?.to_owned()))
                .collect(),
        });
    }
    let mut balancers = Vec::new();
    for lb in lbs.load_balancers() {
        let arn = lb.load_balancer_arn().expect("an ARN");
        let Some(service) = tagged_for(elb, arn, key).await? else {
            continue;
        };
        let listeners = elb
            .describe_listeners()
            .load_balancer_arn(arn)
            .send()
            .await
            .ok()?;
        balancers.push(Balancer {
            service,
            name: lb.load_balancer_name().unwrap_or_default().to_owned(),
            dns_name: lb.dns_name().unwrap_or_default().to_owned(),
            scheme: lb
                .scheme()
                .map(|s| s.as_str().to_owned())
                .unwrap_or_default(),
            listeners: listeners
                .listeners()
                .iter()
                .map(|l| {
                    let group = l
                        .default_actions()
                        .iter()
                        .find_map(|a| a.target_group_arn())
                        .and_then(|arn| port_of.get(arn).copied())
                        .unwrap_or_default();
                    (l.port().unwrap_or_default(), group)
                })
                .collect(),
        });
    }
    groups.sort_by_key(|g| g.port);
    balancers.sort_by(|a, b| a.service.cmp(&b.service));
    Some((balancers, groups))
}

/// The Service `arn` is tagged for when it carries the tag `key`; None
/// when `arn` is gone.
async fn tagged_for(elb: &elbv2::Client, arn: &str, key: &str) -> Option<Option<String>> {
    let tags = elb.describe_tags().resource_arns(arn).send().await.ok()?;
    let tags: BTreeMap<&str, &str> = tags
        .tag_descriptions()
        .iter()
        .flat_map(|d| d.tags())
        .filter_map(|t| Some((t.key()?, t.value().unwrap_or_default())))
        .collect();
    Some(tags.contains_key(key).then(|| {
        tags.get("kubernetes.io/service-name")
            .copied()
            .unwrap_or_default()
            .to_owned()
    }))
}
