//! The cloud-controller's `aws` provider end to end: `berth server`, moto
//! with a VPC, a subnet and two instances, two Nodes whose providerIDs are
//! those instances, and `berth cloud-controller --aws-…` talking to moto
//! through a fault proxy, driven by kubectl 1.33. A LoadBalancer Service
//! gets a network load balancer with a listener and a target group holding
//! both instances, and its DNS name in `kubectl get svc`; a Node removed is
//! deregistered; a port added gets its listener. The controller killed
//! after a load balancer exists but before its listener (CreateListener's
//! answer held back) and restarted finishes it without a second one, and
//! removes the balancer of a Service deleted while it was down; killed
//! again while a port change is half done (ModifyListener passed on, its
//! answer held) and restarted, it brings the balancer to the Service's
//! ports with no group left over. Deleting the last Service leaves nothing
//! tagged in moto. Nodes are API objects only: no traffic.

#[allow(dead_code)] // only the Hold answer is used here
#[path = "../../provisioner/tests/aws/fault_proxy.rs"]
mod fault_proxy;
#[allow(dead_code)] // its EC2 helper is the provisioner's
#[path = "../../provisioner/tests/aws/moto.rs"]
mod moto;
mod support;
#[allow(dead_code)] // the provider's config is for the crate's own tests
#[path = "../../cloud-controller/tests/aws/world.rs"]
mod world;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use fault_proxy::{Answer, Fault, FaultProxy};
use moto::Moto;
use support::{wait_for, BerthProcess, Kubectl, Server, KUBECTL_1_33};
use world::{clients, provider_id, tagged, world, Balancer, Group};

const CLUSTER: &str = "lba-e2e";
const NS: &str = "lba-e2e";
const TIMEOUT: Duration = Duration::from_secs(90);
const AWS_ENV: &[(&str, &str)] = &[
    ("AWS_ACCESS_KEY_ID", "testing"),
    ("AWS_SECRET_ACCESS_KEY", "testing"),
    ("AWS_EC2_METADATA_DISABLED", "true"),
];

fn node(name: &str, instance: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Node\nmetadata:\n  name: {name}\nspec:\n  providerID: {}\n",
        provider_id(instance)
    )
}

fn service(name: &str, port: u16) -> String {
    format!(
        r#"apiVersion: v1
kind: Service
metadata:
  name: {name}
  namespace: {NS}
spec:
  type: LoadBalancer
  selector:
    app: {name}
  ports:
  - name: p{port}
    port: {port}
"#
    )
}

/// `berth cloud-controller` with only the `aws` provider, through `endpoint`.
/// The same identity at every start, so a restart takes its Lease at once.
fn start_controller(server: &Server, endpoint: &str, subnet: &str) -> BerthProcess {
    let args = [
        "cloud-controller",
        "--identity",
        "lba-e2e-controller",
        "--aws-cluster",
        CLUSTER,
        "--aws-region",
        world::REGION,
        "--aws-endpoint-url",
        endpoint,
        "--aws-subnets",
        subnet,
        "--default-provider",
        "aws",
    ];
    server.spawn_berth_with_env(None, "lba-cloud-controller", &args, AWS_ENV)
}

fn node_port(k: &Kubectl, name: &str, index: usize) -> i32 {
    k.jsonpath(
        &["-n", NS, "get", "svc", name],
        &format!("{{.spec.ports[{index}].nodePort}}"),
    )
    .parse()
    .expect("a NodePort")
}

