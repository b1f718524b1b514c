//! What a Service loses when its `type` changes (upstream's
//! `dropTypeDependentFields`): the fields the old type needed, the server may
//! have filled in, and the request left as they were. Never touches a field
//! the request changed too, so a contradictory request still fails validation.

use serde_json::{json, Value};

fn service_type(svc: &Value) -> &str {
    svc.pointer("/spec/type")
        .and_then(Value::as_str)
        .unwrap_or("ClusterIP")
}

/// Every type but ExternalName has a cluster IP (even `None` counts).
pub fn needs_cluster_ip(svc: &Value) -> bool {
    service_type(svc) != "ExternalName"
}

fn needs_node_ports(svc: &Value) -> bool {
    matches!(service_type(svc), "NodePort" | "LoadBalancer")
}

fn needs_health_check_port(svc: &Value) -> bool {
    service_type(svc) == "LoadBalancer"
        && svc
            .pointer("/spec/externalTrafficPolicy")
            .and_then(Value::as_str)
            == Some("Local")
}

/// Reachable from outside the cluster, so `externalTrafficPolicy` applies.
fn externally_accessible(svc: &Value) -> bool {
    let has_external_ips = svc
        .pointer("/spec/externalIPs")
        .and_then(Value::as_array)
        .is_some_and(|ips| !ips.is_empty());
    needs_node_ports(svc) || (service_type(svc) == "ClusterIP" && has_external_ips)
}

/// The non-zero node ports of a Service's ports.
fn node_ports(svc: &Value) -> Vec<u64> {
    svc.pointer("/spec/ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|port| port.get("nodePort").and_then(Value::as_u64))
        .filter(|&port| port != 0)
        .collect()
}

/// Whether `pointer` holds the same value in both (absent and `0`/`""` alike, as
/// in the Go types where those are the zero value).
fn same(old: &Value, new: &Value, pointer: &str) -> bool {
    let zero = |v: Option<&Value>| match v {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) if n.as_u64() == Some(0) => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(other) => Some(other.clone()),
    };
    zero(old.pointer(pointer)) == zero(new.pointer(pointer))
}

fn remove_spec_field(svc: &mut Value, field: &str) {
    if let Some(spec) = svc.get_mut("spec").and_then(Value::as_object_mut) {
        spec.remove(field);
    }
}

