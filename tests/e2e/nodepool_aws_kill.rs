//! A real `berth nodepool-controller` process SIGKILLed mid-launch leaks no
//! EC2 instance (issue 22). The controller runs as a child process beside
//! `berth server --disable nodepool`, its `aws` provider pointed at a fault
//! proxy in front of moto that passes RunInstances on and holds its answer
//! back, so the instance exists but the controller never hears of it. Killed
//! there and restarted, it adopts the instance of a claim that still exists
//! (no second RunInstances), and its clean-up pass terminates the instance
//! of a claim removed while it was down.

#[allow(dead_code)] // only the Hold answer is used here
#[path = "../../provisioner/tests/aws/fault_proxy.rs"]
mod fault_proxy;
#[path = "../../provisioner/tests/aws/moto.rs"]
mod moto;
mod support;

use std::time::Duration;

use berth_provisioner::aws::{Ec2, Instance, CLAIM_TAG, CLUSTER_TAG, POOL_TAG};
use fault_proxy::{Answer, Fault, FaultProxy};
use moto::Moto;
use support::{wait_for, BerthProcess, Kubectl, Server, KUBECTL_1_33};

const CLUSTER: &str = "npkill-e2e";
const POOL_NAME: &str = "npkill";
const POOL: &str = r#"
apiVersion: berth.dev/v1
kind: NodePool
metadata:
  name: npkill
spec:
  provider: aws
  replicas: 1
  template:
    capacity:
      cpu: "2"
    aws:
      instanceTypes: [m5.large]
      ami: ami-03cf127a
"#;
const AWS_ENV: &[(&str, &str)] = &[
    ("AWS_ACCESS_KEY_ID", "testing"),
    ("AWS_SECRET_ACCESS_KEY", "testing"),
    ("AWS_EC2_METADATA_DISABLED", "true"),
];

/// `berth nodepool-controller` with the `aws` provider going through
/// `endpoint`. The identity is the same at every start, as a restarted pod
/// keeps its name, so a restart takes its Lease back at once.
fn start_controller(server: &Server, endpoint: &str) -> BerthProcess {
    let ca = server.data_dir().join("tls/ca.crt");
    let url = server.url();
    let args = [
        "nodepool-controller",
        "--identity",
        "npkill-controller",
        "--aws-cluster",
        CLUSTER,
        "--aws-region",
        "us-east-1",
        "--aws-endpoint-url",
        endpoint,
        "--aws-server-url",
        &url,
        "--aws-binary-url",
        "https://example.invalid/berth",
        "--aws-ca-file",
        ca.to_str().expect("utf-8 path"),
    ];
    server.spawn_berth_with_env(None, "npkill-controller", &args, AWS_ENV)
}

/// The live instances of the pool.
fn live(runtime: &tokio::runtime::Runtime, ec2: &Ec2) -> Vec<Instance> {
    runtime
        .block_on(ec2.list_pool(POOL_NAME))
        .expect("listing instances")
        .into_iter()
        .filter(Instance::live)
        .collect()
}

/// `name providerID` of every claim of the pool.
fn claims(k: &Kubectl) -> Vec<(String, String)> {
    let out = k.jsonpath(
        &["get", "nodeclaims", "-l", "berth.dev/pool=npkill"],
        r#"{range .items[*]}{.metadata.name} {.status.providerId}{"\n"}{end}"#,
    );
    let mut claims: Vec<(String, String)> = out
        .lines()
        .filter_map(|l| {
            let (name, id) = l.split_once(' ').unwrap_or((l, ""));
            (!name.is_empty()).then(|| (name.to_owned(), id.trim().to_owned()))
        })
        .collect();
    claims.sort();
    claims
}

/// How many RunInstances calls the proxy passed on.
fn run_instances(proxy: &FaultProxy) -> usize {
    proxy
        .seen()
        .iter()
        .filter(|call| call.starts_with("RunInstances "))
        .count()
}

