use super::*;
use crate::config::{self, Datastore, NetworkMode};

const SAVED: &str = include_str!("../../tests/data/terraform-outputs.json");

#[test]
fn saved_outputs_become_a_checked_cluster() {
    let parsed = parse("outputs.json", SAVED).expect("saved outputs parse");
    let names: Vec<&str> = parsed.node_pools.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["gpu"]);
    let text = cluster_toml(&parsed, "outputs.json");
    let cluster = config::parse("cluster.toml", &text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(cluster.name, "prod");
    assert_eq!(cluster.datastore, Datastore::Etcd);
    assert_eq!(cluster.network_mode, NetworkMode::Vxlan);
    assert_eq!(
        cluster.api_endpoint.as_deref(),
        Some("prod-api-0123456789abcdef.elb.eu-west-1.amazonaws.com")
    );
    let masters: Vec<(&str, &str)> = cluster
        .masters
        .iter()
        .map(|m| (m.host.as_str(), m.name.as_str()))
        .collect();
    assert_eq!(
        masters,
        [
            ("10.0.10.11", "prod-master-1"),
            ("10.0.11.12", "prod-master-2"),
            ("10.0.12.13", "prod-master-3"),
        ]
    );
    let ssh = &cluster.masters[0].ssh;
    assert_eq!(ssh.user, "admin");
    assert_eq!(
        ssh.auth,
        config::Auth::KeyFile("~/.ssh/prod_ed25519".into())
    );
    assert_eq!(ssh.host_key_policy, config::HostKeyPolicy::AcceptNew);
    assert_eq!(
        ssh.jump_host.as_ref().map(|j| j.host.as_str()),
        Some("bastion.prod.example.com")
    );
    assert!(
        text.contains("[aws]\nregion = \"eu-west-1\"\nbinary_url = \"https://downloads.example.com/berth/v0.1.0/berth-linux-amd64\"\n"),
        "{text}"
    );
    // node_pools.gpu: an aws pool with the module's launch settings.
    let [pool] = cluster.pools.as_slice() else {
        panic!("{text}")
    };
    assert_eq!(pool.name, "gpu");
    assert_eq!(pool.provider, config::Provider::Aws);
    let taints: Vec<String> = pool.taints.iter().map(ToString::to_string).collect();
    assert_eq!(taints, ["nvidia.com/gpu=present:NoSchedule"]);
    let aws = pool.aws.as_ref().expect("aws settings");
    let template = &aws.template;
    assert_eq!(template.ami, "ami-0123456789abcdef0");
    assert_eq!(template.instance_types, ["g5.xlarge", "g5.2xlarge"]);
    assert_eq!(template.subnet_ids.len(), 3);
    assert_eq!(template.security_group_ids, ["sg-0nodes0000000001"]);
    assert_eq!(
        template.iam_instance_profile.as_deref(),
        Some("prod-pool-gpu")
    );
    assert_eq!(template.key_name.as_deref(), Some("prod"));
    assert_eq!(template.root_volume.as_ref().map(|v| v.size_gib), Some(100));
    assert!(!template.wants_spot());
    assert_eq!(
        aws.size,
        config::PoolSize::Autoscaled {
            min: None,
            max: None
        }
    );
}

