//! Corrupted bodies are errors that name the field, never panics: truncations, bit flips,
//! random mutations, hostile lengths and nesting.

use crate::protobuf::{
    decode, decode_object, decode_watch_event, encode, encode_envelope, encode_object,
    Malformation, ProtobufError,
};
use serde_json::json;

use super::object_fixture;

const DEPLOYMENT: &str = "k8s.io.api.apps.v1.Deployment";

/// A small deterministic generator, so failures reproduce.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn bodies() -> Vec<(String, Vec<u8>)> {
    ["deployment", "pod", "node", "event", "secret", "lease"]
        .into_iter()
        .map(|name| {
            (
                name.to_owned(),
                encode_object(&object_fixture(name)).unwrap(),
            )
        })
        .collect()
}

#[test]
fn every_truncation_is_handled_without_panic() {
    for (name, body) in bodies() {
        let mut errors = 0;
        for length in 0..body.len() {
            if decode_object(&body[..length]).is_err() {
                errors += 1;
            }
        }
        // Cutting inside the envelope's raw record always breaks it.
        assert!(
            errors > body.len() / 2,
            "{name}: only {errors} of {} truncations failed",
            body.len()
        );
    }
}

#[test]
fn flipped_bytes_are_handled_without_panic() {
    for (_, body) in bodies() {
        for position in 0..body.len() {
            for mask in [0x01, 0x80, 0xff] {
                let mut corrupted = body.clone();
                corrupted[position] ^= mask;
                let _ = decode_object(&corrupted);
            }
        }
    }
}

#[test]
fn random_mutations_are_handled_without_panic() {
    let mut random = XorShift(0x9e37_79b9_7f4a_7c15);
    for (_, body) in bodies() {
        for _ in 0..2000 {
            let mut corrupted = body.clone();
            for _ in 0..=(random.next() % 4) {
                let position = (random.next() as usize) % corrupted.len();
                match random.next() % 3 {
                    0 => corrupted[position] = random.next() as u8,
                    1 => {
                        corrupted.remove(position);
                    }
                    _ => corrupted.insert(position, random.next() as u8),
                }
            }
            let _ = decode_object(&corrupted);
            let _ = decode_watch_event(&corrupted);
        }
    }
}

#[test]
fn malformed_records_are_errors_naming_the_field() {
    // Deployment.spec (2) { replicas (1) as length-delimited }
    let wrong_wire_type = [0x12, 0x03, 0x0a, 0x01, 0x00];
    // Deployment.metadata (1) { name (1) = invalid UTF-8 }
    let bad_utf8 = [0x0a, 0x04, 0x0a, 0x02, 0xc3, 0x28];
    // Deployment.spec (2) { replicas (1) = truncated varint }
    let truncated_varint = [0x12, 0x02, 0x08, 0x80];
    // Deployment.spec (2) with a length past the end
    let length_past_end = [0x12, 0x05, 0x08, 0x01];
    // Deployment.spec.template.spec.containers[1] with a length past its message
    let container = [
        0x12, 0x0c, 0x1a, 0x0a, 0x12, 0x08, 0x12, 0x02, 0x0a, 0x00, 0x12, 0x02, 0x0a, 0x05,
    ];
    let cases: [(&[u8], &str, Malformation); 5] = [
        (
            &wrong_wire_type,
            "Deployment.spec.replicas",
            Malformation::WrongWireType {
                expected: "varint",
                found: "length-delimited",
            },
        ),
        (
            &bad_utf8,
            "Deployment.metadata.name",
            Malformation::InvalidUtf8,
        ),
        (
            &truncated_varint,
            "Deployment.spec.replicas",
            Malformation::TruncatedVarint,
        ),
        (
            &length_past_end,
            "Deployment.spec",
            Malformation::LengthPastEnd {
                length: 5,
                available: 2,
            },
        ),
        (
            &container,
            "Deployment.spec.template.spec.containers[1].name",
            Malformation::LengthPastEnd {
                length: 5,
                available: 0,
            },
        ),
    ];
    for (bytes, path, problem) in cases {
        assert_eq!(
            decode(DEPLOYMENT, bytes),
            Err(ProtobufError::Malformed {
                path: path.into(),
                problem
            }),
            "{bytes:?}"
        );
    }
}

#[test]
fn hostile_lengths_do_not_allocate_or_panic() {
    // A length of 2^63 and a varint of eleven bytes.
    let huge = [
        0x12, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01,
    ];
    assert!(matches!(
        decode(DEPLOYMENT, &huge),
        Err(ProtobufError::Malformed {
            problem: Malformation::LengthPastEnd { .. },
            ..
        })
    ));
    let long_varint = [
        0x08, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01,
    ];
    assert!(matches!(
        decode("k8s.io.api.apps.v1.DeploymentSpec", &long_varint),
        Err(ProtobufError::Malformed {
            problem: Malformation::VarintOverflow,
            ..
        })
    ));
    let group = [0x0b];
    assert!(matches!(
        decode(DEPLOYMENT, &group),
        Err(ProtobufError::Malformed {
            problem: Malformation::UnsupportedWireType(3),
            ..
        })
    ));
}

#[test]
fn nesting_is_bounded() {
    // WatchEvents whose objects are enveloped WatchEvents, 200 deep: a raw extension is the
    // one place the schema lets messages nest without end.
    let mut raw = encode(
        "k8s.io.apimachinery.pkg.apis.meta.v1.WatchEvent",
        &json!({"type": "ADDED"}),
    )
    .unwrap();
    for _ in 0..200 {
        let envelope = encode_envelope("v1", "WatchEvent", &raw);
        let mut event = vec![0x0a, 0x05];
        event.extend_from_slice(b"ADDED");
        event.push(0x12);
        let mut inner = vec![0x0a];
        push_varint(&mut inner, envelope.len());
        inner.extend_from_slice(&envelope);
        push_varint(&mut event, inner.len());
        event.extend_from_slice(&inner);
        raw = event;
    }
    let body = encode_envelope("v1", "WatchEvent", &raw);
    assert!(matches!(
        decode_object(&body),
        Err(ProtobufError::Malformed {
            problem: Malformation::TooDeep(_),
            ..
        })
    ));
}

fn push_varint(bytes: &mut Vec<u8>, mut value: usize) {
    while value >= 0x80 {
        bytes.push((value as u8) | 0x80);
        value >>= 7;
    }
    bytes.push(value as u8);
}

#[test]
fn bodies_that_are_not_protobuf_are_refused_up_front() {
    let cases: [&[u8]; 4] = [b"", b"k8s", b"{\"apiVersion\":\"v1\"}", b"K8S\0\x0a\x00"];
    for body in cases {
        assert_eq!(
            decode_object(body),
            Err(ProtobufError::BadMagic),
            "{body:?}"
        );
    }
}

#[test]
fn an_envelope_with_content_encoding_is_refused() {
    let mut body = encode_envelope("v1", "Namespace", &[]);
    let length = body.len();
    body[length - 3] = 0x04;
    body.splice(length - 2..length - 2, *b"gzip");
    assert_eq!(
        decode_object(&body),
        Err(ProtobufError::UnsupportedContentEncoding("gzip".into()))
    );
}
