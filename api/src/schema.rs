//! Navigation of the JSON schema documents the API server walks: k8s-openapi's schemars output
//! (a root schema with `$defs` keyed by upstream definition names, linked by `$ref`s) and OpenAPI
//! documents (`components.schemas`). Finding a definition, following `$ref`s and the wrappers
//! generators put around them, and stepping to a property, a list's items or a map's values live
//! here once, for strategic merge patch, server-side apply and strict field validation. It only
//! reads schemas: it never looks at or changes an object.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use serde_json::{Map, Value};

/// Where definitions live in the documents we accept: schemars 1 (`$defs`), JSON Schema draft 7
/// and Swagger 2 (`definitions`), OpenAPI 3 (`components/schemas`).
const DEFINITION_CONTAINERS: [&str; 3] = ["/$defs", "/definitions", "/components/schemas"];

/// How a walker gets from the schema written at a position to the schema that describes the
/// value there. The walkers grew different rules (they differ on real documents: see
/// [`Wrappers`]); each names its own, so that sharing this module changed none of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Resolution {
    /// Which wrappers around a schema are seen through.
    pub(crate) wrappers: Wrappers,
    /// How a `$ref` names its target.
    pub(crate) references: References,
    /// Steps (`$ref`s followed plus wrappers unwrapped) after which the schema reached so far is
    /// used, so that a cycle of `$ref`s ends rather than being followed forever.
    pub(crate) max_depth: usize,
}

/// Which combinators count as wrappers around the one schema that describes a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wrappers {
    /// Only `$ref`s, including one in a lone `allOf` (`allOf: [{"$ref": …}]`, how some generators
    /// attach a description to a reference); `anyOf`/`oneOf` are left alone. Strategic merge
    /// patch's rule.
    AllOfReference,
    /// Also a lone `allOf`, and an `allOf`/`anyOf`/`oneOf` with exactly one alternative besides
    /// `{"type": "null"}` (schemars' spelling of `Option<T>`); a schema with a `$ref` is never a
    /// wrapper. Server-side apply's rule.
    OnlyAlternative,
    /// `$ref` first; else the first alternative of `anyOf` (or, without `anyOf`, of `oneOf`)
    /// that is not `{"type": "null"}`, even when other alternatives remain, so that a
    /// `JSONSchemaPropsOrBool` is checked as a `JSONSchemaProps`. Strict field validation's rule.
    FirstAlternative,
}

/// How the target of a `$ref` is found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum References {
    /// The `$ref` is a local JSON pointer (`#/$defs/…`, `#/components/schemas/…`, `#` for the
    /// document itself), percent-decoded and `~`-unescaped as schemars writes it.
    Pointer,
    /// Only the `$ref`'s last `/` segment counts, taken as it is and looked up in `$defs`, then in
    /// `components/schemas`.
    LastSegment,
}

/// One resolution step from a schema.
enum Step<'a> {
    /// A wrapper around this schema, which keeps the definition name it had.
    Unwrap(&'a Value),
    /// The target of a `$ref`, with the name of the definition it is, if it is one.
    Follow(&'a Value, Option<&'a str>),
    /// Nothing more to see through.
    Stop,
}

/// A schema document as one walker reads it: the document (to look `$ref`s up in) and the walker's
/// [`Resolution`]. Cheap to copy, so every position in a walk can carry it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SchemaDocument<'a> {
    document: &'a Value,
    resolution: Resolution,
}

impl<'a> SchemaDocument<'a> {
    /// Reads `document` (a schemars root schema or an OpenAPI document) with `resolution`.
    pub(crate) fn new(document: &'a Value, resolution: Resolution) -> Self {
        SchemaDocument {
            document,
            resolution,
        }
    }

