//! Server-side `kubectl get` tables: the upstream columns per kind and the cell
//! values computed from an object, so kubectl prints what users know from
//! Kubernetes. Pure functions over JSON objects; the clock is passed in.

mod cells;

pub use cells::cells;

/// One table column, as `meta.k8s.io/v1` `TableColumnDefinition`.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    /// Header text (kubectl upper-cases it).
    pub name: &'static str,
    /// `string`, `integer`, `date`, …
    pub kind: &'static str,
    /// 0: always shown; 1: only with `-o wide`.
    pub priority: i32,
    /// Short description for `kubectl explain`-like tools.
    pub description: &'static str,
}

const fn col(
    name: &'static str,
    kind: &'static str,
    priority: i32,
    description: &'static str,
) -> Column {
    Column {
        name,
        kind,
        priority,
        description,
    }
}

const NAME: Column = col(
    "Name",
    "string",
    0,
    "Name must be unique within a namespace.",
);
const AGE: Column = col("Age", "string", 0, "Time since the object was created.");

/// The columns for a kind (falls back to Name and Age).
pub fn columns(kind: &str) -> Vec<Column> {
    match kind {
        "Pod" => vec![
            NAME,
            col(
                "Ready",
                "string",
                0,
                "The aggregate readiness state of this pod for accepting traffic.",
            ),
            col(
                "Status",
                "string",
                0,
                "The aggregate status of the containers in this pod.",
            ),
            col(
                "Restarts",
                "string",
                0,
                "The number of times the containers in this pod have been restarted.",
            ),
            AGE,
            col("IP", "string", 1, "IP address allocated to the pod."),
            col(
                "Node",
                "string",
                1,
                "Name of the Node this pod is assigned to.",
            ),
            col(
                "Nominated Node",
                "string",
                1,
                "Node this pod is nominated to run on after preemption.",
            ),
            col(
                "Readiness Gates",
                "string",
                1,
                "Readiness gates of the pod.",
            ),
        ],
        "Deployment" => vec![
            NAME,
            col(
                "Ready",
                "string",
                0,
                "Number of the pods ready out of the desired number.",
            ),
            col(
                "Up-to-date",
                "integer",
                0,
                "Total number of non-terminated pods with the latest template.",
            ),
            col("Available", "integer", 0, "Total number of available pods."),
            AGE,
            col(
                "Containers",
                "string",
                1,
                "Names of each container in the template.",
            ),
            col(
                "Images",
                "string",
                1,
                "Images referenced by each container in the template.",
            ),
            col("Selector", "string", 1, "Label query over pods."),
        ],
        "ReplicaSet" => vec![
            NAME,
            col("Desired", "integer", 0, "Number of desired pods."),
            col("Current", "integer", 0, "Number of actual replicas."),
            col("Ready", "integer", 0, "Number of ready replicas."),
            AGE,
            col(
                "Containers",
                "string",
                1,
                "Names of each container in the template.",
            ),
            col(
                "Images",
                "string",
                1,
                "Images referenced by each container in the template.",
            ),
            col("Selector", "string", 1, "Label query over pods."),
        ],
        "Service" => vec![
            NAME,
            col("Type", "string", 0, "How the service is exposed."),
            col(
                "Cluster-IP",
                "string",
                0,
                "IP address of the service inside the cluster.",
            ),
            col(
                "External-IP",
                "string",
                0,
                "External addresses of the service.",
            ),
            col("Port(s)", "string", 0, "Ports the service exposes."),
            AGE,
            col(
                "Selector",
                "string",
                1,
                "Label query over the pods that back the service.",
            ),
        ],
        "Node" => vec![
            NAME,
            col("Status", "string", 0, "The status of the node."),
            col("Roles", "string", 0, "The roles of the node."),
            AGE,
            col(
                "Version",
                "string",
                0,
                "Kubelet version reported by the node.",
            ),
            col("Internal-IP", "string", 1, "The node's internal address."),
            col("External-IP", "string", 1, "The node's external address."),
            col("OS-Image", "string", 1, "The operating system image."),
            col("Kernel-Version", "string", 1, "The kernel version."),
            col(
                "Container-Runtime",
                "string",
                1,
                "The container runtime and its version.",
            ),
        ],
        "Namespace" => vec![
            NAME,
            col("Status", "string", 0, "The phase of the namespace."),
            AGE,
        ],
        "ConfigMap" => vec![
            NAME,
            col("Data", "string", 0, "Number of data entries."),
            AGE,
        ],
        "Secret" => vec![
            NAME,
            col("Type", "string", 0, "The type of the secret."),
            col("Data", "string", 0, "Number of data entries."),
            AGE,
        ],
        "ServiceAccount" => vec![NAME, col("Secrets", "string", 0, "Number of secrets."), AGE],
        "Endpoints" => vec![
            NAME,
            col("Endpoints", "string", 0, "Endpoint addresses."),
            AGE,
        ],
        "EndpointSlice" => vec![
            NAME,
            col("AddressType", "string", 0, "Type of the addresses."),
            col("Ports", "string", 0, "Ports of the endpoints."),
            col("Endpoints", "string", 0, "Endpoint addresses."),
            AGE,
        ],
        "Lease" => vec![
            NAME,
            col("Holder", "string", 0, "The current holder of the lease."),
            AGE,
        ],
        "Event" => vec![
            col(
                "Last Seen",
                "string",
                0,
                "Time since the event was last seen.",
            ),
            col("Type", "string", 0, "Type of the event."),
            col("Reason", "string", 0, "Why the event happened."),
            col("Object", "string", 0, "The object the event is about."),
            col("Message", "string", 0, "What happened."),
        ],
        "NodePool" => vec![
            NAME,
            col("Desired", "integer", 0, "Nodes the pool should have."),
            col("Ready", "integer", 0, "Nodes of the pool that are Ready."),
            col("Min", "string", 0, "Autoscaling lower bound."),
            col("Max", "string", 0, "Autoscaling upper bound."),
            AGE,
            col("Class", "string", 1, "Machine class of the pool."),
        ],
        _ => vec![NAME, AGE],
    }
}

