//! `kubectl api-resources -o wide` and `kubectl api-versions` against berth
//! equal a plain Kubernetes 1.33's (kept in `tests/api-resources/`), for every
//! group berth serves: names, short names, API versions, scope, kinds, verbs
//! and categories. berth's own `berth.dev` group and groups that custom
//! resource definitions add are left out of the comparison.

mod support;

use std::collections::{BTreeMap, BTreeSet};

use support::{Server, KUBECTL_1_33};

/// Upstream 1.33 resources berth does not serve yet, each with why; they are
/// left out of the comparison (and must not be served, or this list is stale).
/// Empty: berth serves every resource of the groups it shares with upstream.
const NOT_YET_SERVED: &[(&str, &str)] = &[];

/// Groups outside the comparison: berth's own, and metrics.k8s.io, which
/// berth serves built in where a plain cluster needs the metrics-server add-on.
const BERTH_GROUPS: &[&str] = &["berth.dev", "metrics.k8s.io"];

/// One row of `kubectl api-resources -o wide`, keyed by (API version, name).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Row {
    short_names: BTreeSet<String>,
    namespaced: String,
    kind: String,
    verbs: BTreeSet<String>,
    categories: BTreeSet<String>,
}

fn group_of(api_version: &str) -> &str {
    api_version
        .rsplit_once('/')
        .map(|(group, _)| group)
        .unwrap_or("")
}

fn set(field: &str) -> BTreeSet<String> {
    field
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Parses tabwriter-aligned output: each column starts where its header does.
fn parse_table(text: &str) -> BTreeMap<(String, String), Row> {
    let mut lines = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty());
    let header = lines.next().expect("a header line");
    let columns = [
        "NAME",
        "SHORTNAMES",
        "APIVERSION",
        "NAMESPACED",
        "KIND",
        "VERBS",
        "CATEGORIES",
    ];
    let starts: Vec<usize> = columns
        .iter()
        .map(|c| {
            header
                .find(c)
                .unwrap_or_else(|| panic!("{c} in {header:?}"))
        })
        .collect();
    let mut rows = BTreeMap::new();
    for line in lines {
        let field = |i: usize| -> String {
            let start = starts[i].min(line.len());
            let end = starts
                .get(i + 1)
                .map_or(line.len(), |e| (*e).min(line.len()));
            line[start..end].trim().to_owned()
        };
        let key = (field(2), field(0));
        let row = Row {
            short_names: set(&field(1)),
            namespaced: field(3),
            kind: field(4),
            verbs: set(&field(5)),
            categories: set(&field(6)),
        };
        assert!(rows.insert(key.clone(), row).is_none(), "{key:?} twice");
    }
    rows
}

