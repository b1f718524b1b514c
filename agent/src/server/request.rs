//! Every kubelet API request parsed into a typed [`NodeRequest`] in one
//! place (path, method and query), so handlers only act. Pure: no I/O.

use std::time::Duration;

use http::Method;
use jiff::Timestamp;

use crate::logs::LogOptions;

mod query;

use query::Query;

/// A pod as the API server names it in kubelet paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodRef {
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// Its UID, when the path pins one (`/exec/NS/POD/UID/CONTAINER`).
    pub uid: Option<String>,
}

/// Which standard streams an exec or attach session carries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Streams {
    /// The client sends standard input.
    pub stdin: bool,
    /// The client wants standard output.
    pub stdout: bool,
    /// The client wants standard error.
    pub stderr: bool,
    /// A terminal is allocated.
    pub tty: bool,
}

/// What a client asks the kubelet API for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeRequest {
    /// `GET /containerLogs/NS/POD/CONTAINER`: a container's log.
    ContainerLogs {
        /// The pod.
        pod: PodRef,
        /// The container.
        container: String,
        /// The run before the current one (`previous`).
        previous: bool,
        /// What to read and how.
        options: LogOptions,
    },
    /// `/exec/NS/POD/CONTAINER?command=…`: run a command (an upgrade).
    Exec {
        /// The pod.
        pod: PodRef,
        /// The container.
        container: String,
        /// The command and its arguments.
        command: Vec<String>,
        /// The streams of the session.
        streams: Streams,
    },
    /// `/attach/NS/POD/CONTAINER`: join the main process (an upgrade).
    Attach {
        /// The pod.
        pod: PodRef,
        /// The container.
        container: String,
        /// The streams of the session.
        streams: Streams,
    },
    /// `/portForward/NS/POD`: tunnel to pod ports (an upgrade).
    PortForward {
        /// The pod.
        pod: PodRef,
        /// Ports named in the query (WebSocket clients); SPDY names them per stream.
        ports: Vec<u16>,
    },
    /// `GET /stats/summary`: the node's and its pods' CPU and memory.
    StatsSummary,
    /// `GET /metrics/resource`: the same as Prometheus text.
    MetricsResource,
    /// `GET /metrics`: the kubelet's own metrics.
    Metrics,
    /// `GET /metrics/cadvisor`: the containers' usage under cAdvisor's names.
    MetricsCadvisor,
}

/// Why a request is refused before anything is looked up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// No such path (404).
    #[error("{0}")]
    NotFound(String),
    /// The path does not take this method (405).
    #[error("method {0} is not allowed here")]
    MethodNotAllowed(Method),
    /// A parameter is missing or malformed (400).
    #[error("{0}")]
    BadRequest(String),
}

impl NodeRequest {
    /// Parses a request for `path` with `query`; `now` is when it arrived
    /// (`sinceSeconds` counts back from it).
    pub fn parse(
        method: &Method,
        path: &str,
        query: Option<&str>,
        now: Timestamp,
    ) -> Result<Self, RequestError> {
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        if segments.iter().any(|s| s.is_empty()) {
            return Err(not_found(path));
        }
        let query = Query::new(query);
        let upgrade = [Method::GET, Method::POST];
        match segments.as_slice() {
            ["stats", "summary"] => {
                allow(method, &[Method::GET])?;
                Ok(Self::StatsSummary)
            }
            ["metrics", "resource"] => {
                allow(method, &[Method::GET])?;
                Ok(Self::MetricsResource)
            }
            ["metrics"] => {
                allow(method, &[Method::GET])?;
                Ok(Self::Metrics)
            }
            ["metrics", "cadvisor"] => {
                allow(method, &[Method::GET])?;
                Ok(Self::MetricsCadvisor)
            }
            ["containerLogs", namespace, name, container] => {
                allow(method, &[Method::GET])?;
                Ok(Self::ContainerLogs {
                    pod: pod(namespace, name, None),
                    container: (*container).to_owned(),
                    previous: query.flag("previous")?,
                    options: log_options(&query, now)?,
                })
            }
            ["exec", namespace, name, rest @ ..] => {
                allow(method, &upgrade)?;
                let (pod, container) = pod_and_container(namespace, name, rest, path)?;
                let command = query.all("command");
                if command.is_empty() {
                    return Err(RequestError::BadRequest(
                        "you must specify at least one command for the container".into(),
                    ));
                }
                Ok(Self::Exec {
                    pod,
                    container,
                    command,
                    streams: streams(&query)?,
                })
            }
            ["attach", namespace, name, rest @ ..] => {
                allow(method, &upgrade)?;
                let (pod, container) = pod_and_container(namespace, name, rest, path)?;
                Ok(Self::Attach {
                    pod,
                    container,
                    streams: streams(&query)?,
                })
            }
            ["portForward", namespace, name, rest @ ..] if rest.len() <= 1 => {
                allow(method, &upgrade)?;
                let ports = query
                    .all("port")
                    .iter()
                    .map(|p| match p.parse::<u16>() {
                        Ok(port) if port > 0 => Ok(port),
                        _ => Err(RequestError::BadRequest(format!(
                            "port {p:?} is not a port number between 1 and 65535"
                        ))),
                    })
                    .collect::<Result<_, _>>()?;
                Ok(Self::PortForward {
                    pod: pod(namespace, name, rest.first().copied()),
                    ports,
                })
            }
            _ => Err(not_found(path)),
        }
    }

