//! Tables of cases for the CRD schema: structural checks, validation,
//! pruning and defaulting, with upstream's messages.

use serde_json::{json, Value};

use super::CustomSchema;

const PREFIX: &str = "spec.versions[0].schema.openAPIV3Schema";

/// The shape of kubernetes.io's CronTab example, plus a few fields that
/// exercise more of the schema language.
fn crontab_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "required": ["cronSpec"],
                "properties": {
                    "cronSpec": {"type": "string", "pattern": "^(\\d+|\\*)(/\\d+)?(\\s+(\\d+|\\*)(/\\d+)?){4}$"},
                    "image": {"type": "string", "maxLength": 10, "minLength": 2},
                    "replicas": {"type": "integer", "minimum": 1, "maximum": 10, "default": 1},
                    "ratio": {"type": "number", "multipleOf": 0.5, "exclusiveMinimum": true, "minimum": 0},
                    "policy": {"type": "string", "enum": ["Allow", "Forbid"], "default": "Allow"},
                    "when": {"type": "string", "format": "date-time"},
                    "port": {"x-kubernetes-int-or-string": true},
                    "note": {"type": "string", "nullable": true},
                    "tags": {"type": "array", "maxItems": 2, "minItems": 1,
                             "items": {"type": "string"}, "x-kubernetes-list-type": "set"},
                    "ports": {"type": "array", "x-kubernetes-list-type": "map",
                              "x-kubernetes-list-map-keys": ["name"],
                              "items": {"type": "object", "required": ["name"],
                                        "properties": {"name": {"type": "string"},
                                                       "port": {"type": "integer", "default": 80}}}},
                    "labels": {"type": "object", "maxProperties": 2,
                               "additionalProperties": {"type": "string"}},
                    "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": true,
                              "properties": {"known": {"type": "object", "properties": {"a": {"type": "string"}}}}},
                    "closed": {"type": "object", "additionalProperties": false},
                    "template": {"type": "object", "x-kubernetes-embedded-resource": true,
                                 "x-kubernetes-preserve-unknown-fields": true}
                }
            },
            "status": {"type": "object", "properties": {"replicas": {"type": "integer"}}}
        }
    })
}

fn schema() -> CustomSchema {
    CustomSchema::new(&crontab_schema(), PREFIX).expect("structural")
}

fn messages(causes: &[crate::field::FieldCause]) -> Vec<String> {
    causes
        .iter()
        .map(|c| format!("{}: {}", c.field, c.message))
        .collect()
}

