//! Strategic merge patch cases, drawn from the behaviour upstream's `patch_test.go` pins down,
//! run against a small hand-built schema shaped like a pod template.

use serde_json::{json, Value};

use crate::patch::{strategic_merge_patch, NoSchema, PatchError, PatchSchema, PatchStrategy};

/// A schema tree for tests: a strategy, named fields and an item schema.
#[derive(Default)]
struct Fake {
    strategy: PatchStrategy,
    fields: Vec<(&'static str, Fake)>,
    items: Option<Box<Fake>>,
}

impl Fake {
    fn object(fields: Vec<(&'static str, Fake)>) -> Fake {
        Fake {
            fields,
            ..Fake::default()
        }
    }

    fn list(strategy: PatchStrategy, items: Fake) -> Fake {
        Fake {
            strategy,
            items: Some(Box::new(items)),
            ..Fake::default()
        }
    }

    fn with(strategy: PatchStrategy) -> Fake {
        Fake {
            strategy,
            ..Fake::default()
        }
    }
}

impl PatchSchema for Fake {
    fn field(&self, name: &str) -> Option<Box<dyn PatchSchema + '_>> {
        self.fields
            .iter()
            .find(|(field, _)| *field == name)
            .map(|(_, schema)| Box::new(schema) as Box<dyn PatchSchema + '_>)
    }

    fn items(&self) -> Option<Box<dyn PatchSchema + '_>> {
        self.items
            .as_deref()
            .map(|schema| Box::new(schema) as Box<dyn PatchSchema + '_>)
    }

