//! CEL rule cases: compile errors at schema time, failures with message,
//! messageExpression, fieldPath and reason, and transition rules.

use serde_json::{json, Value};

use crate::crd::CustomSchema;

const PREFIX: &str = "spec.versions[0].schema.openAPIV3Schema";

fn schema_with(spec_rules: Value) -> Value {
    json!({
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "x-kubernetes-validations": spec_rules,
                "properties": {
                    "minReplicas": {"type": "integer"},
                    "replicas": {"type": "integer"},
                    "maxReplicas": {"type": "integer"},
                    "name": {"type": "string",
                             "x-kubernetes-validations": [{"rule": "self == oldSelf", "message": "Value is immutable"}]},
                    "tags": {"type": "array", "items": {"type": "string",
                             "x-kubernetes-validations": [{"rule": "self.startsWith('t-')"}]}},
                    "labels": {"type": "object", "additionalProperties": {"type": "string",
                               "x-kubernetes-validations": [{"rule": "size(self) <= 3"}]}}
                }
            }
        }
    })
}

fn check(rules: Value, obj: Value) -> Vec<String> {
    let schema = CustomSchema::new(&schema_with(rules), PREFIX).expect("compiles");
    schema
        .validate(&obj)
        .into_iter()
        .map(|c| format!("{} {}: {}", c.reason, c.field, c.message))
        .collect()
}

#[test]
fn rules_fail_with_upstream_messages() {
    let replicas = json!([
        {"rule": "self.minReplicas <= self.replicas && self.replicas <= self.maxReplicas",
         "message": "replicas should be in the range minReplicas..maxReplicas."}
    ]);
    let ok = json!({"spec": {"minReplicas": 1, "replicas": 2, "maxReplicas": 3}});
    let bad = json!({"spec": {"minReplicas": 1, "replicas": 5, "maxReplicas": 3}});
    let cases: Vec<(Value, Value, Vec<&str>)> = vec![
        (replicas.clone(), ok.clone(), vec![]),
        (
            replicas,
            bad.clone(),
            vec!["FieldValueInvalid spec: Invalid value: \"object\": replicas should be in the range minReplicas..maxReplicas."],
        ),
        (
            // A mistyped value blocks the rules.
            json!([{"rule": "self.replicas <= self.maxReplicas"}]),
            json!({"spec": {"replicas": "5", "maxReplicas": 3}}),
            vec![
                "FieldValueTypeInvalid spec.replicas: Invalid value: \"string\": spec.replicas in body must be of type integer: \"string\"",
                "FieldValueInvalid : Invalid value: \"null\": some validation rules were not checked because the object was invalid; correct the existing errors to complete validation",
            ],
        ),
        (
            json!([{"rule": "self.replicas <= self.maxReplicas"}]),
            bad.clone(),
            vec!["FieldValueInvalid spec: Invalid value: \"object\": failed rule: self.replicas <= self.maxReplicas"],
        ),
        (
            json!([{"rule": "self.replicas <= self.maxReplicas",
                    "messageExpression": "'replicas ' + string(self.replicas) + ' above ' + string(self.maxReplicas)",
                    "fieldPath": ".replicas", "reason": "FieldValueForbidden"}]),
            bad.clone(),
            vec!["FieldValueForbidden spec.replicas: Forbidden: replicas 5 above 3"],
        ),
        (
            json!([{"rule": "self.replicas <= self.maxReplicas", "message": "too many",
                    "messageExpression": "''", "reason": "FieldValueRequired"}]),
            bad.clone(),
            vec!["FieldValueRequired spec: Required value: too many"],
        ),
        (
            json!([{"rule": "has(self.minReplicas)"}, {"rule": "self.replicas / 0 == 1"}]),
            json!({"spec": {"replicas": 1}}),
            vec![
                "FieldValueInvalid spec: Invalid value: \"object\": failed rule: has(self.minReplicas)",
                "FieldValueInvalid spec: Invalid value: \"object\": division by zero evaluating rule: self.replicas / 0 == 1",
            ],
        ),
        (
            json!([{"rule": "self.maxReplicas > 0"}]),
            json!({"spec": {}}),
            vec!["FieldValueInvalid spec: Invalid value: \"object\": no such key: maxReplicas evaluating rule: self.maxReplicas > 0"],
        ),
        (
            json!([]),
            json!({"spec": {"tags": ["t-a", "b"], "labels": {"a": "ok", "b": "long"}}}),
            vec![
                "FieldValueInvalid spec.tags[1]: Invalid value: \"string\": failed rule: self.startsWith('t-')",
                "FieldValueInvalid spec.labels[b]: Invalid value: \"string\": failed rule: size(self) <= 3",
            ],
        ),
        (
            // Macros and the strings extension.
            json!([{"rule": "self.tags.all(t, t.lowerAscii() == t) && self.tags.exists(t, t.endsWith('a'))"}]),
            json!({"spec": {"tags": ["t-a", "t-b"]}}),
            vec![],
        ),
        (
            // Kubernetes list and regex library functions.
            json!([{"rule": "self.tags.isSorted() && [1, 2, 3].sum() == 6 && [3, 1].min() == 1 && [3, 1].max() == 3"},
                   {"rule": "self.tags[0].find('[a-z]+') == 't' && self.tags[1].findAll('[a-z]') == ['t', 'b']"}]),
            json!({"spec": {"tags": ["t-a", "t-b"]}}),
            vec![],
        ),
        (
            json!([{"rule": "self.tags.isSorted()"}]),
            json!({"spec": {"tags": ["t-b", "t-a"]}}),
            vec!["FieldValueInvalid spec: Invalid value: \"object\": failed rule: self.tags.isSorted()"],
        ),
    ];
    for (rules, obj, want) in cases {
        assert_eq!(check(rules.clone(), obj), want, "{rules}");
    }
}

