//! The EndpointSlice controller (upstream's `pkg/controller/endpointslice`):
//! for every Service with a selector, discovery.k8s.io/v1 EndpointSlices
//! (`SERVICE-xxxxx`, owned by the Service, at most 100 endpoints each, one set
//! per distinct port list) whose endpoints carry ready/serving/terminating.
//! Slices are updated in place where possible and never written when they
//! already say the right thing; deleting the Service leaves them to the
//! garbage collector through their ownerReference, as upstream does.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use berth_observability::workqueue;
use futures::{stream, Future, StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, PostParams};
use kube::runtime::controller::{Action, Config};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::ResourceExt;
use tokio_util::sync::CancellationToken;

use super::cache::Cache;
use super::endpoints::{
    find_port, pod_hostname, pod_ipv4, pod_is_ready, pod_reference, pod_should_be_in_endpoints,
    service_is_managed, service_labels, service_selects,
};
use super::informers::Informers;
use super::workload::{controller_of, controller_reference};
use super::ControllerError;

/// Upstream's default `--max-endpoints-per-slice`.
pub const MAX_ENDPOINTS_PER_SLICE: usize = 100;
/// The label naming the Service a slice belongs to.
pub const LABEL_SERVICE_NAME: &str = "kubernetes.io/service-name";
/// The label naming the controller that manages a slice.
pub const LABEL_MANAGED_BY: &str = "endpointslice.kubernetes.io/managed-by";
/// The value of [`LABEL_MANAGED_BY`] on slices this controller writes.
pub const CONTROLLER_NAME: &str = "endpointslice-controller.k8s.io";
/// The only address family served.
const ADDRESS_TYPE: &str = "IPv4";

/// What to do to a Service's slices: create, update in place, delete.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct SlicePlan {
    /// New slices (with `generateName`).
    pub create: Vec<EndpointSlice>,
    /// Existing slices with new content (their resourceVersion kept as a guard).
    pub update: Vec<EndpointSlice>,
    /// Existing slices to delete.
    pub delete: Vec<EndpointSlice>,
}

impl SlicePlan {
    /// Whether the slices are already right.
    pub fn is_empty(&self) -> bool {
        self.create.is_empty() && self.update.is_empty() && self.delete.is_empty()
    }
}

/// The labels a slice of `service` carries: the Service's (less the two this
/// controller owns), headless marker, service name and manager.
pub fn slice_labels(service: &Service) -> BTreeMap<String, String> {
    let mut labels = service_labels(service);
    labels.insert(LABEL_SERVICE_NAME.into(), service.name_any());
    labels.insert(LABEL_MANAGED_BY.into(), CONTROLLER_NAME.into());
    labels
}

/// Whether `slice` is one this controller manages for the Service `name`.
pub fn slice_is_managed_for(slice: &EndpointSlice, name: &str) -> bool {
    let labels = slice.labels();
    labels.get(LABEL_MANAGED_BY).map(String::as_str) == Some(CONTROLLER_NAME)
        && labels.get(LABEL_SERVICE_NAME).map(String::as_str) == Some(name)
}

/// The endpoint for `pod` (upstream's `podToEndpoint`): serving follows the
/// Ready condition, ready additionally needs the pod not to be terminating
/// unless the Service publishes not-ready addresses.
fn pod_endpoint(pod: &Pod, service: &Service, ip: String) -> Endpoint {
    let serving = pod_is_ready(pod);
    let terminating = pod.metadata.deletion_timestamp.is_some();
    let publish_not_ready = service
        .spec
        .as_ref()
        .and_then(|s| s.publish_not_ready_addresses)
        .unwrap_or(false);
    Endpoint {
        addresses: vec![ip],
        conditions: Some(EndpointConditions {
            ready: Some(publish_not_ready || (serving && !terminating)),
            serving: Some(serving),
            terminating: Some(terminating),
        }),
        hostname: pod_hostname(pod, service),
        node_name: pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .filter(|n| !n.is_empty()),
        target_ref: Some(pod_reference(pod)),
        ..Default::default()
    }
}

/// The ports `service` reaches on `pod` (those that do not resolve are left out).
fn pod_ports(pod: &Pod, service: &Service) -> Vec<EndpointPort> {
    let service_ports = service
        .spec
        .as_ref()
        .and_then(|s| s.ports.as_deref())
        .unwrap_or_default();
    let mut ports: Vec<EndpointPort> = service_ports
        .iter()
        .filter_map(|p| {
            find_port(pod, p).map(|number| EndpointPort {
                name: Some(p.name.clone().unwrap_or_default()),
                port: Some(number),
                protocol: Some(p.protocol.clone().unwrap_or_else(|| "TCP".into())),
                app_protocol: p.app_protocol.clone(),
            })
        })
        .collect();
    ports.sort_by_key(port_key);
    ports
}

