//! The shape of the generated field table: what the codec knows about each protobuf message.
//! Data only; the walking lives in `decode.rs` and `encode.rs`, the table in `generated.rs`.

/// One protobuf message of the Kubernetes API.
#[derive(Debug)]
pub(crate) struct Message {
    /// Full protobuf name, e.g. `k8s.io.api.core.v1.Pod`.
    pub(crate) name: &'static str,
    /// How the message maps onto JSON.
    pub(crate) shape: Shape,
}

/// How a message's wire form relates to its JSON form.
#[derive(Debug)]
pub(crate) enum Shape {
    /// A JSON object of the message's fields, which are sorted by number.
    Fields {
        /// The fields, in ascending field number (the order Go writes them).
        fields: &'static [Field],
        /// Indices into `fields` in Go declaration order: the order `encoding/json` writes.
        json_order: &'static [u8],
    },
    /// `meta.v1.Time`: `{seconds, nanos}` ↔ RFC 3339 with second precision.
    Time,
    /// `meta.v1.MicroTime`: `{seconds, nanos}` ↔ RFC 3339 with six fractional digits.
    MicroTime,
    /// `intstr.IntOrString`: `{type, intVal, strVal}` ↔ a JSON number or string.
    IntOrString,
    /// `resource.Quantity`: `{string}` ↔ a JSON string.
    Quantity,
    /// `runtime.RawExtension`, `meta.v1.FieldsV1`: `{raw}` holding JSON ↔ that JSON value.
    RawJson,
    /// `ExtraValue` (authentication, authorization, certificates): a Go `[]string`, on the wire
    /// `{repeated string items = 1}` ↔ a JSON array of strings.
    StringArray,
    /// One of apiextensions' `JSONSchemaPropsOr…` messages, whose JSON is either a schema or
    /// another JSON type (see `special/unions.rs`).
    SchemaUnion {
        /// Which union, that is, what may stand in for the schema.
        union: SchemaOr,
        /// The schema message (`JSONSchemaProps`) the union carries.
        schema: &'static Message,
    },
}

/// The apiextensions schema unions: each is a `JSONSchemaProps` or one other JSON type, and
/// their Go types marshal to whichever is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SchemaOr {
    /// `JSONSchemaPropsOrArray`: a schema or an array of schemas (`items`).
    Array,
    /// `JSONSchemaPropsOrBool`: a schema or a boolean (`additionalProperties`).
    Bool,
    /// `JSONSchemaPropsOrStringArray`: a schema or an array of property names (`dependencies`).
    StringArray,
}

/// One field of a [`Shape::Fields`] message.
#[derive(Debug)]
pub(crate) struct Field {
    /// The protobuf field number.
    pub(crate) number: u32,
    /// The JSON member name; empty for [`Label::Inline`].
    pub(crate) json_name: &'static str,
    /// The value type (for maps: the value type; keys are always strings).
    pub(crate) ty: Type,
    /// Presence and cardinality, as the Go type decides them.
    pub(crate) label: Label,
}

/// A field's value type.
#[derive(Clone, Copy)]
pub(crate) enum Type {
    String,
    Bytes,
    Bool,
    Int32,
    Int64,
    #[allow(
        dead_code,
        reason = "no served kind has a double yet; autoscaling/v2 and resource.k8s.io do"
    )]
    Double,
    Message(&'static Message),
}

/// Names a referenced message instead of printing it: messages refer to each other in cycles
/// (`JSONSchemaProps.properties` holds `JSONSchemaProps`), which a derived `Debug` would follow
/// forever.
impl std::fmt::Debug for Type {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Type::String => formatter.write_str("String"),
            Type::Bytes => formatter.write_str("Bytes"),
            Type::Bool => formatter.write_str("Bool"),
            Type::Int32 => formatter.write_str("Int32"),
            Type::Int64 => formatter.write_str("Int64"),
            Type::Double => formatter.write_str("Double"),
            Type::Message(message) => write!(formatter, "Message({})", message.name),
        }
    }
}

/// Presence and cardinality. Kubernetes' protos are proto2 with every field `optional`, but the
/// Go types behind them decide what goes on the wire: a pointer is written only when set, a
/// value is always written, even when empty. We follow Go so that our bytes are Go's bytes and
/// our JSON is Go's JSON.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Label {
    /// A Go pointer (or `[]byte`): on the wire and in JSON exactly when set, zero included.
    Optional,
    /// A Go value: always on the wire (zero when the JSON lacks it); in JSON unless `Omit` says.
    Value(Omit),
    /// A Go struct embedded with `json:",inline"`: its own message on the wire, its fields
    /// merged into the parent's JSON object.
    Inline,
    /// A Go slice: one wire record per element.
    Repeated {
        /// `omitempty`: an empty list is left out of JSON (otherwise it is `[]`).
        omitempty: bool,
    },
    /// A Go map with string keys: one entry message (key = 1, value = 2) per key, sorted.
    Map {
        /// `omitempty`: an empty map is left out of JSON (otherwise it is `{}`).
        omitempty: bool,
    },
}

