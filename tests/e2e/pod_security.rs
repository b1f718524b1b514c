//! Pod Security admission through the real kubectl 1.33 against one `berth
//! server` (no nodes: pods need not run): a namespace labelled
//! `enforce=restricted` refuses a privileged pod with upstream's message and
//! admits a compliant one; `warn=baseline` admits with a `Warning:`; a
//! Deployment's template is only warned about; tightening a namespace's label
//! warns about its existing pods; invalid labels are refused; a
//! `--pod-security-config` sets the default level and exempts namespaces.

mod support;

use std::process::Output;

use support::{Kubectl, Server, KUBECTL_1_33};

const PRIVILEGED_POD: &str = "apiVersion: v1
kind: Pod
metadata: {name: priv}
spec:
  containers:
  - name: c
    image: busybox
    securityContext: {privileged: true}
";

const RESTRICTED_POD: &str = "apiVersion: v1
kind: Pod
metadata: {name: hardened}
spec:
  securityContext: {runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}}
  containers:
  - name: c
    image: busybox
    securityContext:
      allowPrivilegeEscalation: false
      capabilities: {drop: [ALL]}
";

const PRIVILEGED_DEPLOYMENT: &str = "apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: c
        image: busybox
        securityContext: {privileged: true}
";

/// Every reason restricted finds in `PRIVILEGED_POD`, in upstream's order.
const RESTRICTED_DETAIL: &str = "privileged (container \"c\" must not set securityContext.privileged=true), allowPrivilegeEscalation != false (container \"c\" must set securityContext.allowPrivilegeEscalation=false), unrestricted capabilities (container \"c\" must set securityContext.capabilities.drop=[\"ALL\"]), runAsNonRoot != true (pod or container \"c\" must set securityContext.runAsNonRoot=true), seccompProfile (pod or container \"c\" must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\")";

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn apply(k: &Kubectl, ns: &str, manifest: &str) -> Output {
    k.run_stdin(&["apply", "-n", ns, "-f", "-"], manifest)
}

#[test]
fn pod_security_levels_enforce_warn_and_check_existing_pods() {
    let server = Server::start();
    let k = server.kubectl(KUBECTL_1_33);
    for ns in ["secure", "relaxed", "legacy"] {
        k.ok(&["create", "namespace", ns]);
    }
    k.ok(&[
        "label",
        "ns",
        "secure",
        "pod-security.kubernetes.io/enforce=restricted",
    ]);
    k.ok(&[
        "label",
        "ns",
        "relaxed",
        "pod-security.kubernetes.io/warn=baseline",
    ]);

    let refused = apply(&k, "secure", PRIVILEGED_POD);
    assert_eq!(refused.status.code(), Some(1), "{}", stderr(&refused));
    assert_eq!(
        stderr(&refused).trim(),
        format!("Error from server (Forbidden): error when creating \"STDIN\": pods \"priv\" is forbidden: violates PodSecurity \"restricted:latest\": {RESTRICTED_DETAIL}")
    );
    let admitted = apply(&k, "secure", RESTRICTED_POD);
    assert!(admitted.status.success(), "{}", stderr(&admitted));
    assert_eq!(stderr(&admitted), "", "a compliant pod gets no warning");

    let warned = apply(&k, "relaxed", PRIVILEGED_POD);
    assert!(warned.status.success(), "{}", stderr(&warned));
    assert!(
        stderr(&warned).contains("Warning: would violate PodSecurity \"baseline:latest\": privileged (container \"c\" must not set securityContext.privileged=true)"),
        "{}",
        stderr(&warned)
    );
    k.ok(&["get", "pod", "priv", "-n", "relaxed"]);

    // Workloads are never refused, only warned about (warn follows enforce).
    let deployment = apply(&k, "secure", PRIVILEGED_DEPLOYMENT);
    assert!(deployment.status.success(), "{}", stderr(&deployment));
    assert!(
        stderr(&deployment).contains(&format!(
            "Warning: would violate PodSecurity \"restricted:latest\": {RESTRICTED_DETAIL}"
        )),
        "{}",
        stderr(&deployment)
    );
    k.ok(&["get", "deployment", "web", "-n", "secure"]);

    // Tightening a namespace warns about the pods already there.
    let existing = apply(&k, "legacy", PRIVILEGED_POD);
    assert!(existing.status.success(), "{}", stderr(&existing));
    let labelled = k.run(&[
        "label",
        "ns",
        "legacy",
        "pod-security.kubernetes.io/enforce=restricted",
    ]);
    assert!(labelled.status.success(), "{}", stderr(&labelled));
    assert_eq!(
        stderr(&labelled).lines().collect::<Vec<_>>(),
        [
            "Warning: existing pods in namespace \"legacy\" violate the new PodSecurity enforce level \"restricted:latest\"",
            "Warning: priv: privileged, allowPrivilegeEscalation != false, unrestricted capabilities, runAsNonRoot != true, seccompProfile",
        ]
    );
    // An update that changes no image is not evaluated again.
    k.ok(&["label", "pod", "priv", "-n", "legacy", "touched=yes"]);
    let image = k.run(&["set", "image", "pod/priv", "-n", "legacy", "c=busybox:2"]);
    assert!(!image.status.success());
    assert!(
        stderr(&image).contains(
            "pods \"priv\" is forbidden: violates PodSecurity \"restricted:latest\": privileged"
        ),
        "{}",
        stderr(&image)
    );

    let invalid = k.fails(&[
        "label",
        "ns",
        "relaxed",
        "pod-security.kubernetes.io/enforce=strict",
    ]);
    assert!(
        invalid.contains("metadata.labels[pod-security.kubernetes.io/enforce]: Invalid value: \"strict\": must be one of privileged, baseline, restricted"),
        "{invalid}"
    );
}

#[test]
fn a_pod_security_configuration_sets_defaults_and_exemptions() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("pod-security.yaml");
    std::fs::write(
        &config,
        "apiVersion: pod-security.admission.config.k8s.io/v1
kind: PodSecurityConfiguration
defaults: {enforce: baseline}
exemptions: {namespaces: [free]}
",
    )
    .unwrap();
    let server = Server::start_with(&["--pod-security-config", config.to_str().unwrap()]);
    let k = server.kubectl(KUBECTL_1_33);
    for ns in ["plain", "free"] {
        k.ok(&["create", "namespace", ns]);
    }
    let refused = apply(&k, "plain", PRIVILEGED_POD);
    assert_eq!(refused.status.code(), Some(1), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("pods \"priv\" is forbidden: violates PodSecurity \"baseline:latest\": privileged (container \"c\" must not set securityContext.privileged=true)"),
        "{}",
        stderr(&refused)
    );
    let exempt = apply(&k, "free", PRIVILEGED_POD);
    assert!(exempt.status.success(), "{}", stderr(&exempt));
    let labelled = k.run(&[
        "label",
        "ns",
        "free",
        "pod-security.kubernetes.io/enforce=restricted",
    ]);
    assert!(labelled.status.success(), "{}", stderr(&labelled));
    assert_eq!(
        stderr(&labelled).trim(),
        "Warning: namespace \"free\" is exempt from Pod Security, and the policy (enforce=restricted:latest) will be ignored"
    );
}