    /// The schema that describes a value whose position carries `schema`: `$ref`s followed and
    /// wrappers seen through, as far as the resolution allows.
    pub(crate) fn resolve(self, schema: &'a Value) -> &'a Value {
        self.node(schema, None).resolve().schema
    }

    /// A position in this document whose schema is `schema`, the body of `definition` if named.
    fn node(self, schema: &'a Value, definition: Option<&'a str>) -> SchemaNode<'a> {
        SchemaNode {
            document: self,
            schema,
            definition,
        }
    }

    fn step(self, schema: &'a Value) -> Step<'a> {
        let reference = || schema.get("$ref").and_then(Value::as_str);
        match self.resolution.wrappers {
            Wrappers::AllOfReference => match reference_of(schema) {
                Some(reference) => self.follow(reference),
                None => Step::Stop,
            },
            Wrappers::OnlyAlternative => match (only_alternative(schema), reference()) {
                (Some(inner), _) => Step::Unwrap(inner),
                (None, Some(reference)) => self.follow(reference),
                (None, None) => Step::Stop,
            },
            Wrappers::FirstAlternative => match (reference(), first_alternative(schema)) {
                (Some(reference), _) => self.follow(reference),
                (None, Some(inner)) => Step::Unwrap(inner),
                (None, None) => Step::Stop,
            },
        }
    }

    fn follow(self, reference: &'a str) -> Step<'a> {
        let target = match self.resolution.references {
            References::Pointer => resolve_pointer(self.document, reference),
            References::LastSegment => resolve_last_segment(self.document, reference),
        };
        match target {
            Some((schema, definition)) => Step::Follow(schema, definition),
            None => Step::Stop,
        }
    }
}

/// One position in a walk: the schema written there (not yet resolved) and, when that schema is
/// a definition's body rather than a `$ref`, the definition's name, which keys the hand-written
/// tables of patch strategies and list types.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SchemaNode<'a> {
    document: SchemaDocument<'a>,
    schema: &'a Value,
    definition: Option<&'a str>,
}

/// How an object schema knows one of its fields.
pub(crate) enum Field<'a> {
    /// Named in the object schema's `properties`.
    Property {
        /// The property's schema.
        schema: SchemaNode<'a>,
        /// The definition whose body names the property, if the object schema is one.
        declared_in: Option<&'a str>,
    },
    /// Not named, but the object is a map whose values `additionalProperties` describes.
    MapValue(SchemaNode<'a>),
}

impl<'a> SchemaNode<'a> {
    /// The schema written at this position, before resolution.
    pub(crate) fn schema(&self) -> &'a Value {
        self.schema
    }

    /// The definition this position's schema is the body of, if it is one.
    pub(crate) fn definition(&self) -> Option<&'a str> {
        self.definition
    }

    /// The position of the schema that describes the value here, with the name of the
    /// definition it is.
    pub(crate) fn resolve(&self) -> SchemaNode<'a> {
        let mut node = *self;
        for _ in 0..self.document.resolution.max_depth {
            match self.document.step(node.schema) {
                Step::Unwrap(inner) => node.schema = inner,
                Step::Follow(target, definition) => {
                    node.schema = target;
                    node.definition = definition;
                }
                Step::Stop => break,
            }
        }
        node
    }

    /// The field `name` of the object here: a declared property, else a map value.
    pub(crate) fn field(&self, name: &str) -> Option<Field<'a>> {
        let resolved = self.resolve();
        if let Some(schema) = property(resolved.schema, name) {
            return Some(Field::Property {
                schema: self.child(schema),
                declared_in: resolved.definition,
            });
        }
        match additional_properties(resolved.schema) {
            AdditionalProperties::Values(values) => Some(Field::MapValue(self.child(values))),
            AdditionalProperties::Anything | AdditionalProperties::Nothing => None,
        }
    }

    /// The declared property `name` of the object here; unlike [`SchemaNode::field`], never a
    /// map value.
    pub(crate) fn property(&self, name: &str) -> Option<SchemaNode<'a>> {
        property(self.resolve().schema, name).map(|schema| self.child(schema))
    }

    /// The schema of the items of the list here.
    pub(crate) fn items(&self) -> Option<SchemaNode<'a>> {
        items(self.resolve().schema).map(|schema| self.child(schema))
    }

    fn child(&self, schema: &'a Value) -> SchemaNode<'a> {
        self.document.node(schema, None)
    }
}

