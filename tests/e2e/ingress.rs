//! Ingress on a real node: `berth server` (which creates the default
//! IngressClass `berth` and fills Ingress status) and `berth agent
//! --runtime cri` whose ingress proxy listens on free ports of its address
//! (127.0.0.1), two busybox httpd backends, driven with kubectl 1.33 and
//! curl (`--resolve`, so traffic only goes to loopback). Covers host and
//! path routing to two Services (port by name and by number), Exact vs
//! Prefix, 503 for a Service without endpoints, 404 for no match and for
//! another class's Ingress, a default backend, TLS from a Secret picked by
//! SNI (HTTP/2 by ALPN) and the default certificate for other hosts, and
//! `status.loadBalancer` showing the node's IP.

mod cri_node;
mod support;

use std::process::Command;
use std::time::Duration;

use cri_node::{CriNode, Registry};
use support::{eventually, free_port, Server, KUBECTL_1_33};

const NAMESPACE: &str = "ing-e2e";

/// Two web pods with distinct pages, their Services, a Service with no
/// endpoints, and a class of another controller.
const BACKENDS: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: web-a, namespace: ing-e2e, labels: {app: web-a}}
spec:
  containers:
  - name: server
    image: REGISTRY/web:1
    command: ["sh", "-c", "mkdir -p /www/exact && echo page-a > /www/index.html && echo dir-a > /www/exact/index.html && exec httpd -f -p 80 -h /www"]
---
apiVersion: v1
kind: Pod
metadata: {name: web-b, namespace: ing-e2e, labels: {app: web-b}}
spec:
  containers:
  - name: server
    image: REGISTRY/web:1
    command: ["sh", "-c", "mkdir -p /www/api && echo page-b > /www/index.html && echo api-b > /www/api/index.html && echo exact-b > /www/exact && exec httpd -f -p 80 -h /www"]
---
apiVersion: v1
kind: Service
metadata: {name: svc-a, namespace: ing-e2e}
spec:
  selector: {app: web-a}
  ports: [{name: http, port: 80, targetPort: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: svc-b, namespace: ing-e2e}
spec:
  selector: {app: web-b}
  ports: [{name: web, port: 8080, targetPort: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: svc-empty, namespace: ing-e2e}
spec:
  selector: {app: nothing}
  ports: [{port: 80}]
---
apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata: {name: ing-e2e-other}
spec: {controller: example.com/other}
"#;

const INGRESSES: &str = r#"
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: main, namespace: ing-e2e}
spec:
  ingressClassName: berth
  tls:
  - hosts: [a.ing.test]
    secretName: a-tls
  rules:
  - host: a.ing.test
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: svc-a, port: {name: http}}}}
      - {path: /api, pathType: Prefix, backend: {service: {name: svc-b, port: {number: 8080}}}}
      - {path: /exact, pathType: Exact, backend: {service: {name: svc-b, port: {number: 8080}}}}
  - host: "*.wild.ing.test"
    http:
      paths:
      - {path: /, pathType: ImplementationSpecific, backend: {service: {name: svc-b, port: {name: web}}}}
      - {path: /none, pathType: Prefix, backend: {service: {name: svc-empty, port: {number: 80}}}}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: other, namespace: ing-e2e}
spec:
  ingressClassName: ing-e2e-other
  rules:
  - host: other.ing.test
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: svc-a, port: {number: 80}}}}
"#;

/// No class: the API server defaults it to `berth`.
const DEFAULT_BACKEND: &str = r#"
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: fallback, namespace: ing-e2e}
spec:
  defaultBackend: {service: {name: svc-b, port: {number: 8080}}}
"#;

/// What curl got: the status code (0 when it failed), the body, the HTTP
/// version and curl's exit code.
struct Got {
    status: u16,
    body: String,
    version: String,
    exit: i32,
}

