//! A controller cut off at any ELBv2 call, then restarted, leaves nothing
//! leaked and nothing missing. For each flow (create, target update, port
//! change, delete) an uncut run through a recording proxy lists the
//! mutating calls the provider makes; then, for each of those calls, the
//! flow runs again with that call failing, and again with the call taking
//! effect but its answer lost (the connection dropped, as a killed
//! controller sees it), and a fresh provider finishes the way a restarted
//! controller does (`adopt`, then `ensure` or `delete`). The end state must
//! be the uncut run's; and after it the Service's delete, or adoption
//! once the Service is gone, leaves nothing tagged.

#[allow(dead_code)] // only some answers are used here
#[path = "../../provisioner/tests/aws/fault_proxy.rs"]
mod fault_proxy;
#[allow(dead_code)] // its EC2 helper is the provisioner's
#[path = "../../provisioner/tests/aws/moto.rs"]
mod moto;
#[allow(dead_code)] // the provider test's helpers
#[path = "aws/world.rs"]
mod world;

use berth_cloud_controller::nodes::TargetNode;
use berth_cloud_controller::{AwsProvider, LoadBalancerProvider, ProviderError};
use fault_proxy::{Answer, FaultProxy};
use k8s_openapi::api::core::v1::Service;
use moto::Moto;
use world::{clients, nodes, service, tagged, world, Balancer, Clients, Group, World};

const UID: &str = "0f6a3c1e-bbbb-4ccc-8ddd-000000000023";

/// The Service before each flow: two ports.
fn before() -> Service {
    service("web", UID, &[(80, 30080), (443, 30443)])
}

/// The Service after a port change: 80's NodePort moved, 443 removed,
/// 8080 added.
fn after() -> Service {
    service("web", UID, &[(80, 30081), (8080, 30880)])
}

/// One of the flows a controller can be killed in.
#[derive(Debug, Clone, Copy)]
enum Flow {
    /// A new Service: ensure from nothing.
    Create,
    /// A node added and another removed: update.
    Targets,
    /// A port added, one removed, one NodePort moved: ensure.
    Ports,
    /// The Service deleted: delete.
    Delete,
}

impl Flow {
    /// The targets before the flow and after it.
    fn targets(self, all: &[TargetNode]) -> (Vec<TargetNode>, Vec<TargetNode>) {
        match self {
            Flow::Targets => (all[..1].to_vec(), all[1..].to_vec()),
            _ => (all.to_vec(), all.to_vec()),
        }
    }

    /// The Service the flow ends with.
    fn service(self) -> Service {
        match self {
            Flow::Ports => after(),
            _ => before(),
        }
    }

    /// Brings the world to where the flow starts.
    async fn prepare(self, aws: &AwsProvider, all: &[TargetNode]) {
        if !matches!(self, Flow::Create) {
            let (targets, _) = self.targets(all);
            aws.ensure(&before(), &targets).await.expect("preparing");
        }
    }

    /// The flow itself, as the controller runs it.
    async fn act(self, aws: &AwsProvider, all: &[TargetNode]) -> Result<(), ProviderError> {
        let (_, targets) = self.targets(all);
        match self {
            Flow::Create | Flow::Ports => aws.ensure(&self.service(), &targets).await.map(drop),
            Flow::Targets => aws.update(&self.service(), &targets).await,
            Flow::Delete => aws.delete(&self.service()).await,
        }
    }

    /// What a restarted controller does: adopt what exists for the
    /// Services it has, then a full ensure (it remembers no last sync), or
    /// the delete of a Service that still holds its finalizer.
    async fn finish(self, aws: &AwsProvider, all: &[TargetNode]) -> Result<(), ProviderError> {
        let (_, targets) = self.targets(all);
        let svc = self.service();
        aws.adopt(std::slice::from_ref(&svc), &targets).await?;
        match self {
            Flow::Delete => aws.delete(&svc).await,
            _ => aws.ensure(&svc, &targets).await.map(drop),
        }
    }
}

/// Moto with its world, and a recording proxy in front of it.
struct Setup {
    _moto: Moto,
    clients: Clients,
    world: World,
    proxy: FaultProxy,
    proxied: Clients,
}

impl Setup {
    async fn start(cidr: &str) -> Self {
        let moto = Moto::start();
        let direct = clients(&moto.url).await;
        let world = world(&direct.ec2, cidr).await;
        let proxy = FaultProxy::start(&moto.url).await;
        let proxied = clients(&proxy.url).await;
        Setup {
            _moto: moto,
            clients: direct,
            world,
            proxy,
            proxied,
        }
    }

