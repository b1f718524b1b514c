//! What a machine of an EC2 instance type has, asked of moto (server mode,
//! on loopback) through DescribeInstanceTypes: a GPU type, a CPU type, an
//! unknown type named in the error, throttling retried, and the answer
//! cached per type.

#[allow(dead_code)] // not every answer is used here
#[path = "aws/fault_proxy.rs"]
mod fault_proxy;
#[path = "aws/moto.rs"]
mod moto;

use std::time::Duration;

use berth_provisioner::aws::{self, Backoff, Ec2};
use fault_proxy::{Answer, Fault, FaultProxy};
use moto::Moto;

/// EC2 at `url` with moto's test credentials and fast back-off.
async fn connect(url: &str) -> Ec2 {
    moto::ec2(url, "awsit").await.with_backoff(Backoff {
        first: Duration::from_millis(10),
        max: Duration::from_millis(50),
        attempts: 4,
    })
}

/// `resource=quantity` pairs, sorted.
fn text(capacity: &aws::Capacity) -> Vec<String> {
    capacity
        .iter()
        .map(|(k, v)| format!("{k}={}", v.0))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn instance_types_give_cpu_memory_gpus_and_pods_and_unknown_ones_are_named() {
    let moto = Moto::start();
    let proxy = FaultProxy::start(&moto.url).await;
    let ec2 = connect(&proxy.url).await;

    proxy.fail(Fault {
        action: "DescribeInstanceTypes",
        body_contains: "",
        times: 1,
        answer: Answer::Error("RequestLimitExceeded"),
    });
    let types = ["g5.xlarge".to_owned(), "m6i.xlarge".to_owned()];
    let got = ec2.instance_type_capacity(&types).await.expect("described");
    assert_eq!(
        text(&got["g5.xlarge"]),
        ["cpu=4", "memory=16Gi", "nvidia.com/gpu=1", "pods=110"]
    );
    assert_eq!(
        text(&got["m6i.xlarge"]),
        ["cpu=4", "memory=16Gi", "pods=110"],
        "no GPU"
    );

    let asked = |proxy: &FaultProxy| {
        proxy
            .seen()
            .iter()
            .filter(|call| call.starts_with("DescribeInstanceTypes "))
            .count()
    };
    assert_eq!(asked(&proxy), 2, "one call for both types, retried once");
    let again = ec2
        .clone()
        .instance_type_capacity(&types[..1])
        .await
        .expect("cached");
    assert_eq!(again["g5.xlarge"], got["g5.xlarge"]);
    assert_eq!(
        asked(&proxy),
        2,
        "types do not change: the answer is cached"
    );

    let unknown = ec2
        .instance_type_capacity(&["m6i.xlarge".to_owned(), "x9.notatype".to_owned()])
        .await
        .expect_err("an unknown type");
    let message = unknown.to_string();
    assert!(message.contains("x9.notatype"), "{message}");
    assert!(!unknown.is_transient(), "{unknown:?}");
}
