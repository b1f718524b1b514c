//! CustomResourceDefinition support, pure: the structural schema of a CRD
//! version ([`CustomSchema`]) and what the server does with it (validation,
//! pruning, defaulting), plus the CRD object's own rules and printer columns.

mod defaults;
mod definition;
mod fieldpath;
mod format;
mod path;
mod printer;
mod prune;
mod rules;
mod scale;
mod structural;
mod validate;

use std::sync::Arc;

use regex::Regex;
use serde_json::{Map, Value};

use crate::field::FieldCause;

pub use definition::{default_crd, validate_crd, validate_crd_update};
pub use printer::printer_cells;
pub use scale::validate_scale;

/// The structural schema of one CRD version, checked once when the CRD is
/// stored and then used for every custom object of that version.
///
/// Left to the server or not done yet: the root's `metadata`, embedded
/// resources' metadata beyond names, labels and annotations (owner
/// references, finalizers, coercion of unknown fields), and Go's rendering
/// of structs (`%#v`) in a few CRD messages, which show JSON instead.
#[derive(Debug, Clone)]
pub struct CustomSchema {
    root: Node,
}

impl CustomSchema {
    /// Builds the schema from a version's `schema.openAPIV3Schema`, refusing
    /// non-structural schemas with upstream's messages; `field_prefix` is the
    /// path of `openAPIV3Schema` in the caller's object (e.g.
    /// `spec.versions[0].schema.openAPIV3Schema`).
    pub fn new(schema: &Value, field_prefix: &str) -> Result<CustomSchema, Vec<FieldCause>> {
        let mut errors = Vec::new();
        let root = Node::parse(schema, field_prefix, &mut errors);
        if errors.is_empty() {
            structural::check(&root, field_prefix, &mut errors);
        }
        if errors.is_empty() {
            defaults::check(&root, field_prefix, &mut errors);
        }
        if errors.is_empty() {
            Ok(CustomSchema { root })
        } else {
            Err(errors)
        }
    }

    /// Validates a whole custom object against the schema (the root's
    /// `apiVersion`, `kind` and `metadata` are the server's business).
    pub fn validate(&self, obj: &Value) -> Vec<FieldCause> {
        let mut errors = Vec::new();
        validate::validate_root(&self.root, obj, None, &mut errors);
        rules_unless_blocked(&self.root, obj, None, &mut errors);
        errors
    }

    /// Validates an update: everything [`CustomSchema::validate`] checks, with
    /// transition rules (those using `oldSelf`) evaluated where the old object
    /// has a value to compare with, and upstream's ratcheting: a value equal to
    /// its old counterpart (object keys and map-list items correlate) is not
    /// held to schema checks or non-transition rules again.
    pub fn validate_update(&self, new: &Value, old: &Value) -> Vec<FieldCause> {
        let mut errors = Vec::new();
        validate::validate_root(&self.root, new, Some(old), &mut errors);
        rules_unless_blocked(&self.root, new, Some(old), &mut errors);
        errors
    }

    /// Removes every field the schema does not specify and returns their
    /// paths (`spec.foo`), as upstream's `unknown field "spec.foo"` warnings
    /// name them.
    pub fn prune(&self, obj: &mut Value) -> Vec<String> {
        let mut pruned = Vec::new();
        prune::prune_root(&self.root, obj, &mut pruned);
        pruned
    }

    /// Applies the schema's `default`s to absent (and null, non-nullable)
    /// fields; the server calls it after pruning and before validation.
    pub fn default(&self, obj: &mut Value) {
        prune::default_node(&self.root, obj);
    }
}

/// Runs the CEL rules unless a schema error makes the object unfit for them
/// (a missing, unsupported, too long or mistyped value), as upstream does.
fn rules_unless_blocked(
    root: &Node,
    obj: &Value,
    old: Option<&Value>,
    errors: &mut Vec<FieldCause>,
) {
    const BLOCKING: [&str; 5] = [
        "FieldValueNotSupported",
        "FieldValueRequired",
        "FieldValueTooLong",
        "FieldValueTooMany",
        "FieldValueTypeInvalid",
    ];
    if !root.has_any_rules() {
        return;
    }
    if errors.iter().any(|e| BLOCKING.contains(&e.reason)) {
        errors.push(FieldCause::invalid(
            "",
            &Value::String("null".to_owned()),
            "some validation rules were not checked because the object was invalid; correct the existing errors to complete validation",
        ));
    } else {
        rules::evaluate(root, obj, old, "", errors);
    }
}