    /// A provider for `cluster` straight to moto.
    fn direct(&self, cluster: &str) -> AwsProvider {
        AwsProvider::new(
            self.clients.elb_config.clone(),
            cluster,
            vec![self.world.subnet.clone()],
        )
    }

    /// A provider for `cluster` through the proxy.
    fn proxied(&self, cluster: &str) -> AwsProvider {
        AwsProvider::new(
            self.proxied.elb_config.clone(),
            cluster,
            vec![self.world.subnet.clone()],
        )
    }

    /// What is tagged for `cluster`, without what differs between clusters
    /// (names, DNS names).
    async fn state(&self, cluster: &str) -> (Vec<Balancer>, Vec<Group>) {
        let (mut lbs, groups) = tagged(&self.clients.elb, cluster).await;
        for lb in &mut lbs {
            lb.name.clear();
            lb.dns_name.clear();
        }
        (lbs, groups)
    }
}

/// The ELBv2 actions that change something, from the proxy's log.
fn mutating(seen: &[String]) -> Vec<String> {
    seen.iter()
        .filter_map(|call| call.split_whitespace().next())
        .filter(|action| !action.starts_with("Describe"))
        .map(str::to_owned)
        .collect()
}

/// Runs `flow` uncut, then cut at each of its mutating calls in both ways,
/// and compares every restarted end state with the uncut one.
async fn cut_everywhere(flow: Flow, cidr: &str) {
    let setup = Setup::start(cidr).await;
    let all = nodes(&setup.world);
    let name = format!("{flow:?}").to_lowercase();

    let reference = format!("{name}-uncut");
    flow.prepare(&setup.direct(&reference), &all).await;
    let start = setup.proxy.seen().len();
    flow.act(&setup.proxied(&reference), &all)
        .await
        .unwrap_or_else(|e| panic!("{flow:?} uncut: {e}"));
    let calls = mutating(&setup.proxy.seen()[start..]);
    assert!(!calls.is_empty(), "{flow:?} made no change");
    let wanted = setup.state(&reference).await;
    match flow {
        Flow::Delete => assert_eq!(wanted, (vec![], vec![]), "{flow:?} uncut"),
        _ => assert_eq!(wanted.0.len(), 1, "{flow:?} uncut: one load balancer"),
    }
    eprintln!("{flow:?} makes {calls:?}");

    for (i, action) in calls.iter().enumerate() {
        let skip = calls[..i].iter().filter(|a| *a == action).count();
        for (mode, answer) in [
            ("failed", Answer::Error("InternalFailure")),
            ("lost", Answer::Lost),
        ] {
            let case = format!("{flow:?} cut at call {i} ({action} #{skip}, {mode})");
            let cluster = format!("{name}-{i}-{mode}");
            flow.prepare(&setup.direct(&cluster), &all).await;
            setup.proxy.fail_nth(action, skip, answer);
            let cut = flow.act(&setup.proxied(&cluster), &all).await;
            assert!(cut.is_err(), "{case}: the cut call went unnoticed");
            flow.finish(&setup.direct(&cluster), &all)
                .await
                .unwrap_or_else(|e| panic!("{case}: the restarted provider failed: {e}"));
            assert_eq!(setup.state(&cluster).await, wanted, "{case}");
            // Clean up, which a cut must not have made impossible either:
            // by the Service's delete, or by a restart's adoption once the
            // Service is gone.
            let aws = setup.direct(&cluster);
            let cleaned = match mode {
                "failed" => aws.delete(&flow.service()).await,
                _ => aws.adopt(&[], &all).await,
            };
            cleaned.unwrap_or_else(|e| panic!("{case}: the clean-up failed: {e}"));
            assert_eq!(
                tagged(&setup.clients.elb, &cluster).await,
                (vec![], vec![]),
                "{case}: left behind after delete"
            );
        }
    }
}

#[tokio::test]
async fn a_create_cut_at_any_call_is_finished_by_a_restart() {
    cut_everywhere(Flow::Create, "10.30").await;
}

#[tokio::test]
async fn a_target_update_cut_at_any_call_is_finished_by_a_restart() {
    cut_everywhere(Flow::Targets, "10.31").await;
}

#[tokio::test]
async fn a_port_change_cut_at_any_call_is_finished_by_a_restart() {
    cut_everywhere(Flow::Ports, "10.32").await;
}

#[tokio::test]
async fn a_delete_cut_at_any_call_leaves_nothing_after_a_restart() {
    cut_everywhere(Flow::Delete, "10.33").await;
}
