//! The ensure steps of one Service's network load balancer, each idempotent
//! and each starting from what ELBv2 holds now, so a run cut off after any
//! step is finished by the next: the load balancer (re-made when its scheme
//! changed), its cross-zone attribute, a target group per port with the
//! wanted health check, a listener per port, and no listener or target
//! group of a port the Service no longer has.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, LoadBalancer, LoadBalancerAttribute, LoadBalancerSchemeEnum,
    LoadBalancerTypeEnum, ProtocolEnum, Tag, TargetGroup, TargetTypeEnum,
};
use aws_sdk_elasticloadbalancingv2::Client;

use super::error::{ignore_gone, Failure};
use super::inventory::Owned;
use super::spec::{HealthCheck, LbSpec, PortSpec};

/// Sets every health-check field of a CreateTargetGroup or
/// ModifyTargetGroup request: two builder types with the same setters.
macro_rules! with_health {
    ($request:expr, $health:expr) => {{
        let health: &HealthCheck = $health;
        $request
            .health_check_protocol(ProtocolEnum::from(health.protocol.as_str()))
            .health_check_port(&health.port)
            .set_health_check_path(health.path.clone())
            .health_check_interval_seconds(health.interval)
            .health_check_timeout_seconds(health.timeout)
            .healthy_threshold_count(health.healthy)
            .unhealthy_threshold_count(health.unhealthy)
    }};
}

/// The load-balancer attribute of cross-zone balancing.
const CROSS_ZONE: &str = "load_balancing.cross_zone.enabled";

/// The Service's load balancer among `found` (its own, tagged with its
/// UID), made when there is none; extra copies and one of the wrong scheme
/// are deleted.
pub async fn load_balancer(
    client: &Client,
    spec: &LbSpec,
    found: Vec<Owned<LoadBalancer>>,
) -> Result<LoadBalancer, Failure> {
    let mut keep = None;
    for lb in found {
        let scheme = lb.resource.scheme().map(LoadBalancerSchemeEnum::as_str);
        if keep.is_none() && scheme == Some(spec.scheme) {
            keep = Some(lb.resource);
        } else {
            tracing::info!(arn = %lb.arn, ?scheme, "deleting a load balancer the Service no longer matches");
            delete_load_balancer(client, &lb.arn).await?;
        }
    }
    if let Some(lb) = keep {
        return Ok(lb);
    }
    tracing::info!(name = %spec.name, scheme = spec.scheme, "creating a network load balancer");
    let created = client
        .create_load_balancer()
        .name(&spec.name)
        .r#type(LoadBalancerTypeEnum::Network)
        .scheme(LoadBalancerSchemeEnum::from(spec.scheme))
        .set_subnets(Some(spec.subnets.clone()))
        .set_tags(Some(tags(&spec.tags)))
        .send()
        .await
        .map_err(|e| Failure::from_sdk("CreateLoadBalancer", e))?;
    created
        .load_balancers()
        .first()
        .cloned()
        .ok_or_else(|| Failure::build("CreateLoadBalancer", "no load balancer in the answer"))
}

/// Sets cross-zone balancing when it differs.
pub async fn attributes(client: &Client, arn: &str, cross_zone: bool) -> Result<(), Failure> {
    let current = client
        .describe_load_balancer_attributes()
        .load_balancer_arn(arn)
        .send()
        .await
        .map_err(|e| Failure::from_sdk("DescribeLoadBalancerAttributes", e))?;
    let wanted = cross_zone.to_string();
    let now = current
        .attributes()
        .iter()
        .find(|a| a.key() == Some(CROSS_ZONE))
        .and_then(LoadBalancerAttribute::value);
    if now == Some(wanted.as_str()) {
        return Ok(());
    }
    client
        .modify_load_balancer_attributes()
        .load_balancer_arn(arn)
        .attributes(
            LoadBalancerAttribute::builder()
                .key(CROSS_ZONE)
                .value(wanted)
                .build(),
        )
        .send()
        .await
        .map_err(|e| Failure::from_sdk("ModifyLoadBalancerAttributes", e))?;
    Ok(())
}

/// The target group of every port of `spec`, by listener port: found among
/// `found` by name (its health check brought up to date) or made in `vpc`.
pub async fn target_groups(
    client: &Client,
    spec: &LbSpec,
    vpc: &str,
    found: &[Owned<TargetGroup>],
) -> Result<BTreeMap<i32, String>, Failure> {
    let mut arns = BTreeMap::new();
    for port in &spec.ports {
        let existing = found
            .iter()
            .find(|tg| tg.resource.target_group_name() == Some(port.target_group.as_str()));
        let arn = match existing {
            Some(tg) => {
                if health_of(&tg.resource) != spec.health {
                    modify_health(client, &tg.arn, &spec.health).await?;
                }
                tg.arn.clone()
            }
            None => create_target_group(client, spec, port, vpc).await?,
        };
        arns.insert(port.port, arn);
    }
    Ok(arns)
}

