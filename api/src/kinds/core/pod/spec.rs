//! The pod spec's own rules, shared by every kind that carries a pod template
//! (Deployment, ReplicaSet, and the workloads to come): upstream's defaults,
//! the validation of containers, and the QoS class.

use serde_json::{json, Map, Value};

use crate::field::FieldCause;
use crate::kinds::{obj_mut, set_default};
use crate::validation as names;

/// Defaults of `core/v1.PodSpec` and its containers.
pub fn default_pod_spec(spec: &mut Map<String, Value>) {
    set_default(spec, "restartPolicy", json!("Always"));
    set_default(spec, "terminationGracePeriodSeconds", json!(30));
    set_default(spec, "dnsPolicy", json!("ClusterFirst"));
    set_default(spec, "securityContext", json!({}));
    set_default(spec, "schedulerName", json!("default-scheduler"));
    for list in ["containers", "initContainers"] {
        if let Some(containers) = spec.get_mut(list).and_then(Value::as_array_mut) {
            for container in containers.iter_mut().filter_map(Value::as_object_mut) {
                default_container(container);
            }
        }
    }
}

fn default_container(c: &mut Map<String, Value>) {
    let image = c.get("image").and_then(Value::as_str).unwrap_or("");
    let policy = if image_tag_is_latest(image) {
        "Always"
    } else {
        "IfNotPresent"
    };
    set_default(c, "imagePullPolicy", json!(policy));
    set_default(c, "terminationMessagePath", json!("/dev/termination-log"));
    set_default(c, "terminationMessagePolicy", json!("File"));
    set_default(c, "resources", json!({}));
    if let Some(ports) = c.get_mut("ports").and_then(Value::as_array_mut) {
        for port in ports.iter_mut().filter_map(Value::as_object_mut) {
            set_default(port, "protocol", json!("TCP"));
        }
    }
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(probe) = c.get_mut(probe).and_then(Value::as_object_mut) {
            set_default(probe, "timeoutSeconds", json!(1));
            set_default(probe, "periodSeconds", json!(10));
            set_default(probe, "successThreshold", json!(1));
            set_default(probe, "failureThreshold", json!(3));
            if let Some(http) = probe.get_mut("httpGet").and_then(Value::as_object_mut) {
                set_default(http, "path", json!("/"));
                set_default(http, "scheme", json!("HTTP"));
            }
        }
    }
}

