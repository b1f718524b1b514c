//! The EC2 client of a cluster: region and credentials from the standard AWS
//! chain (environment, profile, instance role), an optional endpoint URL for
//! EC2-compatible endpoints (moto), and a rustls-on-ring HTTP client.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, ConfigLoader, Region, SdkConfig};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use aws_smithy_http_client::Builder;

use super::instance_types::Capacity;
use super::retry::Backoff;

/// Where a cluster's EC2 calls go.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AwsSettings {
    /// The region; the AWS chain's (`AWS_REGION`, profile) when None.
    pub region: Option<String>,
    /// An EC2-compatible endpoint (`http://127.0.0.1:5000` for moto).
    pub endpoint_url: Option<String>,
    /// The cluster's name, tagged on every instance.
    pub cluster: String,
}

/// The SDK's HTTP client: rustls on ring, as the rest of the workspace
/// (the SDK's default pulls aws-lc).
pub fn http_client() -> aws_sdk_ec2::config::SharedHttpClient {
    Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

/// The AWS config loader for `settings`, before credentials: callers may
/// add a credentials provider, then `load()` it.
pub fn loader(settings: &AwsSettings) -> ConfigLoader {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .http_client(http_client())
        .retry_config(RetryConfig::disabled());
    if let Some(region) = &settings.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some(url) = &settings.endpoint_url {
        loader = loader.endpoint_url(url.clone());
    }
    loader
}

/// EC2 for one cluster.
#[derive(Debug, Clone)]
pub struct Ec2 {
    pub(crate) client: aws_sdk_ec2::Client,
    pub(crate) cluster: String,
    pub(crate) backoff: Backoff,
    /// Instance types already described, shared by clones.
    pub(crate) instance_types: Arc<Mutex<BTreeMap<String, Capacity>>>,
}

impl Ec2 {
    /// Connects with credentials from the standard AWS chain.
    pub async fn connect(settings: &AwsSettings) -> Self {
        Self::new(&loader(settings).load().await, &settings.cluster)
    }

    /// EC2 through an already loaded SDK config.
    pub fn new(config: &SdkConfig, cluster: &str) -> Self {
        Self {
            client: aws_sdk_ec2::Client::new(config),
            cluster: cluster.to_owned(),
            backoff: Backoff::default(),
            instance_types: Arc::default(),
        }
    }

    /// The same client with another retry policy.
    pub fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// The cluster whose instances this client sees.
    pub fn cluster(&self) -> &str {
        &self.cluster
    }

    /// The SDK client, for calls this module does not wrap.
    pub fn sdk(&self) -> &aws_sdk_ec2::Client {
        &self.client
    }
}
