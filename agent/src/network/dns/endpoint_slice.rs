//! The node's own EndpointSlice of the `kube-system/kube-dns` Service: one
//! endpoint, this node's DNS address, so the service proxy (with
//! `internalTrafficPolicy: Local`) sends each node's pods to their own
//! node's server. Written once the server is bound; removed on a clean stop.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, PostParams};

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

/// Creates or replaces node `node`'s slice.
pub async fn publish(client: kube::Client, node: &str, listen: SocketAddr) -> kube::Result<()> {
    let api: Api<EndpointSlice> = Api::namespaced(client, NAMESPACE);
    let mut slice = node_slice(node, listen);
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
    }
}
