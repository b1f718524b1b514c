//! The kubelet API end to end over TLS, against a fake runtime and a
//! stand-in streaming server: logs, follow, upgrades, refusals.

mod support;

use std::io::Write;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use self::support::{
    client, connect, get, pod, text, FakeRuntime, Pki, StreamingServer, TestServer,
};
use crate::runtime::{ContainerStatus, SandboxPhase, StreamRequest};

const LOG: &str = "2024-01-01T00:00:01.000000001Z stdout F one\n\
                   2024-01-01T00:00:02Z stderr P tw\n\
                   2024-01-01T00:00:02.5Z stderr F o\n\
                   2024-01-01T00:00:03Z stdout F three\n";

/// A runtime with pod `default/web` (containers `app`, `sidecar`) whose
/// log is a temporary file holding `LOG`.
fn runtime_with_log() -> (Arc<FakeRuntime>, tempfile::NamedTempFile) {
    let mut log = tempfile::NamedTempFile::new().unwrap();
    log.write_all(LOG.as_bytes()).unwrap();
    let runtime = FakeRuntime::default();
    *crate::lock(&runtime.pods) = vec![
        pod("old-uid", "default", "web", SandboxPhase::Stopped, &["app"]),
        pod(
            "uid-1",
            "default",
            "web",
            SandboxPhase::Running,
            &["app", "sidecar"],
        ),
    ];
    *crate::lock(&runtime.log) = Some(log.path().to_owned());
    (Arc::new(runtime), log)
}

#[tokio::test]
async fn logs_honour_tail_timestamps_and_limit() {
    let pki = Pki::new("cluster-ca");
    let (runtime, _log) = runtime_with_log();
    let server = TestServer::start(runtime, &pki, None).await;
    let cases = [
        ("/containerLogs/default/web/app", "one\ntwo\nthree\n"),
        ("/containerLogs/default/web/app?tailLines=2", "two\nthree\n"),
        (
            "/containerLogs/default/web/app?tailLines=2&timestamps=true",
            "2024-01-01T00:00:02.000000000Z two\n2024-01-01T00:00:03.000000000Z three\n",
        ),
        ("/containerLogs/default/web/app?limitBytes=6", "one\ntw"),
        (
            "/containerLogs/default/web/app?sinceTime=2024-01-01T00:00:02.5Z",
            "o\nthree\n",
        ),
    ];
    for (target, want) in cases {
        let response = get(&server, &pki, target).await;
        assert_eq!(response.headers()["content-type"], "text/plain", "{target}");
        assert_eq!(text(response).await, (200, want.to_owned()), "{target}");
    }
    server.stop().await;
}

#[tokio::test]
async fn follow_streams_appended_lines_until_the_run_ends() {
    let pki = Pki::new("cluster-ca");
    let (runtime, mut log) = runtime_with_log();
    let server = TestServer::start(Arc::clone(&runtime), &pki, None).await;
    let response = get(
        &server,
        &pki,
        "/containerLogs/default/web/app?follow=true&tailLines=1",
    )
    .await;
    assert_eq!(response.status(), 200);
    let mut body = response.into_body();
    let mut got = String::new();
    read_until(&mut body, &mut got, "three\n").await;
    log.write_all(b"2024-01-01T00:00:04Z stdout F four\n")
        .unwrap();
    read_until(&mut body, &mut got, "four\n").await;
    assert_eq!(got, "three\nfour\n");

    runtime.set_status(
        "app",
        ContainerStatus::Waiting {
            reason: "CrashLoopBackOff".into(),
            message: String::new(),
        },
    );
    let rest = tokio::time::timeout(Duration::from_secs(5), body.collect())
        .await
        .expect("a followed log ends with its run")
        .unwrap();
    assert!(rest.to_bytes().is_empty());
    server.stop().await;
}