/// `curl` to `scheme://host:port/path`, resolving the host to 127.0.0.1.
fn curl(scheme: &str, host: &str, port: u16, path: &str, extra: &[&str]) -> Got {
    let output = Command::new("curl")
        .args(["-s", "-m", "5", "-w", "\n%{http_code} %{http_version}"])
        .args(["--resolve", &format!("{host}:{port}:127.0.0.1")])
        .args(extra)
        .arg(format!("{scheme}://{host}:{port}{path}"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let (body, tail) = text.rsplit_once('\n').unwrap_or(("", &text));
    let mut tail = tail.split(' ');
    Got {
        status: tail.next().and_then(|s| s.parse().ok()).unwrap_or(0),
        version: tail.next().unwrap_or("").to_owned(),
        body: body.trim().to_owned(),
        exit: output.status.code().unwrap_or(-1),
    }
}

#[test]
fn ingress_routes_hosts_and_paths_terminates_tls_and_reports_the_node() {
    let registry = Registry::start();
    // A cluster range of its own, so this node's bridge never overlaps another test's.
    let cidr = format!("10.{}.0.0/16", 200 + registry.port % 50);
    let server = Server::start_with(&["--cluster-cidr", &cidr]);
    let kubectl = server.kubectl(KUBECTL_1_33);
    let (http, https) = (free_port(), free_port());
    let (http_flag, https_flag) = (http.to_string(), https.to_string());
    let _node = CriNode::start_with(
        &server,
        &registry,
        "ing-node",
        &[
            "--ingress-http-port",
            &http_flag,
            "--ingress-https-port",
            &https_flag,
        ],
    );
    kubectl.ok(&["create", "namespace", NAMESPACE]);

    // The server made the default class.
    let default = eventually(Duration::from_secs(30), || {
        let out = kubectl.run(&[
            "get",
            "ingressclass",
            "berth",
            "-o",
            "jsonpath={.spec.controller} {.metadata.annotations.ingressclass\\.kubernetes\\.io/is-default-class}",
        ]);
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    });
    assert_eq!(default, "berth.dev/ingress true");

    // A certificate for a.ing.test, as a kubernetes.io/tls Secret.
    let dir = tempfile::tempdir().unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["a.ing.test".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let (cert_path, key_path) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    let cert_arg = format!("--cert={}", cert_path.display());
    let key_arg = format!("--key={}", key_path.display());
    let ca_arg = cert_path.display().to_string();
    kubectl.ok(&[
        "create", "secret", "tls", "a-tls", "-n", NAMESPACE, &cert_arg, &key_arg,
    ]);

    let with_registry = BACKENDS.replace("REGISTRY", &registry.host());
    kubectl.ok_stdin(&["apply", "-f", "-"], &with_registry);
    kubectl.ok_stdin(&["apply", "-f", "-"], INGRESSES);
    kubectl.ok(&[
        "wait",
        "--for=condition=Ready",
        "pod/web-a",
        "pod/web-b",
        "-n",
        NAMESPACE,
        "--timeout=90s",
    ]);

    // status.loadBalancer: the node's InternalIP; the other class's Ingress is left alone.
    let ip = eventually(Duration::from_secs(30), || {
        let ip = kubectl.jsonpath(
            &["get", "ingress", "main", "-n", NAMESPACE],
            "{.status.loadBalancer.ingress[*].ip}",
        );
        (!ip.is_empty()).then_some(ip)
    });
    assert_eq!(ip, "127.0.0.1");
    let wide = kubectl.ok(&["get", "ingress", "main", "-n", NAMESPACE]);
    assert!(
        wide.contains("127.0.0.1") && wide.contains("berth"),
        "{wide}"
    );

    // Routing (once the endpoints reached the proxy).
    eventually(Duration::from_secs(30), || {
        (curl("http", "a.ing.test", http, "/", &[]).body == "page-a").then_some(())
    });
    let cases: &[(&str, &str, u16, &str)] = &[
        ("a.ing.test", "/", 200, "page-a"),
        ("A.ING.TEST", "/index.html", 200, "page-a"),
        ("a.ing.test", "/api/", 200, "api-b"),
        ("a.ing.test", "/exact", 200, "exact-b"),
        // Exact does not match with a trailing slash: the / prefix does.
        ("a.ing.test", "/exact/", 200, "dir-a"),
        ("x.wild.ing.test", "/", 200, "page-b"),
        ("x.wild.ing.test", "/none", 503, ""),
        ("wild.ing.test", "/", 404, ""),
        ("y.x.wild.ing.test", "/", 404, ""),
        ("unknown.ing.test", "/", 404, ""),
        ("other.ing.test", "/", 404, ""),
    ];
    for &(host, path, status, body) in cases {
        let got = curl("http", host, http, path, &[]);
        assert_eq!(got.status, status, "http://{host}{path}: {}", got.body);
        if status == 200 {
            assert_eq!(got.body, body, "http://{host}{path}");
        }
    }

    // TLS: a.ing.test's certificate verifies against the Secret's; h2 by ALPN.
    let tls = curl(
        "https",
        "a.ing.test",
        https,
        "/api/",
        &["--cacert", &ca_arg],
    );
    assert_eq!((tls.exit, tls.status), (0, 200), "https a.ing.test");
    assert_eq!((tls.body.as_str(), tls.version.as_str()), ("api-b", "2"));
    let h1 = curl(
        "https",
        "a.ing.test",
        https,
        "/",
        &["--cacert", &ca_arg, "--http1.1"],
    );
    assert_eq!(
        (h1.status, h1.body.as_str(), h1.version.as_str()),
        (200, "page-a", "1.1")
    );
    // Another host gets the default certificate, which that CA does not sign.
    let other = curl(
        "https",
        "x.wild.ing.test",
        https,
        "/",
        &["--cacert", &ca_arg],
    );
    assert_eq!(other.exit, 60, "certificate problem expected");
    let insecure = curl("https", "x.wild.ing.test", https, "/", &["-k"]);
    assert_eq!((insecure.status, insecure.body.as_str()), (200, "page-b"));

    // A default backend takes what matches no rule (hosts with rules keep theirs).
    kubectl.ok_stdin(&["apply", "-f", "-"], DEFAULT_BACKEND);
    let class = kubectl.jsonpath(
        &["get", "ingress", "fallback", "-n", NAMESPACE],
        "{.spec.ingressClassName}",
    );
    assert_eq!(class, "berth");
    eventually(Duration::from_secs(30), || {
        (curl("http", "unknown.ing.test", http, "/", &[]).body == "page-b").then_some(())
    });
    assert_eq!(curl("http", "a.ing.test", http, "/", &[]).body, "page-a");

    kubectl.ok(&["delete", "namespace", NAMESPACE, "--timeout=60s"]);
    kubectl.ok(&["delete", "ingressclass", "ing-e2e-other"]);
}