/// Upstream's `duration.HumanDuration`: `45s`, `3m20s`, `25m`, `5h10m`, `3d4h`, …
pub fn human_duration(seconds: i64) -> String {
    if seconds < -1 {
        return "<invalid>".to_owned();
    }
    if seconds < 0 {
        return "0s".to_owned();
    }
    if seconds < 120 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 180 {
        return format!("{minutes}m");
    }
    let hours = minutes / 60;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let (d, h) = (hours / 24, hours % 24);
        return if h == 0 {
            format!("{d}d")
        } else {
            format!("{d}d{h}h")
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    let years = hours / 24 / 365;
    if hours < 24 * 365 * 8 {
        let d = (hours / 24) % 365;
        return if d == 0 {
            format!("{years}y")
        } else {
            format!("{years}y{d}d")
        };
    }
    format!("{years}y")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> jiff::Timestamp {
        "2026-01-01T12:00:00Z".parse().unwrap()
    }

    #[test]
    fn human_duration_follows_upstream_buckets() {
        let cases = [
            (-5, "<invalid>"),
            (0, "0s"),
            (119, "119s"),
            (200, "3m20s"),
            (600, "10m"),
            (3 * 3600 + 600, "3h10m"),
            (30 * 3600, "30h"),
            (3 * 86400 + 4 * 3600, "3d4h"),
            (30 * 86400, "30d"),
        ];
        for (secs, want) in cases {
            assert_eq!(human_duration(secs), want, "{secs}s");
        }
    }

    #[test]
    fn every_kind_has_one_cell_per_column() {
        let obj = json!({"metadata": {"name": "x", "creationTimestamp": "2026-01-01T11:59:00Z"}});
        for kind in [
            "Pod",
            "Deployment",
            "ReplicaSet",
            "Service",
            "Node",
            "Namespace",
            "ConfigMap",
            "Secret",
            "ServiceAccount",
            "Endpoints",
            "EndpointSlice",
            "Lease",
            "Event",
            "NodePool",
            "Other",
        ] {
            assert_eq!(
                cells(kind, &obj, now()).len(),
                columns(kind).len(),
                "{kind}"
            );
        }
    }

    #[test]
    fn pod_row_shows_ready_status_and_restarts() {
        let pod = json!({
            "metadata": {"name": "web", "creationTimestamp": "2026-01-01T11:58:00Z"},
            "spec": {"nodeName": "n1", "containers": [{"name": "a"}, {"name": "b"}]},
            "status": {"phase": "Running", "podIP": "10.42.0.5", "containerStatuses": [
                {"name": "a", "ready": true, "restartCount": 1, "state": {"running": {}}},
                {"name": "b", "ready": false, "restartCount": 2, "state": {"waiting": {"reason": "CrashLoopBackOff"}}}
            ]}
        });
        let row = cells("Pod", &pod, now());
        assert_eq!(row[0], "web");
        assert_eq!(row[1], "1/2");
        assert_eq!(row[2], "CrashLoopBackOff");
        assert_eq!(row[3], "3");
        assert_eq!(row[4], "2m");
        assert_eq!(row[5], "10.42.0.5");
        assert_eq!(row[6], "n1");
    }

    #[test]
    fn service_row_shows_ports_and_pending_load_balancer() {
        let svc = json!({
            "metadata": {"name": "web", "creationTimestamp": "2026-01-01T11:00:00Z"},
            "spec": {"type": "LoadBalancer", "clusterIP": "10.43.0.10", "selector": {"app": "web"},
                     "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}]}
        });
        let row = cells("Service", &svc, now());
        assert_eq!(row[1], "LoadBalancer");
        assert_eq!(row[2], "10.43.0.10");
        assert_eq!(row[3], "<pending>");
        assert_eq!(row[4], "80:30080/TCP");
        assert_eq!(row[6], "app=web");
    }

    #[test]
    fn deployment_row_counts_replicas() {
        let deploy = json!({
            "metadata": {"name": "web", "creationTimestamp": "2026-01-01T11:00:00Z"},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"spec": {"containers": [{"name": "web", "image": "nginx:1"}]}}},
            "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}
        });
        let row = cells("Deployment", &deploy, now());
        assert_eq!(row[1], "2/3");
        assert_eq!(row[2], 3);
        assert_eq!(row[5], "web");
        assert_eq!(row[6], "nginx:1");
        assert_eq!(row[7], "app=web");
    }
}
