//! One EC2 instance as berth sees it: its id, zone, state, addresses and tags,
//! and the `aws:///ZONE/ID` provider id Nodes and NodeClaims record.

use std::collections::BTreeMap;

use aws_sdk_ec2::types::{InstanceLifecycleType, InstanceStateName};

/// What an instance is for, as its `berth.dev/role` tag says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A master (API server, controllers, datastore).
    Master,
    /// A pool node launched for a NodeClaim.
    Node,
}

impl Role {
    /// The tag value.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Master => "master",
            Role::Node => "node",
        }
    }
}

/// An instance described by EC2.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Instance {
    /// `i-…`.
    pub id: String,
    /// Its availability zone.
    pub zone: String,
    /// `pending`, `running`, `stopping`, `stopped`, `shutting-down`, `terminated`.
    pub state: String,
    /// The instance type it runs as.
    pub instance_type: String,
    /// The AMI it booted.
    pub image_id: Option<String>,
    /// Its subnet.
    pub subnet_id: Option<String>,
    /// Its private address.
    pub private_ip: Option<String>,
    /// Its public address, when it has one.
    pub public_ip: Option<String>,
    /// Whether it is a spot instance.
    pub spot: bool,
    /// Its tags.
    pub tags: BTreeMap<String, String>,
}

impl Instance {
    /// `aws:///ZONE/ID`, as cloud-provider-aws writes `spec.providerID`.
    pub fn provider_id(&self) -> String {
        format!("aws:///{}/{}", self.zone, self.id)
    }

    /// Whether it is neither terminated nor on its way there.
    pub fn live(&self) -> bool {
        !matches!(self.state.as_str(), "shutting-down" | "terminated")
    }

    /// The value of tag `key`.
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags.get(key).map(String::as_str)
    }

    pub(crate) fn from_sdk(instance: &aws_sdk_ec2::types::Instance) -> Self {
        Self {
            id: instance.instance_id().unwrap_or_default().to_owned(),
            zone: instance
                .placement()
                .and_then(|p| p.availability_zone())
                .unwrap_or_default()
                .to_owned(),
            state: instance
                .state()
                .and_then(|s| s.name())
                .map_or("unknown", InstanceStateName::as_str)
                .to_owned(),
            instance_type: instance
                .instance_type()
                .map(|t| t.as_str().to_owned())
                .unwrap_or_default(),
            image_id: instance.image_id().map(str::to_owned),
            subnet_id: instance.subnet_id().map(str::to_owned),
            private_ip: instance.private_ip_address().map(str::to_owned),
            public_ip: instance.public_ip_address().map(str::to_owned),
            spot: instance.instance_lifecycle() == Some(&InstanceLifecycleType::Spot),
            tags: instance
                .tags()
                .iter()
                .filter_map(|t| Some((t.key()?.to_owned(), t.value()?.to_owned())))
                .collect(),
        }
    }
}

/// The instance id in a provider id (`aws:///us-east-1a/i-0abc` → `i-0abc`).
pub fn instance_id_of(provider_id: &str) -> Option<&str> {
    let id = provider_id.strip_prefix("aws://")?.rsplit('/').next()?;
    id.starts_with("i-").then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_ids_round_trip() {
        let instance = Instance {
            id: "i-0abc".into(),
            zone: "us-east-1a".into(),
            ..Instance::default()
        };
        assert_eq!(instance.provider_id(), "aws:///us-east-1a/i-0abc");
        assert_eq!(instance_id_of(&instance.provider_id()), Some("i-0abc"));
        assert_eq!(instance_id_of("sim:///x"), None);
        assert_eq!(instance_id_of("aws:///us-east-1a/"), None);
    }
}
