//! Good files become the expected model; each kind of bad file gives its exact message.

use std::path::PathBuf;

use super::*;

const MASTER: &str = "[masters]\nmachines = [{ host = \"10.0.0.1\" }]\n";

fn single(extra: &str) -> String {
    format!("name = \"lab\"\n{extra}{MASTER}")
}

fn error(text: &str) -> String {
    parse("cluster.toml", text).unwrap_err().to_string()
}

/// Every file of `cases` is refused with exactly its message.
fn assert_errors(cases: &[(String, &str)]) {
    let wrong: Vec<String> = cases
        .iter()
        .filter(|(text, want)| error(text) != *want)
        .map(|(text, want)| format!("{text}\n  want: {want}\n  got:  {}\n", error(text)))
        .collect();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn a_minimal_file_takes_every_default() {
    let cluster = parse("cluster.toml", &single("")).unwrap();
    assert_eq!(cluster.name, "lab");
    assert_eq!(cluster.binary, Binary::SelfExe);
    assert_eq!(cluster.service_cidr.to_string(), "10.43.0.0/16");
    assert_eq!(cluster.cluster_cidr.to_string(), "10.42.0.0/16");
    assert_eq!(cluster.network_mode, NetworkMode::Routed);
    assert_eq!(cluster.datastore, Datastore::Sqlite);
    assert!(cluster.pools.is_empty());
    let master = &cluster.masters[0];
    assert_eq!(
        (master.host.as_str(), master.name.as_str()),
        ("10.0.0.1", "10.0.0.1")
    );
    assert_eq!(
        master.ssh,
        Ssh {
            user: "root".into(),
            port: 22,
            auth: Auth::Agent,
            known_hosts: PathBuf::from("~/.ssh/known_hosts"),
            host_key_policy: HostKeyPolicy::Strict,
            jump_host: None,
        }
    );
}

#[test]
fn machines_override_the_ssh_defaults() {
    let text = String::from(
        "name = \"lab\"\n[ssh]\nuser = \"ops\"\nport = 2200\nkey_file = \"/k\"\njump_host = \"b\"\n\
         [masters]\nmachines = [\n  { host = \"m1\" },\n  { host = \"M2\", user = \"x\", port = 22, agent = true, \
         host_key_policy = \"accept-new\", known_hosts = \"/kh\", jump_host = \"y@c:7\" },\n  { host = \"m3\" },\n]\n\
         datastore = \"etcd\"\n"
    );
    // `datastore` after `[masters]` belongs to that table: refused as unknown.
    assert!(
        error(&text).contains("unknown field `datastore`"),
        "{}",
        error(&text)
    );
    let text = text
        .replace("datastore = \"etcd\"\n", "")
        .replace("name = \"lab\"\n", "name = \"lab\"\ndatastore = \"etcd\"\n");
    let cluster = parse("cluster.toml", &text).unwrap();
    let [first, second, _] = cluster.masters.as_slice() else {
        panic!()
    };
    assert_eq!((first.ssh.user.as_str(), first.ssh.port), ("ops", 2200));
    assert_eq!(first.ssh.auth, Auth::KeyFile("/k".into()));
    assert_eq!(first.ssh.jump_host.as_ref().unwrap().to_string(), "b:22");
    assert_eq!((second.host.as_str(), second.name.as_str()), ("M2", "m2"));
    assert_eq!((second.ssh.user.as_str(), second.ssh.port), ("x", 22));
    assert_eq!(second.ssh.auth, Auth::Agent);
    assert_eq!(second.ssh.host_key_policy, HostKeyPolicy::AcceptNew);
    assert_eq!(second.ssh.known_hosts, PathBuf::from("/kh"));
    assert_eq!(second.ssh.jump_host.as_ref().unwrap().to_string(), "y@c:7");
}

#[test]
fn pools_get_their_label_and_gpu_taint() {
    let text = format!(
        "name = \"lab\"\n{MASTER}[[pools]]\nname = \"gpu\"\ngpu = true\nmachines = [{{ host = \"10.0.2.1\" }}]\n\
         labels = {{ \"example.com/tier\" = \"ml\" }}\ntaints = [\"dedicated=ml:NoExecute\"]\n\
         max_pods = 64\nreserved_cpu = \"500m\"\nreserved_memory = \"1Gi\"\n"
    );
    let cluster = parse("cluster.toml", &text).unwrap();
    let pool = &cluster.pools[0];
    assert_eq!(pool.provider, Provider::Ssh);
    assert_eq!(
        pool.labels.get("berth.dev/pool").map(String::as_str),
        Some("gpu")
    );
    assert_eq!(
        pool.labels.get("example.com/tier").map(String::as_str),
        Some("ml")
    );
    let taints: Vec<String> = pool.taints.iter().map(ToString::to_string).collect();
    assert_eq!(
        taints,
        [
            "dedicated=ml:NoExecute",
            "nvidia.com/gpu=present:NoSchedule"
        ]
    );
    assert_eq!(pool.max_pods, Some(64));
    assert_eq!(pool.reserved_cpu.unwrap().milli_value(), 500);
    assert_eq!(pool.reserved_memory.unwrap().value(), 1 << 30);
    let roles: Vec<bool> = cluster
        .machines()
        .map(|(role, _)| role == Role::Master)
        .collect();
    assert_eq!(roles, [true, false]);
}

#[test]
fn aws_pools_become_node_pool_settings() {
    let text = format!(
        "name = \"lab\"\n{MASTER}[aws]\nregion = \"eu-west-1\"\nbinary_url = \"https://example.com/berth\"\n[[pools]]\nname = \"cpu\"\nprovider = \"aws\"\n\
         instance_types = [\"m7i.large\", \"m6i.large\"]\nami = \"ami-1\"\nsubnet_ids = [\"subnet-a\"]\n\
         security_group_ids = [\"sg-1\"]\nkey_name = \"ops\"\ncapacity_type = \"on-demand\"\n\
         root_volume_gib = 40\nroot_volume_type = \"gp3\"\niam_instance_profile = \"nodes\"\n\
         user_data = \"echo hi\"\nreplicas = 2\ncapacity = {{ cpu = \"2\", memory = \"8Gi\" }}\n\
         limits = {{ cpu = \"64\" }}\nexpire_after = \"Never\"\ntaints = [\"a=b:NoSchedule\"]\n"
    );
    let cluster = parse("cluster.toml", &text).unwrap();
    let pool = &cluster.pools[0];
    assert_eq!(pool.provider, Provider::Aws);
    assert!(pool.machines.is_empty());
    assert_eq!(
        cluster.machines().count(),
        1,
        "an aws pool has no machines to join"
    );
    let aws = pool.aws.as_ref().unwrap();
    assert_eq!(aws.size, PoolSize::Fixed(2));
    let template = &aws.template;
    assert_eq!(template.instance_types, ["m7i.large", "m6i.large"]);
    assert_eq!(
        (
            template.subnet_ids.as_slice(),
            template.security_group_ids.as_slice()
        ),
        (&["subnet-a".to_owned()][..], &["sg-1".to_owned()][..])
    );
    assert_eq!(template.key_name.as_deref(), Some("ops"));
    assert_eq!(template.capacity_type.as_deref(), Some("on-demand"));
    let volume = template.root_volume.as_ref().unwrap();
    assert_eq!(
        (volume.size_gib, volume.type_.as_deref()),
        (40, Some("gp3"))
    );
    assert_eq!(template.iam_instance_profile.as_deref(), Some("nodes"));
    assert_eq!(template.user_data.as_deref(), Some("echo hi"));
    assert_eq!(aws.capacity.get("memory").map(String::as_str), Some("8Gi"));
    assert_eq!(aws.limits.get("cpu").map(String::as_str), Some("64"));
    assert_eq!(aws.expire_after.as_deref(), Some("Never"));
    assert_eq!(pool.taints.len(), 1);
    let spot = text
        .replace("capacity_type = \"on-demand\"", "spot = false")
        .replace("replicas = 2\n", "");
    let cluster = parse("cluster.toml", &spot).unwrap();
    let aws = cluster.pools[0].aws.as_ref().unwrap();
    assert_eq!(
        aws.template.capacity_type, None,
        "spot = false is EC2's default, on-demand"
    );
    assert_eq!(
        aws.size,
        PoolSize::Autoscaled {
            min: None,
            max: None
        }
    );
    assert!(summary(&cluster).contains("aws"), "{}", summary(&cluster));
}

#[test]
fn every_example_file_parses() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            load(&path).unwrap_or_else(|e| panic!("{e}"));
            seen += 1;
        }
    }
    assert!(seen >= 2, "examples/ holds {seen} cluster files");
    let ha = load(&dir.join("cluster-ha.toml")).unwrap();
    assert_eq!(
        (ha.datastore, ha.masters.len(), ha.pools.len()),
        (Datastore::Etcd, 3, 2)
    );
    assert!(ha.pools[1].gpu);
}

