use base64::Engine;
use serde_json::{json, Value};

use super::*;

fn now() -> jiff::Timestamp {
    "2026-01-01T00:00:00Z".parse().unwrap()
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn stored(extra: &[(&str, &str)]) -> Value {
    let mut data = serde_json::Map::new();
    for (k, v) in [
        ("token-id", "abcdef"),
        ("token-secret", "0123456789abcdef"),
        ("usage-bootstrap-authentication", "true"),
    ]
    .iter()
    .chain(extra)
    {
        data.insert((*k).to_owned(), json!(b64(v)));
    }
    json!({"metadata": {"name": "bootstrap-token-abcdef"}, "type": SECRET_TYPE, "data": data})
}

#[test]
fn parse_accepts_only_the_token_shape() {
    for (text, want) in [
        (
            "abcdef.0123456789abcdef",
            Some(("abcdef", "0123456789abcdef")),
        ),
        ("ABCDEF.0123456789abcdef", None),
        ("abcde.0123456789abcdef", None),
        ("abcdef.0123456789abcde", None),
        ("abcdef0123456789abcdef", None),
        ("eyJhbGciOi.x.y", None),
    ] {
        assert_eq!(parse(text), want, "{text}");
    }
}

#[test]
fn groups_must_be_under_bootstrappers() {
    for (group, want) in [
        ("system:bootstrappers:berth:default-node-token", true),
        ("system:bootstrappers:x", true),
        ("system:bootstrappers:", false),
        ("system:bootstrappers:x-", false),
        ("system:masters", false),
        ("system:bootstrappers:UP", false),
    ] {
        assert_eq!(valid_group(group), want, "{group}");
    }
}

/// What authenticating a token gives.
type Outcome = Result<(String, Vec<String>), TokenRefusal>;

#[test]
fn authenticate_follows_upstream_checks() {
    let ok = |user: &str, groups: &[&str]| -> Outcome {
        Ok((
            user.to_owned(),
            groups.iter().map(|g| (*g).to_owned()).collect::<Vec<_>>(),
        ))
    };
    let mut wrong_type = stored(&[]);
    wrong_type["type"] = json!("Opaque");
    let mut deleting = stored(&[]);
    deleting["metadata"]["deletionTimestamp"] = json!("2025-01-01T00:00:00Z");
    let cases: Vec<(&str, Value, &str, Outcome)> = vec![
        (
            "valid",
            stored(&[]),
            "0123456789abcdef",
            ok("system:bootstrap:abcdef", &[BOOTSTRAPPERS_GROUP]),
        ),
        (
            "extra groups",
            stored(&[(
                "auth-extra-groups",
                "system:bootstrappers:a,system:bootstrappers:b",
            )]),
            "0123456789abcdef",
            ok(
                "system:bootstrap:abcdef",
                &[
                    BOOTSTRAPPERS_GROUP,
                    "system:bootstrappers:a",
                    "system:bootstrappers:b",
                ],
            ),
        ),
        (
            "not yet expired",
            stored(&[("expiration", "2026-01-02T00:00:00Z")]),
            "0123456789abcdef",
            ok("system:bootstrap:abcdef", &[BOOTSTRAPPERS_GROUP]),
        ),
        (
            "expired",
            stored(&[("expiration", "2025-12-31T00:00:00Z")]),
            "0123456789abcdef",
            Err(TokenRefusal::Expired {
                id: "abcdef".into(),
                expiration: "2025-12-31T00:00:00Z".into(),
            }),
        ),
        (
            "wrong secret",
            stored(&[]),
            "fedcba9876543210",
            Err(TokenRefusal::Mismatch("abcdef".into())),
        ),
        (
            "wrong type",
            wrong_type,
            "0123456789abcdef",
            Err(TokenRefusal::WrongType("bootstrap-token-abcdef".into())),
        ),
        (
            "being deleted",
            deleting,
            "0123456789abcdef",
            Err(TokenRefusal::Deleted("abcdef".into())),
        ),
        (
            "not for authentication",
            stored(&[("usage-bootstrap-authentication", "false")]),
            "0123456789abcdef",
            Err(TokenRefusal::NotForAuthentication("abcdef".into())),
        ),
        (
            "bad extra group",
            stored(&[("auth-extra-groups", "system:masters")]),
            "0123456789abcdef",
            Err(TokenRefusal::BadGroup {
                id: "abcdef".into(),
                group: "system:masters".into(),
            }),
        ),
    ];
    for (name, secret, given, want) in cases {
        assert_eq!(
            authenticate(&secret, "abcdef", given, now()),
            want,
            "{name}"
        );
    }
}

#[test]
fn new_token_secret_round_trips_through_authenticate() {
    let (id, secret) = NewToken::from_random(&[7; 22]);
    assert!(parse(&format!("{id}.{secret}")).is_some());
    let token = NewToken {
        id,
        secret,
        expiration: Some("2026-01-01T12:00:00Z".parse().unwrap()),
        groups: vec![DEFAULT_GROUP.to_owned()],
        description: "test".into(),
    };
    let stored = token.secret();
    assert_eq!(stored["metadata"]["namespace"], NAMESPACE);
    assert_eq!(
        expiration(&stored),
        Some("2026-01-01T12:00:00Z".parse().unwrap())
    );
    let (user, groups) = authenticate(&stored, &token.id, &token.secret, now()).unwrap();
    assert_eq!(user, format!("system:bootstrap:{}", token.id));
    assert_eq!(groups, [BOOTSTRAPPERS_GROUP, DEFAULT_GROUP]);
    assert!(is_expired(&stored, "2026-01-01T12:00:00Z".parse().unwrap()));
    assert!(!is_expired(&stored, now()));
}
