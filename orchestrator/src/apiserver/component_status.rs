//! `componentstatuses`: computed on each read, never stored, as upstream's
//! REST: the store (`etcd-0`) is asked whether it answers, and the scheduler
//! and controller-manager are healthy when they run in this process or hold
//! a fresh leader Lease. Reached through the catalog's `computed` marker.

use std::sync::Arc;

use axum::response::Response;
use berth_api::kinds::core::componentstatus::component_status;
use http::{HeaderMap, StatusCode};
use serde_json::{json, Value};

use super::catalog::{self, ResourceInfo};
use super::errors::ApiError;
use super::negotiate::{self, Rendering};
use super::objects::{target, Objects};
use super::request::{ResourceRequest, Verb};
use super::tables;

/// How the control plane's parts are found: which ones run inside this
/// process (healthy while it answers), the others through their leader Lease.
#[derive(Debug, Clone, Default)]
pub struct Components {
    /// Component names (`scheduler`, `controller-manager`) running in this process.
    pub in_process: Arc<Vec<String>>,
}

/// A component that runs beside the API server, and the Lease its leader holds.
struct Leased {
    name: &'static str,
    lease: &'static str,
}

const LEASED: &[Leased] = &[
    Leased {
        name: "controller-manager",
        lease: "berth-controller-manager",
    },
    Leased {
        name: "scheduler",
        lease: "berth-scheduler",
    },
];

/// Whether a Lease object names a holder and was renewed within its duration at `now`.
pub(super) fn lease_is_fresh(lease: &Value, now: jiff::Timestamp) -> bool {
    let holder = lease
        .pointer("/spec/holderIdentity")
        .and_then(Value::as_str)
        .is_some_and(|h| !h.is_empty());
    let renewed = lease
        .pointer("/spec/renewTime")
        .and_then(Value::as_str)
        .and_then(|t| t.parse::<jiff::Timestamp>().ok());
    let duration = lease
        .pointer("/spec/leaseDurationSeconds")
        .and_then(Value::as_i64)
        .unwrap_or(15);
    holder && renewed.is_some_and(|t| t + jiff::SignedDuration::from_secs(duration) >= now)
}

impl Components {
    /// Every ComponentStatus, in upstream's order (by name).
    async fn all(&self, objects: &Objects) -> Vec<Value> {
        let mut out = Vec::new();
        let leases = catalog::builtin("coordination.k8s.io", "v1", "leases");
        let now = jiff::Timestamp::now();
        for component in LEASED {
            let status = if self.in_process.iter().any(|n| n == component.name) {
                component_status(component.name, true, "ok", "")
            } else {
                let lease = match leases {
                    Some(r) => objects
                        .get(r, Some("kube-system"), component.lease)
                        .await
                        .ok(),
                    None => None,
                };
                match lease {
                    Some(lease) if lease_is_fresh(&lease, now) => {
                        component_status(component.name, true, "ok", "")
                    }
                    Some(_) => component_status(
                        component.name,
                        false,
                        "",
                        &format!(
                            "the leader Lease kube-system/{} has expired",
                            component.lease
                        ),
                    ),
                    None => component_status(
                        component.name,
                        false,
                        "",
                        &format!("no leader holds the Lease kube-system/{}", component.lease),
                    ),
                }
            };
            out.push(status);
        }
        let store = match objects.store().current_revision().await {
            Ok(_) => component_status("etcd-0", true, "ok", ""),
            Err(e) => component_status("etcd-0", false, "", &e.to_string()),
        };
        out.push(store);
        out.sort_by(|a, b| {
            a["metadata"]["name"]
                .as_str()
                .cmp(&b["metadata"]["name"].as_str())
        });
        out
    }

    /// Answers a get or list of a computed resource, with upstream's
    /// deprecation warning (ComponentStatus is deprecated since 1.19).
    pub async fn handle(
        &self,
        objects: &Objects,
        req: ResourceRequest,
        headers: &HeaderMap,
    ) -> Result<Response, ApiError> {
        let mut response = self.respond(objects, req, headers).await?;
        response.headers_mut().insert(
            http::header::WARNING,
            http::HeaderValue::from_static("299 - \"v1 ComponentStatus is deprecated in v1.19+\""),
        );
        Ok(response)
    }

