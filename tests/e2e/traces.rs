//! Traces across components, end to end: `berth server` exporting over
//! OTLP/gRPC and `berth sim` over OTLP/HTTP to a receiver in this test;
//! `kubectl apply` of a Deployment yields one trace holding the API server's
//! request, the deployment and replicaset controllers' passes, the
//! scheduler's bind and the agent's pod start, joined parent to child, with
//! the API server's spans for their own writes beneath them.
//! Spans still queued when a process stops on SIGTERM are sent before it
//! exits. Without an endpoint, objects carry no trace annotation, and
//! `--log-format json` writes one JSON object per line.

#[path = "traces/receiver.rs"]
mod receiver;
mod support;

use std::collections::{BTreeSet, HashSet};
use std::time::Duration;

use receiver::{ReceivedSpan, Receiver};
use support::{eventually, wait_for, Server, KUBECTL_1_33};

const TIMEOUT: Duration = Duration::from_secs(60);
const ANNOTATION_PATH: &str = "{.metadata.annotations.berth\\.dev/traceparent}";

fn deployment(name: &str) -> String {
    format!(
        r#"
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      containers: [{{name: app, image: "nginx:1.27"}}]
"#
    )
}

/// The components one Deployment's creation passes through.
const COMPONENTS: &[&str] = &[
    "apiserver",
    "deployment-controller",
    "replicaset-controller",
    "scheduler",
    "agent",
];

/// The spans of the trace the deployment controller's pass over `name`
/// belongs to, once it covers every component and every span's parent has
/// arrived too (children are often exported before their parents end), and
/// the API server's spans for each component's writes are there.
fn complete_trace(spans: &[ReceivedSpan], name: &str) -> Option<Vec<ReceivedSpan>> {
    let trace_id = spans
        .iter()
        .find(|s| {
            s.component.as_deref() == Some("deployment-controller")
                && s.object.as_deref() == Some(name)
        })?
        .trace_id
        .clone();
    let trace: Vec<ReceivedSpan> = spans
        .iter()
        .filter(|s| s.trace_id == trace_id)
        .cloned()
        .collect();
    let components: HashSet<&str> = trace
        .iter()
        .filter_map(|s| s.component.as_deref())
        .collect();
    let ids: HashSet<&str> = trace.iter().map(|s| s.span_id.as_str()).collect();
    let joined = trace
        .iter()
        .all(|s| s.parent_span_id.is_empty() || ids.contains(s.parent_span_id.as_str()));
    // Their writes carry a `traceparent` header, so the API server's spans
    // for them are their children.
    let parent_of = |s: &ReceivedSpan| trace.iter().find(|p| p.span_id == s.parent_span_id);
    let writes_traced = COMPONENTS[1..].iter().all(|component| {
        trace.iter().any(|s| {
            s.component.as_deref() == Some("apiserver")
                && parent_of(s).and_then(|p| p.component.as_deref()) == Some(*component)
        })
    });
    let complete = COMPONENTS.iter().all(|c| components.contains(c)) && joined && writes_traced;
    complete.then_some(trace)
}

