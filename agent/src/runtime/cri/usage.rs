//! Usage of the containers containerd runs: each running container's init
//! process is found through CRI's verbose ContainerStatus (`info.pid`), and
//! its cgroup's counters are read as cAdvisor reads them. Reads only.

use std::collections::HashMap;

use k8s_cri::v1 as cri;

use super::observe::{timestamp, CONTAINER_RUNNING};
use super::translate::{CONTAINER_NAME, POD_NAME, POD_NAMESPACE, POD_UID};
use super::{cri_error, CriRuntime};
use crate::runtime::RuntimeError;
use crate::stats::{cgroup, ContainerUsage, PodUsage};

/// The init process ID in a verbose ContainerStatus's `info` (containerd
/// puts a JSON document there whose `pid` is the container's first process).
pub fn pid_from_info(info: &HashMap<String, String>) -> Option<u32> {
    let document: serde_json::Value = serde_json::from_str(info.get("info")?).ok()?;
    document
        .get("pid")?
        .as_u64()
        .and_then(|pid| u32::try_from(pid).ok())
        .filter(|pid| *pid > 0)
}

impl CriRuntime {
    /// Every running container's usage, grouped by pod.
    pub(super) async fn container_usage(&self) -> Result<Vec<PodUsage>, RuntimeError> {
        let mut client = self.runtime.clone();
        let sandboxes: HashMap<String, cri::PodSandbox> = client
            .list_pod_sandbox(cri::ListPodSandboxRequest { filter: None })
            .await
            .map_err(cri_error("ListPodSandbox"))?
            .into_inner()
            .items
            .into_iter()
            .map(|s| (s.id.clone(), s))
            .collect();
        let running = client
            .list_containers(cri::ListContainersRequest {
                filter: Some(cri::ContainerFilter {
                    state: Some(cri::ContainerStateValue {
                        state: CONTAINER_RUNNING,
                    }),
                    ..cri::ContainerFilter::default()
                }),
            })
            .await
            .map_err(cri_error("ListContainers"))?
            .into_inner()
            .containers;
        let mut pods: HashMap<String, PodUsage> = HashMap::new();
        for container in running {
            let (Some(uid), Some(name)) = (
                container.labels.get(POD_UID),
                container.labels.get(CONTAINER_NAME),
            ) else {
                continue;
            };
            let status = match client
                .container_status(cri::ContainerStatusRequest {
                    container_id: container.id.clone(),
                    verbose: true,
                })
                .await
            {
                Ok(reply) => reply.into_inner(),
                // Gone between the list and now.
                Err(status) if status.code() == tonic::Code::NotFound => continue,
                Err(status) => return Err(cri_error("ContainerStatus")(status)),
            };
            let Some(pid) = pid_from_info(&status.info) else {
                continue;
            };
            let usage = match cgroup::read_process(pid) {
                Ok(usage) => usage,
                Err(e) => {
                    tracing::debug!(container = %container.id, pid, error = %e, "container usage unreadable");
                    continue;
                }
            };
            let started_at = status
                .status
                .as_ref()
                .and_then(|s| timestamp(s.started_at))
                .or_else(|| timestamp(container.created_at))
                .unwrap_or_default();
            let sandbox = sandboxes.get(&container.pod_sandbox_id);
            let pod = pods.entry(uid.clone()).or_insert_with(|| PodUsage {
                uid: uid.clone(),
                namespace: container
                    .labels
                    .get(POD_NAMESPACE)
                    .cloned()
                    .unwrap_or_default(),
                name: container.labels.get(POD_NAME).cloned().unwrap_or_default(),
                started_at: sandbox
                    .and_then(|s| timestamp(s.created_at))
                    .unwrap_or(started_at),
                containers: Vec::new(),
            });
            pod.containers.push(ContainerUsage {
                name: name.clone(),
                started_at,
                usage,
            });
        }
        let mut pods: Vec<PodUsage> = pods.into_values().collect();
        pods.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        for pod in &mut pods {
            pod.containers.sort_by(|a, b| a.name.cmp(&b.name));
        }
        Ok(pods)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pid_comes_from_containerds_verbose_info() {
        let info = |text: &str| HashMap::from([("info".to_owned(), text.to_owned())]);
        assert_eq!(
            pid_from_info(&info(r#"{"sandboxID":"x","pid":4242}"#)),
            Some(4242)
        );
        assert_eq!(pid_from_info(&info(r#"{"pid":0}"#)), None);
        assert_eq!(pid_from_info(&info("not json")), None);
        assert_eq!(pid_from_info(&HashMap::new()), None);
    }
}
