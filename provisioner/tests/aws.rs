//! The EC2 backend against moto in server mode: pools launched with the right
//! types, tags, subnets and user-data; scale-down terminating the emptiest;
//! no leaked instance after an injected failure or a controller killed
//! mid-launch; spot capacity errors falling back to on-demand; throttling
//! retried; masters described with their addresses. Each test starts its own
//! moto on loopback (and, where it injects faults, a proxy in front of it).

#[path = "aws/fault_proxy.rs"]
mod fault_proxy;
#[path = "aws/moto.rs"]
mod moto;

use std::collections::BTreeSet;
use std::time::Duration;

use aws_sdk_ec2::types::InstanceAttributeName;
use base64::Engine;
use berth_api::nodepool::{AwsTemplate, RootVolume};
use berth_nodepool::plan::{plan, ClaimView};
use berth_provisioner::aws::{
    self, api_endpoints, Backoff, Ec2, Instance, LaunchRequest, Role, CLAIM_TAG, CLUSTER_TAG,
    NAME_TAG, POOL_TAG, ROLE_TAG,
};
use fault_proxy::{Answer, Fault, FaultProxy};
use moto::Moto;

const REGION: &str = "us-east-1";

/// EC2 for `cluster` at `url` with moto's test credentials and fast back-off.
async fn connect(url: &str, cluster: &str) -> Ec2 {
    moto::ec2(url, cluster).await.with_backoff(Backoff {
        first: Duration::from_millis(10),
        max: Duration::from_millis(50),
        attempts: 4,
    })
}

/// A template of moto's first AMI, two default subnets, a security group.
async fn template(ec2: &Ec2, types: &[&str]) -> AwsTemplate {
    let sdk = ec2.sdk();
    let images = sdk.describe_images().send().await.expect("images");
    let ami = images.images()[0].image_id().expect("ami").to_owned();
    let subnets = sdk.describe_subnets().send().await.expect("subnets");
    let mut subnet_ids: Vec<String> = subnets
        .subnets()
        .iter()
        .filter_map(|s| s.subnet_id().map(str::to_owned))
        .collect();
    subnet_ids.sort();
    subnet_ids.truncate(2);
    let group = sdk
        .create_security_group()
        .group_name(format!("nodes-{}", ec2.cluster()))
        .description("berth nodes")
        .send()
        .await
        .expect("security group");
    AwsTemplate {
        instance_types: types.iter().map(|t| t.to_string()).collect(),
        ami,
        subnet_ids,
        security_group_ids: vec![group.group_id().expect("group id").to_owned()],
        root_volume: Some(RootVolume {
            size_gib: 30,
            type_: Some("gp3".into()),
        }),
        ..AwsTemplate::default()
    }
}

async fn launch_node(ec2: &Ec2, pool: &str, claim: &str, template: &AwsTemplate) -> Instance {
    ec2.launch(&request(pool, claim, template))
        .await
        .unwrap_or_else(|e| panic!("launching {claim}: {e}"))
}

fn request<'a>(pool: &'a str, claim: &'a str, template: &'a AwsTemplate) -> LaunchRequest<'a> {
    LaunchRequest {
        name: claim,
        role: Role::Node,
        pool: Some(pool),
        template,
        user_data: "#!/bin/sh\necho joining\n",
    }
}

/// Every instance moto holds, of any cluster or none.
async fn all_instances(ec2: &Ec2) -> Vec<Instance> {
    let out = ec2
        .sdk()
        .describe_instances()
        .send()
        .await
        .expect("describe");
    out.reservations()
        .iter()
        .flat_map(|r| r.instances())
        .map(|i| Instance {
            id: i.instance_id().unwrap_or_default().into(),
            state: i
                .state()
                .and_then(|s| s.name())
                .map(|n| n.as_str().to_owned())
                .unwrap_or_default(),
            tags: i
                .tags()
                .iter()
                .filter_map(|t| Some((t.key()?.to_owned(), t.value()?.to_owned())))
                .collect(),
            ..Instance::default()
        })
        .collect()
}

/// Every live instance of moto is tagged for one of `claims`.
async fn assert_no_leak(ec2: &Ec2, claims: &[&str]) {
    for instance in all_instances(ec2).await.iter().filter(|i| i.live()) {
        let claim = instance.tag(CLAIM_TAG);
        assert!(
            claim.is_some_and(|c| claims.contains(&c)),
            "leaked instance {instance:?}"
        );
    }
}

