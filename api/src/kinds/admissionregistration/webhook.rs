//! Validating and mutating webhook configurations: upstream's v1 defaults for
//! each webhook (failure/match policy, selectors, timeout, rule scope, service
//! port), its validation, and the WEBHOOKS count column.

use serde_json::{json, Value};

use crate::field::FieldCause;
use crate::kinds::{set_default, KindRules};
use crate::table::print::{array_at, str_at};
use crate::table::{col, Column, AGE, NAME};

/// The rules of `admissionregistration.k8s.io/v1` ValidatingWebhookConfiguration
/// (`mutating: false`) and MutatingWebhookConfiguration (`mutating: true`).
#[derive(Debug, Clone, Copy, Default)]
pub struct WebhookConfiguration {
    /// Whether the webhooks are mutating ones (reinvocation policy).
    pub mutating: bool,
}

/// Defaults a rule list's `scope` as upstream's `SetDefaults_Rule`.
pub(crate) fn default_rules(rules: Option<&mut Value>) {
    for rule in rules
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object_mut)
    {
        set_default(rule, "scope", json!("*"));
    }
}

/// Validates rule operations (for webhooks and policies).
pub(crate) fn validate_rules(rules: &[Value], at: &str, causes: &mut Vec<FieldCause>) {
    for (i, rule) in rules.iter().enumerate() {
        let at = format!("{at}[{i}]");
        if array_at(rule, &["operations"]).is_empty() {
            causes.push(FieldCause::required(format!("{at}.operations"), ""));
        }
        for (j, op) in array_at(rule, &["operations"]).iter().enumerate() {
            if !matches!(
                op.as_str(),
                Some("*" | "CREATE" | "UPDATE" | "DELETE" | "CONNECT")
            ) {
                causes.push(FieldCause::not_supported(
                    format!("{at}.operations[{j}]"),
                    op,
                    &["*", "CONNECT", "CREATE", "DELETE", "UPDATE"],
                ));
            }
        }
        if array_at(rule, &["apiGroups"]).is_empty() {
            causes.push(FieldCause::required(format!("{at}.apiGroups"), ""));
        }
        if array_at(rule, &["apiVersions"]).is_empty() {
            causes.push(FieldCause::required(format!("{at}.apiVersions"), ""));
        }
        if array_at(rule, &["resources"]).is_empty() {
            causes.push(FieldCause::required(format!("{at}.resources"), ""));
        }
        if let Some(scope) = str_at(rule, &["scope"]) {
            if !matches!(scope, "*" | "Cluster" | "Namespaced") {
                causes.push(FieldCause::not_supported(
                    format!("{at}.scope"),
                    &json!(scope),
                    &["*", "Cluster", "Namespaced"],
                ));
            }
        }
    }
}

impl KindRules for WebhookConfiguration {
    fn tracks_generation(&self) -> bool {
        true
    }

    fn default(&self, obj: &mut Value) {
        let Some(webhooks) = obj.get_mut("webhooks").and_then(Value::as_array_mut) else {
            return;
        };
        for hook in webhooks.iter_mut().filter(|h| h.is_object()) {
            default_rules(hook.get_mut("rules"));
            if let Some(service) = hook
                .pointer_mut("/clientConfig/service")
                .and_then(Value::as_object_mut)
            {
                set_default(service, "port", json!(443));
            }
            let map = hook.as_object_mut().expect("filtered to objects");
            set_default(map, "failurePolicy", json!("Fail"));
            set_default(map, "matchPolicy", json!("Equivalent"));
            set_default(map, "namespaceSelector", json!({}));
            set_default(map, "objectSelector", json!({}));
            set_default(map, "timeoutSeconds", json!(10));
            if self.mutating {
                set_default(map, "reinvocationPolicy", json!("Never"));
            }
        }
    }

