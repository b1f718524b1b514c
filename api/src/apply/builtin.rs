//! [`ApplySchema`] for built-in kinds (and our own kinds that derive `JsonSchema`): walks the
//! JSON schema schemars generates for a kind, following `$ref`s lazily, and takes list and map
//! types from the schema's `x-kubernetes-*` extensions when present, else from the table in
//! `table.rs` (the k8s-openapi schemas carry no such extensions), else from a
//! `x-kubernetes-patch-strategy` as upstream's schema converter does. It applies nothing itself.

mod table;
#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use serde_json::Value;

use super::schema::{ApplySchema, FieldSchema, ListMapKey, ListType, MapType};

/// Where definitions live: schemars 1 (`$defs`), JSON Schema draft 7 and Swagger 2
/// (`definitions`), OpenAPI 3 (`components/schemas`).
const DEFINITION_CONTAINERS: [&str; 3] = ["/$defs", "/definitions", "/components/schemas"];

/// `$ref` chains longer than this are treated as broken rather than followed forever.
const MAX_REF_DEPTH: usize = 16;

/// The server-side apply schema of one kind: a JSON schema document (shared, since one document
/// may hold every kind's definitions) and the kind's definition within it.
#[derive(Clone)]
pub struct BuiltinApplySchema {
    document: Arc<Value>,
    /// JSON pointer to the kind's schema in `document` (`""`: the document itself).
    root_pointer: String,
    definition: String,
}

/// Why a [`BuiltinApplySchema`] could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuiltinApplySchemaError {
    /// The document holds no definition by that name.
    #[error(
        "the schema document has no definition named {definition:?}: looked in $defs, \
         definitions and components.schemas, and at the document's own title"
    )]
    UnknownDefinition {
        /// The name asked for, e.g. `io.k8s.api.apps.v1.Deployment`.
        definition: String,
    },
}

impl BuiltinApplySchema {
    /// Generates the schema of `K` with schemars and wraps it. Generating costs a few
    /// milliseconds and the document is large: build it once per kind and keep it.
    pub fn for_kind<K: schemars::JsonSchema>() -> Self {
        let definition = K::schema_name();
        let document = schemars::SchemaGenerator::default().into_root_schema_for::<K>();
        Self::for_definition(document.to_value(), &definition)
            .expect("schemars titles a root schema with its definition name")
    }

    /// Wraps a JSON schema document (schemars output, or an OpenAPI document keyed by upstream
    /// definition names) and picks the definition of the kind. Pass an `Arc` to share one
    /// document between many kinds.
    pub fn for_definition(
        document: impl Into<Arc<Value>>,
        definition: &str,
    ) -> Result<Self, BuiltinApplySchemaError> {
        let document = document.into();
        let root_pointer = find_definition(&document, definition).ok_or_else(|| {
            BuiltinApplySchemaError::UnknownDefinition {
                definition: definition.to_owned(),
            }
        })?;
        Ok(BuiltinApplySchema {
            document,
            root_pointer,
            definition: definition.to_owned(),
        })
    }

    /// The upstream definition name of the kind, e.g. `io.k8s.api.apps.v1.Deployment`.
    pub fn definition(&self) -> &str {
        &self.definition
    }

    fn root(&self) -> Node<'_> {
        let schema = self
            .document
            .pointer(&self.root_pointer)
            .expect("the root pointer was found when the schema was built");
        Node {
            document: &self.document,
            schema,
            definition: Some(&self.definition),
            tabled: Tabled::default(),
        }
    }
}

impl fmt::Debug for BuiltinApplySchema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The document is hundreds of kilobytes; name the kind instead.
        f.debug_struct("BuiltinApplySchema")
            .field("definition", &self.definition)
            .field("root_pointer", &self.root_pointer)
            .finish_non_exhaustive()
    }
}

impl ApplySchema for BuiltinApplySchema {
    fn field(&self, name: &str) -> Option<FieldSchema<'_>> {
        self.root().child_field(name)
    }

    fn items(&self) -> Option<Box<dyn ApplySchema + '_>> {
        self.root().child_items()
    }

    fn list_type(&self) -> ListType {
        self.root().list_type()
    }

    fn map_type(&self) -> MapType {
        self.root().map_type()
    }
}

/// What the table says about a property, looked up when the property is entered (the table is
/// keyed by the definition that holds it).
#[derive(Debug, Clone, Default)]
struct Tabled {
    list_type: Option<ListType>,
    atomic: bool,
}

/// One position in a [`BuiltinApplySchema`]: the (unresolved) schema there.
struct Node<'a> {
    document: &'a Value,
    schema: &'a Value,
    /// The definition `schema` is, when it is a definition's body rather than a `$ref`.
    definition: Option<&'a str>,
    tabled: Tabled,
}

impl<'a> Node<'a> {
    /// Follows `$ref`s (and `allOf`/`anyOf` wrappers that only add `null`) to the schema that
    /// describes the value, with the definition name it has.
    fn resolve(&self) -> (&'a Value, Option<&'a str>) {
        let mut schema = self.schema;
        let mut definition = self.definition;
        for _ in 0..MAX_REF_DEPTH {
            if let Some(inner) = unwrap_single(schema) {
                schema = inner;
                continue;
            }
            let Some(reference) = schema.get("$ref").and_then(Value::as_str) else {
                break;
            };
            let Some((target, name)) = resolve_reference(self.document, reference) else {
                break;
            };
            schema = target;
            definition = name;
        }
        (schema, definition)
    }