async fn create_target_group(
    client: &Client,
    spec: &LbSpec,
    port: &PortSpec,
    vpc: &str,
) -> Result<String, Failure> {
    tracing::info!(name = %port.target_group, node_port = port.node_port, "creating a target group");
    let request = client
        .create_target_group()
        .name(&port.target_group)
        .protocol(ProtocolEnum::Tcp)
        .port(port.node_port)
        .vpc_id(vpc)
        .target_type(TargetTypeEnum::Instance);
    let created = with_health!(request, &spec.health)
        .set_tags(Some(tags(&spec.tags)))
        .send()
        .await
        .map_err(|e| Failure::from_sdk("CreateTargetGroup", e))?;
    created
        .target_groups()
        .first()
        .and_then(TargetGroup::target_group_arn)
        .map(str::to_owned)
        .ok_or_else(|| Failure::build("CreateTargetGroup", "no target group in the answer"))
}

async fn modify_health(client: &Client, arn: &str, health: &HealthCheck) -> Result<(), Failure> {
    tracing::info!(target_group = arn, ?health, "updating the health check");
    let request = client.modify_target_group().target_group_arn(arn);
    with_health!(request, health)
        .send()
        .await
        .map_err(|e| Failure::from_sdk("ModifyTargetGroup", e))?;
    Ok(())
}

/// The health check `tg` has, in the spec's terms.
fn health_of(tg: &TargetGroup) -> HealthCheck {
    let protocol = tg
        .health_check_protocol()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    HealthCheck {
        path: (protocol != "TCP")
            .then(|| tg.health_check_path().map(str::to_owned))
            .flatten(),
        protocol,
        port: tg.health_check_port().unwrap_or_default().to_owned(),
        interval: tg.health_check_interval_seconds().unwrap_or_default(),
        timeout: tg.health_check_timeout_seconds().unwrap_or_default(),
        healthy: tg.healthy_threshold_count().unwrap_or_default(),
        unhealthy: tg.unhealthy_threshold_count().unwrap_or_default(),
    }
}

/// One TCP listener per port of `groups` forwarding to its group; other
/// listeners of the load balancer are deleted.
pub async fn listeners(
    client: &Client,
    lb_arn: &str,
    groups: &BTreeMap<i32, String>,
) -> Result<(), Failure> {
    let answer = client
        .describe_listeners()
        .load_balancer_arn(lb_arn)
        .send()
        .await
        .map_err(|e| Failure::from_sdk("DescribeListeners", e))?;
    let mut seen = BTreeSet::new();
    for listener in answer.listeners() {
        let (Some(arn), Some(port)) = (listener.listener_arn(), listener.port()) else {
            continue;
        };
        let Some(group) = groups.get(&port) else {
            tracing::info!(
                listener = arn,
                port,
                "deleting the listener of a removed port"
            );
            ignore_gone(delete_listener(client, arn).await)?;
            continue;
        };
        seen.insert(port);
        let target = listener
            .default_actions()
            .iter()
            .find_map(Action::target_group_arn);
        if target != Some(group.as_str()) {
            tracing::info!(
                listener = arn,
                port,
                "pointing the listener at its new target group"
            );
            client
                .modify_listener()
                .listener_arn(arn)
                .default_actions(forward(group))
                .send()
                .await
                .map_err(|e| Failure::from_sdk("ModifyListener", e))?;
        }
    }
    for (port, group) in groups.iter().filter(|(p, _)| !seen.contains(*p)) {
        tracing::info!(port, "creating a listener");
        client
            .create_listener()
            .load_balancer_arn(lb_arn)
            .protocol(ProtocolEnum::Tcp)
            .port(*port)
            .default_actions(forward(group))
            .send()
            .await
            .map_err(|e| Failure::from_sdk("CreateListener", e))?;
    }
    Ok(())
}

fn forward(group: &str) -> Action {
    Action::builder()
        .r#type(ActionTypeEnum::Forward)
        .target_group_arn(group)
        .build()
}

async fn delete_listener(client: &Client, arn: &str) -> Result<(), Failure> {
    client
        .delete_listener()
        .listener_arn(arn)
        .send()
        .await
        .map_err(|e| Failure::from_sdk("DeleteListener", e))?;
    Ok(())
}

/// Deletes a load balancer with its listeners (listeners first, so a
/// failure half-way never leaves a listener without its balancer's owner
/// knowing); Ok when it is already gone.
pub async fn delete_load_balancer(client: &Client, arn: &str) -> Result<(), Failure> {
    let listeners = client
        .describe_listeners()
        .load_balancer_arn(arn)
        .send()
        .await
        .map_err(|e| Failure::from_sdk("DescribeListeners", e));
    match listeners {
        Err(failure) if failure.is_gone() => return Ok(()),
        Err(failure) => return Err(failure),
        Ok(answer) => {
            for arn in answer.listeners().iter().filter_map(|l| l.listener_arn()) {
                ignore_gone(delete_listener(client, arn).await)?;
            }
        }
    }
    tracing::info!(arn, "deleting the load balancer");
    ignore_gone(
        client
            .delete_load_balancer()
            .load_balancer_arn(arn)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| Failure::from_sdk("DeleteLoadBalancer", e)),
    )
}

/// Deletes a target group; Ok when it is already gone.
pub async fn delete_target_group(client: &Client, arn: &str) -> Result<(), Failure> {
    tracing::info!(arn, "deleting the target group");
    ignore_gone(
        client
            .delete_target_group()
            .target_group_arn(arn)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| Failure::from_sdk("DeleteTargetGroup", e)),
    )
}

fn tags(tags: &BTreeMap<String, String>) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}
