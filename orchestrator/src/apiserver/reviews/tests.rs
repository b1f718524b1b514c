//! Tables of cases for the reviews: who the caller is, spec checks,
//! refusal wording, rules-review namespaces and token reviews.

use super::*;

fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(*name, value.parse().unwrap());
    }
    map
}

#[test]
fn the_requesting_user_is_the_admin_or_whom_it_impersonates() {
    type Case<'a> = (&'a [(&'static str, &'a str)], &'a str, &'a [&'a str]);
    let cases: [Case; 4] = [
        (
            &[],
            "kubernetes-admin",
            &["system:masters", "system:authenticated"],
        ),
        (
            &[("impersonate-user", "system:serviceaccount:default:default")],
            "system:serviceaccount:default:default",
            &[
                "system:serviceaccounts",
                "system:serviceaccounts:default",
                "system:authenticated",
            ],
        ),
        (
            &[("impersonate-user", "jane"), ("impersonate-group", "devs")],
            "jane",
            &["devs", "system:authenticated"],
        ),
        (
            &[("impersonate-user", "system:anonymous")],
            "system:anonymous",
            &[],
        ),
    ];
    for (pairs, user, groups) in cases {
        let info = requesting_user(&headers(pairs));
        assert_eq!(info.username, user);
        assert_eq!(info.groups, groups, "{user}");
    }
}

#[test]
fn refusals_are_worded_as_upstream() {
    let pods = catalog::builtin("", "v1", "pods").unwrap();
    let nodes = catalog::builtin("", "v1", "nodes").unwrap();
    let deployments = catalog::builtin("apps", "v1", "deployments").unwrap();
    let request = |r: &std::sync::Arc<ResourceInfo>,
                   ns: Option<&str>,
                   name: Option<&str>,
                   sub: Option<&str>| ResourceRequest {
        resource: r.clone(),
        namespace: ns.map(str::to_owned),
        name: name.map(str::to_owned),
        subresource: sub.map(str::to_owned),
        verb: Verb::Get,
        query: Query::default(),
    };
    let cases = [
        (
            request(pods, Some("default"), None, None),
            "list",
            r#"pods is forbidden: User "jane" cannot list resource "pods" in API group "" in the namespace "default""#,
        ),
        (
            request(pods, Some("default"), Some("web"), Some("log")),
            "get",
            r#"pods "web" is forbidden: User "jane" cannot get resource "pods/log" in API group "" in the namespace "default""#,
        ),
        (
            request(nodes, None, None, None),
            "list",
            r#"nodes is forbidden: User "jane" cannot list resource "nodes" in API group "" at the cluster scope"#,
        ),
        (
            request(deployments, Some("a"), Some("d"), None),
            "delete",
            r#"deployments.apps "d" is forbidden: User "jane" cannot delete resource "deployments" in API group "apps" in the namespace "a""#,
        ),
    ];
    for (req, verb, expected) in cases {
        assert_eq!(
            forbidden_message(&req.resource, &req, "jane", verb, ""),
            expected
        );
    }
}

#[test]
fn rules_reviews_need_a_namespace() {
    let cases = [
        (json!({"namespace": "default"}), Some("default")),
        (json!({"namespace": ""}), None),
        (json!({}), None),
    ];
    for (spec, expected) in cases {
        match (rules_namespace(&spec), expected) {
            (Ok(ns), Some(expected)) => assert_eq!(ns, expected),
            (Err(e), None) => assert_eq!(e.to_string(), "no namespace on request"),
            (got, _) => panic!("{spec}: {got:?}"),
        }
    }
}

#[test]
fn token_reviews_know_only_the_admin_token() {
    let cases = [
        (json!({"token": "secret"}), Some(true)),
        (json!({"token": "other"}), Some(false)),
        (json!({}), None),
    ];
    for (spec, authenticated) in cases {
        let status = token_review(&spec, "secret");
        match authenticated {
            Some(expected) => {
                let status = status.unwrap();
                assert_eq!(status["authenticated"], expected);
                if expected {
                    assert_eq!(status["user"]["username"], ADMIN_USER);
                }
            }
            None => assert!(matches!(status, Err(ApiError::BadRequest(_)))),
        }
    }
}

#[test]
fn access_review_specs_are_checked_as_upstream() {
    let sar = catalog::builtin("authorization.k8s.io", "v1", "subjectaccessreviews").unwrap();
    let local =
        catalog::builtin("authorization.k8s.io", "v1", "localsubjectaccessreviews").unwrap();
    let none = HeaderMap::new();
    let attrs = json!({"verb": "get", "resource": "pods", "namespace": "a"});
    let cases = [
        (
            sar,
            None,
            json!({"user": "jane", "resourceAttributes": attrs}),
            "ok",
        ),
        (
            sar,
            None,
            json!({"resourceAttributes": attrs}),
            "at least one of user or group must be specified",
        ),
        (
            sar,
            None,
            json!({"user": "jane"}),
            "exactly one of nonResourceAttributes or resourceAttributes must be specified",
        ),
        (
            local,
            Some("a"),
            json!({"user": "jane", "resourceAttributes": attrs}),
            "ok",
        ),
        (
            local,
            Some("b"),
            json!({"user": "jane", "resourceAttributes": attrs}),
            "spec.resourceAttributes.namespace must match namespace: b",
        ),
    ];
    for (r, ns, spec, expected) in cases {
        let got = match access_review_subject(r, ns, &spec, &none, &UserInfo::admin()) {
            Ok(_) => "ok".to_owned(),
            Err(e) => e.to_string(),
        };
        assert!(got.contains(expected), "{spec}: {got}");
    }
}
