//! Services: upstream's defaults (type, session affinity, IP families, port
//! protocol and targetPort), validation, the immutable clusterIP, the fields
//! a change of type drops, and the `kubectl get services` columns. Address
//! allocation needs the store and stays in the API server.

pub mod type_change;
pub mod validate;

use serde_json::{json, Map, Value};

use crate::field::FieldCause;
use crate::kinds::{field_obj_mut, immutable_fields, obj_mut, set_default, KindRules, NameRule};
use crate::table::print::{array_at, int_at, or_none, str_at, str_or_none};
use crate::table::{col, Column, AGE, NAME};

/// The rules of `core/v1` Service.
#[derive(Debug, Clone, Copy, Default)]
pub struct Service;

impl KindRules for Service {
    fn name_rule(&self) -> NameRule {
        NameRule::Label
    }

    fn default(&self, obj: &mut Value) {
        default_service(obj_mut(obj, "spec"));
        // Upstream always returns the load balancer status, empty until one is assigned.
        set_default(obj_mut(obj, "status"), "loadBalancer", json!({}));
    }

    fn validate(&self, obj: &Value) -> Vec<FieldCause> {
        validate::service(obj)
    }

    fn validate_update(&self, old: &Value, new: &Value) -> Vec<FieldCause> {
        // The address comes and goes with a change to or from ExternalName.
        if type_change::needs_cluster_ip(old) && type_change::needs_cluster_ip(new) {
            immutable_fields(old, new, &["/spec/clusterIP"])
        } else {
            Vec::new()
        }
    }

    fn prepare_for_update(&self, old: &Value, new: &mut Value) {
        type_change::drop_type_dependent_fields(old, new);
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            NAME,
            col("Type", "string", 0, "How the service is exposed."),
            col(
                "Cluster-IP",
                "string",
                0,
                "IP address of the service inside the cluster.",
            ),
            col(
                "External-IP",
                "string",
                0,
                "External addresses of the service.",
            ),
            col("Port(s)", "string", 0, "Ports the service exposes."),
            AGE,
            col(
                "Selector",
                "string",
                1,
                "Label query over the pods that back the service.",
            ),
        ]
    }

    fn cells(&self, obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        vec![
            crate::table::name_cell(obj),
            json!(str_at(obj, &["spec", "type"]).unwrap_or("ClusterIP")),
            json!(str_or_none(obj, &["spec", "clusterIP"])),
            json!(service_external_ip(obj)),
            json!(service_ports(obj)),
            crate::table::age_cell(obj, now),
            json!(service_selector(obj)),
        ]
    }
}

fn default_service(spec: &mut Map<String, Value>) {
    set_default(spec, "type", json!("ClusterIP"));
    set_default(spec, "sessionAffinity", json!("None"));
    let service_type = spec
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("ClusterIP")
        .to_owned();
    if service_type != "ExternalName" {
        set_default(spec, "internalTrafficPolicy", json!("Cluster"));
        set_default(spec, "ipFamilies", json!(["IPv4"]));
        set_default(spec, "ipFamilyPolicy", json!("SingleStack"));
    }
    let external_ips = spec
        .get("externalIPs")
        .and_then(Value::as_array)
        .is_some_and(|ips| !ips.is_empty());
    if matches!(service_type.as_str(), "NodePort" | "LoadBalancer") || external_ips {
        set_default(spec, "externalTrafficPolicy", json!("Cluster"));
    }
    if spec.get("sessionAffinity").and_then(Value::as_str) == Some("ClientIP") {
        let config = field_obj_mut(spec, "sessionAffinityConfig");
        set_default(
            field_obj_mut(config, "clientIP"),
            "timeoutSeconds",
            json!(10_800),
        );
    }
    if service_type == "LoadBalancer" {
        set_default(spec, "allocateLoadBalancerNodePorts", json!(true));
    }
    if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
        for port in ports.iter_mut().filter_map(Value::as_object_mut) {
            set_default(port, "protocol", json!("TCP"));
            if let Some(p) = port.get("port").cloned() {
                set_default(port, "targetPort", p);
            }
        }
    }
}

