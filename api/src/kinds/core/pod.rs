//! Pods: upstream's defaults (pod spec, phase, QoS class), validation (the
//! spec on create, the few mutable fields on update), graceful deletion for
//! pods bound to a node, the `kubectl get pods` columns and field selectors.

pub mod spec;
pub mod tolerations;

use serde_json::{json, Value};

use super::super::{obj_mut, set_default, KindRules};
use crate::field::FieldCause;
use crate::table::print::{age, array_at, int_at, or_none, str_at};
use crate::table::{col, Column, NAME};

/// The rules of `core/v1` Pod.
#[derive(Debug, Clone, Copy, Default)]
pub struct Pod;

impl KindRules for Pod {
    fn default(&self, obj: &mut Value) {
        spec::default_pod_spec(obj_mut(obj, "spec"));
        let status = obj_mut(obj, "status");
        set_default(status, "phase", json!("Pending"));
        let qos = spec::qos_class(obj.get("spec").unwrap_or(&Value::Null));
        set_default(obj_mut(obj, "status"), "qosClass", json!(qos));
    }

    fn validate(&self, obj: &Value) -> Vec<FieldCause> {
        spec::validate_pod_spec("spec", obj.get("spec"))
    }

    fn validate_update(&self, old: &Value, new: &Value) -> Vec<FieldCause> {
        if mutable_pod_fields_only(old.get("spec")) != mutable_pod_fields_only(new.get("spec")) {
            vec![FieldCause::forbidden("spec", POD_UPDATE_FORBIDDEN)]
        } else {
            Vec::new()
        }
    }

    /// Pods on a node get a grace period (the agent finishes the deletion); others go at once.
    fn deletion_grace_period(&self, obj: &Value, requested: Option<i64>) -> Option<i64> {
        let scheduled = obj
            .pointer("/spec/nodeName")
            .and_then(Value::as_str)
            .is_some_and(|n| !n.is_empty());
        let phase = obj
            .pointer("/status/phase")
            .and_then(Value::as_str)
            .unwrap_or("");
        if !scheduled || matches!(phase, "Succeeded" | "Failed") {
            return Some(0);
        }
        let default = obj
            .pointer("/spec/terminationGracePeriodSeconds")
            .and_then(Value::as_i64)
            .unwrap_or(30);
        Some(requested.unwrap_or(default).max(0))
    }

    fn columns(&self) -> Vec<Column> {
        vec![
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
            crate::table::AGE,
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
        ]
    }

    fn cells(&self, obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        let mut row = vec![crate::table::name_cell(obj)];
        row.extend(pod_cells(obj, now));
        row
    }

    fn field_labels(&self) -> &'static [&'static str] {
        &[
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        ]
    }
}

/// Upstream's wording for a pod update that touches an immutable field.
const POD_UPDATE_FORBIDDEN: &str = "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

/// A pod spec with the fields an update may change blanked out, for comparison.
fn mutable_pod_fields_only(spec: Option<&Value>) -> Value {
    let mut spec = spec.cloned().unwrap_or(Value::Null);
    if let Some(map) = spec.as_object_mut() {
        for field in [
            "activeDeadlineSeconds",
            "tolerations",
            "terminationGracePeriodSeconds",
            "schedulingGates",
        ] {
            map.remove(field);
        }
        for list in ["containers", "initContainers"] {
            for container in map
                .get_mut(list)
                .and_then(Value::as_array_mut)
                .into_iter()
                .flatten()
            {
                if let Some(c) = container.as_object_mut() {
                    c.remove("image");
                }
            }
        }
    }
    spec
}