    async fn respond(
        &self,
        objects: &Objects,
        req: ResourceRequest,
        headers: &HeaderMap,
    ) -> Result<Response, ApiError> {
        let r: &ResourceInfo = &req.resource;
        let rendering = negotiate::rendering(headers);
        let all = self.all(objects).await;
        let metadata = json!({"resourceVersion": ""});
        match (req.verb, req.subresource.as_deref(), req.name.as_deref()) {
            (Verb::Get, None, Some(name)) => {
                let obj = all
                    .into_iter()
                    .find(|o| o["metadata"]["name"] == name)
                    .ok_or_else(|| ApiError::NotFound(target(r, name)))?;
                Ok(match rendering {
                    Rendering::Table => negotiate::json_response(
                        StatusCode::OK,
                        &tables::table(r, &[obj], metadata, &req.query),
                    ),
                    other => negotiate::respond(StatusCode::OK, other, &obj),
                })
            }
            (Verb::List, None, None) => {
                let selected = match req.query.get("fieldSelector") {
                    Some(selector) => filter_by_name(all, selector),
                    None => all,
                };
                Ok(match rendering {
                    Rendering::Table => negotiate::json_response(
                        StatusCode::OK,
                        &tables::table(r, &selected, metadata, &req.query),
                    ),
                    other => {
                        let items: Vec<Value> = selected
                            .into_iter()
                            .map(|mut o| {
                                if let Some(map) = o.as_object_mut() {
                                    map.remove("kind");
                                    map.remove("apiVersion");
                                }
                                o
                            })
                            .collect();
                        let list = json!({"kind": "ComponentStatusList", "apiVersion": "v1",
                            "metadata": metadata, "items": items});
                        negotiate::respond(StatusCode::OK, other, &list)
                    }
                })
            }
            _ => Err(ApiError::MethodNotAllowed(
                "the server does not allow this method on the requested resource".into(),
            )),
        }
    }
}

/// Keeps the objects a `metadata.name=` field selector picks (the only field
/// upstream's componentstatuses select on).
fn filter_by_name(all: Vec<Value>, selector: &str) -> Vec<Value> {
    let wanted: Vec<(&str, bool)> = selector
        .split(',')
        .filter_map(|term| {
            let (field, value, equal) = if let Some((f, v)) = term.split_once("!=") {
                (f, v, false)
            } else if let Some((f, v)) = term.split_once("==") {
                (f, v, true)
            } else {
                let (f, v) = term.split_once('=')?;
                (f, v, true)
            };
            (field.trim() == "metadata.name").then_some((value.trim(), equal))
        })
        .collect();
    all.into_iter()
        .filter(|o| {
            let name = o["metadata"]["name"].as_str().unwrap_or_default();
            wanted
                .iter()
                .all(|(value, equal)| (name == *value) == *equal)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_leases_have_a_holder_renewed_within_their_duration() {
        let now: jiff::Timestamp = "2026-01-01T12:00:00Z".parse().unwrap();
        let lease = |holder: &str, renewed: &str| json!({"spec": {"holderIdentity": holder, "renewTime": renewed, "leaseDurationSeconds": 15}});
        assert!(lease_is_fresh(
            &lease("a", "2026-01-01T11:59:50.000000Z"),
            now
        ));
        assert!(!lease_is_fresh(
            &lease("a", "2026-01-01T11:59:00.000000Z"),
            now
        ));
        assert!(!lease_is_fresh(
            &lease("", "2026-01-01T11:59:59.000000Z"),
            now
        ));
    }

    #[test]
    fn field_selectors_pick_by_name() {
        let all = vec![
            component_status("etcd-0", true, "ok", ""),
            component_status("scheduler", true, "ok", ""),
        ];
        let picked = filter_by_name(all.clone(), "metadata.name=etcd-0");
        assert_eq!(picked.len(), 1);
        assert_eq!(
            filter_by_name(all, "metadata.name!=etcd-0")[0]["metadata"]["name"],
            "scheduler"
        );
    }
}
