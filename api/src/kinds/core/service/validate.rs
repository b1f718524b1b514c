//! Service validation with upstream's messages: type, ports (numbers,
//! names, protocols, duplicates), traffic policies and where they may be
//! set, session affinity and its timeout, external IPs, ExternalName, and
//! the IP-family fields of a cluster that is single-stack IPv4.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use crate::field::FieldCause;
use crate::validation::{is_dns1123_label, is_dns1123_subdomain};

/// Upstream's longest ClientIP affinity timeout (one day).
const MAX_AFFINITY_SECONDS: i64 = 86_400;

fn text<'a>(obj: &'a Value, pointer: &str) -> Option<&'a str> {
    obj.pointer(pointer).and_then(Value::as_str)
}

/// Everything wrong with Service `obj`.
pub fn service(obj: &Value) -> Vec<FieldCause> {
    let mut causes = Vec::new();
    let service_type = text(obj, "/spec/type").unwrap_or("ClusterIP");
    if !matches!(
        service_type,
        "ClusterIP" | "NodePort" | "LoadBalancer" | "ExternalName"
    ) {
        causes.push(FieldCause::not_supported(
            "spec.type",
            &json!(service_type),
            &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"],
        ));
    }
    let headless = text(obj, "/spec/clusterIP") == Some("None");
    ports(obj, service_type, headless, &mut causes);
    if service_type == "ExternalName" {
        match text(obj, "/spec/externalName").filter(|n| !n.is_empty()) {
            None => causes.push(FieldCause::required("spec.externalName", "")),
            Some(name) => {
                let name = name.trim_end_matches('.');
                for problem in is_dns1123_subdomain(name) {
                    causes.push(FieldCause::invalid(
                        "spec.externalName",
                        &json!(name),
                        problem,
                    ));
                }
            }
        }
    }
    traffic_policies(obj, service_type, &mut causes);
    session_affinity(obj, &mut causes);
    external_ips(obj, &mut causes);
    ip_families(obj, service_type, &mut causes);
    causes
}

fn ports(obj: &Value, service_type: &str, headless: bool, causes: &mut Vec<FieldCause>) {
    let ports = obj.pointer("/spec/ports").and_then(Value::as_array);
    if service_type != "ExternalName" && !headless && ports.is_none_or(Vec::is_empty) {
        causes.push(FieldCause::required("spec.ports", ""));
    }
    let ports = ports.map(Vec::as_slice).unwrap_or_default();
    let many = ports.len() > 1;
    let mut names = BTreeSet::new();
    let mut numbers = BTreeSet::new();
    for (i, port) in ports.iter().enumerate() {
        let number = port.get("port").and_then(Value::as_i64).unwrap_or(0);
        if !(1..=65535).contains(&number) {
            causes.push(FieldCause::invalid(
                format!("spec.ports[{i}].port"),
                &json!(number),
                "must be between 1 and 65535, inclusive",
            ));
        }
        let name = port.get("name").and_then(Value::as_str).unwrap_or_default();
        if many && name.is_empty() {
            causes.push(FieldCause::required(format!("spec.ports[{i}].name"), ""));
        }
        if !name.is_empty() {
            for problem in is_dns1123_label(name) {
                causes.push(FieldCause::invalid(
                    format!("spec.ports[{i}].name"),
                    &json!(name),
                    problem,
                ));
            }
            if !names.insert(name) {
                causes.push(FieldCause::duplicate(
                    format!("spec.ports[{i}].name"),
                    &json!(name),
                ));
            }
        }
        let protocol = port
            .get("protocol")
            .and_then(Value::as_str)
            .unwrap_or("TCP");
        if !matches!(protocol, "TCP" | "UDP" | "SCTP") {
            causes.push(FieldCause::not_supported(
                format!("spec.ports[{i}].protocol"),
                &json!(protocol),
                &["SCTP", "TCP", "UDP"],
            ));
        }
        if !numbers.insert((number, protocol)) {
            causes.push(FieldCause::duplicate(
                format!("spec.ports[{i}]"),
                &json!({"port": number, "protocol": protocol}),
            ));
        }
        match port.get("targetPort") {
            Some(Value::Number(n)) if !(1..=65535).contains(&n.as_i64().unwrap_or(0)) => {
                causes.push(FieldCause::invalid(
                    format!("spec.ports[{i}].targetPort"),
                    &Value::Number(n.clone()),
                    "must be between 1 and 65535, inclusive",
                ));
            }
            Some(Value::String(named)) if !valid_port_name(named) => {
                causes.push(FieldCause::invalid(
                    format!("spec.ports[{i}].targetPort"),
                    &json!(named),
                    "must contain at least one letter (a-z), contain only lower-case letters, digits and '-', and be at most 15 characters",
                ));
            }
            _ => {}
        }
    }
}