/// Upstream's pod STATUS column: phase, refined by reasons, init progress and deletion.
fn pod_status(pod: &Value) -> String {
    let mut reason = str_at(pod, &["status", "reason"])
        .or_else(|| str_at(pod, &["status", "phase"]))
        .unwrap_or("Pending")
        .to_owned();
    let init_statuses = array_at(pod, &["status", "initContainerStatuses"]);
    let init_total = array_at(pod, &["spec", "initContainers"]).len();
    let mut initializing = false;
    for (i, status) in init_statuses.iter().enumerate() {
        if let Some(term) = status.pointer("/state/terminated") {
            if int_at(term, &["exitCode"]) == 0 {
                continue;
            }
            reason = match str_at(term, &["reason"]) {
                Some(r) if !r.is_empty() => format!("Init:{r}"),
                _ => format!("Init:ExitCode:{}", int_at(term, &["exitCode"])),
            };
        } else if let Some(r) =
            str_at(status, &["state", "waiting", "reason"]).filter(|r| *r != "PodInitializing")
        {
            reason = format!("Init:{r}");
        } else {
            reason = format!("Init:{i}/{init_total}");
        }
        initializing = true;
        break;
    }
    if !initializing {
        let mut has_running = false;
        for status in array_at(pod, &["status", "containerStatuses"]).iter().rev() {
            if let Some(r) =
                str_at(status, &["state", "waiting", "reason"]).filter(|r| !r.is_empty())
            {
                reason = r.to_owned();
            } else if let Some(term) = status.pointer("/state/terminated") {
                reason = match str_at(term, &["reason"]) {
                    Some(r) if !r.is_empty() => r.to_owned(),
                    _ if term.get("signal").and_then(Value::as_i64).unwrap_or(0) != 0 => {
                        format!("Signal:{}", int_at(term, &["signal"]))
                    }
                    _ => format!("ExitCode:{}", int_at(term, &["exitCode"])),
                };
            } else if status.pointer("/state/running").is_some()
                && status
                    .get("ready")
                    .and_then(Value::as_bool)
                    .unwrap_or(false)
            {
                has_running = true;
            }
        }
        if reason == "Completed" && has_running {
            reason = "Running".to_owned();
        }
    }
    if pod.pointer("/metadata/deletionTimestamp").is_some() {
        reason = if str_at(pod, &["status", "reason"]) == Some("NodeLost") {
            "Unknown".to_owned()
        } else {
            "Terminating".to_owned()
        };
    }
    reason
}

fn pod_cells(pod: &Value, now: jiff::Timestamp) -> Vec<Value> {
    let statuses = array_at(pod, &["status", "containerStatuses"]);
    let total = array_at(pod, &["spec", "containers"]).len();
    let ready = statuses
        .iter()
        .filter(|s| s.get("ready").and_then(Value::as_bool).unwrap_or(false))
        .count();
    let restarts: i64 = statuses.iter().map(|s| int_at(s, &["restartCount"])).sum();
    let gates = array_at(pod, &["spec", "readinessGates"]);
    let gates_cell = if gates.is_empty() {
        "<none>".to_owned()
    } else {
        let conditions = array_at(pod, &["status", "conditions"]);
        let met = gates
            .iter()
            .filter(|g| {
                conditions.iter().any(|c| {
                    str_at(c, &["type"]) == str_at(g, &["conditionType"])
                        && str_at(c, &["status"]) == Some("True")
                })
            })
            .count();
        format!("{met}/{}", gates.len())
    };
    vec![
        json!(format!("{ready}/{total}")),
        json!(pod_status(pod)),
        json!(restarts.to_string()),
        json!(age(pod, &["metadata", "creationTimestamp"], now)),
        json!(or_none(
            str_at(pod, &["status", "podIP"])
                .unwrap_or_default()
                .to_owned()
        )),
        json!(or_none(
            str_at(pod, &["spec", "nodeName"])
                .unwrap_or_default()
                .to_owned()
        )),
        json!(or_none(
            str_at(pod, &["status", "nominatedNodeName"])
                .unwrap_or_default()
                .to_owned()
        )),
        json!(gates_cell),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> jiff::Timestamp {
        "2026-01-01T12:00:00Z".parse().unwrap()
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
        let row = Pod.cells(&pod, now());
        assert_eq!(row.len(), Pod.columns().len());
        assert_eq!(row[0], "web");
        assert_eq!(row[1], "1/2");
        assert_eq!(row[2], "CrashLoopBackOff");
        assert_eq!(row[3], "3");
        assert_eq!(row[4], "2m");
        assert_eq!(row[5], "10.42.0.5");
        assert_eq!(row[6], "n1");
    }

    #[test]
    fn pod_updates_may_change_only_images_and_a_few_fields() {
        let old = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a", "image": "x:1"}]}});
        let mut image = old.clone();
        image["spec"]["containers"][0]["image"] = json!("x:2");
        assert!(Pod.validate_update(&old, &image).is_empty());
        let mut command = old.clone();
        command["spec"]["containers"][0]["command"] = json!(["sh"]);
        let causes = Pod.validate_update(&old, &command);
        assert_eq!(causes[0].field, "spec");
        assert!(causes[0]
            .message
            .starts_with("Forbidden: pod updates may not change fields other than"));
    }
}