#[test]
fn one_deployment_is_one_trace_across_components() {
    let receiver = Receiver::start();
    let grpc = format!("http://{}", receiver.grpc);
    let http = format!("http://{}", receiver.http);
    // Short batches: the processes are killed at the end, not shut down.
    let batch = ("OTEL_BSP_SCHEDULE_DELAY", "100");
    let server = Server::start_with_env(
        &["--otlp-endpoint", &grpc, "--otlp-protocol", "grpc"],
        &[batch],
    );
    // The node agent finds its endpoint in the standard variables instead.
    let mut nodes = server.spawn_berth_with_env(
        None,
        "sim-traces",
        &["sim", "--nodes", "1", "--name-prefix", "traces-"],
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &http),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            batch,
        ],
    );
    let k = server.kubectl(KUBECTL_1_33);
    k.ok_stdin(&["apply", "-f", "-"], &deployment("traced"));
    wait_for(
        "the pod Running",
        TIMEOUT,
        &server,
        &mut [&mut nodes],
        || {
            let phase = k.jsonpath(
                &["get", "pods", "-l", "app=traced"],
                "{.items[*].status.phase}",
            );
            (phase == "Running").then_some(())
        },
    );

    let trace = wait_for(
        "one complete trace",
        TIMEOUT,
        &server,
        &mut [&mut nodes],
        || complete_trace(&receiver.spans(), "traced"),
    );
    let trace_id = trace[0].trace_id.clone();
    let roots: Vec<&ReceivedSpan> = trace
        .iter()
        .filter(|s| s.parent_span_id.is_empty())
        .collect();
    assert_eq!(roots.len(), 1, "one root in {trace:#?}");
    assert_eq!(
        roots[0].component.as_deref(),
        Some("apiserver"),
        "{trace:#?}"
    );
    assert_eq!(roots[0].service, "berth-server");
    assert_eq!(roots[0].name, "apiserver.request");
    let names: BTreeSet<&str> = trace.iter().map(|s| s.name.as_str()).collect();
    for name in [
        "deployment-controller sync",
        "replicaset-controller sync",
        "scheduler bind",
        "agent start-pod",
    ] {
        assert!(names.contains(name), "{name} in {names:?}");
    }
    let services: BTreeSet<(&str, &str)> = trace
        .iter()
        .filter_map(|s| Some((s.component.as_deref()?, s.service.as_str())))
        .collect();
    for (component, service) in [
        ("deployment-controller", "berth-server"),
        ("replicaset-controller", "berth-server"),
        ("scheduler", "berth-server"),
        ("agent", "berth-sim"),
    ] {
        assert!(
            services.contains(&(component, service)),
            "{component} in {service}: {services:?}"
        );
    }
    // Each hop is a child of the one before it.
    let by_id = |id: &str| trace.iter().find(|s| s.span_id == id);
    let parent_component = |component: &str| {
        let span = trace
            .iter()
            .find(|s| s.component.as_deref() == Some(component))
            .unwrap();
        by_id(&span.parent_span_id).and_then(|p| p.component.clone())
    };
    assert_eq!(
        parent_component("deployment-controller").as_deref(),
        Some("apiserver")
    );
    assert_eq!(
        parent_component("replicaset-controller").as_deref(),
        Some("deployment-controller")
    );
    assert_eq!(
        parent_component("scheduler").as_deref(),
        Some("replicaset-controller")
    );
    assert_eq!(
        parent_component("agent").as_deref(),
        Some("replicaset-controller")
    );
    // The context travels on the objects, each carrying its own hop's span.
    let on_items = "{.items[0].metadata.annotations.berth\\.dev/traceparent}";
    let contexts = [
        k.jsonpath(&["get", "deployment", "traced"], ANNOTATION_PATH),
        k.jsonpath(&["get", "rs", "-l", "app=traced"], on_items),
        k.jsonpath(&["get", "pod", "-l", "app=traced"], on_items),
    ];
    for context in &contexts {
        assert!(
            context.starts_with(&format!("00-{trace_id}-")),
            "{contexts:?}"
        );
    }
    assert_eq!(
        contexts[0],
        format!("00-{trace_id}-{}-01", roots[0].span_id),
        "the Deployment carries the API server's request span"
    );
}

#[test]
fn queued_spans_are_flushed_when_the_server_stops() {
    let receiver = Receiver::start();
    let http = format!("http://{}", receiver.http);
    // Batches that never fill and a timer that never fires: only the
    // shutdown can send these spans.
    let server = Server::start_with_env(
        &[],
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &http),
            ("OTEL_BSP_SCHEDULE_DELAY", "3600000"),
            ("OTEL_BSP_MAX_QUEUE_SIZE", "1000000"),
            ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "1000000"),
        ],
    );
    let k = server.kubectl(KUBECTL_1_33);
    k.ok(&["get", "configmaps", "-n", "kube-system"]);
    let pid = server.pid().unwrap().to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(status.success());
    wait_for("the flushed spans", TIMEOUT, &server, &mut [], || {
        receiver
            .spans()
            .iter()
            .any(|s| {
                s.service == "berth-server"
                    && s.path.as_deref() == Some("/api/v1/namespaces/kube-system/configmaps")
            })
            .then_some(())
    });
}

#[test]
fn without_an_endpoint_objects_carry_no_context_and_json_logs_are_lines() {
    let server = Server::start_with(&["--log-format", "json"]);
    let k = server.kubectl(KUBECTL_1_33);
    k.ok_stdin(&["apply", "-f", "-"], &deployment("untraced"));
    let rs = eventually(TIMEOUT, || {
        let name = k.jsonpath(
            &["get", "rs", "-l", "app=untraced"],
            "{.items[*].metadata.name}",
        );
        (!name.is_empty()).then_some(name)
    });
    assert_eq!(
        k.jsonpath(&["get", "deployment", "untraced"], ANNOTATION_PATH),
        ""
    );
    assert_eq!(k.jsonpath(&["get", "rs", &rs], ANNOTATION_PATH), "");

    let log = server.log();
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty(), "the server logged nothing");
    for line in lines {
        let value: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not one JSON object per line ({e}): {line:?}"));
        assert!(value.is_object(), "{line:?}");
        assert!(
            value.get("level").is_some() && value.get("fields").is_some(),
            "{line:?}"
        );
    }
}
