//! The NodePool controller's `aws` provider end to end against moto: `berth
//! server` pointed at a moto on loopback, kubectl 1.33 applies a NodePool of
//! 3 → 3 EC2 instances tagged for its claims; `kubectl scale --replicas=1` →
//! 2 of them terminated; deleting the pool → all terminated. Instances in
//! moto never boot, so their nodes never join: the claims stay Launched
//! (never Registered), and the test follows instances and claims, not Nodes.
//! The AMI is one of the images moto ships by default. With a short
//! `--nodepool-registration-timeout`, that never-joining machine is
//! terminated and replaced.

#[path = "../../provisioner/tests/aws/moto.rs"]
mod moto;
mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use berth_provisioner::aws::{Ec2, Instance, CLAIM_TAG};
use moto::Moto;
use support::{wait_for, Kubectl, Server, KUBECTL_1_33};

const CLUSTER: &str = "npaws-e2e";
const POOL: &str = r#"
apiVersion: berth.dev/v1
kind: NodePool
metadata:
  name: npaws-cpu
spec:
  provider: aws
  replicas: 3
  template:
    capacity:
      cpu: "2"
      memory: 8Gi
    aws:
      instanceTypes: [m5.large, m5.xlarge]
      ami: ami-03cf127a
      capacityType: on-demand
      rootVolume:
        sizeGiB: 20
        type: gp3
"#;

/// `claim providerID` of every live (not terminating) claim of the pool, sorted.
fn live_claims(k: &Kubectl) -> Vec<(String, String)> {
    let out = k.jsonpath(
        &["get", "nodeclaims", "-l", "berth.dev/pool=npaws-cpu"],
        r#"{range .items[*]}{.metadata.name} {.status.providerId} {.metadata.deletionTimestamp}{"\n"}{end}"#,
    );
    let mut claims: Vec<(String, String)> = out
        .lines()
        .map(|l| l.split(' ').collect::<Vec<_>>())
        .filter(|cells| cells.get(2).is_none_or(|d| d.is_empty()))
        .map(|cells| (cells[0].to_owned(), cells.get(1).unwrap_or(&"").to_string()))
        .collect();
    claims.sort();
    claims
}

/// `claim providerID` of every live instance of the pool, sorted.
fn live_instances(runtime: &tokio::runtime::Runtime, ec2: &Ec2) -> Vec<(String, String)> {
    let instances = runtime
        .block_on(ec2.list_pool("npaws-cpu"))
        .expect("listing instances");
    let mut live: Vec<(String, String)> = instances
        .iter()
        .filter(|i| i.live())
        .map(|i: &Instance| {
            (
                i.tag(CLAIM_TAG).unwrap_or_default().to_owned(),
                i.provider_id(),
            )
        })
        .collect();
    live.sort();
    live
}

/// Waits up to 90 s for `check`, failing with the server's log.
fn wait(server: &Server, what: &str, check: &mut dyn FnMut() -> bool) {
    wait_for(what, Duration::from_secs(90), server, &mut [], || {
        check().then_some(())
    })
}

/// A `berth server` whose aws provider uses `moto` (plus `extra` flags),
/// and an EC2 client of the same moto for the test's own checks.
fn start(moto: &Moto, extra: &[&str]) -> (Server, tokio::runtime::Runtime, Ec2) {
    let mut flags = vec![
        "--aws-cluster",
        CLUSTER,
        "--aws-region",
        "us-east-1",
        "--aws-endpoint-url",
        &moto.url,
        "--aws-binary-url",
        "https://example.invalid/berth",
    ];
    flags.extend_from_slice(extra);
    let server = Server::start_with_env(
        &flags,
        &[
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ],
    );
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let ec2 = runtime.block_on(moto::ec2(&moto.url, CLUSTER));
    (server, runtime, ec2)
}