#[tokio::test]
async fn a_followed_log_stops_when_the_client_goes_away() {
    let pki = Pki::new("cluster-ca");
    let (runtime, _log) = runtime_with_log();
    let server = TestServer::start(Arc::clone(&runtime), &pki, None).await;
    let mut sender = client(&server, &pki).await;
    let request = hyper::Request::get("/containerLogs/default/web/app?follow=1")
        .header("host", "node-1")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let mut body = sender.send_request(request).await.unwrap().into_body();
    read_until(&mut body, &mut String::new(), "three\n").await;
    drop((body, sender));
    // The follower asks the runtime about the run about once a second while it lives.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let asked = runtime.state_queries.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(
        runtime.state_queries.load(Ordering::SeqCst),
        asked,
        "the follower outlived its client"
    );
    server.stop().await;
}

/// Reads `body` until `text` has arrived, failing after a few seconds.
async fn read_until(body: &mut hyper::body::Incoming, got: &mut String, text: &str) {
    tokio::time::timeout(Duration::from_secs(5), async {
        while !got.contains(text) {
            let frame = body.frame().await.expect("the log stream ended").unwrap();
            if let Ok(data) = frame.into_data() {
                got.push_str(std::str::from_utf8(&data).unwrap());
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{text:?} never arrived; got {got:?}"));
}

#[tokio::test]
async fn unknown_pods_and_containers_are_404_with_a_message() {
    let pki = Pki::new("cluster-ca");
    let (runtime, _log) = runtime_with_log();
    let server = TestServer::start(runtime, &pki, None).await;
    let cases = [
        (
            "/containerLogs/default/nope/app",
            404,
            "pod \"nope\" not found in namespace \"default\"",
        ),
        (
            "/containerLogs/other/web/app",
            404,
            "pod \"web\" not found in namespace \"other\"",
        ),
        (
            "/containerLogs/default/web/db",
            404,
            "container \"db\" not found in pod \"web\"",
        ),
        (
            "/containerLogs/default/web/app?previous=true",
            404,
            "previous terminated container \"app\" in pod \"web\" not found",
        ),
        (
            "/containerLogs/default/web/app?tailLines=x",
            400,
            "tailLines",
        ),
        (
            "/exec/default/nope/app?command=ls&stdout=1",
            404,
            "pod \"nope\" not found",
        ),
        ("/metrics/nope", 404, "no path"),
    ];
    for (target, status, message) in cases {
        let (got_status, body) = text(get(&server, &pki, target).await).await;
        assert_eq!(got_status, status, "{target}: {body}");
        assert!(body.contains(message), "{target}: {body}");
    }
    server.stop().await;
}

#[tokio::test]
async fn an_upgrade_is_spliced_to_the_streaming_server() {
    let pki = Pki::new("cluster-ca");
    let (runtime, _log) = runtime_with_log();
    let streaming = StreamingServer::start().await;
    *crate::lock(&runtime.stream_url) = format!("http://{}/exec/token123", streaming.address);
    let server = TestServer::start(Arc::clone(&runtime), &pki, None).await;

    let mut sender = client(&server, &pki).await;
    let request = hyper::Request::post("/exec/default/web/app?command=sh&command=-c&command=echo+hi&stdin=1&stdout=1&stderr=1&tty=0")
        .header("host", "node-1")
        .header("connection", "Upgrade")
        .header("upgrade", "SPDY/3.1")
        .header("x-stream-protocol-version", "v4.channel.k8s.io")
        .header("x-stream-protocol-version", "v3.channel.k8s.io")
        .header("x-not-forwarded", "1")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), 101);
    assert_eq!(
        response.headers()["x-stream-protocol-version"],
        "v4.channel.k8s.io"
    );
    assert_eq!(response.headers()["upgrade"], "SPDY/3.1");
    let mut upgraded = TokioIo::new(hyper::upgrade::on(response).await.unwrap());
    upgraded
        .write_all(b"ping through the tunnel")
        .await
        .unwrap();
    let mut echoed = [0u8; 23];
    tokio::time::timeout(Duration::from_secs(5), upgraded.read_exact(&mut echoed))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&echoed, b"ping through the tunnel");

    let heads = crate::lock(&streaming.heads).clone();
    let head = heads[0].to_ascii_lowercase();
    assert!(
        head.starts_with("post /exec/token123 http/1.1\r\n"),
        "{head}"
    );
    assert!(
        head.contains("x-stream-protocol-version: v4.channel.k8s.io\r\n"),
        "{head}"
    );
    assert!(
        head.contains("x-stream-protocol-version: v3.channel.k8s.io\r\n"),
        "{head}"
    );
    assert!(head.contains("upgrade: spdy/3.1\r\n"), "{head}");
    assert!(!head.contains("x-not-forwarded"), "{head}");
    assert_eq!(
        crate::lock(&runtime.stream_requests).clone(),
        vec![StreamRequest::Exec {
            uid: "uid-1".into(),
            container: "app".into(),
            command: vec!["sh".into(), "-c".into(), "echo hi".into()],
            tty: false,
            stdin: true,
            stdout: true,
            stderr: true,
        }]
    );
    drop(upgraded);
    server.stop().await;
}

#[tokio::test]
async fn a_refused_upgrade_is_relayed_as_is() {
    let pki = Pki::new("cluster-ca");
    let (runtime, _log) = runtime_with_log();
    let streaming = StreamingServer::start().await;
    *crate::lock(&runtime.stream_url) = format!("http://{}/refuse/token", streaming.address);
    let server = TestServer::start(Arc::clone(&runtime), &pki, None).await;
    let mut sender = client(&server, &pki).await;
    let request = hyper::Request::get("/portForward/default/web?port=8080")
        .header("host", "node-1")
        .header("connection", "Upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-protocol", "v5.channel.k8s.io")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.headers()["content-type"], "text/plain");
    assert_eq!(
        text(response).await,
        (400, "websocket protocol not supported".to_owned())
    );
    let head = crate::lock(&streaming.heads)[0].to_ascii_lowercase();
    assert!(
        head.contains("sec-websocket-protocol: v5.channel.k8s.io\r\n"),
        "{head}"
    );
    assert_eq!(
        crate::lock(&runtime.stream_requests).clone(),
        vec![StreamRequest::PortForward {
            uid: "uid-1".into(),
            ports: vec![8080]
        }]
    );
    server.stop().await;
}

