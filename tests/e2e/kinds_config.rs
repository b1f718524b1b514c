//! The configuration and cluster-plumbing kinds (networking, storage, node,
//! admission registration, certificates, events.k8s.io, scheduling, API
//! registration) driven by the real kubectl 1.33 (protobuf) against one
//! `berth server`: upstream examples applied, read back as tables, YAML,
//! describe and explain, edited, refused with upstream's messages, deleted;
//! plus the Priority admission, CSR approval, the Events conversion, and the
//! default ServiceCIDR (kept, re-created when deleted) with one IPAddress per
//! ClusterIP.

mod support;

use std::process::Command;

use support::{manifest, Kubectl, Server, KUBECTL_1_33};

/// What is checked of one kind.
struct Case {
    /// File under `tests/manifests/kinds/`.
    file: &'static str,
    /// The resource as kubectl names it (`ingress`, `sc`, …).
    resource: &'static str,
    /// The example's name.
    name: &'static str,
    /// The upstream column headers `kubectl get` prints.
    headers: &'static str,
    /// Lines `-o yaml` shows (upstream defaults among them).
    yaml: &'static [&'static str],
    /// A merge patch and a line `-o yaml` shows after it.
    patch: (&'static str, &'static str),
    /// An invalid object and upstream's message for it.
    invalid: (&'static str, &'static str),
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            file: "ingress.yaml",
            resource: "ing",
            name: "minimal-ingress",
            headers: "NAME              CLASS           HOSTS   ADDRESS   PORTS   AGE",
            yaml: &["generation: 1", "pathType: Prefix", "ingressClassName: nginx-example"],
            patch: (r#"{"spec":{"ingressClassName":"other"}}"#, "generation: 2"),
            invalid: (
                "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: bad}\nspec:\n  rules:\n  - http:\n      paths:\n      - path: /x\n        backend: {service: {name: a, port: {number: 80}}}\n",
                "spec.rules[0].http.paths[0].pathType: Required value: pathType must be specified",
            ),
        },
        Case {
            file: "ingressclass.yaml",
            resource: "ingressclass",
            name: "external-lb",
            headers: "NAME          CONTROLLER                       PARAMETERS                                      AGE",
            yaml: &["scope: Cluster", "controller: example.com/ingress-controller"],
            patch: (r#"{"metadata":{"annotations":{"ingressclass.kubernetes.io/is-default-class":"true"}}}"#, "is-default-class: \"true\""),
            invalid: (
                "apiVersion: networking.k8s.io/v1\nkind: IngressClass\nmetadata: {name: bad}\nspec: {}\n",
                "spec.controller: Required value",
            ),
        },
        Case {
            file: "networkpolicy.yaml",
            resource: "netpol",
            name: "test-network-policy",
            headers: "NAME                  POD-SELECTOR   AGE",
            yaml: &["protocol: TCP", "- Egress"],
            patch: (r#"{"spec":{"podSelector":{"matchLabels":{"role":"cache"}}}}"#, "role: cache"),
            invalid: (
                "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: bad}\nspec:\n  podSelector: {}\n  policyTypes: [Sideways]\n",
                "spec.policyTypes[0]: Unsupported value: \"Sideways\": supported values: \"Ingress\", \"Egress\"",
            ),
        },
        Case {
            file: "storageclass.yaml",
            resource: "sc",
            name: "local-storage",
            headers: "NAME            PROVISIONER                    RECLAIMPOLICY   VOLUMEBINDINGMODE      ALLOWVOLUMEEXPANSION   AGE",
            yaml: &["reclaimPolicy: Delete", "volumeBindingMode: WaitForFirstConsumer"],
            patch: (r#"{"allowVolumeExpansion":true}"#, "allowVolumeExpansion: true"),
            invalid: (
                "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata: {name: bad}\nprovisioner: example.com/p\nreclaimPolicy: Recycle\n",
                "reclaimPolicy: Unsupported value: \"Recycle\": supported values: \"Delete\", \"Retain\"",
            ),
        },
        Case {
            file: "csidriver.yaml",
            resource: "csidriver",
            name: "mycsidriver.example.com",
            headers: "NAME                      ATTACHREQUIRED   PODINFOONMOUNT   STORAGECAPACITY   TOKENREQUESTS   REQUIRESREPUBLISH   MODES                  AGE",
            yaml: &["storageCapacity: false", "fsGroupPolicy: File"],
            patch: (r#"{"spec":{"podInfoOnMount":false}}"#, "podInfoOnMount: false"),
            invalid: (
                "apiVersion: storage.k8s.io/v1\nkind: CSIDriver\nmetadata: {name: bad.example.com}\nspec:\n  volumeLifecycleModes: [Sometimes]\n",
                "spec.volumeLifecycleModes[0]: Unsupported value: \"Sometimes\": supported values: \"Ephemeral\", \"Persistent\"",
            ),
        },
        Case {
            file: "csinode.yaml",
            resource: "csinode",
            name: "node1",
            headers: "NAME    DRIVERS   AGE",
            yaml: &["nodeID: storageNodeID1"],
            patch: (r#"{"metadata":{"labels":{"zone":"a"}}}"#, "zone: a"),
            invalid: (
                "apiVersion: storage.k8s.io/v1\nkind: CSINode\nmetadata: {name: bad}\nspec:\n  drivers:\n  - name: d.example.com\n",
                "spec.drivers[0].nodeID: Required value",
            ),
        },
        Case {
            file: "csistoragecapacity.yaml",
            resource: "csistoragecapacities",
            name: "csisc-zone-a",
            headers: "NAME           STORAGECLASSNAME   CAPACITY",
            yaml: &["storageClassName: standard", "maximumVolumeSize: 10Gi", "topology.kubernetes.io/zone: us-east1-a"],
            patch: (r#"{"capacity":"50Gi"}"#, "capacity: 50Gi"),
            invalid: (
                "apiVersion: storage.k8s.io/v1\nkind: CSIStorageCapacity\nmetadata: {name: bad}\nstorageClassName: Fast_Disks\ncapacity: 1Gi\n",
                "storageClassName: Invalid value: \"Fast_Disks\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters",
            ),
        },
        Case {
            file: "servicecidr.yaml",
            resource: "servicecidrs",
            name: "newcidr1",
            headers: "NAME       CIDRS          AGE",
            yaml: &["- 10.96.0.0/24"],
            patch: (r#"{"metadata":{"labels":{"tier":"extra"}}}"#, "tier: extra"),
            invalid: (
                "apiVersion: networking.k8s.io/v1\nkind: ServiceCIDR\nmetadata: {name: bad}\nspec:\n  cidrs: [10.0.0.0/24, 10.1.0.0/24]\n",
                "spec.cidrs: Invalid value: networking.ServiceCIDRSpec{CIDRs:[]string{\"10.0.0.0/24\", \"10.1.0.0/24\"}}: may specify no more than one IP for each IP family, i.e 192.168.0.0/24 and 2001:db8::/64",
            ),
        },
        Case {
            file: "ipaddress.yaml",
            resource: "ipaddresses",
            name: "192.168.250.7",
            headers: "NAME            PARENTREF",
            yaml: &["resource: services", "name: reserved"],
            patch: (r#"{"metadata":{"labels":{"reserved-by":"ops"}}}"#, "reserved-by: ops"),
            invalid: (
                "apiVersion: networking.k8s.io/v1\nkind: IPAddress\nmetadata: {name: 10.96.0.010}\nspec:\n  parentRef: {resource: services, name: x}\n",
                "metadata.name: Invalid value: \"10.96.0.010\": must not have leading 0s",
            ),
        },
        Case {
            file: "volumeattachment.yaml",
            resource: "volumeattachment",
            name: "csi-0123456789abcdef",
            headers: "NAME                   ATTACHER                  PV           NODE    ATTACHED   AGE",
            yaml: &["persistentVolumeName: pv-example"],
            patch: (r#"{"metadata":{"labels":{"disk":"fast"}}}"#, "disk: fast"),
            invalid: (
                "apiVersion: storage.k8s.io/v1\nkind: VolumeAttachment\nmetadata: {name: bad}\nspec:\n  attacher: a.example.com\n  source: {persistentVolumeName: pv}\n",
                "spec.nodeName: Required value",
            ),
        },
        Case {
            file: "runtimeclass.yaml",
            resource: "runtimeclass",
            name: "myclass",
            headers: "NAME      HANDLER           AGE",
            yaml: &["handler: myconfiguration"],
            patch: (r#"{"overhead":{"podFixed":{"memory":"120Mi"}}}"#, "memory: 120Mi"),
            invalid: (
                "apiVersion: node.k8s.io/v1\nkind: RuntimeClass\nmetadata: {name: bad}\nhandler: Bad_Handler\n",
                "handler: Invalid value: \"Bad_Handler\": a lowercase RFC 1123 label must consist of",
            ),
        },
        Case {
            file: "validatingwebhookconfiguration.yaml",
            resource: "validatingwebhookconfiguration",
            name: "pod-policy.example.com",
            headers: "NAME                     WEBHOOKS   AGE",
            yaml: &["failurePolicy: Fail", "matchPolicy: Equivalent", "port: 443", "namespaceSelector: {}"],
            patch: (r#"{"metadata":{"labels":{"team":"a"}}}"#, "team: a"),
            invalid: (
                "apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingWebhookConfiguration\nmetadata: {name: bad}\nwebhooks:\n- name: bad\n  clientConfig: {url: 'https://x.example.com'}\n  admissionReviewVersions: [v1]\n  sideEffects: None\n",
                "webhooks[0].name: Invalid value: \"bad\": should be a domain with at least three segments separated by dots",
            ),
        },
        Case {
            file: "mutatingwebhookconfiguration.yaml",
            resource: "mutatingwebhookconfiguration",
            name: "my-webhook.example.com",
            headers: "NAME                     WEBHOOKS   AGE",
            yaml: &["reinvocationPolicy: Never", "timeoutSeconds: 10", "scope: '*'"],
            patch: (r#"{"metadata":{"labels":{"team":"a"}}}"#, "team: a"),
            invalid: (
                "apiVersion: admissionregistration.k8s.io/v1\nkind: MutatingWebhookConfiguration\nmetadata: {name: bad}\nwebhooks:\n- name: a.b.example.com\n  clientConfig: {url: 'https://x.example.com'}\n  admissionReviewVersions: [v1]\n",
                "webhooks[0].sideEffects: Required value: must specify one of None, NoneOnDryRun",
            ),
        },
        Case {
            file: "validatingadmissionpolicy.yaml",
            resource: "validatingadmissionpolicy",
            name: "demo-policy.example.com",
            headers: "NAME                      VALIDATIONS   PARAMKIND   AGE",
            yaml: &["matchPolicy: Equivalent", "generation: 1"],
            patch: (r#"{"spec":{"failurePolicy":"Ignore"}}"#, "failurePolicy: Ignore"),
            invalid: (
                "apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingAdmissionPolicy\nmetadata: {name: bad}\nspec:\n  matchConstraints:\n    resourceRules: [{apiGroups: [apps], apiVersions: [v1], operations: [CREATE], resources: [deployments]}]\n",
                "spec.validations: Required value: validations or auditAnnotations must contain at least one item",
            ),
        },
        Case {
            file: "validatingadmissionpolicybinding.yaml",
            resource: "validatingadmissionpolicybinding",
            name: "demo-binding-test.example.com",
            headers: "NAME                            POLICYNAME                PARAMREF   AGE",
            yaml: &["policyName: demo-policy.example.com", "objectSelector: {}"],
            patch: (r#"{"spec":{"validationActions":["Warn","Audit"]}}"#, "- Audit"),
            invalid: (
                "apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingAdmissionPolicyBinding\nmetadata: {name: bad}\nspec:\n  policyName: p\n",
                "spec.validationActions: Required value: at least one validation action is required",
            ),
        },
        Case {
            file: "priorityclass.yaml",
            resource: "pc",
            name: "high-priority",
            headers: "NAME                      VALUE        GLOBAL-DEFAULT   AGE   PREEMPTIONPOLICY",
            yaml: &["preemptionPolicy: PreemptLowerPriority", "value: 1000000"],
            patch: (r#"{"description":"changed"}"#, "description: changed"),
            invalid: (
                "apiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata: {name: too-high}\nvalue: 1000000001\n",
                "value: Forbidden: maximum allowed value of a user defined priority is 1000000000",
            ),
        },
        Case {
            file: "event.yaml",
            resource: "events.v1.events.k8s.io",
            name: "web.17a2b3c4",
            headers: "LAST SEEN   TYPE     REASON     OBJECT           MESSAGE",
            yaml: &["note: Scaled up replica set web to 3", "reportingController: example.com/controller"],
            patch: (r#"{"note":"Scaled up replica set web to 4"}"#, "note: Scaled up replica set web to 4"),
            invalid: (
                "apiVersion: events.k8s.io/v1\nkind: Event\nmetadata: {name: bad, namespace: default}\nreportingController: example.com/c\nreportingInstance: i\naction: A\nreason: R\ntype: Normal\nregarding: {kind: Pod, name: p, namespace: default}\n",
                "eventTime: Required value",
            ),
        },
        Case {
            file: "apiservice.yaml",
            resource: "apiservice",
            name: "v1beta1.metrics.k8s.io",
            headers: "NAME                              SERVICE                       AVAILABLE   AGE",
            yaml: &["port: 443", "groupPriorityMinimum: 100"],
            patch: (r#"{"spec":{"versionPriority":50}}"#, "versionPriority: 50"),
            invalid: (
                "apiVersion: apiregistration.k8s.io/v1\nkind: APIService\nmetadata: {name: foo}\nspec: {group: bar, version: v1, groupPriorityMinimum: 1, versionPriority: 1}\n",
                "metadata.name: Invalid value: \"foo\": must be `spec.version+\".\"+spec.group`: \"v1.bar\"",
            ),
        },
        Case {
            file: "flowschema.yaml",
            resource: "flowschema",
            name: "health-for-strangers",
            headers: "NAME                   PRIORITYLEVEL   MATCHINGPRECEDENCE   DISTINGUISHERMETHOD   AGE   MISSINGPL",
            yaml: &["matchingPrecedence: 1000", "generation: 1"],
            patch: (r#"{"spec":{"matchingPrecedence":999}}"#, "generation: 2"),
            invalid: (
                "apiVersion: flowcontrol.apiserver.k8s.io/v1\nkind: FlowSchema\nmetadata: {name: bad}\nspec:\n  matchingPrecedence: 20000\n  priorityLevelConfiguration: {name: exempt}\n",
                "spec.matchingPrecedence: Invalid value: 20000: must not be greater than 10000",
            ),
        },
        Case {
            file: "prioritylevelconfiguration.yaml",
            resource: "prioritylevelconfiguration",
            name: "list-events-default-service-account",
            headers: "NAME                                  TYPE      NOMINALCONCURRENCYSHARES   QUEUES   HANDSIZE   QUEUELENGTHLIMIT   AGE",
            yaml: &["handSize: 8", "queues: 64", "queueLengthLimit: 50", "lendablePercent: 0"],
            patch: (r#"{"spec":{"limited":{"nominalConcurrencyShares":20}}}"#, "nominalConcurrencyShares: 20"),
            invalid: (
                "apiVersion: flowcontrol.apiserver.k8s.io/v1\nkind: PriorityLevelConfiguration\nmetadata: {name: bad}\nspec:\n  type: Limited\n",
                "spec.limited: Required value: must not be empty when type is Limited",
            ),
        },
        Case {
            file: "certificatesigningrequest.yaml",
            resource: "csr",
            name: "myuser",
            headers: "NAME     AGE   SIGNERNAME                            REQUESTOR   REQUESTEDDURATION   CONDITION",
            yaml: &["signerName: kubernetes.io/kube-apiserver-client", "expirationSeconds: 86400"],
            patch: (r#"{"metadata":{"labels":{"team":"a"}}}"#, "team: a"),
            invalid: (
                "apiVersion: certificates.k8s.io/v1\nkind: CertificateSigningRequest\nmetadata: {name: bad}\nspec:\n  request: aGk=\n  signerName: example.com/s\n  usages: [client auth]\n",
                "spec.request: Invalid value: []byte{0x68, 0x69}: PEM block type must be CERTIFICATE REQUEST",
            ),
        },
    ]
}

fn check(k: &Kubectl, case: &Case) {
    let file = manifest(&format!("kinds/{}", case.file));
    k.ok(&["apply", "-f", &file]);
    let table = k.ok(&["get", case.resource, case.name]);
    let header = table.lines().next().unwrap_or_default();
    let words = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    assert_eq!(words(header), words(case.headers), "{}: {table}", case.file);
    let yaml = k.ok(&["get", case.resource, case.name, "-o", "yaml"]);
    for line in case.yaml {
        assert!(
            yaml.contains(line),
            "{}: {line:?} missing from\n{yaml}",
            case.file
        );
    }
    let described = k.ok(&["describe", case.resource, case.name]);
    assert!(described.contains(case.name), "{}: {described}", case.file);
    // `plural.version.group` is `plural --api-version=group/version` to explain.
    let explain: Vec<String> = match case.resource.split_once('.') {
        Some((plural, rest)) => {
            let (version, group) = rest.split_once('.').unwrap_or((rest, ""));
            vec![plural.into(), format!("--api-version={group}/{version}")]
        }
        None => vec![case.resource.into()],
    };
    let mut args = vec!["explain"];
    args.extend(explain.iter().map(String::as_str));
    let explained = k.ok(&args);
    assert!(explained.contains("FIELDS:"), "{}: {explained}", case.file);
    k.ok(&[
        "patch",
        case.resource,
        case.name,
        "--type",
        "merge",
        "-p",
        case.patch.0,
    ]);
    let yaml = k.ok(&["get", case.resource, case.name, "-o", "yaml"]);
    assert!(
        yaml.contains(case.patch.1),
        "{}: {:?} missing after patch\n{yaml}",
        case.file,
        case.patch.1
    );
    let refused = k.fails_stdin(&["apply", "-f", "-"], case.invalid.0);
    assert!(refused.contains(case.invalid.1), "{}: {refused}", case.file);
    k.ok(&["delete", case.resource, case.name]);
    let gone = k.fails(&["get", case.resource, case.name]);
    assert!(gone.contains("NotFound"), "{}: {gone}", case.file);
}

/// `kubectl edit` with a `sed` editor, as a person would change a field.
fn edit(server: &Server, resource: &str, name: &str, script: &str) {
    let dir = server.data_dir().join("editor");
    std::fs::create_dir_all(&dir).unwrap();
    let editor = dir.join("edit.sh");
    std::fs::write(&editor, format!("#!/bin/sh\nsed -i '{script}' \"$1\"\n")).unwrap();
    let mut perms = std::fs::metadata(&editor).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&editor, perms).unwrap();
    let out = Command::new(KUBECTL_1_33)
        .arg("--kubeconfig")
        .arg(server.kubeconfig())
        .args(["edit", resource, name])
        .env("KUBE_EDITOR", &editor)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "edit: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn every_kind_round_trips(server: &Server, k: &Kubectl) {
    for case in cases() {
        check(k, &case);
    }
    // An edit through kubectl's editor, on a field updates may change.
    k.ok(&["apply", "-f", &manifest("kinds/storageclass.yaml")]);
    edit(
        server,
        "storageclass",
        "local-storage",
        "s/^provisioner: .*/&\\nallowVolumeExpansion: true/",
    );
    let table = k.ok(&["get", "sc", "local-storage", "--no-headers"]);
    assert!(table.contains("true"), "{table}");
    // Updates upstream forbids.
    let refused = k.fails(&[
        "patch",
        "sc",
        "local-storage",
        "--type",
        "merge",
        "-p",
        r#"{"parameters":{"a":"b"}}"#,
    ]);
    assert!(
        refused.contains("parameters: Forbidden: updates to parameters are forbidden."),
        "{refused}"
    );
    k.ok(&["delete", "sc", "local-storage"]);
}

fn kubectl_generators_and_discovery(k: &Kubectl) {
    // The server's own default class `berth` is given to an Ingress naming none.
    support::eventually(std::time::Duration::from_secs(30), || {
        k.run(&["get", "ingressclass", "berth"])
            .status
            .success()
            .then_some(())
    });
    k.ok(&[
        "create",
        "ingress",
        "simple",
        "--rule=foo.com/bar=svc1:8080,tls=my-cert",
    ]);
    let table = k.ok(&["get", "ingress", "simple", "--no-headers"]);
    let cells: Vec<&str> = table.split_whitespace().collect();
    assert_eq!(cells[1..4], ["berth", "foo.com", "80,"], "{table}");
    // DefaultIngressClass admission: a class marked default is given to new
    // ingresses that name none.
    k.ok(&["apply", "-f", &manifest("kinds/ingressclass.yaml")]);
    k.ok(&[
        "annotate",
        "ingressclass",
        "external-lb",
        "ingressclass.kubernetes.io/is-default-class=true",
    ]);
    k.ok(&["create", "ingress", "defaulted", "--rule=bar.com/=svc1:80"]);
    let class = k.jsonpath(&["get", "ingress", "defaulted"], "{.spec.ingressClassName}");
    assert_eq!(class, "external-lb");
    k.ok(&["delete", "ingress", "defaulted", "simple"]);
    k.ok(&["delete", "ingressclass", "external-lb"]);
    k.ok(&[
        "create",
        "priorityclass",
        "made-by-kubectl",
        "--value=1000",
        "--description=high",
    ]);
    let value = k.jsonpath(
        &["get", "pc", "made-by-kubectl"],
        "{.value} {.preemptionPolicy}",
    );
    assert_eq!(value, "1000 PreemptLowerPriority");
    let resources = k.ok(&["api-resources"]);
    for line in [
        "ingresses                           ing          networking.k8s.io/v1",
        "networkpolicies                     netpol       networking.k8s.io/v1",
        "storageclasses                      sc           storage.k8s.io/v1",
        "priorityclasses                     pc           scheduling.k8s.io/v1",
        "certificatesigningrequests          csr          certificates.k8s.io/v1",
    ] {
        let want: Vec<&str> = line.split_whitespace().collect();
        assert!(
            resources
                .lines()
                .any(|l| l.split_whitespace().take(3).eq(want.iter().copied())),
            "{line} missing from\n{resources}"
        );
    }
    let services = k.ok(&["get", "apiservices"]);
    assert!(
        services
            .lines()
            .any(|l| l.split_whitespace().eq(["v1.apps", "Local", "True"]
                .into_iter()
                .chain(l.split_whitespace().skip(3)))),
        "{services}"
    );
    let priority = k.jsonpath(
        &["get", "apiservice", "v1.apps"],
        "{.spec.groupPriorityMinimum} {.spec.versionPriority}",
    );
    assert_eq!(priority, "17800 15");
    // Upstream's flow-control defaults exist from the start.
    let schemas = k.ok(&["get", "flowschemas", "-o", "name"]);
    for name in [
        "exempt",
        "probes",
        "system-leader-election",
        "endpoint-controller",
        "workload-leader-election",
        "system-node-high",
        "system-nodes",
        "kube-controller-manager",
        "kube-scheduler",
        "kube-system-service-accounts",
        "service-accounts",
        "global-default",
        "catch-all",
    ] {
        assert!(
            schemas
                .lines()
                .any(|l| l == format!("flowschema.flowcontrol.apiserver.k8s.io/{name}")),
            "{name}: {schemas}"
        );
    }
    let levels = k.ok(&["get", "prioritylevelconfigurations", "--no-headers"]);
    for name in [
        "exempt",
        "catch-all",
        "system",
        "node-high",
        "leader-election",
        "workload-high",
        "workload-low",
        "global-default",
    ] {
        assert!(
            levels
                .lines()
                .any(|l| l.split_whitespace().next() == Some(name)),
            "{name}: {levels}"
        );
    }
    let missing = k.jsonpath(
        &["get", "flowschema", "catch-all"],
        "{.status.conditions[0].type}={.status.conditions[0].status}",
    );
    assert_eq!(missing, "Dangling=False");
}

fn priority_admission(k: &Kubectl) {
    let classes = k.ok(&["get", "pc", "--no-headers"]);
    assert!(
        classes.contains("system-cluster-critical   2000000000"),
        "{classes}"
    );
    assert!(
        classes.contains("system-node-critical      2000001000"),
        "{classes}"
    );
    k.ok(&[
        "run",
        "critical",
        "--image=busybox",
        "--overrides",
        r#"{"spec":{"priorityClassName":"system-node-critical"}}"#,
    ]);
    let priority = k.jsonpath(
        &["get", "pod", "critical"],
        "{.spec.priority} {.spec.preemptionPolicy}",
    );
    assert_eq!(priority, "2000001000 PreemptLowerPriority");
    let refused = k.fails(&[
        "run",
        "x",
        "--image=busybox",
        "--overrides",
        r#"{"spec":{"priorityClassName":"foo"}}"#,
    ]);
    assert!(
        refused.contains(r#"pods "x" is forbidden: no PriorityClass with name foo was found"#),
        "{refused}"
    );
    let refused = k.fails_stdin(&["apply", "-f", "-"], "apiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata: {name: system-mine}\nvalue: 5\n");
    assert!(refused.contains("metadata.name: Forbidden: priority class names with 'system-' prefix are reserved for system use only. error: system-mine is not a known system priority class"), "{refused}");
    // The global default class applies to pods without one; only one may exist.
    k.ok_stdin(&["apply", "-f", "-"], "apiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata: {name: everyone}\nvalue: 7\nglobalDefault: true\n");
    let refused = k.fails_stdin(&["apply", "-f", "-"], "apiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata: {name: second}\nvalue: 8\nglobalDefault: true\n");
    assert!(
        refused.contains(
            "PriorityClass everyone is already marked as default. Only one default can exist"
        ),
        "{refused}"
    );
    k.ok(&["run", "plain", "--image=busybox"]);
    let priority = k.jsonpath(
        &["get", "pod", "plain"],
        "{.spec.priorityClassName} {.spec.priority}",
    );
    assert_eq!(priority, "everyone 7");
    let refused = k.fails(&[
        "patch",
        "pc",
        "everyone",
        "--type",
        "merge",
        "-p",
        r#"{"value":8}"#,
    ]);
    assert!(
        refused.contains("value: Forbidden: may not be changed in an update."),
        "{refused}"
    );
    k.ok(&["delete", "pc", "everyone"]);
    k.ok(&[
        "delete",
        "pod",
        "critical",
        "plain",
        "--grace-period=0",
        "--force",
    ]);
}

fn certificate_approval(k: &Kubectl) {
    k.ok(&[
        "apply",
        "-f",
        &manifest("kinds/certificatesigningrequest.yaml"),
    ]);
    let pending = k.ok(&["get", "csr", "myuser", "--no-headers"]);
    assert!(pending.trim_end().ends_with("Pending"), "{pending}");
    k.ok(&["certificate", "approve", "myuser"]);
    let approved = k.ok(&["get", "csr", "myuser", "--no-headers"]);
    assert!(approved.trim_end().ends_with("Approved"), "{approved}");
    let reason = k.jsonpath(
        &["get", "csr", "myuser"],
        "{.status.conditions[0].type} {.status.conditions[0].reason}",
    );
    assert_eq!(reason, "Approved KubectlApprove");
    // kubectl refuses to deny an approved request itself; the server does too.
    let mut csr: serde_json::Value =
        serde_json::from_str(&k.ok(&["get", "csr", "myuser", "-o", "json"])).unwrap();
    csr["status"]["conditions"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({"type": "Denied", "status": "True", "reason": "No"}));
    let body = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(body.path(), csr.to_string()).unwrap();
    let path = body.path().to_string_lossy().into_owned();
    let refused = k.fails(&[
        "replace",
        "--raw",
        "/apis/certificates.k8s.io/v1/certificatesigningrequests/myuser/approval",
        "-f",
        &path,
    ]);
    assert!(
        refused.contains("Approved and Denied conditions are mutually exclusive"),
        "{refused}"
    );
    let described = k.ok(&["describe", "csr", "myuser"]);
    assert!(described.contains("Common Name:"), "{described}");
    k.ok(&["delete", "csr", "myuser"]);
}

/// The server's own range is the default `kubernetes` ServiceCIDR, Ready, and
/// every ClusterIP it hands out is an IPAddress naming its Service, gone with it.
fn service_cidrs_and_ip_addresses(k: &Kubectl) {
    let table = k.ok(&["get", "servicecidrs", "kubernetes", "--no-headers"]);
    let cells: Vec<&str> = table.split_whitespace().collect();
    assert_eq!(cells[..2], ["kubernetes", "10.43.0.0/16"], "{table}");
    let ready = k.jsonpath(
        &["get", "servicecidr", "kubernetes"],
        "{.status.conditions[0].type}={.status.conditions[0].status}",
    );
    assert_eq!(ready, "Ready=True");
    let api = k.ok(&["get", "ipaddresses", "10.43.0.1", "--no-headers"]);
    assert!(api.contains("services/default/kubernetes"), "{api}");

    k.ok(&[
        "create",
        "service",
        "clusterip",
        "ip-owner",
        "--tcp=80:8080",
    ]);
    let ip = k.jsonpath(&["get", "service", "ip-owner"], "{.spec.clusterIP}");
    let listed = k.ok(&["get", "ipaddresses"]);
    let row = listed
        .lines()
        .find(|l| l.split_whitespace().next() == Some(ip.as_str()))
        .unwrap_or_else(|| panic!("{ip} not listed:\n{listed}"));
    assert!(row.contains("services/default/ip-owner"), "{row}");
    let yaml = k.ok(&["get", "ipaddress", &ip, "-o", "yaml"]);
    for line in [
        "ipaddress.kubernetes.io/ip-family: IPv4",
        "ipaddress.kubernetes.io/managed-by: ipallocator.k8s.io",
        "resource: services",
        "name: ip-owner",
    ] {
        assert!(yaml.contains(line), "{line:?} missing from\n{yaml}");
    }
    // A taken address cannot be requested by another Service.
    let refused = k.fails_stdin(
        &["apply", "-f", "-"],
        &format!("apiVersion: v1\nkind: Service\nmetadata: {{name: ip-thief}}\nspec:\n  clusterIP: {ip}\n  ports: [{{port: 80}}]\n"),
    );
    assert!(
        refused.contains("provided IP is already allocated"),
        "{refused}"
    );
    k.ok(&["delete", "service", "ip-owner"]);
    let gone = k.fails(&["get", "ipaddress", &ip]);
    assert!(gone.contains("NotFound"), "{gone}");
    let refused = k.fails(&[
        "patch",
        "servicecidr",
        "kubernetes",
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"cidrs":["10.44.0.0/16"]}}"#,
    ]);
    assert!(
        refused
            .contains(r#"spec.cidrs: Invalid value: []string{"10.44.0.0/16"}: field is immutable"#),
        "{refused}"
    );
    // The default ServiceCIDR comes back when deleted.
    k.ok(&["delete", "servicecidr", "kubernetes"]);
    let back = support::eventually(std::time::Duration::from_secs(30), || {
        let out = k.run(&[
            "get",
            "servicecidr",
            "kubernetes",
            "-o",
            "jsonpath={.spec.cidrs[0]}",
        ]);
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    });
    assert_eq!(back, "10.43.0.0/16");
}

fn events_in_both_groups(k: &Kubectl) {
    let core = "apiVersion: v1\nkind: Event\nmetadata: {name: from-core, namespace: default}\ninvolvedObject: {kind: Pod, name: web, namespace: default}\nmessage: Pulled image\nreason: Pulled\ntype: Normal\nsource: {component: kubelet, host: node1}\ncount: 3\nfirstTimestamp: \"2025-01-01T00:00:00Z\"\nlastTimestamp: \"2025-01-01T00:05:00Z\"\n";
    k.ok_stdin(&["apply", "-f", "-"], core);
    let seen = k.jsonpath(
        &["get", "events.v1.events.k8s.io", "from-core"],
        "{.note}|{.regarding.name}|{.deprecatedSource.component}|{.deprecatedCount}|{.deprecatedLastTimestamp}",
    );
    assert_eq!(seen, "Pulled image|web|kubelet|3|2025-01-01T00:05:00Z");
    k.ok(&["apply", "-f", &manifest("kinds/event.yaml")]);
    let seen = k.jsonpath(
        &["get", "events.v1.", "web.17a2b3c4"],
        "{.apiVersion}|{.message}|{.involvedObject.kind}|{.reportingComponent}|{.reportingInstance}|{.action}",
    );
    assert_eq!(
        seen,
        "v1|Scaled up replica set web to 3|Deployment|example.com/controller|controller-1|Scaling"
    );
    let listed = k.ok(&["get", "events.events.k8s.io", "--no-headers"]);
    assert!(
        listed.contains("from-core") || listed.contains("Pulled image"),
        "{listed}"
    );
    k.ok(&["delete", "events.v1.events.k8s.io", "from-core"]);
    k.ok(&["delete", "events.v1.", "web.17a2b3c4"]);
}

#[test]
fn config_kinds_with_kubectl_1_33() {
    let server = Server::start();
    let k = server.kubectl(KUBECTL_1_33);
    every_kind_round_trips(&server, &k);
    kubectl_generators_and_discovery(&k);
    priority_admission(&k);
    certificate_approval(&k);
    events_in_both_groups(&k);
    service_cidrs_and_ip_addresses(&k);
}
