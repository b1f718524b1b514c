//! A target group's instances follow the target nodes: the EC2 instance of
//! each node (from `spec.providerID`) is registered on the group's port, and
//! every other registered instance (a node that left) is deregistered.

use std::collections::BTreeSet;

use aws_sdk_elasticloadbalancingv2::types::TargetDescription;
use aws_sdk_elasticloadbalancingv2::Client;
use berth_provisioner::aws::instance_id_of;

use super::error::Failure;
use crate::nodes::TargetNode;

/// The instance ids of `nodes`; nodes without an `aws://` provider id are
/// left out (they cannot be an instance target) and logged.
pub fn instance_ids(nodes: &[TargetNode]) -> BTreeSet<String> {
    nodes
        .iter()
        .filter_map(|node| {
            let id = node.provider_id.as_deref().and_then(instance_id_of);
            if id.is_none() {
                tracing::warn!(node = %node.name, provider_id = ?node.provider_id, "node has no EC2 instance id: not a target");
            }
            id.map(str::to_owned)
        })
        .collect()
}

/// Registers `wanted` on the target group `arn` and deregisters the rest.
pub async fn sync(client: &Client, arn: &str, wanted: &BTreeSet<String>) -> Result<(), Failure> {
    let health = client
        .describe_target_health()
        .target_group_arn(arn)
        .send()
        .await
        .map_err(|e| Failure::from_sdk("DescribeTargetHealth", e))?;
    let current: BTreeSet<String> = health
        .target_health_descriptions()
        .iter()
        .filter_map(|d| Some(d.target()?.id()?.to_owned()))
        .collect();
    let add = descriptions(wanted.difference(&current));
    if !add.is_empty() {
        tracing::info!(target_group = arn, targets = ?add.iter().map(TargetDescription::id).collect::<Vec<_>>(), "registering targets");
        client
            .register_targets()
            .target_group_arn(arn)
            .set_targets(Some(add))
            .send()
            .await
            .map_err(|e| Failure::from_sdk("RegisterTargets", e))?;
    }
    let remove = descriptions(current.difference(wanted));
    if !remove.is_empty() {
        tracing::info!(target_group = arn, targets = ?remove.iter().map(TargetDescription::id).collect::<Vec<_>>(), "deregistering targets");
        client
            .deregister_targets()
            .target_group_arn(arn)
            .set_targets(Some(remove))
            .send()
            .await
            .map_err(|e| Failure::from_sdk("DeregisterTargets", e))?;
    }
    Ok(())
}

/// Targets on the group's own port (the NodePort it was made with).
fn descriptions<'a>(ids: impl Iterator<Item = &'a String>) -> Vec<TargetDescription> {
    ids.map(|id| TargetDescription::builder().id(id).build())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::target;

    #[test]
    fn instance_ids_come_from_aws_provider_ids_only() {
        let mut a = target("a", "10.0.0.1");
        a.provider_id = Some("aws:///us-east-1a/i-0abc".into());
        let mut b = target("b", "10.0.0.2");
        b.provider_id = Some("kind://docker/b".into());
        let c = target("c", "10.0.0.3");
        assert_eq!(
            instance_ids(&[a, b, c]),
            BTreeSet::from(["i-0abc".to_owned()])
        );
    }
}
