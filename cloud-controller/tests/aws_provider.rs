//! The `aws` provider against a real moto server: the network load
//! balancer, listeners and target groups follow the Service and its nodes,
//! a provider cut off half-way is finished by a fresh one without
//! duplicates, delete and adopt leave nothing tagged behind.

#[allow(dead_code)] // only some answers are used here
#[path = "../../provisioner/tests/aws/fault_proxy.rs"]
mod fault_proxy;
#[allow(dead_code)] // its EC2 helper is the provisioner's
#[path = "../../provisioner/tests/aws/moto.rs"]
mod moto;
#[path = "aws/world.rs"]
mod world;

use std::collections::{BTreeMap, BTreeSet};

use berth_cloud_controller::{AwsProvider, LoadBalancerProvider, ProviderError};
use fault_proxy::{Answer, Fault, FaultProxy};
use moto::Moto;
use world::{clients, nodes, service, tagged, world, Clients, World};

const ANNOTATION: &str = "service.beta.kubernetes.io/aws-load-balancer-";

struct Setup {
    _moto: Moto,
    clients: Clients,
    world: World,
}

async fn setup(cidr: &str) -> Setup {
    let moto = Moto::start();
    let clients = clients(&moto.url).await;
    let world = world(&clients.ec2, cidr).await;
    Setup {
        _moto: moto,
        clients,
        world,
    }
}

fn provider(setup: &Setup, cluster: &str) -> AwsProvider {
    AwsProvider::new(
        setup.clients.elb_config.clone(),
        cluster,
        vec![setup.world.subnet.clone()],
    )
}

/// The cross-zone attribute of the load balancer `name`.
async fn cross_zone(elb: &aws_sdk_elasticloadbalancingv2::Client, name: &str) -> Option<String> {
    let lbs = elb
        .describe_load_balancers()
        .names(name)
        .send()
        .await
        .expect("DescribeLoadBalancers");
    let arn = lbs.load_balancers().first()?.load_balancer_arn()?;
    let attributes = elb
        .describe_load_balancer_attributes()
        .load_balancer_arn(arn)
        .send()
        .await
        .expect("DescribeLoadBalancerAttributes");
    attributes
        .attributes()
        .iter()
        .find(|a| a.key() == Some("load_balancing.cross_zone.enabled"))
        .and_then(|a| a.value().map(str::to_owned))
}

fn set(ids: &[&String]) -> BTreeSet<String> {
    ids.iter().map(|s| (*s).clone()).collect()
}

#[tokio::test]
async fn balancer_follows_ports_and_nodes_and_delete_leaves_nothing() {
    let setup = setup("10.20").await;
    let cluster = "life";
    let aws = provider(&setup, cluster);
    let nodes = nodes(&setup.world);
    let (i0, i1) = (&setup.world.instances[0], &setup.world.instances[1]);
    let mut svc = service(
        "web",
        "0f6a3c1e-aaaa-4bbb-8ccc-000000000001",
        &[(80, 30080)],
    );

    assert_eq!(aws.get(&svc).await.expect("get"), None);
    let status = aws.ensure(&svc, &nodes).await.expect("ensure");
    let (lbs, groups) = tagged(&setup.clients.elb, cluster).await;
    assert_eq!(lbs.len(), 1, "{lbs:?}");
    assert_eq!(lbs[0].scheme, "internet-facing");
    assert_eq!(lbs[0].listeners, BTreeMap::from([(80, 30080)]));
    assert_eq!(groups.len(), 1, "{groups:?}");
    assert_eq!(groups[0].targets, set(&[i0, i1]));
    assert_eq!(
        groups[0].health,
        ("TCP".to_owned(), "traffic-port".to_owned(), None)
    );
    let hostname = status.ingress.expect("ingress")[0].hostname.clone();
    assert_eq!(hostname.as_deref(), Some(lbs[0].dns_name.as_str()));
    assert_eq!(
        aws.get(&svc)
            .await
            .expect("get")
            .expect("a status")
            .ingress
            .expect("ingress")[0]
            .hostname,
        hostname
    );

    // A node leaves, then comes back.
    aws.update(&svc, &nodes[..1]).await.expect("update");
    let (_, groups) = tagged(&setup.clients.elb, cluster).await;
    assert_eq!(groups[0].targets, set(&[i0]));
    aws.update(&svc, &nodes).await.expect("update");

    // A port added, the other's NodePort moved, traffic policy Local.
    let spec = svc.spec.as_mut().expect("spec");
    spec.ports = service("web", "x", &[(80, 30081), (443, 30443)])
        .spec
        .and_then(|s| s.ports);
    spec.external_traffic_policy = Some("Local".into());
    spec.health_check_node_port = Some(32100);
    aws.ensure(&svc, &nodes)
        .await
        .expect("ensure with new ports");
    aws.ensure(&svc, &nodes)
        .await
        .expect("ensure again changes nothing");
    let (lbs, groups) = tagged(&setup.clients.elb, cluster).await;
    assert_eq!(lbs.len(), 1, "still one load balancer: {lbs:?}");
    assert_eq!(
        lbs[0].listeners,
        BTreeMap::from([(80, 30081), (443, 30443)])
    );
    let ports: Vec<i32> = groups.iter().map(|g| g.port).collect();
    assert_eq!(
        ports,
        [30081, 30443],
        "the group of the old NodePort is gone"
    );
    for group in &groups {
        assert_eq!(group.targets, set(&[i0, i1]));
        assert_eq!(
            group.health,
            (
                "HTTP".to_owned(),
                "32100".to_owned(),
                Some("/healthz".to_owned())
            )
        );
    }

    // A port removed.
    svc.spec.as_mut().expect("spec").ports = service("web", "x", &[(443, 30443)])
        .spec
        .and_then(|s| s.ports);
    aws.ensure(&svc, &nodes)
        .await
        .expect("ensure without port 80");
    let (lbs, groups) = tagged(&setup.clients.elb, cluster).await;
    assert_eq!(lbs[0].listeners, BTreeMap::from([(443, 30443)]));
    assert_eq!(groups.len(), 1);

    aws.delete(&svc).await.expect("delete");
    aws.delete(&svc)
        .await
        .expect("a second delete finds nothing to do");
    assert_eq!(tagged(&setup.clients.elb, cluster).await, (vec![], vec![]));
}

