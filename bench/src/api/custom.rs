//! The two kinds the API benchmark drives: the built-in ConfigMap and a
//! custom resource (`Widget`, `bench.berth.dev/v1`) whose definition has a
//! realistic structural schema, so that one run compares both paths.

use std::time::{Duration, Instant};

use anyhow::Context;
use berth_bench::Connection;
use serde_json::{json, Value};

/// Roughly the payload every benchmark object carries, whatever its kind.
const PAYLOAD: usize = 256;

/// One kind the workload runs on.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// ConfigMaps in `default`.
    Builtin,
    /// Widgets (the CRD below) in `default`.
    Custom,
}

impl Target {
    /// How the kind shows in the report.
    pub fn label(self) -> &'static str {
        match self {
            Target::Builtin => "configmap",
            Target::Custom => "widget (CRD)",
        }
    }

    /// The namespaced collection objects are created in.
    pub fn collection(self) -> &'static str {
        match self {
            Target::Builtin => "/api/v1/namespaces/default/configmaps",
            Target::Custom => "/apis/bench.berth.dev/v1/namespaces/default/widgets",
        }
    }

    /// The path of object `name`.
    pub fn object(self, name: &str) -> String {
        format!("{}/{name}", self.collection())
    }

    /// A new object named `name`.
    pub fn body(self, name: &str, value: usize) -> String {
        match self {
            Target::Builtin => configmap(name, value),
            Target::Custom => json!({
                "apiVersion": "bench.berth.dev/v1", "kind": "Widget",
                "metadata": {"name": name, "labels": {"bench": "api"}},
                "spec": {
                    "image": "registry.example.com/widget:1.0",
                    "tier": "silver",
                    "maxReplicas": 5,
                    "value": value.to_string(),
                    "payload": "x".repeat(PAYLOAD),
                },
            })
            .to_string(),
        }
    }

    /// A merge patch changing the object's value.
    pub fn patch(self, value: usize) -> String {
        match self {
            Target::Builtin => json!({"data": {"value": value.to_string()}}),
            Target::Custom => json!({"spec": {"value": value.to_string()}}),
        }
        .to_string()
    }
}

/// A ConfigMap of about [`PAYLOAD`] bytes; also what the store floor writes.
pub fn configmap(name: &str, value: usize) -> String {
    json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "labels": {"bench": "api"}},
        "data": {"value": value.to_string(), "payload": "x".repeat(PAYLOAD)},
    })
    .to_string()
}

/// The Widget definition: typed fields, a default, a pattern, an enum, a
/// CEL rule, the status subresource and printer columns.
pub fn definition() -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.bench.berth.dev"},
        "spec": {
            "group": "bench.berth.dev",
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget",
                "listKind": "WidgetList"},
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "properties": {
                        "spec": {
                            "type": "object",
                            "required": ["image", "tier"],
                            "properties": {
                                "image": {"type": "string", "maxLength": 256,
                                    "pattern": "^[a-z0-9][a-z0-9./:_-]*$"},
                                "tier": {"type": "string",
                                    "enum": ["bronze", "silver", "gold"]},
                                "replicas": {"type": "integer", "format": "int32",
                                    "minimum": 0, "default": 1},
                                "maxReplicas": {"type": "integer", "format": "int32",
                                    "minimum": 1, "maximum": 100},
                                "value": {"type": "string"},
                                "payload": {"type": "string", "maxLength": 4096},
                            },
                            "x-kubernetes-validations": [{
                                "rule": "!has(self.maxReplicas) || self.replicas <= self.maxReplicas",
                                "message": "replicas must not exceed maxReplicas",
                            }],
                        },
                        "status": {
                            "type": "object",
                            "properties": {
                                "ready": {"type": "integer"},
                                "phase": {"type": "string"},
                            },
                        },
                    },
                }},
                "subresources": {"status": {}},
                "additionalPrinterColumns": [
                    {"name": "Tier", "type": "string", "jsonPath": ".spec.tier"},
                    {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
                    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                ],
            }],
        },
    })
}

/// Creates the Widget definition and waits until it is Established and its
/// collection answers.
pub async fn install(conn: &mut Connection) -> anyhow::Result<()> {
    let status = conn
        .request(
            http::Method::POST,
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
            Some((definition().to_string(), "application/json")),
        )
        .await?;
    anyhow::ensure!(status == 201, "creating the CRD: HTTP {status}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = conn
            .request_body(
                http::Method::GET,
                "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.bench.berth.dev",
            )
            .await?;
        let crd: Value = serde_json::from_slice(&body).context("the CRD is not JSON")?;
        let established = crd
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .any(|c| c["type"] == "Established" && c["status"] == "True");
        if status == 200 && established {
            let listed = conn
                .request(http::Method::GET, Target::Custom.collection(), None)
                .await?;
            if listed == 200 {
                return Ok(());
            }
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the CRD never became Established"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
