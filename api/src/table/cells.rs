//! The cells of one table row per kind: upstream's printers (pod STATUS,
//! service EXTERNAL-IP, node ROLES, …) as pure functions over JSON objects.

use serde_json::{json, Value};

use super::human_duration;

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_str()
}

fn int_at(v: &Value, path: &[&str]) -> i64 {
    path.iter()
        .try_fold(v, |v, k| v.get(k))
        .and_then(Value::as_i64)
        .unwrap_or(0)
}

fn array_at<'a>(v: &'a Value, path: &[&str]) -> &'a [Value] {
    path.iter()
        .try_fold(v, |v, k| v.get(k))
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn count_map(v: &Value, path: &[&str]) -> usize {
    path.iter()
        .try_fold(v, |v, k| v.get(k))
        .and_then(Value::as_object)
        .map_or(0, |m| m.len())
}

fn or_none(s: String) -> String {
    if s.is_empty() {
        "<none>".to_owned()
    } else {
        s
    }
}

fn age(obj: &Value, path: &[&str], now: jiff::Timestamp) -> String {
    match str_at(obj, path).and_then(|t| t.parse::<jiff::Timestamp>().ok()) {
        Some(t) => human_duration(now.as_second() - t.as_second()),
        None => "<unknown>".to_owned(),
    }
}

fn containers_and_images(template_spec: &Value) -> (String, String) {
    let containers = array_at(template_spec, &["containers"]);
    let names: Vec<&str> = containers
        .iter()
        .filter_map(|c| str_at(c, &["name"]))
        .collect();
    let images: Vec<&str> = containers
        .iter()
        .filter_map(|c| str_at(c, &["image"]))
        .collect();
    (names.join(","), images.join(","))
}

fn selector_string(selector: Option<&Value>) -> String {
    let Some(selector) = selector else {
        return "<none>".to_owned();
    };
    let mut parts = Vec::new();
    if let Some(labels) = selector.get("matchLabels").and_then(Value::as_object) {
        for (k, v) in labels {
            parts.push(format!("{k}={}", v.as_str().unwrap_or_default()));
        }
    }
    for expr in array_at(selector, &["matchExpressions"]) {
        let key = str_at(expr, &["key"]).unwrap_or_default();
        let values: Vec<&str> = array_at(expr, &["values"])
            .iter()
            .filter_map(Value::as_str)
            .collect();
        match str_at(expr, &["operator"]).unwrap_or_default() {
            "In" => parts.push(format!("{key} in ({})", values.join(","))),
            "NotIn" => parts.push(format!("{key} notin ({})", values.join(","))),
            "Exists" => parts.push(key.to_owned()),
            "DoesNotExist" => parts.push(format!("!{key}")),
            _ => {}
        }
    }
    or_none(parts.join(","))
}

