//! OpenAPI v3 documents per group version, built from the kinds' JSON schemas
//! (k8s-openapi's schemars output), with the vendor extensions kubectl reads:
//! `x-kubernetes-group-version-kind` on kind schemas (for `kubectl explain`) and
//! on operations, whose PATCH lists `fieldValidation` (so `kubectl apply` leaves
//! validation to the server).

mod protobuf_v2;

use serde_json::{json, Map, Value};

pub use protobuf_v2::encode as swagger_v2_protobuf;

/// What the document needs to know about one served resource.
#[derive(Debug, Clone)]
pub struct ResourceSpec<'a> {
    /// API group, empty for core.
    pub group: &'a str,
    /// Version.
    pub version: &'a str,
    /// Kind.
    pub kind: &'a str,
    /// Plural resource name.
    pub plural: &'a str,
    /// Whether the resource is namespaced.
    pub namespaced: bool,
    /// Whether `/status` is served.
    pub has_status: bool,
    /// Whether `/scale` is served.
    pub has_scale: bool,
    /// The kind's definition name, e.g. `io.k8s.api.apps.v1.Deployment`.
    pub definition: String,
    /// The kind's schemars root schema (with `$defs`).
    pub schema: Value,
}

fn rewrite_refs(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get_mut("$ref") {
                if let Some(name) = r.strip_prefix("#/$defs/") {
                    *r = format!("#/components/schemas/{name}");
                }
            }
            for v in map.values_mut() {
                rewrite_refs(v);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(rewrite_refs),
        _ => {}
    }
}

fn gvk(spec: &ResourceSpec<'_>) -> Value {
    json!({"group": spec.group, "version": spec.version, "kind": spec.kind})
}

fn query_param(name: &str, description: &str, ty: &str) -> Value {
    json!({"name": name, "in": "query", "description": description, "schema": {"type": ty, "uniqueItems": true}})
}

fn path_param(name: &str) -> Value {
    json!({"name": name, "in": "path", "required": true, "description": format!("{name} of the object"), "schema": {"type": "string", "uniqueItems": true}})
}

fn ref_to(definition: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{definition}")})
}

fn operation(
    spec: &ResourceSpec<'_>,
    verb: &str,
    action: &str,
    body: bool,
    params: Vec<Value>,
) -> Value {
    let schema = ref_to(&spec.definition);
    let mut op = json!({
        "description": format!("{verb} {}", spec.kind),
        "operationId": format!("{verb}{}", spec.kind),
        "tags": [format!("{}_{}", if spec.group.is_empty() { "core" } else { spec.group }, spec.version)],
        "parameters": params,
        "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": schema.clone()}}}},
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": gvk(spec),
    });
    if body {
        op["requestBody"] = json!({"required": true, "content": {"*/*": {"schema": schema}}});
    }
    op
}

fn write_params() -> Vec<Value> {
    vec![
        query_param(
            "dryRun",
            "When present, indicates that modifications should not be persisted.",
            "string",
        ),
        query_param(
            "fieldManager",
            "Name associated with the actor or entity that is making these changes.",
            "string",
        ),
        query_param(
            "fieldValidation",
            "Ignore, Warn or Strict: how to treat unknown or duplicate fields.",
            "string",
        ),
    ]
}

