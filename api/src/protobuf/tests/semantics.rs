//! The conversion rules one by one: Go presence, special shapes, maps, unknown fields.

use serde_json::{json, Value};

use crate::protobuf::{decode, encode, Malformation, ProtobufError};

const DEPLOYMENT: &str = "k8s.io.api.apps.v1.Deployment";
const POD: &str = "k8s.io.api.core.v1.Pod";

fn round_trip(message: &str, value: &Value) -> Value {
    decode(message, &encode(message, value).unwrap()).unwrap()
}

#[test]
fn presence_follows_the_go_type() {
    // (message, JSON in, JSON out)
    let cases = [
        // A pointer keeps a present zero and stays absent when absent.
        (
            DEPLOYMENT,
            json!({"spec": {"replicas": 0}}),
            json!({"metadata": {}, "spec": {"replicas": 0, "template": {"metadata": {}, "spec": {"containers": []}}, "strategy": {}}, "status": {}}),
        ),
        (
            DEPLOYMENT,
            json!({}),
            json!({"metadata": {}, "spec": {"template": {"metadata": {}, "spec": {"containers": []}}, "strategy": {}}, "status": {}}),
        ),
        // omitempty scalars vanish when zero; non-omitempty ones appear even when absent.
        (
            "k8s.io.api.core.v1.EnvVar",
            json!({"name": "A", "value": ""}),
            json!({"name": "A"}),
        ),
        ("k8s.io.api.core.v1.EnvVar", json!({}), json!({"name": ""})),
        (
            "k8s.io.api.core.v1.ContainerPort",
            json!({"containerPort": 80, "hostPort": 0, "protocol": "TCP"}),
            json!({"containerPort": 80, "protocol": "TCP"}),
        ),
        // A zero Time is null when it is a plain value, and left out under omitzero.
        (
            "k8s.io.api.core.v1.PodCondition",
            json!({"type": "Ready", "status": "True"}),
            json!({"type": "Ready", "status": "True", "lastProbeTime": null, "lastTransitionTime": null}),
        ),
        (
            "k8s.io.apimachinery.pkg.apis.meta.v1.ObjectMeta",
            json!({"name": "x", "creationTimestamp": null}),
            json!({"name": "x"}),
        ),
        // A pointer Time stays absent; the Unix epoch is a real time, not zero.
        (
            "k8s.io.apimachinery.pkg.apis.meta.v1.ObjectMeta",
            json!({"deletionTimestamp": "1970-01-01T00:00:00Z"}),
            json!({"deletionTimestamp": "1970-01-01T00:00:00Z"}),
        ),
        // Go's zero time is the zero value: empty on the wire, null in JSON.
        (
            "k8s.io.api.core.v1.PodCondition",
            json!({"type": "A", "status": "B", "lastProbeTime": "0001-01-01T00:00:00Z"}),
            json!({"type": "A", "status": "B", "lastProbeTime": null, "lastTransitionTime": null}),
        ),
        // Lists and maps: omitempty ones vanish when empty, the others stay `[]`.
        (
            "k8s.io.api.core.v1.ServiceAccount",
            json!({"secrets": [], "imagePullSecrets": []}),
            json!({"metadata": {}}),
        ),
        (
            "k8s.io.api.core.v1.ContainerImage",
            json!({}),
            json!({"names": []}),
        ),
        (
            "k8s.io.api.core.v1.ConfigMap",
            json!({"data": {}}),
            json!({"metadata": {}}),
        ),
        // Inline (embedded) structs: their fields sit in the parent's object.
        (
            "k8s.io.api.core.v1.SecretKeySelector",
            json!({"name": "db", "key": "password"}),
            json!({"name": "db", "key": "password"}),
        ),
        (
            "k8s.io.api.core.v1.Volume",
            json!({"name": "v", "emptyDir": {}}),
            json!({"name": "v", "emptyDir": {}}),
        ),
        // JSON members the message does not have (apiVersion, kind, typos) are not encoded.
        (
            "k8s.io.api.core.v1.Binding",
            json!({"apiVersion": "v1", "kind": "Binding", "colour": 1}),
            json!({"metadata": {}, "target": {}}),
        ),
    ];
    for (message, input, expected) in cases {
        assert_eq!(round_trip(message, &input), expected, "{message} {input}");
    }
}

