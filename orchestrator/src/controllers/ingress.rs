//! The control side of berth's ingress (the node agents run the proxies):
//! makes sure the default IngressClass `berth` exists, and writes each
//! served Ingress's `status.loadBalancer.ingress` as the InternalIPs of the
//! Ready nodes whose proxies listen (the Node annotation
//! `berth.dev/ingress-ports`), as ingress-nginx publishes its pods' node
//! addresses without a LoadBalancer Service. Ingresses of other classes are
//! left alone.

use std::collections::{BTreeSet, HashSet};
use std::time::Duration;

use berth_api::kinds::networking::ingressclass::{ingress_served_by, DEFAULT_CLASS_ANNOTATION};
use berth_observability::events::{EventType, Recorder};
use futures::{stream, StreamExt};
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::cache::Cache;
use super::informers::Informers;
use super::ControllerError;

/// The name of the IngressClass berth creates.
pub const CLASS_NAME: &str = "berth";
pub use berth_api::kinds::networking::ingressclass::{
    BERTH_CONTROLLER as CONTROLLER, BERTH_PORTS_ANNOTATION as PORTS_ANNOTATION,
};
/// The component events are recorded under.
const COMPONENT: &str = "ingress-controller";
/// How long a burst of changes is gathered before statuses are compared.
const SETTLE: Duration = Duration::from_millis(100);

/// Runs the controller until `cancel` fires.
pub async fn run(
    client: kube::Client,
    informers: Informers,
    cancel: CancellationToken,
) -> Result<(), ControllerError> {
    ensure_default_class(&client, &cancel).await;
    let (ingresses, ingress_events) = changes::<Ingress>(&informers);
    let (classes, class_events) = changes::<IngressClass>(&informers);
    let (nodes, node_events) = changes::<Node>(&informers);
    let mut changes = std::pin::pin!(stream::select(
        ingress_events,
        stream::select(class_events, node_events)
    ));
    let recorder = Recorder::new(client.clone(), COMPONENT);
    let mut warned: HashSet<(String, i64)> = HashSet::new();
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            change = changes.next() => if change.is_none() { return Ok(()) },
        }
        tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            _ = tokio::time::sleep(SETTLE) => {}
        }
        if !(ingresses.is_ready() && classes.is_ready() && nodes.is_ready()) {
            continue;
        }
        let classes: Vec<IngressClass> = classes.state().iter().map(|c| (**c).clone()).collect();
        let nodes: Vec<Node> = nodes.state().iter().map(|n| (**n).clone()).collect();
        let addresses = addresses(&nodes);
        for ingress in ingresses.state() {
            if !ingress_served_by(&ingress, &classes, CONTROLLER) {
                continue;
            }
            if let Some(patch) = status_patch(&ingress, &addresses) {
                write_status(&client, &ingress, patch).await;
            }
            warn_unsupported(&recorder, &ingress, &mut warned).await;
        }
    }
}

/// The shared cache of every `K` and a stream of its changes.
fn changes<K>(informers: &Informers) -> (Cache<K>, impl futures::Stream<Item = ()> + Send)
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    let (store, changes) = informers.watch::<K>();
    (store, changes.map(|_| ()))
}

/// The IngressClass berth creates when none of its name exists: the
/// cluster's default, unless the user already made another class default.
pub fn default_class(other_default: bool) -> Value {
    let annotations = if other_default {
        json!({})
    } else {
        json!({DEFAULT_CLASS_ANNOTATION: "true"})
    };
    json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "IngressClass",
        "metadata": {"name": CLASS_NAME, "annotations": annotations},
        "spec": {"controller": CONTROLLER},
    })
}