/// What an object schema says about fields its `properties` do not name.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum AdditionalProperties<'a> {
    /// `additionalProperties: {…}`: the object is a map, each value described by this schema.
    Values(&'a Value),
    /// `additionalProperties: true`: any field, of any shape.
    Anything,
    /// Absent, `false`, or not a schema: no field beyond `properties`.
    Nothing,
}

/// The `properties` of an object schema (not resolved), if it has them.
pub(crate) fn properties(schema: &Value) -> Option<&Map<String, Value>> {
    schema.get("properties").and_then(Value::as_object)
}

/// The schema of the declared property `name` of an object schema (not resolved).
fn property<'a>(schema: &'a Value, name: &str) -> Option<&'a Value> {
    properties(schema).and_then(|properties| properties.get(name))
}

/// The schema of a list schema's items, when it is one schema (not a tuple or a boolean).
pub(crate) fn items(schema: &Value) -> Option<&Value> {
    schema.get("items").filter(|items| items.is_object())
}

/// What an object schema says about fields beyond its `properties`.
pub(crate) fn additional_properties(schema: &Value) -> AdditionalProperties<'_> {
    match schema.get("additionalProperties") {
        Some(values @ Value::Object(_)) => AdditionalProperties::Values(values),
        Some(Value::Bool(true)) => AdditionalProperties::Anything,
        _ => AdditionalProperties::Nothing,
    }
}

/// One definition of a shared schema document: the kind a patch or an apply walks. The
/// document is shared because one may hold every kind's definitions and is hundreds of
/// kilobytes.
#[derive(Clone)]
pub(crate) struct Definition {
    document: Arc<Value>,
    /// JSON pointer to the definition's body in `document` (`""`: the document itself).
    pointer: String,
    name: String,
}

impl Definition {
    /// Generates the schema of `K` with schemars and picks its root. Generating costs a few
    /// milliseconds: build it once per kind and keep it.
    pub(crate) fn for_kind<K: schemars::JsonSchema>() -> Self {
        let name = K::schema_name();
        let document = schemars::SchemaGenerator::default().into_root_schema_for::<K>();
        Self::find(Arc::new(document.to_value()), &name)
            .expect("schemars titles a root schema with its definition name")
    }

    /// The definition called `name` (e.g. `io.k8s.api.apps.v1.Deployment`) in `document`: in
    /// its `$defs`, `definitions` or `components.schemas`, or the document itself when titled so.
    pub(crate) fn find(document: Arc<Value>, name: &str) -> Option<Self> {
        let pointer = find_definition(&document, name)?;
        Some(Definition {
            document,
            pointer,
            name: name.to_owned(),
        })
    }

    /// The upstream definition name, e.g. `io.k8s.api.apps.v1.Deployment`.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// The definition's body as a position to walk from, read with `resolution`.
    pub(crate) fn root(&self, resolution: Resolution) -> SchemaNode<'_> {
        let schema = self
            .document
            .pointer(&self.pointer)
            .expect("the definition's pointer was found when it was built");
        SchemaDocument::new(&self.document, resolution).node(schema, Some(&self.name))
    }

    /// Debug output for a type that wraps a definition: the name and pointer, never the
    /// document, which is hundreds of kilobytes.
    pub(crate) fn fmt_debug(&self, f: &mut fmt::Formatter<'_>, type_name: &str) -> fmt::Result {
        f.debug_struct(type_name)
            .field("definition", &self.name)
            .field("root_pointer", &self.pointer)
            .finish_non_exhaustive()
    }
}