#[test]
fn transition_rules_need_an_old_value() {
    let schema = CustomSchema::new(&schema_with(json!([])), PREFIX).unwrap();
    let new = json!({"spec": {"name": "b"}});
    // Create: rules using oldSelf are skipped.
    assert!(schema.validate(&new).is_empty());
    let errs = schema.validate_update(&new, &json!({"spec": {"name": "a"}}));
    let got: Vec<String> = errs
        .iter()
        .map(|c| format!("{}: {}", c.field, c.message))
        .collect();
    assert_eq!(
        got,
        vec!["spec.name: Invalid value: \"string\": Value is immutable"]
    );
    // The old object had no name: nothing to compare with.
    assert!(schema
        .validate_update(&new, &json!({"spec": {}}))
        .is_empty());
    assert!(schema
        .validate_update(&new, &json!({"spec": {"name": "b"}}))
        .is_empty());
}

#[test]
fn bad_rules_refuse_the_schema() {
    let cases: Vec<(Value, &str)> = vec![
        (
            json!([{"rule": "self.replicas >"}]),
            "spec.versions[0].schema.openAPIV3Schema.properties[spec].x-kubernetes-validations[0].rule: Invalid value: apiextensions.ValidationRule{Rule:\"self.replicas >\", Message:\"\", MessageExpression:\"\", Reason:(*apiextensions.FieldValueErrorReason)(nil), FieldPath:\"\", OptionalOldSelf:(*bool)(nil)}: compilation failed: ERROR: <input>:1:16: Syntax error: mismatched input '<EOF>' expecting",
        ),
        (
            json!([{"rule": " "}]),
            "spec.versions[0].schema.openAPIV3Schema.properties[spec].x-kubernetes-validations[0].rule: Required value: rule is not specified",
        ),
        (
            json!([{"rule": "true", "message": " "}]),
            "spec.versions[0].schema.openAPIV3Schema.properties[spec].x-kubernetes-validations[0].message: Invalid value: \" \": message must be non-empty if specified",
        ),
        (
            json!([{"rule": "true", "reason": "Nope"}]),
            "spec.versions[0].schema.openAPIV3Schema.properties[spec].x-kubernetes-validations[0].reason: Unsupported value: \"Nope\": supported values: \"FieldValueDuplicate\", \"FieldValueForbidden\", \"FieldValueInvalid\", \"FieldValueRequired\"",
        ),
        (
            json!([{"rule": "true\n&& true"}]),
            "spec.versions[0].schema.openAPIV3Schema.properties[spec].x-kubernetes-validations[0].message: Required value: message must be specified if rule contains line breaks",
        ),
    ];
    for (rules, want) in cases {
        let errs = CustomSchema::new(&schema_with(rules.clone()), PREFIX).unwrap_err();
        assert_eq!(errs.len(), 1, "{rules}: {errs:?}");
        let got = format!("{}: {}", errs[0].field, errs[0].message);
        assert!(got.starts_with(want), "{rules}:\n got {got}\nwant {want}");
    }
    // Rules are allowed under allOf, not under anyOf.
    let nested = |junctor: &str| {
        json!({"type": "object", "properties": {"a": {"type": "string"}},
               junctor: [{"x-kubernetes-validations": [{"rule": "true"}]}]})
    };
    assert!(CustomSchema::new(&nested("allOf"), PREFIX).is_ok());
    let errs = CustomSchema::new(&nested("anyOf"), PREFIX).unwrap_err();
    assert_eq!(
        format!("{}: {}", errs[0].field, errs[0].message),
        "spec.versions[0].schema.openAPIV3Schema.anyOf[0].x-kubernetes-validations: Forbidden: must be empty to be structural"
    );
}