/// Ports compare and group by (name, port, protocol, appProtocol).
type PortKey = (String, i32, String, String);

fn port_key(port: &EndpointPort) -> PortKey {
    (
        port.name.clone().unwrap_or_default(),
        port.port.unwrap_or_default(),
        port.protocol.clone().unwrap_or_default(),
        port.app_protocol.clone().unwrap_or_default(),
    )
}

fn ports_key(ports: Option<&Vec<EndpointPort>>) -> Vec<PortKey> {
    let mut keys: Vec<PortKey> = ports.into_iter().flatten().map(port_key).collect();
    keys.sort();
    keys
}

/// An endpoint is identified by its first address and the pod it points at.
type EndpointKey = (String, String);

fn endpoint_key(endpoint: &Endpoint) -> EndpointKey {
    (
        endpoint.addresses.first().cloned().unwrap_or_default(),
        endpoint
            .target_ref
            .as_ref()
            .and_then(|r| r.uid.clone())
            .unwrap_or_default(),
    )
}

/// The desired endpoints of `service`, grouped by the ports they offer.
type Groups = BTreeMap<Vec<PortKey>, (Vec<EndpointPort>, BTreeMap<EndpointKey, Endpoint>)>;

fn desired_groups(service: &Service, pods: &[&Pod]) -> Groups {
    let mut groups = Groups::new();
    for pod in pods.iter().filter(|p| service_selects(service, p)) {
        // Terminating pods stay, marked terminating, as upstream keeps them.
        if !pod_should_be_in_endpoints(pod, true) {
            continue;
        }
        let Some(ip) = pod_ipv4(pod) else { continue };
        let ports = pod_ports(pod, service);
        let endpoint = pod_endpoint(pod, service, ip);
        let key = ports.iter().map(port_key).collect();
        groups
            .entry(key)
            .or_insert_with(|| (ports, BTreeMap::new()))
            .1
            .insert(endpoint_key(&endpoint), endpoint);
    }
    groups
}

/// A new, empty slice of `service` offering `ports`.
fn new_slice(service: &Service, ports: &[EndpointPort]) -> EndpointSlice {
    EndpointSlice {
        metadata: ObjectMeta {
            generate_name: Some(format!("{}-", service.name_any())),
            namespace: service.namespace(),
            labels: Some(slice_labels(service)),
            owner_references: Some(vec![controller_reference(service)]),
            ..Default::default()
        },
        address_type: ADDRESS_TYPE.into(),
        endpoints: Vec::new(),
        ports: (!ports.is_empty()).then(|| ports.to_vec()),
    }
}

/// `slice` with the labels, owner and ports it should have for `service`.
fn with_metadata(
    mut slice: EndpointSlice,
    service: &Service,
    ports: &[EndpointPort],
) -> EndpointSlice {
    slice.metadata.labels = Some(slice_labels(service));
    let uid = service.uid();
    let mut owners = slice.metadata.owner_references.take().unwrap_or_default();
    if !owners
        .iter()
        .any(|o| Some(&o.uid) == uid.as_ref() && o.controller == Some(true))
    {
        owners.retain(|o| o.controller != Some(true));
        owners.push(controller_reference(service));
    }
    slice.metadata.owner_references = Some(owners);
    slice.metadata.managed_fields = None;
    slice.ports = (!ports.is_empty()).then(|| ports.to_vec());
    slice
}

/// Whether writing `desired` over `current` changes anything a reader sees.
fn slice_differs(current: &EndpointSlice, desired: &EndpointSlice) -> bool {
    current.endpoints != desired.endpoints
        || ports_key(current.ports.as_ref()) != ports_key(desired.ports.as_ref())
        || current.ports.as_ref().map(|p| p.len()) != desired.ports.as_ref().map(|p| p.len())
        || current.metadata.labels.clone().unwrap_or_default()
            != desired.metadata.labels.clone().unwrap_or_default()
        || current
            .metadata
            .owner_references
            .clone()
            .unwrap_or_default()
            != desired
                .metadata
                .owner_references
                .clone()
                .unwrap_or_default()
}

