//! Tables of field selector strings: parsing, escaping, matching, errors.

use std::collections::BTreeMap;

use super::*;

fn requirement(field: &str, operator: FieldOperator, value: &str) -> FieldRequirement {
    FieldRequirement {
        field: field.to_string(),
        operator,
        value: value.to_string(),
    }
}

#[test]
fn parse_reads_equality_operators_and_sorts_terms() {
    use FieldOperator::{Equals, NotEquals};
    let cases: Vec<(&str, Vec<FieldRequirement>)> = vec![
        ("", vec![]),
        (",", vec![]),
        ("=", vec![]),
        (
            "metadata.name=web",
            vec![requirement("metadata.name", Equals, "web")],
        ),
        (
            "metadata.name==web",
            vec![requirement("metadata.name", Equals, "web")],
        ),
        (
            "status.phase!=Running",
            vec![requirement("status.phase", NotEquals, "Running")],
        ),
        (
            "spec.nodeName=",
            vec![requirement("spec.nodeName", Equals, "")],
        ),
        ("=x", vec![requirement("", Equals, "x")]),
        (
            "spec.nodeName=n1,metadata.namespace!=kube-system",
            vec![
                requirement("metadata.namespace", NotEquals, "kube-system"),
                requirement("spec.nodeName", Equals, "n1"),
            ],
        ),
        (
            "b=1,,a=2,",
            vec![requirement("a", Equals, "2"), requirement("b", Equals, "1")],
        ),
        // Nothing is trimmed: the spaces belong to the field and the value.
        (" a = b ", vec![requirement(" a ", Equals, " b ")]),
        // `!=` and `==` are recognised before `=` at the same position.
        ("a!=", vec![requirement("a", NotEquals, "")]),
    ];
    for (input, expected) in cases {
        let selector = FieldSelector::parse(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
        assert_eq!(
            selector.requirements(),
            expected.as_slice(),
            "input {input:?}"
        );
    }
}

#[test]
fn parse_unescapes_backslash_comma_and_equals_in_values() {
    let cases = [
        (r"a=x\,y", "x,y"),
        (r"a=x\=y", "x=y"),
        (r"a=x\\y", r"x\y"),
        (r"a=\\\,\=", r"\,="),
        (r"a=üñí", "üñí"),
    ];
    for (input, value) in cases {
        let selector = FieldSelector::parse(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
        assert_eq!(
            selector.requirements(),
            &[requirement("a", FieldOperator::Equals, value)],
            "input {input:?}"
        );
    }
}

#[test]
fn parse_reports_upstream_errors() {
    let cases = [
        (
            "metadata.name",
            "invalid selector: 'metadata.name'; can't understand 'metadata.name'",
        ),
        ("a=b,c", "invalid selector: 'a=b,c'; can't understand 'c'"),
        ("a!b", "invalid selector: 'a!b'; can't understand 'a!b'"),
        (
            "a=b=c",
            "invalid field selector: unescaped character in value: 61",
        ),
        (
            "a==b=c",
            "invalid field selector: unescaped character in value: 61",
        ),
        (
            "a!==b",
            "invalid field selector: unescaped character in value: 61",
        ),
        (
            r"a=b\\,c",
            r"invalid selector: 'a=b\\,c'; can't understand 'c'",
        ),
        (
            r"a=b\x",
            r"invalid field selector: invalid escape sequence: \x",
        ),
        (
            r"a=b\",
            r"invalid field selector: invalid escape sequence: \",
        ),
    ];
    for (input, message) in cases {
        let error = FieldSelector::parse(input).expect_err(input);
        assert_eq!(error.to_string(), message, "input {input:?}");
    }
}

#[test]
fn display_escapes_values_and_prints_double_equals_as_equals() {
    let cases = [
        ("", ""),
        ("a==b", "a=b"),
        ("b!=2,a=1", "a=1,b!=2"),
        (r"a=x\,y\=z\\", r"a=x\,y\=z\\"),
    ];
    for (input, expected) in cases {
        let selector: FieldSelector = input.parse().expect(input);
        assert_eq!(selector.to_string(), expected, "input {input:?}");
        let reparsed: FieldSelector = expected.parse().expect(expected);
        assert_eq!(reparsed, selector, "round trip of {input:?}");
    }
}

#[test]
fn matches_treats_missing_fields_as_empty_strings() {
    let object = BTreeMap::from([
        ("metadata.name", "web-1"),
        ("spec.nodeName", "n1"),
        ("status.phase", "Running"),
    ]);
    let get = |field: &str| object.get(field).copied();
    let cases = [
        ("", true),
        ("metadata.name=web-1", true),
        ("metadata.name=web-2", false),
        ("metadata.name!=web-2", true),
        ("spec.nodeName=n1,status.phase=Running", true),
        ("spec.nodeName=n1,status.phase!=Running", false),
        ("spec.hostname=", true),
        ("spec.hostname!=", false),
        ("spec.hostname=x", false),
        ("spec.hostname!=x", true),
    ];
    for (input, expected) in cases {
        let selector = FieldSelector::parse(input).expect(input);
        assert_eq!(selector.matches(get), expected, "input {input:?}");
    }
}

#[test]
fn fields_lists_every_field_so_callers_can_reject_unknown_ones() {
    let selector = FieldSelector::parse("spec.nodeName=n1,metadata.name!=x,spec.nodeName!=n2")
        .expect("valid selector");
    let fields: Vec<&str> = selector.fields().collect();
    assert_eq!(fields, ["metadata.name", "spec.nodeName", "spec.nodeName"]);
}

#[test]
fn requires_exact_match_only_for_equality_terms() {
    let selector = FieldSelector::parse("spec.nodeName=n1,status.phase!=Failed").expect("valid");
    assert_eq!(selector.requires_exact_match("spec.nodeName"), Some("n1"));
    assert_eq!(selector.requires_exact_match("status.phase"), None);
    assert_eq!(selector.requires_exact_match("metadata.name"), None);
    assert!(FieldSelector::everything().is_empty());
    assert!(!selector.is_empty());
}

#[test]
fn escape_field_value_escapes_only_the_three_special_characters() {
    let cases = [("plain", "plain"), ("a,b=c\\d", r"a\,b\=c\\d"), ("", "")];
    for (input, expected) in cases {
        assert_eq!(escape_field_value(input), expected, "input {input:?}");
    }
}