#[test]
fn aws_pool_launches_scales_and_terminates_instances_in_moto() {
    let moto = Moto::start();
    let (server, runtime, ec2) = start(&moto, &[]);
    let k = server.kubectl(KUBECTL_1_33);
    k.ok_stdin(&["apply", "-f", "-"], POOL);

    wait(&server, "3 instances tagged for the 3 claims", &mut || {
        let claims = live_claims(&k);
        claims.len() == 3 && live_instances(&runtime, &ec2) == claims
    });
    let launched = live_instances(&runtime, &ec2);
    let table = k.ok(&["get", "nodepools"]);
    assert!(
        table
            .lines()
            .any(|l| l.split_whitespace().take(3).eq(["npaws-cpu", "aws", "3"])),
        "{table}"
    );

    k.ok(&["scale", "nodepool", "npaws-cpu", "--replicas=1"]);
    wait(
        &server,
        "2 instances terminated, 1 left with its claim",
        &mut || {
            let left = live_instances(&runtime, &ec2);
            left.len() == 1 && live_claims(&k) == left
        },
    );
    let kept: BTreeSet<String> = live_instances(&runtime, &ec2)
        .into_iter()
        .map(|c| c.0)
        .collect();
    assert!(launched.iter().any(|(claim, _)| kept.contains(claim)));

    k.ok(&["delete", "nodepool", "npaws-cpu"]);
    wait(
        &server,
        "every instance terminated, every claim gone",
        &mut || {
            live_instances(&runtime, &ec2).is_empty()
                && k.jsonpath(&["get", "nodeclaims"], "{.items[*].metadata.name}")
                    .is_empty()
        },
    );
    let reasons = k.jsonpath(&["get", "events", "-A"], "{.items[*].reason}");
    assert!(reasons.contains("Launched"), "{reasons}");
}

/// Karpenter's registration TTL: an instance whose node never registers
/// (here: every moto instance) is terminated after
/// `--nodepool-registration-timeout`, its claim removed with a
/// `RegistrationTimeout` Warning, and the pool launches a new one.
#[test]
fn a_machine_whose_node_never_registers_is_replaced() {
    let moto = Moto::start();
    let (server, runtime, ec2) = start(&moto, &["--nodepool-registration-timeout", "4s"]);
    let k = server.kubectl(KUBECTL_1_33);
    let pool = POOL.replace("replicas: 3", "replicas: 1");
    k.ok_stdin(&["apply", "-f", "-"], &pool);
    let mut first = Vec::new();
    wait(&server, "1 instance for the claim", &mut || {
        first = live_claims(&k);
        first.len() == 1 && !first[0].1.is_empty() && live_instances(&runtime, &ec2) == first
    });
    wait(
        &server,
        "the never-registered machine replaced",
        &mut || {
            let now = live_claims(&k);
            now.len() == 1
                && now[0].0 != first[0].0
                && !now[0].1.is_empty()
                && live_instances(&runtime, &ec2) == now
        },
    );
    let gone = runtime
        .block_on(ec2.list_pool("npaws-cpu"))
        .expect("listing instances")
        .into_iter()
        .filter(|i| i.provider_id() == first[0].1)
        .all(|i| !i.live());
    assert!(gone, "the first instance {} still runs", first[0].1);
    let warnings = k.jsonpath(
        &[
            "get",
            "events",
            "-A",
            "--field-selector",
            "reason=RegistrationTimeout",
        ],
        "{.items[*].message}",
    );
    assert!(
        warnings.contains("did not register within 4s of launch"),
        "{warnings}"
    );
    k.ok(&["delete", "nodepool", "npaws-cpu"]);
    wait(&server, "every instance terminated", &mut || {
        live_instances(&runtime, &ec2).is_empty()
    });
}

const GPU_POOLS: &str = r#"
apiVersion: berth.dev/v1
kind: NodePool
metadata:
  name: npaws-gpu
