//! CRD object cases, built from the shape of kubernetes.io's CronTab example.

use serde_json::{json, Value};

use super::{default_crd, validate_crd, validate_crd_update};

fn crontab() -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "crontabs.stable.example.com"},
        "spec": {
            "group": "stable.example.com",
            "versions": [{
                "name": "v1",
                "served": true,
                "storage": true,
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "properties": {
                        "spec": {"type": "object", "properties": {
                            "cronSpec": {"type": "string"},
                            "image": {"type": "string"},
                            "replicas": {"type": "integer"}
                        }},
                        "status": {"type": "object", "properties": {"replicas": {"type": "integer"}}}
                    }
                }},
                "subresources": {"status": {}, "scale": {
                    "specReplicasPath": ".spec.replicas",
                    "statusReplicasPath": ".status.replicas"
                }},
                "additionalPrinterColumns": [
                    {"name": "Spec", "type": "string", "jsonPath": ".spec.cronSpec"},
                    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}
                ],
                "selectableFields": [{"jsonPath": ".spec.image"}]
            }],
            "scope": "Namespaced",
            "names": {"plural": "crontabs", "singular": "crontab", "kind": "CronTab",
                      "listKind": "CronTabList", "shortNames": ["ct"]},
            "conversion": {"strategy": "None"}
        }
    })
}

fn with(patch: Value) -> Value {
    let mut crd = crontab();
    json_patch::merge(&mut crd, &patch);
    crd
}

fn version_with(patch: Value) -> Value {
    let mut crd = crontab();
    json_patch::merge(&mut crd["spec"]["versions"][0], &patch);
    crd
}

fn lines(causes: Vec<crate::field::FieldCause>) -> Vec<String> {
    causes
        .into_iter()
        .map(|c| format!("{}: {}", c.field, c.message))
        .collect()
}

#[test]
fn crd_rules_speak_upstream() {
    let cases: Vec<(Value, Vec<&str>)> = vec![
        (crontab(), vec![]),
        (
            with(json!({"metadata": {"name": "crontab.stable.example.com"}})),
            vec!["metadata.name: Invalid value: \"crontab.stable.example.com\": must be spec.names.plural+\".\"+spec.group"],
        ),
        (
            with(json!({"metadata": {"name": "crontabs.example"}, "spec": {"group": "example"}})),
            vec!["spec.group: Invalid value: \"example\": should be a domain with at least one dot"],
        ),
        (
            with(json!({"spec": {"scope": "Global"}})),
            vec!["spec.scope: Unsupported value: \"Global\": supported values: \"Cluster\", \"Namespaced\""],
        ),
        (
            with(json!({"spec": {"scope": null}})),
            vec!["spec.scope: Required value"],
        ),
        (
            version_with(json!({"storage": false})),
            vec!["spec.versions: Invalid value: "],
        ),
        (
            version_with(json!({"name": "V1"})),
            vec!["spec.versions[0].name: Invalid value: \"V1\": a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"],
        ),
        (
            version_with(json!({"schema": null, "selectableFields": null})),
            vec!["spec.versions[0].schema.openAPIV3Schema: Required value: schemas are required"],
        ),
        (
            version_with(json!({"schema": {"openAPIV3Schema": {"properties": {"spec": {"properties": {"cronSpec": {"type": null}}}}}}})),
            vec![
                "spec.versions[0].schema.openAPIV3Schema.properties[spec].properties[cronSpec].type: Required value: must not be empty for specified object fields",
            ],
        ),
        (
            with(json!({"spec": {"names": {"plural": "CronTabs", "singular": null, "kind": "Cron_Tab", "listKind": "Cron_Tab"}}, "metadata": {"name": "CronTabs.stable.example.com"}})),
            vec![
                "spec.names.singular: Required value",
                "spec.names.plural: Invalid value: \"CronTabs\"",
                "spec.names.kind: Invalid value: \"Cron_Tab\": may have mixed case, but should otherwise match: a DNS-1035 label",
                "spec.names.listKind: Invalid value: \"Cron_Tab\": may have mixed case, but should otherwise match: a DNS-1035 label",
                "spec.names.listKind: Invalid value: \"Cron_Tab\": kind and listKind may not be the same",
            ],
        ),
        (
            version_with(json!({"subresources": {"scale": {"specReplicasPath": ".status.replicas", "statusReplicasPath": "status.replicas", "labelSelectorPath": ".metadata.labels"}}})),
            vec![
                "spec.versions[0].subresources.scale.specReplicasPath: Invalid value: \".status.replicas\": should be a json path under .spec",
                "spec.versions[0].subresources.scale.statusReplicasPath: Invalid value: \"status.replicas\": must be a simple json path starting with .",
                "spec.versions[0].subresources.scale.labelSelectorPath: Invalid value: \".metadata.labels\": should be a json path under either .spec or .status",
            ],
        ),
        (
            version_with(json!({"additionalPrinterColumns": [{"type": "time", "jsonPath": "spec"}, {"name": "x", "type": "string", "format": "nope", "jsonPath": ".a"}]})),
            vec![
                "spec.versions[0].additionalPrinterColumns[0].name: Required value",
                "spec.versions[0].additionalPrinterColumns[0].type: Invalid value: \"time\": must be one of boolean,date,integer,number,string",
                "spec.versions[0].additionalPrinterColumns[0].JSONPath: Invalid value: \"spec\": must be a simple json path starting with .",
                "spec.versions[0].additionalPrinterColumns[1].format: Invalid value: \"nope\": must be one of byte,date,date-time,double,float,int32,int64,password",
            ],
        ),
        (
            version_with(json!({"selectableFields": [{"jsonPath": ".spec.nope"}, {"jsonPath": ".spec"}, {"jsonPath": ".spec.image"}, {"jsonPath": ".spec.image"}]})),
            vec![
                "spec.versions[0].selectableFields[0].jsonPath: Invalid value: \".spec.nope\": is an invalid path: does not refer to a valid field",
                "spec.versions[0].selectableFields[1].jsonPath: Invalid value: \".spec\": must point to a field of type string, boolean or integer. Enum string fields and strings with formats are allowed.",
                "spec.versions[0].selectableFields[3].jsonPath: Duplicate value: \".spec.image\"",
            ],
        ),
        (
            with(json!({"spec": {"conversion": {"strategy": "Magic"}}})),
            vec!["spec.conversion.strategy: Unsupported value: \"Magic\": supported values: \"None\", \"Webhook\""],
        ),
        (
            with(json!({"spec": {"conversion": {"strategy": "Webhook"}}})),
            vec!["spec.conversion.webhookClientConfig: Required value: required when strategy is set to Webhook"],
        ),
        (
            with(json!({"spec": {"conversion": {"strategy": "Webhook", "webhook": {
                "clientConfig": {"url": "https://conv.example.com"}, "conversionReviewVersions": ["v2"]}}}})),
            vec!["spec.conversion.conversionReviewVersions: Invalid value: [\"v2\"]: must include at least one of v1, v1beta1"],
        ),
        (
            version_with(json!({"schema": {"openAPIV3Schema": {"additionalProperties": true}}})),
            vec![
                "spec.versions[0].schema.openAPIV3Schema: Invalid value: ",
                "spec.versions[0].schema.openAPIV3Schema.additionalProperties: Forbidden: must not be used at the root",
            ],
        ),
        (
            version_with(json!({"schema": {"openAPIV3Schema": {"properties": {"spec": {"x-kubernetes-validations": [{"rule": "true", "fieldPath": ".nope"}]}}}}})),
            vec!["spec.versions[0].schema.openAPIV3Schema.properties[spec].x-kubernetes-validations[0].fieldPath: Invalid value: \".nope\": fieldPath must be a valid path"],
        ),
        (
            version_with(json!({"deprecationWarning": "old"})),
            vec!["spec.versions[0].deprecationWarning: Invalid value: \"old\": can only be set for deprecated versions"],
        ),
    ];
    for (crd, want) in cases {
        let got = lines(validate_crd(&crd));
        assert_eq!(got.len(), want.len(), "{got:#?}");
        for (g, w) in got.iter().zip(&want) {
            assert!(g.starts_with(w), "\n got {g}\nwant {w}");
        }
    }
}