fn reference(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/api-resources")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Differences between upstream's rows and berth's, one line each.
fn differences(
    upstream: &BTreeMap<(String, String), Row>,
    berth: &BTreeMap<(String, String), Row>,
) -> Vec<String> {
    let allowed = |key: &(String, String)| {
        NOT_YET_SERVED
            .iter()
            .any(|(version, name)| key.0 == *version && key.1 == *name)
    };
    let mut problems = Vec::new();
    for (key, want) in upstream {
        match berth.get(key) {
            None if allowed(key) => {}
            None => problems.push(format!("missing in berth: {} {}", key.0, key.1)),
            Some(_) if allowed(key) => problems.push(format!(
                "{} {} is served now: drop it from NOT_YET_SERVED",
                key.0, key.1
            )),
            Some(got) if got != want => problems.push(format!(
                "{} {}: upstream {want:?}, berth {got:?}",
                key.0, key.1
            )),
            Some(_) => {}
        }
    }
    for key in berth.keys().filter(|k| !upstream.contains_key(*k)) {
        problems.push(format!("extra in berth: {} {}", key.0, key.1));
    }
    problems
}

#[test]
fn api_resources_match_kubernetes_1_33() {
    let server = Server::start();
    let kubectl = server.kubectl(KUBECTL_1_33);
    let berth = parse_table(&kubectl.ok(&["api-resources", "-o", "wide"]));
    let upstream = parse_table(&reference("kubernetes-1.33.txt"));
    let upstream_groups: BTreeSet<&str> = upstream.keys().map(|(v, _)| group_of(v)).collect();
    // Every group berth serves is an upstream one, or berth's own.
    for (version, name) in berth.keys() {
        let group = group_of(version);
        assert!(
            upstream_groups.contains(group) || BERTH_GROUPS.contains(&group),
            "berth serves {version} {name}, a group plain Kubernetes 1.33 does not"
        );
    }
    let berth: BTreeMap<_, _> = berth
        .into_iter()
        .filter(|((version, _), _)| !BERTH_GROUPS.contains(&group_of(version)))
        .collect();
    let served: BTreeSet<&str> = berth.keys().map(|(v, _)| group_of(v)).collect();
    let upstream: BTreeMap<_, _> = upstream
        .into_iter()
        .filter(|((version, _), _)| served.contains(group_of(version)))
        .collect();
    assert!(
        upstream.len() > 50 && berth.len() > 50,
        "compared {} upstream rows with {} of berth's",
        upstream.len(),
        berth.len()
    );
    let problems = differences(&upstream, &berth);
    assert!(
        problems.is_empty(),
        "kubectl api-resources differs from Kubernetes 1.33:\n{}",
        problems.join("\n")
    );

    // One group at a time, as `--api-group` asks discovery, gives the same rows.
    for group in ["", "apps", "storage.k8s.io"] {
        let flag = format!("--api-group={group}");
        let rows = parse_table(&kubectl.ok(&["api-resources", "-o", "wide", &flag]));
        let want: BTreeMap<_, _> = berth
            .iter()
            .filter(|((version, _), _)| group_of(version) == group)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        assert_eq!(rows, want, "kubectl api-resources {flag}");
    }
}

#[test]
fn api_versions_match_kubernetes_1_33() {
    let server = Server::start();
    let kubectl = server.kubectl(KUBECTL_1_33);
    let berth: BTreeSet<String> = kubectl
        .ok(&["api-versions"])
        .lines()
        .filter(|v| !BERTH_GROUPS.contains(&group_of(v)))
        .map(str::to_owned)
        .collect();
    let upstream: BTreeSet<String> = reference("kubernetes-1.33-api-versions.txt")
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(str::to_owned)
        .collect();
    let missing: Vec<_> = upstream.difference(&berth).collect();
    let extra: Vec<_> = berth.difference(&upstream).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "kubectl api-versions differs from Kubernetes 1.33: missing {missing:?}, extra {extra:?}"
    );
}

#[test]
fn bindings_bind_the_named_pod_and_serve_only_create() {
    let server = Server::start();
    let kubectl = server.kubectl(KUBECTL_1_33);
    kubectl.ok_stdin(
        &["apply", "-f", "-"],
        "apiVersion: v1\nkind: Pod\nmetadata: {name: bound, namespace: default}\n\
         spec: {containers: [{name: c, image: busybox}]}\n",
    );
    let binding = r#"{"apiVersion": "v1", "kind": "Binding",
        "metadata": {"name": "bound", "namespace": "default"},
        "target": {"apiVersion": "v1", "kind": "Node", "name": "node-a"}}"#;
    kubectl.ok_stdin(
        &[
            "create",
            "--raw",
            "/api/v1/namespaces/default/bindings",
            "-f",
            "-",
        ],
        binding,
    );
    assert_eq!(
        kubectl.jsonpath(&["get", "pod", "bound"], "{.spec.nodeName}"),
        "node-a"
    );
    let refused = kubectl.fails(&["get", "--raw", "/api/v1/namespaces/default/bindings"]);
    assert!(
        refused.contains("MethodNotAllowed") || refused.contains("not allow"),
        "{refused}"
    );
    let refused = kubectl.fails(&["delete", "--raw", "/api/v1/namespaces"]);
    assert!(
        refused.contains("MethodNotAllowed") || refused.contains("not allow"),
        "{refused}"
    );
}

#[test]
fn differences_name_missing_extra_and_changed_rows() {
    let row = |kind: &str, verbs: &str| Row {
        short_names: set(""),
        namespaced: "true".into(),
        kind: kind.into(),
        verbs: set(verbs),
        categories: set(""),
    };
    let key = |v: &str, n: &str| (v.to_owned(), n.to_owned());
    let upstream = BTreeMap::from([
        (key("v1", "pods"), row("Pod", "get,list")),
        (key("v1", "secrets"), row("Secret", "get")),
    ]);
    let berth = BTreeMap::from([
        (key("v1", "pods"), row("Pod", "list,get,create")),
        (key("v1", "things"), row("Thing", "get")),
    ]);
    let problems = differences(&upstream, &berth);
    assert_eq!(problems.len(), 3, "{problems:#?}");
    assert!(problems[0].starts_with("v1 pods: upstream"));
    assert_eq!(problems[1], "missing in berth: v1 secrets");
    assert_eq!(problems[2], "extra in berth: v1 things");
}
