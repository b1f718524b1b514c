//! The Endpoints controller (upstream's `pkg/controller/endpoint`): for every
//! Service with a selector, a core/v1 Endpoints object of the same name listing
//! the selected pods' IPs and resolved ports, ready ones under `addresses` and
//! the others under `notReadyAddresses`, and deletes it with the Service.
//! Endpoints of Services without a selector belong to the user and are never
//! touched; nothing is written when the object already says the right thing.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use berth_observability::workqueue;
use futures::channel::mpsc;
use futures::{stream, Future, StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{
    EndpointAddress, EndpointPort, EndpointSubset, Endpoints, ObjectReference, Pod, Service,
    ServicePort,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Api, DeleteParams, PostParams, Preconditions};
use kube::runtime::controller::{Action, Config};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::ResourceExt;
use tokio_util::sync::CancellationToken;

use super::cache::Cache;
use super::informers::Informers;
use super::ControllerError;

/// The label upstream (1.33+) puts on the Endpoints it manages; only those are
/// deleted when their Service is gone.
pub const LABEL_MANAGED_BY: &str = "endpoints.kubernetes.io/managed-by";
/// The value of [`LABEL_MANAGED_BY`] on Endpoints this controller writes.
pub const CONTROLLER_NAME: &str = "endpoint-controller";
/// The label marking objects derived from a headless Service (no cluster IP).
pub const LABEL_HEADLESS: &str = "service.kubernetes.io/headless";

/// Whether `pod` is one of the pods `service` selects: same namespace and
/// every selector pair among the pod's labels. A Service without a selector
/// selects nothing (its endpoints are managed by hand); an empty selector
/// selects every pod, as upstream's `labels.Set{}` does.
pub fn service_selects(service: &Service, pod: &Pod) -> bool {
    let Some(selector) = service.spec.as_ref().and_then(|s| s.selector.as_ref()) else {
        return false;
    };
    if service.metadata.namespace != pod.metadata.namespace {
        return false;
    }
    let labels = pod.metadata.labels.as_ref();
    selector
        .iter()
        .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
}

/// Whether this controller (and the EndpointSlice one) derives endpoints for
/// `service`: it has a selector and is not an ExternalName alias.
pub fn service_is_managed(service: &Service) -> bool {
    service
        .spec
        .as_ref()
        .is_some_and(|s| s.selector.is_some() && s.type_.as_deref() != Some("ExternalName"))
}

/// Whether `service` has no cluster IP (`None` or unset): its Endpoints and
/// slices carry [`LABEL_HEADLESS`].
pub fn service_is_headless(service: &Service) -> bool {
    let ip = service.spec.as_ref().and_then(|s| s.cluster_ip.as_deref());
    matches!(ip, None | Some("") | Some("None"))
}

/// The pod's IPv4 address, if it has one (the only address family served).
pub fn pod_ipv4(pod: &Pod) -> Option<String> {
    let status = pod.status.as_ref()?;
    let listed = status.pod_ips.as_deref().unwrap_or_default();
    listed
        .iter()
        .map(|p| p.ip.as_str())
        .chain(status.pod_ip.as_deref())
        .find(|ip| ip.parse::<Ipv4Addr>().is_ok())
        .map(str::to_owned)
}

/// Upstream's `ShouldPodBeInEndpoints`: the pod has an IP, is not being
/// deleted (unless `include_terminating`), and has not finished for good
/// under its restart policy.
pub fn pod_should_be_in_endpoints(pod: &Pod, include_terminating: bool) -> bool {
    if pod_ipv4(pod).is_none() {
        return false;
    }
    if !include_terminating && pod.metadata.deletion_timestamp.is_some() {
        return false;
    }
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    let restart = pod.spec.as_ref().and_then(|s| s.restart_policy.as_deref());
    match restart {
        Some("Never") => !matches!(phase, Some("Failed" | "Succeeded")),
        Some("OnFailure") => phase != Some("Succeeded"),
        _ => true,
    }
}

/// Whether the pod's Ready condition is True.
pub fn pod_is_ready(pod: &Pod) -> bool {
    super::workload::pod_is_ready(pod)
}

/// Upstream's `podutil.FindPort`: the container port a Service port reaches
/// on `pod` — the targetPort number itself, or the named container port with
/// the same protocol (sidecar init containers included). An unset targetPort
/// means the Service port's number.
pub fn find_port(pod: &Pod, port: &ServicePort) -> Option<i32> {
    let protocol = port.protocol.as_deref().unwrap_or("TCP");
    match &port.target_port {
        None => Some(port.port),
        Some(IntOrString::Int(n)) => Some(*n),
        Some(IntOrString::String(name)) => {
            let spec = pod.spec.as_ref()?;
            let sidecars = spec
                .init_containers
                .as_deref()
                .unwrap_or_default()
                .iter()
                .filter(|c| c.restart_policy.as_deref() == Some("Always"));
            spec.containers
                .iter()
                .chain(sidecars)
                .flat_map(|c| c.ports.as_deref().unwrap_or_default())
                .find(|p| {
                    p.name.as_deref() == Some(name.as_str())
                        && p.protocol.as_deref().unwrap_or("TCP") == protocol
                })
                .map(|p| p.container_port)
        }
    }
}

/// The hostname a pod is published under, when its `subdomain` names the
/// Service (upstream's `ShouldSetHostname`).
pub fn pod_hostname(pod: &Pod, service: &Service) -> Option<String> {
    let spec = pod.spec.as_ref()?;
    let hostname = spec.hostname.as_deref().filter(|h| !h.is_empty())?;
    let matches = spec.subdomain.as_deref() == service.metadata.name.as_deref()
        && pod.metadata.namespace == service.metadata.namespace;
    matches.then(|| hostname.to_owned())
}

/// The `targetRef` naming a pod.
pub fn pod_reference(pod: &Pod) -> ObjectReference {
    ObjectReference {
        kind: Some("Pod".into()),
        name: pod.metadata.name.clone(),
        namespace: pod.metadata.namespace.clone(),
        uid: pod.metadata.uid.clone(),
        ..Default::default()
    }
}

/// The labels derived objects carry: the Service's own, plus
/// [`LABEL_HEADLESS`] exactly when the Service is headless.
pub fn service_labels(service: &Service) -> BTreeMap<String, String> {
    let mut labels = service.metadata.labels.clone().unwrap_or_default();
    if service_is_headless(service) {
        labels.insert(LABEL_HEADLESS.into(), String::new());
    } else {
        labels.remove(LABEL_HEADLESS);
    }
    labels
}

/// Ports sort and group by (name, port, protocol, appProtocol).
type PortKey = (String, i32, String, String);

fn port_key(port: &EndpointPort) -> PortKey {
    (
        port.name.clone().unwrap_or_default(),
        port.port,
        port.protocol.clone().unwrap_or_default(),
        port.app_protocol.clone().unwrap_or_default(),
    )
}

/// An address is identified by its IP and the pod it points at.
type AddressKey = (String, String);

fn address_key(address: &EndpointAddress) -> AddressKey {
    let uid = address
        .target_ref
        .as_ref()
        .and_then(|r| r.uid.clone())
        .unwrap_or_default();
    (address.ip.clone(), uid)
}

/// The subsets `service` should have over `pods` (the cached pods; those not
/// selected are ignored), packed as upstream's `RepackSubsets` packs them:
/// addresses offering the same ports share one subset, an address not ready
/// on any port is not ready on it, and everything is sorted so the result is
/// the same whatever order the pods came in.
pub fn desired_subsets(service: &Service, pods: &[&Pod]) -> Vec<EndpointSubset> {
    let Some(spec) = service.spec.as_ref() else {
        return Vec::new();
    };
    let publish_not_ready = spec.publish_not_ready_addresses.unwrap_or(false);
    let service_ports = spec.ports.as_deref().unwrap_or_default();
    // Port (None: the no-port sentinel of a headless Service) → address → ready.
    let mut by_port: BTreeMap<Option<PortKey>, BTreeMap<AddressKey, bool>> = BTreeMap::new();
    let mut addresses: BTreeMap<AddressKey, EndpointAddress> = BTreeMap::new();
    let mut ports: BTreeMap<PortKey, EndpointPort> = BTreeMap::new();
    for pod in pods.iter().filter(|p| service_selects(service, p)) {
        if !pod_should_be_in_endpoints(pod, publish_not_ready) {
            continue;
        }
        let Some(ip) = pod_ipv4(pod) else { continue };
        let address = EndpointAddress {
            ip,
            hostname: pod_hostname(pod, service),
            node_name: pod.spec.as_ref().and_then(|s| s.node_name.clone()),
            target_ref: Some(pod_reference(pod)),
        };
        let key = address_key(&address);
        let ready = publish_not_ready || pod_is_ready(pod);
        let mut offered: Vec<Option<PortKey>> = Vec::new();
        if service_ports.is_empty() {
            if spec.cluster_ip.as_deref() == Some("None") {
                offered.push(None);
            }
        } else {
            for service_port in service_ports {
                let Some(number) = find_port(pod, service_port) else {
                    continue;
                };
                let port = EndpointPort {
                    name: service_port.name.clone().filter(|n| !n.is_empty()),
                    port: number,
                    protocol: Some(
                        service_port
                            .protocol
                            .clone()
                            .unwrap_or_else(|| "TCP".into()),
                    ),
                    app_protocol: service_port.app_protocol.clone(),
                };
                let pk = port_key(&port);
                ports.insert(pk.clone(), port);
                offered.push(Some(pk));
            }
        }
        if offered.is_empty() {
            continue;
        }
        addresses.entry(key.clone()).or_insert(address);
        for port in offered {
            let seen = by_port.entry(port).or_default();
            // Not ready on any port trumps ready.
            let entry = seen.entry(key.clone()).or_insert(ready);
            *entry = *entry && ready;
        }
    }
    // Group ports by the exact set of (address, readiness) offering them.
    let mut by_addresses: BTreeMap<Vec<(AddressKey, bool)>, Vec<EndpointPort>> = BTreeMap::new();
    for (port, members) in by_port {
        let set: Vec<(AddressKey, bool)> = members.into_iter().collect();
        let group = by_addresses.entry(set).or_default();
        if let Some(port) = port {
            group.push(ports[&port].clone());
        }
    }
    by_addresses
        .into_iter()
        .map(|(members, ports)| {
            let pick = |want: bool| -> Option<Vec<EndpointAddress>> {
                let list: Vec<_> = members
                    .iter()
                    .filter(|(_, ready)| *ready == want)
                    .map(|(key, _)| addresses[key].clone())
                    .collect();
                (!list.is_empty()).then_some(list)
            };
            EndpointSubset {
                addresses: pick(true),
                not_ready_addresses: pick(false),
                ports: (!ports.is_empty()).then_some(ports),
            }
        })
        .collect()
}

/// The Endpoints object `service` should have, built on `current` when there
/// is one (its annotations and resourceVersion are kept).
pub fn desired_endpoints(
    service: &Service,
    pods: &[&Pod],
    current: Option<&Endpoints>,
) -> Endpoints {
    let mut labels = service_labels(service);
    labels.insert(LABEL_MANAGED_BY.into(), CONTROLLER_NAME.into());
    let subsets = desired_subsets(service, pods);
    let mut endpoints = current.cloned().unwrap_or_else(|| Endpoints {
        metadata: ObjectMeta {
            name: service.metadata.name.clone(),
            namespace: service.metadata.namespace.clone(),
            ..Default::default()
        },
        subsets: None,
    });
    endpoints.metadata.labels = Some(labels);
    endpoints.metadata.managed_fields = None;
    endpoints.subsets = (!subsets.is_empty()).then_some(subsets);
    endpoints
}

/// Subsets with empty lists and absent ones made alike, so an object read
/// back from the server compares equal to the one written.
fn canonical_subsets(subsets: Option<&Vec<EndpointSubset>>) -> Vec<EndpointSubset> {
    fn nonempty<T: Clone>(v: &Option<Vec<T>>) -> Option<Vec<T>> {
        v.clone().filter(|v| !v.is_empty())
    }
    subsets
        .map(|all| {
            all.iter()
                .map(|s| EndpointSubset {
                    addresses: nonempty(&s.addresses),
                    not_ready_addresses: nonempty(&s.not_ready_addresses),
                    ports: nonempty(&s.ports),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Whether writing `desired` over `current` would change anything a reader sees.
pub fn endpoints_differ(current: &Endpoints, desired: &Endpoints) -> bool {
    current.metadata.labels.clone().unwrap_or_default()
        != desired.metadata.labels.clone().unwrap_or_default()
        || canonical_subsets(current.subsets.as_ref())
            != canonical_subsets(desired.subsets.as_ref())
}

struct Context {
    client: kube::Client,
    services: Cache<Service>,
    pods: Cache<Pod>,
    endpoints: Cache<Endpoints>,
}

#[derive(Debug, thiserror::Error)]
enum ReconcileError {
    #[error("{0}")]
    Api(#[from] kube::Error),
    #[error("a cache closed before its first list completed")]
    CacheClosed,
}

/// Waits until every cache the controller reads has completed its first list.
async fn caches_ready(ctx: &Context) -> Result<(), ReconcileError> {
    for ready in [
        ctx.services.ready().await,
        ctx.pods.ready().await,
        ctx.endpoints.ready().await,
    ] {
        ready.map_err(|_| ReconcileError::CacheClosed)?;
    }
    Ok(())
}

/// Brings the Service's Endpoints to the desired state: one create or one
/// replace (guarded by resourceVersion), or nothing when already right.
async fn reconcile(service: Arc<Service>, ctx: Arc<Context>) -> Result<Action, ReconcileError> {
    caches_ready(&ctx).await?;
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
    let current = ctx.endpoints.get(&ObjectRef::new(&name).within(&namespace));
    let desired = desired_endpoints(&service, &selected, current.as_deref());
    let api: Api<Endpoints> = Api::namespaced(ctx.client.clone(), &namespace);
    let result = match current.as_deref() {
        None => api
            .create(&PostParams::default(), &desired)
            .await
            .map(|_| ()),
        Some(current) if endpoints_differ(current, &desired) => api
            .replace(&name, &PostParams::default(), &desired)
            .await
            .map(|_| ()),
        Some(_) => Ok(()),
    };
    match result {
        Ok(()) => Ok(Action::await_change()),
        // The cache is behind the server: come back when it has caught up.
        Err(kube::Error::Api(s)) if s.code == 409 || s.code == 404 => {
            Ok(Action::requeue(Duration::from_millis(200)))
        }
        Err(e) => Err(e.into()),
    }
}

/// Deletes managed Endpoints whose Service is gone (upstream deletes them on
/// the Service's deletion and sweeps leftovers at start-up).
async fn reconcile_orphan(
    endpoints: Arc<Endpoints>,
    ctx: Arc<Context>,
) -> Result<Action, ReconcileError> {
    caches_ready(&ctx).await?;
    let managed = endpoints
        .labels()
        .get(LABEL_MANAGED_BY)
        .is_some_and(|v| v == CONTROLLER_NAME);
    let namespace = endpoints.namespace().unwrap_or_default();
    let name = endpoints.name_any();
    let service = ctx.services.get(&ObjectRef::new(&name).within(&namespace));
    if !managed || service.is_some() || endpoints.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let api: Api<Endpoints> = Api::namespaced(ctx.client.clone(), &namespace);
    let params = DeleteParams {
        preconditions: Some(Preconditions {
            uid: endpoints.uid(),
            resource_version: None,
        }),
        ..Default::default()
    };
    match api.delete(&name, &params).await {
        Ok(_) => {
            tracing::info!(endpoints = %format!("{namespace}/{name}"), "deleted endpoints of a deleted service");
            Ok(Action::await_change())
        }
        Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => Ok(Action::await_change()),
        Err(e) => Err(e.into()),
    }
}

fn error_policy<K: kube::Resource>(
    object: Arc<K>,
    error: &ReconcileError,
    _ctx: Arc<Context>,
) -> Action {
    tracing::warn!(name = %object.meta().name.clone().unwrap_or_default(), %error, "endpoints reconcile failed");
    Action::requeue(Duration::from_secs(2))
}

/// The Services a pod event should wake: those selecting it now, and those
/// whose Endpoints still list it (it stopped matching or went away).
fn services_for_pod(
    pod: &Pod,
    services: &Store<Service>,
    endpoints: &Store<Endpoints>,
) -> Vec<ObjectRef<Service>> {
    let name = pod.metadata.name.as_deref();
    let mut refs: Vec<ObjectRef<Service>> = services
        .state()
        .iter()
        .filter(|s| service_selects(s, pod))
        .map(|s| ObjectRef::from_obj(s.as_ref()))
        .collect();
    for ep in endpoints.state() {
        if ep.metadata.namespace != pod.metadata.namespace {
            continue;
        }
        let lists_pod = ep.subsets.as_deref().unwrap_or_default().iter().any(|s| {
            s.addresses
                .iter()
                .chain(s.not_ready_addresses.iter())
                .flatten()
                .any(|a| a.target_ref.as_ref().and_then(|r| r.name.as_deref()) == name)
        });
        if lists_pod {
            let r = ObjectRef::new(&ep.name_any()).within(&ep.namespace().unwrap_or_default());
            if !refs.contains(&r) {
                refs.push(r);
            }
        }
    }
    refs
}

type ReconcileFuture = Pin<Box<dyn Future<Output = Result<Action, ReconcileError>> + Send>>;

/// Runs the Endpoints controller until `cancel` fires: one applier keeps each
/// Service's Endpoints right, another deletes those whose Service is gone.
pub async fn run(
    client: kube::Client,
    informers: Informers,
    cancel: CancellationToken,
) -> Result<(), ControllerError> {
    let (services, service_events) = informers.watch::<Service>();
    let (pods, pod_events) = informers.watch::<Pod>();
    let (endpoints, endpoints_events) = informers.watch::<Endpoints>();
    // Service events also wake the orphan sweep for the Endpoints of that name.
    let (orphan_tx, orphan_rx) = mpsc::unbounded::<ObjectRef<Endpoints>>();
    let (endpoints_tx, endpoints_rx) = mpsc::unbounded::<ObjectRef<Endpoints>>();
    let queue = stream::select_all([
        service_events
            .map_ok(move |s| {
                let r = ObjectRef::new(&s.name_any()).within(&s.namespace().unwrap_or_default());
                let _ = orphan_tx.unbounded_send(r);
                vec![ObjectRef::from_obj(&*s)]
            })
            .boxed(),
        pod_events
            .map_ok({
                let services = services.clone();
                let endpoints = endpoints.clone();
                move |pod| services_for_pod(&pod, &services, &endpoints)
            })
            .boxed(),
        endpoints_events
            .map_ok(move |ep| {
                let _ = endpoints_tx.unbounded_send(ObjectRef::from_obj(&ep));
                vec![ObjectRef::new(&ep.name_any()).within(&ep.namespace().unwrap_or_default())]
            })
            .boxed(),
    ])
    .map_ok(|refs| stream::iter(refs.into_iter().map(Ok::<_, watcher::Error>)))
    .try_flatten();
    let context = Arc::new(Context {
        client,
        services: services.clone(),
        pods,
        endpoints: endpoints.clone(),
    });
    let sync = workqueue::named("endpoint")
        .applier(
            |s, ctx| -> ReconcileFuture { Box::pin(reconcile(s, ctx)) },
            error_policy,
            context.clone(),
            services.store(),
            queue,
            Config::default(),
        )
        .take_until(cancel.cancelled())
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "endpoints controller event");
            }
        });
    let orphans = stream::select(orphan_rx, endpoints_rx).map(Ok::<_, watcher::Error>);
    let sweep = workqueue::named("endpoint_orphans")
        .applier(
            |ep, ctx| -> ReconcileFuture { Box::pin(reconcile_orphan(ep, ctx)) },
            error_policy,
            context,
            endpoints.store(),
            orphans,
            Config::default(),
        )
        .take_until(cancel.cancelled())
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "endpoints sweep event");
            }
        });
    futures::join!(sync, sweep);
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests;