#[test]
fn structural_schema_violations_carry_upstream_paths() {
    let cases: Vec<(Value, Vec<&str>)> = vec![
        (crontab_schema(), vec![]),
        (
            json!({"type": "object", "properties": {"spec": {"properties": {"a": {"type": "string"}}}}}),
            vec!["spec.versions[0].schema.openAPIV3Schema.properties[spec].type: Required value: must not be empty for specified object fields"],
        ),
        (
            json!({"properties": {}}),
            vec!["spec.versions[0].schema.openAPIV3Schema.type: Required value: must not be empty at the root"],
        ),
        (
            json!({"type": "string"}),
            vec!["spec.versions[0].schema.openAPIV3Schema.type: Invalid value: \"string\": must be object at the root"],
        ),
        (
            json!({"type": "object", "properties": {"a": {"type": "array"}}}),
            vec!["spec.versions[0].schema.openAPIV3Schema.properties[a].items: Required value: must be specified"],
        ),
        (
            json!({"type": "object", "properties": {"a": {"type": "array", "items": {}}}}),
            vec!["spec.versions[0].schema.openAPIV3Schema.properties[a].items.type: Required value: must not be empty for specified array items"],
        ),
        (
            json!({"type": "object", "additionalProperties": {"type": "string"}}),
            vec!["spec.versions[0].schema.openAPIV3Schema.additionalProperties: Forbidden: must not be used at the root"],
        ),
        (
            json!({"type": "object", "properties": {"a": {"type": "string"}},
                   "anyOf": [{"type": "object", "properties": {"a": {"default": "x"}}}]}),
            vec![
                "spec.versions[0].schema.openAPIV3Schema.anyOf[0].properties[a].default: Forbidden: must be undefined to be structural",
                "spec.versions[0].schema.openAPIV3Schema.anyOf[0].type: Forbidden: must be empty to be structural",
            ],
        ),
        (
            json!({"type": "object", "properties": {"a": {"type": "string"}},
                   "oneOf": [{"properties": {"b": {"maxLength": 2}}}]}),
            vec!["spec.versions[0].schema.openAPIV3Schema.properties[b]: Required value: because it is defined in spec.versions[0].schema.openAPIV3Schema.oneOf[0].properties[b]"],
        ),
        (
            // The int-or-string anyOf pattern is allowed.
            json!({"type": "object", "properties": {"p": {"x-kubernetes-int-or-string": true,
                   "anyOf": [{"type": "integer"}, {"type": "string"}]}}}),
            vec![],
        ),
        (
            json!({"type": "object", "properties": {"metadata": {"type": "object",
                   "properties": {"name": {"type": "string"}, "labels": {"type": "object"}}}}}),
            vec!["spec.versions[0].schema.openAPIV3Schema.properties[metadata]: Forbidden: must not specify anything other than name and generateName, but metadata is implicitly specified"],
        ),
        (
            json!({"type": "object", "properties": {"metadata": {"type": "object",
                   "properties": {"name": {"type": "string", "maxLength": 10}}}}}),
            vec![],
        ),
        (
            json!({"type": "object", "properties": {"e": {"type": "object", "x-kubernetes-embedded-resource": true}}}),
            vec!["spec.versions[0].schema.openAPIV3Schema.properties[e].properties: Required value: must not be empty if x-kubernetes-embedded-resource is true without x-kubernetes-preserve-unknown-fields"],
        ),
        (
            json!({"type": "object", "properties": {"e": {"x-kubernetes-embedded-resource": true, "x-kubernetes-preserve-unknown-fields": true}}}),
            vec!["spec.versions[0].schema.openAPIV3Schema.properties[e].type: Required value: must be object if x-kubernetes-embedded-resource is true"],
        ),
        (
            json!({"type": "object", "properties": {"a": {"type": "string", "pattern": "("}}}),
            vec!["spec.versions[0].schema.openAPIV3Schema.properties[a].pattern"],
        ),
        (
            json!({"type": "object", "properties": {"a": {"type": "array", "uniqueItems": true, "items": {"type": "string"}}}}),
            vec!["spec.versions[0].schema.openAPIV3Schema.properties[a].uniqueItems: Forbidden: uniqueItems cannot be set to true since the runtime complexity becomes quadratic"],
        ),
        (
            json!({"type": "object", "properties": {"a": {"type": "object", "properties": {"b": {"type": "string"}},
                   "additionalProperties": {"type": "string"}}}}),
            vec!["spec.versions[0].schema.openAPIV3Schema.properties[a].additionalProperties: Forbidden: additionalProperties and properties are mutual exclusive"],
        ),
        (
            json!({"type": "object", "properties": {"a": {"type": "object", "x-kubernetes-preserve-unknown-fields": false}}}),
            vec!["spec.versions[0].schema.openAPIV3Schema.properties[a].x-kubernetes-preserve-unknown-fields: Invalid value: false: must be true or undefined"],
        ),
        (
            json!({"type": "object", "properties": {"a": {"type": "array", "x-kubernetes-list-type": "map",
                   "items": {"type": "object", "properties": {"k": {"type": "string"}}}}}}),
            vec!["spec.versions[0].schema.openAPIV3Schema.properties[a].x-kubernetes-list-map-keys: Required value: must not be empty if x-kubernetes-list-type is map"],
        ),
        (
            json!({"type": "object", "properties": {"a": {"type": "array", "x-kubernetes-list-type": "map",
                   "x-kubernetes-list-map-keys": ["x"],
                   "items": {"type": "object", "properties": {"k": {"type": "string"}}}}}}),
            vec!["spec.versions[0].schema.openAPIV3Schema.properties[a].x-kubernetes-list-map-keys: Invalid value: []string{\"x\"}: entries must all be names of item properties"],
        ),
        (
            json!({"type": "object", "properties": {"a": {"type": "array", "x-kubernetes-list-type": "bag", "items": {"type": "string"}}}}),
            vec!["spec.versions[0].schema.openAPIV3Schema.properties[a].x-kubernetes-list-type: Unsupported value: \"bag\": supported values: \"atomic\", \"set\", \"map\""],
        ),
        (
            json!({"type": "object", "properties": {"a": {"type": "array", "x-kubernetes-list-type": "set",
                   "items": {"type": "object", "properties": {"k": {"type": "string"}}}}}}),
            vec!["spec.versions[0].schema.openAPIV3Schema.properties[a].items.x-kubernetes-map-type: Invalid value: \"null\": must be atomic as item of a list with x-kubernetes-list-type=set"],
        ),
        (
            json!({"type": "object", "properties": {"a": {"type": "array", "x-kubernetes-list-type": "map",
                   "x-kubernetes-list-map-keys": ["k"],
                   "items": {"type": "object", "nullable": true, "properties": {"k": {"type": "string", "nullable": true}}}}}}),
            vec![
                "spec.versions[0].schema.openAPIV3Schema.properties[a].items.nullable: Forbidden: cannot be nullable when x-kubernetes-list-type is map",
                "spec.versions[0].schema.openAPIV3Schema.properties[a].items.properties[k].default: Required value: this property is in x-kubernetes-list-map-keys, so it must have a default or be a required property",
                "spec.versions[0].schema.openAPIV3Schema.properties[a].items.properties[k].nullable: Forbidden: this property is in x-kubernetes-list-map-keys, so it cannot be nullable",
            ],
        ),
    ];
    for (schema, want) in cases {
        let got = match CustomSchema::new(&schema, PREFIX) {
            Ok(_) => Vec::new(),
            Err(errors) => messages(&errors),
        };
        assert_eq!(got.len(), want.len(), "{schema}: {got:#?}");
        for (g, w) in got.iter().zip(&want) {
            assert!(g.starts_with(w), "{schema}: got {g}, want {w}");
        }
    }
}

