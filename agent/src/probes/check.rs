//! One probe attempt, as kubelet's prober makes it: an HTTP GET to the pod
//! (success is a status from 200 to 399), a TCP connect, or a command in
//! the container (success is exit code 0), each bounded by the timeout.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, HTTPGetAction, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::runtime::Runtime;

/// What one attempt found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The check passed.
    Success,
    /// The check failed, with kubelet's words for why.
    Failure(String),
}

/// A port given by number or by the name of one of the container's ports.
pub fn resolve_port(port: &IntOrString, container: &Container) -> Result<u16, String> {
    match port {
        IntOrString::Int(n) => u16::try_from(*n).map_err(|_| format!("invalid port {n}")),
        IntOrString::String(name) => container
            .ports
            .iter()
            .flatten()
            .find(|p| p.name.as_deref() == Some(name.as_str()))
            .and_then(|p| u16::try_from(p.container_port).ok())
            .ok_or_else(|| format!("couldn't find port {name:?} in the container's ports")),
    }
}

/// The request kubelet sends (`User-Agent: kube-probe/1.33`, extra headers).
fn request(action: &HTTPGetAction, host: &str, port: u16) -> String {
    let path = action
        .path
        .as_deref()
        .filter(|p| !p.is_empty())
        .unwrap_or("/");
    let mut text = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: kube-probe/1.33\r\nAccept: */*\r\nConnection: close\r\n"
    );
    for header in action.http_headers.iter().flatten() {
        text.push_str(&format!("{}: {}\r\n", header.name, header.value));
    }
    text.push_str("\r\n");
    text
}

/// The status code of an HTTP response's first line.
pub fn status_code(response: &[u8]) -> Option<u16> {
    let line = response.split(|b| *b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut words = line.split_whitespace();
    words.next().filter(|v| v.starts_with("HTTP/"))?;
    words.next()?.parse().ok()
}

async fn http_get(action: &HTTPGetAction, pod_ip: IpAddr, container: &Container) -> Outcome {
    if action.scheme.as_deref() == Some("HTTPS") {
        return Outcome::Failure("HTTPS probes are not supported by berth's agent yet".into());
    }
    let port = match resolve_port(&action.port, container) {
        Ok(port) => port,
        Err(e) => return Outcome::Failure(e),
    };
    let host: IpAddr = action
        .host
        .as_deref()
        .and_then(|h| h.parse().ok())
        .unwrap_or(pod_ip);
    let address = SocketAddr::new(host, port);
    let mut stream = match TcpStream::connect(address).await {
        Ok(stream) => stream,
        Err(e) => {
            return Outcome::Failure(format!(
                "Get \"http://{address}{}\": {e}",
                action.path.as_deref().unwrap_or("/")
            ))
        }
    };
    if let Err(e) = stream
        .write_all(request(action, &host.to_string(), port).as_bytes())
        .await
    {
        return Outcome::Failure(e.to_string());
    }
    let mut response = Vec::new();
    let mut buffer = [0u8; 1024];
    // The status line is all that matters; stop once it has arrived.
    while !response.contains(&b'\n') {
        match stream.read(&mut buffer).await {
            Ok(0) => break,
            Ok(n) => response.extend_from_slice(&buffer[..n]),
            Err(e) => return Outcome::Failure(e.to_string()),
        }
    }
    match status_code(&response) {
        Some(code) if (200..400).contains(&code) => Outcome::Success,
        Some(code) => Outcome::Failure(format!("HTTP probe failed with statuscode: {code}")),
        None => Outcome::Failure("HTTP probe got no valid response".into()),
    }
}

async fn tcp_connect(
    port: &IntOrString,
    host: Option<&str>,
    pod_ip: IpAddr,
    container: &Container,
) -> Outcome {
    let port = match resolve_port(port, container) {
        Ok(port) => port,
        Err(e) => return Outcome::Failure(e),
    };
    let host: IpAddr = host.and_then(|h| h.parse().ok()).unwrap_or(pod_ip);
    match TcpStream::connect(SocketAddr::new(host, port)).await {
        Ok(_) => Outcome::Success,
        Err(e) => Outcome::Failure(format!("dial tcp {host}:{port}: {e}")),
    }
}

/// Runs `probe` once against `container` of pod `uid` at `pod_ip`.
pub async fn run(
    probe: &Probe,
    runtime: &dyn Runtime,
    uid: &str,
    container: &Container,
    pod_ip: Option<IpAddr>,
) -> Outcome {
    let timeout = Duration::from_secs(
        probe
            .timeout_seconds
            .unwrap_or(1)
            .max(1)
            .unsigned_abs()
            .into(),
    );
    let attempt = async {
        if let Some(exec) = &probe.exec {
            let command = exec.command.clone().unwrap_or_default();
            return match runtime
                .exec_sync(uid, &container.name, &command, timeout)
                .await
            {
                Ok(out) if out.exit_code == 0 => Outcome::Success,
                Ok(out) => Outcome::Failure(format!(
                    "command {command:?} exited with {}: {}",
                    out.exit_code,
                    String::from_utf8_lossy(&out.stdout).trim()
                )),
                Err(e) => Outcome::Failure(e.to_string()),
            };
        }
        let Some(ip) = pod_ip else {
            return Outcome::Failure("the pod has no IP yet".into());
        };
        if let Some(http) = &probe.http_get {
            return http_get(http, ip, container).await;
        }
        if let Some(tcp) = &probe.tcp_socket {
            return tcp_connect(&tcp.port, tcp.host.as_deref(), ip, container).await;
        }
        Outcome::Failure(
            "only exec, httpGet and tcpSocket probes are supported by berth's agent".into(),
        )
    };
    // An exec probe's own timeout is the runtime's; give it a moment more.
    match tokio::time::timeout(timeout + Duration::from_millis(500), attempt).await {
        Ok(outcome) => outcome,
        Err(_) => Outcome::Failure(format!("probe timed out after {}s", timeout.as_secs())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn container() -> Container {
        serde_json::from_value(
            json!({"name": "app", "ports": [{"name": "http", "containerPort": 8080}]}),
        )
        .unwrap()
    }

    #[test]
    fn named_ports_resolve_from_the_container() {
        assert_eq!(
            resolve_port(&IntOrString::String("http".into()), &container()),
            Ok(8080)
        );
        assert_eq!(resolve_port(&IntOrString::Int(80), &container()), Ok(80));
        assert!(resolve_port(&IntOrString::String("nope".into()), &container()).is_err());
    }

    #[test]
    fn status_lines_parse() {
        assert_eq!(status_code(b"HTTP/1.1 204 No Content\r\n"), Some(204));
        assert_eq!(status_code(b"HTTP/1.0 404 Not Found\r\nx"), Some(404));
        assert_eq!(status_code(b"garbage"), None);
    }

    #[tokio::test]
    async fn http_and_tcp_probes_against_a_local_server() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            loop {
                let (mut socket, _) = listener.accept().await.unwrap();
                let mut buffer = [0u8; 1024];
                let n = socket.read(&mut buffer).await.unwrap_or(0);
                let text = String::from_utf8_lossy(&buffer[..n]).into_owned();
                let reply =
                    if text.starts_with("GET /ok ") && text.contains("User-Agent: kube-probe/") {
                        "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
                    } else {
                        "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n"
                    };
                let _ = socket.write_all(reply.as_bytes()).await;
            }
        });
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let action = |path: &str| HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::Int(i32::from(port)),
            ..HTTPGetAction::default()
        };
        assert_eq!(
            http_get(&action("/ok"), ip, &container()).await,
            Outcome::Success
        );
        assert_eq!(
            http_get(&action("/bad"), ip, &container()).await,
            Outcome::Failure("HTTP probe failed with statuscode: 503".into())
        );
        assert_eq!(
            tcp_connect(&IntOrString::Int(i32::from(port)), None, ip, &container()).await,
            Outcome::Success
        );
    }
}
