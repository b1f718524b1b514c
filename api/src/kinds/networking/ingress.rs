//! Ingresses: upstream's validation of rules, paths and backends, and the
//! `kubectl get ingress` columns (CLASS, HOSTS, ADDRESS, PORTS).

use serde_json::{json, Value};

use crate::field::FieldCause;
use crate::kinds::KindRules;
use crate::table::print::{array_at, str_at};
use crate::table::{col, Column, AGE, NAME};

/// The rules of `networking.k8s.io/v1` Ingress.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ingress;

impl KindRules for Ingress {
    fn tracks_generation(&self) -> bool {
        true
    }

    fn validate(&self, obj: &Value) -> Vec<FieldCause> {
        let mut causes = Vec::new();
        let spec = obj.get("spec").cloned().unwrap_or(json!({}));
        let rules = array_at(&spec, &["rules"]);
        if rules.is_empty() && spec.get("defaultBackend").is_none() {
            // Upstream prints the Go value of the empty rules list.
            causes.push(FieldCause {
                reason: "FieldValueInvalid",
                field: "spec".into(),
                message: "Invalid value: []networking.IngressRule(nil): either `defaultBackend` or `rules` must be specified".into(),
            });
        }
        if let Some(backend) = spec.get("defaultBackend") {
            causes.extend(validate_backend(backend, "spec.defaultBackend"));
        }
        if let Some(class) = spec.get("ingressClassName").and_then(Value::as_str) {
            for msg in crate::validation::is_dns1123_subdomain(class) {
                causes.push(FieldCause::invalid(
                    "spec.ingressClassName",
                    &json!(class),
                    msg,
                ));
            }
        }
        for (i, rule) in rules.iter().enumerate() {
            if let Some(host) = rule.get("host").and_then(Value::as_str) {
                let bare = host.strip_prefix("*.").unwrap_or(host);
                for msg in crate::validation::is_dns1123_subdomain(bare) {
                    causes.push(FieldCause::invalid(
                        format!("spec.rules[{i}].host"),
                        &json!(host),
                        msg,
                    ));
                }
            }
            for (j, path) in array_at(rule, &["http", "paths"]).iter().enumerate() {
                let at = format!("spec.rules[{i}].http.paths[{j}]");
                causes.extend(validate_path(path, &at));
            }
        }
        causes
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            NAME,
            col(
                "Class",
                "string",
                0,
                "The name of the IngressClass resource that should be used for ingress class.",
            ),
            col(
                "Hosts",
                "string",
                0,
                "Hosts that incoming requests are matched against before the ingress rule",
            ),
            col(
                "Address",
                "string",
                0,
                "Address is a list containing ingress points for the load-balancer",
            ),
            col(
                "Ports",
                "string",
                0,
                "Ports of TLS configurations that open",
            ),
            AGE,
        ]
    }

    fn cells(&self, obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        let class = str_at(obj, &["spec", "ingressClassName"]).unwrap_or("<none>");
        let hosts: Vec<&str> = array_at(obj, &["spec", "rules"])
            .iter()
            .filter_map(|r| r.get("host").and_then(Value::as_str))
            .filter(|h| !h.is_empty())
            .collect();
        let hosts = match hosts.len() {
            0 => "*".to_owned(),
            1..=3 => hosts.join(","),
            n => format!("{} + {} more...", hosts[..3].join(","), n - 3),
        };
        let address: Vec<&str> = array_at(obj, &["status", "loadBalancer", "ingress"])
            .iter()
            .filter_map(|i| {
                i.get("ip")
                    .and_then(Value::as_str)
                    .or_else(|| i.get("hostname").and_then(Value::as_str))
            })
            .collect();
        let ports = if array_at(obj, &["spec", "tls"]).is_empty() {
            "80"
        } else {
            "80, 443"
        };
        vec![
            crate::table::name_cell(obj),
            json!(class),
            json!(hosts),
            json!(address.join(",")),
            json!(ports),
            crate::table::age_cell(obj, now),
        ]
    }
}