#[tokio::test]
async fn a_provider_cut_off_before_its_listeners_is_finished_by_a_fresh_one() {
    let setup = setup("10.21").await;
    let cluster = "cutoff";
    let proxy = FaultProxy::start(&setup._moto.url).await;
    proxy.fail(Fault {
        action: "CreateListener",
        body_contains: "",
        times: 1,
        answer: Answer::Error("InternalFailure"),
    });
    let through_proxy = clients(&proxy.url).await;
    let first = AwsProvider::new(
        through_proxy.elb_config,
        cluster,
        vec![setup.world.subnet.clone()],
    );
    let svc = service(
        "web",
        "0f6a3c1e-aaaa-4bbb-8ccc-000000000002",
        &[(80, 30080)],
    );
    let nodes = nodes(&setup.world);
    let failed = first.ensure(&svc, &nodes).await;
    assert!(
        matches!(
            failed,
            Err(ProviderError::Transient {
                operation: "CreateListener",
                ..
            })
        ),
        "{failed:?}"
    );
    let (lbs, groups) = tagged(&setup.clients.elb, cluster).await;
    assert_eq!((lbs.len(), groups.len()), (1, 1));
    assert!(lbs[0].listeners.is_empty(), "cut off before its listener");

    let fresh = provider(&setup, cluster);
    fresh
        .ensure(&svc, &nodes)
        .await
        .expect("the fresh provider's ensure");
    let (lbs, groups) = tagged(&setup.clients.elb, cluster).await;
    assert_eq!(lbs.len(), 1, "no second load balancer: {lbs:?}");
    assert_eq!(groups.len(), 1, "no second target group: {groups:?}");
    assert_eq!(lbs[0].listeners, BTreeMap::from([(80, 30080)]));
    assert_eq!(groups[0].targets.len(), 2);
}

#[tokio::test]
async fn adopt_deletes_what_services_gone_meanwhile_left() {
    let setup = setup("10.22").await;
    let cluster = "adopt";
    let aws = provider(&setup, cluster);
    let nodes = nodes(&setup.world);
    let mut kept = service(
        "kept",
        "0f6a3c1e-aaaa-4bbb-8ccc-000000000003",
        &[(80, 30080)],
    );
    kept.metadata.annotations = Some(
        [
            (format!("{ANNOTATION}internal"), "true".to_owned()),
            (
                format!("{ANNOTATION}cross-zone-load-balancing-enabled"),
                "true".to_owned(),
            ),
        ]
        .into(),
    );
    let gone = service(
        "gone",
        "0f6a3c1e-aaaa-4bbb-8ccc-000000000004",
        &[(81, 30081)],
    );
    aws.ensure(&kept, &nodes).await.expect("ensure kept");
    aws.ensure(&gone, &nodes).await.expect("ensure gone");
    // Another cluster's balancer in the same account is not touched.
    let neighbour = provider(&setup, "neighbour");
    neighbour
        .ensure(&gone, &nodes)
        .await
        .expect("the neighbour's");

    let restarted = provider(&setup, cluster);
    restarted
        .adopt(&[kept.clone()], &nodes)
        .await
        .expect("adopt");
    let (lbs, groups) = tagged(&setup.clients.elb, cluster).await;
    assert_eq!(lbs.len(), 1, "{lbs:?}");
    assert_eq!(lbs[0].scheme, "internal");
    assert_eq!(
        cross_zone(&setup.clients.elb, &lbs[0].name)
            .await
            .as_deref(),
        Some("true")
    );
    assert_eq!(lbs[0].listeners, BTreeMap::from([(80, 30080)]));
    assert_eq!(groups.len(), 1);
    let (theirs, _) = tagged(&setup.clients.elb, "neighbour").await;
    assert_eq!(theirs.len(), 1, "another cluster's is left alone");

    // The scheme cannot change in place: the balancer is made again.
    kept.metadata.annotations = None;
    restarted.ensure(&kept, &nodes).await.expect("ensure");
    let (lbs, _) = tagged(&setup.clients.elb, cluster).await;
    assert_eq!(lbs.len(), 1, "{lbs:?}");
    assert_eq!(lbs[0].scheme, "internet-facing");

    let mut bad = kept.clone();
    bad.metadata.annotations = Some([(format!("{ANNOTATION}scheme"), "public".to_owned())].into());
    assert!(matches!(
        restarted.ensure(&bad, &nodes).await,
        Err(ProviderError::Invalid { .. })
    ));
}