/// What `additionalProperties` allows beside `properties`.
#[derive(Debug, Clone)]
enum Additional {
    /// `additionalProperties: true|false`.
    Allowed(bool),
    /// `additionalProperties: {schema}`: every other key's value.
    Schema(Box<Node>),
}

/// One schema node: a parsed `JSONSchemaProps`, keeping what the server acts on.
#[derive(Debug, Clone, Default)]
struct Node {
    ty: String,
    format: String,
    nullable: bool,
    default: Option<Value>,
    properties: Vec<(String, Node)>,
    items: Option<Box<Node>>,
    additional: Option<Additional>,
    preserve_unknown: bool,
    preserve_unknown_false: bool,
    embedded: bool,
    int_or_string: bool,
    list_type: Option<String>,
    list_map_keys: Vec<String>,
    map_type: Option<String>,
    title: bool,
    description: bool,
    has_validations: bool,
    unsupported: Vec<(&'static str, &'static str)>,
    rules: Vec<Arc<rules::Rule>>,
    required: Vec<String>,
    enumeration: Option<Vec<Value>>,
    pattern: Option<(String, Regex)>,
    minimum: Option<f64>,
    maximum: Option<f64>,
    exclusive_minimum: bool,
    exclusive_maximum: bool,
    multiple_of: Option<f64>,
    min_length: Option<u64>,
    max_length: Option<u64>,
    min_items: Option<u64>,
    max_items: Option<u64>,
    unique_items: bool,
    min_properties: Option<u64>,
    max_properties: Option<u64>,
    all_of: Vec<Node>,
    any_of: Vec<Node>,
    one_of: Vec<Node>,
    not: Option<Box<Node>>,
}

impl Node {
    /// Reads one schema node; shape errors (a `type` that is not a string…)
    /// are pushed as causes at `at`.
    fn parse(schema: &Value, at: &str, errors: &mut Vec<FieldCause>) -> Node {
        let mut node = Node::default();
        let Some(map) = schema.as_object() else {
            errors.push(FieldCause::invalid(at, schema, "must be an object"));
            return node;
        };
        for (key, value) in map {
            let here = path::child(at, key);
            node.read(key, value, &here, errors);
        }
        node
    }

