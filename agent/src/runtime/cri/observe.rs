//! What containerd has for a pod: its sandboxes and containers found by the
//! pod-UID label, each container's latest run per name, and the facts of
//! each run (start, exit) remembered once known, since they never change.

use std::collections::HashMap;
use std::net::IpAddr;

use jiff::Timestamp;
use k8s_cri::v1 as cri;

use super::translate::{CONTAINER_KIND, CONTAINER_NAME};
use crate::runtime::Termination;

/// CRI's PodSandboxState READY.
pub const SANDBOX_READY: i32 = 0;
/// CRI's ContainerState values.
pub const CONTAINER_CREATED: i32 = 0;
/// A running container.
pub const CONTAINER_RUNNING: i32 = 1;
/// An exited container.
pub const CONTAINER_EXITED: i32 = 2;

/// The facts of one container run.
#[derive(Debug, Clone)]
pub struct Run {
    /// The CRI container ID.
    pub id: String,
    /// Its attempt number (0 for the first run).
    pub attempt: u32,
    /// CRI's state value.
    pub state: i32,
    /// The resolved image, as the API's imageID shows it.
    pub image_ref: String,
    /// When it started, once it has.
    pub started_at: Option<Timestamp>,
    /// How it ended, once it has.
    pub termination: Option<Termination>,
}

impl Run {
    /// Whether it is running now.
    pub fn running(&self) -> bool {
        self.state == CONTAINER_RUNNING
    }
}

/// A container's runs, latest first.
pub type Runs = Vec<Run>;

/// The runs of one sandbox, by container name, split into init and regular.
#[derive(Debug, Default)]
pub struct Observed {
    /// Init containers' runs by name.
    pub init: HashMap<String, Runs>,
    /// Regular containers' runs by name.
    pub regular: HashMap<String, Runs>,
}

impl Observed {
    /// The latest run of init (or regular) container `name`.
    pub fn latest(&self, init: bool, name: &str) -> Option<&Run> {
        self.runs(init, name).first()
    }

    /// Every run of `name`, latest first.
    pub fn runs(&self, init: bool, name: &str) -> &[Run] {
        let map = if init { &self.init } else { &self.regular };
        map.get(name).map(Vec::as_slice).unwrap_or_default()
    }
}

/// A timestamp from CRI's nanoseconds since the epoch (0 when unset).
pub fn timestamp(nanos: i64) -> Option<Timestamp> {
    (nanos > 0)
        .then(|| Timestamp::from_nanosecond(i128::from(nanos)).ok())
        .flatten()
}

/// Upstream's reason for an exit when the runtime gives none.
fn exit_reason(status: &cri::ContainerStatus) -> String {
    if !status.reason.is_empty() {
        status.reason.clone()
    } else if status.exit_code == 0 {
        "Completed".to_owned()
    } else {
        "Error".to_owned()
    }
}

/// The run described by a CRI container status.
pub fn run_from_status(status: &cri::ContainerStatus, runtime_prefix: &str) -> Run {
    let started_at = timestamp(status.started_at);
    let termination = (status.state == CONTAINER_EXITED).then(|| Termination {
        container_id: format!("{runtime_prefix}{}", status.id),
        started_at: started_at.unwrap_or_else(|| timestamp(status.created_at).unwrap_or_default()),
        finished_at: timestamp(status.finished_at).unwrap_or_default(),
        exit_code: status.exit_code,
        reason: exit_reason(status),
        message: status.message.clone(),
    });
    Run {
        id: status.id.clone(),
        attempt: status.metadata.as_ref().map_or(0, |m| m.attempt),
        state: status.state,
        image_ref: status.image_ref.clone(),
        started_at,
        termination,
    }
}

/// Groups `runs` of the listed `containers` by kind and name, latest first.
pub fn group(containers: &[cri::Container], runs: &HashMap<String, Run>) -> Observed {
    let mut observed = Observed::default();
    for container in containers {
        let Some(run) = runs.get(&container.id) else {
            continue;
        };
        let name = container
            .labels
            .get(CONTAINER_NAME)
            .cloned()
            .or_else(|| container.metadata.as_ref().map(|m| m.name.clone()))
            .unwrap_or_default();
        let init = container
            .labels
            .get(CONTAINER_KIND)
            .is_some_and(|k| k == "init");
        let map = if init {
            &mut observed.init
        } else {
            &mut observed.regular
        };
        map.entry(name).or_default().push(run.clone());
    }
    for runs in observed
        .init
        .values_mut()
        .chain(observed.regular.values_mut())
    {
        runs.sort_by_key(|run| std::cmp::Reverse(run.attempt));
    }
    observed
}

/// The pod IP a sandbox status reports.
pub fn sandbox_ip(status: &cri::PodSandboxStatus) -> Option<IpAddr> {
    status.network.as_ref().and_then(|n| n.ip.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(id: &str, name: &str, init: bool) -> cri::Container {
        cri::Container {
            id: id.into(),
            labels: HashMap::from([
                (CONTAINER_NAME.to_owned(), name.to_owned()),
                (
                    CONTAINER_KIND.to_owned(),
                    if init { "init" } else { "regular" }.to_owned(),
                ),
            ]),
            ..cri::Container::default()
        }
    }

    fn status(id: &str, attempt: u32, state: i32, exit_code: i32) -> cri::ContainerStatus {
        cri::ContainerStatus {
            id: id.into(),
            metadata: Some(cri::ContainerMetadata {
                name: String::new(),
                attempt,
            }),
            state,
            created_at: 1_700_000_000_000_000_000,
            started_at: 1_700_000_001_000_000_000,
            finished_at: if state == CONTAINER_EXITED {
                1_700_000_002_000_000_000
            } else {
                0
            },
            exit_code,
            ..cri::ContainerStatus::default()
        }
    }

    #[test]
    fn runs_group_by_kind_and_name_latest_first() {
        let containers = [
            container("a0", "app", false),
            container("a1", "app", false),
            container("i0", "setup", true),
        ];
        let runs: HashMap<String, Run> = [
            status("a0", 0, CONTAINER_EXITED, 137),
            status("a1", 1, CONTAINER_RUNNING, 0),
            status("i0", 0, CONTAINER_EXITED, 0),
        ]
        .iter()
        .map(|s| (s.id.clone(), run_from_status(s, "containerd://")))
        .collect();
        let observed = group(&containers, &runs);
        let app = observed.runs(false, "app");
        assert_eq!(app.len(), 2);
        assert!(app[0].running());
        assert_eq!(app[0].attempt, 1);
        let crashed = app[1].termination.as_ref().unwrap();
        assert_eq!(crashed.exit_code, 137);
        assert_eq!(crashed.reason, "Error");
        assert_eq!(crashed.container_id, "containerd://a0");
        assert_eq!(crashed.finished_at.as_second(), 1_700_000_002);
        let setup = observed.latest(true, "setup").unwrap();
        assert_eq!(setup.termination.as_ref().unwrap().reason, "Completed");
        assert!(observed.latest(false, "setup").is_none());
    }
}
