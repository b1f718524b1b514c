//! Where a streaming request goes: the container it names (defaulted and
//! checked as upstream's `validateContainer`), the node's kubelet endpoint, and
//! the kubelet path. Pure functions over the Pod and Node objects: no I/O.

use serde_json::Value;

use crate::apiserver::errors::ApiError;

/// The kubelet port when a Node reports none (`--kubelet-port`'s default).
pub const DEFAULT_KUBELET_PORT: u16 = 10250;

/// The node addresses tried, best first: InternalIP, then Hostname, then the rest.
const ADDRESS_PREFERENCE: [&str; 5] = [
    "InternalIP",
    "Hostname",
    "InternalDNS",
    "ExternalIP",
    "ExternalDNS",
];

fn names<'a>(pod: &'a Value, list: &str) -> Vec<&'a str> {
    pod.pointer(&format!("/spec/{list}"))
        .and_then(Value::as_array)
        .map(|containers| {
            containers
                .iter()
                .filter_map(|c| c.get("name").and_then(Value::as_str))
                .collect()
        })
        .unwrap_or_default()
}

/// The container a request is for: the one named (which must exist among the
/// pod's containers, init containers or ephemeral containers), or the pod's
/// only container. The messages are upstream's (`pkg/registry/core/pod/strategy.go`).
pub fn container(pod: &Value, pod_name: &str, requested: Option<&str>) -> Result<String, ApiError> {
    let containers = names(pod, "containers");
    let init = names(pod, "initContainers");
    let ephemeral = names(pod, "ephemeralContainers");
    match requested.filter(|c| !c.is_empty()) {
        Some(name) => {
            if containers
                .iter()
                .chain(&init)
                .chain(&ephemeral)
                .any(|c| *c == name)
            {
                Ok(name.to_owned())
            } else {
                Err(ApiError::BadRequest(format!(
                    "container {name} is not valid for pod {pod_name}"
                )))
            }
        }
        None => match containers.as_slice() {
            [only] => Ok((*only).to_owned()),
            [] => Err(ApiError::BadRequest(format!(
                "a container name must be specified for pod {pod_name}"
            ))),
            _ => {
                // VisitContainers' order: init containers, containers, ephemeral containers.
                let all: Vec<&str> = init
                    .iter()
                    .chain(&containers)
                    .chain(&ephemeral)
                    .copied()
                    .collect();
                Err(ApiError::BadRequest(format!(
                    "a container name must be specified for pod {pod_name}, choose one of: [{}]",
                    all.join(" ")
                )))
            }
        },
    }
}

/// The node the pod is bound to, if any.
pub fn node_name(pod: &Value) -> Option<&str> {
    pod.pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
}

/// The answer to exec, attach and port-forward on a pod no node runs yet.
pub fn no_host(pod_name: &str) -> ApiError {
    ApiError::BadRequest(format!("pod {pod_name} does not have a host assigned"))
}

/// A node's kubelet API: host (an address or a name) and port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeletEndpoint {
    /// The address or name from `status.addresses`.
    pub host: String,
    /// `status.daemonEndpoints.kubeletEndpoint.Port`.
    pub port: u16,
}

impl KubeletEndpoint {
    /// `host:port`, with an IPv6 address in brackets (Go's `net.JoinHostPort`).
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The `https://` URL of `path_and_query` on this kubelet, for messages.
    pub fn url(&self, path_and_query: &str) -> String {
        format!("https://{}{path_and_query}", self.authority())
    }
}