/// The JSON pointer of `definition` in `document`, if it is there.
fn find_definition(document: &Value, definition: &str) -> Option<String> {
    for container in DEFINITION_CONTAINERS {
        let found = document
            .pointer(container)
            .and_then(|definitions| definitions.get(definition))
            .is_some();
        if found {
            let escaped = definition.replace('~', "~0").replace('/', "~1");
            return Some(format!("{container}/{escaped}"));
        }
    }
    (document.get("title").and_then(Value::as_str) == Some(definition)).then(String::new)
}

/// The `$ref` a schema stands for: its own, or that of a lone `allOf` wrapper.
fn reference_of(schema: &Value) -> Option<&str> {
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        return Some(reference);
    }
    match schema
        .get("allOf")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
    {
        Some([only]) => only.get("$ref").and_then(Value::as_str),
        _ => None,
    }
}

/// Whether an alternative of a combinator only allows `null`.
fn is_null_type(schema: &Value) -> bool {
    schema.get("type").and_then(Value::as_str) == Some("null")
}

/// The one schema a wrapper stands for: a lone `allOf`, or an `anyOf`/`oneOf` whose other
/// alternatives only allow `null` (schemars' spelling of `Option<T>`).
fn only_alternative(schema: &Value) -> Option<&Value> {
    if schema.get("$ref").is_some() {
        return None;
    }
    for combinator in ["allOf", "anyOf", "oneOf"] {
        let Some(alternatives) = schema.get(combinator).and_then(Value::as_array) else {
            continue;
        };
        let mut meaningful = alternatives
            .iter()
            .filter(|alternative| !is_null_type(alternative));
        if let (Some(only), None) = (meaningful.next(), meaningful.next()) {
            return Some(only);
        }
    }
    None
}

/// The first alternative of an `anyOf` (or, without one, a `oneOf`) that is not only `null`.
fn first_alternative(schema: &Value) -> Option<&Value> {
    schema
        .get("anyOf")
        .or_else(|| schema.get("oneOf"))
        .and_then(Value::as_array)?
        .iter()
        .find(|alternative| !is_null_type(alternative))
}

/// Resolves a local `$ref` (`#/$defs/io.k8s.api.core.v1.PodSpec`) to its target and the name of
/// the definition it points at.
fn resolve_pointer<'a>(
    document: &'a Value,
    reference: &str,
) -> Option<(&'a Value, Option<&'a str>)> {
    let pointer = percent_decode(reference.strip_prefix('#')?)?;
    if pointer.is_empty() {
        return Some((document, document.get("title").and_then(Value::as_str)));
    }
    let (parent, last) = pointer.rsplit_once('/')?;
    let name = last.replace("~1", "/").replace("~0", "~");
    let (name, target) = document
        .pointer(parent)?
        .as_object()?
        .get_key_value(&name)?;
    Some((target, Some(name.as_str())))
}

/// Resolves a `$ref` by its last segment alone, in `$defs` or else `components/schemas`.
fn resolve_last_segment<'a>(
    document: &'a Value,
    reference: &'a str,
) -> Option<(&'a Value, Option<&'a str>)> {
    let name = reference.rsplit('/').next().unwrap_or_default();
    let target = document
        .get("$defs")
        .and_then(|definitions| definitions.get(name))
        .or_else(|| document.pointer(&format!("/components/schemas/{name}")))?;
    Some((target, Some(name)))
}

