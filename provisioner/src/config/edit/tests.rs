use super::*;
use crate::config::parse_with;

const FILE: &str = "cluster.toml";

/// Three masters on etcd and pool `cpu` with one machine, with comments and
/// an inline machine list, as users write them.
const HA: &str = r#"# the lab cluster
name = "lab"
datastore = "etcd"

[masters]
machines = [{ host = "10.0.0.1", name = "m1" }, { host = "10.0.0.2", name = "m2" }, { host = "10.0.0.3", name = "m3" }]

# web servers
[[pools]]
name = "cpu"
machines = [
  { host = "10.0.1.1", name = "n1" }, # rack 4
  { host = "10.0.1.5", name = "n5" },
]

[[pools]]
name = "gpu"
gpu = true
machines = [{ host = "10.0.2.1" }]
"#;

fn model(text: &str) -> Cluster {
    parse_with(FILE, text, MasterRule::Existing).unwrap()
}

fn new(host: &str, name: Option<&str>) -> NewMachine {
    NewMachine {
        host: host.to_owned(),
        name: name.map(str::to_owned),
        data_dir: None,
    }
}

#[test]
fn adding_to_a_pool_keeps_comments_and_the_list_layout() {
    let cases = [
        (
            "cpu",
            new("10.0.1.2", Some("n2")),
            "machines = [\n  { host = \"10.0.1.1\", name = \"n1\" }, # rack 4\n  { host = \"10.0.1.5\", name = \"n5\" },\n  { host = \"10.0.1.2\", name = \"n2\" },\n]",
        ),
        (
            "gpu",
            new("10.0.2.2", None),
            "gpu = true\nmachines = [{ host = \"10.0.2.1\" }, { host = \"10.0.2.2\" }]\n",
        ),
    ];
    for (pool, machine, expected) in cases {
        let text = add_pool_machine(FILE, HA, &model(HA), pool, &machine)
            .unwrap()
            .unwrap();
        assert!(text.contains(expected), "{pool}:\n{text}");
        assert!(text.starts_with("# the lab cluster\n"), "{text}");
        assert!(text.contains("# web servers\n"), "{text}");
        let cluster = model(&text);
        let added = cluster.pools.iter().find(|p| p.name == pool).unwrap();
        assert_eq!(added.machines.last().unwrap().host, machine.host);
    }
}

#[test]
fn adding_to_tables_of_machines_appends_a_table() {
    let text = "name = \"lab\"\n[masters]\nmachines = [{ host = \"a\" }]\n\n[[pools]]\nname = \"cpu\"\n\n[[pools.machines]]\nhost = \"b\"\n";
    let edited = add_pool_machine(
        FILE,
        text,
        &model(text),
        "cpu",
        &NewMachine {
            host: "c".to_owned(),
            name: Some("c1".to_owned()),
            data_dir: Some("/srv/berth".to_owned()),
        },
    )
    .unwrap()
    .unwrap();
    let pool = &model(&edited).pools[0];
    let names: Vec<&str> = pool.machines.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["b", "c1"]);
    assert_eq!(
        pool.machines[1].data_dir,
        std::path::PathBuf::from("/srv/berth")
    );
}

#[test]
fn adding_what_is_there_changes_nothing_and_conflicts_are_refused() {
    let cluster = model(HA);
    let cases: [(&str, NewMachine, Result<(), &str>); 5] = [
        ("cpu", new("10.0.1.1", None), Ok(())),
        ("cpu", new("10.0.1.1", Some("n1")), Ok(())),
        (
            "cpu",
            new("10.0.1.1", Some("other")),
            Err("cluster.toml: host 10.0.1.1 is already in pool \"cpu\" as \"n1\", not \"other\""),
        ),
        (
            "web",
            new("10.0.9.9", None),
            Err("cluster.toml: no pool \"web\"; the pools are: cpu, gpu"),
        ),
        (
            "gpu",
            new("10.0.0.1", None),
            Err("host \"10.0.0.1\" is already used by masters.machines[0]"),
        ),
    ];
    for (pool, machine, expected) in cases {
        let got = add_pool_machine(FILE, HA, &cluster, pool, &machine);
        match (got, expected) {
            (Ok(None), Ok(())) => {}
            (Err(e), Err(message)) => {
                assert!(e.to_string().contains(message), "{e} vs {message}")
            }
            (got, expected) => panic!("{pool} {machine:?}: {got:?}, wanted {expected:?}"),
        }
    }
}

#[test]
fn removing_keeps_the_rest_and_its_layout() {
    let cases = [
        (
            "m1",
            "machines = [{ host = \"10.0.0.2\", name = \"m2\" }, { host = \"10.0.0.3\", name = \"m3\" }]",
        ),
        (
            "m3",
            "machines = [{ host = \"10.0.0.1\", name = \"m1\" }, { host = \"10.0.0.2\", name = \"m2\" }]",
        ),
        (
            "n1",
            "name = \"cpu\"\nmachines = [\n  { host = \"10.0.1.5\", name = \"n5\" },\n]",
        ),
    ];
    for (name, expected) in cases {
        let text = remove_machine(FILE, HA, &model(HA), name).unwrap().unwrap();
        assert!(text.contains(expected), "{name}:\n{text}");
        assert!(text.contains("# web servers\n"), "{text}");
        assert!(find(&model(&text), name).is_none(), "{name}");
    }
    assert_eq!(
        remove_machine(FILE, HA, &model(HA), "nowhere").unwrap(),
        None
    );
    let last = remove_machine(FILE, HA, &model(HA), "10.0.2.1").unwrap_err();
    assert!(
        last.to_string()
            .contains("a pool with provider \"ssh\" needs at least one machine"),
        "{last}"
    );
}

#[test]
fn removing_from_tables_of_machines_drops_the_table() {
    let text = "name = \"lab\"\n[masters]\nmachines = [{ host = \"a\" }]\n\n[[pools]]\nname = \"cpu\"\n\n[[pools.machines]]\nhost = \"b\"\n\n[[pools.machines]]\nhost = \"c\"\n";
    let edited = remove_machine(FILE, text, &model(text), "b")
        .unwrap()
        .unwrap();
    let names: Vec<String> = model(&edited).pools[0]
        .machines
        .iter()
        .map(|m| m.name.clone())
        .collect();
    assert_eq!(names, ["c"]);
}