    fn validate(&self, obj: &Value) -> Vec<FieldCause> {
        let mut causes = Vec::new();
        let mut names = std::collections::HashSet::new();
        for (i, hook) in array_at(obj, &["webhooks"]).iter().enumerate() {
            let at = format!("webhooks[{i}]");
            let name = str_at(hook, &["name"]).unwrap_or("");
            if name.is_empty() {
                causes.push(FieldCause::required(format!("{at}.name"), ""));
            } else if name.split('.').count() < 3 {
                causes.push(FieldCause::invalid(
                    format!("{at}.name"),
                    &json!(name),
                    "should be a domain with at least three segments separated by dots",
                ));
            } else if !names.insert(name) {
                causes.push(FieldCause::duplicate(format!("{at}.name"), &json!(name)));
            }
            validate_rules(
                array_at(hook, &["rules"]),
                &format!("{at}.rules"),
                &mut causes,
            );
            match str_at(hook, &["sideEffects"]) {
                None => causes.push(FieldCause::required(
                    format!("{at}.sideEffects"),
                    "must specify one of None, NoneOnDryRun",
                )),
                Some("None" | "NoneOnDryRun") => {}
                Some(other) => causes.push(FieldCause::not_supported(
                    format!("{at}.sideEffects"),
                    &json!(other),
                    &["None", "NoneOnDryRun"],
                )),
            }
            let versions = array_at(hook, &["admissionReviewVersions"]);
            if versions.is_empty() {
                causes.push(FieldCause::required(
                    format!("{at}.admissionReviewVersions"),
                    "must specify one of v1, v1beta1",
                ));
            } else if !versions
                .iter()
                .any(|v| matches!(v.as_str(), Some("v1" | "v1beta1")))
            {
                causes.push(FieldCause::invalid(
                    format!("{at}.admissionReviewVersions"),
                    &Value::Array(versions.to_vec()),
                    "must include at least one of v1, v1beta1",
                ));
            }
            if let Some(t) = hook.get("timeoutSeconds").and_then(Value::as_i64) {
                if !(1..=30).contains(&t) {
                    causes.push(FieldCause::invalid(
                        format!("{at}.timeoutSeconds"),
                        &json!(t),
                        "the timeout value must be between 1 and 30 seconds",
                    ));
                }
            }
            for (field, allowed) in [
                ("failurePolicy", &["Fail", "Ignore"][..]),
                ("matchPolicy", &["Equivalent", "Exact"][..]),
                ("reinvocationPolicy", &["IfNeeded", "Never"][..]),
            ] {
                if let Some(v) = str_at(hook, &[field]) {
                    if !allowed.contains(&v) {
                        causes.push(FieldCause::not_supported(
                            format!("{at}.{field}"),
                            &json!(v),
                            allowed,
                        ));
                    }
                }
            }
            let url = hook.pointer("/clientConfig/url").is_some();
            let service = hook.pointer("/clientConfig/service").is_some();
            if url == service {
                causes.push(FieldCause::required(
                    format!("{at}.clientConfig"),
                    "exactly one of url or service is required",
                ));
            }
        }
        causes
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            NAME,
            col(
                "Webhooks",
                "integer",
                0,
                "Webhooks indicates the number of webhooks registered in this configuration",
            ),
            AGE,
        ]
    }

    fn cells(&self, obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        vec![
            crate::table::name_cell(obj),
            json!(array_at(obj, &["webhooks"]).len()),
            crate::table::age_cell(obj, now),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook() -> Value {
        json!({"name": "pod-policy.example.com", "sideEffects": "None", "admissionReviewVersions": ["v1"],
               "clientConfig": {"service": {"namespace": "ns", "name": "svc"}},
               "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}]})
    }

    #[test]
    fn webhooks_get_upstream_defaults() {
        let mut obj = json!({"webhooks": [hook()]});
        WebhookConfiguration { mutating: true }.default(&mut obj);
        let h = &obj["webhooks"][0];
        assert_eq!(h["failurePolicy"], "Fail");
        assert_eq!(h["matchPolicy"], "Equivalent");
        assert_eq!(h["timeoutSeconds"], 10);
        assert_eq!(h["reinvocationPolicy"], "Never");
        assert_eq!(h["namespaceSelector"], json!({}));
        assert_eq!(h["rules"][0]["scope"], "*");
        assert_eq!(h["clientConfig"]["service"]["port"], 443);
        assert!(WebhookConfiguration { mutating: false }
            .validate(&obj)
            .is_empty());
    }

    #[test]
    fn invalid_webhooks_get_upstream_messages() {
        let cases = [
            ("name", json!("foo"), "webhooks[0].name", "Invalid value: \"foo\": should be a domain with at least three segments separated by dots"),
            ("sideEffects", Value::Null, "webhooks[0].sideEffects", "Required value: must specify one of None, NoneOnDryRun"),
            ("sideEffects", json!("Some"), "webhooks[0].sideEffects", "Unsupported value: \"Some\": supported values: \"None\", \"NoneOnDryRun\""),
            ("clientConfig", json!({}), "webhooks[0].clientConfig", "Required value: exactly one of url or service is required"),
        ];
        for (field, value, path, message) in cases {
            let mut h = hook();
            if value.is_null() {
                h.as_object_mut().unwrap().remove(field);
            } else {
                h[field] = value;
            }
            let got = WebhookConfiguration { mutating: false }.validate(&json!({"webhooks": [h]}));
            assert!(
                got.iter().any(|c| c.field == path && c.message == message),
                "{got:?}"
            );
        }
    }
}