/// What to do to `existing` (the slices labelled for `service`) so they hold
/// exactly the endpoints `pods` give it, at most `max_per_slice` each:
/// endpoints stay in the slice they are in, new ones fill slices already
/// being written before others, then new slices; slices left empty go, but a
/// Service with no endpoints keeps one empty placeholder slice, as upstream.
pub fn plan_slices(
    service: &Service,
    pods: &[&Pod],
    existing: &[&EndpointSlice],
    max_per_slice: usize,
) -> SlicePlan {
    let max_per_slice = max_per_slice.max(1);
    let mut plan = SlicePlan::default();
    let uid = service.uid().unwrap_or_default();
    let mut groups = desired_groups(service, pods);
    let wanted: usize = groups.values().map(|(_, e)| e.len()).sum();
    let mut existing: Vec<&EndpointSlice> = existing.to_vec();
    existing.sort_by_key(|s| s.metadata.name.clone());
    let mut by_ports: BTreeMap<Vec<PortKey>, Vec<EndpointSlice>> = BTreeMap::new();
    for slice in existing {
        let owned = controller_of(&slice.metadata).is_none_or(|o| o.uid == uid);
        if owned && slice.address_type == ADDRESS_TYPE {
            by_ports
                .entry(ports_key(slice.ports.as_ref()))
                .or_default()
                .push(slice.clone());
        } else {
            plan.delete.push(slice.clone());
        }
    }
    let mut emptied: Vec<(EndpointSlice, EndpointSlice)> = Vec::new();
    for (key, (ports, mut remaining)) in std::mem::take(&mut groups) {
        // Keep every endpoint where it is, refreshed; drop the ones gone.
        let mut kept: Vec<(EndpointSlice, EndpointSlice)> = by_ports
            .remove(&key)
            .unwrap_or_default()
            .into_iter()
            .map(|current| {
                let mut next = with_metadata(current.clone(), service, &ports);
                next.endpoints = current
                    .endpoints
                    .iter()
                    .filter_map(|e| remaining.remove(&endpoint_key(e)))
                    .collect();
                (current, next)
            })
            .collect();
        // Fill slices that are written anyway first, then the others.
        kept.sort_by_key(|(current, next)| !slice_differs(current, next));
        let mut leftover = remaining.into_values();
        for (_, next) in kept.iter_mut() {
            while next.endpoints.len() < max_per_slice {
                match leftover.next() {
                    Some(e) => next.endpoints.push(e),
                    None => break,
                }
            }
        }
        let leftover: Vec<Endpoint> = leftover.collect();
        for chunk in leftover.chunks(max_per_slice) {
            let mut slice = new_slice(service, &ports);
            slice.endpoints = chunk.to_vec();
            plan.create.push(slice);
        }
        for (current, next) in kept {
            if next.endpoints.is_empty() {
                emptied.push((current, next));
            } else if slice_differs(&current, &next) {
                plan.update.push(next);
            }
        }
    }
    // Slices whose port list no endpoint offers any more are empty too.
    for slice in by_ports.into_values().flatten() {
        let mut next = with_metadata(slice.clone(), service, &[]);
        next.endpoints.clear();
        emptied.push((slice, next));
    }
    if wanted == 0 {
        // Keep (or make) one placeholder: reuse an empty slice in place.
        emptied.sort_by_key(|(current, _)| !current.endpoints.is_empty());
        let mut emptied = emptied.into_iter();
        match emptied.next() {
            Some((current, mut next)) => {
                next.ports = None;
                if slice_differs(&current, &next) {
                    plan.update.push(next);
                }
            }
            None => plan.create.push(new_slice(service, &[])),
        }
        plan.delete.extend(emptied.map(|(current, _)| current));
    } else {
        plan.delete
            .extend(emptied.into_iter().map(|(current, _)| current));
    }
    plan
}

struct Context {
    client: kube::Client,
    pods: Cache<Pod>,
    slices: Cache<EndpointSlice>,
}

