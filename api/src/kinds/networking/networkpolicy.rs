//! NetworkPolicies: upstream's defaults (policy types from the rules present,
//! TCP ports), validation of policy types and ports, and the POD-SELECTOR column.

use serde_json::{json, Value};

use crate::field::FieldCause;
use crate::kinds::{obj_mut, set_default, KindRules};
use crate::table::print::{array_at, selector_string};
use crate::table::{col, Column, AGE, NAME};

/// The rules of `networking.k8s.io/v1` NetworkPolicy.
#[derive(Debug, Clone, Copy, Default)]
pub struct NetworkPolicy;

impl KindRules for NetworkPolicy {
    fn tracks_generation(&self) -> bool {
        true
    }

    fn default(&self, obj: &mut Value) {
        let spec = obj_mut(obj, "spec");
        for direction in ["ingress", "egress"] {
            let Some(rules) = spec.get_mut(direction).and_then(Value::as_array_mut) else {
                continue;
            };
            for rule in rules {
                let Some(ports) = rule.get_mut("ports").and_then(Value::as_array_mut) else {
                    continue;
                };
                for port in ports.iter_mut().filter_map(Value::as_object_mut) {
                    set_default(port, "protocol", json!("TCP"));
                }
            }
        }
        let empty = spec
            .get("policyTypes")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty);
        if empty {
            let mut types = vec![json!("Ingress")];
            if spec
                .get("egress")
                .and_then(Value::as_array)
                .is_some_and(|e| !e.is_empty())
            {
                types.push(json!("Egress"));
            }
            spec.insert("policyTypes".into(), Value::Array(types));
        }
    }

    fn validate(&self, obj: &Value) -> Vec<FieldCause> {
        let mut causes = Vec::new();
        let types = array_at(obj, &["spec", "policyTypes"]);
        if types.len() > 2 {
            causes.push(FieldCause::invalid(
                "spec.policyTypes",
                &json!(types),
                "may not specify more than two policyTypes",
            ));
        }
        for (i, t) in types.iter().enumerate() {
            if !matches!(t.as_str(), Some("Ingress" | "Egress")) {
                causes.push(FieldCause::not_supported(
                    format!("spec.policyTypes[{i}]"),
                    t,
                    &["Ingress", "Egress"],
                ));
            }
        }
        for direction in ["ingress", "egress"] {
            for (i, rule) in array_at(obj, &["spec", direction]).iter().enumerate() {
                for (j, port) in array_at(rule, &["ports"]).iter().enumerate() {
                    let at = format!("spec.{direction}[{i}].ports[{j}]");
                    if let Some(p) = port.get("protocol").and_then(Value::as_str) {
                        if !matches!(p, "TCP" | "UDP" | "SCTP") {
                            causes.push(FieldCause::not_supported(
                                format!("{at}.protocol"),
                                &json!(p),
                                &["SCTP", "TCP", "UDP"],
                            ));
                        }
                    }
                    if let Some(n) = port.get("port").and_then(Value::as_i64) {
                        if !(1..=65535).contains(&n) {
                            causes.push(FieldCause::invalid(
                                format!("{at}.port"),
                                &json!(n),
                                "must be between 1 and 65535, inclusive",
                            ));
                        }
                    }
                    if let Some(end) = port.get("endPort").and_then(Value::as_i64) {
                        match port.get("port") {
                            Some(Value::Number(start)) if start.as_i64().unwrap_or(0) > end => {
                                causes.push(FieldCause::invalid(
                                    format!("{at}.endPort"),
                                    &json!(end),
                                    "must be greater than or equal to `port`",
                                ))
                            }
                            Some(Value::Number(_)) => {}
                            Some(Value::String(_)) => causes.push(FieldCause::forbidden(
                                format!("{at}.endPort"),
                                "may not be specified when `port` is non-numeric",
                            )),
                            _ => causes.push(FieldCause::required(
                                format!("{at}.port"),
                                "must be specified when `endPort` is specified",
                            )),
                        }
                    }
                }
            }
        }
        causes
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            NAME,
            col(
                "Pod-Selector",
                "string",
                0,
                "Selects the pods to which this NetworkPolicy object applies.",
            ),
            AGE,
        ]
    }

    fn cells(&self, obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        vec![
            crate::table::name_cell(obj),
            json!(selector_string(obj.pointer("/spec/podSelector"))),
            crate::table::age_cell(obj, now),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_types_and_protocols_default_from_the_rules() {
        let cases = [
            (json!({"spec": {"podSelector": {}}}), json!(["Ingress"])),
            (
                json!({"spec": {"egress": [{"ports": [{"port": 53}]}]}}),
                json!(["Ingress", "Egress"]),
            ),
            (
                json!({"spec": {"policyTypes": ["Egress"]}}),
                json!(["Egress"]),
            ),
        ];
        for (mut obj, want) in cases {
            NetworkPolicy.default(&mut obj);
            assert_eq!(obj["spec"]["policyTypes"], want);
        }
        let mut obj = json!({"spec": {"ingress": [{"ports": [{"port": 80}]}]}});
        NetworkPolicy.default(&mut obj);
        assert_eq!(obj["spec"]["ingress"][0]["ports"][0]["protocol"], "TCP");
    }

    #[test]
    fn invalid_policies_get_upstream_messages() {
        let cases = [
            (
                json!({"spec": {"policyTypes": ["Foo"]}}),
                "spec.policyTypes[0]",
                "Unsupported value: \"Foo\": supported values: \"Ingress\", \"Egress\"",
            ),
            (
                json!({"spec": {"ingress": [{"ports": [{"port": 90, "endPort": 80}]}]}}),
                "spec.ingress[0].ports[0].endPort",
                "Invalid value: 80: must be greater than or equal to `port`",
            ),
        ];
        for (obj, field, message) in cases {
            let got = NetworkPolicy.validate(&obj);
            assert!(
                got.iter().any(|c| c.field == field && c.message == message),
                "{got:?}"
            );
        }
    }
}