spec:
  provider: aws
  maxReplicas: 2
  template:
    aws:
      instanceTypes: [g5.xlarge, g5.2xlarge]
      ami: ami-03cf127a
---
apiVersion: berth.dev/v1
kind: NodePool
metadata:
  name: npaws-bogus
spec:
  provider: aws
  replicas: 0
  template:
    aws:
      instanceTypes: [x9.notatype]
      ami: ami-03cf127a
"#;

const GPU_POD: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: npaws-train
  namespace: default
spec:
  containers:
  - name: train
    image: 127.0.0.1:5000/busybox:latest
    resources:
      limits:
        nvidia.com/gpu: "1"
"#;

/// A pool that names no `capacity` gets it from DescribeInstanceTypes of
/// its first instance type: a pod asking for an NVIDIA GPU makes the
/// controller launch a g5.xlarge, and the claim reports 4 cpu, 16Gi and one
/// GPU. A pool of an unknown type says so with a Warning and a condition.
#[test]
fn a_pool_without_capacity_launches_a_gpu_instance_for_a_gpu_pod() {
    let moto = Moto::start();
    let (server, runtime, ec2) = start(&moto, &[]);
    let k = server.kubectl(KUBECTL_1_33);
    k.ok_stdin(&["apply", "-f", "-"], GPU_POOLS);
    k.ok_stdin(&["apply", "-f", "-"], GPU_POD);

    let mut claim = String::new();
    wait(
        &server,
        "a g5.xlarge instance for the GPU pod's claim",
        &mut || {
            let instances = runtime
                .block_on(ec2.list_pool("npaws-gpu"))
                .expect("listing instances");
            let live: Vec<&Instance> = instances.iter().filter(|i| i.live()).collect();
            if let [instance] = live.as_slice() {
                claim = instance.tag(CLAIM_TAG).unwrap_or_default().to_owned();
                return instance.instance_type == "g5.xlarge";
            }
            false
        },
    );
    let resources = k.jsonpath(
        &["get", "nodeclaim", &claim],
        r#"{.spec.resources.cpu} {.spec.resources.memory} {.spec.resources.nvidia\.com/gpu}"#,
    );
    assert_eq!(resources, "4 16Gi 1");
    let template = k.jsonpath(&["get", "nodeclaim", &claim], "{.spec.template.capacity}");
    assert!(
        template.is_empty(),
        "the snapshot stays as written: {template}"
    );
    wait(
        &server,
        "CapacityResolved=True on the GPU pool",
        &mut || {
            k.jsonpath(
                &["get", "nodepool", "npaws-gpu"],
                r#"{.status.conditions[?(@.type=="CapacityResolved")].status}"#,
            ) == "True"
        },
    );

    wait(
        &server,
        "CapacityResolved=False naming the unknown type",
        &mut || {
            let condition = k.jsonpath(
            &["get", "nodepool", "npaws-bogus"],
            r#"{.status.conditions[?(@.type=="CapacityResolved")].status} {.status.conditions[?(@.type=="CapacityResolved")].message}"#,
        );
            condition.starts_with("False ") && condition.contains("x9.notatype")
        },
    );
    let warnings = k.jsonpath(
        &[
            "get",
            "events",
            "-A",
            "--field-selector",
            "reason=CapacityUnknown",
        ],
        r#"{range .items[*]}{.type} {.involvedObject.name}: {.message}{"\n"}{end}"#,
    );
    assert!(
        warnings
            .lines()
            .any(|l| l.starts_with("Warning npaws-bogus: ") && l.contains("x9.notatype")),
        "{warnings}"
    );

    k.ok(&["delete", "pod", "npaws-train", "--wait=false"]);
    k.ok(&["delete", "nodepool", "npaws-gpu", "npaws-bogus"]);
    wait(&server, "every instance terminated", &mut || {
        runtime
            .block_on(ec2.list_pool("npaws-gpu"))
            .expect("listing instances")
            .iter()
            .all(|i| !i.live())
    });
}