#[derive(Debug, thiserror::Error)]
enum ReconcileError {
    #[error("{0}")]
    Api(#[from] kube::Error),
    #[error("a cache closed before its first list completed")]
    CacheClosed,
}

/// Carries out `plan`; true when the server refused a write because the
/// cache was behind (the next pass, on a fresher cache, retries).
async fn apply(api: &Api<EndpointSlice>, plan: SlicePlan) -> Result<bool, kube::Error> {
    let mut stale = false;
    let mut outcome = |result: Result<(), kube::Error>| match result {
        Ok(()) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 409 || s.code == 404 => {
            stale = true;
            Ok(())
        }
        Err(e) => Err(e),
    };
    for slice in &plan.update {
        let name = slice.name_any();
        outcome(
            api.replace(&name, &PostParams::default(), slice)
                .await
                .map(|_| ()),
        )?;
    }
    for slice in &plan.create {
        outcome(api.create(&PostParams::default(), slice).await.map(|_| ()))?;
    }
    for slice in &plan.delete {
        let name = slice.name_any();
        outcome(
            api.delete(&name, &DeleteParams::default())
                .await
                .map(|_| ()),
        )?;
    }
    Ok(stale)
}

async fn reconcile(service: Arc<Service>, ctx: Arc<Context>) -> Result<Action, ReconcileError> {
    for ready in [ctx.pods.ready().await, ctx.slices.ready().await] {
        ready.map_err(|_| ReconcileError::CacheClosed)?;
    }
    if !service_is_managed(&service) || service.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let namespace = service.namespace().unwrap_or_default();
    let name = service.name_any();
    let pods = ctx.pods.state();
    let selected: Vec<&Pod> = pods
        .iter()
        .map(|p| p.as_ref())
        .filter(|p| service_selects(&service, p))
        .collect();
    let slices = ctx.slices.state();
    let existing: Vec<&EndpointSlice> = slices
        .iter()
        .map(|s| s.as_ref())
        .filter(|s| s.metadata.namespace.as_deref() == Some(namespace.as_str()))
        .filter(|s| slice_is_managed_for(s, &name))
        .collect();
    let plan = plan_slices(&service, &selected, &existing, MAX_ENDPOINTS_PER_SLICE);
    if plan.is_empty() {
        return Ok(Action::await_change());
    }
    tracing::debug!(
        service = %format!("{namespace}/{name}"),
        create = plan.create.len(),
        update = plan.update.len(),
        delete = plan.delete.len(),
        "syncing endpoint slices"
    );
    let api: Api<EndpointSlice> = Api::namespaced(ctx.client.clone(), &namespace);
    if apply(&api, plan).await? {
        return Ok(Action::requeue(Duration::from_millis(200)));
    }
    Ok(Action::await_change())
}

fn error_policy(service: Arc<Service>, error: &ReconcileError, _ctx: Arc<Context>) -> Action {
    tracing::warn!(service = %service.name_any(), %error, "endpointslice reconcile failed");
    Action::requeue(Duration::from_secs(2))
}

/// The Services a pod event should wake: those selecting it now, and those
/// whose slices still list it.
fn services_for_pod(
    pod: &Pod,
    services: &Store<Service>,
    slices: &Store<EndpointSlice>,
) -> Vec<ObjectRef<Service>> {
    let mut refs: Vec<ObjectRef<Service>> = services
        .state()
        .iter()
        .filter(|s| service_selects(s, pod))
        .map(|s| ObjectRef::from_obj(s.as_ref()))
        .collect();
    for slice in slices.state() {
        if slice.metadata.namespace != pod.metadata.namespace {
            continue;
        }
        let lists_pod = slice.endpoints.iter().any(|e| {
            e.target_ref.as_ref().and_then(|r| r.name.as_deref()) == pod.metadata.name.as_deref()
        });
        if let (true, Some(r)) = (lists_pod, service_of_slice(&slice)) {
            if !refs.contains(&r) {
                refs.push(r);
            }
        }
    }
    refs
}

/// The Service a managed slice belongs to, from its service-name label.
fn service_of_slice(slice: &EndpointSlice) -> Option<ObjectRef<Service>> {
    let labels = slice.labels();
    if labels.get(LABEL_MANAGED_BY).map(String::as_str) != Some(CONTROLLER_NAME) {
        return None;
    }
    let name = labels.get(LABEL_SERVICE_NAME)?;
    Some(ObjectRef::new(name).within(&slice.namespace().unwrap_or_default()))
}

type ReconcileFuture = Pin<Box<dyn Future<Output = Result<Action, ReconcileError>> + Send>>;

/// Runs the EndpointSlice controller until `cancel` fires.
pub async fn run(
    client: kube::Client,
    informers: Informers,
    cancel: CancellationToken,
) -> Result<(), ControllerError> {
    let (services, service_events) = informers.watch::<Service>();
    let (pods, pod_events) = informers.watch::<Pod>();
    let (slices, slice_events) = informers.watch::<EndpointSlice>();
    let queue = stream::select_all([
        service_events
            .map_ok(|s| vec![ObjectRef::from_obj(&*s)])
            .boxed(),
        pod_events
            .map_ok({
                let services = services.clone();
                let slices = slices.clone();
                move |pod| services_for_pod(&pod, &services, &slices)
            })
            .boxed(),
        slice_events
            .map_ok(|slice| service_of_slice(&slice).into_iter().collect())
            .boxed(),
    ])
    .map_ok(|refs| stream::iter(refs.into_iter().map(Ok::<_, watcher::Error>)))
    .try_flatten();
    let context = Arc::new(Context {
        client,
        pods,
        slices,
    });
    workqueue::named("endpoint_slice")
        .applier(
            |s, ctx| -> ReconcileFuture { Box::pin(reconcile(s, ctx)) },
            error_policy,
            context,
            services.store(),
            queue,
            Config::default(),
        )
        .take_until(cancel.cancelled())
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "endpointslice controller event");
            }
        })
        .await;
    Ok(())
}

#[cfg(test)]
mod tests;