    /// An extension on the schema here or on what it resolves to.
    fn extension(&self, name: &str) -> Option<&'a Value> {
        self.schema.get(name).or_else(|| self.resolve().0.get(name))
    }

    fn child_field(&self, name: &str) -> Option<FieldSchema<'a>> {
        let (schema, definition) = self.resolve();
        if let Some(property) = schema
            .get("properties")
            .and_then(|properties| properties.get(name))
        {
            let tabled = definition
                .map(|definition| Tabled {
                    list_type: table::list_type(definition, name),
                    atomic: table::is_atomic_property(definition, name),
                })
                .unwrap_or_default();
            return Some(FieldSchema {
                declared: true,
                schema: Box::new(self.child(property, tabled)),
            });
        }
        match schema.get("additionalProperties") {
            Some(values @ Value::Object(_)) => Some(FieldSchema {
                declared: false,
                schema: Box::new(self.child(values, Tabled::default())),
            }),
            _ => None,
        }
    }

    fn child_items(&self) -> Option<Box<dyn ApplySchema + 'a>> {
        let (schema, _) = self.resolve();
        match schema.get("items") {
            Some(items @ Value::Object(_)) => Some(Box::new(self.child(items, Tabled::default()))),
            _ => None,
        }
    }

    fn child(&self, schema: &'a Value, tabled: Tabled) -> Node<'a> {
        Node {
            document: self.document,
            schema,
            definition: None,
            tabled,
        }
    }

    fn list_type(&self) -> ListType {
        if let Some(declared) = self
            .extension("x-kubernetes-list-type")
            .and_then(Value::as_str)
        {
            return match declared {
                "set" => ListType::Set,
                "map" => ListType::Map(self.declared_map_keys()),
                _ => ListType::Atomic,
            };
        }
        if let Some(tabled) = &self.tabled.list_type {
            return tabled.clone();
        }
        let merges = self
            .extension("x-kubernetes-patch-strategy")
            .and_then(Value::as_str)
            .is_some_and(|strategy| strategy.split(',').any(|part| part.trim() == "merge"));
        if merges {
            return match self
                .extension("x-kubernetes-patch-merge-key")
                .and_then(Value::as_str)
            {
                Some(key) => ListType::Map(vec![self.map_key(key)]),
                None => ListType::Set,
            };
        }
        ListType::Atomic
    }

    /// The keys named by `x-kubernetes-list-map-keys`, with the defaults the item schema gives.
    fn declared_map_keys(&self) -> Vec<ListMapKey> {
        self.extension("x-kubernetes-list-map-keys")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(|key| self.map_key(key))
            .collect()
    }

    fn map_key(&self, name: &str) -> ListMapKey {
        let default = || -> Option<Value> {
            let items = self.child(self.resolve().0.get("items")?, Tabled::default());
            let property = items.resolve().0.get("properties")?.get(name)?;
            self.child(property, Tabled::default())
                .extension("default")
                .cloned()
        };
        ListMapKey {
            name: name.to_owned(),
            default: default(),
        }
    }

    fn map_type(&self) -> MapType {
        match self
            .extension("x-kubernetes-map-type")
            .and_then(Value::as_str)
        {
            Some("atomic") => return MapType::Atomic,
            Some("granular") => return MapType::Granular,
            _ => {}
        }
        let atomic_definition = self.resolve().1.is_some_and(table::is_atomic_definition);
        if self.tabled.atomic || atomic_definition {
            MapType::Atomic
        } else {
            MapType::Granular
        }
    }
}

impl ApplySchema for Node<'_> {
    fn field(&self, name: &str) -> Option<FieldSchema<'_>> {
        self.child_field(name)
    }

    fn items(&self) -> Option<Box<dyn ApplySchema + '_>> {
        self.child_items()
    }

    fn list_type(&self) -> ListType {
        Node::list_type(self)
    }

    fn map_type(&self) -> MapType {
        Node::map_type(self)
    }
}

/// The one schema a wrapper stands for: a lone `allOf`, or an `anyOf`/`oneOf` whose other
/// alternatives only allow `null` (schemars' spelling of `Option<T>`).
fn unwrap_single(schema: &Value) -> Option<&Value> {
    if schema.get("$ref").is_some() {
        return None;
    }
    for combinator in ["allOf", "anyOf", "oneOf"] {
        let Some(alternatives) = schema.get(combinator).and_then(Value::as_array) else {
            continue;
        };
        let mut meaningful = alternatives
            .iter()
            .filter(|alternative| alternative.get("type").and_then(Value::as_str) != Some("null"));
        if let (Some(only), None) = (meaningful.next(), meaningful.next()) {
            return Some(only);
        }
    }
    None
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

/// Resolves a local `$ref` (`#/$defs/io.k8s.api.core.v1.PodSpec`) to its target and the name of
/// the definition it points at.
fn resolve_reference<'a>(
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
