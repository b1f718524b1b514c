//! `metrics.k8s.io/v1beta1`, served as metrics-server serves it: a scraper
//! reads every node's `/metrics/resource` through the node proxy every
//! [`RESOLUTION`], keeps the latest two scrapes per node in memory, and
//! NodeMetrics / PodMetrics (get, list, label selectors, tables) are
//! computed from them on each read. Read-only and never stored; writes are
//! refused with 405 before they get here (the catalog lists get and list).

mod scrape;
mod window;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::response::Response;
use futures::StreamExt;
use http::{HeaderMap, StatusCode};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::catalog::{self, ResourceInfo};
use super::errors::ApiError;
use super::listing;
use super::negotiate::{self, Rendering};
use super::node_proxy::NodeProxy;
use super::objects::{target, Objects};
use super::request::{ResourceRequest, Verb};
use super::tables;
use scrape::NodeScrape;
use window::NodeUsage;

/// How often nodes are scraped (metrics-server's default `--metric-resolution`).
pub const RESOLUTION: Duration = Duration::from_secs(15);
/// How long one node's scrape may take.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(10);
/// How many nodes are scraped at once.
const SCRAPE_CONCURRENCY: usize = 16;

/// Whether `node` runs berth's simulated runtime, which has no kubelet API.
fn is_simulated(node: &Value) -> bool {
    node.pointer("/status/nodeInfo/containerRuntimeVersion")
        .and_then(Value::as_str)
        .is_some_and(|v| v.starts_with("simulated://"))
}

/// What the scraper keeps per node: its latest scrape and the usage between
/// it and the one before.
#[derive(Debug, Clone, Default)]
struct NodeState {
    latest: NodeScrape,
    usage: NodeUsage,
}

