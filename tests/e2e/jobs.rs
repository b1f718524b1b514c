//! Jobs and CronJobs end to end with kubectl 1.33: on one real node
//! (`berth agent --runtime cri` with its own containerd) a Job with
//! parallelism 3 completes 6 completions, an Indexed Job's pods see their
//! index and hostname, a failing Job stops at its backoffLimit with the
//! upstream condition, a CronJob every minute runs twice and keeps one
//! successful Job, `kubectl create job --from=cronjob/NAME` works and a
//! finished Job goes after its ttlSecondsAfterFinished; on
//! simulated nodes a Job of a few hundred completions finishes.

mod cri_node;
mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use cri_node::{CriNode, Registry};
use support::{eventually, wait_for, Kubectl, Server, KUBECTL_1_33};

const NAMESPACE: &str = "job-e2e";

const WORK_JOB: &str = r#"
apiVersion: batch/v1
kind: Job
metadata: {name: work}
spec:
  parallelism: 3
  completions: 6
  template:
    spec:
      restartPolicy: Never
      nodeSelector: {kubernetes.io/hostname: job-cri}
      containers:
      - name: work
        image: REGISTRY/web:1
        command: ["sh", "-c", "sleep 1"]
"#;

const INDEXED_JOB: &str = r#"
apiVersion: batch/v1
kind: Job
metadata: {name: indexed}
spec:
  completionMode: Indexed
  parallelism: 3
  completions: 3
  template:
    spec:
      restartPolicy: Never
      nodeSelector: {kubernetes.io/hostname: job-cri}
      containers:
      - name: show
        image: REGISTRY/web:1
        command: ["sh", "-c", "echo index=$JOB_COMPLETION_INDEX host=$(hostname)"]
"#;

const FAILING_JOB: &str = r#"
apiVersion: batch/v1
kind: Job
metadata: {name: failing}
spec:
  backoffLimit: 1
  template:
    spec:
      restartPolicy: Never
      nodeSelector: {kubernetes.io/hostname: job-cri}
      containers:
      - name: fail
        image: REGISTRY/web:1
        command: ["sh", "-c", "exit 3"]
"#;

const CRON_JOB: &str = r#"
apiVersion: batch/v1
kind: CronJob
metadata: {name: tick}
spec:
  schedule: "*/1 * * * *"
  successfulJobsHistoryLimit: 1
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          nodeSelector: {kubernetes.io/hostname: job-cri}
          containers:
          - name: tick
            image: REGISTRY/web:1
            command: ["sh", "-c", "echo tick"]
"#;

const SIM_JOB: &str = r#"
apiVersion: batch/v1
kind: Job
metadata: {name: many}
spec:
  parallelism: 60
  completions: 300
  template:
    metadata:
      annotations: {sim.berth.dev/exit-after: 1s}
    spec:
      restartPolicy: Never
      nodeSelector: {job-e2e: sim}
      containers:
      - name: work
        image: busybox
"#;

/// A running pod nobody owns, then a Job whose (manual) selector matches it.
const ORPHAN_POD: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: adoptee
  labels: {adopt: me}
  annotations: {sim.berth.dev/exit-after: 6s}
spec:
  restartPolicy: Never
  nodeSelector: {job-e2e: sim}
  containers:
  - name: work
    image: busybox
"#;

const ADOPTING_JOB: &str = r#"
apiVersion: batch/v1
kind: Job
metadata: {name: adopter}
spec:
  manualSelector: true
  selector: {matchLabels: {adopt: me}}
  completions: 1
  template:
    metadata:
      labels: {adopt: me}
      annotations: {sim.berth.dev/exit-after: 0s}
    spec:
      restartPolicy: Never
      nodeSelector: {job-e2e: sim}
      containers:
      - name: work
        image: busybox
"#;