#[test]
fn special_shapes_convert_like_their_go_marshallers() {
    let cases = [
        // Time keeps seconds only and normalises to UTC.
        (
            "k8s.io.apimachinery.pkg.apis.meta.v1.ObjectMeta",
            json!({"creationTimestamp": "2024-01-02T04:04:05.987+01:00"}),
            json!({"creationTimestamp": "2024-01-02T03:04:05Z"}),
        ),
        // MicroTime keeps microseconds, always six digits.
        (
            "k8s.io.api.coordination.v1.LeaseSpec",
            json!({"renewTime": "2024-01-02T03:04:05.123456789Z"}),
            json!({"renewTime": "2024-01-02T03:04:05.123456Z"}),
        ),
        (
            "k8s.io.api.coordination.v1.LeaseSpec",
            json!({"renewTime": "2024-01-02T03:04:05Z"}),
            json!({"renewTime": "2024-01-02T03:04:05.000000Z"}),
        ),
        // IntOrString: a number or a string, and zero is the integer 0.
        (
            "k8s.io.api.core.v1.ServicePort",
            json!({"port": 80, "targetPort": "http"}),
            json!({"port": 80, "targetPort": "http"}),
        ),
        (
            "k8s.io.api.core.v1.ServicePort",
            json!({"port": 80, "targetPort": -1}),
            json!({"port": 80, "targetPort": -1}),
        ),
        (
            "k8s.io.api.core.v1.ServicePort",
            json!({"port": 80}),
            json!({"port": 80, "targetPort": 0}),
        ),
        // Quantity: kept as written; a bare number becomes its string; zero is "0".
        (
            "k8s.io.api.core.v1.ResourceRequirements",
            json!({"limits": {"cpu": 2, "memory": "1.5Gi"}}),
            json!({"limits": {"cpu": "2", "memory": "1.5Gi"}}),
        ),
        (
            "k8s.io.api.core.v1.ResourceFieldSelector",
            json!({"resource": "limits.cpu"}),
            json!({"resource": "limits.cpu", "divisor": "0"}),
        ),
        // Raw JSON is embedded as the JSON value it holds.
        (
            "k8s.io.apimachinery.pkg.apis.meta.v1.ManagedFieldsEntry",
            json!({"fieldsV1": {"f:spec": {"f:replicas": {}}}}),
            json!({"fieldsV1": {"f:spec": {"f:replicas": {}}}}),
        ),
        (
            "k8s.io.apimachinery.pkg.apis.meta.v1.WatchEvent",
            json!({"type": "ADDED", "object": {"kind": "Pod", "apiVersion": "v1"}}),
            json!({"type": "ADDED", "object": {"kind": "Pod", "apiVersion": "v1"}}),
        ),
        (
            "k8s.io.apimachinery.pkg.apis.meta.v1.WatchEvent",
            json!({"type": "BOOKMARK"}),
            json!({"type": "BOOKMARK", "object": null}),
        ),
        // Bytes are base64 in JSON, and map keys come out sorted as Go sorts them.
        (
            "k8s.io.api.core.v1.Secret",
            json!({"data": {"b": "AQID", "a": "", "B": "/w=="}}),
            json!({"metadata": {}, "data": {"B": "/w==", "a": "", "b": "AQID"}}),
        ),
    ];
    for (message, input, expected) in cases {
        let output = round_trip(message, &input);
        assert_eq!(output, expected, "{message} {input}");
        if let (Some(output), Some(expected)) =
            (output["data"].as_object(), expected["data"].as_object())
        {
            assert!(output.keys().eq(expected.keys()), "map keys are sorted");
        }
    }
}

