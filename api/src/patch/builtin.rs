//! [`PatchSchema`] for built-in kinds: walks the JSON schema k8s-openapi generates for a kind
//! (following `$ref`s lazily) and takes each field's patch strategy from the schema's
//! `x-kubernetes-patch-*` extensions when present, else from the hand-written table in
//! `table.rs`. It never patches anything itself.

mod table;
#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use serde_json::Value;

use super::schema::{MergeStrategy, PatchSchema, PatchStrategy};

/// Where definitions live in the documents we accept: schemars 1 (`$defs`), JSON Schema draft 7
/// and Swagger 2 (`definitions`), OpenAPI 3 (`components/schemas`).
const DEFINITION_CONTAINERS: [&str; 3] = ["/$defs", "/definitions", "/components/schemas"];

/// `$ref` chains longer than this are treated as broken rather than followed forever.
const MAX_REF_DEPTH: usize = 16;

/// The patch schema of one built-in kind: a JSON schema document (shared, since one document
/// may hold every kind's definitions) and the definition of the kind within it.
#[derive(Clone)]
pub struct BuiltinSchema {
    document: Arc<Value>,
    /// JSON pointer to the kind's schema in `document` (`""`: the document itself).
    root_pointer: String,
    definition: String,
}

/// Why a [`BuiltinSchema`] could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuiltinSchemaError {
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

impl BuiltinSchema {
    /// Generates the schema of `K` with schemars and wraps it. Generating costs a few
    /// milliseconds and the document is large: build it once per kind and keep it.
    pub fn for_kind<K: schemars::JsonSchema>() -> Self {
        let definition = K::schema_name();
        let document = schemars::SchemaGenerator::default().into_root_schema_for::<K>();
        Self::for_definition(document.to_value(), &definition)
            .expect("schemars titles a root schema with its definition name")
    }

    /// Wraps a schemars schema, such as `SchemaGenerator::root_schema_for::<Deployment>()`, in
    /// which `definition` (e.g. `io.k8s.api.apps.v1.Deployment`) is the root or one of the
    /// `$defs`.
    pub fn from_schema(
        schema: schemars::Schema,
        definition: &str,
    ) -> Result<Self, BuiltinSchemaError> {
        Self::for_definition(schema.to_value(), definition)
    }

    /// Wraps a JSON schema document (schemars output, or an OpenAPI document whose
    /// `components.schemas` are keyed by upstream definition names) and picks the definition
    /// of the kind to patch. Pass an `Arc` to share one document between many kinds.
    pub fn for_definition(
        document: impl Into<Arc<Value>>,
        definition: &str,
    ) -> Result<Self, BuiltinSchemaError> {
        let document = document.into();
        let root_pointer = find_definition(&document, definition).ok_or_else(|| {
            BuiltinSchemaError::UnknownDefinition {
                definition: definition.to_owned(),
            }
        })?;
        Ok(BuiltinSchema {
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
            strategy: PatchStrategy::default(),
        }
    }
}

impl fmt::Debug for BuiltinSchema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The document is hundreds of kilobytes; name the kind instead.
        f.debug_struct("BuiltinSchema")
            .field("definition", &self.definition)
            .field("root_pointer", &self.root_pointer)
            .finish_non_exhaustive()
    }
}

impl PatchSchema for BuiltinSchema {
    fn field(&self, name: &str) -> Option<Box<dyn PatchSchema + '_>> {
        self.root().child_field(name)
    }

    fn items(&self) -> Option<Box<dyn PatchSchema + '_>> {
        self.root().child_items()
    }

    fn strategy(&self) -> PatchStrategy {
        PatchStrategy::default()
    }
}

/// One position in a [`BuiltinSchema`]: the (unresolved) schema there and its strategy.
struct Node<'a> {
    document: &'a Value,
    schema: &'a Value,
    /// The definition `schema` is, when it is a definition's body rather than a `$ref`.
    definition: Option<&'a str>,
    strategy: PatchStrategy,
}

impl<'a> Node<'a> {
    /// Follows `$ref`s to the schema that describes the value, with the definition name it has.
    fn resolve(&self) -> (&'a Value, Option<&'a str>) {
        let mut schema = self.schema;
        let mut definition = self.definition;
        for _ in 0..MAX_REF_DEPTH {
            let Some(reference) = reference_of(schema) else {
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

    fn child_field(&self, name: &str) -> Option<Box<dyn PatchSchema + 'a>> {
        let (schema, definition) = self.resolve();
        if let Some(property) = schema
            .get("properties")
            .and_then(|properties| properties.get(name))
        {
            let strategy = strategy_from_extensions(property)
                .or_else(|| definition.and_then(|definition| table::lookup(definition, name)))
                .unwrap_or_default();
            return Some(Box::new(Node {
                document: self.document,
                schema: property,
                definition: None,
                strategy,
            }));
        }
        match schema.get("additionalProperties") {
            Some(values @ Value::Object(_)) => Some(Box::new(Node {
                document: self.document,
                schema: values,
                definition: None,
                strategy: PatchStrategy::default(),
            })),
            _ => None,
        }
    }

    fn child_items(&self) -> Option<Box<dyn PatchSchema + 'a>> {
        let (schema, _) = self.resolve();
        match schema.get("items") {
            Some(items @ Value::Object(_)) => Some(Box::new(Node {
                document: self.document,
                schema: items,
                definition: None,
                strategy: PatchStrategy::default(),
            })),
            _ => None,
        }
    }
}

impl PatchSchema for Node<'_> {
    fn field(&self, name: &str) -> Option<Box<dyn PatchSchema + '_>> {
        self.child_field(name)
    }

    fn items(&self) -> Option<Box<dyn PatchSchema + '_>> {
        self.child_items()
    }

    fn strategy(&self) -> PatchStrategy {
        self.strategy.clone()
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

/// A strategy given in the schema itself, as upstream's OpenAPI documents carry it.
fn strategy_from_extensions(property: &Value) -> Option<PatchStrategy> {
    let declared = property.get("x-kubernetes-patch-strategy")?.as_str()?;
    let key = property
        .get("x-kubernetes-patch-merge-key")
        .and_then(Value::as_str);
    let mut strategy = PatchStrategy::default();
    for part in declared.split(',').map(str::trim) {
        match part {
            "merge" => {
                strategy.merge = MergeStrategy::Merge {
                    key: key.map(|key| Cow::Owned(key.to_owned())),
                }
            }
            "replace" => strategy.merge = MergeStrategy::Replace,
            "retainKeys" => strategy.retain_keys = true,
            _ => {}
        }
    }
    Some(strategy)
}
