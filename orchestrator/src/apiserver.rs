//! The Kubernetes-compatible API server: HTTPS with bearer-token auth, one
//! fallback route that parses every request into a typed [`ApiRequest`], and
//! start-up bootstrap (default namespaces, the `kubernetes` Service).
//! It is the only component that touches the store.

mod actions;
pub(crate) mod admission;
pub mod allocator;
mod apply;
pub mod authn;
mod authz;
mod bootstrap;
pub mod catalog;
pub mod component_status;
mod crd_registry;
pub use admission::DefaultTolerationSeconds;
mod default_service_cidr;
pub mod discovery;
mod endpoint_reconciler;
pub mod errors;
mod eviction;
mod handlers;
pub mod kube_state;
mod listing;
pub mod metrics_api;
pub mod negotiate;
mod node_proxy;
pub mod objects;
mod openapi;
mod pod_security;
pub mod request;
mod request_metrics;
pub mod reviews;
mod scale;
mod scrape_targets;
mod storage_objects;
mod tables;
mod watch;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Router;
use http::{header, StatusCode};
use http_body_util::BodyExt;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;
use tracing::Instrument;

use self::allocator::{Allocator, Cidr};
use self::catalog::{Catalog, Serving};
use self::errors::ApiError;
use self::node_proxy::NodeProxy;
use self::objects::Objects;
use self::request::ApiRequest;
use crate::store::instrumented::InstrumentedStore;
use crate::store::Store;
use berth_observability::metrics::MetricsRegistry;
use berth_pki::Pki;

/// Errors that stop the server from starting.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// The TLS material is unusable.
    #[error("TLS configuration: {0}")]
    Tls(String),
    /// Bootstrap objects could not be written.
    #[error("bootstrap: {0}")]
    Bootstrap(Box<ApiError>),
}

impl From<ApiError> for ServeError {
    fn from(e: ApiError) -> Self {
        ServeError::Bootstrap(Box::new(e))
    }
}

/// What the API server needs to run.
pub struct ApiServerConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// The range Service ClusterIPs come from.
    pub service_cidr: Cidr,
    /// The address other machines and pods reach this server at, published in
    /// the `kubernetes` Service's endpoints; the listen address when None (and
    /// loopback when listening on every address).
    pub advertise_address: Option<std::net::IpAddr>,
    /// Control-plane parts running in this process (`scheduler`,
    /// `controller-manager`), reported healthy by `componentstatuses`.
    pub in_process: Vec<String>,
    /// The registry served on `/metrics`; the server adds its request and
    /// storage metrics, and the components sharing its process (scheduler,
    /// controllers) register theirs in the same registry.
    pub metrics: MetricsRegistry,
    /// Pod Security admission's defaults and exemptions (privileged
    /// everywhere, nothing exempt, by default).
    pub pod_security: berth_api::pod_security::Configuration,
}

#[derive(Clone)]
struct AppState {
    objects: Objects,
    catalog: Catalog,
    openapi: Arc<openapi::OpenApi>,
    authenticator: authn::Authenticator,
    node_proxy: NodeProxy,
    components: component_status::Components,
    metrics: metrics_api::ResourceMetrics,
    registry: MetricsRegistry,
    requests: request_metrics::RequestMetrics,
    kube_state: kube_state::KubeState,
}

/// A bound, bootstrapped API server, ready to serve.
pub struct ApiServer {
    listener: TcpListener,
    objects: Objects,
    catalog: Catalog,
    /// The store revision the custom resource definitions were loaded at.
    definitions_revision: i64,
    advertised: SocketAddr,
    acceptor: TlsAcceptor,
    router: Router,
    node_proxy: NodeProxy,
    /// The ClusterIP allocator, whose addresses the repair loop checks and
    /// whose range is kept as the default ServiceCIDR.
    allocator: Allocator,
    /// The nodes' scraped resource metrics (`metrics.k8s.io`).
    metrics: metrics_api::ResourceMetrics,
    /// `apiserver_storage_objects`, refreshed in the background.
    storage_objects: storage_objects::StorageObjects,
    /// The registry served on `/metrics`.
    registry: MetricsRegistry,
    /// The object metrics served on `/metrics/kube-state`, derived in the
    /// background.
    kube_state: kube_state::KubeState,
}