fn live_ids(instances: &[Instance]) -> Vec<String> {
    instances
        .iter()
        .filter(|i| i.live())
        .map(|i| i.id.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pool_of_three_gets_its_types_tags_subnets_and_user_data_and_scales_to_one() {
    let moto = Moto::start();
    let ec2 = connect(&moto.url, "awst-pool").await;
    let template = template(&ec2, &["m5.large", "m5.xlarge"]).await;
    let claims = ["cpu-a", "cpu-b", "cpu-c"];
    let mut launched = Vec::new();
    for claim in claims {
        launched.push(launch_node(&ec2, "cpu", claim, &template).await);
    }
    let again = launch_node(&ec2, "cpu", "cpu-a", &template).await;
    assert_eq!(again.id, launched[0].id, "a second launch finds the first");

    let listed = ec2.list_pool("cpu").await.expect("list");
    assert_eq!(listed.len(), 3, "{listed:?}");
    let mut per_subnet = std::collections::BTreeMap::<String, usize>::new();
    for (instance, claim) in launched.iter().zip(claims) {
        assert_eq!(instance.instance_type, "m5.large");
        assert_eq!(instance.image_id.as_deref(), Some(template.ami.as_str()));
        assert!(instance.provider_id().starts_with("aws:///us-east-1"));
        assert_eq!(instance.tag(CLUSTER_TAG), Some("awst-pool"));
        assert_eq!(instance.tag(POOL_TAG), Some("cpu"));
        assert_eq!(instance.tag(CLAIM_TAG), Some(claim));
        assert_eq!(instance.tag(NAME_TAG), Some(claim));
        assert_eq!(instance.tag(ROLE_TAG), Some("node"));
        *per_subnet
            .entry(instance.subnet_id.clone().unwrap_or_default())
            .or_default() += 1;
        let attribute = ec2
            .sdk()
            .describe_instance_attribute()
            .instance_id(&instance.id)
            .attribute(InstanceAttributeName::UserData)
            .send()
            .await
            .expect("user data");
        let encoded = attribute
            .user_data()
            .and_then(|v| v.value())
            .expect("user data value");
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .expect("base64");
        assert_eq!(decoded, b"#!/bin/sh\necho joining\n");
    }
    let spread: Vec<(String, usize)> = per_subnet.into_iter().collect();
    assert_eq!(
        spread,
        [
            (template.subnet_ids[0].clone(), 2),
            (template.subnet_ids[1].clone(), 1)
        ],
        "instances spread over the subnets"
    );

    // Scale to 1 as the controller does: the plan picks the two emptiest
    // claims (cpu-b holds pods), their machines are terminated.
    let views: Vec<ClaimView> = claims
        .iter()
        .enumerate()
        .map(|(i, name)| ClaimView {
            name: name.to_string(),
            ready: true,
            pods: if *name == "cpu-b" { 2 } else { 0 },
            created: i as i64,
            ..ClaimView::default()
        })
        .collect();
    let removal = plan(1, &views).remove;
    assert_eq!(removal, ["cpu-c", "cpu-a"]);
    for claim in &removal {
        let found = ec2
            .find(Role::Node, claim)
            .await
            .expect("find")
            .expect("live");
        ec2.terminate(&found.id).await.expect("terminate");
    }
    let left = ec2.list_pool("cpu").await.expect("list");
    assert_eq!(live_ids(&left), [launched[1].id.clone()]);
    ec2.terminate(&launched[0].id)
        .await
        .expect("terminating twice is fine");
    assert_no_leak(&ec2, &["cpu-b"]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn spot_capacity_errors_fall_back_to_on_demand_and_throttling_is_retried() {
    let moto = Moto::start();
    let proxy = FaultProxy::start(&moto.url).await;
    let ec2 = connect(&proxy.url, "awst-spot").await;
    let mut template = template(&ec2, &["g5.xlarge", "g5.2xlarge"]).await;
    template.capacity_type = Some("spot".into());
    proxy.fail(Fault {
        action: "RunInstances",
        body_contains: "",
        times: 1,
        answer: Answer::Error("RequestLimitExceeded"),
    });
    proxy.fail(Fault {
        action: "RunInstances",
        body_contains: "MarketType=spot",
        times: usize::MAX,
        answer: Answer::Error("MaxSpotInstanceCountExceeded"),
    });
    let instance = launch_node(&ec2, "gpu", "gpu-a", &template).await;
    assert!(!instance.spot, "fell back to on-demand: {instance:?}");
    assert_eq!(instance.instance_type, "g5.xlarge");
    let runs: Vec<String> = proxy
        .seen()
        .into_iter()
        .filter(|s| s.starts_with("RunInstances "))
        .collect();
    let spot: Vec<bool> = runs.iter().map(|r| r.contains("MarketType=spot")).collect();
    assert_eq!(
        spot,
        [true, true, true, false],
        "throttled once, both types as spot, then on-demand"
    );
    let tokens: Vec<&str> = runs
        .iter()
        .filter_map(|r| param(r, "ClientToken"))
        .collect();
    assert_eq!(
        tokens,
        ["gpu-a", "gpu-a", "gpu-a-1", "gpu-a-2"],
        "a retry reuses its token"
    );
    assert_eq!(
        param(&runs[3], "MetadataOptions.HttpTokens"),
        Some("required")
    );
    assert_eq!(
        param(&runs[3], "BlockDeviceMapping.1.Ebs.VolumeSize"),
        Some("30")
    );
    assert_no_leak(&ec2, &["gpu-a"]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn failures_mid_launch_and_a_killed_controller_leak_no_instance() {
    let moto = Moto::start();
    let proxy = FaultProxy::start(&moto.url).await;
    let ec2 = connect(&proxy.url, "awst-leak").await;
    let template = template(&ec2, &["m5.large"]).await;
    launch_node(&ec2, "cpu", "cpu-kept", &template).await;

    // The read-back after RunInstances fails: the new instance is terminated.
    proxy.fail(Fault {
        action: "DescribeInstances",
        body_contains: "InstanceId.1=",
        times: 1,
        answer: Answer::Error("InternalError"),
    });
    let failed = ec2.launch(&request("cpu", "cpu-failed", &template)).await;
    assert!(failed.is_err(), "{failed:?}");
    assert_no_leak(&ec2, &["cpu-kept"]).await;

    // The controller dies after RunInstances, before it hears back.
    proxy.fail(Fault {
        action: "DescribeInstances",
        body_contains: "InstanceId.1=",
        times: 1,
        answer: Answer::Hang,
    });
    let killed = {
        let ec2 = ec2.clone();
        let template = template.clone();
        tokio::spawn(async move {
            let _ = ec2.launch(&request("cpu", "cpu-killed", &template)).await;
        })
    };
    let started = loop {
        if let Some(found) = ec2.find(Role::Node, "cpu-killed").await.expect("find") {
            break found;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    killed.abort();
    let _ = killed.await;

    // Restarted with the claim still there, the launch finds its instance.
    let relaunched = launch_node(&ec2, "cpu", "cpu-killed", &template).await;
    assert_eq!(relaunched.id, started.id);
    // Its claim deleted meanwhile, the clean-up pass terminates it; an
    // instance of another cluster is left alone.
    let other = connect(&proxy.url, "awst-other").await;
    let foreign = launch_node(&other, "cpu", "cpu-foreign", &template).await;
    let terminated = ec2
        .clean_up(|| async { Ok::<_, aws::AwsError>(BTreeSet::from(["cpu-kept".to_owned()])) })
        .await
        .expect("clean-up");
    assert_eq!(terminated, std::slice::from_ref(&started.id));
    assert_no_leak(&ec2, &["cpu-kept", "cpu-foreign"]).await;
    assert!(other
        .describe(&foreign.id)
        .await
        .expect("describe")
        .is_some_and(|i| i.live()));
}

/// The value of `key` in a recorded `Action body`.
fn param<'a>(call: &'a str, key: &str) -> Option<&'a str> {
    call.split(['&', ' '])
        .find_map(|pair| pair.strip_prefix(key)?.strip_prefix('='))
}

#[tokio::test(flavor = "multi_thread")]
async fn masters_on_ec2_are_described_with_their_addresses() {
    let moto = Moto::start();
    let ec2 = connect(&moto.url, "awst-masters").await;
    let config: aws::AwsClusterConfig = toml::from_str(&format!(
        "region = \"{REGION}\"\nendpoint_url = \"{}\"\n[masters]\ncount = 3\ninstance_types = [\"m5.large\"]\nami = \"{}\"\n",
        moto.url,
        template(&ec2, &["m5.large"]).await.ami,
    ))
    .expect("[aws] block");
    let masters_config = config.masters.clone().expect("masters");
    let names = masters_config.names(ec2.cluster());
    let launched = ec2
        .launch_masters(&names, &masters_config.template(), "#!/bin/sh\n")
        .await
        .expect("launch masters");
    launch_node(&ec2, "cpu", "cpu-a", &masters_config.template()).await;

    let masters = ec2.masters().await.expect("masters");
    let described: Vec<(String, String)> = masters
        .iter()
        .map(|m| (m.name.clone(), m.instance.id.clone()))
        .collect();
    let want: Vec<(String, String)> = launched
        .iter()
        .map(|m| (m.name.clone(), m.instance.id.clone()))
        .collect();
    assert_eq!(described, want, "the three masters, by name, no node");
    assert_eq!(
        names,
        [
            "awst-masters-master-1",
            "awst-masters-master-2",
            "awst-masters-master-3"
        ]
    );
    let sdk_ips: Vec<String> = {
        let mut ips = Vec::new();
        for master in &masters {
            let out = ec2
                .sdk()
                .describe_instances()
                .instance_ids(&master.instance.id)
                .send()
                .await
                .expect("describe");
            let instance = &out.reservations()[0].instances()[0];
            ips.push(
                instance
                    .private_ip_address()
                    .expect("private ip")
                    .to_owned(),
            );
            assert_eq!(master.instance.tag(ROLE_TAG), Some("master"));
        }
        ips
    };
    let endpoints = api_endpoints(&masters, false, 6443);
    let want: Vec<String> = sdk_ips
        .iter()
        .map(|ip| format!("https://{ip}:6443"))
        .collect();
    assert_eq!(endpoints, want);

    ec2.terminate(&masters[1].instance.id)
        .await
        .expect("terminate");
    let left: Vec<String> = ec2
        .masters()
        .await
        .expect("masters")
        .into_iter()
        .map(|m| m.name)
        .collect();
    assert_eq!(left, ["awst-masters-master-1", "awst-masters-master-3"]);
}
