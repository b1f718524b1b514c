//! Joining a node like kubelet's TLS bootstrap, end to end: a token from
//! `berth token create`, a simulated `berth agent` that has only that token,
//! the server's URL and its CA, its CertificateSigningRequest approved and
//! issued by the controller manager (`kubectl get csr`), the node Ready and
//! acting as `system:node:NAME` (SelfSubjectReview and RBAC refusals through
//! its certificate with curl), the certificate rotated by the node itself and
//! reused across a restart; an expired token refused with 401 and deleted;
//! a request for a subject that is not a node left Pending and, approved by
//! hand, failed by the signer.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use support::{berth_bin, eventually, Kubectl, Server, KUBECTL_1_33};

/// A `berth agent` that joins with a bootstrap token (no kubeconfig);
/// SIGKILLed when dropped.
struct JoiningAgent {
    child: Child,
    log: PathBuf,
}

impl JoiningAgent {
    fn start(server: &Server, name: &str, token: &str, data_dir: &Path) -> Self {
        let log = server.data_dir().join(format!("agent-{name}.log"));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        let ca = server.data_dir().join("tls").join("ca.crt");
        let child = Command::new(berth_bin())
            .args(["agent", "--runtime", "simulated", "--name", name])
            .args(["--heartbeat-interval", "1s"])
            .arg("--server")
            .arg(server.url())
            .arg("--bootstrap-token")
            .arg(token)
            .arg("--ca-file")
            .arg(&ca)
            .arg("--data-dir")
            .arg(data_dir)
            .env_remove("KUBECONFIG")
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("starting berth agent");
        Self { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits for the agent to exit (it must, within `timeout`) and returns its log.
    fn exits_within(mut self, timeout: Duration) -> (std::process::ExitStatus, String) {
        let status = eventually(timeout, || self.child.try_wait().unwrap());
        (status, self.log())
    }
}

impl Drop for JoiningAgent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn berth_token(server: &Server, args: &[&str]) -> String {
    let out = Command::new(berth_bin())
        .arg("token")
        .args(args)
        .arg("--kubeconfig")
        .arg(server.kubeconfig())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "berth token {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// curl against the server with the node's certificate (or a bearer token).
fn curl(server: &Server, identity: Identity<'_>, method: &str, path: &str, body: &str) -> Output {
    curl_as(server, identity, method, path, "application/json", body)
}

/// [`curl`] with a body of `content_type`.
fn curl_as(
    server: &Server,
    identity: Identity<'_>,
    method: &str,
    path: &str,
    content_type: &str,
    body: &str,
) -> Output {
    let mut command = Command::new("curl");
    command
        .args(["-sS", "-w", "\n%{http_code}", "-X", method])
        .arg("--cacert")
        .arg(server.data_dir().join("tls").join("ca.crt"))
        .args(["-H", &format!("Content-Type: {content_type}")]);
    match identity {
        Identity::Certificate(pem) => {
            command.arg("--cert").arg(pem).arg("--key").arg(pem);
        }
        Identity::Token(token) => {
            command.args(["-H", &format!("Authorization: Bearer {token}")]);
        }
    }
    if !body.is_empty() {
        command.args(["-d", body]);
    }
    command
        .arg(format!("{}{path}", server.url()))
        .output()
        .unwrap()
}

enum Identity<'a> {
    Certificate(&'a Path),
    Token(&'a str),
}

/// The HTTP status a bearer `token` gets listing pods.
fn token_status(server: &Server, token: &str) -> u16 {
    let path = "/api/v1/namespaces/default/pods";
    answer(&curl(server, Identity::Token(token), "GET", path, "")).1
}

/// The body and HTTP status of a curl run.
fn answer(out: &Output) -> (String, u16) {
    let text = String::from_utf8_lossy(&out.stdout);
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (body.to_owned(), code.trim().parse().unwrap_or(0))
}

fn csr_rows(kubectl: &Kubectl) -> String {
    kubectl.ok(&["get", "csr"])
}

fn node_ready(kubectl: &Kubectl, node: &str) -> bool {
    let out = kubectl.run(&[
        "get",
        "node",
        node,
        "-o",
        r#"jsonpath={.status.conditions[?(@.type=="Ready")].status}"#,
    ]);
    String::from_utf8_lossy(&out.stdout) == "True"
}

/// A kubelet client request for `cn` in `organization`, as the CSR manifest
/// `kubectl apply` takes.
fn kubelet_csr_manifest(name: &str, cn: &str, organization: &str) -> String {
    use base64::Engine;
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, organization);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, cn);
    let pem = params.serialize_request(&key).unwrap().pem().unwrap();
    let request = base64::engine::general_purpose::STANDARD.encode(pem);
    format!(
        "apiVersion: certificates.k8s.io/v1\nkind: CertificateSigningRequest\nmetadata: {{name: {name}}}\nspec:\n  request: {request}\n  signerName: kubernetes.io/kube-apiserver-client-kubelet\n  usages: [digital signature, client auth]\n"
    )
}

#[test]
fn bad_kubelet_requests_are_neither_auto_approved_nor_issued() {
    let server = Server::start();
    let kubectl = server.kubectl(KUBECTL_1_33);
    // Not a node's subject: the approver leaves it Pending; approved by hand,
    // the signer fails it with upstream's reason instead of issuing it.
    let manifest = kubelet_csr_manifest("not-a-node", "system:node:evil", "system:masters");
    kubectl.ok_stdin(&["apply", "-f", "-"], &manifest);
    std::thread::sleep(Duration::from_secs(2));
    let pending = kubectl.ok(&["get", "csr", "not-a-node", "--no-headers"]);
    assert!(pending.trim_end().ends_with("Pending"), "{pending}");
    assert!(pending.contains("kubernetes-admin"), "requestor: {pending}");
    kubectl.ok(&["certificate", "approve", "not-a-node"]);
    let failed = eventually(Duration::from_secs(20), || {
        let row = kubectl.ok(&["get", "csr", "not-a-node", "--no-headers"]);
        row.trim_end().ends_with("Approved,Failed").then_some(row)
    });
    let reason = kubectl.jsonpath(
        &["get", "csr", "not-a-node"],
        r#"{.status.conditions[?(@.type=="Failed")].reason}: {.status.conditions[?(@.type=="Failed")].message}"#,
    );
    assert_eq!(
        reason, "SignerValidationFailure: subject organization is not system:nodes",
        "{failed}"
    );
    let certificate = kubectl.jsonpath(&["get", "csr", "not-a-node"], "{.status.certificate}");
    assert!(certificate.is_empty());
    // A proper node request from the admin passes the approver's
    // SubjectAccessReview (system:masters may create nodeclient requests).
    let manifest = kubelet_csr_manifest("from-admin", "system:node:manual", "system:nodes");
    kubectl.ok_stdin(&["apply", "-f", "-"], &manifest);
    eventually(Duration::from_secs(20), || {
        let row = kubectl.ok(&["get", "csr", "from-admin", "--no-headers"]);
        row.trim_end().ends_with("Approved,Issued").then_some(())
    });
}

#[test]
fn node_joins_with_a_bootstrap_token_and_rotates_its_certificate() {
    // Certificates of 130 s: rotation (at 70–90% of a lifetime that starts
    // five minutes back) falls 1–87 s after issue.
    let server = Server::start_with(&["--cluster-signing-duration", "130s"]);
    let kubectl = server.kubectl(KUBECTL_1_33);
    let node = "bootstrap-n1";
    let data_dir = tempfile::Builder::new()
        .prefix("berth-e2e-bootstrap-agent")
        .tempdir()
        .unwrap();

    // An expired token is refused with 401, the agent says why, and the
    // tokencleaner deletes its Secret.
    let expired = berth_token(&server, &["create", "--ttl", "1s"])
        .trim()
        .to_owned();
    std::thread::sleep(Duration::from_millis(1500));
    let code = token_status(&server, &expired);
    assert_eq!(code, 401, "an expired bootstrap token must be refused");
    let expired_dir = tempfile::tempdir().unwrap();
    let refused = JoiningAgent::start(&server, "bootstrap-refused", &expired, expired_dir.path());
    let (status, log) = refused.exits_within(Duration::from_secs(30));
    assert!(!status.success(), "agent with an expired token must fail");
    let id = expired.split('.').next().unwrap();
    assert!(
        log.contains(&format!("refused bootstrap token {id}"))
            && log.contains("berth token create"),
        "the agent must say the token was refused and what to do:\n{log}"
    );
    eventually(Duration::from_secs(20), || {
        let out = kubectl.run(&[
            "get",
            "secret",
            "-n",
            "kube-system",
            &format!("bootstrap-token-{id}"),
        ]);
        (!out.status.success()).then_some(())
    });

    // A fresh token, listed as kubeadm lists them.
    let token = berth_token(&server, &["create", "--ttl", "1h", "--description", "e2e"])
        .trim()
        .to_owned();
    let (token_id, _) = token.split_once('.').unwrap();
    let list = berth_token(&server, &["list"]);
    assert!(list.starts_with("TOKEN"), "{list}");
    let row = list.lines().find(|l| l.starts_with(&token)).unwrap();
    assert!(
        row.contains("authentication,signing") && row.contains("e2e"),
        "{row}"
    );
    assert!(
        row.contains("system:bootstrappers:berth:default-node-token"),
        "{row}"
    );

    // The agent joins with it: its CSR is approved and issued, the node is Ready.
    let agent = JoiningAgent::start(&server, node, &token, data_dir.path());
    eventually(Duration::from_secs(60), || {
        node_ready(&kubectl, node).then_some(())
    });
    let rows = csr_rows(&kubectl);
    let header: Vec<&str> = rows.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "NAME",
            "AGE",
            "SIGNERNAME",
            "REQUESTOR",
            "REQUESTEDDURATION",
            "CONDITION"
        ]
    );
    let bootstrap_user = format!("system:bootstrap:{token_id}");
    let joined = rows
        .lines()
        .find(|l| l.contains(&bootstrap_user))
        .unwrap_or_else(|| panic!("no CSR from {bootstrap_user}:\n{rows}"));
    let cells: Vec<&str> = joined.split_whitespace().collect();
    assert!(cells[0].starts_with("node-csr-"), "{joined}");
    assert_eq!(cells[2], "kubernetes.io/kube-apiserver-client-kubelet");
    assert_eq!(cells[5], "Approved,Issued", "{joined}");
    let reason = kubectl.jsonpath(
        &["get", "csr", cells[0]],
        r#"{.status.conditions[?(@.type=="Approved")].reason}"#,
    );
    assert_eq!(reason, "AutoApproved");

