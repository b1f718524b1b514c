//! Bodies kubectl 1.33 really sent (see fixtures/README.md): they decode to the JSON kubectl
//! would have sent, and we encode that JSON back to the very same bytes.

use serde_json::Value;

use super::{differences, fixtures};
use crate::protobuf::{decode_envelope, decode_object, encode_object};

const CAPTURES: [&str; 6] = [
    "kubectl-1.33-create-namespace",
    "kubectl-1.33-create-configmap",
    "kubectl-1.33-create-secret-generic",
    "kubectl-1.33-create-deployment",
    "kubectl-1.33-create-service-clusterip",
    "kubectl-1.33-create-serviceaccount",
];

fn capture(name: &str) -> (Vec<u8>, Value) {
    let bytes = std::fs::read(fixtures().join(format!("{name}.pb"))).expect("captured body");
    let text =
        std::fs::read_to_string(fixtures().join(format!("{name}.json"))).expect("expected JSON");
    (
        bytes,
        serde_json::from_str(&text).expect("expected JSON parses"),
    )
}

#[test]
fn kubectl_bodies_decode_to_the_json_kubectl_would_send() {
    for name in CAPTURES {
        let (bytes, expected) = capture(name);
        let decoded = decode_object(&bytes).unwrap_or_else(|error| panic!("{name}: {error}"));
        let diff = differences(&expected, &decoded);
        assert!(diff.is_empty(), "{name}:\n{}", diff.join("\n"));
    }
}

#[test]
fn kubectl_bodies_re_encode_byte_for_byte() {
    for name in CAPTURES {
        let (bytes, expected) = capture(name);
        assert_eq!(
            encode_object(&decode_object(&bytes).unwrap()).unwrap(),
            bytes,
            "{name}: decode then encode"
        );
        assert_eq!(
            encode_object(&expected).unwrap(),
            bytes,
            "{name}: encoding the expected JSON"
        );
    }
}

#[test]
fn kubectl_envelopes_name_the_kind_and_carry_no_content_type() {
    let cases = [
        ("kubectl-1.33-create-namespace", "v1", "Namespace"),
        ("kubectl-1.33-create-deployment", "apps/v1", "Deployment"),
    ];
    for (name, api_version, kind) in cases {
        let (bytes, _) = capture(name);
        let envelope = decode_envelope(&bytes).unwrap();
        assert_eq!(
            (envelope.api_version.as_str(), envelope.kind.as_str()),
            (api_version, kind)
        );
        assert_eq!(
            (
                envelope.content_encoding.as_str(),
                envelope.content_type.as_str()
            ),
            ("", "")
        );
    }
}
