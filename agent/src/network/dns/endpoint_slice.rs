//! The node's own EndpointSlice of the `kube-system/kube-dns` Service: one
//! endpoint, this node's DNS address, so the service proxy (with
//! `internalTrafficPolicy: Local`) sends each node's pods to their own
//! node's server. Written once the server is bound; removed on a clean stop.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use k8s_openapi::api::core::v1::Node;
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Api, DeleteParams, PostParams};
use tokio_util::sync::CancellationToken;

/// The namespace of the DNS Service.
pub const NAMESPACE: &str = "kube-system";
/// The DNS Service's name, as upstream names it.
pub const SERVICE: &str = "kube-dns";
/// Who manages these slices (the endpointslice controller leaves them alone).
pub const MANAGED_BY: &str = "berth-agent";

/// The slice's name for node `node`.
pub fn name(node: &str) -> String {
    format!("{SERVICE}-{node}")
}

/// Node `node`'s slice with its DNS server at `listen`.
pub fn node_slice(node: &str, listen: SocketAddr) -> EndpointSlice {
    let port = |name: &str, protocol: &str| EndpointPort {
        name: Some(name.to_owned()),
        port: Some(i32::from(listen.port())),
        protocol: Some(protocol.to_owned()),
        ..EndpointPort::default()
    };
    EndpointSlice {
        metadata: ObjectMeta {
            name: Some(name(node)),
            namespace: Some(NAMESPACE.to_owned()),
            labels: Some(BTreeMap::from([
                ("kubernetes.io/service-name".to_owned(), SERVICE.to_owned()),
                (
                    "endpointslice.kubernetes.io/managed-by".to_owned(),
                    MANAGED_BY.to_owned(),
                ),
            ])),
            ..ObjectMeta::default()
        },
        address_type: if listen.is_ipv4() { "IPv4" } else { "IPv6" }.to_owned(),
        endpoints: vec![Endpoint {
            addresses: vec![listen.ip().to_string()],
            conditions: Some(EndpointConditions {
                ready: Some(true),
                serving: Some(true),
                terminating: Some(false),
            }),
            node_name: Some(node.to_owned()),
            ..Endpoint::default()
        }],
        ports: Some(vec![port("dns", "UDP"), port("dns-tcp", "TCP")]),
    }
}

/// Makes the Node `node` (uid `uid`) the slice's owner, so the garbage
/// collector removes the slice when the Node is deleted, clean stop or not.
pub fn owned_by_node(slice: &mut EndpointSlice, node: &str, uid: &str) {
    slice.metadata.owner_references = Some(vec![OwnerReference {
        api_version: "v1".to_owned(),
        kind: "Node".to_owned(),
        name: node.to_owned(),
        uid: uid.to_owned(),
        ..OwnerReference::default()
    }]);
}

/// Creates or replaces node `node`'s slice, owned by the Node (uid `uid`).
pub async fn publish(
    client: kube::Client,
    node: &str,
    uid: &str,
    listen: SocketAddr,
) -> kube::Result<()> {
    let mut slice = node_slice(node, listen);
    owned_by_node(&mut slice, node, uid);
    let api: Api<EndpointSlice> = Api::namespaced(client, NAMESPACE);
    match api.create(&PostParams::default(), &slice).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 409 => {
            let current = api.get(&name(node)).await?;
            slice.metadata.resource_version = current.metadata.resource_version;
            api.replace(&name(node), &PostParams::default(), &slice)
                .await
                .map(|_| ())
        }
        Err(e) => Err(e),
    }
}

/// Publishes node `node`'s slice once its Node is registered, retrying with
/// back-off until it is written or `cancel` fires.
pub async fn keep_trying_to_publish(
    client: kube::Client,
    node: &str,
    listen: SocketAddr,
    cancel: &CancellationToken,
) {
    let mut delay = Duration::from_millis(250);
    loop {
        match Api::<Node>::all(client.clone()).get_opt(node).await {
            Ok(Some(found)) => {
                let uid = found.metadata.uid.unwrap_or_default();
                match publish(client.clone(), node, &uid, listen).await {
                    Ok(()) => return,
                    Err(error) => {
                        tracing::warn!(%error, "publishing the node's kube-dns endpoint failed")
                    }
                }
            }
            Ok(None) => tracing::debug!("the Node is not registered yet"),
            Err(error) => tracing::warn!(%error, "reading the Node failed"),
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(Duration::from_secs(10));
    }
}

/// Deletes node `node`'s slice (gone already is fine).
pub async fn withdraw(client: kube::Client, node: &str) -> kube::Result<()> {
    let api: Api<EndpointSlice> = Api::namespaced(client, NAMESPACE);
    match api.delete(&name(node), &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_slice_names_the_node_and_both_ports() {
        let slice = node_slice("n1", "10.0.0.5:53".parse().unwrap());
        let value = serde_json::to_value(&slice).unwrap();
        assert_eq!(value["metadata"]["name"], "kube-dns-n1");
        assert_eq!(
            value["metadata"]["labels"]["kubernetes.io/service-name"],
            "kube-dns"
        );
        assert_eq!(value["endpoints"][0]["addresses"][0], "10.0.0.5");
        assert_eq!(value["endpoints"][0]["nodeName"], "n1");
        assert_eq!(value["endpoints"][0]["conditions"]["ready"], true);
        assert_eq!(value["ports"][0]["name"], "dns");
        assert_eq!(value["ports"][1]["protocol"], "TCP");
        let mut owned = slice;
        owned_by_node(&mut owned, "n1", "uid-1");
        let value = serde_json::to_value(&owned).unwrap();
        assert_eq!(value["metadata"]["ownerReferences"][0]["kind"], "Node");
        assert_eq!(value["metadata"]["ownerReferences"][0]["uid"], "uid-1");
    }
}
