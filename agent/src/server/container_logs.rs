//! `GET /containerLogs/NS/POD/CONTAINER`: finds the container run's CRI log
//! file through the runtime and streams it with kubelet's options. A
//! followed log ends when the client goes away or the run ends.

use std::path::PathBuf;
use std::sync::Arc;

use futures::StreamExt;
use http::{header, Response, StatusCode};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;

use super::handle::{Body, Refusal};
use crate::logs::{self, LogOptions, StillWriting};
use crate::runtime::{ContainerState, ContainerStatus, PodState, Runtime};

/// Answers a log request for `container` of `pod`.
pub(super) async fn serve(
    runtime: &Arc<dyn Runtime>,
    pod: &PodState,
    container: &ContainerState,
    previous: bool,
    options: LogOptions,
) -> Result<Response<Body>, Refusal> {
    let name = &container.name;
    let path = runtime.container_log(&pod.uid, name, previous).await?;
    let missing = || -> Refusal {
        if previous {
            return Refusal::not_found(format!(
                "previous terminated container {name:?} in pod {:?} not found",
                pod.name
            ));
        }
        match &container.status {
            ContainerStatus::Waiting { reason, .. } => Refusal::bad_request(format!(
                "container {name:?} in pod {:?} is waiting to start: {reason}",
                pod.name
            )),
            _ => Refusal::not_found(format!(
                "no log of container {name:?} in pod {:?} on this node",
                pod.name
            )),
        }
    };
    let Some(path) = path else {
        return Err(missing());
    };
    let still_writing = (options.follow && !previous).then(|| {
        still_writing(
            Arc::clone(runtime),
            pod.uid.clone(),
            name.clone(),
            path.clone(),
        )
    });
    let stream = match logs::open(&path, options, still_writing).await {
        Ok(stream) => stream,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(missing()),
        Err(e) => {
            return Err(Refusal::internal(format!(
                "reading the log of container {name:?} in pod {:?}: {e}",
                pod.name
            )))
        }
    };
    let body = StreamBody::new(stream.map(|chunk| chunk.map(Frame::data))).boxed_unsync();
    let mut response = Response::new(body);
    *response.status_mut() = StatusCode::OK;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain"),
    );
    Ok(response)
}

/// Whether the run writing `path` is still going: the container runs and
/// its current log is still that file. Runtime errors count as "still
/// going", so a passing hiccup does not cut a followed log.
fn still_writing(
    runtime: Arc<dyn Runtime>,
    uid: String,
    container: String,
    path: PathBuf,
) -> StillWriting {
    Box::new(move || {
        let (runtime, uid, container, path) = (
            Arc::clone(&runtime),
            uid.clone(),
            container.clone(),
            path.clone(),
        );
        Box::pin(async move {
            let running = match runtime.pod_state(&uid).await {
                Ok(Some(pod)) => pod
                    .containers
                    .iter()
                    .chain(&pod.init_containers)
                    .find(|c| c.name == container)
                    .is_some_and(|c| matches!(c.status, ContainerStatus::Running { .. })),
                Ok(None) => false,
                Err(_) => return true,
            };
            running
                && match runtime.container_log(&uid, &container, false).await {
                    Ok(current) => current.as_deref() == Some(path.as_path()),
                    Err(_) => true,
                }
        })
    })
}