fn resource_paths(spec: &ResourceSpec<'_>, paths: &mut Map<String, Value>) {
    let root = if spec.group.is_empty() {
        format!("/api/{}", spec.version)
    } else {
        format!("/apis/{}/{}", spec.group, spec.version)
    };
    let (collection, mut scope_params) = if spec.namespaced {
        (
            format!("{root}/namespaces/{{namespace}}/{}", spec.plural),
            vec![path_param("namespace")],
        )
    } else {
        (format!("{root}/{}", spec.plural), vec![])
    };
    let mut list_params = scope_params.clone();
    list_params.extend([
        query_param(
            "labelSelector",
            "A selector to restrict the list of returned objects by their labels.",
            "string",
        ),
        query_param(
            "fieldSelector",
            "A selector to restrict the list of returned objects by their fields.",
            "string",
        ),
        query_param(
            "limit",
            "Maximum number of responses to return for a list call.",
            "integer",
        ),
        query_param(
            "continue",
            "Continue token from a previous list call.",
            "string",
        ),
        query_param(
            "watch",
            "Watch for changes to the described resources.",
            "boolean",
        ),
    ]);
    let mut create_params = scope_params.clone();
    create_params.extend(write_params());
    paths.insert(
        collection.clone(),
        json!({
            "get": operation(spec, "list", "list", false, list_params),
            "post": operation(spec, "create", "post", true, create_params),
            "delete": operation(spec, "deletecollection", "deletecollection", false, scope_params.clone()),
        }),
    );
    scope_params.push(path_param("name"));
    let mut item_write = scope_params.clone();
    item_write.extend(write_params());
    let mut patch_params = item_write.clone();
    patch_params.push(query_param(
        "force",
        "Force is going to \"force\" Apply requests.",
        "boolean",
    ));
    let item = |verb_suffix: &str| -> Value {
        json!({
            "get": operation(spec, &format!("read{verb_suffix}"), "get", false, scope_params.clone()),
            "put": operation(spec, &format!("replace{verb_suffix}"), "put", true, item_write.clone()),
            "patch": operation(spec, &format!("patch{verb_suffix}"), "patch", true, patch_params.clone()),
        })
    };
    let mut object = item("");
    object["delete"] = operation(spec, "delete", "delete", false, scope_params.clone());
    paths.insert(format!("{collection}/{{name}}"), object);
    if spec.has_status {
        paths.insert(format!("{collection}/{{name}}/status"), item("Status"));
    }
}

/// One group version's OpenAPI v3 document.
pub fn group_version_document(group: &str, version: &str, resources: &[ResourceSpec<'_>]) -> Value {
    let mut schemas = Map::new();
    let mut paths = Map::new();
    for spec in resources
        .iter()
        .filter(|r| r.group == group && r.version == version)
    {
        let mut root = spec.schema.clone();
        rewrite_refs(&mut root);
        if let Some(map) = root.as_object_mut() {
            if let Some(Value::Object(defs)) = map.remove("$defs") {
                for (name, def) in defs {
                    schemas.entry(name).or_insert(def);
                }
            }
            map.remove("$schema");
            map.remove("title");
            map.insert("x-kubernetes-group-version-kind".into(), json!([gvk(spec)]));
        }
        schemas.insert(spec.definition.clone(), root);
        resource_paths(spec, &mut paths);
    }
    json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.33.0"},
        "paths": paths,
        "components": {"schemas": schemas},
    })
}

fn v2_refs(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get_mut("$ref") {
                if let Some(name) = r.strip_prefix("#/components/schemas/") {
                    *r = format!("#/definitions/{name}");
                }
            }
            map.values_mut().for_each(v2_refs);
        }
        Value::Array(items) => items.iter_mut().for_each(v2_refs),
        _ => {}
    }
}

/// Swagger 2.0 operation from an OpenAPI 3 one: parameters carry their type
/// inline, bodies become `in: body` parameters, responses name their schema.
fn v2_operation(op: &Value) -> Value {
    let mut op = op.clone();
    let mut params: Vec<Value> = op["parameters"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|mut p| {
            if let Some(schema) = p.as_object_mut().and_then(|m| m.remove("schema")) {
                p["type"] = schema.get("type").cloned().unwrap_or(json!("string"));
                p["uniqueItems"] = json!(true);
            }
            p
        })
        .collect();
    if let Some(map) = op.as_object_mut() {
        if let Some(body) = map.remove("requestBody") {
            let schema = body
                .pointer("/content/*~1*/schema")
                .cloned()
                .unwrap_or(json!({}));
            params.push(json!({"name": "body", "in": "body", "required": true, "schema": schema}));
        }
        let schema = map
            .get("responses")
            .and_then(|r| r.pointer("/200/content/application~1json/schema"))
            .cloned();
        map.insert(
            "responses".into(),
            json!({"200": {"description": "OK", "schema": schema.unwrap_or(json!({}))}}),
        );
        map.insert("parameters".into(), Value::Array(params));
        map.insert("consumes".into(), json!(["*/*"]));
        map.insert(
            "produces".into(),
            json!(["application/json", "application/yaml"]),
        );
        map.insert("schemes".into(), json!(["https"]));
    }
    op
}