#[test]
fn aws_load_balancer_follows_service_nodes_and_restarts() {
    let moto = Moto::start();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let proxy = runtime.block_on(FaultProxy::start(&moto.url));
    let aws = runtime.block_on(clients(&moto.url));
    let world = runtime.block_on(world(&aws.ec2, "10.30"));
    let read = || runtime.block_on(tagged(&aws.elb, CLUSTER));
    let of = |service: &str| -> (Vec<Balancer>, Vec<Group>) {
        let (lbs, groups) = read();
        let key = format!("{NS}/{service}");
        (
            lbs.into_iter().filter(|l| l.service == key).collect(),
            groups.into_iter().filter(|g| g.service == key).collect(),
        )
    };
    let (i0, i1) = (world.instances[0].clone(), world.instances[1].clone());

    let server = Server::start();
    let k = server.kubectl(KUBECTL_1_33);
    for (name, instance, ip) in [
        ("lba-e2e-node-0", &i0, "10.30.1.10"),
        ("lba-e2e-node-1", &i1, "10.30.1.11"),
    ] {
        k.ok_stdin(&["apply", "-f", "-"], &node(name, instance));
        k.ok(&[
            "patch",
            "node",
            name,
            "--subresource=status",
            "--type=merge",
            "-p",
            &format!(
                r#"{{"status":{{"conditions":[{{"type":"Ready","status":"True"}}],"addresses":[{{"type":"InternalIP","address":"{ip}"}}]}}}}"#
            ),
        ]);
    }
    k.ok(&["create", "namespace", NS]);
    let mut controller = start_controller(&server, &proxy.url, &world.subnet);
    let wait = |what: &str, controller: &mut BerthProcess, check: &mut dyn FnMut() -> bool| {
        wait_for(what, TIMEOUT, &server, &mut [controller], || {
            check().then_some(())
        })
    };

    // A Service gets a balancer, a listener and a group with both instances.
    k.ok_stdin(&["apply", "-f", "-"], &service("web", 80));
    let hostname = wait_for(
        "the Service's hostname",
        TIMEOUT,
        &server,
        &mut [&mut controller],
        || {
            Some(k.jsonpath(
                &["-n", NS, "get", "svc", "web"],
                "{.status.loadBalancer.ingress[0].hostname}",
            ))
            .filter(|h| !h.is_empty())
        },
    );
    let web_port = node_port(&k, "web", 0);
    let both: BTreeSet<String> = [i0.clone(), i1.clone()].into();
    wait("both instances registered", &mut controller, &mut || {
        of("web").1.first().is_some_and(|g| g.targets == both)
    });
    let (lbs, groups) = of("web");
    assert_eq!(lbs.len(), 1, "{lbs:?}");
    assert_eq!(lbs[0].dns_name, hostname);
    assert_eq!(lbs[0].listeners, BTreeMap::from([(80, web_port)]));
    assert_eq!(groups.len(), 1, "{groups:?}");
    let listed = k.ok(&["-n", NS, "get", "svc", "web"]);
    assert!(listed.contains(&hostname), "{listed}");

    // A node removed is deregistered.
    k.ok(&["delete", "node", "lba-e2e-node-1"]);
    wait(
        "the removed node deregistered",
        &mut controller,
        &mut || {
            of("web")
                .1
                .first()
                .is_some_and(|g| g.targets == [i0.clone()].into())
        },
    );

    // A port added gets its listener and group.
    k.ok(&[
        "-n",
        NS,
        "patch",
        "svc",
        "web",
        "--type=json",
        "-p",
        r#"[{"op":"add","path":"/spec/ports/-","value":{"name":"p443","port":443}}]"#,
    ]);
    wait("the new port's listener", &mut controller, &mut || {
        of("web").0.first().is_some_and(|l| l.listeners.len() == 2)
    });
    let tls_port = node_port(&k, "web", 1);
    let (lbs, groups) = of("web");
    assert_eq!(
        lbs[0].listeners,
        BTreeMap::from([(80, web_port), (443, tls_port)])
    );
    assert_eq!(groups.len(), 2, "{groups:?}");

    // Killed after api's balancer exists, before its listener does.
    proxy.fail(Fault {
        action: "CreateListener",
        body_contains: "Port=8080",
        times: 1,
        answer: Answer::Hold,
    });
    k.ok_stdin(&["apply", "-f", "-"], &service("api", 8080));
    wait(
        "api's CreateListener passed on, its answer held",
        &mut controller,
        &mut || {
            proxy
                .seen()
                .iter()
                .any(|c| c.starts_with("CreateListener ") && c.contains("Port=8080"))
        },
    );
    controller.kill9();
    // web is deleted while no controller runs, its finalizer taken off by
    // hand: only the tags tell its balancer is an orphan now.
    k.ok(&[
        "-n",
        NS,
        "patch",
        "svc",
        "web",
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":null}}"#,
    ]);
    k.ok(&["-n", NS, "delete", "svc", "web"]);
    assert_eq!(of("web").0.len(), 1, "web's balancer is left so far");

    let mut controller = start_controller(&server, &proxy.url, &world.subnet);
    wait(
        "api's listener, and web's balancer removed",
        &mut controller,
        &mut || {
            let (lbs, _) = of("api");
            lbs.len() == 1 && lbs[0].listeners.len() == 1 && of("web") == (vec![], vec![])
        },
    );
    let (lbs, groups) = of("api");
    assert_eq!(lbs.len(), 1, "exactly one balancer for api: {lbs:?}");
    assert_eq!(groups.len(), 1, "exactly one group for api: {groups:?}");
    let api_port = node_port(&k, "api", 0);
    assert_eq!(lbs[0].listeners, BTreeMap::from([(8080, api_port)]));
    assert_eq!(groups[0].targets, [i0.clone()].into());
    let create_lbs = proxy
        .seen()
        .iter()
        .filter(|c| c.starts_with("CreateLoadBalancer "))
        .count();
    assert_eq!(create_lbs, 2, "one CreateLoadBalancer for web, one for api");

    // Killed in the middle of a port change: 8080's NodePort moved and 9090
    // added; the listener's switch to the new group takes effect, its
    // answer never comes.
    proxy.fail(Fault {
        action: "ModifyListener",
        body_contains: "",
        times: 1,
        answer: Answer::Hold,
    });
    k.ok(&[
        "-n",
        NS,
        "patch",
        "svc",
        "api",
        "--type=json",
        "-p",
        r#"[{"op":"replace","path":"/spec/ports/0/nodePort","value":31990},{"op":"add","path":"/spec/ports/-","value":{"name":"p9090","port":9090}}]"#,
    ]);
    wait(
        "api's ModifyListener passed on, its answer held",
        &mut controller,
        &mut || {
            proxy
                .seen()
                .iter()
                .any(|c| c.starts_with("ModifyListener "))
        },
    );
    controller.kill9();
    let mut controller = start_controller(&server, &proxy.url, &world.subnet);
    let extra_port = node_port(&k, "api", 1);
    let wanted = BTreeMap::from([(8080, 31990), (9090, extra_port)]);
    wait(
        "api's new ports on its balancer",
        &mut controller,
        &mut || {
            let (lbs, groups) = of("api");
            lbs.len() == 1 && lbs[0].listeners == wanted && groups.len() == 2
        },
    );
    let (_, groups) = of("api");
    for group in &groups {
        assert_eq!(group.targets, [i0.clone()].into(), "{groups:?}");
    }

    // Deleting the last Service leaves nothing tagged.
    k.ok(&["-n", NS, "delete", "svc", "api", "--timeout=60s"]);
    assert_eq!(read(), (vec![], vec![]), "nothing tagged left in moto");
    controller.assert_running();
    k.ok(&["delete", "node", "lba-e2e-node-0"]);
}