/// Undoes the percent-encoding schemars applies to unusual characters in `$ref`s.
fn percent_decode(text: &str) -> Option<Cow<'_, str>> {
    if !text.contains('%') {
        return Some(Cow::Borrowed(text));
    }
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let hex = bytes
            .get(index + 1..index + 3)
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match (bytes[index], hex) {
            (b'%', Some(byte)) => {
                decoded.push(byte);
                index += 3;
            }
            (byte, _) => {
                decoded.push(byte);
                index += 1;
            }
        }
    }
    String::from_utf8(decoded).ok().map(Cow::Owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A root titled as a definition, with definitions in every container we accept, a `$ref`
    /// chain, a cycle and names that need escaping.
    fn document() -> Value {
        json!({
            "title": "example.v1.Root",
            "type": "object",
            "properties": {"spec": {"$ref": "#/$defs/example.v1.Spec"}},
            "$defs": {
                "example.v1.Spec": {"type": "object", "properties": {
                    "size": {"type": "integer"},
                    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                    "extra": {"type": "object", "additionalProperties": true},
                    "ports": {"type": "array", "items": {"$ref": "#/$defs/example.v1.Port"}},
                    "pair": {"type": "array", "items": [{"type": "string"}, {"type": "integer"}]}
                }},
                "example.v1.Port": {"type": "object", "properties": {"port": {"type": "integer"}}},
                "example.v1.Alias": {"$ref": "#/$defs/example.v1.Middle"},
                "example.v1.Middle": {"$ref": "#/$defs/example.v1.Spec"},
                "example.v1.Loop": {"$ref": "#/$defs/example.v1.Loop"},
                "a/b~c": {"type": "string", "format": "escaped"},
                "a b": {"type": "string", "format": "percent-encoded"}
            },
            "definitions": {"example.v1.Legacy": {"type": "boolean"}},
            "components": {"schemas": {
                "example.v1.Open": {"type": "object", "additionalProperties": {"type": "string"}}
            }}
        })
    }

    /// The three rules the walkers use: strategic merge patch, server-side apply, strict.
    const RESOLUTIONS: [Resolution; 3] = [
        Resolution {
            wrappers: Wrappers::AllOfReference,
            references: References::Pointer,
            max_depth: 16,
        },
        Resolution {
            wrappers: Wrappers::OnlyAlternative,
            references: References::Pointer,
            max_depth: 16,
        },
        Resolution {
            wrappers: Wrappers::FirstAlternative,
            references: References::LastSegment,
            max_depth: 64,
        },
    ];

    /// Where a resolution ended.
    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Reached {
        /// Still at the schema it started from.
        Start,
        /// At the first alternative of the start's `anyOf`: unwrapped, not yet followed.
        Unwrapped,
        /// At this JSON pointer of the document, the body of this definition.
        At(&'static str, &'static str),
    }
    use Reached::{At, Start, Unwrapped};

    const SPEC: Reached = At("/$defs/example.v1.Spec", "example.v1.Spec");

    /// Resolves `start` (a schema outside the document, at no definition) and checks where it
    /// ended by address, so that equal-looking schemas elsewhere do not pass.
    fn assert_reaches(document: &Value, resolution: Resolution, start: &Value, expected: Reached) {
        let node = SchemaDocument::new(document, resolution)
            .node(start, None)
            .resolve();
        let (schema, definition) = match expected {
            Start => (Some(start), None),
            Unwrapped => (start.pointer("/anyOf/0"), None),
            At(pointer, definition) => (document.pointer(pointer), Some(definition)),
        };
        let schema = schema.expect("the expected schema exists");
        assert!(
            std::ptr::eq(node.schema(), schema) && node.definition() == definition,
            "{start} with {resolution:?}: expected {expected:?}, reached {} ({:?})",
            node.schema(),
            node.definition()
        );
    }

    #[test]
    fn each_resolution_sees_through_its_own_wrappers() {
        let document = document();
        // (start, [patch's, apply's, strict's resolution])
        let cases: [(Value, [Reached; 3]); 12] = [
            (json!({"$ref": "#/$defs/example.v1.Spec"}), [SPEC; 3]),
            (json!({"$ref": "#/$defs/example.v1.Alias"}), [SPEC; 3]),
            (json!({"$ref": "#/$defs/example.v1.Nope"}), [Start; 3]),
            (
                json!({"$ref": "#/components/schemas/example.v1.Open"}),
                [At("/components/schemas/example.v1.Open", "example.v1.Open"); 3],
            ),
            // schemars' Option<T>.
            (
                json!({"anyOf": [{"$ref": "#/$defs/example.v1.Spec"}, {"type": "null"}]}),
                [Start, SPEC, SPEC],
            ),
            // k8s-openapi's JSONSchemaPropsOrBool.
            (
                json!({"oneOf": [{"$ref": "#/$defs/example.v1.Spec"}, {"type": "boolean"}]}),
                [Start, Start, SPEC],
            ),
            (
                json!({"allOf": [{"$ref": "#/$defs/example.v1.Spec"}]}),
                [SPEC, SPEC, Start],
            ),
            (json!({"anyOf": [{"type": "null"}]}), [Start; 3]),
            (
                json!({"$ref": "#"}),
                [At("", "example.v1.Root"), At("", "example.v1.Root"), Start],
            ),
            (
                json!({"$ref": "#/$defs/a~1b~0c"}),
                [
                    At("/$defs/a~1b~0c", "a/b~c"),
                    At("/$defs/a~1b~0c", "a/b~c"),
                    Start,
                ],
            ),
            (
                json!({"$ref": "#/$defs/a%20b"}),
                [At("/$defs/a b", "a b"), At("/$defs/a b", "a b"), Start],
            ),
            (
                json!({"$ref": "#/definitions/example.v1.Legacy"}),
                [
                    At("/definitions/example.v1.Legacy", "example.v1.Legacy"),
                    At("/definitions/example.v1.Legacy", "example.v1.Legacy"),
                    Start,
                ],
            ),
        ];
        for (start, expected) in cases {
            for (resolution, expected) in RESOLUTIONS.into_iter().zip(expected) {
                assert_reaches(&document, resolution, &start, expected);
            }
        }
    }

    #[test]
    fn resolution_stops_after_max_depth_steps() {
        let document = document();
        let chain = json!({"$ref": "#/$defs/example.v1.Alias"});
        let option = json!({"anyOf": [{"$ref": "#/$defs/example.v1.Spec"}, {"type": "null"}]});
        // (start, wrappers, max_depth, where it stops): unwrapping a wrapper is a step too.
        let cases = [
            (&chain, Wrappers::AllOfReference, 0, Start),
            (
                &chain,
                Wrappers::AllOfReference,
                1,
                At("/$defs/example.v1.Alias", "example.v1.Alias"),
            ),
            (
                &chain,
                Wrappers::OnlyAlternative,
                2,
                At("/$defs/example.v1.Middle", "example.v1.Middle"),
            ),
            (&chain, Wrappers::FirstAlternative, 3, SPEC),
            (&option, Wrappers::OnlyAlternative, 1, Unwrapped),
            (&option, Wrappers::OnlyAlternative, 2, SPEC),
            (&option, Wrappers::FirstAlternative, 1, Unwrapped),
        ];
        for (start, wrappers, max_depth, expected) in cases {
            let resolution = Resolution {
                wrappers,
                references: References::Pointer,
                max_depth,
            };
            assert_reaches(&document, resolution, start, expected);
        }
    }

    #[test]
    fn a_cycle_of_refs_ends_at_the_depth_limit() {
        let document = document();
        let start = json!({"$ref": "#/$defs/example.v1.Loop"});
        for resolution in RESOLUTIONS {
            let expected = At("/$defs/example.v1.Loop", "example.v1.Loop");
            assert_reaches(&document, resolution, &start, expected);
        }
    }

    #[test]
    fn definitions_are_found_in_every_container_and_by_title() {
        let cases = [
            ("example.v1.Spec", Some("/$defs/example.v1.Spec")),
            ("example.v1.Legacy", Some("/definitions/example.v1.Legacy")),
            (
                "example.v1.Open",
                Some("/components/schemas/example.v1.Open"),
            ),
            ("example.v1.Root", Some("")),
            ("a/b~c", Some("/$defs/a~1b~0c")),
            ("example.v1.Nope", None),
        ];
        let document = Arc::new(document());
        for (name, expected) in cases {
            assert_eq!(
                find_definition(&document, name).as_deref(),
                expected,
                "{name}"
            );
            let definition = Definition::find(document.clone(), name);
            assert_eq!(definition.is_some(), expected.is_some(), "{name}");
            if let (Some(definition), Some(pointer)) = (definition, expected) {
                let root = definition.root(RESOLUTIONS[0]);
                let body = document.pointer(pointer).unwrap();
                assert!(std::ptr::eq(root.schema(), body), "{name}");
                assert_eq!((definition.name(), root.definition()), (name, Some(name)));
            }
        }
    }

    #[test]
    fn fields_are_properties_or_map_values() {
        let definition = Definition::find(Arc::new(document()), "example.v1.Root").unwrap();
        let root = definition.root(RESOLUTIONS[1]);
        let Some(Field::Property {
            schema: spec,
            declared_in,
        }) = root.field("spec")
        else {
            panic!("spec is a declared property");
        };
        assert_eq!(declared_in, Some("example.v1.Root"));
        // (path from spec, `*` for list items: Some(true) a declared property, Some(false) a map
        // value, None no field)
        let cases = [
            ("size", Some(true)),
            ("nope", None),
            ("labels.any", Some(false)),
            ("extra.any", None),
            ("ports.*.port", Some(true)),
            ("pair.*", None),
        ];
        for (path, expected) in cases {
            let mut at = Some((spec, None));
            for step in path.split('.') {
                at = at.and_then(|(node, _): (SchemaNode<'_>, Option<bool>)| match step {
                    "*" => node.items().map(|items| (items, None)),
                    _ => match node.field(step)? {
                        Field::Property { schema, .. } => Some((schema, Some(true))),
                        Field::MapValue(values) => Some((values, Some(false))),
                    },
                });
            }
            assert_eq!(at.and_then(|(_, declared)| declared), expected, "{path}");
        }
        assert!(spec.property("size").is_some());
        let labels = spec.property("labels").unwrap();
        assert!(labels.field("any").is_some() && labels.property("any").is_none());
        let Some(Field::Property { declared_in, .. }) = spec.field("size") else {
            panic!("size is a declared property");
        };
        assert_eq!(declared_in, Some("example.v1.Spec"));
    }

    #[test]
    fn additional_properties_say_what_undeclared_fields_may_be() {
        let values = json!({"type": "string"});
        let cases = [
            (json!({"type": "object"}), AdditionalProperties::Nothing),
            (
                json!({"additionalProperties": false}),
                AdditionalProperties::Nothing,
            ),
            (
                json!({"additionalProperties": true}),
                AdditionalProperties::Anything,
            ),
            (
                json!({"additionalProperties": values}),
                AdditionalProperties::Values(&values),
            ),
            (
                json!({"additionalProperties": "junk"}),
                AdditionalProperties::Nothing,
            ),
        ];
        for (schema, expected) in cases {
            assert_eq!(additional_properties(&schema), expected, "{schema}");
        }
        assert!(items(&json!({"items": [{"type": "string"}]})).is_none());
        assert!(items(&json!({"items": {"type": "string"}})).is_some());
        assert!(properties(&json!({"properties": []})).is_none());
    }

    #[test]
    fn debug_output_names_the_definition_not_the_document() {
        struct Wrapper(Definition);
        impl fmt::Debug for Wrapper {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt_debug(f, "Wrapper")
            }
        }
        let definition = Definition::find(Arc::new(document()), "example.v1.Spec").unwrap();
        assert_eq!(
            format!("{:?}", Wrapper(definition)),
            r#"Wrapper { definition: "example.v1.Spec", root_pointer: "/$defs/example.v1.Spec", .. }"#
        );
    }
}