/// Creates the IngressClass `berth` if it is missing (never touching one a
/// user created or edited), retrying while the API is not answering.
async fn ensure_default_class(client: &kube::Client, cancel: &CancellationToken) {
    let api: Api<IngressClass> = Api::all(client.clone());
    loop {
        let attempt = async {
            if api.get_opt(CLASS_NAME).await?.is_some() {
                return Ok(());
            }
            let other_default = api.list(&Default::default()).await?.items.iter().any(|c| {
                c.metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(DEFAULT_CLASS_ANNOTATION))
                    .is_some_and(|v| v == "true")
            });
            let class: IngressClass = serde_json::from_value(default_class(other_default))
                .expect("the default IngressClass is well-formed");
            match api.create(&PostParams::default(), &class).await {
                Ok(_) => {
                    tracing::info!(class = CLASS_NAME, "created the default IngressClass");
                    Ok(())
                }
                Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
                Err(e) => Err(e),
            }
        };
        match attempt.await {
            Ok(()) => return,
            Err(error) => tracing::debug!(%error, "creating the default IngressClass; retrying"),
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// The InternalIPs of the Ready nodes that announce ingress ports, sorted
/// and without duplicates.
pub fn addresses(nodes: &[Node]) -> Vec<String> {
    let mut addresses = BTreeSet::new();
    for node in nodes {
        let serving = node
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(PORTS_ANNOTATION))
            .is_some_and(|ports| !ports.trim().is_empty());
        let status = node.status.as_ref();
        let is_ready = status
            .and_then(|s| s.conditions.as_ref())
            .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
            .is_some_and(|c| c.status == "True");
        if !(serving && is_ready) {
            continue;
        }
        addresses.extend(
            status
                .and_then(|s| s.addresses.as_ref())
                .into_iter()
                .flatten()
                .filter(|a| a.type_ == "InternalIP")
                .map(|a| a.address.clone()),
        );
    }
    addresses.into_iter().collect()
}

/// The status patch that makes `ingress` list `addresses`, or `None`
/// when it already does.
pub fn status_patch(ingress: &Ingress, addresses: &[String]) -> Option<Value> {
    let current: Vec<String> = ingress
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|i| i.ip.clone().or_else(|| i.hostname.clone()))
        .collect();
    if current == addresses {
        return None;
    }
    let entries: Vec<Value> = addresses.iter().map(|ip| json!({"ip": ip})).collect();
    let entries = (!entries.is_empty()).then_some(entries);
    Some(json!({"status": {"loadBalancer": {"ingress": entries}}}))
}

async fn write_status(client: &kube::Client, ingress: &Ingress, patch: Value) {
    let (Some(namespace), Some(name)) = (&ingress.metadata.namespace, &ingress.metadata.name)
    else {
        return;
    };
    let api: Api<Ingress> = Api::namespaced(client.clone(), namespace);
    match api
        .patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => tracing::debug!(%namespace, %name, "ingress status updated"),
        Err(error) => tracing::debug!(%namespace, %name, %error, "updating ingress status"),
    }
}

/// The resource backends of `ingress` (berth routes only to Services).
pub fn resource_backends(ingress: &Ingress) -> Vec<String> {
    let Some(spec) = &ingress.spec else {
        return Vec::new();
    };
    let paths = spec
        .rules
        .iter()
        .flatten()
        .flat_map(|r| r.http.iter().flat_map(|h| &h.paths))
        .map(|p| &p.backend);
    spec.default_backend
        .iter()
        .chain(paths)
        .filter_map(|b| b.resource.as_ref())
        .map(|r| format!("{}/{}", r.kind, r.name))
        .collect()
}