/// Where a node's kubelet API listens, from its status: the preferred address
/// and `daemonEndpoints.kubeletEndpoint.Port` (10250 when unset).
pub fn kubelet_endpoint(node: &Value) -> Result<KubeletEndpoint, ApiError> {
    let addresses: Vec<(&str, &str)> = node
        .pointer("/status/addresses")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|a| {
                    Some((
                        a.get("type").and_then(Value::as_str)?,
                        a.get("address").and_then(Value::as_str)?,
                    ))
                })
                .filter(|(_, address)| !address.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let host = ADDRESS_PREFERENCE
        .iter()
        .find_map(|wanted| {
            addresses
                .iter()
                .find(|(kind, _)| kind == wanted)
                .map(|(_, address)| *address)
        })
        .ok_or_else(|| {
            let known: Vec<String> = addresses
                .iter()
                .map(|(kind, address)| format!("{{{kind} {address}}}"))
                .collect();
            ApiError::Backend {
                code: http::StatusCode::INTERNAL_SERVER_ERROR,
                reason: "",
                message: format!(
                    "no preferred addresses found; known addresses: [{}]",
                    known.join(" ")
                ),
            }
        })?;
    // `DaemonEndpoint`'s one field is spelled `Port` on the wire.
    let port = node
        .pointer("/status/daemonEndpoints/kubeletEndpoint/Port")
        .and_then(Value::as_i64)
        .and_then(|p| u16::try_from(p).ok())
        .filter(|p| *p > 0)
        .unwrap_or(DEFAULT_KUBELET_PORT);
    Ok(KubeletEndpoint {
        host: host.to_owned(),
        port,
    })
}

/// The kubelet endpoint a streaming subresource maps to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KubeletPath {
    /// `/containerLogs/NS/POD/CONTAINER`.
    ContainerLogs,
    /// `/exec/NS/POD/CONTAINER`.
    Exec,
    /// `/attach/NS/POD/CONTAINER`.
    Attach,
    /// `/portForward/NS/POD`.
    PortForward,
}

fn path_escape(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(byte as char)
            }
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

impl KubeletPath {
    /// The path and query on the kubelet; `container` is ignored for port-forward.
    pub fn path_and_query(
        self,
        namespace: &str,
        pod: &str,
        container: &str,
        query: &str,
    ) -> String {
        let (ns, pod, container) = (
            path_escape(namespace),
            path_escape(pod),
            path_escape(container),
        );
        let path = match self {
            KubeletPath::ContainerLogs => format!("/containerLogs/{ns}/{pod}/{container}"),
            KubeletPath::Exec => format!("/exec/{ns}/{pod}/{container}"),
            KubeletPath::Attach => format!("/attach/{ns}/{pod}/{container}"),
            KubeletPath::PortForward => format!("/portForward/{ns}/{pod}"),
        };
        if query.is_empty() {
            path
        } else {
            format!("{path}?{query}")
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn pod(containers: &[&str], init: &[&str]) -> Value {
        let list = |names: &[&str]| -> Vec<Value> {
            names
                .iter()
                .map(|n| json!({"name": n, "image": "busybox"}))
                .collect()
        };
        json!({"metadata": {"name": "web"}, "spec": {"containers": list(containers), "initContainers": list(init)}})
    }

    /// Containers, init containers, the container asked for, and the answer.
    type Case = (
        &'static [&'static str],
        &'static [&'static str],
        Option<&'static str>,
        Result<&'static str, &'static str>,
    );

