//! The runtime seam wrapped once so that every call the agent makes to its
//! runtime (containerd's or the simulated one) is counted and timed in
//! `kubelet_runtime_operations_*`, whichever part of the agent makes it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::KubeletMetrics;
use crate::runtime::{
    ExecOutput, PodSandboxConfig, PodState, Runtime, RuntimeError, RuntimeEvent, StreamRequest,
};

/// A [`Runtime`] that records each call of `inner` in `metrics`.
pub struct InstrumentedRuntime {
    inner: Arc<dyn Runtime>,
    metrics: KubeletMetrics,
}

impl InstrumentedRuntime {
    /// Wraps `inner`, recording into `metrics`.
    pub fn new(inner: Arc<dyn Runtime>, metrics: KubeletMetrics) -> Self {
        Self { inner, metrics }
    }

    async fn timed<T>(
        &self,
        operation_type: &str,
        call: impl std::future::Future<Output = Result<T, RuntimeError>>,
    ) -> Result<T, RuntimeError> {
        let started = Instant::now();
        let result = call.await;
        self.metrics
            .observe_runtime_operation(operation_type, started.elapsed(), result.is_err());
        result
    }
}

#[async_trait]
impl Runtime for InstrumentedRuntime {
    fn version(&self) -> String {
        self.inner.version()
    }

    async fn update_pod_cidr(&self, cidr: &str) -> Result<(), RuntimeError> {
        self.timed("update_runtime_config", self.inner.update_pod_cidr(cidr))
            .await
    }

    async fn sync_pod(&self, pod: &PodSandboxConfig) -> Result<PodState, RuntimeError> {
        self.timed("sync_pod", self.inner.sync_pod(pod)).await
    }

    async fn kill_container(
        &self,
        uid: &str,
        container: &str,
        grace: Duration,
    ) -> Result<(), RuntimeError> {
        self.timed(
            "stop_container",
            self.inner.kill_container(uid, container, grace),
        )
        .await
    }

    async fn exec_sync(
        &self,
        uid: &str,
        container: &str,
        command: &[String],
        timeout: Duration,
    ) -> Result<ExecOutput, RuntimeError> {
        self.timed(
            "exec_sync",
            self.inner.exec_sync(uid, container, command, timeout),
        )
        .await
    }

    async fn streaming_url(&self, request: &StreamRequest) -> Result<String, RuntimeError> {
        let operation_type = match request {
            StreamRequest::Exec { .. } => "exec",
            StreamRequest::Attach { .. } => "attach",
            StreamRequest::PortForward { .. } => "port_forward",
        };
        self.timed(operation_type, self.inner.streaming_url(request))
            .await
    }

    async fn container_log(
        &self,
        uid: &str,
        container: &str,
        previous: bool,
    ) -> Result<Option<std::path::PathBuf>, RuntimeError> {
        self.timed(
            "container_status",
            self.inner.container_log(uid, container, previous),
        )
        .await
    }

    fn drain_events(&self, uid: &str) -> Vec<RuntimeEvent> {
        self.inner.drain_events(uid)
    }

    fn runs_processes(&self) -> bool {
        self.inner.runs_processes()
    }

    fn poll_interval(&self) -> Option<Duration> {
        self.inner.poll_interval()
    }

    fn next_change(&self, uid: &str) -> Option<Duration> {
        self.inner.next_change(uid)
    }

    async fn stop_pod(&self, uid: &str, grace: Duration) -> Result<(), RuntimeError> {
        self.timed("stop_podsandbox", self.inner.stop_pod(uid, grace))
            .await
    }

    async fn remove_pod(&self, uid: &str) -> Result<(), RuntimeError> {
        self.timed("remove_podsandbox", self.inner.remove_pod(uid))
            .await
    }

    async fn pod_state(&self, uid: &str) -> Result<Option<PodState>, RuntimeError> {
        self.timed("podsandbox_status", self.inner.pod_state(uid))
            .await
    }

    async fn list_pods(&self) -> Result<Vec<PodState>, RuntimeError> {
        self.timed("list_podsandbox", self.inner.list_pods()).await
    }

    async fn usage(&self) -> Result<Vec<crate::stats::PodUsage>, RuntimeError> {
        self.timed("list_container_stats", self.inner.usage()).await
    }
}
