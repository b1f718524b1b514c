//! ValidatingAdmissionPolicies and their bindings: upstream's defaults
//! (failure policy, match constraints), the required fields, and the columns.
//! Stored and validated only: berth does not evaluate the policies' CEL.

use serde_json::{json, Value};

use super::webhook::{default_rules, validate_rules};
use crate::field::FieldCause;
use crate::kinds::{obj_mut, set_default, KindRules};
use crate::table::print::{array_at, str_at};
use crate::table::{col, Column, AGE, NAME};

/// The rules of `admissionregistration.k8s.io/v1` ValidatingAdmissionPolicy.
#[derive(Debug, Clone, Copy, Default)]
pub struct ValidatingAdmissionPolicy;

fn default_match_resources(m: &mut Value) {
    let Some(map) = m.as_object_mut() else {
        return;
    };
    set_default(map, "matchPolicy", json!("Equivalent"));
    set_default(map, "namespaceSelector", json!({}));
    set_default(map, "objectSelector", json!({}));
    default_rules(map.get_mut("resourceRules"));
    default_rules(map.get_mut("excludeResourceRules"));
}

impl KindRules for ValidatingAdmissionPolicy {
    fn tracks_generation(&self) -> bool {
        true
    }

    fn default(&self, obj: &mut Value) {
        let spec = obj_mut(obj, "spec");
        set_default(spec, "failurePolicy", json!("Fail"));
        if let Some(m) = spec.get_mut("matchConstraints") {
            default_match_resources(m);
        }
    }

    fn validate(&self, obj: &Value) -> Vec<FieldCause> {
        let mut causes = Vec::new();
        match obj.pointer("/spec/matchConstraints") {
            None => causes.push(FieldCause::required("spec.matchConstraints", "")),
            Some(m) => {
                if array_at(m, &["resourceRules"]).is_empty() {
                    causes.push(FieldCause::required(
                        "spec.matchConstraints.resourceRules",
                        "",
                    ));
                }
                validate_rules(
                    array_at(m, &["resourceRules"]),
                    "spec.matchConstraints.resourceRules",
                    &mut causes,
                );
            }
        }
        if array_at(obj, &["spec", "validations"]).is_empty()
            && array_at(obj, &["spec", "auditAnnotations"]).is_empty()
        {
            causes.push(FieldCause::required(
                "spec.validations",
                "validations or auditAnnotations must contain at least one item",
            ));
        }
        for (i, v) in array_at(obj, &["spec", "validations"]).iter().enumerate() {
            if str_at(v, &["expression"]).unwrap_or("").trim().is_empty() {
                causes.push(FieldCause::required(
                    format!("spec.validations[{i}].expression"),
                    "expression is not specified",
                ));
            }
        }
        if let Some(p) = str_at(obj, &["spec", "failurePolicy"]) {
            if !matches!(p, "Fail" | "Ignore") {
                causes.push(FieldCause::not_supported(
                    "spec.failurePolicy",
                    &json!(p),
                    &["Fail", "Ignore"],
                ));
            }
        }
        causes
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            NAME,
            col("Validations", "integer", 0, "Validations indicates the number of validation rules defined in this configuration"),
            col("ParamKind", "string", 0, "ParamKind specifies the kind of resources used to parameterize this policy"),
            AGE,
        ]
    }

    fn cells(&self, obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        let param_kind = match obj.pointer("/spec/paramKind") {
            Some(p) => format!(
                "{}/{}",
                str_at(p, &["apiVersion"]).unwrap_or_default(),
                str_at(p, &["kind"]).unwrap_or_default()
            ),
            None => "<unset>".to_owned(),
        };
        vec![
            crate::table::name_cell(obj),
            json!(array_at(obj, &["spec", "validations"]).len()),
            json!(param_kind),
            crate::table::age_cell(obj, now),
        ]
    }
}

/// The rules of `admissionregistration.k8s.io/v1` ValidatingAdmissionPolicyBinding.
#[derive(Debug, Clone, Copy, Default)]
pub struct ValidatingAdmissionPolicyBinding;

impl KindRules for ValidatingAdmissionPolicyBinding {
    fn tracks_generation(&self) -> bool {
        true
    }

    fn default(&self, obj: &mut Value) {
        if let Some(m) = obj.pointer_mut("/spec/matchResources") {
            default_match_resources(m);
        }
    }

    fn validate(&self, obj: &Value) -> Vec<FieldCause> {
        let mut causes = Vec::new();
        let policy = str_at(obj, &["spec", "policyName"]).unwrap_or("");
        if policy.is_empty() {
            causes.push(FieldCause::required("spec.policyName", ""));
        }
        let actions = array_at(obj, &["spec", "validationActions"]);
        if actions.is_empty() {
            causes.push(FieldCause::required(
                "spec.validationActions",
                "at least one validation action is required",
            ));
        }
        for (i, a) in actions.iter().enumerate() {
            if !matches!(a.as_str(), Some("Deny" | "Warn" | "Audit")) {
                causes.push(FieldCause::not_supported(
                    format!("spec.validationActions[{i}]"),
                    a,
                    &["Audit", "Deny", "Warn"],
                ));
            }
        }
        causes
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            NAME,
            col(
                "PolicyName",
                "string",
                0,
                "PolicyName indicates the policy definition which the policy binding binded to",
            ),
            col(
                "ParamRef",
                "string",
                0,
                "ParamRef indicates the param resource which sets the configration param",
            ),
            AGE,
        ]
    }

    fn cells(&self, obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        let param_ref = match obj.pointer("/spec/paramRef") {
            Some(p) => match (str_at(p, &["namespace"]), str_at(p, &["name"])) {
                (Some(ns), Some(name)) => format!("{ns}/{name}"),
                (None, Some(name)) => name.to_owned(),
                _ => "*/*".to_owned(),
            },
            None => "<unset>".to_owned(),
        };
        vec![
            crate::table::name_cell(obj),
            json!(str_at(obj, &["spec", "policyName"]).unwrap_or_default()),
            json!(param_ref),
            crate::table::age_cell(obj, now),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_default_and_validate() {
        let mut obj = json!({"spec": {"matchConstraints": {"resourceRules": [{"apiGroups": ["apps"],
            "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["deployments"]}]},
            "validations": [{"expression": "object.spec.replicas <= 5"}]}});
        ValidatingAdmissionPolicy.default(&mut obj);
        assert_eq!(obj["spec"]["failurePolicy"], "Fail");
        assert_eq!(obj["spec"]["matchConstraints"]["matchPolicy"], "Equivalent");
        assert_eq!(
            obj["spec"]["matchConstraints"]["resourceRules"][0]["scope"],
            "*"
        );
        assert!(ValidatingAdmissionPolicy.validate(&obj).is_empty());
        let got = ValidatingAdmissionPolicy.validate(&json!({"spec": {}}));
        let fields: Vec<&str> = got.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(fields, ["spec.matchConstraints", "spec.validations"]);
    }

    #[test]
    fn bindings_need_a_policy_and_actions() {
        let got = ValidatingAdmissionPolicyBinding.validate(&json!({"spec": {}}));
        assert_eq!(got[0].message, "Required value");
        assert_eq!(
            got[1].message,
            "Required value: at least one validation action is required"
        );
        let ok = json!({"spec": {"policyName": "p", "validationActions": ["Deny"]}});
        assert!(ValidatingAdmissionPolicyBinding.validate(&ok).is_empty());
    }
}
