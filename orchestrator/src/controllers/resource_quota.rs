//! The ResourceQuota controller (upstream's `pkg/controller/resourcequota`,
//! accounting only): keeps each quota's `status.hard` equal to its spec and
//! `status.used` equal to what its namespace uses, recomputed when the
//! quota or a charged object in its namespace changes, and every 30 s for
//! counted kinds it does not watch. Admission does not enforce quotas yet.

pub mod usage;

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use berth_api::quantity::Quantity;
use berth_observability::workqueue;
use futures::{stream, Future, StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{
    ConfigMap, PersistentVolumeClaim, Pod, ReplicationController, ResourceQuota, Secret, Service,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity as OpenApiQuantity;
use kube::api::{Api, ApiResource, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::PartialObjectMeta;
use kube::runtime::controller::{Action, Config};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::ResourceExt;
use tokio_util::sync::CancellationToken;

use self::usage::{needs, Observed};
use super::ControllerError;

/// How often a quota is recomputed without any event (kinds counted by
/// `count/<resource>` are not watched).
const RESYNC: Duration = Duration::from_secs(30);

struct Context {
    client: kube::Client,
}

#[derive(Debug, thiserror::Error)]
enum ReconcileError {
    #[error("{0}")]
    Api(#[from] kube::Error),
}

/// The quota's hard amounts, by resource (unparsable ones left out).
fn hard_of(quota: &ResourceQuota) -> BTreeMap<String, Quantity> {
    quota
        .spec
        .as_ref()
        .and_then(|s| s.hard.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.clone(), Quantity::try_from(v).ok()?)))
        .collect()
}

/// The served, namespaced resource `plural` of `group`, found through
/// discovery; None when the server does not serve it (nothing to count then).
async fn find_resource(
    client: &kube::Client,
    group: &str,
    plural: &str,
) -> Result<Option<ApiResource>, ReconcileError> {
    let found = match kube::discovery::group(client, group).await {
        Ok(found) => found,
        Err(kube::Error::Discovery(_)) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    Ok(found
        .recommended_resources()
        .into_iter()
        .find(|(r, caps)| r.plural == plural && caps.scope == kube::discovery::Scope::Namespaced)
        .map(|(resource, _)| resource))
}

async fn reconcile(quota: Arc<ResourceQuota>, ctx: Arc<Context>) -> Result<Action, ReconcileError> {
    if quota.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let namespace = quota.namespace().unwrap_or_default();
    let client = &ctx.client;
    let hard = hard_of(&quota);
    let wanted = needs(hard.keys());
    let params = ListParams::default();
    let pods = if wanted.pods {
        Api::<Pod>::namespaced(client.clone(), &namespace)
            .list(&params)
            .await?
            .items
    } else {
        Vec::new()
    };
    let services = if wanted.services {
        Api::<Service>::namespaced(client.clone(), &namespace)
            .list(&params)
            .await?
            .items
    } else {
        Vec::new()
    };
    let claims = if wanted.claims {
        Api::<PersistentVolumeClaim>::namespaced(client.clone(), &namespace)
            .list(&params)
            .await?
            .items
    } else {
        Vec::new()
    };
    let mut counts = BTreeMap::new();
    for (group, plural) in &wanted.counted {
        let Some(resource) = find_resource(client, group, plural).await? else {
            tracing::debug!(resource = %usage::count_name(group, plural), "not served; counted as 0");
            counts.insert((group.clone(), plural.clone()), 0);
            continue;
        };
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &namespace, &resource);
        let listed = api.list_metadata(&params).await?;
        counts.insert((group.clone(), plural.clone()), listed.items.len() as i64);
    }
    let scopes = quota
        .spec
        .as_ref()
        .and_then(|s| s.scopes.clone())
        .unwrap_or_default();
    let observed = Observed {
        pods: &pods,
        services: &services,
        claims: &claims,
        counts,
    };
    let used = usage::used(&hard, &scopes, &observed, jiff::Timestamp::now());
    let as_strings = |m: &BTreeMap<String, Quantity>| -> BTreeMap<String, String> {
        m.iter().map(|(k, v)| (k.clone(), v.to_string())).collect()
    };
    let status = quota.status.as_ref();
    let hard_now = canonical(status.and_then(|s| s.hard.as_ref()));
    let used_now = canonical(status.and_then(|s| s.used.as_ref()));
    if hard_now != as_strings(&hard) || used_now != as_strings(&used) {
        let patch =
            serde_json::json!({"status": {"hard": as_strings(&hard), "used": as_strings(&used)}});
        let api: Api<ResourceQuota> = Api::namespaced(client.clone(), &namespace);
        // A merge patch keeps stale keys; replace both maps whole instead.
        let clear = serde_json::json!({"status": {"hard": null, "used": null}});
        if hard_now.keys().any(|k| !hard.contains_key(k)) {
            api.patch_status(
                &quota.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&clear),
            )
            .await?;
        }
        match api
            .patch_status(
                &quota.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(Action::requeue(RESYNC))
}

/// A status map with each amount in canonical form, to compare with ours.
fn canonical(map: Option<&BTreeMap<String, OpenApiQuantity>>) -> BTreeMap<String, String> {
    map.into_iter()
        .flatten()
        .map(|(k, v)| {
            let shown = Quantity::try_from(v).map_or_else(|_| v.0.clone(), |q| q.to_string());
            (k.clone(), shown)
        })
        .collect()
}

fn error_policy(quota: Arc<ResourceQuota>, error: &ReconcileError, _ctx: Arc<Context>) -> Action {
    tracing::warn!(resourcequota = %quota.name_any(), %error, "resource quota sync failed");
    Action::requeue(Duration::from_secs(5))
}

/// A metadata-only watch of every `K`, yielding the namespace of each change.
fn namespaces_touched<K>(
    client: &kube::Client,
) -> impl futures::Stream<Item = Result<Option<String>, watcher::Error>> + Send + 'static
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    watcher(
        Api::<PartialObjectMeta<K>>::all(client.clone()),
        watcher::Config::default(),
    )
    .default_backoff()
    .touched_objects()
    .map_ok(|meta| meta.metadata.namespace)
}

type ReconcileFuture = Pin<Box<dyn Future<Output = Result<Action, ReconcileError>> + Send>>;

/// Runs the ResourceQuota controller until `cancel` fires.
pub async fn run(client: kube::Client, cancel: CancellationToken) -> Result<(), ControllerError> {
    let (quotas, writer) = reflector::store();
    let quota_events = reflector::reflector(
        writer,
        watcher(
            Api::<ResourceQuota>::all(client.clone()),
            watcher::Config::default(),
        ),
    )
    .default_backoff()
    .touched_objects()
    .map_ok(|q| vec![ObjectRef::from_obj(&q)]);
    let charged = stream::select_all([
        namespaces_touched::<Pod>(&client).boxed(),
        namespaces_touched::<Service>(&client).boxed(),
        namespaces_touched::<PersistentVolumeClaim>(&client).boxed(),
        namespaces_touched::<ConfigMap>(&client).boxed(),
        namespaces_touched::<Secret>(&client).boxed(),
        namespaces_touched::<ReplicationController>(&client).boxed(),
    ])
    .map_ok({
        let quotas: Store<ResourceQuota> = quotas.clone();
        move |namespace| quotas_in(&quotas, namespace.as_deref())
    });
    let queue = stream::select(quota_events.boxed(), charged.boxed())
        .map_ok(|refs| stream::iter(refs.into_iter().map(Ok::<_, watcher::Error>)))
        .try_flatten();
    let context = Arc::new(Context { client });
    workqueue::named("resourcequota_primary")
        .applier(
            |quota, ctx| -> ReconcileFuture { Box::pin(reconcile(quota, ctx)) },
            error_policy,
            context,
            quotas,
            queue,
            Config::default(),
        )
        .take_until(cancel.cancelled())
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "resource quota controller event");
            }
        })
        .await;
    Ok(())
}

/// The quotas of a namespace, which a change there may move.
fn quotas_in(
    quotas: &Store<ResourceQuota>,
    namespace: Option<&str>,
) -> Vec<ObjectRef<ResourceQuota>> {
    quotas
        .state()
        .iter()
        .filter(|q| q.metadata.namespace.as_deref() == namespace && namespace.is_some())
        .map(|q| ObjectRef::from_obj(q.as_ref()))
        .collect()
}
