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
use crate::schema::{Definition, Field, References, Resolution, SchemaNode, Wrappers};

/// How strategic merge patch reads a schema: `$ref`s (also in a lone `allOf`) but not `anyOf`
/// `Option` wrappers; chains longer than 16 are treated as broken rather than followed forever.
const RESOLUTION: Resolution = Resolution {
    wrappers: Wrappers::AllOfReference,
    references: References::Pointer,
    max_depth: 16,
};

/// The patch schema of one built-in kind: a JSON schema document (shared, since one document
/// may hold every kind's definitions) and the definition of the kind within it.
#[derive(Clone)]
pub struct BuiltinSchema {
    definition: Definition,
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
        BuiltinSchema {
            definition: Definition::for_kind::<K>(),
        }
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
        let found = Definition::find(document.into(), definition).ok_or_else(|| {
            BuiltinSchemaError::UnknownDefinition {
                definition: definition.to_owned(),
            }
        })?;
        Ok(BuiltinSchema { definition: found })
    }

    /// The upstream definition name of the kind, e.g. `io.k8s.api.apps.v1.Deployment`.
    pub fn definition(&self) -> &str {
        self.definition.name()
    }

    fn root(&self) -> Node<'_> {
        Node {
            at: self.definition.root(RESOLUTION),
            strategy: PatchStrategy::default(),
        }
    }
}

impl fmt::Debug for BuiltinSchema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.definition.fmt_debug(f, "BuiltinSchema")
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
    at: SchemaNode<'a>,
    strategy: PatchStrategy,
}

impl<'a> Node<'a> {
    fn child_field(&self, name: &str) -> Option<Box<dyn PatchSchema + 'a>> {
        let (at, strategy) = match self.at.field(name)? {
            Field::Property {
                schema,
                declared_in,
            } => {
                let strategy = strategy_from_extensions(schema.schema())
                    .or_else(|| declared_in.and_then(|definition| table::lookup(definition, name)))
                    .unwrap_or_default();
                (schema, strategy)
            }
            Field::MapValue(values) => (values, PatchStrategy::default()),
        };
        Some(Box::new(Node { at, strategy }))
    }

    fn child_items(&self) -> Option<Box<dyn PatchSchema + 'a>> {
        let items = self.at.items()?;
        Some(Box::new(Node {
            at: items,
            strategy: PatchStrategy::default(),
        }))
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