/// An IANA service name, as a named container port must be.
fn valid_port_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 15
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && name.bytes().any(|b| b.is_ascii_lowercase())
        && !name.starts_with('-')
        && !name.ends_with('-')
        && !name.contains("--")
}

fn traffic_policies(obj: &Value, service_type: &str, causes: &mut Vec<FieldCause>) {
    let has_external_ips = obj
        .pointer("/spec/externalIPs")
        .and_then(Value::as_array)
        .is_some_and(|ips| !ips.is_empty());
    let externally_accessible = matches!(service_type, "NodePort" | "LoadBalancer")
        || (service_type == "ClusterIP" && has_external_ips);
    if let Some(policy) = text(obj, "/spec/externalTrafficPolicy") {
        if !externally_accessible {
            causes.push(FieldCause::invalid(
                "spec.externalTrafficPolicy",
                &json!(policy),
                "may only be set for externally-accessible services",
            ));
        } else if !matches!(policy, "Cluster" | "Local") {
            causes.push(FieldCause::not_supported(
                "spec.externalTrafficPolicy",
                &json!(policy),
                &["Cluster", "Local"],
            ));
        }
    }
    if let Some(policy) = text(obj, "/spec/internalTrafficPolicy") {
        if !matches!(policy, "Cluster" | "Local") {
            causes.push(FieldCause::not_supported(
                "spec.internalTrafficPolicy",
                &json!(policy),
                &["Cluster", "Local"],
            ));
        }
    }
    if service_type != "LoadBalancer" {
        let ranges = obj
            .pointer("/spec/loadBalancerSourceRanges")
            .and_then(Value::as_array);
        if ranges.is_some_and(|r| !r.is_empty()) {
            causes.push(FieldCause::forbidden(
                "spec.loadBalancerSourceRanges",
                "may only be used when `type` is 'LoadBalancer'",
            ));
        }
    }
}

fn session_affinity(obj: &Value, causes: &mut Vec<FieldCause>) {
    let affinity = text(obj, "/spec/sessionAffinity").unwrap_or("None");
    let config = obj
        .pointer("/spec/sessionAffinityConfig")
        .filter(|c| !c.is_null());
    match affinity {
        "None" => {
            if let Some(config) = config {
                causes.push(FieldCause::invalid(
                    "spec.sessionAffinityConfig",
                    config,
                    "must not be set when session affinity is None",
                ));
            }
        }
        "ClientIP" => {
            let timeout = obj.pointer("/spec/sessionAffinityConfig/clientIP/timeoutSeconds");
            if let Some(seconds) = timeout.and_then(Value::as_i64) {
                if !(1..=MAX_AFFINITY_SECONDS).contains(&seconds) {
                    causes.push(FieldCause::invalid(
                        "spec.sessionAffinityConfig.clientIP.timeoutSeconds",
                        &json!(seconds),
                        format!("must be greater than 0 and less than {MAX_AFFINITY_SECONDS}"),
                    ));
                }
            }
        }
        other => causes.push(FieldCause::not_supported(
            "spec.sessionAffinity",
            &json!(other),
            &["ClientIP", "None"],
        )),
    }
}

fn external_ips(obj: &Value, causes: &mut Vec<FieldCause>) {
    let ips = obj.pointer("/spec/externalIPs").and_then(Value::as_array);
    for (i, ip) in ips.into_iter().flatten().enumerate() {
        let valid = ip
            .as_str()
            .is_some_and(|ip| ip.parse::<std::net::IpAddr>().is_ok());
        if !valid {
            causes.push(FieldCause::invalid(
                format!("spec.externalIPs[{i}]"),
                ip,
                "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
            ));
        }
    }
}