fn service_selector(svc: &Value) -> String {
    let parts: Vec<String> = svc
        .pointer("/spec/selector")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default();
    or_none(parts.join(","))
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

fn service_ports(svc: &Value) -> String {
    let ports: Vec<String> = array_at(svc, &["spec", "ports"])
        .iter()
        .map(|p| {
            let protocol = str_at(p, &["protocol"]).unwrap_or("TCP");
            let port = int_at(p, &["port"]);
            match p.get("nodePort").and_then(Value::as_i64) {
                Some(node_port) if node_port != 0 => format!("{port}:{node_port}/{protocol}"),
                _ => format!("{port}/{protocol}"),
            }
        })
        .collect();
    or_none(ports.join(","))
}

fn service_external_ip(svc: &Value) -> String {
    let external: Vec<&str> = array_at(svc, &["spec", "externalIPs"])
        .iter()
        .filter_map(Value::as_str)
        .collect();
    match str_at(svc, &["spec", "type"]).unwrap_or("ClusterIP") {
        "LoadBalancer" => {
            let mut ingress: Vec<String> = array_at(svc, &["status", "loadBalancer", "ingress"])
                .iter()
                .filter_map(|i| str_at(i, &["ip"]).or_else(|| str_at(i, &["hostname"])))
                .map(str::to_owned)
                .collect();
            ingress.extend(external.iter().map(|s| (*s).to_owned()));
            if ingress.is_empty() {
                "<pending>".to_owned()
            } else {
                ingress.join(",")
            }
        }
        "ExternalName" => str_at(svc, &["spec", "externalName"])
            .unwrap_or_default()
            .to_owned(),
        _ => or_none(external.join(",")),
    }
}

fn node_cells(node: &Value, now: jiff::Timestamp) -> Vec<Value> {
    let conditions = array_at(node, &["status", "conditions"]);
    let ready = conditions
        .iter()
        .find(|c| str_at(c, &["type"]) == Some("Ready"));
    let mut status = match ready.and_then(|c| str_at(c, &["status"])) {
        Some("True") => "Ready".to_owned(),
        Some(_) => "NotReady".to_owned(),
        None => "Unknown".to_owned(),
    };
    if node
        .pointer("/spec/unschedulable")
        .and_then(Value::as_bool)
        .unwrap_or(false)
    {
        status.push_str(",SchedulingDisabled");
    }
    let mut roles: Vec<String> = node
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(|labels| {
            labels
                .iter()
                .filter_map(|(k, v)| {
                    if let Some(role) = k.strip_prefix("node-role.kubernetes.io/") {
                        Some(role.to_owned())
                    } else if k == "kubernetes.io/role" {
                        v.as_str().map(str::to_owned)
                    } else {
                        None
                    }
                })
                .filter(|r| !r.is_empty())
                .collect()
        })
        .unwrap_or_default();
    roles.sort();
    let address = |kind: &str| {
        array_at(node, &["status", "addresses"])
            .iter()
            .find(|a| str_at(a, &["type"]) == Some(kind))
            .and_then(|a| str_at(a, &["address"]))
            .unwrap_or("<none>")
            .to_owned()
    };
    let info = |field: &str| {
        str_at(node, &["status", "nodeInfo", field])
            .map(str::to_owned)
            .unwrap_or_else(|| "<unknown>".to_owned())
    };
    vec![
        json!(status),
        json!(or_none(roles.join(","))),
        json!(age(node, &["metadata", "creationTimestamp"], now)),
        json!(str_at(node, &["status", "nodeInfo", "kubeletVersion"]).unwrap_or_default()),
        json!(address("InternalIP")),
        json!(address("ExternalIP")),
        json!(info("osImage")),
        json!(info("kernelVersion")),
        json!(info("containerRuntimeVersion")),
    ]
}

fn endpoints_cell(ep: &Value) -> String {
    let mut items = Vec::new();
    for subset in array_at(ep, &["subsets"]) {
        let ports: Vec<i64> = array_at(subset, &["ports"])
            .iter()
            .map(|p| int_at(p, &["port"]))
            .collect();
        for addr in array_at(subset, &["addresses"]) {
            let ip = str_at(addr, &["ip"]).unwrap_or_default();
            if ports.is_empty() {
                items.push(ip.to_owned());
            }
            for port in &ports {
                items.push(format!("{ip}:{port}"));
            }
        }
    }
    if items.len() > 3 {
        let more = items.len() - 3;
        items.truncate(3);
        return format!("{} + {more} more...", items.join(","));
    }
    or_none(items.join(","))
}

fn optional_int(v: &Value, path: &[&str]) -> String {
    path.iter()
        .try_fold(v, |v, k| v.get(k))
        .and_then(Value::as_i64)
        .map_or_else(|| "<none>".to_owned(), |n| n.to_string())
}

/// The cells of one row: the first is always the name (or Last Seen for events).
pub fn cells(kind: &str, obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
    let name = json!(str_at(obj, &["metadata", "name"]).unwrap_or_default());
    let created = json!(age(obj, &["metadata", "creationTimestamp"], now));
    let mut row = vec![name];
    match kind {
        "Pod" => row.extend(pod_cells(obj, now)),
        "Deployment" => {
            let (containers, images) =
                containers_and_images(obj.pointer("/spec/template/spec").unwrap_or(&Value::Null));
            let desired = obj
                .pointer("/spec/replicas")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            row.extend([
                json!(format!(
                    "{}/{desired}",
                    int_at(obj, &["status", "readyReplicas"])
                )),
                json!(int_at(obj, &["status", "updatedReplicas"])),
                json!(int_at(obj, &["status", "availableReplicas"])),
                created,
                json!(containers),
                json!(images),
                json!(selector_string(obj.pointer("/spec/selector"))),
            ]);
        }
        "ReplicaSet" => {
            let (containers, images) =
                containers_and_images(obj.pointer("/spec/template/spec").unwrap_or(&Value::Null));
            row.extend([
                json!(obj
                    .pointer("/spec/replicas")
                    .and_then(Value::as_i64)
                    .unwrap_or(1)),
                json!(int_at(obj, &["status", "replicas"])),
                json!(int_at(obj, &["status", "readyReplicas"])),
                created,
                json!(containers),
                json!(images),
                json!(selector_string(obj.pointer("/spec/selector"))),
            ]);
        }
        "Service" => row.extend([
            json!(str_at(obj, &["spec", "type"]).unwrap_or("ClusterIP")),
            json!(or_none(
                str_at(obj, &["spec", "clusterIP"])
                    .unwrap_or_default()
                    .to_owned()
            )),
            json!(service_external_ip(obj)),
            json!(service_ports(obj)),
            created,
            json!(service_selector(obj)),
        ]),
        "Node" => row.extend(node_cells(obj, now)),
        "Namespace" => row.extend([
            json!(str_at(obj, &["status", "phase"]).unwrap_or("Active")),
            created,
        ]),
        "ConfigMap" => row.extend([
            json!(count_map(obj, &["data"]) + count_map(obj, &["binaryData"])),
            created,
        ]),
        "Secret" => row.extend([
            json!(str_at(obj, &["type"]).unwrap_or("Opaque")),
            json!(count_map(obj, &["data"])),
            created,
        ]),
        "ServiceAccount" => row.extend([json!(array_at(obj, &["secrets"]).len()), created]),
        "Endpoints" => row.extend([json!(endpoints_cell(obj)), created]),
        "EndpointSlice" => {
            let ports: Vec<String> = array_at(obj, &["ports"])
                .iter()
                .map(|p| int_at(p, &["port"]).to_string())
                .collect();
            let addrs: Vec<&str> = array_at(obj, &["endpoints"])
                .iter()
                .flat_map(|e| array_at(e, &["addresses"]).iter().filter_map(Value::as_str))
                .collect();
            row.extend([
                json!(str_at(obj, &["addressType"]).unwrap_or_default()),
                json!(or_none(ports.join(","))),
                json!(or_none(addrs.join(","))),
                created,
            ]);
        }
        "Lease" => row.extend([
            json!(or_none(
                str_at(obj, &["spec", "holderIdentity"])
                    .unwrap_or_default()
                    .to_owned()
            )),
            created,
        ]),
        "Event" => {
            let last = ["lastTimestamp", "eventTime"]
                .iter()
                .find(|f| str_at(obj, &[f]).is_some())
                .map_or_else(|| "<unknown>".to_owned(), |f| age(obj, &[f], now));
            let object = format!(
                "{}/{}",
                str_at(obj, &["involvedObject", "kind"])
                    .unwrap_or_default()
                    .to_lowercase(),
                str_at(obj, &["involvedObject", "name"]).unwrap_or_default()
            );
            row = vec![
                json!(last),
                json!(str_at(obj, &["type"]).unwrap_or_default()),
                json!(str_at(obj, &["reason"]).unwrap_or_default()),
                json!(object),
                json!(str_at(obj, &["message"]).unwrap_or_default()),
            ];
        }
        "NodePool" => row.extend([
            json!(obj
                .pointer("/spec/replicas")
                .and_then(Value::as_i64)
                .unwrap_or(0)),
            json!(int_at(obj, &["status", "readyReplicas"])),
            json!(optional_int(obj, &["spec", "minReplicas"])),
            json!(optional_int(obj, &["spec", "maxReplicas"])),
            created,
            json!(or_none(
                str_at(obj, &["spec", "machineClass"])
                    .unwrap_or_default()
                    .to_owned()
            )),
        ]),
        _ => row.push(created),
    }
    row
}