#[test]
fn bad_files_name_line_column_field_and_what_is_allowed() {
    let pool = |body: &str| {
        format!("name = \"lab\"\n{MASTER}[[pools]]\nname = \"cpu\"\nmachines = [{{ host = \"10.0.1.1\" }}]\n{body}")
    };
    let aws = |body: &str| {
        format!("name = \"lab\"\n{MASTER}[aws]\nregion = \"eu-west-1\"\nbinary_url = \"https://example.com/berth\"\n[[pools]]\nname = \"gpu\"\nprovider = \"aws\"\ninstance_types = [\"g5.xlarge\"]\nami = \"ami-1\"\n{body}")
    };
    let cases: Vec<(String, &str)> = vec![
        ("name = \n".into(), "cluster.toml:1:8: string values must be quoted, expected literal string"),
        (single("colour = \"red\"\n"), "cluster.toml:2:1: colour: unknown field `colour`, expected one of `name`, `binary`, `service_cidr`, `cluster_cidr`, `network_mode`, `datastore`, `api_endpoint`, `data_dir`, `insecure_registries`, `ssh`, `masters`, `pools`, `aws`"),
        (MASTER.into(), "cluster.toml:1:1: missing field `name`"),
        (single("network_mode = \"flat\"\n"), "cluster.toml:2:16: network_mode: unknown variant `flat`, expected `routed` or `vxlan`"),
        (single("datastore = \"etcd\"\n"), "cluster.toml:4:12: masters.machines: datastore \"etcd\" needs 3 or 5 masters (an odd number, so a majority survives a failure), found 1"),
        ("name = \"lab\"\n[masters]\nmachines = [{ host = \"a\" }, { host = \"b\" }, { host = \"c\" }]\n".into(), "cluster.toml:3:12: masters.machines: datastore \"sqlite\" (the default) needs exactly 1 master, found 3; for high availability use datastore = \"etcd\" with 3 or 5 masters"),
        (single("").replace("name = \"lab\"", "name = \"Lab\""), "cluster.toml:1:8: name: a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"),
        (single("service_cidr = \"10.43.0.1/16\"\n"), "cluster.toml:2:16: service_cidr: must not have bits set beyond the prefix length"),
        (single("service_cidr = \"10.0.0.0/8\"\n"), "cluster.toml:2:16: service_cidr: specified service_cidr is too large; for 32-bit addresses, the mask must be >= 12"),
        (single("cluster_cidr = \"10.43.128.0/17\"\n"), "cluster.toml:2:16: cluster_cidr: cluster_cidr 10.43.128.0/17 overlaps service_cidr 10.43.0.0/16; pods and Services need separate ranges"),
        (single("cluster_cidr = \"10.42.0.0/25\"\n"), "cluster.toml:2:16: cluster_cidr: 10.42.0.0/25 holds 0 node subnet(s) of /24 but the cluster has 1 machines; use a larger range (e.g. /16)"),
        (single("api_endpoint = \"api_1.example\"\n"), "cluster.toml:2:16: api_endpoint: \"api_1.example\" is not HOST or HOST:PORT (a DNS name with one address per master, or a load balancer's address)"),
        (single("api_endpoint = \"api.example:0\"\n"), "cluster.toml:2:16: api_endpoint: \"api.example:0\" is not HOST or HOST:PORT (a DNS name with one address per master, or a load balancer's address)"),
        (single("binary = \"\"\n"), "cluster.toml:2:10: binary: must be \"self\" (this berth executable) or the path of a berth executable"),
        (single("[ssh]\nport = 0\n"), "cluster.toml:3:8: ssh.port: must be a port between 1 and 65535"),
        (single("[ssh]\nhost_key_policy = \"yes\"\n"), "cluster.toml:3:19: ssh.host_key_policy: unknown variant `yes`, expected `strict` or `accept-new`"),
        (single("[ssh]\nkey_file = \"/k\"\nagent = true\n"), "cluster.toml:4:9: ssh.agent: set key_file or agent = true, not both"),
        (single("[ssh]\nagent = false\n"), "cluster.toml:3:9: ssh.agent: agent = false needs a key_file (here or in [ssh]); allowed: key_file = \"PATH\" or agent = true"),
        (single("[ssh]\njump_host = \"a b\"\n"), "cluster.toml:3:13: ssh.jump_host: must be [user@]host[:port], e.g. admin@bastion.example.com:22"),
        (single("[ssh]\nuser = \"a b\"\n"), "cluster.toml:3:8: ssh.user: must be a login name without spaces, '@' or ':'"),
        ("name = \"lab\"\n[masters]\nmachines = [{ host = \"10.0.0.1\", port = 70000 }]\n".into(), "cluster.toml:3:41: masters.machines[0].port: must be a port between 1 and 65535"),
        ("name = \"lab\"\n[masters]\nmachines = [{ host = \"a_b\" }]\n".into(), "cluster.toml:3:22: masters.machines[0].host: must be an IP address or a DNS name: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"),
        ("name = \"lab\"\n[masters]\nmachines = [{ host = \"fd00::1\" }]\n".into(), "cluster.toml:3:22: masters.machines[0].host: \"fd00::1\" cannot be a Node name (a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')); set name = \"NODE-NAME\" for this machine"),
        ("name = \"lab\"\n[masters]\nmachines = [{ host = \"10.0.0.1\", ip = \"x\" }]\n".into(), "cluster.toml:3:34: masters.machines[0].ip: unknown field `ip`, expected one of `host`, `name`, `data_dir`, `user`, `port`, `key_file`, `agent`, `known_hosts`, `host_key_policy`, `jump_host`"),
        ("name = \"lab\"\n[masters]\nmachines = [\"10.0.0.1\"]\n".into(), "cluster.toml:3:13: masters.machines[0]: invalid type: string \"10.0.0.1\", expected a machine table like { host = \"10.0.0.1\" }"),
        ("name = \"lab\"\nssh = 1\n".into(), "cluster.toml:2:7: ssh: invalid type: integer `1`, expected a table ([ssh])"),
        (pool("provider = \"aws\"\n"), "cluster.toml:6:13: pools[0].machines: a pool with provider \"aws\" lists no machines: the NodePool controller launches its instances; remove machines"),
        (format!("name = \"lab\"\n{MASTER}[[pools]]\nname = \"gpu\"\nprovider = \"aws\"\ninstance_types = [\"a\"]\nami = \"b\"\n"), "cluster.toml:6:12: pools[0].provider: a pool with provider \"aws\" needs an [aws] block (region, endpoint_url) saying where its EC2 calls go"),
        (pool("ami = \"ami-1\"\n"), "cluster.toml:7:7: pools[0].ami: is only for provider \"aws\" pools; set provider = \"aws\" or remove it"),
        (aws("max_pods = 4\n"), "cluster.toml:12:12: pools[0].max_pods: is only for provider \"ssh\" pools (a NodePool has no such setting)"),
        (aws("spot = true\ncapacity_type = \"spot\"\n"), "cluster.toml:13:17: pools[0].capacity_type: set spot or capacity_type, not both"),
        (aws("capacity_type = \"reserved\"\n"), "cluster.toml:12:17: pools[0].capacity_type: \"reserved\" is not a capacity type; allowed: \"on-demand\", \"spot\""),
        (aws("root_volume_type = \"gp3\"\n"), "cluster.toml:12:20: pools[0].root_volume_type: needs root_volume_gib (the volume's size)"),
        (aws("root_volume_gib = 0\n"), "cluster.toml:12:19: pools[0].root_volume_gib: must be a size in GiB greater than 0"),
        (aws("root_volume_gib = 10\nroot_volume_type = \"ssd\"\n"), "cluster.toml:13:20: pools[0].root_volume_type: \"ssd\" is not an EBS volume type; allowed: \"gp2\", \"gp3\", \"io1\", \"io2\", \"st1\", \"sc1\", \"standard\""),
        (aws("replicas = 2\nmax_replicas = 3\n"), "cluster.toml:13:16: pools[0].max_replicas: set replicas (a fixed size) or min_replicas/max_replicas (autoscaled), not both"),
        (aws("min_replicas = 3\nmax_replicas = 1\n"), "cluster.toml:13:16: pools[0].max_replicas: must be greater than or equal to min_replicas (3)"),
        (aws("replicas = -1\n"), "cluster.toml:12:12: pools[0].replicas: must be greater than or equal to 0"),
        (aws("limits = { disk = \"1\" }\n"), "cluster.toml:12:12: pools[0].limits.disk: unknown resource; allowed: \"cpu\", \"memory\", \"gpu\""),
        (aws("capacity = { cpu = \"lots\" }\n"), "cluster.toml:12:20: pools[0].capacity.cpu: quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"),
        (aws("expire_after = \"soon\"\n"), "cluster.toml:12:16: pools[0].expire_after: \"soon\" must be a duration such as 30s or 720h, or Never"),
        (aws("subnet_ids = [\"s-1\", \"s-1\"]\n"), "cluster.toml:12:22: pools[0].subnet_ids[1]: \"s-1\" repeats pools[0].subnet_ids[0]"),
        (aws("").replace("ami = \"ami-1\"\n", ""), "cluster.toml:7:1: pools[0].ami: a pool with provider \"aws\" needs the AMI its instances boot: ami = \"ami-…\""),
        (aws("").replace("instance_types = [\"g5.xlarge\"]", "instance_types = []"), "cluster.toml:10:18: pools[0].instance_types: a pool with provider \"aws\" needs instance types in order of preference: instance_types = [\"m7i.xlarge\"]"),
        (pool("provider = \"gcp\"\n"), "cluster.toml:7:12: pools[0].provider: unknown variant `gcp`, expected `ssh` or `aws`"),
        (pool("taints = [\"a=b:NoSchedule\", \"c=d:Sometimes\"]\n"), "cluster.toml:7:29: pools[0].taints[1]: invalid taint effect: Sometimes, unsupported taint effect (allowed: NoSchedule, PreferNoSchedule, NoExecute)"),
        (pool("taints = [\"a=b:NoSchedule\", \"a=c:NoSchedule\"]\n"), "cluster.toml:7:29: pools[0].taints[1]: taints must be unique by key and effect pair: a=c:NoSchedule repeats taints[0]"),
        (pool("labels = { \"a/b/c\" = \"x\" }\n"), "cluster.toml:7:12: pools[0].labels.\"a/b/c\": a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"),
        (pool("labels = { tier = \"-x\" }\n"), "cluster.toml:7:19: pools[0].labels.tier: a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"),
        (pool("labels = { \"berth.dev/pool\" = \"gpu\" }\n"), "cluster.toml:7:12: pools[0].labels.\"berth.dev/pool\": berth.dev/pool is set by berth to the pool's name (\"cpu\"); remove it or set it to \"cpu\""),
        (pool("labels = { \"node-role.kubernetes.io/gpu\" = \"\" }\n"), "cluster.toml:7:12: pools[0].labels.\"node-role.kubernetes.io/gpu\": unknown 'kubernetes.io' or 'k8s.io' label: node labels in the 'kubernetes.io' namespace must begin with an allowed prefix (kubelet.kubernetes.io, node.kubernetes.io) or be in the specifically allowed set (beta.kubernetes.io/arch, beta.kubernetes.io/instance-type, beta.kubernetes.io/os, failure-domain.beta.kubernetes.io/region, failure-domain.beta.kubernetes.io/zone, kubernetes.io/arch, kubernetes.io/hostname, kubernetes.io/os, node.kubernetes.io/instance-type, topology.kubernetes.io/region, topology.kubernetes.io/zone)"),
        (pool("max_pods = 0\n"), "cluster.toml:7:12: pools[0].max_pods: must be between 1 and 1024"),
        (pool("max_pods = \"many\"\n"), "cluster.toml:7:12: pools[0].max_pods: invalid type: string \"many\", expected i64"),
        (pool("reserved_cpu = \"lots\"\n"), "cluster.toml:7:16: pools[0].reserved_cpu: quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"),
        (pool("reserved_memory = \"-1Gi\"\n"), "cluster.toml:7:19: pools[0].reserved_memory: must be greater than or equal to 0"),
        (format!("{}[[pools]]\nname = \"cpu\"\nmachines = [{{ host = \"10.0.1.2\" }}]\n", pool("")), "cluster.toml:8:8: pools[1].name: pool name \"cpu\" is already used by pools[0]; pool names must be unique"),
        (format!("{}[[pools]]\nname = \"b\"\nmachines = [{{ host = \"10.0.0.1\" }}]\n", pool("")), "cluster.toml:9:22: pools[1].machines[0].host: host \"10.0.0.1\" is already used by masters.machines[0]; each machine may appear once"),
        (format!("{}[[pools]]\nname = \"b\"\nmachines = [{{ host = \"10.0.0.9\", name = \"10.0.1.1\" }}]\n", pool("")), "cluster.toml:9:41: pools[1].machines[0].name: Node name \"10.0.1.1\" is already used by pools[0].machines[0]; set a unique name"),
        (format!("{}[[pools]]\nname = \"b\"\n", pool("")), "cluster.toml:7:1: pools[1].machines: a pool with provider \"ssh\" needs at least one machine: machines = [{ host = \"...\" }]"),
    ];
    assert_errors(&cases);
}