#[test]
fn old_self_needs_correlatable_values() {
    let list = |list_type: Option<&str>| {
        let mut items = json!({"type": "array", "items": {"type": "object",
            "properties": {"k": {"type": "string"}},
            "x-kubernetes-validations": [{"rule": "self == oldSelf"}]}});
        if let Some(t) = list_type {
            items["x-kubernetes-list-type"] = json!(t);
            items["x-kubernetes-list-map-keys"] = json!(["k"]);
            items["items"]["required"] = json!(["k"]);
        }
        json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {"l": items}}}})
    };
    assert!(CustomSchema::new(&list(Some("map")), PREFIX).is_ok());
    let errs = CustomSchema::new(&list(None), PREFIX).unwrap_err();
    assert_eq!(
        format!("{}: {}", errs[0].field, errs[0].message),
        "spec.versions[0].schema.openAPIV3Schema.properties[spec].properties[l].items.x-kubernetes-validations[0].rule: Invalid value: \"self == oldSelf\": oldSelf cannot be used on the uncorrelatable portion of the schema within spec.versions[0].schema.openAPIV3Schema.properties[spec].properties[l]"
    );
    // Map-list items correlate by key on update.
    let schema = CustomSchema::new(&list(Some("map")), PREFIX).unwrap();
    let old = json!({"spec": {"l": [{"k": "a"}, {"k": "b"}]}});
    assert!(schema
        .validate_update(&json!({"spec": {"l": [{"k": "b"}, {"k": "a"}]}}), &old)
        .is_empty());
}

#[test]
fn optional_old_self_runs_on_create() {
    let rules = json!([{"rule": "!oldSelf.hasValue() || self.replicas >= oldSelf.value().replicas",
                        "message": "replicas may only grow", "optionalOldSelf": true}]);
    let schema = CustomSchema::new(&schema_with(rules), PREFIX).unwrap();
    assert!(schema
        .validate(&json!({"spec": {"replicas": 1}}))
        .is_empty());
    let errs = schema.validate_update(
        &json!({"spec": {"replicas": 1}}),
        &json!({"spec": {"replicas": 2}}),
    );
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(
        errs[0].message,
        "Invalid value: \"object\": replicas may only grow"
    );

    let errs = CustomSchema::new(
        &schema_with(json!([{"rule": "true", "optionalOldSelf": true}])),
        PREFIX,
    )
    .unwrap_err();
    assert_eq!(
        format!("{}: {}", errs[0].field, errs[0].message),
        "spec.versions[0].schema.openAPIV3Schema.properties[spec].x-kubernetes-validations[0].optionalOldSelf: Invalid value: true: may not be set if oldSelf is not used in rule"
    );
}

#[test]
fn no_defaults_in_top_level_metadata() {
    let schema = json!({"type": "object", "properties": {
        "metadata": {"type": "object", "properties": {"name": {"type": "string", "default": "x"}}}}});
    let errs = CustomSchema::new(&schema, PREFIX).unwrap_err();
    assert_eq!(
        format!("{}: {}", errs[0].field, errs[0].message),
        "spec.versions[0].schema.openAPIV3Schema.properties[metadata].properties[name].default: Forbidden: must not be set in top-level metadata"
    );
}