#[test]
fn updates_keep_identity_and_stored_versions() {
    let mut old = crontab();
    old["status"] = json!({"storedVersions": ["v1beta1", "v1"],
                           "conditions": [{"type": "Established", "status": "True"}]});
    let mut new = old.clone();
    new["spec"]["scope"] = json!("Cluster");
    new["spec"]["group"] = json!("other.example.com");
    let got = lines(validate_crd_update(&old, &new));
    assert_eq!(
        got,
        vec![
            "spec.scope: Invalid value: \"Cluster\": field is immutable",
            "spec.group: Invalid value: \"other.example.com\": field is immutable",
            "status.storedVersions[0]: Invalid value: \"v1beta1\": missing from spec.versions; v1beta1 was previously a storage version, and must remain in spec.versions until a storage migration ensures no data remains persisted in v1beta1 and removes v1beta1 from status.storedVersions",
        ]
    );
    // Before the CRD is established, the scope may still change.
    old["status"]["conditions"] = json!([]);
    old["status"]["storedVersions"] = json!(["v1"]);
    new = old.clone();
    new["spec"]["scope"] = json!("Cluster");
    assert!(validate_crd_update(&old, &new).is_empty());
}

#[test]
fn defaults_follow_v1() {
    let mut crd = crontab();
    let names = crd["spec"]["names"].as_object_mut().unwrap();
    names.remove("singular");
    names.remove("listKind");
    crd["spec"].as_object_mut().unwrap().remove("conversion");
    default_crd(&mut crd);
    assert_eq!(crd["spec"]["names"]["singular"], "crontab");
    assert_eq!(crd["spec"]["names"]["listKind"], "CronTabList");
    assert_eq!(crd["spec"]["conversion"], json!({"strategy": "None"}));
    assert_eq!(crd["status"]["storedVersions"], json!(["v1"]));
    assert!(validate_crd(&crd).is_empty());

    let mut crd = with(
        json!({"spec": {"conversion": {"strategy": "Webhook", "webhook": {
        "clientConfig": {"service": {"name": "conv", "namespace": "default"}},
        "conversionReviewVersions": ["v1"]}}}}),
    );
    default_crd(&mut crd);
    assert_eq!(
        crd["spec"]["conversion"]["webhook"]["clientConfig"]["service"]["port"],
        443
    );
    assert!(validate_crd(&crd).is_empty());
}