const AWS: &str = "[aws]\nregion = \"us-east-1\"\nbinary_url = \"https://example.com/berth\"\n";

fn aws_masters(extra: &str, count: u32) -> String {
    format!(
        "name = \"lab\"\n{extra}[ssh]\nkey_file = \"/k\"\n{AWS}[aws.masters]\ncount = {count}\n\
         instance_types = [\"m7i.large\"]\nami = \"ami-1\"\n"
    )
}

#[test]
fn aws_masters_take_the_place_of_listed_masters() {
    let one = parse("cluster.toml", &aws_masters("", 1)).expect("1 master on sqlite");
    assert!(one.masters.is_empty(), "launched, not listed");
    let aws = one.aws.as_ref().expect("[aws]");
    assert_eq!(aws.ssh.auth, Auth::KeyFile("/k".into()));
    assert_eq!(aws.data_dir, PathBuf::from(DEFAULT_DATA_DIR));
    let master = aws.machine("lab-master-1", "10.0.0.4");
    assert_eq!(
        (master.host.as_str(), master.name.as_str()),
        ("10.0.0.4", "lab-master-1")
    );
    for count in [3, 5] {
        let ha = parse(
            "cluster.toml",
            &aws_masters("datastore = \"etcd\"\n", count),
        );
        assert!(ha.is_ok(), "{count} masters on etcd: {ha:?}");
    }
    let listed = parse("cluster.toml", &single(AWS)).expect("[aws] beside listed masters");
    assert_eq!(listed.masters.len(), 1);
    // A Terraform-made cluster without pools names only its region: berth
    // launches nothing, so no binary_url is needed and no provider runs.
    let region_only = parse("cluster.toml", &single("[aws]\nregion = \"eu-west-1\"\n"))
        .expect("[aws] with only a region");
    let aws = region_only.aws.as_ref().expect("[aws]");
    assert!(!aws.launches_nodes());
    assert!(listed.aws.as_ref().expect("[aws]").launches_nodes());
}