/// Upstream pulls `:latest` (or untagged, undigested) images every time.
fn image_tag_is_latest(image: &str) -> bool {
    if image.contains('@') {
        return false;
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.split_once(':') {
        Some((_, tag)) => tag == "latest",
        None => true,
    }
}

/// Upstream's QoS class: Guaranteed, Burstable or BestEffort.
pub fn qos_class(spec: &Value) -> &'static str {
    let containers: Vec<&Value> = ["containers", "initContainers"]
        .iter()
        .filter_map(|k| spec.get(k).and_then(Value::as_array))
        .flatten()
        .collect();
    let mut any_set = false;
    let mut guaranteed = !containers.is_empty();
    for c in &containers {
        let requests = c.pointer("/resources/requests").and_then(Value::as_object);
        let limits = c.pointer("/resources/limits").and_then(Value::as_object);
        if requests.is_some_and(|r| !r.is_empty()) || limits.is_some_and(|l| !l.is_empty()) {
            any_set = true;
        }
        for resource in ["cpu", "memory"] {
            let limit = limits.and_then(|l| l.get(resource));
            let request = requests.and_then(|r| r.get(resource)).or(limit);
            if limit.is_none() || request != limit {
                guaranteed = false;
            }
        }
    }
    if !any_set {
        "BestEffort"
    } else if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

/// Defaults of a pod template (`spec.template` of a workload).
pub fn default_template(spec: &mut Map<String, Value>) {
    let template = spec.entry("template").or_insert_with(|| json!({}));
    if template.is_object() {
        default_pod_spec(obj_mut(template, "spec"));
        obj_mut(template, "metadata");
    }
}

/// Upstream's `ValidatePodSpec` (the parts berth checks) of the spec at `path`.
pub fn validate_pod_spec(path: &str, spec: Option<&Value>) -> Vec<FieldCause> {
    let mut causes = Vec::new();
    let containers = spec
        .and_then(|s| s.get("containers"))
        .and_then(Value::as_array);
    match containers {
        None => causes.push(FieldCause::required(format!("{path}.containers"), "")),
        Some(list) if list.is_empty() => {
            causes.push(FieldCause::required(format!("{path}.containers"), ""))
        }
        Some(list) => {
            let mut seen = std::collections::HashSet::new();
            for (i, c) in list.iter().enumerate() {
                let at = format!("{path}.containers[{i}]");
                match c.get("name").and_then(Value::as_str) {
                    None | Some("") => causes.push(FieldCause::required(format!("{at}.name"), "")),
                    Some(name) => {
                        for problem in names::is_dns1123_label(name) {
                            causes.push(FieldCause::invalid(
                                format!("{at}.name"),
                                &Value::String(name.to_owned()),
                                problem,
                            ));
                        }
                        if !seen.insert(name.to_owned()) {
                            causes.push(FieldCause::duplicate(
                                format!("{at}.name"),
                                &Value::String(name.to_owned()),
                            ));
                        }
                    }
                }
                if c.get("image")
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty)
                {
                    causes.push(FieldCause::required(format!("{at}.image"), ""));
                }
                for (j, port) in c
                    .get("ports")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .enumerate()
                {
                    let number = port
                        .get("containerPort")
                        .and_then(Value::as_i64)
                        .unwrap_or(0);
                    if !(1..=65535).contains(&number) {
                        causes.push(FieldCause::invalid(
                            format!("{at}.ports[{j}].containerPort"),
                            &Value::from(number),
                            "must be between 1 and 65535, inclusive",
                        ));
                    }
                }
                for (res_kind, map) in ["requests", "limits"].iter().filter_map(|k| {
                    c.pointer(&format!("/resources/{k}"))
                        .and_then(Value::as_object)
                        .map(|m| (k, m))
                }) {
                    for (resource, quantity) in map {
                        let text = quantity
                            .as_str()
                            .map(str::to_owned)
                            .unwrap_or_else(|| quantity.to_string());
                        if let Err(e) = crate::quantity::Quantity::parse(&text) {
                            causes.push(FieldCause::invalid(
                                format!("{at}.resources.{res_kind}[{resource}]"),
                                &Value::String(text.clone()),
                                e.to_string(),
                            ));
                        }
                    }
                }
            }
        }
    }
    if let Some(policy) = spec
        .and_then(|s| s.get("restartPolicy"))
        .and_then(Value::as_str)
    {
        if !matches!(policy, "Always" | "OnFailure" | "Never") {
            causes.push(FieldCause::not_supported(
                format!("{path}.restartPolicy"),
                &Value::String(policy.to_owned()),
                &["Always", "OnFailure", "Never"],
            ));
        }
    }
    causes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_pull_policy_depends_on_tag() {
        for (image, latest) in [
            ("nginx", true),
            ("nginx:latest", true),
            ("nginx:1.25", false),
            ("127.0.0.1:5000/web", true),
            ("127.0.0.1:5000/web:v1", false),
            ("a@sha256:abc", false),
        ] {
            assert_eq!(image_tag_is_latest(image), latest, "{image}");
        }
    }

    #[test]
    fn qos_classes() {
        let best = json!({"containers": [{"name": "a"}]});
        let burst =
            json!({"containers": [{"name": "a", "resources": {"requests": {"cpu": "100m"}}}]});
        let guaranteed = json!({"containers": [{"name": "a", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]});
        assert_eq!(qos_class(&best), "BestEffort");
        assert_eq!(qos_class(&burst), "Burstable");
        assert_eq!(qos_class(&guaranteed), "Guaranteed");
    }
}
