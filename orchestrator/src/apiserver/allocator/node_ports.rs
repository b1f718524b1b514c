//! NodePorts and `healthCheckNodePort`s: which a Service holds, and
//! handing them out from the NodePort range as upstream does (the one asked
//! for, else the one the same port held before, else a free one).

use rand::Rng;
use serde_json::{json, Value};

use super::{rejected, Allocation, Allocator, PORT_PREFIX};
use crate::apiserver::errors::{ApiError, FieldCause};

/// The first and last NodePort (upstream's default range).
pub const NODE_PORT_RANGE: (u16, u16) = (30000, 32767);

/// `(port, protocol, nodePort)` of every port of a Service that has a node port.
pub(super) fn node_ports(service: Option<&Value>) -> Vec<(i64, String, u16)> {
    service
        .and_then(|s| s.pointer("/spec/ports"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| {
            let node_port = u16::try_from(p.get("nodePort")?.as_u64()?).ok()?;
            let port = p.get("port").and_then(Value::as_i64).unwrap_or(0);
            let protocol = p
                .get("protocol")
                .and_then(Value::as_str)
                .unwrap_or("TCP")
                .to_owned();
            Some((port, protocol, node_port))
        })
        .collect()
}

/// The `healthCheckNodePort` a Service holds, if any.
pub(super) fn health_check_port(service: Option<&Value>) -> Option<u16> {
    service?
        .pointer("/spec/healthCheckNodePort")
        .and_then(Value::as_u64)
        .and_then(|p| u16::try_from(p).ok())
        .filter(|p| *p != 0)
}

impl Allocator {
    /// Gives a NodePort/LoadBalancer Service its node ports, and a
    /// LoadBalancer with `externalTrafficPolicy: Local` its health check port.
    pub(super) async fn allocate_node_ports(
        &self,
        obj: &mut Value,
        previous: Option<&Value>,
        allocation: &mut Allocation,
    ) -> Result<(), ApiError> {
        self.allocate_port_numbers(obj, previous, allocation)
            .await?;
        self.allocate_health_check_port(obj, previous, allocation)
            .await
    }

    /// `spec.healthCheckNodePort`, as upstream keeps it: only for a
    /// LoadBalancer with `externalTrafficPolicy: Local`; the one asked for,
    /// else the one held before, else a free one from the NodePort range.
    pub(super) async fn allocate_health_check_port(
        &self,
        obj: &mut Value,
        previous: Option<&Value>,
        allocation: &mut Allocation,
    ) -> Result<(), ApiError> {
        let wanted_here = obj.pointer("/spec/type").and_then(Value::as_str) == Some("LoadBalancer")
            && obj
                .pointer("/spec/externalTrafficPolicy")
                .and_then(Value::as_str)
                == Some("Local");
        let held = health_check_port(previous);
        let asked = health_check_port(Some(obj));
        if !wanted_here {
            if let Some(asked) = asked.filter(|p| Some(*p) != held) {
                return Err(rejected(
                    obj,
                    FieldCause::invalid(
                        "spec.healthCheckNodePort",
                        &json!(asked),
                        "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'",
                    ),
                ));
            }
            if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
                spec.remove("healthCheckNodePort");
            }
            return Ok(());
        }
        let port = match (asked, held) {
            (Some(asked), Some(held)) if asked == held => held,
            (None, Some(held)) => held,
            (None, None) => self.allocate_port(obj, allocation).await?,
            (Some(asked), _) => {
                if !(NODE_PORT_RANGE.0..=NODE_PORT_RANGE.1).contains(&asked) {
                    return Err(rejected(obj, FieldCause::invalid(
                        "spec.healthCheckNodePort",
                        &json!(asked),
                        "provided port is not in the valid range. The range of valid ports is 30000-32767",
                    )));
                }
                let key = format!("{PORT_PREFIX}{asked}");
                if !self.claim(key.clone(), obj).await? {
                    return Err(rejected(
                        obj,
                        FieldCause::invalid(
                            "spec.healthCheckNodePort",
                            &json!(asked),
                            "provided port is already allocated",
                        ),
                    ));
                }
                allocation.keys.push(key);
                asked
            }
        };
        obj["spec"]["healthCheckNodePort"] = json!(port);
        Ok(())
    }

    /// Gives every port of a NodePort/LoadBalancer Service a node port: the one
    /// asked for, else the one the same port had before (`previous`), else a free one.
    pub(super) async fn allocate_port_numbers(
        &self,
        obj: &mut Value,
        previous: Option<&Value>,
        allocation: &mut Allocation,
    ) -> Result<(), ApiError> {
        let service_type = super::service_type(obj);
        let held = node_ports(previous);
        let ports = obj
            .pointer("/spec/ports")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if !matches!(service_type.as_str(), "NodePort" | "LoadBalancer") {
            for (i, port) in ports.iter().enumerate() {
                let wanted = port.get("nodePort").and_then(Value::as_u64).unwrap_or(0);
                if wanted != 0 && !held.iter().any(|(_, _, p)| u64::from(*p) == wanted) {
                    return Err(rejected(
                        obj,
                        FieldCause::forbidden(
                            format!("spec.ports[{i}].nodePort"),
                            format!("may not be used when `type` is '{service_type}'"),
                        ),
                    ));
                }
            }
            let stripped: Vec<Value> = ports
                .into_iter()
                .map(|mut p| {
                    if let Some(map) = p.as_object_mut() {
                        map.remove("nodePort");
                    }
                    p
                })
                .collect();
            obj["spec"]["ports"] = Value::Array(stripped);
            return Ok(());
        }
        // `allocateLoadBalancerNodePorts: false` (KEP-1864): a load
        // balancer reaching pods directly needs none, so only the node
        // ports asked for, or held before, are kept.
        let allocate_new = service_type == "NodePort"
            || obj
                .pointer("/spec/allocateLoadBalancerNodePorts")
                .and_then(Value::as_bool)
                != Some(false);
        let mut updated = Vec::with_capacity(ports.len());
        for (i, mut port) in ports.into_iter().enumerate() {
            let wanted = port.get("nodePort").and_then(Value::as_u64).unwrap_or(0);
            let number = port.get("port").and_then(Value::as_i64).unwrap_or(0);
            let protocol = port
                .get("protocol")
                .and_then(Value::as_str)
                .unwrap_or("TCP")
                .to_owned();
            let kept = held
                .iter()
                .find(|(p, proto, _)| *p == number && *proto == protocol)
                .map(|(_, _, n)| *n);
            let node_port = if wanted == 0 {
                match kept {
                    Some(existing) => existing,
                    None if !allocate_new => {
                        if let Some(map) = port.as_object_mut() {
                            map.remove("nodePort");
                        }
                        updated.push(port);
                        continue;
                    }
                    None => self.allocate_port(obj, allocation).await?,
                }
            } else if held.iter().any(|(_, _, n)| u64::from(*n) == wanted) {
                wanted as u16
            } else {
                let wanted = u16::try_from(wanted).unwrap_or(0);
                if !(NODE_PORT_RANGE.0..=NODE_PORT_RANGE.1).contains(&wanted) {
                    return Err(rejected(obj, FieldCause::invalid(
                            format!("spec.ports[{i}].nodePort"),
                            &json!(wanted),
                            "provided port is not in the valid range. The range of valid ports is 30000-32767",
                        )));
                }
                let key = format!("{PORT_PREFIX}{wanted}");
                if !self.claim(key.clone(), obj).await? {
                    return Err(rejected(
                        obj,
                        FieldCause::invalid(
                            format!("spec.ports[{i}].nodePort"),
                            &json!(wanted),
                            "provided port is already allocated",
                        ),
                    ));
                }
                allocation.keys.push(key);
                wanted
            };
            port["nodePort"] = json!(node_port);
            updated.push(port);
        }
        obj["spec"]["ports"] = Value::Array(updated);
        Ok(())
    }

    /// A free NodePort, claimed for `obj`.
    pub(super) async fn allocate_port(
        &self,
        obj: &Value,
        allocation: &mut Allocation,
    ) -> Result<u16, ApiError> {
        let span = u32::from(NODE_PORT_RANGE.1 - NODE_PORT_RANGE.0) + 1;
        let start = rand::rng().random_range(0..span);
        for offset in 0..span {
            let port = NODE_PORT_RANGE.0 + ((start + offset) % span) as u16;
            let key = format!("{PORT_PREFIX}{port}");
            if self.claim(key.clone(), obj).await? {
                allocation.keys.push(key);
                return Ok(port);
            }
        }
        Err(ApiError::Internal(
            "failed to allocate a nodePort: range is full".into(),
        ))
    }
}