/// One Swagger 2.0 document (`/openapi/v2`) merging every group version's v3 document.
pub fn swagger_v2(v3_documents: &[Value]) -> Value {
    let mut definitions = Map::new();
    let mut paths = Map::new();
    for doc in v3_documents {
        if let Some(schemas) = doc
            .pointer("/components/schemas")
            .and_then(Value::as_object)
        {
            for (name, schema) in schemas {
                definitions
                    .entry(name.clone())
                    .or_insert_with(|| schema.clone());
            }
        }
        if let Some(doc_paths) = doc.get("paths").and_then(Value::as_object) {
            for (path, item) in doc_paths {
                let ops: Map<String, Value> = item
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(verb, op)| (verb.clone(), v2_operation(op)))
                    .collect();
                paths.insert(path.clone(), Value::Object(ops));
            }
        }
    }
    let mut document = json!({
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": "v1.33.0"},
        "paths": paths,
        "definitions": definitions,
    });
    v2_refs(&mut document);
    document
}

/// The `/openapi/v3` index: one entry per group version, with a content hash
/// in the URL so clients cache documents safely.
pub fn index(documents: &[(String, String)]) -> Value {
    let paths: Map<String, Value> = documents
        .iter()
        .map(|(path, hash)| {
            (
                path.clone(),
                json!({"serverRelativeURL": format!("/openapi/v3/{path}?hash={hash}")}),
            )
        })
        .collect();
    json!({"paths": paths})
}

/// A stable content hash (FNV-1a, hex) for cache-busting document URLs.
pub fn content_hash(bytes: &[u8]) -> String {
    let mut hash: u64 = 0xcbf29ce484222325;
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x100000001b3);
    }
    format!("{hash:016X}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment_spec() -> ResourceSpec<'static> {
        let schema = schemars::SchemaGenerator::default()
            .into_root_schema_for::<k8s_openapi::api::apps::v1::Deployment>()
            .to_value();
        ResourceSpec {
            group: "apps",
            version: "v1",
            kind: "Deployment",
            plural: "deployments",
            namespaced: true,
            has_status: true,
            has_scale: true,
            definition: "io.k8s.api.apps.v1.Deployment".into(),
            schema,
        }
    }

    #[test]
    fn document_has_kind_schema_and_patch_with_field_validation() {
        let doc = group_version_document("apps", "v1", &[deployment_spec()]);
        let deployment = &doc["components"]["schemas"]["io.k8s.api.apps.v1.Deployment"];
        assert_eq!(
            deployment["x-kubernetes-group-version-kind"][0]["kind"],
            "Deployment"
        );
        assert!(doc["components"]["schemas"]["io.k8s.api.core.v1.PodSpec"].is_object());
        let text = doc.to_string();
        assert!(!text.contains("#/$defs/"), "refs are rewritten");
        let patch =
            &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
        assert_eq!(
            patch["x-kubernetes-group-version-kind"]["kind"],
            "Deployment"
        );
        assert!(patch["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "fieldValidation" && p["in"] == "query"));
    }

    #[test]
    fn swagger_v2_merges_definitions_and_rewrites_refs() {
        let v3 = group_version_document("apps", "v1", &[deployment_spec()]);
        let v2 = swagger_v2(&[v3]);
        assert_eq!(v2["swagger"], "2.0");
        assert!(v2["definitions"]["io.k8s.api.apps.v1.Deployment"].is_object());
        let text = v2.to_string();
        assert!(!text.contains("#/components/"), "refs point at definitions");
        let patch =
            &v2["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
        let params = patch["parameters"].as_array().unwrap();
        assert!(params.iter().any(|p| p["in"] == "body"));
        assert!(params
            .iter()
            .any(|p| p["name"] == "fieldValidation" && p["type"] == "string"));
    }

    #[test]
    fn swagger_v2_protobuf_starts_with_the_version_and_holds_definitions() {
        let v2 = swagger_v2(&[group_version_document("apps", "v1", &[deployment_spec()])]);
        let bytes = swagger_v2_protobuf(&v2);
        // Field 1 (swagger), length 3, "2.0".
        assert_eq!(&bytes[..5], b"\x0a\x032.0");
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.contains("io.k8s.api.apps.v1.Deployment"));
        assert!(text.contains("x-kubernetes-group-version-kind"));
        assert!(
            text.contains(r#"[{"group":"apps","version":"v1","kind":"Deployment"}]"#),
            "GVK travels as YAML (JSON)"
        );
    }

    #[test]
    fn index_points_at_hashed_documents() {
        let idx = index(&[("apis/apps/v1".into(), "ABC".into())]);
        assert_eq!(
            idx["paths"]["apis/apps/v1"]["serverRelativeURL"],
            "/openapi/v3/apis/apps/v1?hash=ABC"
        );
    }
}
