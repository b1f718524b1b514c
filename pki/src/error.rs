//! Why PKI material could not be made, loaded or read.

use std::path::PathBuf;

/// Why the PKI could not be created or loaded.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// Reading or writing a file under the data directory failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Generating or parsing a certificate failed.
    #[error("certificate error: {0}")]
    Certificate(#[from] rcgen::Error),
    /// A PEM text is not an X.509 certificate.
    #[error("not a PEM X.509 certificate: {0}")]
    NotACertificate(String),
}
