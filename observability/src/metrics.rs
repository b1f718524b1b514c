//! The Prometheus registries berth's endpoints serve.
//!
//! Every component registers its metrics, under the upstream Kubernetes name
//! where one exists, in the [`MetricsRegistry`] of the endpoint that serves
//! it: the API server's `/metrics` (which in `berth server` also carries the
//! scheduler's and the controllers', as they run in its process) or an
//! agent's kubelet port. Keeping one registry per endpoint, not one per
//! process, means a test or `berth up` running several components in one
//! process still serves each endpoint's metrics once, so Prometheus never
//! counts a series twice.

mod process;
mod runtime;
pub mod serve;
mod text;

use std::sync::{Arc, RwLock};

use prometheus_client::collector::Collector;
use prometheus_client::registry::{Metric, Registry};

pub use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
pub use prometheus_client::metrics::counter::Counter;
pub use prometheus_client::metrics::family::Family;
pub use prometheus_client::metrics::gauge::Gauge;
pub use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
pub use prometheus_client::{collector, encoding};

/// The `Content-Type` of [`MetricsRegistry::encode`]'s output (OpenMetrics
/// text, which Prometheus asks for first and parses natively).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The `Content-Type` of [`MetricsRegistry::encode_text`]'s output
/// (Prometheus' classic text format).
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The metrics one endpoint serves; cheap to clone and share between the
/// components that feed it.
#[derive(Clone, Default)]
pub struct MetricsRegistry {
    inner: Arc<RwLock<Registry>>,
    /// Set by [`MetricsRegistry::not_recording`].
    off: bool,
}

impl std::fmt::Debug for MetricsRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsRegistry").finish_non_exhaustive()
    }
}

impl MetricsRegistry {
    /// A registry that already carries the `process_*` metrics of this
    /// process (CPU, memory, file descriptors, start time), as every
    /// upstream component's endpoint does, and, when made on a tokio
    /// runtime, that runtime's `tokio_*` figures.
    pub fn with_process_metrics() -> Self {
        let registry = Self::default();
        registry.register_collector(process::ProcessCollector);
        if let Some(runtime) = runtime::RuntimeCollector::current() {
            registry.register_collector(runtime);
        }
        registry
    }

    /// A registry its owner records nothing into, so a benchmark can
    /// measure what recording costs against the same server without it.
    pub fn not_recording() -> Self {
        Self {
            off: true,
            ..Self::default()
        }
    }

    /// Whether the owner should record into this registry at all.
    pub fn is_recording(&self) -> bool {
        !self.off
    }

    /// The registry of this process's control plane. `berth server` serves
    /// it on the API server's `/metrics`; the scheduler and the controllers
    /// register into it wherever they are started, so no registry handle
    /// has to be threaded through every controller.
    pub fn control_plane() -> &'static MetricsRegistry {
        static CONTROL_PLANE: std::sync::OnceLock<MetricsRegistry> = std::sync::OnceLock::new();
        CONTROL_PLANE.get_or_init(MetricsRegistry::with_process_metrics)
    }

    /// Registers `metric` under `name` and returns it, so the caller keeps a
    /// handle to update. For a counter, `name` is given without the
    /// `_total` suffix, which the encoder adds (`apiserver_request` is
    /// served as `apiserver_request_total`).
    pub fn register<M: Metric + Clone>(&self, name: &str, help: &str, metric: M) -> M {
        self.write().register(name, help, metric.clone());
        metric
    }

    /// Registers a collector asked for its values at every scrape, for
    /// metrics read from somewhere else (the store, the cgroups, NVML)
    /// rather than counted as they happen.
    pub fn register_collector(&self, collector: impl Collector) {
        self.write().register_collector(Box::new(collector));
    }

    /// The registry's metrics in the text format of [`CONTENT_TYPE`].
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let registry = self
            .inner
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // Writing to a String cannot fail; a collector's error ends the
        // output early, which the scraper reports.
        let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
        out
    }

    /// The registry's metrics in the classic text format of
    /// [`TEXT_CONTENT_TYPE`], for clients that do not accept OpenMetrics.
    pub fn encode_text(&self) -> String {
        text::from_openmetrics(&self.encode())
    }

    /// The metrics as a client's `Accept` header asks, with their
    /// `Content-Type`: OpenMetrics when it is listed (Prometheus lists it
    /// first), the classic text format otherwise, as upstream endpoints do.
    pub fn encode_for(&self, accept: &str) -> (&'static str, String) {
        negotiate(accept, self.encode())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Registry> {
        self.inner
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// `openmetrics` (an encoded registry, or a collector's output rendered
/// alike) in the format a client's `Accept` header asks for, with its
/// `Content-Type`: OpenMetrics when it is listed, else the classic text
/// format, as upstream's endpoints answer.
pub fn negotiate(accept: &str, openmetrics: String) -> (&'static str, String) {
    if accept.contains("application/openmetrics-text") {
        (CONTENT_TYPE, openmetrics)
    } else {
        (TEXT_CONTENT_TYPE, text::from_openmetrics(&openmetrics))
    }
}

/// Buckets in seconds for request latencies, as kube-apiserver's
/// `apiserver_request_duration_seconds` uses them (5 ms to 60 s).
pub const REQUEST_DURATION_BUCKETS: [f64; 21] = [
    0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0,
    10.0, 15.0, 20.0, 30.0,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
    struct Labels {
        verb: String,
    }

    #[test]
    fn a_counter_family_is_served_with_the_total_suffix_and_its_labels() {
        let registry = MetricsRegistry::default();
        let requests = registry.register(
            "apiserver_request",
            "Requests by verb.",
            Family::<Labels, Counter>::default(),
        );
        requests
            .get_or_create(&Labels { verb: "GET".into() })
            .inc_by(3);
        let text = registry.encode();
        assert!(text.contains("# TYPE apiserver_request counter"), "{text}");
        assert!(
            text.contains("apiserver_request_total{verb=\"GET\"} 3"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    #[test]
    fn openmetrics_goes_to_scrapers_that_ask_for_it_and_text_to_the_rest() {
        let body = "# TYPE up gauge\nup 1\n# EOF\n".to_owned();
        let prometheus =
            "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5";
        assert_eq!(
            negotiate(prometheus, body.clone()),
            (CONTENT_TYPE, body.clone())
        );
        assert_eq!(
            negotiate("application/json, */*", body),
            (TEXT_CONTENT_TYPE, "# TYPE up gauge\nup 1\n".to_owned())
        );
    }

    #[test]
    fn process_metrics_describe_this_process() {
        let text = MetricsRegistry::with_process_metrics().encode();
        for name in [
            "process_cpu_seconds_total ",
            "process_resident_memory_bytes ",
            "process_open_fds ",
            "process_start_time_seconds ",
        ] {
            let line = text
                .lines()
                .find(|line| line.starts_with(name))
                .unwrap_or_else(|| panic!("no {name} in {text}"));
            let value: f64 = line[name.len()..].parse().expect(line);
            // A test process may not have used a whole clock tick of CPU yet.
            let floor_ok = if name.starts_with("process_cpu") {
                value >= 0.0
            } else {
                value > 0.0
            };
            assert!(floor_ok, "{line}");
        }
    }
}
