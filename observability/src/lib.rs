//! One place that sets up logs and traces for every berth binary, so all
//! components log the same way, honour `RUST_LOG` and export spans to the
//! same place, and the Kubernetes Events every component (controllers, node
//! agents) records for `kubectl describe`. The Prometheus registries their
//! `/metrics` endpoints serve live in [`metrics`].
#![warn(missing_docs)]

pub mod events;
pub mod metrics;
pub mod otlp;
pub mod propagation;
pub mod workqueue;

use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{filter, EnvFilter, Layer};

pub use otlp::OtlpProtocol;

/// How log lines are written to stderr.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One human-readable line per event.
    #[default]
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

static FORMAT: std::sync::OnceLock<LogFormat> = std::sync::OnceLock::new();

/// The format [`init`] installed, so a command prints its human-only
/// banners to stderr only when they cannot break a JSON log stream.
pub fn log_format() -> LogFormat {
    FORMAT.get().copied().unwrap_or_default()
}

/// The logging and tracing flags every berth command accepts.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct TelemetryArgs {
    /// Log line format.
    #[arg(long, global = true, value_enum, env = "BERTH_LOG_FORMAT", default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Export spans over OTLP to this endpoint (e.g. http://localhost:4318);
    /// tracing is off when neither this nor the variable is set.
    #[arg(long, global = true, env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
    /// The OTLP transport.
    #[arg(
        long,
        global = true,
        value_enum,
        env = "OTEL_EXPORTER_OTLP_PROTOCOL",
        default_value = "http/protobuf"
    )]
    pub otlp_protocol: OtlpProtocol,
}

/// Keeps the span exporter alive; [`Telemetry::shutdown`] flushes the last
/// batch before the process exits.
#[must_use = "dropping it without shutdown loses the last spans"]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Sends the spans still queued and stops the exporter.
    pub async fn shutdown(self) {
        if let Some(provider) = self.provider {
            // The batch processor's shutdown blocks until its task on the runtime drained.
            let _ = tokio::task::spawn_blocking(move || provider.shutdown()).await;
        }
    }
}

/// Only berth's own spans (requests, controller passes, binds, pod starts)
/// are exported, not the libraries' (kube, hyper, tonic).
fn is_berth_span(metadata: &tracing::Metadata<'_>) -> bool {
    metadata.is_span()
        && metadata.level() <= &tracing::Level::INFO
        && metadata.target().starts_with("berth")
}

/// Installs the global log subscriber (`RUST_LOG` if set, else
/// `default_filter`) and, when an OTLP endpoint is configured, the span
/// exporter with `service.name` = `service`. Must run inside a tokio runtime.
pub fn init(service: &str, default_filter: &str, args: &TelemetryArgs) -> Telemetry {
    let log_filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    // Colour codes only for a person at a terminal, never in log files or pipes.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    // `RUST_LOG` picks log lines only: exported spans do not depend on it.
    let fmt = match args.log_format {
        LogFormat::Text => fmt.with_filter(log_filter).boxed(),
        LogFormat::Json => fmt.json().with_filter(log_filter).boxed(),
    };
    let mut provider = None;
    let mut build_error = None;
    let otel = match args.otlp_endpoint.as_deref().filter(|e| !e.is_empty()) {
        Some(endpoint) => match otlp::provider(service, endpoint, args.otlp_protocol) {
            Ok(p) => {
                let layer = tracing_opentelemetry::layer()
                    .with_tracer(otlp::tracer(&p))
                    .with_filter(filter::filter_fn(is_berth_span));
                provider = Some(p);
                Some(layer)
            }
            Err(e) => {
                build_error = Some(e);
                None
            }
        },
        None => None,
    };
    let installed = tracing_subscriber::registry()
        .with(fmt)
        .with(otel)
        .try_init()
        .is_ok();
    if let Some(e) = build_error {
        tracing::warn!(error = %e, "trace export is off: the OTLP exporter could not be built");
    }
    if installed {
        let _ = FORMAT.set(args.log_format);
    }
    if installed && provider.is_some() {
        propagation::set_enabled();
    }
    Telemetry { provider }
}
