//! `cluster.toml`'s `[aws]` block: where the cluster's EC2 calls go and, in
//! `[aws.masters]`, how its master instances are launched.

use berth_api::nodepool::{AwsTemplate, RootVolume};
use serde::Deserialize;
use toml::Spanned;

use super::AwsSettings;

/// The `[aws]` block.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwsClusterConfig {
    /// The region; the AWS chain's when left out.
    pub region: Option<String>,
    /// An EC2-compatible endpoint (moto, a VPC endpoint).
    pub endpoint_url: Option<String>,
    /// Where instances the `aws` NodePool provider launches download berth
    /// (the masters' `berth server --aws-binary-url`).
    pub binary_url: Option<Spanned<String>>,
    /// Master instances, when the masters run on EC2.
    pub masters: Option<AwsMasters>,
}

/// The `[aws.masters]` block.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwsMasters {
    /// How many masters (1, 3 or 5); kept with its place in the file so a
    /// count the datastore refuses is pointed at.
    pub count: Spanned<u32>,
    /// Instance types in order of preference.
    pub instance_types: Vec<String>,
    /// The AMI.
    pub ami: String,
    /// Subnets the masters are spread over.
    #[serde(default)]
    pub subnet_ids: Vec<String>,
    /// Security groups.
    #[serde(default)]
    pub security_group_ids: Vec<String>,
    /// EC2 key pair.
    pub key_name: Option<String>,
    /// Root volume size in GiB.
    pub root_volume_gib: Option<i32>,
    /// Root volume type (`gp3`).
    pub root_volume_type: Option<String>,
    /// Instance profile name or ARN.
    pub iam_instance_profile: Option<String>,
    /// Whether the cluster's endpoint uses the masters' public addresses
    /// (default: private).
    #[serde(default)]
    pub public: bool,
}

impl AwsClusterConfig {
    /// The `[aws]` block of a `cluster.toml`'s text, None when it has none.
    pub fn from_cluster_toml(text: &str) -> Result<Option<Self>, toml::de::Error> {
        #[derive(Deserialize)]
        struct File {
            aws: Option<AwsClusterConfig>,
        }
        Ok(toml::from_str::<File>(text)?.aws)
    }

    /// The client settings of cluster `cluster`.
    pub fn settings(&self, cluster: &str) -> AwsSettings {
        AwsSettings {
            region: self.region.clone(),
            endpoint_url: self.endpoint_url.clone(),
            cluster: cluster.to_owned(),
        }
    }

    /// The `berth server` flags that switch its `aws` NodePool provider on
    /// for cluster `cluster` (the masters' command line).
    pub fn server_flags(&self, cluster: &str) -> Vec<String> {
        let mut flags = vec!["--aws-cluster".to_owned(), cluster.to_owned()];
        let optional = [
            ("--aws-region", self.region.as_deref()),
            ("--aws-endpoint-url", self.endpoint_url.as_deref()),
            (
                "--aws-binary-url",
                self.binary_url.as_ref().map(|url| url.get_ref().as_str()),
            ),
        ];
        for (flag, value) in optional {
            if let Some(value) = value {
                flags.extend([flag.to_owned(), value.to_owned()]);
            }
        }
        flags
    }
}

impl AwsMasters {
    /// The launch template of every master (always on-demand).
    pub fn template(&self) -> AwsTemplate {
        AwsTemplate {
            instance_types: self.instance_types.clone(),
            ami: self.ami.clone(),
            subnet_ids: self.subnet_ids.clone(),
            security_group_ids: self.security_group_ids.clone(),
            key_name: self.key_name.clone(),
            capacity_type: Some("on-demand".into()),
            root_volume: self.root_volume_gib.map(|size_gib| RootVolume {
                size_gib,
                type_: self.root_volume_type.clone(),
            }),
            iam_instance_profile: self.iam_instance_profile.clone(),
            user_data: None,
        }
    }

    /// The masters' names: `CLUSTER-master-1` and up.
    pub fn names(&self, cluster: &str) -> Vec<String> {
        (1..=*self.count.get_ref())
            .map(|i| format!("{cluster}-master-{i}"))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_aws_block_parses_with_masters() {
        let config: AwsClusterConfig = toml::from_str(
            r#"
            region = "eu-west-1"
            endpoint_url = "http://127.0.0.1:5000"
            [masters]
            count = 3
            instance_types = ["m7i.large"]
            ami = "ami-1"
            subnet_ids = ["subnet-a", "subnet-b"]
            root_volume_gib = 50
            "#,
        )
        .expect("parses");
        let masters = config.masters.clone().expect("masters");
        assert_eq!(
            masters.names("prod"),
            ["prod-master-1", "prod-master-2", "prod-master-3"]
        );
        assert_eq!(masters.template().root_volume.map(|v| v.size_gib), Some(50));
        assert_eq!(config.settings("prod").region.as_deref(), Some("eu-west-1"));
        assert_eq!(
            config.server_flags("prod"),
            [
                "--aws-cluster",
                "prod",
                "--aws-region",
                "eu-west-1",
                "--aws-endpoint-url",
                "http://127.0.0.1:5000"
            ]
        );
        let unknown = toml::from_str::<AwsClusterConfig>("zone = \"a\"");
        assert!(unknown.is_err(), "unknown keys are refused");
        let file = "name = \"prod\"\n[masters]\nmachines = [{ host = \"10.0.0.1\" }]\n\
                    [aws]\nregion = \"eu-west-1\"\nbinary_url = \"https://b/berth\"\n";
        let found = AwsClusterConfig::from_cluster_toml(file).expect("parses");
        assert_eq!(found.and_then(|a| a.region).as_deref(), Some("eu-west-1"));
        let parsed = crate::config::parse("cluster.toml", file);
        assert!(parsed.is_ok(), "cluster.toml accepts [aws]: {parsed:?}");
    }
}
