//! A gRPC channel to containerd's Unix socket: tonic speaks HTTP/2 over any
//! stream, so the endpoint's URI is a placeholder and the connector dials
//! the socket.

use std::path::{Path, PathBuf};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tonic::transport::{Channel, Endpoint};

use crate::runtime::RuntimeError;

/// Connects to the gRPC server listening on `socket`.
pub async fn channel(socket: &Path) -> Result<Channel, RuntimeError> {
    let path: PathBuf = socket.to_owned();
    Endpoint::from_static("http://containerd.invalid")
        .connect_timeout(Duration::from_secs(5))
        .connect_with_connector(tower::service_fn(move |_| {
            let path = path.clone();
            async move {
                let stream = tokio::net::UnixStream::connect(path).await?;
                Ok::<_, std::io::Error>(TokioIo::new(stream))
            }
        }))
        .await
        .map_err(|e| {
            RuntimeError::Backend(format!(
                "connecting to containerd at {}: {e}",
                socket.display()
            ))
        })
}