/// The scraped metrics; cheap to clone (shared).
#[derive(Clone, Default)]
pub struct ResourceMetrics {
    nodes: Arc<RwLock<HashMap<String, NodeState>>>,
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl ResourceMetrics {
    /// Records node `node`'s scrape `current`: its usage is then measured
    /// against the previous one.
    fn record(&self, node: &str, current: NodeScrape) {
        let mut nodes = self
            .nodes
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let state = nodes.entry(node.to_owned()).or_default();
        state.usage = window::node_usage(&state.latest, &current);
        state.latest = current;
    }

    /// Forgets nodes that are gone.
    fn retain(&self, names: &[String]) {
        self.nodes
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .retain(|name, _| names.contains(name));
    }

    /// Scrapes every node every [`RESOLUTION`] until `cancel` fires.
    pub async fn run(self, objects: Objects, proxy: NodeProxy, cancel: CancellationToken) {
        let mut ticks = tokio::time::interval(RESOLUTION);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = ticks.tick() => {}
            }
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = self.scrape_all(&objects, &proxy) => {}
            }
        }
    }

    async fn scrape_all(&self, objects: &Objects, proxy: &NodeProxy) {
        let nodes = catalog::builtin("", "v1", "nodes").expect("nodes served");
        let listed =
            match listing::list(objects.store().as_ref(), nodes, None, &Default::default()).await {
                Ok(listed) => listed,
                Err(e) => {
                    tracing::debug!(error = %e, "resource metrics: listing nodes failed");
                    return;
                }
            };
        let names: Vec<String> = listed
            .items
            .iter()
            .filter_map(|n| n.pointer("/metadata/name").and_then(Value::as_str))
            .map(str::to_owned)
            .collect();
        self.retain(&names);
        // Simulated nodes serve no kubelet API: nothing to scrape.
        let targets: Vec<Value> = listed
            .items
            .into_iter()
            .filter(|n| !is_simulated(n))
            .collect();
        let scrapes = targets.into_iter().map(|node| {
            let proxy = proxy.clone();
            async move {
                let name = node
                    .pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                let fetched = tokio::time::timeout(
                    SCRAPE_TIMEOUT,
                    proxy.get_from_node(&node, "/metrics/resource"),
                )
                .await;
                (name, fetched)
            }
        });
        let scraped: Vec<_> = futures::stream::iter(scrapes)
            .buffer_unordered(SCRAPE_CONCURRENCY)
            .collect()
            .await;
        for (name, fetched) in scraped {
            let scraped_at = jiff::Timestamp::now().as_millisecond();
            let parsed = match fetched {
                Ok(Ok(f)) if f.status == StatusCode::OK => {
                    scrape::parse(&String::from_utf8_lossy(&f.body), scraped_at)
                }
                Ok(Ok(f)) => Err(format!("the kubelet answered {}", f.status)),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err(format!("no answer within {SCRAPE_TIMEOUT:?}")),
            };
            match parsed {
                Ok(current) => self.record(&name, current),
                Err(e) => {
                    tracing::debug!(node = %name, error = %e, "resource metrics: scrape failed")
                }
            }
        }
    }

    /// Answers a get or list of `nodes` or `pods` metrics.
    pub async fn handle(
        &self,
        objects: &Objects,
        req: ResourceRequest,
        headers: &HeaderMap,
    ) -> Result<Response, ApiError> {
        let r: &ResourceInfo = &req.resource;
        let mut query = req.query.clone();
        for paging in [
            "limit",
            "continue",
            "resourceVersion",
            "resourceVersionMatch",
        ] {
            query.remove(paging);
        }
        let (source, kind_list) = match r.kind.as_str() {
            "NodeMetrics" => ("nodes", "NodeMetricsList"),
            _ => ("pods", "PodMetricsList"),
        };
        let source = catalog::builtin("", "v1", source).expect("nodes and pods served");
        let namespace = req.namespace.as_deref();
        let mut items = match (req.verb, req.subresource.as_deref(), req.name.as_deref()) {
            (Verb::Get, None, Some(name)) => {
                let object = objects
                    .get(source, namespace, name)
                    .await
                    .map_err(|e| match e {
                        ApiError::NotFound(_) => ApiError::NotFound(target(r, name)),
                        other => other,
                    })?;
                let metrics = self.metrics_of(r, vec![object]);
                let found = metrics
                    .into_iter()
                    .next()
                    .ok_or_else(|| ApiError::NotFound(target(r, name)))?;
                return Ok(respond_one(r, &req, headers, found));
            }
            (Verb::List, None, None) => {
                let listed =
                    listing::list(objects.store().as_ref(), source, namespace, &query).await?;
                self.metrics_of(r, listed.items)
            }
            _ => {
                return Err(ApiError::MethodNotAllowed(
                    "the server does not allow this method on the requested resource".into(),
                ))
            }
        };
        items.sort_by(|a, b| {
            let key = |v: &Value| {
                (
                    v.pointer("/metadata/namespace")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                    v.pointer("/metadata/name")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                )
            };
            key(a).cmp(&key(b))
        });
        let metadata = json!({"resourceVersion": ""});
        Ok(match negotiate::rendering(headers) {
            Rendering::Table => negotiate::json_response(
                StatusCode::OK,
                &tables::table(r, &items, metadata, &req.query),
            ),
            other => {
                let list = json!({"kind": kind_list, "apiVersion": r.api_version(),
                    "metadata": metadata, "items": items});
                negotiate::respond(StatusCode::OK, other, &list)
            }
        })
    }

    /// The metrics of the given Nodes or Pods, for those that have any.
    fn metrics_of(&self, r: &ResourceInfo, sources: Vec<Value>) -> Vec<Value> {
        let nodes = read(&self.nodes);
        if r.kind == "NodeMetrics" {
            return sources
                .iter()
                .filter_map(|node| {
                    let name = node.pointer("/metadata/name").and_then(Value::as_str)?;
                    let usage = nodes.get(name)?.usage.node?;
                    Some(window::node_metrics(node, &usage))
                })
                .collect();
        }
        sources
            .iter()
            .filter_map(|pod| {
                let node = nodes.get(pod.pointer("/spec/nodeName").and_then(Value::as_str)?)?;
                let namespace = pod.pointer("/metadata/namespace").and_then(Value::as_str)?;
                let name = pod.pointer("/metadata/name").and_then(Value::as_str)?;
                let mut containers: Vec<(String, window::Usage)> = node
                    .usage
                    .containers
                    .iter()
                    .filter(|((ns, p, _), _)| ns == namespace && p == name)
                    .map(|((_, _, c), usage)| (c.clone(), *usage))
                    .collect();
                containers.sort_by(|a, b| a.0.cmp(&b.0));
                window::pod_metrics(pod, &containers)
            })
            .collect()
    }
}

fn respond_one(
    r: &ResourceInfo,
    req: &ResourceRequest,
    headers: &HeaderMap,
    object: Value,
) -> Response {
    match negotiate::rendering(headers) {
        Rendering::Table => negotiate::json_response(
            StatusCode::OK,
            &tables::table(r, &[object], json!({"resourceVersion": ""}), &req.query),
        ),
        other => negotiate::respond(StatusCode::OK, other, &object),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simulated_nodes_are_not_scraped() {
        let node =
            |runtime: &str| json!({"status": {"nodeInfo": {"containerRuntimeVersion": runtime}}});
        assert!(is_simulated(&node("simulated://1.0")));
        assert!(!is_simulated(&node("containerd://1.6.20")));
        assert!(!is_simulated(&json!({"metadata": {"name": "n"}})));
    }

    #[test]
    fn usage_is_measured_against_the_previous_scrape_and_gone_nodes_are_forgotten() {
        let text = |cpu: f64, millis: i64| {
            format!("node_cpu_usage_seconds_total {cpu} {millis}\nnode_memory_working_set_bytes 100 {millis}\n")
        };
        let metrics = ResourceMetrics::default();
        metrics.record("n", scrape::parse(&text(1.0, 1_000), 0).unwrap());
        assert!(read(&metrics.nodes)["n"].usage.node.is_none());
        metrics.record("n", scrape::parse(&text(2.0, 3_000), 0).unwrap());
        let usage = read(&metrics.nodes)["n"].usage.node.unwrap();
        assert_eq!(usage.cpu_nanocores, 500_000_000);
        metrics.retain(&[]);
        assert!(read(&metrics.nodes).is_empty());
    }
}
