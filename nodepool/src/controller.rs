//! Wiring of the NodePool controller: its configuration, the providers it
//! may use, the shared context, and the three loops (pools, claims, disruption) it runs
//! until cancelled.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use berth_observability::events::Recorder;
use kube::api::{Patch, PatchParams};
use kube::{Api, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::provider::{MachineProvider, ProviderError};

/// The providers the controller may launch machines with, by the name pools
/// give in `spec.provider`.
pub type Providers = BTreeMap<String, Arc<dyn MachineProvider>>;

/// Timing of the controller (defaults suit one machine and the tests).
#[derive(Debug, Clone, Copy)]
pub struct Config {
    /// How soon a pool or claim still changing is looked at again.
    pub busy_requeue: Duration,
    /// How often a settled pool or claim is checked anyway (pods change
    /// without waking the pool controller).
    pub idle_requeue: Duration,
    /// How long the provisioner waits for more pods to fail scheduling
    /// after the last one before it decides (a burst settles).
    pub batch_idle: Duration,
    /// The longest it waits, however many pods keep coming.
    pub batch_max: Duration,
    /// How long after launch a machine's node may take to register before
    /// its claim (and machine) is removed and replaced.
    pub registration_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            busy_requeue: Duration::from_secs(2),
            idle_requeue: Duration::from_secs(30),
            batch_idle: Duration::from_secs(1),
            batch_max: Duration::from_secs(10),
            registration_timeout: crate::registration::DEFAULT_TIMEOUT,
        }
    }
}

/// Why a reconcile failed; it is retried with back-off.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// The API answered an error.
    #[error("API request failed: {0}")]
    Kube(#[from] kube::Error),
    /// The machine provider failed.
    #[error(transparent)]
    Provider(#[from] ProviderError),
}

/// What both loops share.
pub struct Context {
    /// The API client.
    pub client: kube::Client,
    /// The providers by name.
    pub providers: Providers,
    /// Records Events as `nodepool-controller`.
    pub recorder: Recorder,
    /// Timing.
    pub config: Config,
}

/// The component name on Events, Leases and logs.
pub const COMPONENT: &str = "nodepool-controller";

/// Runs the pool, claim and provisioning loops until `cancel` fires.
pub async fn run(
    client: kube::Client,
    providers: Providers,
    config: Config,
    cancel: CancellationToken,
) {
    let metrics = crate::metrics::NodePoolMetrics::global();
    let providers = providers
        .into_iter()
        .map(|(name, provider)| (name, metrics.wrap(provider)))
        .collect();
    let ctx = Arc::new(Context {
        recorder: Recorder::new(client.clone(), COMPONENT),
        client,
        providers,
        config,
    });
    tracing::info!(providers = ?ctx.providers.keys().collect::<Vec<_>>(), "nodepool controller starting");
    tokio::join!(
        crate::pool_controller::run(Arc::clone(&ctx), cancel.clone()),
        crate::claim_controller::run(Arc::clone(&ctx), cancel.clone()),
        crate::disruption::run(Arc::clone(&ctx), cancel.clone()),
        crate::provisioning::provisioner::run(ctx, cancel),
    );
}

/// Adds `finalizer` to `object` unless it has it.
pub(crate) async fn add_finalizer<K>(api: &Api<K>, object: &K, finalizer: &str) -> kube::Result<()>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
{
    if object.finalizers().iter().any(|f| f == finalizer) {
        return Ok(());
    }
    let mut finalizers = object.finalizers().to_vec();
    finalizers.push(finalizer.to_owned());
    patch_finalizers(api, object, finalizers).await
}

/// Removes `finalizer` from `object`, which the API server then deletes if it
/// was the last one of an object being deleted.
pub(crate) async fn remove_finalizer<K>(
    api: &Api<K>,
    object: &K,
    finalizer: &str,
) -> kube::Result<()>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
{
    if !object.finalizers().iter().any(|f| f == finalizer) {
        return Ok(());
    }
    let finalizers = object
        .finalizers()
        .iter()
        .filter(|f| *f != finalizer)
        .cloned()
        .collect();
    match patch_finalizers(api, object, finalizers).await {
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        other => other,
    }
}

/// Writes the whole finalizer list, guarded by the resourceVersion read, so
/// a concurrent change makes this write fail (409) and the reconcile retry.
async fn patch_finalizers<K>(api: &Api<K>, object: &K, finalizers: Vec<String>) -> kube::Result<()>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
{
    let patch = json!({"metadata": {
        "finalizers": finalizers,
        "resourceVersion": object.resource_version(),
    }});
    api.patch(
        &object.name_any(),
        &PatchParams::default(),
        &Patch::Merge(patch),
    )
    .await
    .map(|_| ())
}