    // Its key and certificate are the owner's only, and name the node.
    let pem = data_dir
        .path()
        .join("pki")
        .join("kubelet-client-current.pem");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&pem).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the node's key must be private");
    }
    let (body, code) = answer(&curl(
        &server,
        Identity::Certificate(&pem),
        "POST",
        "/apis/authentication.k8s.io/v1/selfsubjectreviews",
        r#"{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}"#,
    ));
    assert_eq!(code, 201, "{body}");
    let review: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        review["status"]["userInfo"]["username"],
        format!("system:node:{node}")
    );
    let groups = review["status"]["userInfo"]["groups"].to_string();
    assert!(groups.contains("system:nodes"), "{groups}");
    // What the node may not do is refused in its own name.
    let (body, code) = answer(&curl(
        &server,
        Identity::Certificate(&pem),
        "GET",
        "/apis/apps/v1/namespaces/default/deployments",
        "",
    ));
    assert_eq!(code, 403, "{body}");
    assert!(
        body.contains(&format!(
            "User \\\"system:node:{node}\\\" cannot list resource \\\"deployments\\\""
        )),
        "{body}"
    );
    // A node changes its own Node, not another's (NodeRestriction).
    let patch = r#"{"metadata":{"labels":{"touched":"yes"}}}"#;
    let patch_node = |name: &str| {
        let mut command = Command::new("curl");
        command
            .args(["-sS", "-w", "\n%{http_code}", "-X", "PATCH"])
            .arg("--cacert")
            .arg(server.data_dir().join("tls").join("ca.crt"))
            .arg("--cert")
            .arg(&pem)
            .arg("--key")
            .arg(&pem)
            .args([
                "-H",
                "Content-Type: application/merge-patch+json",
                "-d",
                patch,
            ])
            .arg(format!("{}/api/v1/nodes/{name}", server.url()));
        answer(&command.output().unwrap())
    };
    let (body, code) = patch_node(node);
    assert_eq!(code, 200, "{body}");
    let (body, code) = patch_node("some-other-node");
    assert_eq!(code, 403, "{body}");
    assert!(
        body.contains(&format!(
            "node \\\"{node}\\\" is not allowed to modify node \\\"some-other-node\\\""
        )),
        "{body}"
    );
    // The bootstrap token itself may ask for certificates but nothing else.
    let code = token_status(&server, &token);
    assert_eq!(code, 403);

    // The node renews its certificate itself before it expires.
    let first = std::fs::read_to_string(&pem).unwrap();
    let node_user = format!("system:node:{node}");
    let renewal = eventually(Duration::from_secs(150), || {
        csr_rows(&kubectl)
            .lines()
            .find(|l| l.contains(&node_user) && l.contains("Approved,Issued"))
            .map(str::to_owned)
    });
    eventually(Duration::from_secs(10), || {
        (std::fs::read_to_string(&pem).unwrap() != first).then_some(())
    });
    assert!(
        agent.log().contains("client certificate rotated"),
        "{renewal}\n{}",
        agent.log()
    );
    // Heartbeats go on with the new certificate.
    let lease_time = || {
        kubectl.jsonpath(
            &["get", "lease", "-n", "kube-node-lease", node],
            "{.spec.renewTime}",
        )
    };
    let before = lease_time();
    eventually(Duration::from_secs(15), || {
        (lease_time() != before).then_some(())
    });
    assert!(node_ready(&kubectl, node));

    // Restarted with the same flags, the agent keeps its certificate: no new
    // request from the bootstrap token.
    drop(agent);
    let bootstrap_requests =
        |rows: &str| rows.lines().filter(|l| l.contains(&bootstrap_user)).count();
    let before_restart = bootstrap_requests(&csr_rows(&kubectl));
    let agent = JoiningAgent::start(&server, node, &token, data_dir.path());
    eventually(Duration::from_secs(30), || {
        agent
            .log()
            .contains("using the node's client certificate")
            .then_some(())
    });
    let before = lease_time();
    eventually(Duration::from_secs(15), || {
        (lease_time() != before).then_some(())
    });
    assert_eq!(bootstrap_requests(&csr_rows(&kubectl)), before_restart);
    drop(agent);

    // A deleted token no longer authenticates.
    let deleted = berth_token(&server, &["delete", &token]);
    assert_eq!(
        deleted.trim(),
        format!("bootstrap token \"{token_id}\" deleted")
    );
    let code = token_status(&server, &token);
    assert_eq!(code, 401, "a deleted bootstrap token must be refused");
}