#[test]
fn value_fields_are_written_even_when_absent_as_go_does() {
    // Namespace{metadata{name}}: every ObjectMeta string, generation and an empty
    // creationTimestamp; an empty spec; a status with an empty phase.
    let bytes = encode(
        "k8s.io.api.core.v1.Namespace",
        &json!({"metadata": {"name": "demo"}}),
    )
    .unwrap();
    let expected: &[u8] = b"\x0a\x14\x0a\x04demo\x12\x00\x1a\x00\x22\x00\x2a\x00\x32\x00\x38\x00\x42\x00\x12\x00\x1a\x02\x0a\x00";
    assert_eq!(bytes, expected);
}

#[test]
fn map_entries_are_written_sorted_with_key_and_value() {
    let bytes = encode(
        "k8s.io.api.core.v1.ConfigMap",
        &json!({"metadata": {}, "data": {"z": "", "a": "1"}}),
    )
    .unwrap();
    let metadata_length = usize::from(bytes[1]) + 2;
    let expected: &[u8] = b"\x12\x06\x0a\x01a\x12\x011\x12\x05\x0a\x01z\x12\x00";
    assert_eq!(&bytes[metadata_length..], expected);
}

#[test]
fn unknown_fields_are_skipped_whatever_their_wire_type() {
    let object = json!({"metadata": {"name": "x"}, "spec": {"replicas": 2}});
    let mut bytes = encode(DEPLOYMENT, &object).unwrap();
    let expected = decode(DEPLOYMENT, &bytes).unwrap();
    // field 99 as varint, fixed64, length-delimited and fixed32
    bytes.extend_from_slice(&[0x98, 0x06, 0x2a]);
    bytes.extend_from_slice(&[0x99, 0x06, 1, 2, 3, 4, 5, 6, 7, 8]);
    bytes.extend_from_slice(&[0x9a, 0x06, 3, b'a', b'b', b'c']);
    bytes.extend_from_slice(&[0x9d, 0x06, 1, 2, 3, 4]);
    assert_eq!(decode(DEPLOYMENT, &bytes).unwrap(), expected);
}

#[test]
fn packed_repeated_integers_are_accepted() {
    // PodSecurityContext.supplementalGroups = 4, packed [1, 300] and then unpacked 7.
    let bytes = [0x22, 0x03, 0x01, 0xac, 0x02, 0x20, 0x07];
    assert_eq!(
        decode("k8s.io.api.core.v1.PodSecurityContext", &bytes).unwrap(),
        json!({"supplementalGroups": [1, 300, 7]})
    );
    // Go (and we) write them unpacked.
    assert_eq!(
        encode(
            "k8s.io.api.core.v1.PodSecurityContext",
            &json!({"supplementalGroups": [1, 300, 7]})
        )
        .unwrap(),
        [0x20, 0x01, 0x20, 0xac, 0x02, 0x20, 0x07]
    );
}

#[test]
fn negative_integers_use_ten_byte_varints() {
    let bytes = encode(
        "k8s.io.api.core.v1.ContainerStateTerminated",
        &json!({"exitCode": -1}),
    )
    .unwrap();
    assert_eq!(
        &bytes[..11],
        [0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]
    );
    assert_eq!(
        decode("k8s.io.api.core.v1.ContainerStateTerminated", &bytes).unwrap()["exitCode"],
        -1
    );
}

