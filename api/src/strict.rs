//! Strict field validation: finds fields an object carries that its kind's
//! schema does not define, as kube-apiserver reports them for
//! `fieldValidation=Strict` (`unknown field "spec.foo"`). The same walk does
//! the other thing upstream's decoder does to a body: base64 `[]byte` fields
//! written with line breaks are read as if unbroken (Go's decoder skips them).

use serde_json::Value;

use crate::schema::{
    additional_properties, items, properties, AdditionalProperties, References, Resolution,
    SchemaDocument, Wrappers,
};

/// How strict validation reads a schema: `$ref`s by their last segment, and the first
/// alternative of an `anyOf`/`oneOf` that is not `null` (`Option` fields, and the
/// `JSONSchemaProps` side of a `JSONSchemaPropsOrBool`).
const RESOLUTION: Resolution = Resolution {
    wrappers: Wrappers::FirstAlternative,
    references: References::LastSegment,
    max_depth: 64,
};

fn join(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_owned()
    } else {
        format!("{path}.{field}")
    }
}

fn walk(
    document: SchemaDocument<'_>,
    schema: &Value,
    value: &mut Value,
    path: &str,
    unknown: &mut Vec<String>,
) {
    let schema = document.resolve(schema);
    if schema.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true)) {
        return;
    }
    match value {
        Value::Object(fields) => {
            let properties = properties(schema);
            let additional = additional_properties(schema);
            let mut drop = Vec::new();
            for (name, field_value) in fields.iter_mut() {
                match (properties.and_then(|p| p.get(name)), additional) {
                    (Some(field_schema), _) => walk(
                        document,
                        field_schema,
                        field_value,
                        &join(path, name),
                        unknown,
                    ),
                    (None, AdditionalProperties::Anything) => {}
                    (None, AdditionalProperties::Values(additional)) => walk(
                        document,
                        additional,
                        field_value,
                        &join(path, name),
                        unknown,
                    ),
                    (None, AdditionalProperties::Nothing) if properties.is_some() => {
                        unknown.push(join(path, name));
                        drop.push(name.clone());
                    }
                    (None, AdditionalProperties::Nothing) => {}
                }
            }
            for name in drop {
                fields.shift_remove(&name);
            }
        }
        Value::Array(values) => {
            if let Some(item_schema) = items(schema) {
                for (i, item) in values.iter_mut().enumerate() {
                    walk(
                        document,
                        item_schema,
                        item,
                        &format!("{path}[{i}]"),
                        unknown,
                    );
                }
            }
        }
        Value::String(text) if is_byte_field(schema) && text.contains(['\n', '\r']) => {
            text.retain(|c| c != '\n' && c != '\r');
        }
        _ => {}
    }
}

/// Whether a schema describes a base64-encoded `[]byte` (`format: byte`).
fn is_byte_field(schema: &Value) -> bool {
    schema.get("format").and_then(Value::as_str) == Some("byte")
}

/// Paths of fields in `value` that the root schema of `document` does not define.
pub fn unknown_fields(document: &Value, value: &Value) -> Vec<String> {
    prune_unknown_fields(document, &mut value.clone())
}

/// Removes the fields the schema does not define (as typed decoding drops them
/// upstream) and returns their paths, for warnings or a strict-mode error.
pub fn prune_unknown_fields(document: &Value, value: &mut Value) -> Vec<String> {
    let mut unknown = Vec::new();
    walk(
        SchemaDocument::new(document, RESOLUTION),
        document,
        value,
        "",
        &mut unknown,
    );
    unknown
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment_schema() -> Value {
        schemars::SchemaGenerator::default()
            .into_root_schema_for::<k8s_openapi::api::apps::v1::Deployment>()
            .to_value()
    }

    #[test]
    fn reports_unknown_fields_with_their_paths() {
        let doc = deployment_schema();
        let obj = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "labels": {"any": "thing"}, "bogus": 1},
            "spec": {"replicas": 1, "replica": 2, "selector": {"matchLabels": {"a": "b"}},
                     "template": {"spec": {"containers": [{"name": "a", "image": "b", "imag": "c"}]}}}
        });
        assert_eq!(
            unknown_fields(&doc, &obj),
            [
                "metadata.bogus",
                "spec.replica",
                "spec.template.spec.containers[0].imag"
            ]
        );
    }

    #[test]
    fn line_wrapped_base64_reads_as_unbroken() {
        let doc = schemars::SchemaGenerator::default()
            .into_root_schema_for::<k8s_openapi::api::core::v1::Secret>()
            .to_value();
        let mut secret = json!({"data": {"key": "c2Vj\ncmV0\r\n"}, "stringData": {"k": "a\nb"}});
        assert!(prune_unknown_fields(&doc, &mut secret).is_empty());
        assert_eq!(secret["data"]["key"], "c2VjcmV0");
        assert_eq!(secret["stringData"]["k"], "a\nb");
    }

    #[test]
    fn pruning_removes_only_unknown_fields() {
        let doc = deployment_schema();
        let mut obj = json!({"spec": {"replicas": 1, "replica": 2}});
        assert_eq!(prune_unknown_fields(&doc, &mut obj), ["spec.replica"]);
        assert_eq!(obj, json!({"spec": {"replicas": 1}}));
    }

    #[test]
    fn known_objects_and_free_form_maps_pass() {
        let doc = deployment_schema();
        let obj = json!({"metadata": {"annotations": {"x/y": "z"}}, "spec": {"template": {"spec": {"nodeSelector": {"k": "v"},
            "containers": [{"name": "a", "resources": {"limits": {"cpu": "1"}}, "ports": [{"containerPort": 80}]}]}}}});
        assert!(unknown_fields(&doc, &obj).is_empty());
    }
}
