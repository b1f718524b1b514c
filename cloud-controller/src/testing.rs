//! Builders the unit tests share: a LoadBalancer Service and target nodes.

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};

use crate::nodes::TargetNode;

/// `shop/NAME`, of type LoadBalancer, with TCP `(port, nodePort)` pairs.
pub fn lb_service(name: &str, ports: &[(i32, i32)]) -> Service {
    let mut service = Service::default();
    service.metadata.namespace = Some("shop".into());
    service.metadata.name = Some(name.into());
    let ports = ports
        .iter()
        .map(|(port, node_port)| ServicePort {
            port: *port,
            node_port: Some(*node_port),
            protocol: Some("TCP".into()),
            ..Default::default()
        })
        .collect();
    service.spec = Some(ServiceSpec {
        type_: Some("LoadBalancer".into()),
        ports: Some(ports),
        ..Default::default()
    });
    service
}

/// A target node named `name` at `address`.
pub fn target(name: &str, address: &str) -> TargetNode {
    TargetNode {
        name: name.into(),
        address: address.parse().expect("test address"),
        provider_id: None,
    }
}
