//! Wire benchmark (issue 14): a list of 10,000 pods and a watch of 10,000
//! events, each read as JSON and as protobuf from the same server in the same
//! run; prints bytes on the wire and server CPU time per object, and the
//! protobuf/JSON ratios.
//!
//! `cargo run --release -p berth-bench --bin wire-bench [-- --pods 10000]`

use std::time::{Duration, Instant};

use anyhow::Context;
use berth_bench::{process_cpu, TestServer};
use http_body_util::BodyExt;
use serde_json::json;

const JSON: &str = "application/json";
const PROTOBUF: &str = "application/vnd.kubernetes.protobuf";

fn pod(i: usize) -> serde_json::Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": format!("web-{i}"), "labels": {"app": "web", "pod-template-hash": "5d8f7c9b4"},
                     "annotations": {"kubernetes.io/psp": "restricted"}},
        "spec": {
            "nodeName": format!("node-{}", i % 100),
            "containers": [{
                "name": "web", "image": "127.0.0.1:5000/web:v1",
                "ports": [{"containerPort": 8080, "name": "http"}],
                "env": [{"name": "GREETING", "value": "hello"}, {"name": "MODE", "value": "production"}],
                "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "500m", "memory": "256Mi"}},
                "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080}},
            }],
        },
    })
}

/// What one read cost.
struct Measure {
    bytes: usize,
    events: usize,
    cpu: Duration,
    wall: Duration,
}

async fn list(server: &TestServer, accept: &str) -> anyhow::Result<Measure> {
    let mut conn = server.connect().await?;
    let (cpu, wall) = (process_cpu(), Instant::now());
    let response = conn
        .send(
            http::Method::GET,
            "/api/v1/namespaces/default/pods",
            accept,
            None,
        )
        .await?;
    anyhow::ensure!(
        response.status().is_success(),
        "list failed: {}",
        response.status()
    );
    let body = response.into_body().collect().await?.to_bytes();
    Ok(Measure {
        bytes: body.len(),
        events: 0,
        cpu: process_cpu() - cpu,
        wall: wall.elapsed(),
    })
}

/// Counts complete events in a watch stream chunk buffer; returns bytes consumed.
fn count_events(buffer: &[u8], protobuf: bool, events: &mut usize) -> usize {
    let mut at = 0;
    if protobuf {
        while buffer.len() >= at + 4 {
            let length = u32::from_be_bytes(buffer[at..at + 4].try_into().unwrap()) as usize;
            if buffer.len() < at + 4 + length {
                break;
            }
            at += 4 + length;
            *events += 1;
        }
    } else {
        while let Some(newline) = buffer[at..].iter().position(|b| *b == b'\n') {
            at += newline + 1;
            *events += 1;
        }
    }
    at
}

async fn watch(
    server: &TestServer,
    accept: &str,
    from: &str,
    expected: usize,
) -> anyhow::Result<Measure> {
    let mut conn = server.connect().await?;
    let path =
        format!("/api/v1/namespaces/default/pods?watch=1&resourceVersion={from}&timeoutSeconds=60");
    let (cpu, wall) = (process_cpu(), Instant::now());
    let response = conn.send(http::Method::GET, &path, accept, None).await?;
    let mut body = response.into_body();
    let (mut bytes, mut events, mut pending) = (0usize, 0usize, Vec::<u8>::new());
    while events < expected {
        let frame = body.frame().await.context("watch ended early")??;
        if let Ok(data) = frame.into_data() {
            bytes += data.len();
            pending.extend_from_slice(&data);
            let used = count_events(&pending, accept == PROTOBUF, &mut events);
            pending.drain(..used);
        }
    }
    Ok(Measure {
        bytes,
        events,
        cpu: process_cpu() - cpu,
        wall: wall.elapsed(),
    })
}

fn report(name: &str, json: &Measure, proto: &Measure, objects: usize) {
    let per = |m: &Measure| {
        (
            m.bytes as f64 / objects as f64,
            m.cpu.as_secs_f64() * 1e6 / objects as f64,
        )
    };
    let (jb, jc) = per(json);
    let (pb, pc) = per(proto);
    println!(
        "{name:<28} JSON: {jb:>7.0} B/object {jc:>7.1} µs CPU/object ({:>6.0} ms wall)",
        json.wall.as_secs_f64() * 1e3
    );
    println!(
        "{:<28} protobuf: {pb:>3.0} B/object {pc:>7.1} µs CPU/object ({:>6.0} ms wall)",
        "",
        proto.wall.as_secs_f64() * 1e3
    );
    println!(
        "{:<28} ratio protobuf/JSON: bytes {:.2}x, CPU {:.2}x",
        "",
        pb / jb,
        pc / jc.max(0.001)
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut pods = 10_000usize;
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [flag, value] = args.as_slice() {
        anyhow::ensure!(flag == "--pods", "unknown flag {flag} (use --pods N)");
        pods = value.parse()?;
    }
    let server = TestServer::start().await?;
    let mut conn = server.connect().await?;
    let response = conn
        .send(
            http::Method::GET,
            "/api/v1/namespaces/default/pods",
            JSON,
            None,
        )
        .await?;
    let listed: serde_json::Value =
        serde_json::from_slice(&response.into_body().collect().await?.to_bytes())?;
    let start_rv = listed["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or("0")
        .to_owned();
    println!("creating {pods} pods…");
    let mut writers = Vec::new();
    for w in 0..8 {
        let mut conn = server.connect().await?;
        writers.push(tokio::spawn(async move {
            let mut i = w;
            while i < pods {
                let body = (pod(i).to_string(), "application/json");
                let status = conn
                    .request(
                        http::Method::POST,
                        "/api/v1/namespaces/default/pods",
                        Some(body),
                    )
                    .await?;
                anyhow::ensure!(status == 201, "create pod {i}: HTTP {status}");
                i += 8;
            }
            Ok::<_, anyhow::Error>(())
        }));
    }
    for writer in writers {
        writer.await??;
    }

    // Warm caches once, then measure each encoding.
    list(&server, JSON).await?;
    let list_json = list(&server, JSON).await?;
    let list_proto = list(&server, PROTOBUF).await?;
    let watch_json = watch(&server, JSON, &start_rv, pods).await?;
    let watch_proto = watch(&server, PROTOBUF, &start_rv, pods).await?;
    anyhow::ensure!(
        watch_json.events == pods && watch_proto.events == pods,
        "watches saw every event"
    );
    println!();
    report(
        &format!("list of {pods} pods"),
        &list_json,
        &list_proto,
        pods,
    );
    report(
        &format!("watch of {pods} events"),
        &watch_json,
        &watch_proto,
        pods,
    );
    server.stop().await
}
