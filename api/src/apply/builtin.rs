//! [`ApplySchema`] for built-in kinds (and our own kinds that derive `JsonSchema`): walks the
//! JSON schema schemars generates for a kind, following `$ref`s lazily, and takes list and map
//! types from the schema's `x-kubernetes-*` extensions when present, else from the table in
//! `table.rs` (the k8s-openapi schemas carry no such extensions), else from a
//! `x-kubernetes-patch-strategy` as upstream's schema converter does. It applies nothing itself.

mod table;
#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::Arc;

use serde_json::Value;

use super::schema::{ApplySchema, FieldSchema, ListMapKey, ListType, MapType};
use crate::schema::{Definition, Field, References, Resolution, SchemaNode, Wrappers};

/// How server-side apply reads a schema: `$ref`s, and `allOf`/`anyOf`/`oneOf` wrappers that only
/// add `null` (our own kinds' `Option` fields); chains longer than 16 are treated as broken rather
/// than followed forever.
const RESOLUTION: Resolution = Resolution {
    wrappers: Wrappers::OnlyAlternative,
    references: References::Pointer,
    max_depth: 16,
};

/// The server-side apply schema of one kind: a JSON schema document (shared, since one document
/// may hold every kind's definitions) and the kind's definition within it.
#[derive(Clone)]
pub struct BuiltinApplySchema {
    definition: Definition,
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
        BuiltinApplySchema {
            definition: Definition::for_kind::<K>(),
        }
    }

    /// Wraps a JSON schema document (schemars output, or an OpenAPI document keyed by upstream
    /// definition names) and picks the definition of the kind. Pass an `Arc` to share one
    /// document between many kinds.
    pub fn for_definition(
        document: impl Into<Arc<Value>>,
        definition: &str,
    ) -> Result<Self, BuiltinApplySchemaError> {
        let found = Definition::find(document.into(), definition).ok_or_else(|| {
            BuiltinApplySchemaError::UnknownDefinition {
                definition: definition.to_owned(),
            }
        })?;
        Ok(BuiltinApplySchema { definition: found })
    }

    /// The upstream definition name of the kind, e.g. `io.k8s.api.apps.v1.Deployment`.
    pub fn definition(&self) -> &str {
        self.definition.name()
    }

    fn root(&self) -> Node<'_> {
        Node {
            at: self.definition.root(RESOLUTION),
            tabled: Tabled::default(),
        }
    }
}

impl fmt::Debug for BuiltinApplySchema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.definition.fmt_debug(f, "BuiltinApplySchema")
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
    at: SchemaNode<'a>,
    tabled: Tabled,
}

impl<'a> Node<'a> {
    /// An extension on the schema here or on what it resolves to.
    fn extension(&self, name: &str) -> Option<&'a Value> {
        self.at
            .schema()
            .get(name)
            .or_else(|| self.at.resolve().schema().get(name))
    }

    fn child_field(&self, name: &str) -> Option<FieldSchema<'a>> {
        match self.at.field(name)? {
            Field::Property {
                schema,
                declared_in,
            } => {
                let tabled = declared_in
                    .map(|definition| Tabled {
                        list_type: table::list_type(definition, name),
                        atomic: table::is_atomic_property(definition, name),
                    })
                    .unwrap_or_default();
                Some(FieldSchema {
                    declared: true,
                    schema: Box::new(Node { at: schema, tabled }),
                })
            }
            Field::MapValue(values) => Some(FieldSchema {
                declared: false,
                schema: Box::new(Node::untabled(values)),
            }),
        }
    }

    fn child_items(&self) -> Option<Box<dyn ApplySchema + 'a>> {
        let items = self.at.items()?;
        Some(Box::new(Node::untabled(items)))
    }

    fn untabled(at: SchemaNode<'a>) -> Node<'a> {
        Node {
            at,
            tabled: Tabled::default(),
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
            let property = self.at.items()?.property(name)?;
            Node::untabled(property).extension("default").cloned()
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
        let atomic_definition = self
            .at
            .resolve()
            .definition()
            .is_some_and(table::is_atomic_definition);
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
