//! Pod subresources the node serves: `pods/log`, `pods/exec`, `pods/attach`
//! and `pods/portforward`, and reads through `nodes/proxy`. Each request is checked as kube-apiserver checks it
//! (options, pod, container, node), then proxied to the node's kubelet API, as
//! kube-apiserver proxies to kubelet. Never buffers a stream, never forwards
//! the client's credentials.

mod location;
mod logs;
pub mod node;
mod options;
mod transport;
mod upgrade;

use std::sync::Arc;

use axum::body::Body;
use axum::response::Response;
use http::{Method, Request};
use tracing::Instrument;

use self::location::KubeletPath;
use self::options::{LogOptions, PortForwardOptions, StreamOptions};
use self::transport::KubeletDialer;
use self::upgrade::Sessions;
use super::catalog;
use super::errors::ApiError;
use super::objects::Objects;
use super::request::{url_decode_pairs, ResourceRequest};
use berth_pki::Pki;

/// Proxies streaming pod subresources to kubelets; cheap to clone.
#[derive(Clone)]
pub struct NodeProxy {
    dialer: Arc<KubeletDialer>,
    sessions: Arc<Sessions>,
}

impl NodeProxy {
    /// A proxy presenting the kubelet-client certificate of `pki` to kubelets.
    pub fn new(pki: &Pki) -> Result<Self, String> {
        Ok(Self {
            dialer: Arc::new(KubeletDialer::new(pki)?),
            sessions: Arc::default(),
        })
    }

    /// Whether `request` is for one of the subresources served here.
    pub fn serves(request: &ResourceRequest) -> bool {
        request
            .subresource
            .as_deref()
            .is_some_and(|sub| request.resource.streaming_subresources().contains(&sub))
    }

    /// Ends every spliced exec, attach and port-forward session.
    pub async fn shutdown(&self) {
        self.sessions.shutdown().await;
    }

    /// Answers one request for which [`NodeProxy::serves`] holds; `http` is the
    /// whole request (its upgrade handle included), its body unread.
    pub async fn serve(
        &self,
        objects: &Objects,
        request: &ResourceRequest,
        http: Request<Body>,
    ) -> Result<Response, ApiError> {
        let span = tracing::debug_span!(
            "node_proxy",
            namespace = request.namespace.as_deref().unwrap_or(""),
            pod = request.name.as_deref().unwrap_or(""),
            subresource = request.subresource.as_deref().unwrap_or(""),
        );
        self.serve_in_span(objects, request, http)
            .instrument(span)
            .await
    }

    async fn serve_in_span(
        &self,
        objects: &Objects,
        request: &ResourceRequest,
        http: Request<Body>,
    ) -> Result<Response, ApiError> {
        if request.resource.kind == "Node" {
            return self.serve_node(objects, request, http).await;
        }
        let pods = &request.resource;
        let namespace = request.namespace.as_deref().unwrap_or("default");
        let name = request.name.as_deref().unwrap_or("");
        let subresource = request.subresource.as_deref().unwrap_or("");
        let pairs = url_decode_pairs(http.uri().query().unwrap_or(""));
        let method = http.method().clone();
        match (subresource, &method) {
            ("log", &Method::GET) => {
                let options = LogOptions::parse(&pairs, name)?;
                let pod = objects.get(pods, Some(namespace), name).await?;
                let container = location::container(&pod, name, options.container.as_deref())?;
                let Some(node) = location::node_name(&pod) else {
                    return Ok(logs::empty());
                };
                let endpoint = self.endpoint(objects, node).await?;
                let path = KubeletPath::ContainerLogs.path_and_query(
                    namespace,
                    name,
                    &container,
                    &options.kubelet_query(),
                );
                logs::stream(&self.dialer, &endpoint, &path).await
            }
            ("exec" | "attach", &Method::GET | &Method::POST) => {
                let exec = subresource == "exec";
                let mut options = StreamOptions::parse(&pairs)?;
                if !exec {
                    options.command.clear();
                }
                let pod = objects.get(pods, Some(namespace), name).await?;
                let container = location::container(&pod, name, options.container.as_deref())?;
                let node = location::node_name(&pod).ok_or_else(|| location::no_host(name))?;
                options.validate(exec)?;
                let endpoint = self.endpoint(objects, node).await?;
                let kind = if exec {
                    KubeletPath::Exec
                } else {
                    KubeletPath::Attach
                };
                let path =
                    kind.path_and_query(namespace, name, &container, &options.kubelet_query());
                self.relay(&endpoint, &path, http).await
            }
            ("portforward", &Method::GET | &Method::POST) => {
                let options = PortForwardOptions::parse(&pairs)?;
                let pod = objects.get(pods, Some(namespace), name).await?;
                let node = location::node_name(&pod).ok_or_else(|| location::no_host(name))?;
                let endpoint = self.endpoint(objects, node).await?;
                let path = KubeletPath::PortForward.path_and_query(
                    namespace,
                    name,
                    "",
                    &options.kubelet_query(),
                );
                self.relay(&endpoint, &path, http).await
            }
            _ => Err(ApiError::MethodNotAllowed(format!(
                "the server does not allow this method on the requested resource ({method} pods/{subresource})"
            ))),
        }
    }

    /// `GET nodes/NAME/proxy/PATH`; other methods are refused.
    async fn serve_node(
        &self,
        objects: &Objects,
        request: &ResourceRequest,
        http: Request<Body>,
    ) -> Result<Response, ApiError> {
        let name = request.name.as_deref().unwrap_or("");
        if http.method() != Method::GET {
            return Err(ApiError::MethodNotAllowed(format!(
                "the server does not allow this method on the requested resource ({} nodes/proxy)",
                http.method()
            )));
        }
        let path = node::kubelet_path(http.uri().path(), name, http.uri().query())
            .ok_or(ApiError::UnknownPath)?;
        let nodes = catalog::builtin("", "v1", "nodes").expect("nodes served");
        let node = objects.get(nodes, None, name).await?;
        node::respond(self.get_from_node(&node, &path).await?)
    }

    /// GETs `path_and_query` from the kubelet API of `node` (a Node object).
    pub async fn get_from_node(
        &self,
        node: &serde_json::Value,
        path_and_query: &str,
    ) -> Result<node::Fetched, ApiError> {
        let endpoint = location::kubelet_endpoint(node)?;
        node::get(&self.dialer, &endpoint, path_and_query).await
    }

    async fn endpoint(
        &self,
        objects: &Objects,
        node: &str,
    ) -> Result<location::KubeletEndpoint, ApiError> {
        let nodes = catalog::builtin("", "v1", "nodes").expect("nodes served");
        location::kubelet_endpoint(&objects.get(nodes, None, node).await?)
    }

    async fn relay(
        &self,
        endpoint: &location::KubeletEndpoint,
        path: &str,
        http: Request<Body>,
    ) -> Result<Response, ApiError> {
        if !upgrade::is_upgrade_request(&http) {
            return Err(ApiError::BadRequest("Upgrade request required".into()));
        }
        upgrade::relay(&self.dialer, &self.sessions, endpoint, path, http).await
    }
}
