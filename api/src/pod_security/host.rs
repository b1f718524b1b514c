//! Checks on what a pod shares with its node: host namespaces, host ports and
//! probe or lifecycle handlers aimed at another host. Each returns upstream's
//! reason and detail text.

use serde_json::Value;

use super::pod::{is_true, join_quote, list, name, sorted_set, text, uses_phrase, PodView};
use super::Violation;

/// Baseline `hostNamespaces` (1.0+): no `hostNetwork`, `hostPID` or `hostIPC`.
pub fn host_namespaces(pod: &PodView) -> Option<Violation> {
    let shared: Vec<String> = ["hostNetwork", "hostPID", "hostIPC"]
        .into_iter()
        .filter(|field| is_true(pod.spec.get(*field)))
        .map(|field| format!("{field}=true"))
        .collect();
    (!shared.is_empty()).then(|| Violation::new("host namespaces", shared.join(", ")))
}

/// Baseline `hostPorts` (1.0+): no container port sets a `hostPort`.
pub fn host_ports(pod: &PodView) -> Option<Violation> {
    let mut bad = Vec::new();
    let mut ports = Vec::new();
    for container in pod.containers() {
        let used: Vec<String> = list(container.get("ports"))
            .filter_map(|p| p.get("hostPort").and_then(Value::as_i64))
            .filter(|port| *port != 0)
            .map(|port| port.to_string())
            .collect();
        if !used.is_empty() {
            bad.push(name(container));
            ports.extend(used);
        }
    }
    let ports = sorted_set(ports);
    (!bad.is_empty()).then(|| {
        Violation::new(
            "hostPort",
            uses_phrase(
                ("container", "containers"),
                &bad,
                ("hostPort", "hostPorts"),
                ports.len(),
                &ports.join(", "),
            ),
        )
    })
}

/// The non-empty `host` of a handler's `httpGet` and `tcpSocket`.
fn handler_hosts(handler: Option<&Value>) -> Vec<String> {
    let Some(handler) = handler else {
        return Vec::new();
    };
    ["/httpGet/host", "/tcpSocket/host"]
        .into_iter()
        .map(|pointer| text(handler.pointer(pointer)))
        .filter(|host| !host.is_empty())
        .collect()
}

/// Baseline `hostProbesAndHostLifecycle` (1.34+): probes and lifecycle
/// handlers may not name a `host`.
pub fn host_probes_and_lifecycle(pod: &PodView) -> Option<Violation> {
    let mut bad = Vec::new();
    let mut hosts = Vec::new();
    for container in pod.containers() {
        let handlers = [
            container.get("livenessProbe"),
            container.get("readinessProbe"),
            container.get("startupProbe"),
            container.pointer("/lifecycle/postStart"),
            container.pointer("/lifecycle/preStop"),
        ];
        for handler in handlers {
            let found = handler_hosts(handler);
            if !found.is_empty() {
                bad.push(name(container));
                hosts.extend(found);
            }
        }
    }
    let (bad, hosts) = (sorted_set(bad), sorted_set(hosts));
    (!bad.is_empty()).then(|| {
        Violation::new(
            "probe or lifecycle host",
            uses_phrase(
                ("container", "containers"),
                &bad,
                ("probe or lifecycle host", "probe or lifecycle hosts"),
                hosts.len(),
                &join_quote(&hosts),
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::super::pod::run_check;
    use super::*;
    use serde_json::json;

    fn run(check: fn(&PodView) -> Option<Violation>, spec: Value) -> Option<String> {
        run_check(check, json!({}), spec)
    }

    #[test]
    fn host_namespaces_are_listed_in_upstream_order() {
        let spec =
            json!({"hostIPC": true, "hostNetwork": true, "hostPID": false, "containers": []});
        assert_eq!(
            run(host_namespaces, spec).as_deref(),
            Some("host namespaces (hostNetwork=true, hostIPC=true)")
        );
        assert_eq!(run(host_namespaces, json!({})), None);
    }

    #[test]
    fn host_ports_are_sorted_as_text() {
        let spec = json!({"containers": [
            {"name": "a", "ports": [{"containerPort": 80, "hostPort": 8080}, {"containerPort": 9}]},
            {"name": "b", "ports": [{"containerPort": 81, "hostPort": 10}]}]});
        assert_eq!(
            run(host_ports, spec).as_deref(),
            Some("hostPort (containers \"a\", \"b\" use hostPorts 10, 8080)")
        );
    }

    #[test]
    fn probe_and_lifecycle_hosts_are_named_once() {
        let spec = json!({"containers": [{"name": "a",
            "livenessProbe": {"httpGet": {"host": "x", "port": 80}},
            "readinessProbe": {"tcpSocket": {"host": "x", "port": 80}},
            "lifecycle": {"preStop": {"httpGet": {"host": "y", "port": 80}}}}]});
        assert_eq!(
            run(host_probes_and_lifecycle, spec).as_deref(),
            Some("probe or lifecycle host (container \"a\" uses probe or lifecycle hosts \"x\", \"y\")")
        );
    }
}
