//! What server-side apply needs to know about a kind: for each list, whether it is atomic, a set
//! or a map keyed by some fields (`x-kubernetes-list-type`, `x-kubernetes-list-map-keys`); for
//! each map, whether it is atomic (`x-kubernetes-map-type`) and which of its keys are declared
//! fields. The apply logic is generic over [`ApplySchema`]; it never reads Go tags or OpenAPI.

use serde_json::Value;

/// How a list merges and how its items are named in field sets.
#[derive(Debug, Clone, PartialEq)]
pub enum ListType {
    /// Replaced whole and owned as one field (`args`, `tolerations`): the default.
    Atomic,
    /// A set of primitives, items named by value (`finalizers`).
    Set,
    /// A list of objects named by these key fields (`containers` by `name`).
    Map(Vec<ListMapKey>),
}

/// One key field of a map list.
#[derive(Debug, Clone, PartialEq)]
pub struct ListMapKey {
    /// The field's name (`containerPort`).
    pub name: String,
    /// The value an item that omits the field is named with (`protocol` defaults to `"TCP"`),
    /// as upstream takes it from the schema's `default`. Without one, the field is left out of
    /// the item's key.
    pub default: Option<Value>,
}

impl ListMapKey {
    /// A key field without a default.
    pub fn new(name: impl Into<String>) -> Self {
        ListMapKey {
            name: name.into(),
            default: None,
        }
    }

    /// A key field with a default value.
    pub fn with_default(name: impl Into<String>, default: Value) -> Self {
        ListMapKey {
            name: name.into(),
            default: Some(default),
        }
    }
}

/// How a map (a struct or a string-keyed map) merges.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum MapType {
    /// Merged key by key, each key owned on its own: the default.
    #[default]
    Granular,
    /// Replaced whole and owned as one field (`LabelSelector`, `ServiceSpec.selector`).
    Atomic,
}

/// The schema of one field of a map.
pub struct FieldSchema<'a> {
    /// Whether the field is a declared property of a struct (`spec`, `replicas`), rather than a
    /// key of a plain map (a label). Upstream owns plain-map keys as fields of their own even
    /// when their values are maps, and struct fields only through what they contain.
    pub declared: bool,
    /// The schema of the field's value.
    pub schema: Box<dyn ApplySchema + 'a>,
}

/// What server-side apply needs to know about one position in an object. Positions a schema
/// knows nothing about (`None` from [`ApplySchema::field`] or [`ApplySchema::items`]) are
/// treated as [`DeducedSchema`].
pub trait ApplySchema {
    /// The schema of key `name` of the map at this position.
    fn field(&self, name: &str) -> Option<FieldSchema<'_>>;

    /// The schema of the items of the list at this position.
    fn items(&self) -> Option<Box<dyn ApplySchema + '_>>;

    /// How the list at this position (if it is one) merges.
    fn list_type(&self) -> ListType;

    /// How the map at this position (if it is one) merges.
    fn map_type(&self) -> MapType;
}

/// A schema that knows nothing: maps merge key by key with every key owned on its own, lists
/// are atomic. This is upstream's "deduced" type, used for custom resources without a schema;
/// berth uses it for any kind it has no schema for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeducedSchema;

impl ApplySchema for DeducedSchema {
    fn field(&self, _name: &str) -> Option<FieldSchema<'_>> {
        Some(FieldSchema {
            declared: false,
            schema: Box::new(DeducedSchema),
        })
    }

    fn items(&self) -> Option<Box<dyn ApplySchema + '_>> {
        Some(Box::new(DeducedSchema))
    }

    fn list_type(&self) -> ListType {
        ListType::Atomic
    }

    fn map_type(&self) -> MapType {
        MapType::Granular
    }
}

/// A borrowed schema is a schema, so implementations can hand out children by reference.
impl<T: ApplySchema + ?Sized> ApplySchema for &T {
    fn field(&self, name: &str) -> Option<FieldSchema<'_>> {
        (**self).field(name)
    }

    fn items(&self) -> Option<Box<dyn ApplySchema + '_>> {
        (**self).items()
    }

    fn list_type(&self) -> ListType {
        (**self).list_type()
    }

    fn map_type(&self) -> MapType {
        (**self).map_type()
    }
}

/// The schema of field `name` below `schema`, falling back to [`DeducedSchema`].
pub(crate) fn field_of<'a>(schema: &'a dyn ApplySchema, name: &str) -> FieldSchema<'a> {
    schema.field(name).unwrap_or_else(|| FieldSchema {
        declared: false,
        schema: Box::new(DeducedSchema),
    })
}

/// The schema of the items below `schema`, falling back to [`DeducedSchema`].
pub(crate) fn items_of<'a>(schema: &'a dyn ApplySchema) -> Box<dyn ApplySchema + 'a> {
    schema.items().unwrap_or_else(|| Box::new(DeducedSchema))
}
