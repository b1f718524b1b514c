//! The query options of the streaming pod subresources (`PodLogOptions`,
//! `PodExecOptions`, `PodAttachOptions`, `PodPortForwardOptions`), parsed and
//! validated as kube-apiserver does, and re-encoded for the node's kubelet API.
//! Pure functions over query pairs: no I/O.

use crate::apiserver::errors::{ApiError, FieldCause, Target};

/// Query pairs in the order the client sent them (names may repeat).
pub type Pairs = [(String, String)];

/// The first value of `key`, as upstream's query conversion takes it.
fn first<'a>(pairs: &'a Pairs, key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// Every value of `key`, in order.
fn all<'a>(pairs: &'a Pairs, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    pairs
        .iter()
        .filter(move |(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// A boolean query parameter as Go's `strconv.ParseBool` reads it; absent or empty is false.
fn flag(pairs: &Pairs, key: &str) -> Result<bool, ApiError> {
    match first(pairs, key) {
        None | Some("") => Ok(false),
        Some("1" | "t" | "T" | "true" | "TRUE" | "True") => Ok(true),
        Some("0" | "f" | "F" | "false" | "FALSE" | "False") => Ok(false),
        Some(other) => Err(ApiError::BadRequest(format!(
            "invalid value for query parameter {key}: strconv.ParseBool: parsing {other:?}: invalid syntax"
        ))),
    }
}

/// An integer query parameter; absent or empty is `None`.
fn integer(pairs: &Pairs, key: &str) -> Result<Option<i64>, ApiError> {
    match first(pairs, key) {
        None | Some("") => Ok(None),
        Some(v) => v.parse().map(Some).map_err(|_| {
            ApiError::BadRequest(format!(
                "invalid value for query parameter {key}: strconv.ParseInt: parsing {v:?}: invalid syntax"
            ))
        }),
    }
}

fn container(pairs: &Pairs) -> Option<String> {
    first(pairs, "container")
        .filter(|c| !c.is_empty())
        .map(str::to_owned)
}

/// Escapes a query value as Go's `url.QueryEscape` does (space as `+`).
pub fn query_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(byte as char)
            }
            b' ' => out.push('+'),
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

fn encode(params: &[(&str, String)]) -> String {
    params
        .iter()
        .map(|(k, v)| format!("{k}={}", query_escape(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// `PodLogOptions`: what `kubectl logs` asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogOptions {
    /// The container, when named.
    pub container: Option<String>,
    /// Keep streaming new lines.
    pub follow: bool,
    /// The previous run's log.
    pub previous: bool,
    /// Prefix each line with its RFC3339 timestamp.
    pub timestamps: bool,
    /// Only lines newer than this many seconds.
    pub since_seconds: Option<i64>,
    /// Only lines newer than this time (RFC3339, normalised to seconds).
    pub since_time: Option<String>,
    /// Only this many lines from the end.
    pub tail_lines: Option<i64>,
    /// At most this many bytes.
    pub limit_bytes: Option<i64>,
}

impl LogOptions {
    /// Parses the query and validates it as `ValidatePodLogOptions` does; `pod`
    /// names the pod in an Invalid answer.
    pub fn parse(pairs: &Pairs, pod: &str) -> Result<Self, ApiError> {
        let since_time = match first(pairs, "sinceTime").filter(|v| !v.is_empty()) {
            None => None,
            Some(raw) => {
                let time: jiff::Timestamp = raw.parse().map_err(|_| {
                    ApiError::BadRequest(format!(
                        "invalid value for query parameter sinceTime: parsing time {raw:?} as \"2006-01-02T15:04:05Z07:00\": cannot parse"
                    ))
                })?;
                Some(time.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
            }
        };
        let options = Self {
            container: container(pairs),
            follow: flag(pairs, "follow")?,
            previous: flag(pairs, "previous")?,
            timestamps: flag(pairs, "timestamps")?,
            since_seconds: integer(pairs, "sinceSeconds")?,
            since_time,
            tail_lines: integer(pairs, "tailLines")?,
            limit_bytes: integer(pairs, "limitBytes")?,
        };
        let mut causes = Vec::new();
        if let Some(tail) = options.tail_lines.filter(|t| *t < 0) {
            causes.push(FieldCause::invalid(
                "tailLines",
                &tail.into(),
                "must be greater than or equal to 0",
            ));
        }
        if let Some(limit) = options.limit_bytes.filter(|l| *l < 1) {
            causes.push(FieldCause::invalid(
                "limitBytes",
                &limit.into(),
                "must be greater than 0",
            ));
        }
        match (options.since_seconds, &options.since_time) {
            (Some(_), Some(_)) => causes.push(FieldCause::forbidden(
                "",
                "at most one of `sinceTime` or `sinceSeconds` may be specified",
            )),
            (Some(seconds), None) if seconds < 1 => causes.push(FieldCause::invalid(
                "sinceSeconds",
                &seconds.into(),
                "must be greater than 0",
            )),
            _ => {}
        }
        if !causes.is_empty() {
            let target = Target {
                group: String::new(),
                resource: "pods/log".into(),
                kind: "PodLogOptions".into(),
                name: pod.to_owned(),
            };
            return Err(ApiError::Invalid(target, causes));
        }
        Ok(options)
    }

    /// The kubelet's query: only the options that are set, as upstream's `LogLocation` sends them.
    pub fn kubelet_query(&self) -> String {
        let mut params: Vec<(&str, String)> = Vec::new();
        if self.follow {
            params.push(("follow", "true".into()));
        }
        if self.previous {
            params.push(("previous", "true".into()));
        }
        if self.timestamps {
            params.push(("timestamps", "true".into()));
        }
        if let Some(s) = self.since_seconds {
            params.push(("sinceSeconds", s.to_string()));
        }
        if let Some(t) = &self.since_time {
            params.push(("sinceTime", t.clone()));
        }
        if let Some(t) = self.tail_lines {
            params.push(("tailLines", t.to_string()));
        }
        if let Some(l) = self.limit_bytes {
            params.push(("limitBytes", l.to_string()));
        }
        encode(&params)
    }
}

/// `PodExecOptions` (with a command) and `PodAttachOptions` (without).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamOptions {
    /// The container, when named.
    pub container: Option<String>,
    /// The command and its arguments (exec only).
    pub command: Vec<String>,
    /// The client sends standard input.
    pub stdin: bool,
    /// The client wants standard output.
    pub stdout: bool,
    /// The client wants standard error (ignored with a terminal).
    pub stderr: bool,
    /// Allocate a terminal.
    pub tty: bool,
}

impl StreamOptions {
    /// Parses `stdin`, `stdout`, `stderr`, `tty`, `container` and every `command`.
    pub fn parse(pairs: &Pairs) -> Result<Self, ApiError> {
        Ok(Self {
            container: container(pairs),
            command: all(pairs, "command").map(str::to_owned).collect(),
            stdin: flag(pairs, "stdin")?,
            stdout: flag(pairs, "stdout")?,
            stderr: flag(pairs, "stderr")?,
            tty: flag(pairs, "tty")?,
        })
    }

    /// The checks the kubelet would make, answered before dialing it:
    /// exec needs a command, and every session at least one stream.
    pub fn validate(&self, exec: bool) -> Result<(), ApiError> {
        if exec && self.command.is_empty() {
            return Err(ApiError::BadRequest(
                "you must specify at least 1 command".into(),
            ));
        }
        if !(self.stdin || self.stdout || (self.stderr && !self.tty)) {
            return Err(ApiError::BadRequest(
                "you must specify at least 1 of stdin, stdout, stderr".into(),
            ));
        }
        Ok(())
    }

    /// The kubelet's query: every `command`, then each stream that is on, under
    /// both the kubelet's own names (`input`, `output`, `error`, as upstream's
    /// `streamParams` sends them) and the PodExecOptions names (`stdin`,
    /// `stdout`, `stderr`), all with the value `1`.
    pub fn kubelet_query(&self) -> String {
        let mut params: Vec<(&str, String)> = self
            .command
            .iter()
            .map(|c| ("command", c.clone()))
            .collect();
        let on = |name: &'static str, set: bool| set.then(|| (name, "1".to_owned()));
        params.extend(
            [
                on("error", self.stderr),
                on("input", self.stdin),
                on("output", self.stdout),
                on("stderr", self.stderr),
                on("stdin", self.stdin),
                on("stdout", self.stdout),
                on("tty", self.tty),
            ]
            .into_iter()
            .flatten(),
        );
        encode(&params)
    }
}

/// `PodPortForwardOptions`: the ports asked for (WebSocket clients name them
/// here; SPDY clients name them per stream, so the list may be empty).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortForwardOptions {
    /// The pod's ports.
    pub ports: Vec<u16>,
}

impl PortForwardOptions {
    /// Parses every `ports` value (each may also be a comma-separated list).
    pub fn parse(pairs: &Pairs) -> Result<Self, ApiError> {
        let mut ports = Vec::new();
        for value in all(pairs, "ports") {
            for port in value.split(',').filter(|p| !p.is_empty()) {
                match port.trim().parse::<u16>() {
                    Ok(p) if p > 0 => ports.push(p),
                    _ => {
                        return Err(ApiError::BadRequest(format!(
                            "invalid value for query parameter ports: {port:?} is not a valid port number"
                        )))
                    }
                }
            }
        }
        Ok(Self { ports })
    }

    /// The kubelet's query: `port=` once per port.
    pub fn kubelet_query(&self) -> String {
        let params: Vec<(&str, String)> =
            self.ports.iter().map(|p| ("port", p.to_string())).collect();
        encode(&params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(query: &str) -> Vec<(String, String)> {
        crate::apiserver::request::url_decode_pairs(query)
    }

    #[test]
    fn log_options_are_forwarded_only_when_set() {
        let cases = [
            ("", ""),
            ("container=app", ""),
            ("follow=true&tailLines=10", "follow=true&tailLines=10"),
            (
                "previous=1&timestamps=true&sinceSeconds=30&limitBytes=500&insecureSkipTLSVerifyBackend=true",
                "previous=true&timestamps=true&sinceSeconds=30&limitBytes=500",
            ),
            (
                "sinceTime=2024-05-01T10%3A00%3A00.5%2B02%3A00",
                "sinceTime=2024-05-01T08%3A00%3A00Z",
            ),
            ("follow=false&previous=0", ""),
        ];
        for (query, kubelet) in cases {
            let options = LogOptions::parse(&pairs(query), "web").unwrap();
            assert_eq!(options.kubelet_query(), kubelet, "{query}");
        }
    }

    #[test]
    fn log_options_are_validated_as_upstream() {
        let cases = [
            (
                "tailLines=-1",
                "PodLogOptions \"web\" is invalid: tailLines: Invalid value: -1: must be greater than or equal to 0",
            ),
            (
                "limitBytes=0",
                "PodLogOptions \"web\" is invalid: limitBytes: Invalid value: 0: must be greater than 0",
            ),
            (
                "sinceSeconds=0",
                "PodLogOptions \"web\" is invalid: sinceSeconds: Invalid value: 0: must be greater than 0",
            ),
            (
                "sinceSeconds=5&sinceTime=2024-05-01T10:00:00Z",
                "PodLogOptions \"web\" is invalid: Forbidden: at most one of `sinceTime` or `sinceSeconds` may be specified",
            ),
        ];
        for (query, message) in cases {
            let error = LogOptions::parse(&pairs(query), "web").unwrap_err();
            assert_eq!(error.code_and_reason().0.as_u16(), 422, "{query}");
            assert_eq!(error.to_string(), message, "{query}");
        }
        for query in ["tailLines=ten", "follow=yes", "sinceTime=yesterday"] {
            let error = LogOptions::parse(&pairs(query), "web").unwrap_err();
            assert_eq!(error.code_and_reason().0.as_u16(), 400, "{query}");
        }
    }

    #[test]
    fn exec_options_keep_every_command_argument_in_order() {
        let options = StreamOptions::parse(&pairs(
            "command=sh&command=-c&command=echo+hi%20there%26&container=app&stdin=true&stdout=true&stderr=true&tty=false",
        ))
        .unwrap();
        assert_eq!(options.command, ["sh", "-c", "echo hi there&"]);
        assert_eq!(options.container.as_deref(), Some("app"));
        options.validate(true).unwrap();
        assert_eq!(
            options.kubelet_query(),
            "command=sh&command=-c&command=echo+hi+there%26&error=1&input=1&output=1&stderr=1&stdin=1&stdout=1"
        );
        let tty = StreamOptions::parse(&pairs("stdin=1&tty=1")).unwrap();
        assert_eq!(tty.kubelet_query(), "input=1&stdin=1&tty=1");
    }

    #[test]
    fn exec_and_attach_need_a_command_and_a_stream() {
        let cases = [
            ("stdout=true", true, "you must specify at least 1 command"),
            (
                "command=ls",
                true,
                "you must specify at least 1 of stdin, stdout, stderr",
            ),
            (
                "command=ls&stderr=true&tty=true",
                true,
                "you must specify at least 1 of stdin, stdout, stderr",
            ),
            (
                "",
                false,
                "you must specify at least 1 of stdin, stdout, stderr",
            ),
        ];
        for (query, exec, message) in cases {
            let error = StreamOptions::parse(&pairs(query))
                .unwrap()
                .validate(exec)
                .unwrap_err();
            assert_eq!(error.code_and_reason().0.as_u16(), 400, "{query}");
            assert_eq!(error.to_string(), message, "{query}");
        }
        StreamOptions::parse(&pairs("stderr=true"))
            .unwrap()
            .validate(false)
            .unwrap();
    }

    #[test]
    fn port_forward_ports_are_repeated_for_the_kubelet() {
        let options = PortForwardOptions::parse(&pairs("ports=8080&ports=53,54")).unwrap();
        assert_eq!(options.ports, [8080, 53, 54]);
        assert_eq!(options.kubelet_query(), "port=8080&port=53&port=54");
        assert_eq!(
            PortForwardOptions::parse(&pairs(""))
                .unwrap()
                .kubelet_query(),
            ""
        );
        for bad in ["ports=0", "ports=http", "ports=70000"] {
            assert!(PortForwardOptions::parse(&pairs(bad)).is_err(), "{bad}");
        }
    }
}