    #[test]
    fn containers_are_defaulted_and_checked_as_upstream() {
        let cases: [Case; 7] = [
            (&["app"], &[], None, Ok("app")),
            (&["app"], &[], Some(""), Ok("app")),
            (&["app", "sidecar"], &[], Some("sidecar"), Ok("sidecar")),
            (&["app", "sidecar"], &["setup"], Some("setup"), Ok("setup")),
            (
                &["app", "sidecar"],
                &[],
                None,
                Err("a container name must be specified for pod web, choose one of: [app sidecar]"),
            ),
            (
                &["app", "sidecar"],
                &["setup"],
                None,
                Err("a container name must be specified for pod web, choose one of: [setup app sidecar]"),
            ),
            (
                &["app"],
                &[],
                Some("nope"),
                Err("container nope is not valid for pod web"),
            ),
        ];
        for (containers, init, requested, expected) in cases {
            let got = container(&pod(containers, init), "web", requested);
            match (got, expected) {
                (Ok(name), Ok(want)) => assert_eq!(name, want),
                (Err(e), Err(want)) => {
                    assert_eq!(e.to_string(), want);
                    assert_eq!(e.code_and_reason().0.as_u16(), 400);
                }
                (got, want) => panic!("{containers:?} {requested:?}: got {got:?}, want {want:?}"),
            }
        }
        let empty = json!({"spec": {"containers": []}});
        assert_eq!(
            container(&empty, "web", None).unwrap_err().to_string(),
            "a container name must be specified for pod web"
        );
        let ephemeral = json!({"spec": {"containers": [{"name": "app"}], "ephemeralContainers": [{"name": "debugger"}]}});
        assert_eq!(
            container(&ephemeral, "web", Some("debugger")).unwrap(),
            "debugger"
        );
    }

    #[test]
    fn unbound_pods_have_no_node() {
        assert_eq!(node_name(&json!({"spec": {}})), None);
        assert_eq!(node_name(&json!({"spec": {"nodeName": ""}})), None);
        assert_eq!(node_name(&json!({"spec": {"nodeName": "n1"}})), Some("n1"));
        assert_eq!(
            no_host("web").to_string(),
            "pod web does not have a host assigned"
        );
    }

    #[test]
    fn kubelet_endpoint_prefers_internal_ip_and_reported_port() {
        let node = |addresses: Value, port: Value| json!({"status": {"addresses": addresses, "daemonEndpoints": {"kubeletEndpoint": {"Port": port}}}});
        let cases = [
            (
                json!([{"type": "Hostname", "address": "n1"}, {"type": "InternalIP", "address": "10.0.0.5"}]),
                json!(10250),
                "10.0.0.5:10250",
            ),
            (
                json!([{"type": "Hostname", "address": "n1"}]),
                json!(12250),
                "n1:12250",
            ),
            (
                json!([{"type": "InternalIP", "address": "fd00::5"}]),
                json!(0),
                "[fd00::5]:10250",
            ),
            (
                json!([{"type": "ExternalIP", "address": "203.0.113.9"}]),
                Value::Null,
                "203.0.113.9:10250",
            ),
        ];
        for (addresses, port, authority) in cases {
            let endpoint = kubelet_endpoint(&node(addresses.clone(), port)).unwrap();
            assert_eq!(endpoint.authority(), authority, "{addresses}");
        }
        let error = kubelet_endpoint(&json!({"status": {}})).unwrap_err();
        assert_eq!(error.code_and_reason().0.as_u16(), 500);
        assert_eq!(
            error.to_string(),
            "no preferred addresses found; known addresses: []"
        );
    }

    #[test]
    fn kubelet_paths_follow_the_kubelet_api() {
        let endpoint = KubeletEndpoint {
            host: "127.0.0.1".into(),
            port: 10250,
        };
        let cases = [
            (
                KubeletPath::ContainerLogs,
                "follow=true",
                "https://127.0.0.1:10250/containerLogs/default/web/app?follow=true",
            ),
            (
                KubeletPath::Exec,
                "command=ls&output=1",
                "https://127.0.0.1:10250/exec/default/web/app?command=ls&output=1",
            ),
            (
                KubeletPath::Attach,
                "input=1",
                "https://127.0.0.1:10250/attach/default/web/app?input=1",
            ),
            (
                KubeletPath::PortForward,
                "port=80",
                "https://127.0.0.1:10250/portForward/default/web?port=80",
            ),
            (
                KubeletPath::ContainerLogs,
                "",
                "https://127.0.0.1:10250/containerLogs/default/web/app",
            ),
        ];
        for (path, query, url) in cases {
            assert_eq!(
                endpoint.url(&path.path_and_query("default", "web", "app", query)),
                url
            );
        }
    }
}
