//! JSON → protobuf → JSON is the identity for fully populated objects of every served kind,
//! their lists, and their watch events.

use serde_json::{json, Value};

use super::{differences, object_fixture, object_fixtures};
use crate::protobuf::{
    decode_object, decode_watch_event, encode_object, encode_watch_event, message_for_kind,
};

#[test]
fn every_served_kind_round_trips_json_protobuf_json_unchanged() {
    for (name, object) in object_fixtures() {
        let bytes = encode_object(&object).unwrap_or_else(|error| panic!("{name}: {error}"));
        let back = decode_object(&bytes).unwrap_or_else(|error| panic!("{name}: {error}"));
        let diff = differences(&object, &back);
        assert!(
            diff.is_empty(),
            "{name} changed in the round trip:\n{}",
            diff.join("\n")
        );
        // And the bytes are stable: what we decode encodes to the same bytes.
        assert_eq!(
            encode_object(&back).unwrap(),
            bytes,
            "{name}: bytes changed on re-encoding"
        );
    }
}

#[test]
fn every_kind_in_the_table_has_a_fixture() {
    let names: Vec<String> = object_fixtures()
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    for (_, kind, _) in crate::protobuf::generated::KINDS {
        if kind.ends_with("List") {
            continue;
        }
        assert!(
            names.contains(&kind.to_lowercase()),
            "add fixtures/objects/{}.json",
            kind.to_lowercase()
        );
    }
}

#[test]
fn decoded_objects_put_api_version_and_kind_first() {
    let bytes = encode_object(&object_fixture("deployment")).unwrap();
    let back = decode_object(&bytes).unwrap();
    let keys: Vec<&String> = back.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["apiVersion", "kind", "metadata", "spec", "status"]);
}

/// Items of a typed list carry no apiVersion/kind on the wire (the list's envelope does).
fn without_type_meta(object: &Value) -> Value {
    let mut item = object.clone();
    let fields = item.as_object_mut().unwrap();
    fields.remove("apiVersion");
    fields.remove("kind");
    item
}

#[test]
fn lists_of_every_kind_round_trip() {
    let mut lists = 0;
    for (name, object) in object_fixtures() {
        let api_version = object["apiVersion"].as_str().unwrap();
        let kind = format!("{}List", object["kind"].as_str().unwrap());
        if message_for_kind(api_version, &kind).is_none() {
            continue;
        }
        let item = without_type_meta(&object);
        let list = json!({
            "apiVersion": api_version,
            "kind": kind,
            "metadata": {"resourceVersion": "90210", "continue": "eyJ2IjoibWV0YS5rOHMuaW8vdjEifQ", "remainingItemCount": 0},
            "items": [item.clone(), item],
        });
        let back = decode_object(&encode_object(&list).unwrap()).unwrap();
        let diff = differences(&list, &back);
        assert!(diff.is_empty(), "{name} list changed:\n{}", diff.join("\n"));
        lists += 1;
    }
    assert!(lists >= 14, "only {lists} kinds had lists");
}

#[test]
fn an_empty_list_keeps_its_items_array() {
    let list = json!({"apiVersion": "v1", "kind": "PodList", "metadata": {"resourceVersion": "5"}, "items": []});
    assert_eq!(decode_object(&encode_object(&list).unwrap()).unwrap(), list);
}

#[test]
fn watch_events_carry_the_enveloped_object() {
    for (name, object) in object_fixtures() {
        let api_version = object["apiVersion"].as_str().unwrap();
        let kind = object["kind"].as_str().unwrap();
        let envelope = encode_object(&object).unwrap();
        let raw = crate::protobuf::decode_envelope(&envelope)
            .unwrap()
            .raw
            .to_vec();
        for event_type in ["ADDED", "MODIFIED", "DELETED"] {
            let frame = encode_watch_event(event_type, api_version, kind, &raw);
            assert_eq!(
                u32::from_be_bytes(frame[..4].try_into().unwrap()) as usize,
                frame.len() - 4
            );
            let event =
                decode_watch_event(&frame).unwrap_or_else(|error| panic!("{name}: {error}"));
            assert_eq!(event.event_type, event_type);
            let diff = differences(&object, &event.object);
            assert!(
                diff.is_empty(),
                "{name} changed in a watch event:\n{}",
                diff.join("\n")
            );
        }
    }
}

#[test]
fn watch_event_frames_match_their_upstream_layout() {
    // type = "ADDED"; object = RawExtension{raw = k8s\0 + Unknown{typeMeta, raw, "", ""}}.
    let frame = encode_watch_event("ADDED", "v1", "Namespace", &[0x0a, 0x00]);
    let envelope = crate::protobuf::encode_envelope("v1", "Namespace", &[0x0a, 0x00]);
    let mut expected = vec![0x0a, 5];
    expected.extend_from_slice(b"ADDED");
    expected.extend_from_slice(&[0x12, envelope.len() as u8 + 2, 0x0a, envelope.len() as u8]);
    expected.extend_from_slice(&envelope);
    let mut framed = (expected.len() as u32).to_be_bytes().to_vec();
    framed.extend_from_slice(&expected);
    assert_eq!(frame, framed);
}