    fn read(&mut self, key: &str, value: &Value, here: &str, errors: &mut Vec<FieldCause>) {
        match key {
            "type" => self.ty = string(value, here, errors),
            "format" => self.format = string(value, here, errors),
            "nullable" => self.nullable = flag(value, here, errors),
            "default" => self.default = Some(value.clone()),
            "title" => self.title = !string(value, here, errors).is_empty(),
            "description" => self.description = !string(value, here, errors).is_empty(),
            "properties" => {
                for (name, sub) in object(value, here, errors) {
                    let at = path::key(here, name);
                    self.properties
                        .push((name.clone(), Node::parse(sub, &at, errors)));
                }
            }
            "items" if value.is_array() => self
                .unsupported
                .push(("items", "items must be a schema object and not an array")),
            "items" => self.items = Some(Box::new(Node::parse(value, here, errors))),
            "additionalProperties" => {
                self.additional = Some(match value {
                    Value::Bool(b) => Additional::Allowed(*b),
                    other => Additional::Schema(Box::new(Node::parse(other, here, errors))),
                })
            }
            "x-kubernetes-preserve-unknown-fields" => {
                self.preserve_unknown = flag(value, here, errors);
                self.preserve_unknown_false = value == &Value::Bool(false);
            }
            "x-kubernetes-embedded-resource" => self.embedded = flag(value, here, errors),
            "x-kubernetes-int-or-string" => self.int_or_string = flag(value, here, errors),
            "x-kubernetes-list-type" => self.list_type = Some(string(value, here, errors)),
            "x-kubernetes-map-type" => self.map_type = Some(string(value, here, errors)),
            "x-kubernetes-list-map-keys" => {
                self.list_map_keys = strings(value, here, errors);
            }
            "x-kubernetes-validations" => {
                self.has_validations = value.as_array().is_some_and(|a| !a.is_empty());
                self.rules = rules::parse(value, here, errors);
            }
            "required" => self.required = strings(value, here, errors),
            "enum" => self.enumeration = value.as_array().cloned(),
            "pattern" => {
                let source = string(value, here, errors);
                match Regex::new(&source) {
                    Ok(re) => self.pattern = Some((source, re)),
                    Err(err) => errors.push(FieldCause::invalid(
                        here,
                        value,
                        format!("must be a valid regular expression, but isn't: {err}"),
                    )),
                }
            }
            "minimum" => self.minimum = value.as_f64(),
            "maximum" => self.maximum = value.as_f64(),
            "exclusiveMinimum" => self.exclusive_minimum = flag(value, here, errors),
            "exclusiveMaximum" => self.exclusive_maximum = flag(value, here, errors),
            "multipleOf" => self.multiple_of = value.as_f64(),
            "minLength" => self.min_length = value.as_u64(),
            "maxLength" => self.max_length = value.as_u64(),
            "minItems" => self.min_items = value.as_u64(),
            "maxItems" => self.max_items = value.as_u64(),
            "uniqueItems" => self.unique_items = flag(value, here, errors),
            "minProperties" => self.min_properties = value.as_u64(),
            "maxProperties" => self.max_properties = value.as_u64(),
            "allOf" | "anyOf" | "oneOf" => {
                let list: Vec<Node> = value
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .enumerate()
                            .map(|(i, s)| Node::parse(s, &path::index(here, i), errors))
                            .collect()
                    })
                    .unwrap_or_default();
                match key {
                    "allOf" => self.all_of = list,
                    "anyOf" => self.any_of = list,
                    _ => self.one_of = list,
                }
            }
            "not" => self.not = Some(Box::new(Node::parse(value, here, errors))),
            "id" => self.unsupported.push(("id", "id is not supported")),
            "additionalItems" => self
                .unsupported
                .push(("additionalItems", "additionalItems is not supported")),
            "patternProperties" => self
                .unsupported
                .push(("patternProperties", "patternProperties is not supported")),
            "definitions" => self
                .unsupported
                .push(("definitions", "definitions is not supported")),
            "dependencies" => self
                .unsupported
                .push(("dependencies", "dependencies is not supported")),
            "$ref" => self.unsupported.push(("$ref", "$ref is not supported")),
            _ => {}
        }
    }

    /// Whether this node or any below it has `x-kubernetes-validations`.
    fn has_any_rules(&self) -> bool {
        !self.rules.is_empty()
            || self.properties.iter().any(|(_, p)| p.has_any_rules())
            || self.items.as_ref().is_some_and(|i| i.has_any_rules())
            || self.all_of.iter().any(Node::has_any_rules)
            || matches!(&self.additional, Some(Additional::Schema(s)) if s.has_any_rules())
    }

    /// The schema of property `name`, if specified.
    fn property(&self, name: &str) -> Option<&Node> {
        self.properties
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, n)| n)
    }
}

fn string(value: &Value, at: &str, errors: &mut Vec<FieldCause>) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => {
            errors.push(type_error(at, other, "string"));
            String::new()
        }
    }
}

fn flag(value: &Value, at: &str, errors: &mut Vec<FieldCause>) -> bool {
    match value {
        Value::Bool(b) => *b,
        other => {
            errors.push(type_error(at, other, "boolean"));
            false
        }
    }
}

fn strings(value: &Value, at: &str, errors: &mut Vec<FieldCause>) -> Vec<String> {
    match value {
        Value::Array(items) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        other => {
            errors.push(type_error(at, other, "array"));
            Vec::new()
        }
    }
}

fn object<'a>(
    value: &'a Value,
    at: &str,
    errors: &mut Vec<FieldCause>,
) -> impl Iterator<Item = (&'a String, &'a Value)> {
    static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
    let map = match value {
        Value::Object(map) => map,
        other => {
            errors.push(type_error(at, other, "object"));
            EMPTY.get_or_init(Map::new)
        }
    };
    map.iter()
}

/// `FieldValueTypeInvalid` for a schema field of the wrong JSON type.
fn type_error(at: &str, value: &Value, want: &str) -> FieldCause {
    FieldCause {
        reason: "FieldValueTypeInvalid",
        field: at.to_owned(),
        message: format!(
            "Invalid value: \"{}\": must be of type {want}",
            path::type_name(value)
        ),
    }
}

#[cfg(test)]
mod tests;