#[test]
fn validation_speaks_kube_openapi() {
    let s = schema();
    let base = json!({"apiVersion": "stable.example.com/v1", "kind": "CronTab",
                      "metadata": {"name": "x"}, "spec": {"cronSpec": "* * * * */5"}});
    let with = |patch: Value| {
        let mut obj = base.clone();
        json_patch::merge(&mut obj, &patch);
        obj
    };
    let cases: Vec<(Value, Vec<(&str, &str)>)> = vec![
        (base.clone(), vec![]),
        (
            with(json!({"spec": {"replicas": "three"}})),
            vec![("spec.replicas", "Invalid value: \"string\": spec.replicas in body must be of type integer: \"string\"")],
        ),
        (
            json!({"spec": {}}),
            vec![("spec.cronSpec", "Required value")],
        ),
        (
            with(json!({"spec": {"policy": "Maybe"}})),
            vec![("spec.policy", "Unsupported value: \"Maybe\": supported values: \"Allow\", \"Forbid\"")],
        ),
        (
            with(json!({"spec": {"policy": 5}})),
            vec![
                ("spec.policy", "Invalid value: \"integer\": spec.policy in body must be of type string: \"integer\""),
                ("spec.policy", "Unsupported value: 5: supported values: \"Allow\", \"Forbid\""),
            ],
        ),
        (
            with(json!({"spec": {"cronSpec": "every minute"}})),
            vec![("spec.cronSpec", "Invalid value: \"every minute\": spec.cronSpec in body should match '^(\\d+|\\*)(/\\d+)?(\\s+(\\d+|\\*)(/\\d+)?){4}$'")],
        ),
        (
            with(json!({"spec": {"image": "a-very-long-image"}})),
            vec![("spec.image", "Too long: may not be more than 10 bytes")],
        ),
        (
            with(json!({"spec": {"image": "a"}})),
            vec![("spec.image", "Invalid value: \"a\": spec.image in body should be at least 2 chars long")],
        ),
        (
            with(json!({"spec": {"replicas": 0}})),
            vec![("spec.replicas", "Invalid value: 0: spec.replicas in body should be greater than or equal to 1")],
        ),
        (
            with(json!({"spec": {"replicas": 11}})),
            vec![("spec.replicas", "Invalid value: 11: spec.replicas in body should be less than or equal to 10")],
        ),
        (
            with(json!({"spec": {"ratio": 0}})),
            vec![("spec.ratio", "Invalid value: 0: spec.ratio in body should be greater than 0")],
        ),
        (
            with(json!({"spec": {"ratio": 0.75}})),
            vec![("spec.ratio", "Invalid value: 0.75: spec.ratio in body should be a multiple of 0.5")],
        ),
        (
            with(json!({"spec": {"when": "yesterday"}})),
            vec![("spec.when", "Invalid value: \"yesterday\": spec.when in body must be of type date-time: \"yesterday\"")],
        ),
        (with(json!({"spec": {"when": "2024-05-01T10:00:00Z"}})), vec![]),
        (with(json!({"spec": {"port": "http"}})), vec![]),
        (with(json!({"spec": {"port": 8080}})), vec![]),
        (
            with(json!({"spec": {"port": true}})),
            vec![("spec.port", "Invalid value: \"boolean\": spec.port in body must be of type integer,string: \"boolean\"")],
        ),
        (json!({"spec": {"cronSpec": "* * * * *", "note": null}}), vec![]),
        (
            json!({"spec": {"cronSpec": "* * * * *", "image": null}}),
            vec![("spec.image", "Invalid value: \"null\": spec.image in body must be of type string: \"null\"")],
        ),
        (
            with(json!({"spec": {"tags": ["a", "b", "c"]}})),
            vec![
                ("spec.tags", "Too many: 3: must have at most 2 items"),
            ],
        ),
        (
            with(json!({"spec": {"tags": []}})),
            vec![("spec.tags", "Invalid value: 0: spec.tags in body should have at least 1 items")],
        ),
        (
            with(json!({"spec": {"tags": ["a", "a"]}})),
            vec![("spec.tags[1]", "Duplicate value: \"a\"")],
        ),
        (
            with(json!({"spec": {"ports": [{"name": "http"}, {"name": "http", "port": 1}]}})),
            vec![("spec.ports[1]", "Duplicate value: map[string]interface {}{\"name\":\"http\"}")],
        ),
        (
            with(json!({"spec": {"ports": [{"port": 1}]}})),
            vec![("spec.ports[0].name", "Required value")],
        ),
        (
            with(json!({"spec": {"labels": {"a": "1", "b": 2}}})),
            vec![("spec.labels.b", "Invalid value: \"integer\": spec.labels.b in body must be of type string: \"integer\"")],
        ),
        (
            with(json!({"spec": {"labels": {"a": "1", "b": "2", "c": "3"}}})),
            vec![("spec.labels", "Too many: 3: must have at most 2 items")],
        ),
        (
            with(json!({"spec": {"template": {"kind": "Pod"}}})),
            vec![("spec.template.apiVersion", "Required value: must not be empty")],
        ),
        (
            with(json!({"spec": {"template": {"apiVersion": "a/b/c", "kind": "Pod_x"}}})),
            vec![
                ("spec.template.apiVersion", "Invalid value: \"a/b/c\": unexpected GroupVersion string: a/b/c"),
                ("spec.template.kind", "Invalid value: \"Pod_x\": may have mixed case, but should otherwise match: a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"),
            ],
        ),
        (
            with(json!({"spec": {"closed": {"x": 1}}})),
            vec![("spec.closed", "Invalid value: \"x\": spec.closed.x in body is a forbidden property")],
        ),
        (
            with(json!({"spec": {"template": {"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "a/b", "namespace": "Bad", "labels": {"ok": "bad value"}}}}})),
            vec![
                ("spec.template.metadata.name", "Invalid value: \"a/b\": may not contain '/'"),
                ("spec.template.metadata.namespace", "Invalid value: \"Bad\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"),
                ("spec.template.metadata.labels", "Invalid value: \"bad value\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"),
            ],
        ),
        (
            with(json!({"spec": "nope"})),
            vec![("spec", "Invalid value: \"string\": spec in body must be of type object: \"string\"")],
        ),
    ];
    for (obj, want) in cases {
        let got: Vec<(String, String)> = s
            .validate(&obj)
            .into_iter()
            .map(|c| (c.field, c.message))
            .collect();
        let want: Vec<(String, String)> = want
            .into_iter()
            .map(|(f, m)| (f.to_owned(), m.to_owned()))
            .collect();
        assert_eq!(got, want, "{obj}");
    }
}

#[test]
fn type_errors_use_the_type_invalid_reason() {
    let causes = schema().validate(&json!({"spec": {"cronSpec": 5}}));
    assert_eq!(causes[0].reason, "FieldValueTypeInvalid");
    let causes =
        schema().validate(&json!({"spec": {"cronSpec": "* * * * *", "image": "much-too-long"}}));
    assert_eq!(causes[0].reason, "FieldValueTooLong");
}

#[test]
fn pruning_drops_unknown_fields_and_reports_them() {
    let s = schema();
    let mut obj = json!({
        "apiVersion": "stable.example.com/v1", "kind": "CronTab",
        "metadata": {"name": "x", "labels": {"a": "b"}},
        "unknownTop": 1,
        "spec": {
            "cronSpec": "* * * * *", "bogus": true,
            "ports": [{"name": "a", "junk": 1}],
            "labels": {"free": "form"},
            "extra": {"anything": {"goes": 1}, "known": {"a": "x", "b": "pruned"}},
            "template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"x": 1}}
        },
        "status": {"replicas": 1, "ready": 2}
    });
    let pruned = s.prune(&mut obj);
    assert_eq!(
        pruned,
        vec![
            "spec.bogus",
            "spec.extra.known.b",
            "spec.ports[0].junk",
            "status.ready",
            "unknownTop",
        ]
    );
    assert_eq!(
        obj,
        json!({
            "apiVersion": "stable.example.com/v1", "kind": "CronTab",
            "metadata": {"name": "x", "labels": {"a": "b"}},
            "spec": {
                "cronSpec": "* * * * *",
                "ports": [{"name": "a"}],
                "labels": {"free": "form"},
                "extra": {"anything": {"goes": 1}, "known": {"a": "x"}},
                "template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"x": 1}}
            },
            "status": {"replicas": 1}
        })
    );
}

#[test]
fn defaulting_fills_absent_and_null_fields() {
    let s = schema();
    let cases = vec![
        (
            json!({"spec": {"cronSpec": "* * * * *"}}),
            json!({"spec": {"cronSpec": "* * * * *", "replicas": 1, "policy": "Allow"}}),
        ),
        (
            json!({"spec": {"cronSpec": "x", "replicas": null, "policy": "Forbid"}}),
            json!({"spec": {"cronSpec": "x", "replicas": 1, "policy": "Forbid"}}),
        ),
        (
            json!({"spec": {"cronSpec": "x", "replicas": 3, "policy": "Forbid",
                            "ports": [{"name": "a"}, {"name": "b", "port": 9}]}}),
            json!({"spec": {"cronSpec": "x", "replicas": 3, "policy": "Forbid",
                            "ports": [{"name": "a", "port": 80}, {"name": "b", "port": 9}]}}),
        ),
        (json!({}), json!({})),
    ];
    for (mut obj, want) in cases {
        s.default(&mut obj);
        assert_eq!(obj, want);
    }
    // A default object is itself defaulted below; nullable nulls stay.
    let s = CustomSchema::new(
        &json!({"type": "object", "properties": {
            "spec": {"type": "object", "default": {},
                     "properties": {"size": {"type": "integer", "default": 3},
                                    "n": {"type": "string", "nullable": true, "default": "d"}}},
            "m": {"type": "object", "additionalProperties": {"type": "string", "default": "v"}},
            "l": {"type": "array", "items": {"type": "string", "default": "i"}}
        }}),
        PREFIX,
    )
    .unwrap();
    let mut obj = json!({"m": {"k": null}, "l": [null, "x"]});
    s.default(&mut obj);
    assert_eq!(
        obj,
        json!({"m": {"k": "v"}, "l": ["i", "x"], "spec": {"size": 3, "n": "d"}})
    );
    let mut obj = json!({"spec": {"n": null}});
    s.default(&mut obj);
    assert_eq!(obj, json!({"spec": {"n": null, "size": 3}}));
}

#[test]
fn formats_follow_strfmt() {
    use super::format::is_valid;
    let cases = [
        ("date", "2024-02-29", true),
        ("date", "2024-02-30", false),
        ("date-time", "2024-02-01T10:00:00.5+02:00", true),
        ("date-time", "2024-02-01", false),
        ("date-time", "2024-02-01T10:00:00", false),
        ("date-time", "2024-02-01t10:00:00z", true),
        ("email", "a@b.example", true),
        ("email", "not an email", false),
        ("hostname", "my-host.example.com", true),
        ("hostname", "-bad", false),
        ("ipv4", "10.0.0.1", true),
        ("ipv4", "10.0.0", false),
        ("ipv6", "fd00::1", true),
        ("ipv6", "10.0.0.1", false),
        ("uuid", "123e4567-e89b-12d3-a456-426614174000", true),
        ("uuid", "123e4567", false),
        ("byte", "aGVsbG8=", true),
        ("byte", "not base64!", false),
        ("uri", "https://example.com/a%20b", true),
        ("uri", "bad%zz", false),
        ("uri", "relative/path", false),
        ("uri", "/absolute/path", true),
        ("uuid4", "123e4567-e89b-42d3-a456-426614174000", true),
        ("uuid4", "123e4567-e89b-12d3-a456-426614174000", false),
        ("hexcolor", "#fff", true),
        ("duration", "1h30m", true),
        ("duration", "3 days", true),
        ("duration", "soon", false),
        ("bsonobjectid", "507f1f77bcf86cd799439011", true),
        ("cidr", "10.0.0.0/8", true),
        ("cidr", "10.0.0.0/33", false),
        ("int32", "anything", true),
        ("made-up", "anything", true),
    ];
    for (format, text, want) in cases {
        assert_eq!(is_valid(format, text), want, "{format} {text}");
    }
}

#[test]
fn go_float_matches_go_v() {
    use super::path::go_float;
    for (f, want) in [
        (1.0, "1"),
        (0.5, "0.5"),
        (100000.0, "100000"),
        (1e6, "1e+06"),
        (1234567.0, "1.234567e+06"),
        (0.0001, "0.0001"),
        (0.00001, "1e-05"),
        (-2.5, "-2.5"),
    ] {
        assert_eq!(go_float(f), want);
    }
}

#[test]
fn updates_ratchet_unchanged_values() {
    let s = schema();
    let old = json!({"spec": {"cronSpec": "* * * * *", "replicas": 20,
                              "ports": [{"name": "a", "port": "x"}]}});
    // Only cronSpec changes: the stored, now-invalid values stay accepted.
    let new = json!({"spec": {"cronSpec": "*/5 * * * *", "replicas": 20,
                              "ports": [{"name": "a", "port": "x"}]}});
    assert!(s.validate_update(&new, &old).is_empty());
    assert_eq!(s.validate(&new).len(), 2);
    // A changed value is held to the schema again.
    let new = json!({"spec": {"cronSpec": "* * * * *", "replicas": 30,
                              "ports": [{"name": "a", "port": "y"}]}});
    let fields: Vec<String> = s
        .validate_update(&new, &old)
        .into_iter()
        .map(|c| c.field)
        .collect();
    assert_eq!(fields, vec!["spec.replicas", "spec.ports[0].port"]);
}

#[test]
fn defaults_must_be_pruned_and_valid() {
    let with_default = |prop: Value| json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {"p": prop}}}});
    let cases: Vec<(Value, Vec<&str>)> = vec![
        (json!({"type": "integer", "default": 3}), vec![]),
        (
            json!({"type": "integer", "default": "three"}),
            vec!["spec.versions[0].schema.openAPIV3Schema.properties[spec].properties[p].default: Invalid value: \"string\":  in body must be of type integer: \"string\""],
        ),
        (
            json!({"type": "object", "properties": {"a": {"type": "string", "maxLength": 1}}, "default": {"a": "long", "b": 1}}),
            vec![
                "spec.versions[0].schema.openAPIV3Schema.properties[spec].properties[p].default: Invalid value: {\"a\":\"long\",\"b\":1}: must not have unknown fields",
                "spec.versions[0].schema.openAPIV3Schema.properties[spec].properties[p].default.a: Too long: may not be more than 1 bytes",
            ],
        ),
        (
            json!({"type": "string", "default": "x", "x-kubernetes-validations": [{"rule": "self != 'x'"}]}),
            vec!["spec.versions[0].schema.openAPIV3Schema.properties[spec].properties[p].default: Invalid value: \"string\": failed rule: self != 'x'"],
        ),
    ];
    for (prop, want) in cases {
        let got = match CustomSchema::new(&with_default(prop.clone()), PREFIX) {
            Ok(_) => Vec::new(),
            Err(errs) => messages(&errs),
        };
        assert_eq!(got, want, "{prop}");
    }
}

#[test]
fn list_duplicates_ratchet_on_the_old_object() {
    let s = schema();
    let dup = json!({"spec": {"cronSpec": "* * * * *", "tags": ["a", "a"]}});
    // Already duplicated before: still accepted, as upstream.
    assert!(s.validate_update(&dup, &dup).is_empty());
    let fields: Vec<String> = s
        .validate_update(&dup, &json!({"spec": {"cronSpec": "* * * * *"}}))
        .into_iter()
        .map(|c| c.field)
        .collect();
    assert_eq!(fields, vec!["spec.tags[1]"]);
}