impl ApiServer {
    /// Binds the listener, loads TLS and writes the bootstrap objects.
    pub async fn bind(
        config: ApiServerConfig,
        store: Arc<dyn Store>,
        pki: &Pki,
    ) -> Result<Self, ServeError> {
        Self::bind_with(
            config,
            admission::DefaultTolerationSeconds::default(),
            store,
            pki,
        )
        .await
    }

    /// [`ApiServer::bind`] with the seconds new pods tolerate not-ready and
    /// unreachable nodes (the DefaultTolerationSeconds admission's flags).
    pub async fn bind_with(
        config: ApiServerConfig,
        toleration_seconds: admission::DefaultTolerationSeconds,
        store: Arc<dyn Store>,
        pki: &Pki,
    ) -> Result<Self, ServeError> {
        let store = if config.metrics.is_recording() {
            InstrumentedStore::wrap(store, &config.metrics)
        } else {
            store
        };
        let allocator = Allocator::new(Arc::clone(&store), config.service_cidr);
        let objects = Objects::new(Arc::clone(&store), allocator.clone())
            .with_default_toleration_seconds(toleration_seconds)
            .with_pod_security(config.pod_security.clone());
        bootstrap::bootstrap(&objects, &allocator).await?;
        let rbac = |plural| catalog::builtin(berth_api::rbac::GROUP, "v1", plural);
        for role in authz::node_roles() {
            bootstrap::reconcile_default(
                &objects,
                rbac("clusterroles").expect("RBAC served"),
                &role,
                true,
            )
            .await?;
        }
        for binding in authz::node_bindings() {
            let r = rbac("clusterrolebindings").expect("RBAC served");
            bootstrap::reconcile_default(&objects, r, &binding, false).await?;
        }
        let node_proxy = NodeProxy::new(pki).map_err(ServeError::Tls)?;
        let catalog = Catalog::new();
        let metrics = metrics_api::ResourceMetrics::default();
        let kube_state = kube_state::KubeState::new();
        let definitions_revision = crd_registry::load(&objects, &catalog).await?;
        let state = AppState {
            objects: objects.clone(),
            catalog: catalog.clone(),
            openapi: Arc::new(openapi::OpenApi::new(catalog.clone())),
            authenticator: authn::Authenticator::new(&pki.admin_token),
            node_proxy: node_proxy.clone(),
            components: component_status::Components {
                in_process: Arc::new(config.in_process.clone()),
            },
            metrics: metrics.clone(),
            requests: request_metrics::RequestMetrics::register(&config.metrics),
            registry: config.metrics.clone(),
            kube_state: kube_state.clone(),
        };
        let storage_objects = storage_objects::StorageObjects::register(&config.metrics);
        let router = Router::new().fallback(dispatch).with_state(state);
        let acceptor = tls_acceptor(pki)?;
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| ServeError::Bind {
                    addr: config.listen,
                    source,
                })?;
        let bound = listener.local_addr().map_err(|source| ServeError::Bind {
            addr: config.listen,
            source,
        })?;
        let advertised_ip = config.advertise_address.unwrap_or_else(|| {
            if bound.ip().is_unspecified() {
                std::net::IpAddr::from([127, 0, 0, 1])
            } else {
                bound.ip()
            }
        });
        Ok(Self {
            listener,
            objects,
            catalog,
            definitions_revision,
            advertised: SocketAddr::new(advertised_ip, bound.port()),
            acceptor,
            router,
            node_proxy,
            allocator,
            metrics,
            storage_objects,
            registry: config.metrics,
            kube_state,
        })
    }

    /// The registry this server serves on `/metrics`: the seam through which
    /// components sharing its process (the scheduler, the controllers)
    /// register their metrics, so one scrape sees them all.
    pub fn metrics(&self) -> &MetricsRegistry {
        &self.registry
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `cancel` fires; open connections are dropped then.
    pub async fn serve(self, cancel: CancellationToken) {
        let mut connections = tokio::task::JoinSet::new();
        let mut background = tokio::task::JoinSet::new();
        background.spawn(endpoint_reconciler::run(
            self.objects.clone(),
            self.advertised,
            cancel.clone(),
        ));
        background.spawn(default_service_cidr::run(
            self.objects.clone(),
            self.allocator.service_cidr().to_string(),
            cancel.clone(),
        ));
        background.spawn(allocator::repair::run(
            self.allocator.clone(),
            cancel.clone(),
        ));
        background.spawn(self.metrics.clone().run(
            self.objects.clone(),
            self.node_proxy.clone(),
            cancel.clone(),
        ));
        background.spawn(
            self.kube_state
                .clone()
                .run(self.objects.clone(), cancel.clone()),
        );
        background.spawn(
            self.storage_objects
                .clone()
                .run(Arc::clone(self.objects.store()), cancel.clone()),
        );
        background.spawn(crd_registry::run(
            self.objects.clone(),
            self.catalog.clone(),
            self.definitions_revision,
            cancel.clone(),
        ));
        loop {
            let (tcp, peer) = tokio::select! {
                _ = cancel.cancelled() => break,
                accepted = self.listener.accept() => match accepted {
                    Ok(conn) => conn,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        continue;
                    }
                },
                Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            };
            let acceptor = self.acceptor.clone();
            let router = self.router.clone();
            let cancel = cancel.clone();
            connections.spawn(async move {
                let tls = match acceptor.accept(tcp).await {
                    Ok(tls) => tls,
                    Err(e) => {
                        tracing::debug!(%peer, error = %e, "TLS handshake failed");
                        return;
                    }
                };
                // The handshake verified any client certificate against the cluster CA.
                let certificate_user = tls
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|chain| chain.first())
                    .and_then(|cert| authn::certificate_user(cert))
                    .map(authn::CertificateUser);
                let service =
                    hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                        let router = router.clone();
                        let mut req = req.map(Body::new);
                        if let Some(user) = &certificate_user {
                            req.extensions_mut().insert(user.clone());
                        }
                        async move { router.oneshot(req).await }
                    });
                let builder = auto::Builder::new(TokioExecutor::new());
                let conn = builder.serve_connection_with_upgrades(TokioIo::new(tls), service);
                tokio::select! {
                    result = conn => if let Err(e) = result {
                        tracing::debug!(%peer, error = %e, "connection ended with error");
                    },
                    _ = cancel.cancelled() => {}
                }
            });
        }
        connections.shutdown().await;
        background.shutdown().await;
        self.node_proxy.shutdown().await;
    }
}