/// Clears from `new` what `old`'s type needed and `new`'s does not, when the
/// update left it unchanged; the API server then gives back the node ports.
pub fn drop_type_dependent_fields(old: &Value, new: &mut Value) {
    if needs_cluster_ip(old) && !needs_cluster_ip(new) {
        if same(old, new, "/spec/clusterIP") && same(old, new, "/spec/clusterIPs") {
            remove_spec_field(new, "clusterIP");
            remove_spec_field(new, "clusterIPs");
        }
        for field in ["ipFamilies", "ipFamilyPolicy"] {
            if same(old, new, &format!("/spec/{field}")) {
                remove_spec_field(new, field);
            }
        }
    }
    // Ports may be added, removed or changed, as long as no new node port appears.
    let old_ports = node_ports(old);
    if needs_node_ports(old)
        && !needs_node_ports(new)
        && node_ports(new).iter().all(|port| old_ports.contains(port))
    {
        let ports = new.pointer_mut("/spec/ports").and_then(Value::as_array_mut);
        for port in ports.into_iter().flatten().filter_map(Value::as_object_mut) {
            port.remove("nodePort");
        }
    }
    if needs_health_check_port(old)
        && !needs_health_check_port(new)
        && same(old, new, "/spec/healthCheckNodePort")
    {
        remove_spec_field(new, "healthCheckNodePort");
    }
    let was_load_balancer = service_type(old) == "LoadBalancer";
    let is_load_balancer = service_type(new) == "LoadBalancer";
    if was_load_balancer && !is_load_balancer {
        let allocate = "/spec/allocateLoadBalancerNodePorts";
        if old.pointer(allocate).is_some() && old.pointer(allocate) == new.pointer(allocate) {
            remove_spec_field(new, "allocateLoadBalancerNodePorts");
        }
        if same(old, new, "/spec/loadBalancerClass") {
            remove_spec_field(new, "loadBalancerClass");
        }
    }
    if externally_accessible(old)
        && !externally_accessible(new)
        && same(old, new, "/spec/externalTrafficPolicy")
    {
        remove_spec_field(new, "externalTrafficPolicy");
    }
    // Deprovisioning is the cloud controller's business; the status says at once
    // that there is no load balancer any more.
    if !is_load_balancer {
        if let Some(status) = new.get_mut("status").and_then(Value::as_object_mut) {
            status.insert("loadBalancer".into(), json!({}));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_balancer() -> Value {
        json!({
            "spec": {
                "type": "LoadBalancer",
                "externalTrafficPolicy": "Local",
                "healthCheckNodePort": 31000,
                "allocateLoadBalancerNodePorts": true,
                "loadBalancerClass": "example.com/lb",
                "ports": [{"port": 80, "nodePort": 30080}, {"port": 443, "nodePort": 30443}]
            },
            "status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.10"}]}}
        })
    }

    fn with_type(svc: &Value, service_type: &str) -> Value {
        let mut changed = svc.clone();
        changed["spec"]["type"] = json!(service_type);
        changed
    }

    #[test]
    fn load_balancer_to_cluster_ip_drops_what_only_load_balancers_use() {
        let old = load_balancer();
        let mut new = with_type(&old, "ClusterIP");
        drop_type_dependent_fields(&old, &mut new);
        assert_eq!(
            new,
            json!({
                "spec": {"type": "ClusterIP", "ports": [{"port": 80}, {"port": 443}]},
                "status": {"loadBalancer": {}}
            })
        );
    }

    #[test]
    fn load_balancer_to_node_port_keeps_node_ports_and_the_traffic_policy() {
        let old = load_balancer();
        let mut new = with_type(&old, "NodePort");
        drop_type_dependent_fields(&old, &mut new);
        assert_eq!(new["spec"]["ports"], old["spec"]["ports"]);
        assert_eq!(new["spec"]["externalTrafficPolicy"], "Local");
        for gone in [
            "healthCheckNodePort",
            "allocateLoadBalancerNodePorts",
            "loadBalancerClass",
        ] {
            assert!(new["spec"].get(gone).is_none(), "{gone}");
        }
        assert_eq!(new["status"]["loadBalancer"], json!({}));
    }

    #[test]
    fn node_port_to_cluster_ip_drops_node_ports_even_with_ports_removed() {
        let old = json!({"spec": {"type": "NodePort", "externalTrafficPolicy": "Cluster",
            "ports": [{"port": 80, "nodePort": 30080}, {"port": 443, "nodePort": 30443}]}});
        let mut new = with_type(&old, "ClusterIP");
        new["spec"]["ports"].as_array_mut().unwrap().pop();
        drop_type_dependent_fields(&old, &mut new);
        assert_eq!(
            new,
            json!({"spec": {"type": "ClusterIP", "ports": [{"port": 80}]}})
        );
    }

    #[test]
    fn fields_the_request_changed_too_are_left_for_validation() {
        let old = load_balancer();
        let mut new = with_type(&old, "ClusterIP");
        new["spec"]["ports"][0]["nodePort"] = json!(30999);
        new["spec"]["healthCheckNodePort"] = json!(31001);
        new["spec"]["allocateLoadBalancerNodePorts"] = json!(false);
        new["spec"]["loadBalancerClass"] = json!("example.com/other");
        new["spec"]["externalTrafficPolicy"] = json!("Cluster");
        let asked = new.clone();
        drop_type_dependent_fields(&old, &mut new);
        assert_eq!(new["spec"], asked["spec"]);
    }

    #[test]
    fn external_name_drops_the_cluster_ip_and_its_families() {
        let old = json!({"spec": {"type": "ClusterIP", "clusterIP": "10.43.0.20",
            "clusterIPs": ["10.43.0.20"], "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack",
            "ports": [{"port": 80}]}});
        let mut new = with_type(&old, "ExternalName");
        new["spec"]["externalName"] = json!("db.example.com");
        drop_type_dependent_fields(&old, &mut new);
        assert_eq!(
            new,
            json!({"spec": {"type": "ExternalName", "externalName": "db.example.com", "ports": [{"port": 80}]}})
        );
    }

    #[test]
    fn unchanged_types_and_external_ips_keep_everything() {
        let old = load_balancer();
        let mut same_type = old.clone();
        drop_type_dependent_fields(&old, &mut same_type);
        assert_eq!(same_type, old);
        // A ClusterIP with external IPs is still externally accessible.
        let old = json!({"spec": {"type": "NodePort", "externalTrafficPolicy": "Local",
            "externalIPs": ["192.0.2.1"], "ports": [{"port": 80, "nodePort": 30080}]}});
        let mut new = with_type(&old, "ClusterIP");
        drop_type_dependent_fields(&old, &mut new);
        assert_eq!(new["spec"]["externalTrafficPolicy"], "Local");
        assert!(new["spec"]["ports"][0].get("nodePort").is_none());
    }
}