/// Records a Warning event, once per generation, when `ingress` has
/// resource backends.
async fn warn_unsupported(
    recorder: &Recorder,
    ingress: &Ingress,
    warned: &mut HashSet<(String, i64)>,
) {
    let unsupported = resource_backends(ingress);
    if unsupported.is_empty() {
        return;
    }
    let key = (
        ingress.metadata.uid.clone().unwrap_or_default(),
        ingress.metadata.generation.unwrap_or_default(),
    );
    if !warned.insert(key) {
        return;
    }
    let message = format!(
        "resource backends are not supported by IngressClass {CLASS_NAME}; requests to them get 503: {}",
        unsupported.join(", ")
    );
    recorder
        .record(ingress, EventType::Warning, "UnsupportedBackend", &message)
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, ports: Option<&str>, ready: &str, ips: &[&str]) -> Node {
        let mut obj = json!({
            "metadata": {"name": name},
            "status": {
                "conditions": [{"type": "Ready", "status": ready}],
                "addresses": ips.iter().map(|ip| json!({"type": "InternalIP", "address": ip}))
                    .chain([json!({"type": "Hostname", "address": name})])
                    .collect::<Vec<_>>(),
            },
        });
        if let Some(ports) = ports {
            obj["metadata"]["annotations"] = json!({PORTS_ANNOTATION: ports});
        }
        serde_json::from_value(obj).unwrap()
    }

    #[test]
    fn addresses_are_ready_serving_nodes_sorted_and_unique() {
        let nodes = [
            node("b", Some("80,443"), "True", &["10.0.0.2"]),
            node("a", Some("80"), "True", &["10.0.0.1", "10.0.0.2"]),
            node("off", None, "True", &["10.0.0.3"]),
            node("empty", Some(""), "True", &["10.0.0.4"]),
            node("down", Some("80"), "False", &["10.0.0.5"]),
            node("unknown", Some("80"), "Unknown", &["10.0.0.6"]),
        ];
        assert_eq!(addresses(&nodes), ["10.0.0.1", "10.0.0.2"]);
        assert!(addresses(&[]).is_empty());
    }

    #[test]
    fn status_is_rewritten_only_on_change() {
        let ingress = |ips: Option<&[&str]>| -> Ingress {
            let mut obj = json!({"metadata": {"name": "i", "namespace": "ns"}, "spec": {}});
            if let Some(ips) = ips {
                obj["status"] = json!({"loadBalancer": {"ingress":
                    ips.iter().map(|ip| json!({"ip": ip})).collect::<Vec<_>>()}});
            }
            serde_json::from_value(obj).unwrap()
        };
        let want = vec!["10.0.0.1".to_owned(), "10.0.0.2".to_owned()];
        let cases = [
            (ingress(None), want.clone(), true),
            (
                ingress(Some(&["10.0.0.1", "10.0.0.2"])),
                want.clone(),
                false,
            ),
            (ingress(Some(&["10.0.0.2", "10.0.0.1"])), want.clone(), true),
            (ingress(Some(&["10.0.0.1"])), want.clone(), true),
            (ingress(None), vec![], false),
            (ingress(Some(&[])), vec![], false),
            (ingress(Some(&["10.0.0.1"])), vec![], true),
        ];
        for (i, (ingress, addresses, changes)) in cases.into_iter().enumerate() {
            assert_eq!(
                status_patch(&ingress, &addresses).is_some(),
                changes,
                "case {i}"
            );
        }
        assert_eq!(
            status_patch(&ingress(None), &want).unwrap(),
            json!({"status": {"loadBalancer": {"ingress": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}]}}})
        );
        assert_eq!(
            status_patch(&ingress(Some(&["10.0.0.1"])), &[]).unwrap(),
            json!({"status": {"loadBalancer": {"ingress": null}}})
        );
    }

    #[test]
    fn the_default_class_is_default_unless_another_is_and_resource_backends_are_found() {
        let class = default_class(false);
        assert_eq!(
            class["metadata"]["annotations"][DEFAULT_CLASS_ANNOTATION],
            "true"
        );
        assert_eq!(class["spec"]["controller"], CONTROLLER);
        assert!(default_class(true)["metadata"]["annotations"]
            .get(DEFAULT_CLASS_ANNOTATION)
            .is_none());
        let ingress: Ingress = serde_json::from_value(json!({
            "metadata": {"name": "i", "namespace": "ns"},
            "spec": {
                "defaultBackend": {"resource": {"apiGroup": "k8s.example.com", "kind": "StorageBucket", "name": "static"}},
                "rules": [{"http": {"paths": [
                    {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "s", "port": {"number": 80}}}},
                    {"path": "/icons", "pathType": "Prefix", "backend": {"resource": {"kind": "Bucket", "name": "icons"}}},
                ]}}],
            },
        }))
        .unwrap();
        assert_eq!(
            resource_backends(&ingress),
            ["StorageBucket/static", "Bucket/icons"]
        );
    }
}