fn service_selector(svc: &Value) -> String {
    let parts: Vec<String> = svc
        .pointer("/spec/selector")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default();
    or_none(parts.join(","))
}

fn service_ports(svc: &Value) -> String {
    let ports: Vec<String> = array_at(svc, &["spec", "ports"])
        .iter()
        .map(|p| {
            let protocol = str_at(p, &["protocol"]).unwrap_or("TCP");
            let port = int_at(p, &["port"]);
            match p.get("nodePort").and_then(Value::as_i64) {
                Some(node_port) if node_port != 0 => format!("{port}:{node_port}/{protocol}"),
                _ => format!("{port}/{protocol}"),
            }
        })
        .collect();
    or_none(ports.join(","))
}

fn service_external_ip(svc: &Value) -> String {
    let external: Vec<&str> = array_at(svc, &["spec", "externalIPs"])
        .iter()
        .filter_map(Value::as_str)
        .collect();
    match str_at(svc, &["spec", "type"]).unwrap_or("ClusterIP") {
        "LoadBalancer" => {
            let mut ingress: Vec<String> = array_at(svc, &["status", "loadBalancer", "ingress"])
                .iter()
                .filter_map(|i| str_at(i, &["ip"]).or_else(|| str_at(i, &["hostname"])))
                .map(str::to_owned)
                .collect();
            ingress.extend(external.iter().map(|s| (*s).to_owned()));
            if ingress.is_empty() {
                "<pending>".to_owned()
            } else {
                ingress.join(",")
            }
        }
        "ExternalName" => str_at(svc, &["spec", "externalName"])
            .unwrap_or_default()
            .to_owned(),
        _ => or_none(external.join(",")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_row_shows_ports_and_pending_load_balancer() {
        let svc = json!({
            "metadata": {"name": "web", "creationTimestamp": "2026-01-01T11:00:00Z"},
            "spec": {"type": "LoadBalancer", "clusterIP": "10.43.0.10", "selector": {"app": "web"},
                     "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}]}
        });
        let row = Service.cells(&svc, "2026-01-01T12:00:00Z".parse().unwrap());
        assert_eq!(row.len(), Service.columns().len());
        assert_eq!(row[1], "LoadBalancer");
        assert_eq!(row[2], "10.43.0.10");
        assert_eq!(row[3], "<pending>");
        assert_eq!(row[4], "80:30080/TCP");
        assert_eq!(row[6], "app=web");
    }

    #[test]
    fn service_ports_default_target_port_and_protocol() {
        let mut s = json!({"spec": {"ports": [{"port": 80}]}});
        Service.default(&mut s);
        assert_eq!(s["spec"]["type"], "ClusterIP");
        assert_eq!(s["spec"]["ports"][0]["targetPort"], 80);
        assert_eq!(s["spec"]["ports"][0]["protocol"], "TCP");
    }

    #[test]
    fn the_cluster_ip_is_immutable_unless_the_type_becomes_or_was_external_name() {
        let old = json!({"spec": {"type": "ClusterIP", "clusterIP": "10.43.0.20"}});
        let mut moved = old.clone();
        moved["spec"]["clusterIP"] = json!("10.43.0.21");
        assert_eq!(Service.validate_update(&old, &moved).len(), 1);
        let mut external = old.clone();
        external["spec"]["type"] = json!("ExternalName");
        Service.prepare_for_update(&old, &mut external);
        assert!(external["spec"].get("clusterIP").is_none());
        assert!(Service.validate_update(&old, &external).is_empty());
        assert!(Service.validate_update(&external, &moved).is_empty());
    }

    #[test]
    fn dotted_names_are_refused() {
        assert!(!Service.name_rule().check("a.b").is_empty());
    }
}