    fn strategy(&self) -> PatchStrategy {
        self.strategy.clone()
    }
}

/// Pod-template-like: containers by name (with env by name and ports by containerPort),
/// finalizers as a set, tolerations and args atomic, a replace-strategy selector, a
/// retainKeys strategy map and volumes by name with retainKeys.
fn workload() -> Fake {
    let container = Fake::object(vec![
        (
            "env",
            Fake::list(PatchStrategy::merge_by("name"), Fake::default()),
        ),
        (
            "ports",
            Fake::list(PatchStrategy::merge_by("containerPort"), Fake::default()),
        ),
    ]);
    Fake::object(vec![
        ("finalizers", Fake::with(PatchStrategy::merge_set())),
        (
            "containers",
            Fake::list(PatchStrategy::merge_by("name"), container),
        ),
        (
            "volumes",
            Fake::list(
                PatchStrategy::merge_by("name").with_retain_keys(),
                Fake::default(),
            ),
        ),
        ("selector", Fake::with(PatchStrategy::replace())),
        (
            "strategy",
            Fake::with(PatchStrategy::default().with_retain_keys()),
        ),
        ("objects", Fake::with(PatchStrategy::merge_set())),
    ])
}

/// What a case expects: the patched object, or an error whose message contains the text.
enum Expect {
    Patched(Value),
    Fails(&'static str),
}

struct Case {
    name: &'static str,
    original: Value,
    patch: Value,
    expect: Expect,
}

fn patched(name: &'static str, original: Value, patch: Value, result: Value) -> Case {
    Case {
        name,
        original,
        patch,
        expect: Expect::Patched(result),
    }
}

fn fails(name: &'static str, original: Value, patch: Value, message: &'static str) -> Case {
    Case {
        name,
        original,
        patch,
        expect: Expect::Fails(message),
    }
}

fn run(cases: Vec<Case>, schema: &dyn PatchSchema) {
    for case in cases {
        let mut target = case.original.clone();
        let result = strategic_merge_patch(&mut target, &case.patch, schema);
        match (case.expect, result) {
            (Expect::Patched(expected), Ok(())) => {
                // Lists compare in order; maps compare as maps (key order is not part of the contract).
                assert_eq!(target, expected, "case {:?}", case.name);
            }
            (Expect::Fails(message), Err(error)) => {
                assert!(
                    error.to_string().contains(message),
                    "case {:?}: error {error:?} does not mention {message:?}",
                    case.name
                );
                assert_eq!(
                    target, case.original,
                    "case {:?}: a failed patch must leave the object alone",
                    case.name
                );
            }
            (Expect::Patched(expected), Err(error)) => {
                panic!(
                    "case {:?}: expected {expected}, got error {error}",
                    case.name
                )
            }
            (Expect::Fails(message), Ok(())) => {
                panic!(
                    "case {:?}: expected an error mentioning {message:?}, got {target}",
                    case.name
                )
            }
        }
    }
}

#[test]
fn maps_merge_recursively_and_null_deletes() {
    run(
        vec![
            patched(
                "fields are added, changed and kept",
                json!({"name": "web", "labels": {"app": "web", "tier": "front"}}),
                json!({"labels": {"tier": "back", "team": "blue"}, "replicas": 3}),
                json!({"name": "web", "labels": {"app": "web", "tier": "back", "team": "blue"}, "replicas": 3}),
            ),
            patched(
                "null deletes a key",
                json!({"labels": {"app": "web", "tier": "front"}, "paused": true}),
                json!({"labels": {"tier": null}, "paused": null}),
                json!({"labels": {"app": "web"}}),
            ),
            patched(
                "null for a key the object lacks changes nothing",
                json!({"name": "web"}),
                json!({"missing": null, "labels": {"absent": null}}),
                json!({"name": "web", "labels": {}}),
            ),
            patched(
                "nulls inside a new map are dropped, not stored",
                json!({}),
                json!({"resources": {"limits": {"cpu": "1", "memory": null}}}),
                json!({"resources": {"limits": {"cpu": "1"}}}),
            ),
            patched(
                "a map replaces a scalar and a scalar replaces a map",
                json!({"a": "text", "b": {"c": 1}}),
                json!({"a": {"x": 1}, "b": 2}),
                json!({"a": {"x": 1}, "b": 2}),
            ),
            patched(
                "nulls already in the object are kept",
                json!({"thing": null}),
                json!({"other": 1}),
                json!({"thing": null, "other": 1}),
            ),
            patched(
                "keys that only look like directives are ordinary fields",
                json!({"schema": {"$ref": "#/a"}}),
                json!({"schema": {"$ref": "#/b", "$schema": "draft"}}),
                json!({"schema": {"$ref": "#/b", "$schema": "draft"}}),
            ),
            patched(
                "an empty patch changes nothing",
                json!({"name": "web"}),
                json!({}),
                json!({"name": "web"}),
            ),
        ],
        &workload(),
    );
}

#[test]
fn lists_without_a_strategy_are_replaced() {
    run(
        vec![
            patched(
                "atomic list of objects",
                json!({"tolerations": [{"key": "a"}, {"key": "b"}]}),
                json!({"tolerations": [{"key": "c"}]}),
                json!({"tolerations": [{"key": "c"}]}),
            ),
            patched(
                "atomic list of primitives",
                json!({"args": ["--a", "--b"]}),
                json!({"args": ["--c"]}),
                json!({"args": ["--c"]}),
            ),
            patched(
                "nulls inside list elements' maps are dropped, null elements are kept",
                json!({}),
                json!({"tolerations": [{"key": "a", "value": null}], "args": ["x", null]}),
                json!({"tolerations": [{"key": "a"}], "args": ["x", null]}),
            ),
            patched(
                "an empty list replaces",
                json!({"args": ["--a"]}),
                json!({"args": []}),
                json!({"args": []}),
            ),
        ],
        &workload(),
    );
}

#[test]
fn merge_lists_merge_elements_by_key() {
    run(
        vec![
            patched(
                "an element merges with the one of the same key; others stay in place",
                json!({"containers": [{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}]}),
                json!({"containers": [{"name": "b", "image": "b:2"}]}),
                json!({"containers": [{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:2"}]}),
            ),
            patched(
                "without $setElementOrder a new element lands before the server-only ones, as upstream puts it",
                json!({"containers": [{"name": "a"}]}),
                json!({"containers": [{"name": "b", "image": "b:1"}]}),
                json!({"containers": [{"name": "b", "image": "b:1"}, {"name": "a"}]}),
            ),
            patched(
                "a new element after a patched one follows it",
                json!({"containers": [{"name": "a"}, {"name": "b"}]}),
                json!({"containers": [{"name": "a", "image": "a"}, {"name": "c"}]}),
                json!({"containers": [{"name": "a", "image": "a"}, {"name": "c"}, {"name": "b"}]}),
            ),
            patched(
                "patched elements take the patch's order, server-only ones keep their place before them",
                json!({"containers": [{"name": "a"}, {"name": "b", "image": "b"}, {"name": "c"}]}),
                json!({"containers": [{"name": "c", "image": "c"}, {"name": "a", "image": "a"}]}),
                json!({"containers": [{"name": "b", "image": "b"}, {"name": "c", "image": "c"}, {"name": "a", "image": "a"}]}),
            ),
            patched(
                "the patch order of every element is kept when all are patched",
                json!({"containers": [{"name": "a"}, {"name": "b"}, {"name": "c"}]}),
                json!({"containers": [{"name": "c"}, {"name": "a"}, {"name": "b"}]}),
                json!({"containers": [{"name": "c"}, {"name": "a"}, {"name": "b"}]}),
            ),
            patched(
                "null deletes a field of one element",
                json!({"containers": [{"name": "a", "image": "a", "command": ["sh"]}]}),
                json!({"containers": [{"name": "a", "command": null}]}),
                json!({"containers": [{"name": "a", "image": "a"}]}),
            ),
            patched(
                "nested merge lists: env by name and ports by containerPort",
                json!({"containers": [{
                    "name": "a",
                    "env": [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}],
                    "ports": [{"containerPort": 80, "name": "http"}, {"containerPort": 443}]
                }]}),
                json!({"containers": [{
                    "name": "a",
                    "env": [{"name": "Y", "value": "3"}, {"name": "Z", "value": "4"}],
                    "ports": [{"containerPort": 80, "protocol": "TCP"}]
                }]}),
                json!({"containers": [{
                    "name": "a",
                    "env": [{"name": "X", "value": "1"}, {"name": "Y", "value": "3"}, {"name": "Z", "value": "4"}],
                    "ports": [{"containerPort": 80, "name": "http", "protocol": "TCP"}, {"containerPort": 443}]
                }]}),
            ),
            patched(
                "a merge list the object lacks is taken from the patch",
                json!({}),
                json!({"containers": [{"name": "a", "env": [{"name": "X", "value": null}]}]}),
                json!({"containers": [{"name": "a", "env": [{"name": "X"}]}]}),
            ),
            patched(
                "empty lists stay empty",
                json!({"containers": []}),
                json!({"containers": []}),
                json!({"containers": []}),
            ),
            fails(
                "a patch element without the merge key",
                json!({"containers": [{"name": "a"}]}),
                json!({"containers": [{"image": "x"}]}),
                "does not contain declared merge key: name",
            ),
            fails(
                "a merge list of objects without a merge key in the schema",
                json!({"objects": [{"a": 1}]}),
                json!({"objects": [{"b": 2}]}),
                "cannot merge lists without merge key for objects",
            ),
            fails(
                "primitives where the schema wants objects with a key",
                json!({"containers": ["a"]}),
                json!({"containers": ["b"]}),
                "must be objects",
            ),
            fails(
                "mixed element types",
                json!({"containers": [{"name": "a"}]}),
                json!({"containers": ["b"]}),
                "list element types are not identical",
            ),
            fails(
                "lists of lists",
                json!({"finalizers": [["a"]]}),
                json!({"finalizers": [["b"]]}),
                "lists of lists are not supported",
            ),
        ],
        &workload(),
    );
}

#[test]
fn primitive_merge_lists_merge_as_sets() {
    run(
        vec![
            patched(
                "union, server order first, no duplicates",
                json!({"finalizers": ["a", "b"]}),
                json!({"finalizers": ["b", "c"]}),
                json!({"finalizers": ["a", "b", "c"]}),
            ),
            patched(
                "duplicates in the object collapse",
                json!({"finalizers": ["a", "a", "b"]}),
                json!({"finalizers": ["b", "c"]}),
                json!({"finalizers": ["a", "b", "c"]}),
            ),
            patched(
                "patch order wins over server order for the values it names",
                json!({"finalizers": ["a", "b", "c"]}),
                json!({"finalizers": ["c", "a"]}),
                json!({"finalizers": ["b", "c", "a"]}),
            ),
            patched(
                "$deleteFromPrimitiveList removes every occurrence",
                json!({"finalizers": ["a", "b", "a", "c"]}),
                json!({"$deleteFromPrimitiveList/finalizers": ["a"]}),
                json!({"finalizers": ["b", "c"]}),
            ),
            patched(
                "$deleteFromPrimitiveList also works on lists without a merge strategy",
                json!({"args": ["--a", "--b"]}),
                json!({"$deleteFromPrimitiveList/args": ["--b"]}),
                json!({"args": ["--a"]}),
            ),
            patched(
                "$deleteFromPrimitiveList of a list the object lacks does not create it",
                json!({"name": "x"}),
                json!({"$deleteFromPrimitiveList/finalizers": ["a"]}),
                json!({"name": "x"}),
            ),
            patched(
                "$deleteFromPrimitiveList of a value the list lacks changes nothing",
                json!({"finalizers": ["a"]}),
                json!({"$deleteFromPrimitiveList/finalizers": ["z"]}),
                json!({"finalizers": ["a"]}),
            ),
            patched(
                "adding and deleting in one patch",
                json!({"finalizers": ["a", "b"]}),
                json!({"finalizers": ["c"], "$deleteFromPrimitiveList/finalizers": ["a"]}),
                json!({"finalizers": ["c", "b"]}),
            ),
            fails(
                "$deleteFromPrimitiveList must be a list",
                json!({"finalizers": ["a"]}),
                json!({"$deleteFromPrimitiveList/finalizers": "a"}),
                "invalid patch format of primitive list",
            ),
            fails(
                "$deleteFromPrimitiveList needs a field name",
                json!({"finalizers": ["a"]}),
                json!({"$deleteFromPrimitiveList": ["a"]}),
                "invalid patch format of primitive list",
            ),
        ],
        &workload(),
    );
}

#[test]
fn patch_directive_in_lists() {
    run(
        vec![
            patched(
                "$patch: delete removes the element with that key",
                json!({"containers": [{"name": "a"}, {"name": "b"}, {"name": "c"}]}),
                json!({"containers": [{"name": "b", "$patch": "delete"}]}),
                json!({"containers": [{"name": "a"}, {"name": "c"}]}),
            ),
            patched(
                "$patch: delete removes duplicates too",
                json!({"containers": [{"name": "a"}, {"name": "b"}, {"name": "a"}]}),
                json!({"containers": [{"name": "a", "$patch": "delete"}]}),
                json!({"containers": [{"name": "b"}]}),
            ),
            patched(
                "$patch: delete of an absent element is harmless, and can sit beside updates",
                json!({"containers": [{"name": "a"}]}),
                json!({"containers": [{"name": "z", "$patch": "delete"}, {"name": "a", "image": "a:2"}]}),
                json!({"containers": [{"name": "a", "image": "a:2"}]}),
            ),
            patched(
                "$patch: replace makes the list the patch's other elements",
                json!({"containers": [{"name": "a", "image": "a"}, {"name": "b"}]}),
                json!({"containers": [{"name": "c"}, {"$patch": "replace"}, {"name": "a"}]}),
                json!({"containers": [{"name": "c"}, {"name": "a"}]}),
            ),
            patched(
                "$patch: replace alone empties the list",
                json!({"containers": [{"name": "a"}, {"name": "b"}]}),
                json!({"containers": [{"$patch": "replace"}]}),
                json!({"containers": []}),
            ),
            patched(
                "directive elements of a new list are dropped",
                json!({}),
                json!({"containers": [{"name": "a"}, {"name": "b", "$patch": "delete"}]}),
                json!({"containers": [{"name": "a"}]}),
            ),
            fails(
                "$patch: delete needs the merge key",
                json!({"containers": [{"name": "a"}]}),
                json!({"containers": [{"$patch": "delete"}]}),
                "does not contain declared merge key: name",
            ),
            fails(
                "$patch: merge is not supported inside lists",
                json!({"containers": [{"name": "a"}]}),
                json!({"containers": [{"$patch": "merge"}]}),
                "merging lists cannot yet be specified in the patch",
            ),
            fails(
                "unknown $patch values are rejected",
                json!({"containers": [{"name": "a"}]}),
                json!({"containers": [{"name": "a", "$patch": "explode"}]}),
                "unknown patch type: \"explode\"",
            ),
        ],
        &workload(),
    );
}

#[test]
fn patch_directive_on_maps() {
    run(
        vec![
            patched(
                "$patch: replace replaces the map with the patch's fields",
                json!({"labels": {"a": "1", "b": "2"}, "name": "x"}),
                json!({"labels": {"$patch": "replace", "c": "3"}}),
                json!({"labels": {"c": "3"}, "name": "x"}),
            ),
            patched(
                "$patch: replace at the top level",
                json!({"name": "x", "value": 1}),
                json!({"$patch": "replace", "other": "a"}),
                json!({"other": "a"}),
            ),
            patched(
                "$patch: replace on an absent map sets it",
                json!({}),
                json!({"labels": {"$patch": "replace", "c": "3"}}),
                json!({"labels": {"c": "3"}}),
            ),
            patched(
                "$patch: delete leaves an empty map, as upstream does",
                json!({"labels": {"a": "1"}, "name": "x"}),
                json!({"labels": {"$patch": "delete"}}),
                json!({"labels": {}, "name": "x"}),
            ),
            patched(
                "$patch: delete of an absent map adds nothing",
                json!({"name": "x"}),
                json!({"labels": {"$patch": "delete"}}),
                json!({"name": "x"}),
            ),
            patched(
                "$patch: merge is the default spelled out",
                json!({"labels": {"a": "1"}}),
                json!({"labels": {"$patch": "merge", "b": "2"}}),
                json!({"labels": {"a": "1", "b": "2"}}),
            ),
            patched(
                "a replace-strategy map is replaced, not merged",
                json!({"selector": {"matchLabels": {"a": "1"}, "matchExpressions": []}}),
                json!({"selector": {"matchLabels": {"b": "2"}}}),
                json!({"selector": {"matchLabels": {"b": "2"}}}),
            ),
            fails(
                "unknown $patch values on maps are rejected",
                json!({"labels": {"a": "1"}}),
                json!({"labels": {"$patch": "remove"}}),
                "unknown patch type: \"remove\" in map at labels",
            ),
        ],
        &workload(),
    );
}

#[test]
fn retain_keys_clears_unlisted_fields() {
    run(
        vec![
            patched(
                "switching a deployment strategy drops the old one's fields",
                json!({"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}),
                json!({"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}),
                json!({"strategy": {"type": "Recreate"}}),
            ),
            patched(
                "a volume switching source, inside a merge list",
                json!({"volumes": [
                    {"name": "data", "emptyDir": {}},
                    {"name": "config", "configMap": {"name": "c"}}
                ]}),
                json!({"volumes": [
                    {"name": "data", "$retainKeys": ["name", "hostPath"], "hostPath": {"path": "/d"}}
                ]}),
                json!({"volumes": [
                    {"name": "data", "hostPath": {"path": "/d"}},
                    {"name": "config", "configMap": {"name": "c"}}
                ]}),
            ),
            patched(
                "without the directive a retainKeys map merges as usual",
                json!({"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}),
                json!({"strategy": {"rollingUpdate": {"maxUnavailable": 0}}}),
                json!({"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}}),
            ),
            patched(
                "nulls in the patch need not be listed",
                json!({"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}),
                json!({"strategy": {"$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": null}}),
                json!({"strategy": {"type": "Recreate"}}),
            ),
            fails(
                "the patch may not set a field $retainKeys drops",
                json!({"strategy": {"type": "RollingUpdate"}}),
                json!({"strategy": {"$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": {}}}),
                "invalid patch format of retainKeys at strategy: the patch sets `rollingUpdate`",
            ),
            fails(
                "$retainKeys must be a list",
                json!({"strategy": {}}),
                json!({"strategy": {"$retainKeys": "type"}}),
                "invalid patch format of retainKeys",
            ),
        ],
        &workload(),
    );
}

#[test]
fn set_element_order_orders_the_merged_list() {
    run(
        vec![
            patched(
                "order of a keyed list, with server-only elements kept in place",
                json!({"containers": [{"name": "a"}, {"name": "b"}, {"name": "c"}]}),
                json!({
                    "$setElementOrder/containers": [{"name": "c"}, {"name": "a"}],
                    "containers": [{"name": "a", "image": "a:2"}]
                }),
                json!({"containers": [{"name": "b"}, {"name": "c"}, {"name": "a", "image": "a:2"}]}),
            ),
            patched(
                "order only, without a patch list",
                json!({"containers": [{"name": "a"}, {"name": "b"}]}),
                json!({"$setElementOrder/containers": [{"name": "b"}, {"name": "a"}]}),
                json!({"containers": [{"name": "b"}, {"name": "a"}]}),
            ),
            patched(
                "names the object lacks are ignored",
                json!({"containers": [{"name": "a"}, {"name": "c"}]}),
                json!({
                    "$setElementOrder/containers": [{"name": "c"}, {"name": "b"}, {"name": "a"}],
                    "containers": [{"name": "c", "image": "c"}, {"name": "a", "image": "a"}]
                }),
                json!({"containers": [{"name": "c", "image": "c"}, {"name": "a", "image": "a"}]}),
            ),
            patched(
                "a new list in the given order",
                json!({}),
                json!({
                    "$setElementOrder/containers": [{"name": "b"}, {"name": "a"}],
                    "containers": [{"name": "b"}, {"name": "a"}]
                }),
                json!({"containers": [{"name": "b"}, {"name": "a"}]}),
            ),
            patched(
                "primitives: order and deletion together, as kubectl sends them",
                json!({"finalizers": ["a", "b", "c", "d"]}),
                json!({
                    "$setElementOrder/finalizers": ["b", "a"],
                    "$deleteFromPrimitiveList/finalizers": ["c"]
                }),
                json!({"finalizers": ["b", "a", "d"]}),
            ),
            patched(
                "with a deletion in the patch list",
                json!({"containers": [{"name": "a"}, {"name": "b"}, {"name": "c"}]}),
                json!({
                    "$setElementOrder/containers": [{"name": "c"}, {"name": "a"}],
                    "containers": [{"name": "b", "$patch": "delete"}]
                }),
                json!({"containers": [{"name": "c"}, {"name": "a"}]}),
            ),
            patched(
                "server-only elements stay ahead of elements added beside a deletion",
                json!({"containers": [{"name": "x"}, {"name": "y"}, {"name": "z", "image": "z"}]}),
                json!({
                    "$setElementOrder/containers": [{"name": "x"}, {"name": "n"}],
                    "containers": [{"name": "n", "image": "n"}, {"name": "y", "$patch": "delete"}]
                }),
                json!({"containers": [{"name": "x"}, {"name": "z", "image": "z"}, {"name": "n", "image": "n"}]}),
            ),
            patched(
                "a directive for a list neither side has adds nothing",
                json!({"name": "x"}),
                json!({"$setElementOrder/containers": [{"name": "a"}]}),
                json!({"name": "x"}),
            ),
            fails(
                "patch list in another order than $setElementOrder",
                json!({"containers": [{"name": "a"}, {"name": "b"}]}),
                json!({
                    "$setElementOrder/containers": [{"name": "a"}, {"name": "b"}],
                    "containers": [{"name": "b", "image": "b"}, {"name": "a", "image": "a"}]
                }),
                "doesn't match $setElementOrder list",
            ),
            fails(
                "primitives in another order than $setElementOrder",
                json!({"finalizers": ["a", "b"]}),
                json!({"$setElementOrder/finalizers": ["a", "b"], "finalizers": ["b", "a"]}),
                "doesn't match $setElementOrder list",
            ),
            fails(
                "$setElementOrder must be a list",
                json!({"containers": []}),
                json!({"$setElementOrder/containers": {"name": "a"}}),
                "invalid patch format of setElementOrder list",
            ),
            fails(
                "$setElementOrder needs a field name",
                json!({"containers": []}),
                json!({"$setElementOrderContainers": []}),
                "invalid patch format of setElementOrder list",
            ),
        ],
        &workload(),
    );
}

#[test]
fn documents_that_are_not_objects_are_rejected() {
    let mut target = json!({"a": 1});
    let error = strategic_merge_patch(&mut target, &json!([1]), &NoSchema).unwrap_err();
    assert_eq!(
        error,
        PatchError::NotAnObject {
            what: "a strategic merge patch",
            found: "list"
        }
    );
    let mut target = json!("text");
    let error = strategic_merge_patch(&mut target, &json!({}), &NoSchema).unwrap_err();
    assert!(error
        .to_string()
        .contains("the object being patched must be a JSON object"));
    let mut target = Value::Null;
    strategic_merge_patch(&mut target, &json!({"a": 1}), &NoSchema).unwrap();
    assert_eq!(target, json!({"a": 1}));
}

#[test]
fn no_schema_merges_maps_and_replaces_every_list() {
    run(
        vec![patched(
            "custom resource",
            json!({"spec": {"pools": [{"name": "a"}], "size": 1}, "metadata": {"finalizers": ["x"]}}),
            json!({"spec": {"pools": [{"name": "b"}]}, "metadata": {"finalizers": ["y"]}}),
            json!({"spec": {"pools": [{"name": "b"}], "size": 1}, "metadata": {"finalizers": ["y"]}}),
        )],
        &NoSchema,
    );
}

#[test]
fn errors_name_the_position() {
    let mut target = json!({"containers": [{"name": "web", "env": [{"name": "A"}]}]});
    let error = strategic_merge_patch(
        &mut target,
        &json!({"containers": [{"name": "web", "env": [{"value": "1"}]}]}),
        &workload(),
    )
    .unwrap_err();
    assert!(
        error.to_string().contains("containers[name=web].env"),
        "{error}"
    );
}
