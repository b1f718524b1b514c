//! The OpenTelemetry tracer that exports spans over OTLP (which Jaeger and
//! the OpenTelemetry Collector ingest), in batches on the tokio runtime.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, SpanExporter, WithExportConfig};
use opentelemetry_sdk::runtime::Tokio;
use opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;

/// The OTLP transports of the OpenTelemetry specification
/// (`OTEL_EXPORTER_OTLP_PROTOCOL`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum OtlpProtocol {
    /// OTLP/gRPC (Jaeger and the Collector listen on 4317).
    Grpc,
    /// OTLP/HTTP with protobuf bodies (port 4318), the specification's default.
    #[default]
    #[value(name = "http/protobuf")]
    HttpProtobuf,
}

/// The URL spans are posted to: the base endpoint for gRPC, and for HTTP
/// the base endpoint plus `/v1/traces`, as the specification says of
/// `OTEL_EXPORTER_OTLP_ENDPOINT` (a URL already naming a path is kept).
pub fn traces_url(endpoint: &str, protocol: OtlpProtocol) -> String {
    let endpoint = endpoint.trim_end_matches('/');
    match protocol {
        OtlpProtocol::Grpc => endpoint.to_owned(),
        OtlpProtocol::HttpProtobuf => {
            let after_scheme = endpoint
                .split_once("://")
                .map_or(endpoint, |(_, rest)| rest);
            if after_scheme.contains('/') {
                endpoint.to_owned()
            } else {
                format!("{endpoint}/v1/traces")
            }
        }
    }
}

/// Builds the tracer provider that names every span's `service.name`
/// `service`. Must run inside the tokio runtime its batches are sent on.
pub fn provider(
    service: &str,
    endpoint: &str,
    protocol: OtlpProtocol,
) -> Result<SdkTracerProvider, opentelemetry_otlp::ExporterBuildError> {
    let url = traces_url(endpoint, protocol);
    let exporter = match protocol {
        OtlpProtocol::Grpc => SpanExporter::builder()
            .with_tonic()
            .with_endpoint(url)
            .build()?,
        OtlpProtocol::HttpProtobuf => SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(url)
            .build()?,
    };
    let resource = Resource::builder()
        .with_service_name(service.to_owned())
        .build();
    Ok(SdkTracerProvider::builder()
        .with_span_processor(BatchSpanProcessor::builder(exporter, Tokio).build())
        .with_resource(resource)
        .build())
}

/// A tracer of `provider` for the `tracing` bridge.
pub fn tracer(provider: &SdkTracerProvider) -> opentelemetry_sdk::trace::Tracer {
    provider.tracer("berth")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_endpoints_get_the_traces_path() {
        let http = OtlpProtocol::HttpProtobuf;
        assert_eq!(
            traces_url("http://jaeger:4318", http),
            "http://jaeger:4318/v1/traces"
        );
        assert_eq!(
            traces_url("http://jaeger:4318/", http),
            "http://jaeger:4318/v1/traces"
        );
        assert_eq!(
            traces_url("http://c:4318/custom/traces", http),
            "http://c:4318/custom/traces"
        );
        assert_eq!(
            traces_url("http://jaeger:4317", OtlpProtocol::Grpc),
            "http://jaeger:4317"
        );
    }
}
