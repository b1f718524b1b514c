//! Tables of label selectors: the string syntax, the structured form,
//! matching semantics, canonical printing and upstream's error texts.

use std::collections::{BTreeMap, HashMap};

use serde_json::json;

use super::*;

const NAME_PART_MESSAGE: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const LABEL_VALUE_MESSAGE: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(key, value)| (key.to_string(), value.to_string()))
        .collect()
}

#[test]
fn parse_accepts_every_operator_and_prints_canonical_form() {
    let cases = [
        ("", ""),
        ("   ", ""),
        ("app=web", "app=web"),
        ("app==web", "app==web"),
        ("app!=web", "app!=web"),
        ("app in (web)", "app in (web)"),
        (" app  in  ( web , db ) ", "app in (db,web)"),
        ("app notin (b,a,b)", "app notin (a,b)"),
        ("app", "app"),
        ("!app", "!app"),
        ("! app", "!app"),
        ("replicas>2", "replicas>2"),
        ("replicas<2", "replicas<2"),
        ("tier=frontend,app=web", "app=web,tier=frontend"),
        ("a, !b ,c=d", "a,!b,c=d"),
        ("example.com/app=web", "example.com/app=web"),
        ("app=", "app="),
        ("app!=", "app!="),
        ("app in ()", "app in ()"),
        ("app in (,a)", "app in (,a)"),
        ("app in (a,)", "app in (,a)"),
        ("app in (a,,b)", "app in (,a,b)"),
        ("in in (in,notin)", "in in (in,notin)"),
        ("notin notin (x)", "notin notin (x)"),
        ("a\tin\n(x)", "a in (x)"),
    ];
    for (input, expected) in cases {
        let selector = LabelSelector::parse(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
        assert_eq!(selector.to_string(), expected, "input {input:?}");
        let reparsed: LabelSelector = expected.parse().expect(expected);
        assert_eq!(reparsed, selector, "round trip of {input:?}");
    }
}

#[test]
fn parse_keeps_operators_and_values_for_callers() {
    let selector = LabelSelector::parse("tier notin (b,a),app=web,!old").expect("valid");
    let summary: Vec<(&str, Operator, Vec<&str>)> = selector
        .requirements()
        .iter()
        .map(|r| {
            (
                r.key(),
                r.operator(),
                r.values().iter().map(String::as_str).collect(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("app", Operator::Equals, vec!["web"]),
            ("old", Operator::DoesNotExist, vec![]),
            ("tier", Operator::NotIn, vec!["a", "b"]),
        ]
    );
}

#[test]
fn parse_reports_upstream_errors() {
    let cases: Vec<(&str, String)> = vec![
        (
            "a b",
            "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt".into(),
        ),
        ("a=b,", "found '', expected: identifier after ','".into()),
        ("a=b,,c", "found ',', expected: identifier after ','".into()),
        ("a=b c", "found 'c', expected: ',' or 'end of string'".into()),
        ("!a=b", "found '=', expected: ',' or 'end of string'".into()),
        ("=a", "found '=', expected: !, identifier, or 'end of string'".into()),
        (",a", "found ',', expected: !, identifier, or 'end of string'".into()),
        ("!", "unable to parse requirement: found '', expected: identifier".into()),
        ("!=a", "found '!=', expected: !, identifier, or 'end of string'".into()),
        ("! =a", "unable to parse requirement: found '=', expected: identifier".into()),
        (
            // Label values cannot start with '-', so negative bounds are rejected.
            "x>-1",
            format!("unable to parse requirement: values[0][x]: Invalid value: \"-1\": {LABEL_VALUE_MESSAGE}"),
        ),
        ("a in", "unable to parse requirement: found '' expected: '('".into()),
        ("a in b", "unable to parse requirement: found 'b' expected: '('".into()),
        ("a in (b", "unable to parse requirement: found '', expected: ',' or ')'".into()),
        ("a in (b c)", "unable to parse requirement: found 'c', expected: ',' or ')'".into()),
        (
            "a in (=)",
            "unable to parse requirement: found '=', expected: ',', ')' or identifier".into(),
        ),
        (
            "a in (b,=)",
            "unable to parse requirement: found '=', expected: ',', or identifier".into(),
        ),
        ("a=(b)", "unable to parse requirement: found '(', expected: identifier".into()),
        ("a==!", "unable to parse requirement: found '!', expected: identifier".into()),
        (
            "Foo_=bar",
            format!("unable to parse requirement: <nil>: Invalid value: \"Foo_\": {NAME_PART_MESSAGE}"),
        ),
        (
            "a/b/c",
            "unable to parse requirement: <nil>: Invalid value: \"a/b/c\": a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')".into(),
        ),
        (
            "app=-web",
            format!("unable to parse requirement: values[0][app]: Invalid value: \"-web\": {LABEL_VALUE_MESSAGE}"),
        ),
        (
            "app in (-a,-b)",
            format!(
                "unable to parse requirement: [values[0][app]: Invalid value: \"-a\": {LABEL_VALUE_MESSAGE}, values[1][app]: Invalid value: \"-b\": {LABEL_VALUE_MESSAGE}]"
            ),
        ),
        (
            "x>a",
            "unable to parse requirement: values[0]: Invalid value: \"a\": for 'Gt', 'Lt' operators, the value must be an integer".into(),
        ),
        (
            "x<",
            "unable to parse requirement: values[0]: Invalid value: \"\": for 'Gt', 'Lt' operators, the value must be an integer".into(),
        ),
    ];
    for (input, message) in cases {
        let error = LabelSelector::parse(input).expect_err(input);
        assert_eq!(error.to_string(), message, "input {input:?}");
    }
}

#[test]
fn matches_follows_upstream_semantics_for_absent_keys() {
    let object = labels(&[
        ("app", "web"),
        ("tier", "frontend"),
        ("version", "3"),
        ("empty", ""),
    ]);
    let cases = [
        ("", true),
        ("app=web", true),
        ("app==web", true),
        ("app=db", false),
        ("app!=db", true),
        ("app!=web", false),
        ("missing!=x", true),
        ("missing=x", false),
        ("missing=", false),
        ("empty=", true),
        ("empty!=", false),
        ("app in (db,web)", true),
        ("app in (db)", false),
        ("missing in (a)", false),
        ("app notin (web)", false),
        ("app notin (db)", true),
        ("missing notin (a)", true),
        ("app", true),
        ("missing", false),
        ("!app", false),
        ("!missing", true),
        ("version>2", true),
        ("version>3", false),
        ("version<4", true),
        ("version<3", false),
        ("app>1", false),
        ("missing<1", false),
        ("app=web,tier=frontend", true),
        ("app=web,tier=backend", false),
        ("app=web,!canary,tier in (frontend)", true),
    ];
    for (input, expected) in cases {
        let selector = LabelSelector::parse(input).expect(input);
        assert_eq!(selector.matches(&object), expected, "input {input:?}");
    }
}

#[test]
fn matches_reads_hash_maps_and_raw_json_labels_alike() {
    let selector = LabelSelector::parse("app=web,!canary").expect("valid");
    let hash_map: HashMap<String, String> = HashMap::from([("app".into(), "web".into())]);
    assert!(selector.matches(&hash_map));

    let cases = [
        (Some(json!({"app": "web"})), true),
        (Some(json!({"app": "web", "canary": "true"})), false),
        (Some(json!({"app": 1})), false),
        (Some(json!(null)), false),
        (None, false),
    ];
    for (raw, expected) in cases {
        assert_eq!(
            selector.matches_value(raw.as_ref()),
            expected,
            "labels {raw:?}"
        );
    }
    assert!(LabelSelector::everything().matches_value(None));
    assert!(LabelSelector::parse("!app")
        .expect("valid")
        .matches_value(None));
}

#[test]
fn structured_selectors_convert_like_label_selector_as_selector() {
    let cases = [
        (json!({}), ""),
        (json!({"matchLabels": null, "matchExpressions": null}), ""),
        (json!({"matchLabels": {"app": "web"}}), "app=web"),
        (
            json!({
                "matchLabels": {"tier": "frontend", "app": "web"},
                "matchExpressions": [
                    {"key": "env", "operator": "In", "values": ["prod", "dev"]},
                    {"key": "canary", "operator": "DoesNotExist"},
                    {"key": "zone", "operator": "NotIn", "values": ["a"]},
                    {"key": "gpu", "operator": "Exists", "values": []}
                ]
            }),
            "app=web,!canary,env in (dev,prod),gpu,tier=frontend,zone notin (a)",
        ),
        (
            json!({"matchExpressions": [{"key": "app", "operator": "In", "values": ["web"]}], "unknownField": 1}),
            "app in (web)",
        ),
    ];
    for (raw, expected) in cases {
        let selector = LabelSelector::from_value(&raw).unwrap_or_else(|e| panic!("{raw}: {e}"));
        assert_eq!(selector.to_string(), expected, "selector {raw}");
        assert!(!selector.is_nothing(), "selector {raw}");
    }
}

#[test]
fn structured_selector_matches_objects() {
    let selector = LabelSelector::from_value(&json!({
        "matchLabels": {"app": "web"},
        "matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["dev"]}]
    }))
    .expect("valid");
    let cases = [
        (labels(&[("app", "web")]), true),
        (labels(&[("app", "web"), ("env", "prod")]), true),
        (labels(&[("app", "web"), ("env", "dev")]), false),
        (labels(&[("env", "prod")]), false),
    ];
    for (object, expected) in cases {
        assert_eq!(selector.matches(&object), expected, "labels {object:?}");
    }
}

#[test]
fn null_structured_selector_matches_nothing_and_empty_matches_everything() {
    let nothing = LabelSelector::from_value(&json!(null)).expect("null is allowed");
    assert!(nothing.is_nothing());
    assert!(!nothing.is_empty());
    assert!(!nothing.matches(&labels(&[])));
    assert_eq!(nothing.to_string(), "");

    let everything = LabelSelector::from_value(&json!({})).expect("empty is allowed");
    assert!(everything.is_empty());
    assert!(everything.matches(&labels(&[("any", "thing")])));
}

#[test]
fn structured_selector_errors_use_upstream_text() {
    let cases: Vec<(serde_json::Value, String)> = vec![
        (
            json!({"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]}),
            "\"Gt\" is not a valid label selector operator".into(),
        ),
        (
            json!({"matchExpressions": [{"key": "a", "operator": "in", "values": ["x"]}]}),
            "\"in\" is not a valid label selector operator".into(),
        ),
        (
            json!({"matchExpressions": [{"key": "a", "operator": "In"}]}),
            "values: Invalid value: []string(nil): for 'in', 'notin' operators, values set can't be empty".into(),
        ),
        (
            json!({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": []}]}),
            "values: Invalid value: []string(nil): for 'in', 'notin' operators, values set can't be empty".into(),
        ),
        (
            json!({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x", "y"]}]}),
            "values: Invalid value: []string{\"x\", \"y\"}: values set must be empty for exists and does not exist".into(),
        ),
        (
            json!({"matchExpressions": [{"operator": "Exists"}]}),
            format!("key: Invalid value: \"\": name part must be non-empty; {NAME_PART_MESSAGE}"),
        ),
        (
            json!({"matchLabels": {"Foo_": "x"}}),
            format!("key: Invalid value: \"Foo_\": {NAME_PART_MESSAGE}"),
        ),
        (
            json!({"matchLabels": {"app": "-web"}}),
            format!("values[0][app]: Invalid value: \"-web\": {LABEL_VALUE_MESSAGE}"),
        ),
        (
            json!({"matchExpressions": [{"key": "Foo_", "operator": "In"}]}),
            format!(
                "[key: Invalid value: \"Foo_\": {NAME_PART_MESSAGE}, values: Invalid value: []string(nil): for 'in', 'notin' operators, values set can't be empty]"
            ),
        ),
    ];
    for (raw, message) in cases {
        let error = LabelSelector::from_value(&raw).expect_err(&raw.to_string());
        assert_eq!(error.to_string(), message, "selector {raw}");
    }
}

#[test]
fn structured_selector_of_the_wrong_shape_is_malformed() {
    let cases = [
        json!("app=web"),
        json!({"matchLabels": "app=web"}),
        json!({"matchLabels": {"app": 1}}),
    ];
    for raw in cases {
        let error = LabelSelector::from_value(&raw).expect_err(&raw.to_string());
        assert!(
            matches!(error, SelectorError::Malformed(_)),
            "selector {raw}: {error:?}"
        );
        assert!(
            error.to_string().starts_with("invalid label selector: "),
            "{error}"
        );
    }
}

#[test]
fn requirement_new_validates_value_count_per_operator() {
    let ok = [
        ("a", Operator::Equals, vec!["x"]),
        ("a", Operator::In, vec!["x", "y"]),
        ("a", Operator::Exists, vec![]),
        ("a", Operator::GreaterThan, vec!["5"]),
    ];
    for (key, operator, values) in ok {
        let values: Vec<String> = values.into_iter().map(String::from).collect();
        assert!(
            Requirement::new(key, operator, values.clone()).is_ok(),
            "{key} {operator:?} {values:?}"
        );
    }
    let rejected = [
        (
            Operator::Equals,
            vec!["x", "y"],
            "values: Invalid value: []string{\"x\", \"y\"}: exact-match compatibility requires one single value",
        ),
        (
            Operator::NotEquals,
            vec![],
            "values: Invalid value: []string(nil): exact-match compatibility requires one single value",
        ),
        (
            Operator::DoesNotExist,
            vec!["x"],
            "values: Invalid value: []string{\"x\"}: values set must be empty for exists and does not exist",
        ),
        (
            Operator::LessThan,
            vec!["1", "2"],
            "values: Invalid value: []string{\"1\", \"2\"}: for 'Gt', 'Lt' operators, exactly one value is required",
        ),
    ];
    for (operator, values, message) in rejected {
        let values: Vec<String> = values.into_iter().map(String::from).collect();
        let error = Requirement::new("a", operator, values).expect_err(message);
        assert_eq!(
            error,
            SelectorError::InvalidRequirement(message.to_string())
        );
    }
}

#[test]
fn from_labels_requires_every_label() {
    let selector = LabelSelector::from_labels(&labels(&[("tier", "fe"), ("app", "web")]));
    assert_eq!(selector.to_string(), "app=web,tier=fe");
    assert!(selector.matches(&labels(&[("app", "web"), ("tier", "fe"), ("x", "y")])));
    assert!(!selector.matches(&labels(&[("app", "web")])));
    assert!(LabelSelector::from_labels(&labels(&[])).is_empty());
}

#[test]
fn requires_exact_match_reports_pinned_values_only() {
    let selector = LabelSelector::parse("a=1,b==2,c in (3),d in (4,5),e!=6,f").expect("valid");
    let cases = [
        ("a", Some("1")),
        ("b", Some("2")),
        ("c", Some("3")),
        ("d", None),
        ("e", None),
        ("f", None),
        ("g", None),
    ];
    for (key, expected) in cases {
        assert_eq!(selector.requires_exact_match(key), expected, "key {key}");
    }
}

#[test]
fn typed_label_selector_converts_with_try_from() {
    let typed = metav1::LabelSelector {
        match_labels: Some(BTreeMap::from([("app".to_string(), "web".to_string())])),
        match_expressions: None,
    };
    let selector = LabelSelector::try_from(&typed).expect("valid");
    assert_eq!(selector.to_string(), "app=web");
}