    /// The pod the request is about; `None` for the node's own paths.
    pub fn pod(&self) -> Option<&PodRef> {
        match self {
            Self::ContainerLogs { pod, .. }
            | Self::Exec { pod, .. }
            | Self::Attach { pod, .. }
            | Self::PortForward { pod, .. } => Some(pod),
            Self::StatsSummary | Self::MetricsResource | Self::Metrics | Self::MetricsCadvisor => {
                None
            }
        }
    }
}

fn not_found(path: &str) -> RequestError {
    RequestError::NotFound(format!("the kubelet API has no path {path:?}"))
}

fn allow(method: &Method, allowed: &[Method]) -> Result<(), RequestError> {
    if allowed.contains(method) {
        Ok(())
    } else {
        Err(RequestError::MethodNotAllowed(method.clone()))
    }
}

fn pod(namespace: &str, name: &str, uid: Option<&str>) -> PodRef {
    PodRef {
        namespace: namespace.to_owned(),
        name: name.to_owned(),
        uid: uid.map(str::to_owned),
    }
}

/// `CONTAINER` or `UID/CONTAINER` after the pod's name.
fn pod_and_container(
    namespace: &str,
    name: &str,
    rest: &[&str],
    path: &str,
) -> Result<(PodRef, String), RequestError> {
    match rest {
        [container] => Ok((pod(namespace, name, None), (*container).to_owned())),
        [uid, container] => Ok((pod(namespace, name, Some(uid)), (*container).to_owned())),
        _ => Err(not_found(path)),
    }
}

fn streams(query: &Query) -> Result<Streams, RequestError> {
    let streams = Streams {
        stdin: query.flag("stdin")?,
        stdout: query.flag("stdout")?,
        stderr: query.flag("stderr")?,
        tty: query.flag("tty")?,
    };
    if !(streams.stdin || streams.stdout || streams.stderr) {
        return Err(RequestError::BadRequest(
            "you must specify at least one of stdin, stdout, stderr".into(),
        ));
    }
    Ok(streams)
}