#[tokio::test]
async fn exec_into_a_container_that_is_not_running_is_refused() {
    let pki = Pki::new("cluster-ca");
    let (runtime, _log) = runtime_with_log();
    runtime.set_status(
        "sidecar",
        ContainerStatus::Waiting {
            reason: "ContainerCreating".into(),
            message: String::new(),
        },
    );
    let server = TestServer::start(Arc::clone(&runtime), &pki, None).await;
    let (status, body) =
        text(get(&server, &pki, "/attach/default/web/sidecar?stdout=1").await).await;
    assert_eq!(
        (status, body.trim()),
        (400, "container \"sidecar\" in pod \"web\" is not running")
    );
    assert!(crate::lock(&runtime.stream_requests).is_empty());
    server.stop().await;
}

#[tokio::test]
async fn clients_without_a_cluster_certificate_are_refused_at_the_tls_level() {
    let pki = Pki::new("cluster-ca");
    let stranger = Pki::new("some-other-ca");
    let (runtime, _log) = runtime_with_log();
    let server = TestServer::start(runtime, &pki, None).await;
    for identity in [
        None,
        Some((
            stranger.client_cert_pem.as_str(),
            stranger.client_key_pem.as_str(),
        )),
    ] {
        // With TLS 1.3 the client may finish its handshake before the server
        // checks its certificate; the refusal then arrives on first read.
        let refused = match connect(server.address, &server.serving_cert_pem, identity).await {
            Err(_) => true,
            Ok(mut tls) => {
                let _ = tls
                    .write_all(b"GET /containerLogs/default/web/app HTTP/1.1\r\nhost: x\r\n\r\n")
                    .await;
                let mut buf = [0u8; 64];
                // An answer (or a connection left open) means it was served.
                match tokio::time::timeout(Duration::from_secs(5), tls.read(&mut buf)).await {
                    Ok(Err(_) | Ok(0)) => true,
                    Ok(Ok(_)) | Err(_) => false,
                }
            }
        };
        assert!(
            refused,
            "a client presenting {:?} was served",
            identity.map(|_| "a foreign certificate")
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn a_configured_serving_certificate_is_used() {
    let pki = Pki::new("cluster-ca");
    let (runtime, _log) = runtime_with_log();
    let serving = pki.serving(&["127.0.0.1"]);
    let server = TestServer::start(runtime, &pki, Some(serving.clone())).await;
    assert_eq!(server.serving_cert_pem, serving.0);
    // Trusting only the CA works: the served certificate is the CA-signed one.
    let tls = connect(
        server.address,
        &pki.ca_pem,
        Some((&pki.client_cert_pem, &pki.client_key_pem)),
    )
    .await;
    assert!(tls.is_ok(), "{:?}", tls.err());
    server.stop().await;
}

#[tokio::test]
async fn binding_a_taken_port_names_the_address() {
    let pki = Pki::new("cluster-ca");
    let taken = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = taken.local_addr().unwrap();
    let config = super::ServerConfig {
        listen: address,
        node_name: "node-1".into(),
        client_ca_pem: pki.ca_pem.clone(),
        serving_cert_pem: None,
        serving_key_pem: None,
    };
    let error = super::Server::bind(
        config,
        Arc::new(FakeRuntime::default()),
        crate::metrics::KubeletMetrics::new("node-1"),
    )
    .await
    .err()
    .expect("the port is taken");
    assert!(matches!(error, super::ServerError::Bind { .. }), "{error}");
    assert!(error.to_string().contains(&address.to_string()), "{error}");
}

#[tokio::test]
async fn the_nodes_usage_is_served_as_summary_and_resource_metrics() {
    let pki = Pki::new("cluster-ca");
    let (runtime, _log) = runtime_with_log();
    let server = TestServer::start(runtime, &pki, None).await;
    let (status, body) = text(get(&server, &pki, "/stats/summary").await).await;
    assert_eq!(status, 200, "{body}");
    let summary: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(summary["node"]["nodeName"], "node-1");
    // Only the running pod, with its running containers (no usage: the fake runs nothing).
    let pods = summary["pods"].as_array().unwrap();
    assert_eq!(pods.len(), 1, "{body}");
    assert_eq!(pods[0]["podRef"]["uid"], "uid-1");
    assert_eq!(pods[0]["containers"].as_array().unwrap().len(), 2);
    assert_eq!(pods[0]["containers"][0]["cpu"]["usageCoreNanoSeconds"], 0);
    let (status, body) = text(get(&server, &pki, "/metrics/resource").await).await;
    assert_eq!(status, 200);
    assert!(
        body.contains("container_cpu_usage_seconds_total{container=\"app\",namespace=\"default\",pod=\"web\"} 0 "),
        "{body}"
    );
    assert!(body.contains("resource_scrape_error 0\n"), "{body}");
    server.stop().await;
}

#[tokio::test]
async fn kubelet_and_cadvisor_metrics_are_served_to_cluster_clients() {
    let pki = Pki::new("cluster-ca");
    let (runtime, _log) = runtime_with_log();
    let server = TestServer::start(runtime, &pki, None).await;
    let (status, body) = text(get(&server, &pki, "/metrics").await).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\nkubelet_running_pods 1\n"), "{body}");
    assert!(
        !body.contains("# EOF"),
        "text format 0.0.4 was asked for: {body}"
    );
    let (status, body) = text(get(&server, &pki, "/metrics/cadvisor").await).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains(
            "container_cpu_usage_seconds_total{container=\"app\",pod=\"web\",namespace=\"default\""
        ),
        "{body}"
    );
    assert!(
        body.contains(
            "container_memory_working_set_bytes{container=\"\",pod=\"web\",namespace=\"default\""
        ),
        "{body}"
    );
    server.stop().await;
}