fn condition(kubectl: &Kubectl, job: &str, type_: &str) -> String {
    kubectl.jsonpath(
        &["get", "job", job],
        &format!(r#"{{.status.conditions[?(@.type=="{type_}")].status}}/{{.status.conditions[?(@.type=="{type_}")].reason}}"#),
    )
}

#[test]
fn jobs_and_cronjobs_run_to_completion_as_upstream() {
    let registry = Registry::start();
    // A cluster range of its own, so this node's bridge never overlaps another test's.
    let cidr = format!("10.{}.0.0/16", 150 + registry.port % 50);
    let server = Server::start_with(&["--cluster-cidr", &cidr]);
    let kubectl = server.kubectl(KUBECTL_1_33);
    kubectl.ok(&["create", "namespace", NAMESPACE]);
    // This server's own kubeconfig: every later command runs in the test's namespace.
    let namespace = format!("--namespace={NAMESPACE}");
    kubectl.ok(&["config", "set-context", "--current", &namespace]);
    let mut node = CriNode::start(&server, &registry, "job-cri");
    let mut sim = server.start_sim(2, "job-sim-", &["--labels", "job-e2e=sim"]);
    let with_registry = |text: &str| text.replace("REGISTRY", &registry.host());
    wait_for(
        "nodes Ready",
        Duration::from_secs(60),
        &server,
        &mut [&mut node.agent, &mut sim],
        || {
            let out = kubectl.run(&["get", "nodes", "--no-headers"]);
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            (text
                .lines()
                .filter(|l| l.split_whitespace().nth(1) == Some("Ready"))
                .count()
                == 3)
                .then_some(())
        },
    );

    // The CronJob goes first: it needs two scheduled minutes.
    kubectl.ok_stdin(&["apply", "-f", "-"], &with_registry(CRON_JOB));
    for manifest in [WORK_JOB, INDEXED_JOB, FAILING_JOB, SIM_JOB] {
        kubectl.ok_stdin(&["apply", "-f", "-"], &with_registry(manifest));
    }

    // Simulated nodes: a few hundred completions finish.
    wait_for(
        "the simulated job completes",
        Duration::from_secs(180),
        &server,
        &mut [&mut sim],
        || (condition(&kubectl, "many", "Complete") == "True/CompletionsReached").then_some(()),
    );
    assert_eq!(
        kubectl.jsonpath(&["get", "job", "many"], "{.status.succeeded}"),
        "300"
    );

    // A Job adopts the running orphan its selector matches (with the
    // tracking finalizer) instead of starting a pod of its own, and counts it.
    kubectl.ok_stdin(&["apply", "-f", "-"], ORPHAN_POD);
    kubectl.ok(&[
        "wait",
        "--for=jsonpath={.status.phase}=Running",
        "pod/adoptee",
        "--timeout=60s",
    ]);
    kubectl.ok_stdin(&["apply", "-f", "-"], ADOPTING_JOB);
    let adopted = eventually(Duration::from_secs(30), || {
        let owner = kubectl.jsonpath(
            &["get", "pod", "adoptee"],
            "{.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].name}/{.metadata.ownerReferences[0].controller}",
        );
        (owner == "Job/adopter/true").then_some(owner)
    });
    assert_eq!(adopted, "Job/adopter/true");
    kubectl.ok(&[
        "wait",
        "--for=condition=complete",
        "job/adopter",
        "--timeout=60s",
    ]);
    assert_eq!(
        kubectl.jsonpath(&["get", "job", "adopter"], "{.status.succeeded}"),
        "1"
    );
    let pods = kubectl.ok(&["get", "pods", "-l", "adopt=me", "-o", "name"]);
    assert_eq!(
        pods.trim(),
        "pod/adoptee",
        "the Job started a pod of its own"
    );

    // parallelism 3, completions 6.
    kubectl.ok(&[
        "wait",
        "--for=condition=complete",
        "job/work",
        "--timeout=120s",
    ]);
    let counts = kubectl.jsonpath(
        &["get", "job", "work"],
        "{.status.succeeded}/{.status.active}{.status.uncountedTerminatedPods}",
    );
    assert_eq!(counts, "6/{}");
    let pods = kubectl.ok(&["get", "pods", "-l", "job-name=work", "-o", "name"]);
    assert_eq!(pods.lines().count(), 6, "{pods}");
    let events = kubectl.ok(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=work",
    ]);
    assert!(
        events.contains("SuccessfulCreate") && events.contains("Completed"),
        "{events}"
    );

    // Indexed: each pod sees its index and its stable hostname.
    kubectl.ok(&[
        "wait",
        "--for=condition=complete",
        "job/indexed",
        "--timeout=120s",
    ]);
    assert_eq!(
        kubectl.jsonpath(&["get", "job", "indexed"], "{.status.completedIndexes}"),
        "0-2"
    );
    for index in 0..3 {
        let label = format!("batch.kubernetes.io/job-completion-index={index},job-name=indexed");
        let logs = kubectl.ok(&["logs", "-l", &label]);
        assert_eq!(logs.trim(), format!("index={index} host=indexed-{index}"));
    }

    // backoffLimit 1: two failures, then Failed/BackoffLimitExceeded.
    kubectl.ok(&[
        "wait",
        "--for=condition=failed",
        "job/failing",
        "--timeout=120s",
    ]);
    assert_eq!(
        condition(&kubectl, "failing", "Failed"),
        "True/BackoffLimitExceeded"
    );
    assert_eq!(
        kubectl.jsonpath(&["get", "job", "failing"], "{.status.failed}"),
        "2"
    );
    // A TTL set after the Job finished is honoured (checked at the end).
    kubectl.ok(&[
        "patch",
        "job",
        "failing",
        "--type=merge",
        "-p",
        r#"{"spec":{"ttlSecondsAfterFinished":5}}"#,
    ]);

    // A Job made by hand from the CronJob's template.
    kubectl.ok(&["create", "job", "--from=cronjob/tick", "by-hand"]);
    let owner = kubectl.jsonpath(
        &["get", "job", "by-hand"],
        "{.metadata.ownerReferences[0].kind}",
    );
    assert_eq!(owner, "CronJob");
    // The CronJob owns it, so once finished it counts toward the history
    // limit (1) and may be removed as soon as a scheduled run finishes
    // after it: gone means finished, as upstream's cleanup only takes
    // finished Jobs.
    wait_for(
        "the Job made by hand completes",
        Duration::from_secs(120),
        &server,
        &mut [&mut node.agent],
        || {
            let got = kubectl.run(&[
                "get",
                "job",
                "by-hand",
                "-o",
                "jsonpath={.status.conditions[?(@.type==\"Complete\")].status}",
            ]);
            let stdout = String::from_utf8_lossy(&got.stdout);
            let stderr = String::from_utf8_lossy(&got.stderr);
            (stdout.trim() == "True" || stderr.contains("NotFound")).then_some(())
        },
    );

    // The CronJob ran twice and keeps one successful Job.
    let mut seen = BTreeSet::new();
    wait_for(
        "the cronjob runs twice",
        Duration::from_secs(200),
        &server,
        &mut [&mut node.agent],
        || {
            let out = kubectl.ok(&["get", "jobs", "-o", "jsonpath={range .items[*]}{.metadata.name} {.metadata.annotations.batch\\.kubernetes\\.io/cronjob-scheduled-timestamp}{\"\\n\"}{end}"]);
            seen.extend(
                out.lines()
                    .filter(|l| l.starts_with("tick-") && l.contains(' '))
                    .map(|l| l.split(' ').next().unwrap_or_default().to_owned()),
            );
            let last =
                kubectl.jsonpath(&["get", "cronjob", "tick"], "{.status.lastSuccessfulTime}");
            (seen.len() >= 2 && !last.is_empty()).then_some(())
        },
    );
    wait_for(
        "one successful cron job is kept",
        Duration::from_secs(60),
        &server,
        &mut [&mut node.agent],
        || {
            let out = kubectl.ok(&["get", "jobs", "-o", "name"]);
            let scheduled: Vec<&str> = out
                .lines()
                .filter(|l| l.starts_with("job.batch/tick-"))
                .collect();
            let active = kubectl.jsonpath(&["get", "cronjob", "tick"], "{.status.active}");
            (scheduled.len() == 1 && active.is_empty()).then_some(())
        },
    );
    // ttlSecondsAfterFinished: the failed Job is deleted, and its pods after it.
    let mut last = String::new();
    let gone = (0..450).any(|_| {
        let jobs = kubectl.ok(&["get", "jobs", "-o", "name"]);
        let pods = kubectl.ok(&["get", "pods", "-l", "job-name=failing", "-o", "jsonpath={range .items[*]}{.metadata.name} {.metadata.deletionTimestamp} {.metadata.finalizers} {.status.phase};{end}"]);
        last = format!("jobs: {jobs} pods: {pods}");
        let done = !jobs.contains("job.batch/failing") && pods.trim().is_empty();
        if !done {
            std::thread::sleep(Duration::from_millis(200));
        }
        done
    });
    assert!(
        gone,
        "the failed job's TTL did not delete it and its pods: {last}"
    );
    let names: Vec<&String> = seen.iter().collect();
    for name in names {
        let minutes: i64 = name.trim_start_matches("tick-").parse().unwrap();
        assert!(minutes > 29_000_000, "{name}");
    }
}