#[test]
fn spot_node_pools_ask_for_spot() {
    let text = outputs(
        r#""region": {"value": "us-east-1"},
           "berth_binary_url": {"value": "https://example.com/berth"},
           "node_pools": {"value": {"cpu": {"ami": "ami-1", "instance_types": ["m7i.large"],
             "subnet_ids": ["subnet-1"], "security_group_ids": [], "instance_profile": null,
             "key_name": null, "root_volume_size": 50, "gpu": false, "spot": true, "tags": {}}}}"#,
    );
    let parsed = parse("o.json", &text).expect("parses");
    let toml = cluster_toml(&parsed, "o.json");
    let cluster = config::parse("cluster.toml", &toml).unwrap_or_else(|e| panic!("{e}\n{toml}"));
    let pool = &cluster.pools[0];
    assert!(pool.taints.is_empty(), "not a GPU pool");
    let template = &pool.aws.as_ref().expect("aws").template;
    assert!(template.wants_spot(), "{toml}");
    assert_eq!(template.iam_instance_profile, None);
    // Without a region an aws pool has no [aws] block, and check says so.
    let no_region = parse(
        "o.json",
        &text.replace(r#""region": {"value": "us-east-1"},"#, ""),
    )
    .expect("parses");
    let toml = cluster_toml(&no_region, "o.json");
    let error = config::parse("cluster.toml", &toml)
        .expect_err(&toml)
        .to_string();
    assert!(error.contains("needs an [aws] block"), "{error}");
}

/// A minimal outputs document with `extra` outputs added (raw JSON members).
fn outputs(extra: &str) -> String {
    let mut text = String::from(
        r#"{"cluster_name": {"value": "small", "type": "string", "sensitive": false},
            "masters": {"value": [{"host": "192.0.2.10"}], "type": "dynamic"}"#,
    );
    if !extra.is_empty() {
        text.push_str(", ");
        text.push_str(extra);
    }
    text.push('}');
    text
}

#[test]
fn defaults_follow_the_master_count_and_ssh_pools_join() {
    let text = outputs(
        r#""ssh_pools": {"value": {"gpu": {"machines": [{"host": "192.0.2.20", "name": "g-1"}],
            "labels": {"example.com/accelerator": "a100"}, "taints": ["dedicated=ml:NoSchedule"],
            "gpu": true}}},
           "api_endpoint": {"value": null},
           "data_dir": {"value": "/data/berth"},
           "ssh_known_hosts": {"value": "/etc/berth/known_hosts"}"#,
    );
    let parsed = parse("o.json", &text).expect("parses");
    let toml = cluster_toml(&parsed, "o.json");
    let cluster = config::parse("cluster.toml", &toml).unwrap_or_else(|e| panic!("{e}\n{toml}"));
    assert_eq!(cluster.datastore, Datastore::Sqlite);
    assert_eq!(cluster.network_mode, NetworkMode::Vxlan);
    assert_eq!(cluster.api_endpoint, None);
    assert_eq!(cluster.masters[0].ssh.user, "root");
    assert_eq!(cluster.masters[0].data_dir.to_str(), Some("/data/berth"));
    assert_eq!(
        cluster.masters[0].ssh.known_hosts.to_str(),
        Some("/etc/berth/known_hosts")
    );
    let pool = &cluster.pools[0];
    assert_eq!(pool.name, "gpu");
    assert_eq!(pool.machines[0].name, "g-1");
    assert_eq!(
        pool.labels
            .get("example.com/accelerator")
            .map(String::as_str),
        Some("a100")
    );
    assert_eq!(pool.taints.len(), 2, "the pool's taint and gpu = true's");
}

#[test]
fn problems_name_the_output() {
    let cases: [(String, &str); 11] = [
        (
            "[]".to_owned(),
            "o.json: not the JSON object `terraform output -json` prints: the top level is a list",
        ),
        ("{".to_owned(), "o.json: not the JSON object"),
        (
            r#"{"masters": {"value": [{"host": "h"}]}}"#.to_owned(),
            "o.json: output \"cluster_name\" is missing",
        ),
        (
            r#"{"cluster_name": {"value": "c"}}"#.to_owned(),
            "o.json: output \"masters\" is missing",
        ),
        (
            r#"{"cluster_name": {"value": 7}, "masters": {"value": []}}"#.to_owned(),
            "o.json: output \"cluster_name\": expected a string, found a number",
        ),
        (
            r#"{"cluster_name": "c", "masters": {"value": []}}"#.to_owned(),
            "o.json: output \"cluster_name\": expected an object with \"value\"",
        ),
        (
            outputs("").replace(r#"[{"host": "192.0.2.10"}]"#, r#"[{"name": "m"}]"#),
            "o.json: output \"masters[0].host\" is missing",
        ),
        (
            outputs(r#""ssh_user": {"value": ["admin"]}"#),
            "o.json: output \"ssh_user\": expected a string, found a list",
        ),
        (
            outputs(r#""ssh_pools": {"value": {"cpu": {"machines": [{"host": 1}]}}}"#),
            "o.json: output \"ssh_pools.cpu.machines[0].host\": expected a string, found a number",
        ),
        (
            outputs(r#""node_pools": {"value": {"gpu": {"instance_types": ["g5.xlarge"]}}}"#),
            "o.json: output \"node_pools.gpu.ami\" is missing",
        ),
        (
            outputs(r#""node_pools": {"value": {"gpu": {"ami": "a", "root_volume_size": "big"}}}"#),
            "o.json: output \"node_pools.gpu.root_volume_size\": expected a whole number of GiB, found a string",
        ),
    ];
    for (text, want) in cases {
        let error = parse("o.json", &text).expect_err(&text).to_string();
        assert!(
            error.starts_with(want),
            "{text}: got {error:?}, want {want:?}"
        );
    }
}

#[test]
fn values_are_quoted_as_toml() {
    let text = outputs(r#""ssh_key_file": {"value": "C:\\keys\\\"odd\" key"}"#);
    let parsed = parse("o.json", &text).expect("parses");
    let toml = cluster_toml(&parsed, "o.json");
    let cluster = config::parse("cluster.toml", &toml).unwrap_or_else(|e| panic!("{e}\n{toml}"));
    assert_eq!(
        cluster.masters[0].ssh.auth,
        config::Auth::KeyFile("C:\\keys\\\"odd\" key".into())
    );
}
