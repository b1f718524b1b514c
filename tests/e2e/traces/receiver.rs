//! A small OTLP receiver on loopback, speaking both transports berth
//! exports with: OTLP/gRPC (tonic) and OTLP/HTTP with protobuf bodies.
//! It keeps every span it is sent, flattened with its service's name.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use prost::Message;

/// One received span, with the ids as hex as Jaeger shows them.
#[derive(Clone, Debug)]
pub struct ReceivedSpan {
    pub service: String,
    pub name: String,
    pub trace_id: String,
    pub span_id: String,
    /// Empty for a root span.
    pub parent_span_id: String,
    pub component: Option<String>,
    pub object: Option<String>,
    /// The request path of an API server span.
    pub path: Option<String>,
}

type Spans = Arc<Mutex<Vec<ReceivedSpan>>>;

/// Both endpoints, served on their own runtime; stopped when dropped.
pub struct Receiver {
    runtime: Option<tokio::runtime::Runtime>,
    pub grpc: SocketAddr,
    pub http: SocketAddr,
    spans: Spans,
}

impl Receiver {
    pub fn start() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let spans = Spans::default();
        let (grpc, http) = runtime.block_on(async {
            let grpc = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            (grpc, http)
        });
        let (grpc_addr, http_addr) = (grpc.local_addr().unwrap(), http.local_addr().unwrap());
        let service = TraceServiceServer::new(Collector(spans.clone()));
        runtime.spawn(
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(tonic::transport::server::TcpIncoming::from(grpc)),
        );
        let collected = spans.clone();
        // A shutdown flushes everything queued in one request: no size limit.
        let router = axum::Router::new()
            .route(
                "/v1/traces",
                axum::routing::post(move |body: axum::body::Bytes| {
                    let collected = collected.clone();
                    async move {
                        match ExportTraceServiceRequest::decode(body) {
                            Ok(request) => {
                                record(&collected, request);
                                let reply = ExportTraceServiceResponse::default().encode_to_vec();
                                (
                                    http::StatusCode::OK,
                                    [(http::header::CONTENT_TYPE, "application/x-protobuf")],
                                    reply,
                                )
                            }
                            Err(_) => (
                                http::StatusCode::BAD_REQUEST,
                                [(http::header::CONTENT_TYPE, "text/plain")],
                                b"not an ExportTraceServiceRequest".to_vec(),
                            ),
                        }
                    }
                }),
            )
            .layer(axum::extract::DefaultBodyLimit::disable());
        runtime.spawn(async move { axum::serve(http, router).await });
        Self {
            runtime: Some(runtime),
            grpc: grpc_addr,
            http: http_addr,
            spans,
        }
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<ReceivedSpan> {
        self.spans.lock().unwrap().clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

struct Collector(Spans);

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        record(&self.0, request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

fn string_attribute(attributes: &[KeyValue], key: &str) -> Option<String> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| match &v.value {
            Some(Value::StringValue(s)) => Some(s.clone()),
            _ => None,
        })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn record(spans: &Spans, request: ExportTraceServiceRequest) {
    let mut received = Vec::new();
    for resource_spans in request.resource_spans {
        let service = resource_spans
            .resource
            .as_ref()
            .and_then(|r| string_attribute(&r.attributes, "service.name"))
            .unwrap_or_default();
        for scope in resource_spans.scope_spans {
            for span in scope.spans {
                received.push(ReceivedSpan {
                    service: service.clone(),
                    trace_id: hex(&span.trace_id),
                    span_id: hex(&span.span_id),
                    parent_span_id: hex(&span.parent_span_id),
                    component: string_attribute(&span.attributes, "berth.component"),
                    object: string_attribute(&span.attributes, "k8s.object"),
                    path: string_attribute(&span.attributes, "url.path"),
                    name: span.name,
                });
            }
        }
    }
    spans.lock().unwrap().extend(received);
}