fn log_options(query: &Query, now: Timestamp) -> Result<LogOptions, RequestError> {
    let since_seconds = query.number("sinceSeconds")?;
    let since_time = query.one("sinceTime");
    let since = match (since_seconds, since_time) {
        (Some(_), Some(_)) => {
            return Err(RequestError::BadRequest(
                "at most one of sinceTime or sinceSeconds may be specified".into(),
            ))
        }
        (Some(0), None) => {
            return Err(RequestError::BadRequest(
                "sinceSeconds must be greater than 0".into(),
            ))
        }
        (Some(seconds), None) => Some(
            now.checked_sub(Duration::from_secs(seconds))
                .unwrap_or(Timestamp::MIN),
        ),
        (None, Some(time)) => Some(time.parse::<Timestamp>().map_err(|e| {
            RequestError::BadRequest(format!("sinceTime {time:?} is not an RFC3339 time: {e}"))
        })?),
        (None, None) => None,
    };
    let limit_bytes = query.number("limitBytes")?;
    if limit_bytes == Some(0) {
        return Err(RequestError::BadRequest(
            "limitBytes must be greater than 0".into(),
        ));
    }
    Ok(LogOptions {
        tail_lines: query.number("tailLines")?,
        since,
        timestamps: query.flag("timestamps")?,
        limit_bytes,
        follow: query.flag("follow")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        "2024-01-01T00:01:00Z".parse().unwrap()
    }

    fn parse(method: Method, target: &str) -> Result<NodeRequest, RequestError> {
        let (path, query) = target
            .split_once('?')
            .map_or((target, None), |(p, q)| (p, Some(q)));
        NodeRequest::parse(&method, path, query, now())
    }

    fn web() -> PodRef {
        pod("default", "web", None)
    }

    #[test]
    fn container_logs_take_kubelets_options() {
        let request = parse(Method::GET, "/containerLogs/default/web/app?follow=true&tailLines=10&timestamps=1&limitBytes=500&sinceSeconds=30&previous=false").unwrap();
        let options = LogOptions {
            tail_lines: Some(10),
            since: Some("2024-01-01T00:00:30Z".parse().unwrap()),
            timestamps: true,
            limit_bytes: Some(500),
            follow: true,
        };
        assert_eq!(
            request,
            NodeRequest::ContainerLogs {
                pod: web(),
                container: "app".into(),
                previous: false,
                options
            }
        );
        let request = parse(
            Method::GET,
            "/containerLogs/default/web/app?sinceTime=2024-01-01T00%3A00%3A10Z&previous=1",
        )
        .unwrap();
        let NodeRequest::ContainerLogs {
            previous, options, ..
        } = request
        else {
            panic!()
        };
        assert!(previous);
        assert_eq!(options.since, Some("2024-01-01T00:00:10Z".parse().unwrap()));
    }

    #[test]
    fn exec_decodes_repeated_commands_and_flags() {
        let request = parse(Method::POST, "/exec/default/web/app?command=sh&command=-c&command=echo+hi%26bye&stdin=1&stdout=true&tty=1").unwrap();
        assert_eq!(
            request,
            NodeRequest::Exec {
                pod: web(),
                container: "app".into(),
                command: vec!["sh".into(), "-c".into(), "echo hi&bye".into()],
                streams: Streams {
                    stdin: true,
                    stdout: true,
                    stderr: false,
                    tty: true
                },
            }
        );
        let pinned = parse(Method::GET, "/attach/default/web/1234/app?stdout=1").unwrap();
        assert_eq!(pinned.pod().unwrap().uid.as_deref(), Some("1234"));
    }

    #[test]
    fn resource_usage_paths_are_the_nodes_own() {
        assert_eq!(
            parse(Method::GET, "/stats/summary").unwrap(),
            NodeRequest::StatsSummary
        );
        assert_eq!(
            parse(Method::GET, "/metrics/resource").unwrap(),
            NodeRequest::MetricsResource
        );
        assert_eq!(
            parse(Method::GET, "/metrics").unwrap(),
            NodeRequest::Metrics
        );
        assert_eq!(
            parse(Method::GET, "/metrics/cadvisor").unwrap(),
            NodeRequest::MetricsCadvisor
        );
        assert!(matches!(
            parse(Method::POST, "/metrics"),
            Err(RequestError::MethodNotAllowed(_))
        ));
        assert!(NodeRequest::StatsSummary.pod().is_none());
        assert!(matches!(
            parse(Method::POST, "/stats/summary"),
            Err(RequestError::MethodNotAllowed(_))
        ));
    }

    #[test]
    fn port_forward_reads_ports() {
        assert_eq!(
            parse(Method::GET, "/portForward/default/web?port=80&port=8080").unwrap(),
            NodeRequest::PortForward {
                pod: web(),
                ports: vec![80, 8080]
            }
        );
        assert_eq!(
            parse(Method::POST, "/portForward/default/web").unwrap(),
            NodeRequest::PortForward {
                pod: web(),
                ports: vec![]
            }
        );
    }

    #[test]
    fn malformed_requests_are_refused_with_the_reason() {
        let bad = |target: &str| match parse(Method::GET, target) {
            Err(RequestError::BadRequest(reason)) => reason,
            other => panic!("{target}: {other:?}"),
        };
        assert!(bad("/exec/default/web/app?stdout=1").contains("command"));
        assert!(bad("/exec/default/web/app?command=ls").contains("stdin, stdout, stderr"));
        assert!(bad("/containerLogs/default/web/app?tailLines=-1").contains("tailLines"));
        assert!(bad("/containerLogs/default/web/app?follow=maybe").contains("follow"));
        assert!(bad(
            "/containerLogs/default/web/app?sinceSeconds=1&sinceTime=2024-01-01T00:00:00Z"
        )
        .contains("at most one"));
        assert!(bad("/containerLogs/default/web/app?sinceTime=yesterday").contains("RFC3339"));
        assert!(bad("/containerLogs/default/web/app?limitBytes=0").contains("limitBytes"));
        assert!(bad("/portForward/default/web?port=0").contains("port"));
        assert!(matches!(
            parse(Method::GET, "/pods"),
            Err(RequestError::NotFound(_))
        ));
        assert!(matches!(
            parse(Method::GET, "/containerLogs/default/web"),
            Err(RequestError::NotFound(_))
        ));
        assert!(matches!(
            parse(Method::GET, "/containerLogs/default//app"),
            Err(RequestError::NotFound(_))
        ));
        assert!(matches!(
            parse(Method::POST, "/containerLogs/default/web/app"),
            Err(RequestError::MethodNotAllowed(_))
        ));
        assert!(matches!(
            parse(Method::DELETE, "/exec/default/web/app?command=ls&stdout=1"),
            Err(RequestError::MethodNotAllowed(_))
        ));
    }
}