/// When a [`Label::Value`] field is left out of JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Omit {
    /// Always written (no `omitempty`, or a struct, which `omitempty` never hides).
    Never,
    /// `omitempty` on a scalar: left out when "", 0 or false.
    Empty,
    /// `omitzero`: left out when the value is its zero (`null` for a zero `Time`).
    Zero,
}

/// The message called `name`, if the table has it.
pub(crate) fn message(name: &str) -> Option<&'static Message> {
    let messages = super::generated::MESSAGES;
    messages
        .binary_search_by(|message| message.name.cmp(name))
        .ok()
        .map(|index| messages[index])
}

/// The message that carries objects of this `apiVersion` and `kind`, if the table has one.
pub(crate) fn message_for_kind(api_version: &str, kind: &str) -> Option<&'static Message> {
    let kinds = super::generated::KINDS;
    if let Ok(index) =
        kinds.binary_search_by(|(version, name, _)| (*version, *name).cmp(&(api_version, kind)))
    {
        return Some(kinds[index].2);
    }
    // meta/v1 kinds are registered in every group version (as upstream's
    // `AddToGroupVersion` does), so `apps/v1 DeleteOptions` is the same message.
    let meta = match kind {
        "Status" => "k8s.io.apimachinery.pkg.apis.meta.v1.Status",
        "DeleteOptions" => "k8s.io.apimachinery.pkg.apis.meta.v1.DeleteOptions",
        "WatchEvent" => "k8s.io.apimachinery.pkg.apis.meta.v1.WatchEvent",
        "PartialObjectMetadata" => "k8s.io.apimachinery.pkg.apis.meta.v1.PartialObjectMetadata",
        "PartialObjectMetadataList" => {
            "k8s.io.apimachinery.pkg.apis.meta.v1.PartialObjectMetadataList"
        }
        _ => return None,
    };
    message(meta)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_sorted_for_binary_search() {
        let messages = super::super::generated::MESSAGES;
        assert!(messages.windows(2).all(|pair| pair[0].name < pair[1].name));
        let kinds = super::super::generated::KINDS;
        assert!(kinds
            .windows(2)
            .all(|pair| (pair[0].0, pair[0].1) < (pair[1].0, pair[1].1)));
    }

    #[test]
    fn fields_are_sorted_by_number_and_json_order_is_a_permutation() {
        for message in super::super::generated::MESSAGES {
            if let Shape::Fields { fields, json_order } = message.shape {
                assert!(
                    fields
                        .windows(2)
                        .all(|pair| pair[0].number < pair[1].number),
                    "{}",
                    message.name
                );
                let mut order: Vec<usize> =
                    json_order.iter().map(|&index| usize::from(index)).collect();
                order.sort_unstable();
                assert_eq!(
                    order,
                    (0..fields.len()).collect::<Vec<_>>(),
                    "{}",
                    message.name
                );
            }
        }
    }

    #[test]
    fn kinds_resolve_including_meta_kinds_under_any_group_version() {
        let cases = [
            ("v1", "Pod", Some("k8s.io.api.core.v1.Pod")),
            (
                "apps/v1",
                "DeploymentList",
                Some("k8s.io.api.apps.v1.DeploymentList"),
            ),
            (
                "coordination.k8s.io/v1",
                "Lease",
                Some("k8s.io.api.coordination.v1.Lease"),
            ),
            (
                "apps/v1",
                "DeleteOptions",
                Some("k8s.io.apimachinery.pkg.apis.meta.v1.DeleteOptions"),
            ),
            (
                "meta.k8s.io/v1",
                "WatchEvent",
                Some("k8s.io.apimachinery.pkg.apis.meta.v1.WatchEvent"),
            ),
            (
                "v1",
                "Status",
                Some("k8s.io.apimachinery.pkg.apis.meta.v1.Status"),
            ),
            ("berth.dev/v1", "NodePool", None),
            ("apps/v1", "Pod", None),
        ];
        for (api_version, kind, expected) in cases {
            assert_eq!(
                message_for_kind(api_version, kind).map(|message| message.name),
                expected,
                "{api_version} {kind}"
            );
        }
    }
}
