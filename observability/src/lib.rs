//! One place that sets up logging for every berth binary, so all components
//! log the same way and honour `RUST_LOG`, and the Kubernetes Events every
//! component (controllers, node agents) records for `kubectl describe`.
//! The Prometheus registries their `/metrics` endpoints serve live in
//! [`metrics`]; trace export joins here.
#![warn(missing_docs)]

pub mod events;
pub mod metrics;

use tracing_subscriber::EnvFilter;

/// Installs the global log subscriber: `RUST_LOG` if set, else `default_filter`.
/// Safe to call more than once (later calls are ignored).
pub fn init_logging(default_filter: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, never in log files or pipes.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}
