//! The API server proxies `pods/log`, `pods/exec`, `pods/attach` and
//! `pods/portforward` to the node's kubelet API. A fake kubelet (HTTPS that
//! demands a client certificate from the cluster CA) stands in for the agent;
//! kubectl and raw HTTPS requests drive the real, in-process API server.

#[path = "node_proxy/cluster.rs"]
mod cluster;
#[path = "node_proxy/fake_kubelet.rs"]
mod fake_kubelet;

use std::time::Duration;

use bytes::Bytes;
use http::{header, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use self::cluster::{next_chunk, stderr, stdout, switching, Cluster, KUBECTL, STEP};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_logs_reads_the_container_log_from_the_kubelet() {
    let cluster = Cluster::start().await;
    let Some(logs) = cluster.kubectl(&["logs", "web"]).await else {
        return;
    };
    assert!(logs.status.success(), "{}", stderr(&logs));
    assert_eq!(
        stdout(&logs),
        "line 1 of web/app\nline 2 of web/app\nline 3 of web/app\n"
    );

    let options = cluster
        .kubectl(&["logs", "web", "--tail=2", "--timestamps", "--since=1h"])
        .await
        .unwrap();
    assert!(options.status.success(), "{}", stderr(&options));
    let asked = cluster.kubelet_requests_to("/containerLogs/default/web/app");
    assert_eq!(
        asked.last().unwrap().path_and_query,
        "/containerLogs/default/web/app?timestamps=true&sinceSeconds=3600&tailLines=2"
    );
    assert!(
        asked
            .iter()
            .all(|r| r.headers.get(header::AUTHORIZATION).is_none()),
        "the admin token must not reach the kubelet"
    );

    // kubectl picks the first container itself and says so; the server sees `container=app`.
    let multi = cluster.kubectl(&["logs", "multi"]).await.unwrap();
    assert!(multi.status.success(), "{}", stderr(&multi));
    assert!(stdout(&multi).starts_with("line 1 of multi/app\n"));
    assert!(
        stderr(&multi).contains("Defaulted container \"app\""),
        "{}",
        stderr(&multi)
    );
    let sidecar = cluster
        .kubectl(&["logs", "multi", "-c", "sidecar"])
        .await
        .unwrap();
    assert!(stdout(&sidecar).starts_with("line 1 of multi/sidecar\n"));

    // Without a container in the request, the server answers upstream's error.
    let raw = cluster
        .kubectl(&["get", "--raw", "/api/v1/namespaces/default/pods/multi/log"])
        .await
        .unwrap();
    assert!(!raw.status.success());
    assert!(
        stderr(&raw).contains(
            "Error from server (BadRequest): a container name must be specified for pod multi, choose one of: [setup app sidecar]"
        ),
        "{}",
        stderr(&raw)
    );

    let broken = cluster.kubectl(&["logs", "broken"]).await.unwrap();
    assert!(!broken.status.success());
    assert!(
        stderr(&broken).contains(
            "Error from server (BadRequest): container \"app\" in pod \"broken\" is waiting to start: ContainerCreating"
        ),
        "{}",
        stderr(&broken)
    );

    // Upstream answers 204 for a pod without a node; kubectl prints nothing.
    let pending = cluster.kubectl(&["logs", "pending"]).await.unwrap();
    assert!(pending.status.success(), "{}", stderr(&pending));
    assert_eq!(stdout(&pending), "");

    let ghost = cluster.kubectl(&["logs", "ghost"]).await.unwrap();
    assert!(
        stderr(&ghost).contains("pods \"ghost\" not found"),
        "{}",
        stderr(&ghost)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_requests_are_checked_as_upstream_before_reaching_the_kubelet() {
    let cluster = Cluster::start().await;
    let cases = [
        (
            "/api/v1/namespaces/default/pods/multi/log",
            400,
            "a container name must be specified for pod multi, choose one of: [setup app sidecar]",
        ),
        (
            "/api/v1/namespaces/default/pods/multi/log?container=nope",
            400,
            "container nope is not valid for pod multi",
        ),
        (
            "/api/v1/namespaces/default/pods/ghost/log",
            404,
            "pods \"ghost\" not found",
        ),
        (
            "/api/v1/namespaces/default/pods/web/log?tailLines=-1",
            422,
            "PodLogOptions \"web\" is invalid: tailLines: Invalid value: -1: must be greater than or equal to 0",
        ),
    ];
    for (path, code, message) in cases {
        assert_eq!(
            cluster.status(path).await,
            (code, message.to_owned()),
            "{path}"
        );
    }
    assert!(cluster.kubelet_requests_to("/containerLogs").is_empty());
    let (status, body) = cluster
        .get("/api/v1/namespaces/default/pods/pending/log")
        .await;
    assert_eq!((status, &body[..]), (StatusCode::NO_CONTENT, &b""[..]));

    // Init containers' logs are served too.
    let (status, body) = cluster
        .get("/api/v1/namespaces/default/pods/multi/log?container=setup")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.starts_with(b"line 1 of multi/setup\n"));

    let (status, discovery) = cluster.json(Method::GET, "/api/v1", Value::Null).await;
    assert_eq!(status, StatusCode::OK);
    for (name, verbs) in [
        ("pods/log", json!(["get"])),
        ("pods/exec", json!(["create", "get"])),
        ("pods/attach", json!(["create", "get"])),
        ("pods/portforward", json!(["create", "get"])),
    ] {
        let entry = discovery["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .unwrap_or_else(|| panic!("{name} is listed"));
        assert_eq!(entry["verbs"], verbs, "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_passes_each_chunk_on_as_the_kubelet_sends_it() {
    let cluster = Cluster::start().await;
    let response = cluster
        .send(
            Request::get("/api/v1/namespaces/default/pods/slow/log?follow=true")
                .body(Full::default())
                .unwrap(),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[header::CONTENT_TYPE], "text/plain");
    let mut body = response.into_body();
    // The kubelet has sent only the first line and keeps the stream open.
    assert_eq!(
        next_chunk(&mut body).await.as_deref(),
        Some(&b"first\n"[..])
    );
    assert_eq!(
        cluster
            .kubelet_requests_to("/containerLogs/default/slow/app")
            .last()
            .unwrap()
            .path_and_query,
        "/containerLogs/default/slow/app?follow=true"
    );
    let feed = cluster.kubelet.slow.lock().unwrap().clone().unwrap();
    feed.send(Bytes::from_static(b"second\n")).await.unwrap();
    assert_eq!(
        next_chunk(&mut body).await.as_deref(),
        Some(&b"second\n"[..])
    );
    *cluster.kubelet.slow.lock().unwrap() = None;
    drop(feed);
    assert_eq!(
        next_chunk(&mut body).await,
        None,
        "the stream ends with the kubelet's"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_upgrade_is_relayed_and_spliced_byte_for_byte() {
    let cluster = Cluster::start().await;
    let request = Request::post(
        "/api/v1/namespaces/default/pods/web/exec?command=sh&command=-c&command=cat%20-&stdin=true&stdout=true&stderr=true&tty=false",
    )
    .header(header::CONNECTION, "Upgrade")
    .header(header::UPGRADE, "SPDY/3.1")
    .header("X-Stream-Protocol-Version", "v4.channel.k8s.io")
    .header("X-Stream-Protocol-Version", "channel.k8s.io")
    .body(Full::default())
    .unwrap();
    let mut response = switching(cluster.send(request).await).await;
    assert_eq!(response.headers()[header::UPGRADE], "SPDY/3.1");
    assert_eq!(
        response.headers()["X-Stream-Protocol-Version"],
        "v4.channel.k8s.io"
    );
    let upgraded = tokio::time::timeout(STEP, hyper::upgrade::on(&mut response))
        .await
        .unwrap()
        .unwrap();
    let mut io = TokioIo::new(upgraded);
    for message in [&b"hello kubelet"[..], &[0u8, 1, 2, 255, 254][..]] {
        io.write_all(message).await.unwrap();
        let mut echoed = vec![0; message.len()];
        tokio::time::timeout(STEP, io.read_exact(&mut echoed))
            .await
            .expect("the echo comes back")
            .unwrap();
        assert_eq!(echoed, message);
    }

    let asked = cluster.kubelet_requests_to("/exec/");
    assert_eq!(asked.len(), 1);
    let asked = &asked[0];
    assert_eq!(asked.method, Method::POST);
    assert_eq!(
        asked.path_and_query,
        "/exec/default/web/app?command=sh&command=-c&command=cat+-&error=1&input=1&output=1&stderr=1&stdin=1&stdout=1"
    );
    let versions: Vec<_> = asked
        .headers
        .get_all("X-Stream-Protocol-Version")
        .iter()
        .collect();
    assert_eq!(versions, ["v4.channel.k8s.io", "channel.k8s.io"]);
    assert_eq!(asked.headers[header::UPGRADE], "SPDY/3.1");
    assert!(asked.headers.get(header::AUTHORIZATION).is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_websocket_upgrade_comes_back_as_the_kubelet_sent_it() {
    let cluster = Cluster::start().await;
    let request =
        Request::get("/api/v1/namespaces/default/pods/multi/attach?container=sidecar&stdout=true")
            .header(header::CONNECTION, "Upgrade")
            .header(header::UPGRADE, "websocket")
            .header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
            .header("Sec-WebSocket-Version", "13")
            .header("Sec-WebSocket-Protocol", "v5.channel.k8s.io")
            .header(header::ORIGIN, "http://localhost")
            .body(Full::default())
            .unwrap();
    let response = cluster.send(request).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(response.headers()["x-fake-kubelet"], "refused");
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"websocket refused by the fake kubelet");

    let asked = cluster.kubelet_requests_to("/attach/");
    assert_eq!(asked.len(), 1);
    assert_eq!(
        asked[0].path_and_query,
        "/attach/default/multi/sidecar?output=1&stdout=1"
    );
    for (name, value) in [
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ("sec-websocket-version", "13"),
        ("sec-websocket-protocol", "v5.channel.k8s.io"),
        ("origin", "http://localhost"),
        ("upgrade", "websocket"),
    ] {
        assert_eq!(asked[0].headers[name], value, "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_exec_falls_back_to_spdy_when_the_kubelet_refuses_websocket() {
    let cluster = Cluster::start().await;
    if !std::path::Path::new(KUBECTL).exists() {
        return;
    }
    // The fake kubelet speaks neither protocol for real: this checks only the
    // requests kubectl makes through the proxy, then stops kubectl.
    let mut exec = tokio::process::Command::new(KUBECTL)
        .arg("--kubeconfig")
        .arg(&cluster.kubeconfig)
        .arg("--cache-dir")
        .arg(cluster.dir.path().join("kubectl-cache"))
        .args(["exec", "web", "--", "echo", "hi"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let deadline = tokio::time::Instant::now() + STEP;
    let upgrades = loop {
        let asked = cluster.kubelet_requests_to("/exec/default/web/app");
        if asked
            .iter()
            .any(|r| r.headers[header::UPGRADE] == "SPDY/3.1")
        {
            break asked;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "kubectl never fell back to SPDY: {asked:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let _ = exec.kill().await;
    let protocols: Vec<_> = upgrades
        .iter()
        .map(|r| (r.method.clone(), r.headers[header::UPGRADE].clone()))
        .collect();
    assert_eq!(protocols[0].0, Method::GET);
    assert!(protocols[0].1.as_bytes().eq_ignore_ascii_case(b"websocket"));
    assert_eq!(
        protocols.last().unwrap(),
        &(Method::POST, "SPDY/3.1".parse().unwrap())
    );
    assert!(upgrades[0]
        .headers
        .get_all("sec-websocket-protocol")
        .iter()
        .any(|v| v.to_str().unwrap().contains("v5.channel.k8s.io")));
    assert_eq!(
        upgrades.last().unwrap().path_and_query,
        "/exec/default/web/app?command=echo&command=hi&error=1&output=1&stderr=1&stdout=1"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_and_port_forward_are_checked_before_dialing() {
    let cluster = Cluster::start().await;
    let upgrade = |path: &str| {
        Request::post(path)
            .header(header::CONNECTION, "Upgrade")
            .header(header::UPGRADE, "SPDY/3.1")
            .header("X-Stream-Protocol-Version", "v4.channel.k8s.io")
            .body(Full::default())
            .unwrap()
    };
    let cases = [
        (
            "/api/v1/namespaces/default/pods/web/exec?stdout=true",
            400,
            "you must specify at least 1 command",
        ),
        (
            "/api/v1/namespaces/default/pods/web/exec?command=ls",
            400,
            "you must specify at least 1 of stdin, stdout, stderr",
        ),
        (
            "/api/v1/namespaces/default/pods/multi/exec?command=ls&stdout=true",
            400,
            "a container name must be specified for pod multi, choose one of: [setup app sidecar]",
        ),
        (
            "/api/v1/namespaces/default/pods/web/exec?command=ls&stdout=true&container=db",
            400,
            "container db is not valid for pod web",
        ),
        (
            "/api/v1/namespaces/default/pods/pending/exec?command=ls&stdout=true",
            400,
            "pod pending does not have a host assigned",
        ),
        (
            "/api/v1/namespaces/default/pods/pending/portforward?ports=80",
            400,
            "pod pending does not have a host assigned",
        ),
        (
            "/api/v1/namespaces/default/pods/ghost/portforward",
            404,
            "pods \"ghost\" not found",
        ),
    ];
    for (path, code, message) in cases {
        let response = cluster.send(upgrade(path)).await;
        assert_eq!(response.status().as_u16(), code, "{path}");
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let status: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(status["message"], message, "{path}");
    }
    // Without an upgrade the request never reaches the kubelet.
    assert_eq!(
        cluster
            .status("/api/v1/namespaces/default/pods/web/exec?command=ls&stdout=true")
            .await,
        (400, "Upgrade request required".to_owned())
    );
    assert!(cluster.kubelet.requests().is_empty());

    // Port-forward names no container; the ports become repeated `port=`.
    let mut response = switching(
        cluster
            .send(upgrade(
                "/api/v1/namespaces/default/pods/multi/portforward?ports=8080&ports=9090",
            ))
            .await,
    )
    .await;
    let mut io = TokioIo::new(hyper::upgrade::on(&mut response).await.unwrap());
    io.write_all(b"ping").await.unwrap();
    let mut echoed = [0; 4];
    tokio::time::timeout(STEP, io.read_exact(&mut echoed))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&echoed, b"ping");
    assert_eq!(
        cluster.kubelet_requests_to("/portForward/")[0].path_and_query,
        "/portForward/default/multi?port=8080&port=9090"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_kubelet_answers_500_as_upstream_words_it() {
    let cluster = Cluster::start().await;
    let port = cluster.closed_port;
    let (code, message) = cluster
        .status("/api/v1/namespaces/default/pods/orphan/log")
        .await;
    assert_eq!(code, 500);
    assert_eq!(
        message,
        format!(
            "Get \"https://127.0.0.1:{port}/containerLogs/default/orphan/app\": dial tcp 127.0.0.1:{port}: connect: connection refused"
        )
    );
    let response = cluster
        .send(
            Request::post("/api/v1/namespaces/default/pods/orphan/exec?command=ls&stdout=true")
                .header(header::CONNECTION, "Upgrade")
                .header(header::UPGRADE, "SPDY/3.1")
                .body(Full::default())
                .unwrap(),
        )
        .await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let status: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        status["message"],
        format!("error dialing backend: dial tcp 127.0.0.1:{port}: connect: connection refused")
    );
    assert!(status.get("reason").is_none(), "{status}");

    if let Some(logs) = cluster.kubectl(&["logs", "orphan"]).await {
        assert!(
            stderr(&logs).contains(&format!(
                "Error from server: Get \"https://127.0.0.1:{port}/containerLogs/default/orphan/app\": dial tcp 127.0.0.1:{port}: connect: connection refused"
            )),
            "{}",
            stderr(&logs)
        );
    }
}