#[test]
fn bad_aws_blocks_name_line_column_field_and_what_is_allowed() {
    let cases: Vec<(String, &str)> = vec![
        (aws_masters("", 3), "cluster.toml:8:9: aws.masters.count: datastore \"sqlite\" (the default) needs exactly 1 master, found 3; for high availability use datastore = \"etcd\" with 3 or 5 masters"),
        (aws_masters("datastore = \"etcd\"\n", 1), "cluster.toml:9:9: aws.masters.count: datastore \"etcd\" needs 3 or 5 masters (an odd number, so a majority survives a failure), found 1"),
        (aws_masters("datastore = \"etcd\"\n", 4), "cluster.toml:9:9: aws.masters.count: datastore \"etcd\" needs 3 or 5 masters (an odd number, so a majority survives a failure), found 4"),
        (format!("{}{MASTER}", aws_masters("", 1)), "cluster.toml:12:12: masters.machines: cannot be used with [aws.masters], which launches the masters on EC2; keep one of the two"),
        ("name = \"lab\"\n".into(), "cluster.toml:1:1: masters.machines: missing: list the masters under [masters] machines, or launch them on EC2 with [aws.masters]"),
        (aws_masters("", 1).replace("ami = ", "zone = \"a\"\nami = "), "cluster.toml:10:1: aws.masters.zone: unknown field `zone`, expected one of `count`, `instance_types`, `ami`, `subnet_ids`, `security_group_ids`, `key_name`, `root_volume_gib`, `root_volume_type`, `iam_instance_profile`, `public`"),
        (aws_masters("", 1).replace("region = ", "regoin = "), "cluster.toml:5:1: aws.regoin: unknown field `regoin`, expected one of `region`, `endpoint_url`, `binary_url`, `masters`"),
        (aws_masters("", 1).replace("binary_url = \"https://example.com/berth\"\n", ""), "cluster.toml:4:1: aws.binary_url: missing: berth launches instances here (aws pools or [aws.masters]), and they download the berth executable from this URL (the masters' `berth server --aws-binary-url`)"),
        (aws_masters("", 1).replace("https://example.com/berth", "/srv/berth"), "cluster.toml:6:14: aws.binary_url: \"/srv/berth\" is not an http:// or https:// URL"),
    ];
    assert_errors(&cases);
}