fn validate_path(path: &Value, at: &str) -> Vec<FieldCause> {
    let mut causes = Vec::new();
    let value = path.get("path").and_then(Value::as_str).unwrap_or("");
    match path.get("pathType").and_then(Value::as_str) {
        None => causes.push(FieldCause::required(
            format!("{at}.pathType"),
            "pathType must be specified",
        )),
        Some("Exact" | "Prefix") => {
            if !value.starts_with('/') {
                causes.push(FieldCause::invalid(
                    format!("{at}.path"),
                    &json!(value),
                    "must be an absolute path",
                ));
            }
        }
        Some("ImplementationSpecific") => {
            if !value.is_empty() && !value.starts_with('/') {
                causes.push(FieldCause::invalid(
                    format!("{at}.path"),
                    &json!(value),
                    "must be an absolute path",
                ));
            }
        }
        Some(other) => causes.push(FieldCause::not_supported(
            format!("{at}.pathType"),
            &json!(other),
            &["Exact", "ImplementationSpecific", "Prefix"],
        )),
    }
    match path.get("backend") {
        Some(backend) => causes.extend(validate_backend(backend, &format!("{at}.backend"))),
        None => causes.push(FieldCause::invalid(
            format!("{at}.backend"),
            &json!(""),
            "resource or service backend is required",
        )),
    }
    causes
}

fn validate_backend(backend: &Value, at: &str) -> Vec<FieldCause> {
    let (resource, service) = (backend.get("resource"), backend.get("service"));
    match (resource, service) {
        (Some(_), Some(_)) => vec![FieldCause::invalid(
            at,
            &json!(""),
            "cannot set both resource and service backends",
        )],
        (Some(_), None) => Vec::new(),
        (None, Some(service)) => {
            let mut causes = Vec::new();
            if service
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .is_empty()
            {
                causes.push(FieldCause::required(format!("{at}.service.name"), ""));
            }
            let name = str_at(service, &["port", "name"]).unwrap_or("");
            let number = service
                .pointer("/port/number")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            match (name.is_empty(), number == 0) {
                (false, false) => causes.push(FieldCause::invalid(
                    at,
                    &json!(""),
                    "cannot set both port name & port number",
                )),
                (true, true) => causes.push(FieldCause::required(
                    format!("{at}.service.port"),
                    "port name or number is required",
                )),
                (true, false) if !(1..=65535).contains(&number) => {
                    causes.push(FieldCause::invalid(
                        format!("{at}.service.port.number"),
                        &json!(number),
                        "must be between 1 and 65535, inclusive",
                    ))
                }
                _ => {}
            }
            causes
        }
        (None, None) => vec![FieldCause::invalid(
            at,
            &json!(""),
            "resource or service backend is required",
        )],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_follows_upstream() {
        let ok = json!({"spec": {"rules": [{"host": "foo.bar.com", "http": {"paths": [
            {"path": "/testpath", "pathType": "Prefix", "backend": {"service": {"name": "test", "port": {"number": 80}}}}]}}]}});
        assert!(Ingress.validate(&ok).is_empty());
        let cases = [
            (
                json!({"spec": {}}),
                "either `defaultBackend` or `rules` must be specified",
            ),
            (
                json!({"spec": {"rules": [{"http": {"paths": [{"path": "/", "backend": {"service": {"name": "a", "port": {"number": 80}}}}]}}]}}),
                "Required value: pathType must be specified",
            ),
            (
                json!({"spec": {"rules": [{"http": {"paths": [{"path": "x", "pathType": "Exact", "backend": {"service": {"name": "a", "port": {"number": 80}}}}]}}]}}),
                "Invalid value: \"x\": must be an absolute path",
            ),
            (
                json!({"spec": {"defaultBackend": {"service": {"name": "a"}}}}),
                "Required value: port name or number is required",
            ),
            (
                json!({"spec": {"defaultBackend": {"service": {"name": "a", "port": {"name": "http", "number": 80}}}}}),
                "cannot set both port name & port number",
            ),
        ];
        for (obj, want) in cases {
            let got = Ingress.validate(&obj);
            assert!(
                got.iter().any(|c| c.message.contains(want)),
                "{obj}: {got:?}"
            );
        }
    }

    #[test]
    fn cells_show_class_hosts_and_ports() {
        let obj = json!({"metadata": {"name": "i"}, "spec": {"ingressClassName": "nginx",
            "tls": [{}], "rules": [{"host": "a"}, {"host": "b"}]},
            "status": {"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}]}}});
        let cells = Ingress.cells(&obj, jiff::Timestamp::now());
        assert_eq!(
            cells[1..5],
            [
                json!("nginx"),
                json!("a,b"),
                json!("1.2.3.4"),
                json!("80, 443")
            ]
        );
    }
}
