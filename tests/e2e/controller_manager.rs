//! `berth controller-manager` end to end: two copies against
//! `berth server --disable controllers` elect one leader through the
//! `kube-system/berth-controller-manager` Lease; only it reconciles, so a
//! Deployment gets exactly one ReplicaSet; when the leader is SIGKILLed the
//! other takes over once the Lease expires and reconciles new Deployments.

mod support;

use std::time::{Duration, Instant};

use support::{eventually, BerthProcess, Kubectl, Server, KUBECTL_1_31};

const TIMEOUT: Duration = Duration::from_secs(20);

/// The Lease's current holder, or None while there is none.
fn holder(k: &Kubectl) -> Option<String> {
    support::lease_holder(k, &[], "berth-controller-manager")
}

/// Names of the objects of `kind` labelled `app=APP`.
fn names(k: &Kubectl, kind: &str, app: &str) -> Vec<String> {
    let selector = format!("app={app}");
    k.jsonpath(&["get", kind, "-l", &selector], "{.items[*].metadata.name}")
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

/// Waits until deployment `app` has one ReplicaSet and `replicas` pods.
fn wait_reconciled(k: &Kubectl, app: &str, replicas: usize, timeout: Duration) {
    eventually(timeout, || {
        (names(k, "replicasets", app).len() == 1 && names(k, "pods", app).len() == replicas)
            .then_some(())
    });
}

fn start(server: &Server, identity: &str) -> BerthProcess {
    server.spawn_berth(identity, &["controller-manager", "--identity", identity])
}

#[test]
fn of_two_controller_managers_one_leads_and_the_other_takes_over_when_it_dies() {
    let server = Server::start_with(&["--disable", "controllers"]);
    let k = server.kubectl(KUBECTL_1_31);
    let mut a = start(&server, "cm-a");
    let mut b = start(&server, "cm-b");

    let first = eventually(TIMEOUT, || holder(&k));
    let (leader, follower) = match first.as_str() {
        "cm-a" => (&mut a, &mut b),
        "cm-b" => (&mut b, &mut a),
        other => panic!("unexpected lease holder {other:?}"),
    };

    k.ok(&[
        "create",
        "deployment",
        "web",
        "--image=registry.k8s.io/pause:3.10",
        "--replicas=2",
    ]);
    wait_reconciled(&k, "web", 2, TIMEOUT);
    // Both copies had time to act: a second reconciler would have made a
    // second ReplicaSet or more pods by now.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(names(&k, "replicasets", "web").len(), 1, "one ReplicaSet");
    assert_eq!(names(&k, "pods", "web").len(), 2, "two pods");
    leader.assert_running();
    follower.assert_running();
    assert!(leader.log().contains("became leader"), "{}", leader.log());
    assert!(
        !follower.log().contains("became leader"),
        "{}",
        follower.log()
    );

    // SIGKILL: no release, so the follower waits for the Lease to expire (15 s).
    leader.kill9();
    let killed_at = Instant::now();
    let next = eventually(TIMEOUT + Duration::from_secs(5), || {
        holder(&k).filter(|h| *h != first)
    });
    println!("takeover by {next} after {:?}", killed_at.elapsed());
    assert!(
        follower.log().contains("became leader"),
        "{}",
        follower.log()
    );

    k.ok(&[
        "create",
        "deployment",
        "api",
        "--image=registry.k8s.io/pause:3.10",
        "--replicas=1",
    ]);
    wait_reconciled(&k, "api", 1, TIMEOUT);
    assert_eq!(
        names(&k, "replicasets", "web").len(),
        1,
        "still one ReplicaSet"
    );
    follower.assert_running();
}