/// The IP-family fields, for a cluster whose only family is IPv4.
fn ip_families(obj: &Value, service_type: &str, causes: &mut Vec<FieldCause>) {
    if service_type == "ExternalName" {
        return;
    }
    let policy = text(obj, "/spec/ipFamilyPolicy");
    match policy {
        None | Some("SingleStack" | "PreferDualStack") => {}
        Some("RequireDualStack") => causes.push(FieldCause::invalid(
            "spec.ipFamilyPolicy",
            &json!("RequireDualStack"),
            "this cluster is not configured for dual-stack services",
        )),
        Some(other) => causes.push(FieldCause::not_supported(
            "spec.ipFamilyPolicy",
            &json!(other),
            &["PreferDualStack", "RequireDualStack", "SingleStack"],
        )),
    }
    let families = obj.pointer("/spec/ipFamilies").and_then(Value::as_array);
    let families = families.map(Vec::as_slice).unwrap_or_default();
    if families.len() > 2 {
        causes.push(FieldCause::invalid(
            "spec.ipFamilies",
            &json!(families),
            "may not have more than two items",
        ));
    }
    if families.len() > 1 && policy == Some("SingleStack") {
        causes.push(FieldCause::invalid(
            "spec.ipFamilyPolicy",
            &json!("SingleStack"),
            "must be 'RequireDualStack' or 'PreferDualStack' when multiple IP families are specified",
        ));
    }
    let mut seen = BTreeSet::new();
    for (i, family) in families.iter().enumerate() {
        let name = family.as_str().unwrap_or_default();
        if !matches!(name, "IPv4" | "IPv6") {
            causes.push(FieldCause::not_supported(
                format!("spec.ipFamilies[{i}]"),
                family,
                &["IPv4", "IPv6"],
            ));
        } else if !seen.insert(name) {
            causes.push(FieldCause::duplicate(
                format!("spec.ipFamilies[{i}]"),
                family,
            ));
        } else if name == "IPv6" && policy != Some("PreferDualStack") {
            causes.push(FieldCause::invalid(
                format!("spec.ipFamilies[{i}]"),
                family,
                "not configured on this cluster",
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn messages(spec: Value) -> Vec<String> {
        let mut base = json!({"type": "ClusterIP", "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}]});
        for (k, v) in spec.as_object().unwrap() {
            base[k] = v.clone();
        }
        service(&json!({"metadata": {"name": "web"}, "spec": base}))
            .into_iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect()
    }

    #[test]
    fn upstream_messages_for_bad_services() {
        let cases = [
            (json!({}), ""),
            (json!({"externalTrafficPolicy": "Local"}), "spec.externalTrafficPolicy: Invalid value: \"Local\": may only be set for externally-accessible services"),
            (json!({"type": "NodePort", "externalTrafficPolicy": "Nearest"}), "spec.externalTrafficPolicy: Unsupported value: \"Nearest\": supported values: \"Cluster\", \"Local\""),
            (json!({"internalTrafficPolicy": "Node"}), "spec.internalTrafficPolicy: Unsupported value: \"Node\""),
            (json!({"sessionAffinity": "ClientIP", "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 0}}}), "spec.sessionAffinityConfig.clientIP.timeoutSeconds: Invalid value: 0: must be greater than 0 and less than 86400"),
            (json!({"sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 10}}}), "must not be set when session affinity is None"),
            (json!({"externalIPs": ["1.2.3"]}), "spec.externalIPs[0]: Invalid value: \"1.2.3\": must be a valid IP address"),
            (json!({"ipFamilyPolicy": "RequireDualStack"}), "spec.ipFamilyPolicy: Invalid value: \"RequireDualStack\": this cluster is not configured for dual-stack services"),
            (json!({"ipFamilies": ["IPv6"]}), "spec.ipFamilies[0]: Invalid value: \"IPv6\": not configured on this cluster"),
            (json!({"ipFamilies": ["IPv4", "IPv4"], "ipFamilyPolicy": "PreferDualStack"}), "spec.ipFamilies[1]: Duplicate value: \"IPv4\""),
            (json!({"ipFamilies": ["IPv4", "IPv6"], "ipFamilyPolicy": "SingleStack"}), "must be 'RequireDualStack' or 'PreferDualStack' when multiple IP families are specified"),
            (json!({"ports": [{"name": "a", "port": 80}, {"name": "a", "port": 81}]}), "spec.ports[1].name: Duplicate value: \"a\""),
            (json!({"ports": [{"name": "a", "port": 80, "protocol": "ICMP"}]}), "spec.ports[0].protocol: Unsupported value: \"ICMP\""),
            (json!({"ports": [{"name": "a", "port": 80, "targetPort": "Web_Port"}]}), "spec.ports[0].targetPort: Invalid value: \"Web_Port\""),
            (json!({"type": "ExternalName", "ports": []}), "spec.externalName: Required value"),
            (json!({"loadBalancerSourceRanges": ["10.0.0.0/8"]}), "spec.loadBalancerSourceRanges: Forbidden: may only be used when `type` is 'LoadBalancer'"),
        ];
        for (spec, expected) in cases {
            let found = messages(spec.clone());
            if expected.is_empty() {
                assert!(found.is_empty(), "{spec}: {found:?}");
            } else {
                assert!(
                    found.iter().any(|m| m.contains(expected)),
                    "{spec}: wanted {expected:?}, got {found:?}"
                );
            }
        }
    }

    #[test]
    fn external_ips_and_external_names_that_are_fine() {
        assert!(
            messages(json!({"externalIPs": ["192.0.2.10"], "externalTrafficPolicy": "Local"}))
                .is_empty()
        );
        assert!(messages(
            json!({"type": "ExternalName", "externalName": "db.example.com.", "ports": []})
        )
        .is_empty());
        assert!(messages(
            json!({"ipFamilies": ["IPv4", "IPv6"], "ipFamilyPolicy": "PreferDualStack"})
        )
        .is_empty());
    }
}
