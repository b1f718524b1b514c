//! Tables of names and the exact upstream messages they produce.

use super::*;

const SUBDOMAIN_REGEX_MESSAGE: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const LABEL_REGEX_MESSAGE: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const DNS1035_REGEX_MESSAGE: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";
const NAME_PART_REGEX_MESSAGE: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const LABEL_VALUE_REGEX_MESSAGE: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";

fn check(function: fn(&str) -> Vec<String>, cases: &[(&str, &[&str])]) {
    for (input, expected) in cases {
        assert_eq!(function(input), *expected, "input {input:?}");
    }
}

#[test]
fn dns1123_subdomain_accepts_lowercase_dotted_names_and_explains_rejections() {
    let too_long = format!("{}.{}", "a".repeat(200), "b".repeat(60));
    let too_long_and_bad = format!("{}-", "a".repeat(254));
    check(
        is_dns1123_subdomain,
        &[
            ("a", &[]),
            ("web", &[]),
            ("example.com", &[]),
            ("1-2.a-b.c", &[]),
            ("0", &[]),
            (&"a".repeat(253), &[]),
            ("", &[SUBDOMAIN_REGEX_MESSAGE]),
            ("Web", &[SUBDOMAIN_REGEX_MESSAGE]),
            ("-web", &[SUBDOMAIN_REGEX_MESSAGE]),
            ("web-", &[SUBDOMAIN_REGEX_MESSAGE]),
            ("web.", &[SUBDOMAIN_REGEX_MESSAGE]),
            (".web", &[SUBDOMAIN_REGEX_MESSAGE]),
            ("a..b", &[SUBDOMAIN_REGEX_MESSAGE]),
            ("a_b", &[SUBDOMAIN_REGEX_MESSAGE]),
            ("a.-b", &[SUBDOMAIN_REGEX_MESSAGE]),
            ("héllo", &[SUBDOMAIN_REGEX_MESSAGE]),
            (&too_long, &["must be no more than 253 characters"]),
            (
                &too_long_and_bad,
                &[
                    "must be no more than 253 characters",
                    SUBDOMAIN_REGEX_MESSAGE,
                ],
            ),
        ],
    );
}

#[test]
fn dns1123_label_rejects_dots_with_a_short_message() {
    check(
        is_dns1123_label,
        &[
            ("a", &[]),
            ("kube-system", &[]),
            ("123-abc", &[]),
            (&"a".repeat(63), &[]),
            ("a.b", &["must not contain dots"]),
            ("", &[LABEL_REGEX_MESSAGE]),
            ("A", &[LABEL_REGEX_MESSAGE]),
            ("a.", &[LABEL_REGEX_MESSAGE]),
            ("-a", &[LABEL_REGEX_MESSAGE]),
            ("a_b", &[LABEL_REGEX_MESSAGE]),
            (&"a".repeat(64), &["must be no more than 63 characters"]),
            (
                &format!("{}.b", "a".repeat(63)),
                &[
                    "must be no more than 63 characters",
                    "must not contain dots",
                ],
            ),
        ],
    );
}

#[test]
fn dns1035_label_must_start_with_a_letter() {
    check(
        is_dns1035_label,
        &[
            ("a", &[]),
            ("my-service", &[]),
            ("a1", &[]),
            ("1a", &[DNS1035_REGEX_MESSAGE]),
            ("a.b", &[DNS1035_REGEX_MESSAGE]),
            ("a-", &[DNS1035_REGEX_MESSAGE]),
            ("", &[DNS1035_REGEX_MESSAGE]),
            (&"a".repeat(64), &["must be no more than 63 characters"]),
        ],
    );
}

#[test]
fn qualified_name_checks_prefix_and_name_parts_separately() {
    let prefix_regex = format!("prefix part {SUBDOMAIN_REGEX_MESSAGE}");
    let too_many_slashes = "a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')";
    check(
        is_qualified_name,
        &[
            ("app", &[]),
            ("App_1.x-y", &[]),
            ("a", &[]),
            ("9", &[]),
            ("example.com/MyName", &[]),
            ("kubernetes.io/hostname", &[]),
            ("node-role.kubernetes.io/control-plane", &[]),
            (&"a".repeat(63), &[]),
            (
                "",
                &["name part must be non-empty", NAME_PART_REGEX_MESSAGE],
            ),
            ("_app", &[NAME_PART_REGEX_MESSAGE]),
            ("app.", &[NAME_PART_REGEX_MESSAGE]),
            ("app name", &[NAME_PART_REGEX_MESSAGE]),
            (
                &"a".repeat(64),
                &["name part must be no more than 63 characters"],
            ),
            ("/app", &["prefix part must be non-empty"]),
            (
                "example.com/",
                &["name part must be non-empty", NAME_PART_REGEX_MESSAGE],
            ),
            ("Example.com/app", &[&prefix_regex]),
            ("a/b/c", &[too_many_slashes]),
        ],
    );
}

#[test]
fn label_value_may_be_empty_but_not_malformed() {
    check(
        is_valid_label_value,
        &[
            ("", &[]),
            ("web", &[]),
            ("My_Value.1-2", &[]),
            (&"v".repeat(63), &[]),
            ("-web", &[LABEL_VALUE_REGEX_MESSAGE]),
            ("web_", &[LABEL_VALUE_REGEX_MESSAGE]),
            ("a/b", &[LABEL_VALUE_REGEX_MESSAGE]),
            ("a b", &[LABEL_VALUE_REGEX_MESSAGE]),
            (&"v".repeat(64), &["must be no more than 63 characters"]),
        ],
    );
}

#[test]
fn path_segment_name_forbids_dot_names_slash_and_percent() {
    check(
        is_valid_path_segment_name,
        &[
            ("web", &[]),
            ("...", &[]),
            (".a", &[]),
            (".", &["may not be '.'"]),
            ("..", &["may not be '..'"]),
            ("a/b", &["may not contain '/'"]),
            ("a%2f", &["may not contain '%'"]),
            ("/%", &["may not contain '/'", "may not contain '%'"]),
        ],
    );
}

#[test]
fn path_segment_prefix_allows_dot_prefixes() {
    check(
        is_valid_path_segment_prefix,
        &[
            (".", &[]),
            ("..", &[]),
            ("web-", &[]),
            ("a/", &["may not contain '/'"]),
            ("%", &["may not contain '%'"]),
        ],
    );
}

#[test]
fn regex_error_without_examples_names_only_the_pattern() {
    assert_eq!(
        regex_error("bad", "[a-z]+", &[]),
        "bad (regex used for validation is '[a-z]+')"
    );
    assert_eq!(
        regex_error("bad", "[a-z]+", &["abc"]),
        "bad (e.g. 'abc', regex used for validation is '[a-z]+')"
    );
}
