//! EC2 machines for a cluster: node instances launched for NodeClaims (the
//! `aws` NodePool provider) and master instances from `cluster.toml`'s
//! `[aws]` block. Every instance is tagged at launch with its cluster, role
//! and name, so it can always be found again by tag and none is leaked.

mod client;
mod error;
mod instance;
mod instance_types;
mod launch;
mod list;
mod masters;
mod retry;
mod settings;
mod terminate;
pub mod user_data;

/// Static credentials, for EC2-compatible endpoints outside the AWS chain (moto).
pub use aws_sdk_ec2::config::Credentials;
pub use client::{http_client, loader, AwsSettings, Ec2};
pub use error::AwsError;
pub use instance::{instance_id_of, Instance, Role};
pub use instance_types::{Capacity, DEFAULT_MAX_PODS};
pub use launch::LaunchRequest;
pub use masters::{api_endpoints, Master};
pub use retry::Backoff;
pub use settings::{AwsClusterConfig, AwsMasters};
pub use terminate::orphans;

/// The tag naming the cluster an instance belongs to.
pub const CLUSTER_TAG: &str = "berth.dev/cluster";
/// The tag naming the NodePool a node instance was launched for.
pub const POOL_TAG: &str = "berth.dev/pool";
/// The tag naming the NodeClaim a node instance was launched for.
pub const CLAIM_TAG: &str = "berth.dev/nodeclaim";
/// The tag saying whether an instance is a `master` or a `node`.
pub const ROLE_TAG: &str = "berth.dev/role";
/// EC2's display name tag: the claim's or the master's name.
pub const NAME_TAG: &str = "Name";