fn tls_acceptor(pki: &Pki) -> Result<TlsAcceptor, ServeError> {
    let certs = rustls_pemfile::certs(&mut pki.serving_cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ServeError::Tls(e.to_string()))?;
    let key = rustls_pemfile::private_key(&mut pki.serving_key_pem.as_bytes())
        .map_err(|e| ServeError::Tls(e.to_string()))?
        .ok_or_else(|| ServeError::Tls("no private key in serving.key".into()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for ca in rustls_pemfile::certs(&mut pki.ca_pem.as_bytes()) {
        let ca = ca.map_err(|e| ServeError::Tls(e.to_string()))?;
        roots
            .add(ca)
            .map_err(|e| ServeError::Tls(format!("cluster CA: {e}")))?;
    }
    // Client certificates are optional: token clients send none.
    let client_verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        Arc::clone(&provider),
    )
    .allow_unauthenticated()
    .build()
    .map_err(|e| ServeError::Tls(e.to_string()))?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ServeError::Tls(e.to_string()))?
        .with_client_cert_verifier(client_verifier)
        .with_single_cert(certs, key)
        .map_err(|e| ServeError::Tls(e.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// The media type clients ask for to get the OpenAPI v2 document in protobuf.
const OPENAPI_V2_PROTOBUF: &str = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf";
/// The media type it is served under: Go's mime parser rejects the `@` of the requested one.
const OPENAPI_V2_PROTOBUF_RESPONSE: &str =
    "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";

fn json_bytes(body: Bytes) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

/// How much of an oversized body is read (and dropped) before answering 413, so the
/// client receives the answer instead of a reset connection.
const DRAIN_LIMIT: usize = 64 * 1024 * 1024;

async fn read_body(mut body: Body) -> Result<Bytes, ApiError> {
    let mut collected = bytes::BytesMut::new();
    let mut total = 0usize;
    while let Some(frame) = body.frame().await {
        let frame =
            frame.map_err(|e| ApiError::BadRequest(format!("reading the request body: {e}")))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        total += data.len();
        if total > DRAIN_LIMIT {
            break;
        }
        if total <= negotiate::MAX_BODY_BYTES {
            collected.extend_from_slice(&data);
        }
    }
    if total > negotiate::MAX_BODY_BYTES {
        return Err(ApiError::TooLarge(negotiate::MAX_BODY_BYTES));
    }
    Ok(collected.freeze())
}

async fn dispatch(State(state): State<AppState>, http: axum::extract::Request) -> Response {
    let started = std::time::Instant::now();
    let (method, uri) = (http.method().clone(), http.uri().clone());
    let response = match request::parse(&state.catalog, &method, uri.path(), uri.query()) {
        Ok(request) => {
            let inflight = state.registry.is_recording().then(|| {
                let labels = request_metrics::RequestLabels::of(
                    &request,
                    &method,
                    uri.path(),
                    http.headers(),
                );
                state.requests.start(labels)
            });
            let span = request_span(&method, uri.path(), http.headers());
            let response = route(&state, request, http)
                .instrument(span)
                .await
                .unwrap_or_else(IntoResponse::into_response);
            match inflight {
                Some(inflight) => inflight.finish(response),
                None => response,
            }
        }
        // Paths that name nothing are not counted: their labels would be unbounded.
        Err(e) => e.into_response(),
    };
    tracing::debug!(%method, %uri, status = response.status().as_u16(), elapsed_ms = started.elapsed().as_millis() as u64, "request");
    response
}

/// A server span per request while tracing is on, continuing the client's
/// W3C `traceparent` when it sends one; a disabled span otherwise.
fn request_span(method: &http::Method, path: &str, headers: &http::HeaderMap) -> tracing::Span {
    use berth_observability::propagation;
    if !propagation::enabled() {
        return tracing::Span::none();
    }
    let span = tracing::info_span!(
        "apiserver.request",
        otel.kind = "server",
        berth.component = "apiserver",
        http.request.method = %method,
        url.path = path,
    );
    let traceparent = headers
        .get(propagation::TRACEPARENT_HEADER)
        .and_then(|v| v.to_str().ok());
    propagation::set_parent(&span, traceparent);
    span
}

async fn route(
    state: &AppState,
    request: ApiRequest,
    http: axum::extract::Request,
) -> Result<Response, ApiError> {
    if matches!(request, ApiRequest::Health) {
        return Ok((StatusCode::OK, "ok").into_response());
    }
    let user = state
        .authenticator
        .authenticate(
            &state.objects,
            http.headers(),
            http.extensions().get::<authn::CertificateUser>(),
        )
        .await?;
    if let ApiRequest::Resource(resource) = &request {
        tracing::debug!(user = %user.username, verb = resource.verb.name(), resource = %resource.resource.plural, name = ?resource.name, "authenticated");
        authz::authorize(&state.objects, resource, http.headers(), &user).await?;
        if NodeProxy::serves(resource) {
            // Streams: the body stays unread and the upgrade handle travels along.
            return state.node_proxy.serve(&state.objects, resource, http).await;
        }
    }
    let served = match request {
        ApiRequest::Metrics => Some(("/metrics", &state.registry)),
        ApiRequest::KubeStateMetrics => Some(("/metrics/kube-state", state.kube_state.registry())),
        _ => None,
    };
    if matches!(request, ApiRequest::ScrapeTargets) {
        let path = scrape_targets::PATH;
        reviews::authorize_non_resource(&state.objects, &user, http.headers(), "get", path).await?;
        let groups = scrape_targets::groups(&state.objects).await?;
        return Ok(negotiate::json_response(StatusCode::OK, &groups));
    }
    if let Some((path, registry)) = served {
        reviews::authorize_non_resource(&state.objects, &user, http.headers(), "get", path).await?;
        let accept = http
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let (content_type, body) = registry.encode_for(accept);
        return Ok((StatusCode::OK, [(header::CONTENT_TYPE, content_type)], body).into_response());
    }
    let (mut parts, body) = http.into_parts();
    let mut body = read_body(body).await?;
    if let ApiRequest::Resource(resource) = &request {
        if authz::is_csr_create(resource) {
            let mut csr = negotiate::decode_body(&parts.headers, &body)?;
            authn::stamp_requestor(&mut csr, &user);
            body = Bytes::from(
                serde_json::to_vec(&csr).map_err(|e| ApiError::Internal(e.to_string()))?,
            );
            parts.headers.insert(
                header::CONTENT_TYPE,
                http::HeaderValue::from_static("application/json"),
            );
        }
    }
    let headers = &parts.headers;
    let json_ok = |v: Value| Ok(negotiate::json_response(StatusCode::OK, &v));
    match request {
        ApiRequest::Version => json_ok(discovery::version()),
        ApiRequest::Health
        | ApiRequest::Metrics
        | ApiRequest::KubeStateMetrics
        | ApiRequest::ScrapeTargets => {
            unreachable!("answered above")
        }
        ApiRequest::CoreVersions | ApiRequest::Groups => {
            let core = matches!(request, ApiRequest::CoreVersions);
            let accept = headers
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            match discovery::aggregated_version(accept) {
                Some(version) => {
                    let content_type = format!("application/json;g=apidiscovery.k8s.io;v={version};as=APIGroupDiscoveryList");
                    let body =
                        serde_json::to_vec(&discovery::aggregated(&state.catalog, core, version))
                            .map_err(|e| ApiError::Internal(e.to_string()))?;
                    Ok(
                        (StatusCode::OK, [(header::CONTENT_TYPE, content_type)], body)
                            .into_response(),
                    )
                }
                None if core => json_ok(discovery::core_versions()),
                None => json_ok(discovery::groups(&state.catalog)),
            }
        }
        ApiRequest::Group(name) => {
            discovery::group(&state.catalog, &name).map_or(Err(ApiError::UnknownPath), json_ok)
        }
        ApiRequest::GroupVersion { group, version } => {
            json_ok(discovery::resource_list(&state.catalog, &group, &version))
        }
        ApiRequest::OpenApiV2 => {
            // kubectl 1.27/1.28 ask for gnostic protobuf; JSON clients get JSON.
            let accept = headers
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if accept.contains(OPENAPI_V2_PROTOBUF) {
                return Ok((
                    StatusCode::OK,
                    [(header::CONTENT_TYPE, OPENAPI_V2_PROTOBUF_RESPONSE)],
                    state.openapi.v2_protobuf(),
                )
                    .into_response());
            }
            Ok(json_bytes(state.openapi.v2()))
        }
        ApiRequest::OpenApiV3Index => Ok(json_bytes(state.openapi.index())),
        ApiRequest::OpenApiV3 { group, version } => state
            .openapi
            .document(&group, &version)
            .map(json_bytes)
            .ok_or(ApiError::UnknownPath),
        ApiRequest::Resource(req) if req.resource.serving == Serving::Review => {
            reviews::handle(
                &state.objects,
                state.authenticator.admin_token(),
                &user,
                req,
                headers,
                &body,
            )
            .await
        }
        ApiRequest::Resource(req) if req.resource.serving == Serving::Computed => {
            state.components.handle(&state.objects, req, headers).await
        }
        ApiRequest::Resource(req) if req.resource.serving == Serving::ResourceMetrics => {
            state.metrics.handle(&state.objects, req, headers).await
        }
        ApiRequest::Resource(req) => handlers::handle(&state.objects, req, headers, &body).await,
    }
}