/// Holds back the answer of the next RunInstances.
fn hold_next_launch(proxy: &FaultProxy) {
    proxy.fail(Fault {
        action: "RunInstances",
        body_contains: "",
        times: 1,
        answer: Answer::Hold,
    });
}

#[test]
fn a_controller_process_killed_mid_launch_leaks_no_instance() {
    let moto = Moto::start();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let proxy = runtime.block_on(FaultProxy::start(&moto.url));
    let ec2 = runtime.block_on(moto::ec2(&moto.url, CLUSTER));
    let server = Server::start_with(&["--disable", "nodepool"]);
    let k = server.kubectl(KUBECTL_1_33);
    let wait = |what: &str, controller: &mut BerthProcess, check: &mut dyn FnMut() -> bool| {
        wait_for(
            what,
            Duration::from_secs(90),
            &server,
            &mut [controller],
            || check().then_some(()),
        )
    };

    // 1. Killed while RunInstances' answer is held: the instance exists,
    // the claim does not know it.
    hold_next_launch(&proxy);
    let mut controller = start_controller(&server, &proxy.url);
    k.ok_stdin(&["apply", "-f", "-"], POOL);
    let mut started = Vec::new();
    wait(
        "an instance launched, its answer held",
        &mut controller,
        &mut || {
            started = live(&runtime, &ec2);
            started.len() == 1 && run_instances(&proxy) == 1
        },
    );
    controller.kill9();
    let first = claims(&k);
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!(first[0].1, "", "the claim never heard of its instance");
    assert_eq!(started[0].tag(CLAIM_TAG), Some(first[0].0.as_str()));

    // Restarted, it adopts that instance instead of launching another.
    let mut controller = start_controller(&server, &proxy.url);
    wait(
        "the claim records the instance launched before the kill",
        &mut controller,
        &mut || claims(&k) == [(first[0].0.clone(), started[0].provider_id())],
    );
    assert_eq!(run_instances(&proxy), 1, "no second RunInstances");

    // 2. Killed again mid-launch of a second claim, which is then removed
    // while no controller runs: its instance has no claim any more.
    hold_next_launch(&proxy);
    k.ok(&["scale", "nodepool", POOL_NAME, "--replicas=2"]);
    let mut orphan = None;
    wait(
        "a second instance launched, its answer held",
        &mut controller,
        &mut || {
            orphan = live(&runtime, &ec2)
                .into_iter()
                .find(|i| i.tag(CLAIM_TAG) != Some(first[0].0.as_str()));
            orphan.is_some() && run_instances(&proxy) == 2
        },
    );
    controller.kill9();
    let orphan = orphan.expect("the second instance");
    let second = orphan.tag(CLAIM_TAG).expect("claim tag").to_owned();
    k.ok(&["scale", "nodepool", POOL_NAME, "--replicas=1"]);
    k.ok(&[
        "patch",
        "nodeclaim",
        &second,
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":null}}"#,
    ]);
    k.ok(&["delete", "nodeclaim", &second, "--ignore-not-found"]);

    let mut controller = start_controller(&server, &proxy.url);
    wait(
        "the clean-up pass terminated the claimless instance",
        &mut controller,
        &mut || live(&runtime, &ec2).iter().all(|i| i.id != orphan.id),
    );
    wait(
        "each claim has exactly its one instance",
        &mut controller,
        &mut || {
            let claims = claims(&k);
            let instances = live(&runtime, &ec2);
            claims.len() == 1
                && instances.len() == 1
                && claims[0] == (first[0].0.clone(), instances[0].provider_id())
        },
    );
    for instance in live(&runtime, &ec2) {
        assert_eq!(instance.tag(CLUSTER_TAG), Some(CLUSTER), "{instance:?}");
        assert_eq!(instance.tag(POOL_TAG), Some(POOL_NAME), "{instance:?}");
        assert_eq!(instance.tag(CLAIM_TAG), Some(first[0].0.as_str()));
    }

    k.ok(&["delete", "nodepool", POOL_NAME]);
    wait("every instance terminated", &mut controller, &mut || {
        live(&runtime, &ec2).is_empty()
    });
}