#[test]
fn json_that_does_not_fit_is_an_error_naming_the_field() {
    let cases = [
        (
            DEPLOYMENT,
            json!({"spec": {"replicas": "three"}}),
            "Deployment.spec.replicas",
            "expected an integer",
        ),
        (
            DEPLOYMENT,
            json!({"spec": {"replicas": 4_294_967_296_i64}}),
            "Deployment.spec.replicas",
            "does not fit in 32 bits",
        ),
        (
            DEPLOYMENT,
            json!({"spec": {"replicas": 1.5}}),
            "Deployment.spec.replicas",
            "is not an integer",
        ),
        (
            DEPLOYMENT,
            json!({"spec": []}),
            "Deployment.spec",
            "expected an object",
        ),
        (
            POD,
            json!({"spec": {"containers": {"name": "x"}}}),
            "Pod.spec.containers",
            "expected an array",
        ),
        (
            POD,
            json!({"spec": {"containers": [{"name": 7}]}}),
            "Pod.spec.containers[0].name",
            "expected a string",
        ),
        (
            POD,
            json!({"spec": {"containers": [{"name": "a", "ports": [{"containerPort": 1, "hostIP": false}]}]}}),
            "Pod.spec.containers[0].ports[0].hostIP",
            "expected a string",
        ),
        (
            POD,
            json!({"metadata": {"creationTimestamp": "yesterday"}}),
            "Pod.metadata.creationTimestamp",
            "not an RFC 3339 time",
        ),
        (
            POD,
            json!({"metadata": {"labels": {"a": 1}}}),
            "Pod.metadata.labels[\"a\"]",
            "expected a string",
        ),
        (
            "k8s.io.api.core.v1.Secret",
            json!({"data": {"k": "not base64!"}}),
            "Secret.data[\"k\"]",
            "not base64",
        ),
        (
            "k8s.io.api.core.v1.ServicePort",
            json!({"targetPort": true}),
            "ServicePort.targetPort",
            "an integer or a string",
        ),
        (
            "k8s.io.api.core.v1.ServicePort",
            json!({"targetPort": 1e10}),
            "ServicePort.targetPort",
            "not a 32-bit integer",
        ),
    ];
    for (message, input, path, problem) in cases {
        match encode(message, &input) {
            Err(ProtobufError::InvalidJson {
                path: actual,
                problem: text,
            }) => {
                assert_eq!(actual, path, "{input}");
                assert!(text.contains(problem), "{input}: {text}");
            }
            other => panic!("{input}: expected an error at {path}, got {other:?}"),
        }
    }
}

#[test]
fn bad_values_on_the_wire_are_errors_naming_the_field() {
    // ServicePort.targetPort (4) = IntOrString{type = 7}
    let bytes = [0x22, 0x02, 0x08, 0x07];
    assert_eq!(
        decode("k8s.io.api.core.v1.ServicePort", &bytes),
        Err(ProtobufError::Malformed {
            path: "ServicePort.targetPort".into(),
            problem: Malformation::InvalidValue(
                "IntOrString type 7 is neither 0 (int) nor 1 (string)".into()
            ),
        })
    );
    // ObjectMeta.creationTimestamp (8) = Time{seconds = 2^62}: past year 9999.
    let mut bytes = vec![0x42, 0x0a, 0x08];
    bytes.extend_from_slice(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x40]);
    assert!(matches!(
        decode("k8s.io.apimachinery.pkg.apis.meta.v1.ObjectMeta", &bytes),
        Err(ProtobufError::Malformed { path, problem: Malformation::InvalidValue(_) }) if path == "ObjectMeta.creationTimestamp"
    ));
    // ManagedFieldsEntry.fieldsV1 (7) = FieldsV1{raw = "{"}
    let bytes = [0x3a, 0x03, 0x0a, 0x01, b'{'];
    assert!(matches!(
        decode("k8s.io.apimachinery.pkg.apis.meta.v1.ManagedFieldsEntry", &bytes),
        Err(ProtobufError::Malformed { path, .. }) if path == "ManagedFieldsEntry.fieldsV1"
    ));
}

#[test]
fn unknown_message_names_are_errors() {
    assert_eq!(
        decode("k8s.io.api.core.v1.Nope", &[]),
        Err(ProtobufError::UnknownMessage(
            "k8s.io.api.core.v1.Nope".into()
        ))
    );
    assert!(matches!(
        encode("Pod", &json!({})),
        Err(ProtobufError::UnknownMessage(_))
    ));
}
