//! Discovery documents (`/version`, `/api`, `/apis`, group versions), built
//! from the catalogue so kubectl and client libraries find every served kind.

use serde_json::{json, Value};

use super::catalog::{Catalog, GroupVersions, ResourceInfo};

/// The Kubernetes version berth reports; kubectl warns beyond one minor of skew.
pub const KUBERNETES_MINOR: &str = "33";

/// `/version`.
pub fn version() -> Value {
    json!({
        "major": "1",
        "minor": KUBERNETES_MINOR,
        "gitVersion": format!("v1.{KUBERNETES_MINOR}.0+berth"),
        "gitCommit": env!("CARGO_PKG_VERSION"),
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.24.0",
        "compiler": "rustc",
        "platform": format!("{}/{}", std::env::consts::OS, go_arch()),
    })
}

fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// `/api`: the core group's versions.
pub fn core_versions() -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": ""}],
    })
}

fn group_entry(group: &GroupVersions) -> Value {
    let versions: Vec<Value> = group
        .versions
        .iter()
        .map(|version| json!({"groupVersion": format!("{}/{version}", group.name), "version": version}))
        .collect();
    json!({"name": group.name, "versions": versions, "preferredVersion": versions[0]})
}

/// `/apis`: every non-core group.
pub fn groups(catalog: &Catalog) -> Value {
    let groups: Vec<Value> = catalog.groups().iter().map(group_entry).collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `/apis/GROUP`, or None when the group is not served.
pub fn group(catalog: &Catalog, name: &str) -> Option<Value> {
    let group = catalog.groups().into_iter().find(|g| g.name == name)?;
    let mut entry = group_entry(&group);
    entry["kind"] = json!("APIGroup");
    entry["apiVersion"] = json!("v1");
    Some(entry)
}

/// The kind (group, version, kind) and verbs of an action or streaming subresource.
fn action_subresource(
    sub: &str,
) -> (
    (&'static str, &'static str, &'static str),
    &'static [&'static str],
) {
    match sub {
        "binding" => (("", "v1", "Binding"), &["create"]),
        "eviction" => (("policy", "v1", "Eviction"), &["create"]),
        "log" => (("", "v1", "Pod"), &["get"]),
        "exec" => (("", "v1", "PodExecOptions"), &["create", "get"]),
        "attach" => (("", "v1", "PodAttachOptions"), &["create", "get"]),
        "portforward" => (("", "v1", "PodPortForwardOptions"), &["create", "get"]),
        "proxy" => (("", "v1", "NodeProxyOptions"), &["get"]),
        _ => (("", "v1", "Namespace"), &["update"]),
    }
}

fn resource_entries(r: &ResourceInfo) -> Vec<Value> {
    let mut entries = vec![json!({
        "name": r.plural,
        "singularName": r.singular,
        "namespaced": r.namespaced,
        "kind": r.kind,
        "verbs": r.verbs,
        "shortNames": r.short_names,
        "categories": r.categories,
    })];
    if r.has_status {
        entries.push(json!({
            "name": format!("{}/status", r.plural),
            "singularName": "",
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": ["get", "patch", "update"],
        }));
    }
    for (sub, _) in &r.status_like {
        entries.push(json!({
            "name": format!("{}/{sub}", r.plural),
            "singularName": "",
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": ["get", "patch", "update"],
        }));
    }
    for sub in r
        .action_subresources()
        .iter()
        .chain(r.streaming_subresources())
    {
        let ((group, version, kind), verbs) = action_subresource(sub);
        let mut entry = json!({
            "name": format!("{}/{sub}", r.plural),
            "singularName": "",
            "namespaced": r.namespaced,
            "kind": kind,
            "verbs": verbs,
        });
        // Upstream names the group and version of a subresource whose kind
        // lives elsewhere (kubectl drain finds the Eviction version this way).
        if (group, version) != (r.group.as_str(), r.version.as_str()) {
            entry["group"] = json!(group);
            entry["version"] = json!(version);
        }
        entries.push(entry);
    }
    if r.has_scale {
        entries.push(json!({
            "name": format!("{}/scale", r.plural),
            "singularName": "",
            "namespaced": r.namespaced,
            "group": "autoscaling",
            "version": "v1",
            "kind": "Scale",
            "verbs": ["get", "patch", "update"],
        }));
    }
    entries
}

/// `/api/v1` or `/apis/GROUP/VERSION`.
pub fn resource_list(catalog: &Catalog, group: &str, version: &str) -> Value {
    let resources: Vec<Value> = catalog
        .resources()
        .iter()
        .filter(|r| r.group == group && r.version == version)
        .flat_map(|r| resource_entries(r))
        .collect();
    let group_version = if group.is_empty() {
        version.to_owned()
    } else {
        format!("{group}/{version}")
    };
    json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    })
}

/// The aggregated discovery version a client asked for in `Accept`
/// (`application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList`), if any.
pub fn aggregated_version(accept: &str) -> Option<&'static str> {
    for media in accept.split(',') {
        let params: Vec<&str> = media.split(';').map(str::trim).collect();
        if params.first() != Some(&"application/json")
            || !params.contains(&"g=apidiscovery.k8s.io")
            || !params.contains(&"as=APIGroupDiscoveryList")
        {
            continue;
        }
        if params.contains(&"v=v2") {
            return Some("v2");
        }
        if params.contains(&"v=v2beta1") {
            return Some("v2beta1");
        }
    }
    None
}

fn aggregated_resource(r: &ResourceInfo) -> Value {
    let kind = |group: &str, version: &str, kind: &str| json!({"group": group, "version": version, "kind": kind});
    let mut subresources = Vec::new();
    if r.has_status {
        subresources.push(json!({
            "subresource": "status",
            "responseKind": kind(&r.group, &r.version, &r.kind),
            "verbs": ["get", "patch", "update"],
        }));
    }
    for (sub, _) in &r.status_like {
        subresources.push(json!({
            "subresource": sub,
            "responseKind": kind(&r.group, &r.version, &r.kind),
            "verbs": ["get", "patch", "update"],
        }));
    }
    for sub in r
        .action_subresources()
        .iter()
        .chain(r.streaming_subresources())
    {
        let ((group, version, k), verbs) = action_subresource(sub);
        subresources.push(
            json!({"subresource": sub, "responseKind": kind(group, version, k), "verbs": verbs}),
        );
    }
    if r.has_scale {
        subresources.push(json!({
            "subresource": "scale",
            "responseKind": kind("autoscaling", "v1", "Scale"),
            "verbs": ["get", "patch", "update"],
        }));
    }
    let mut entry = json!({
        "resource": r.plural,
        "responseKind": kind(&r.group, &r.version, &r.kind),
        "scope": if r.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": r.singular,
        "verbs": r.verbs,
    });
    if !r.short_names.is_empty() {
        entry["shortNames"] = json!(r.short_names);
    }
    if !r.categories.is_empty() {
        entry["categories"] = json!(r.categories);
    }
    if !subresources.is_empty() {
        entry["subresources"] = json!(subresources);
    }
    entry
}

/// `/api` (core) or `/apis` (every other group) as an `APIGroupDiscoveryList`.
pub fn aggregated(catalog: &Catalog, core: bool, discovery_version: &str) -> Value {
    let groups = if core {
        vec![GroupVersions {
            name: String::new(),
            versions: vec!["v1".to_owned()],
        }]
    } else {
        catalog.groups()
    };
    let resources = catalog.resources();
    let items: Vec<Value> = groups
        .into_iter()
        .map(|group| {
            let versions: Vec<Value> = group
                .versions
                .iter()
                .map(|version| {
                    let entries: Vec<Value> = resources
                        .iter()
                        .filter(|r| r.group == group.name && r.version == *version)
                        .map(|r| aggregated_resource(r))
                        .collect();
                    json!({"version": version, "resources": entries, "freshness": "Current"})
                })
                .collect();
            json!({
                "metadata": {"name": group.name, "creationTimestamp": null},
                "versions": versions,
            })
        })
        .collect();
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": format!("apidiscovery.k8s.io/{discovery_version}"),
        "metadata": {},
        "items": items,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aggregated_discovery_is_chosen_only_when_asked() {
        let kubectl = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";
        assert_eq!(aggregated_version(kubectl), Some("v2"));
        assert_eq!(
            aggregated_version(
                "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"
            ),
            Some("v2beta1")
        );
        assert_eq!(aggregated_version("application/json, */*"), None);
        let apis = aggregated(&Catalog::new(), false, "v2");
        let apps = apis["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["metadata"]["name"] == "apps")
            .unwrap();
        let deployments = &apps["versions"][0]["resources"][0];
        assert_eq!(deployments["resource"], "deployments");
        assert_eq!(deployments["scope"], "Namespaced");
        assert_eq!(
            deployments["subresources"][1]["responseKind"]["kind"],
            "Scale"
        );
        let core = aggregated(&Catalog::new(), true, "v2");
        assert_eq!(core["items"][0]["metadata"]["name"], "");
    }

    #[test]
    fn core_list_has_pods_with_short_names_and_subresources() {
        let list = resource_list(&Catalog::new(), "", "v1");
        let names: Vec<&str> = list["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect();
        assert!(names.contains(&"pods"));
        assert!(names.contains(&"pods/status"));
        for (name, verbs) in [
            ("pods/log", json!(["get"])),
            ("pods/exec", json!(["create", "get"])),
            ("pods/attach", json!(["create", "get"])),
            ("pods/portforward", json!(["create", "get"])),
        ] {
            let entry = list["resources"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["name"] == name)
                .unwrap_or_else(|| panic!("{name} listed"));
            assert_eq!(entry["verbs"], verbs, "{name}");
        }
        let pods = list["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == "pods")
            .unwrap();
        assert_eq!(pods["shortNames"], json!(["po"]));
        assert_eq!(pods["categories"], json!(["all"]));
        let verbs_of = |name: &str| {
            list["resources"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["name"] == name)
                .map(|r| r["verbs"].clone())
        };
        let entry = |name: &str| {
            list["resources"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["name"] == name)
                .cloned()
                .unwrap()
        };
        // kubectl drain reads the Eviction's group and version from here.
        let eviction = entry("pods/eviction");
        assert_eq!(
            (&eviction["group"], &eviction["version"], &eviction["kind"]),
            (&json!("policy"), &json!("v1"), &json!("Eviction"))
        );
        assert!(entry("pods/binding").get("group").is_none());
        assert_eq!(verbs_of("bindings"), Some(json!(["create"])));
        assert_eq!(verbs_of("componentstatuses"), Some(json!(["get", "list"])));
        assert_eq!(
            verbs_of("namespaces"),
            Some(json!([
                "create", "delete", "get", "list", "patch", "update", "watch"
            ]))
        );
    }

    #[test]
    fn groups_include_apps_and_berth() {
        let catalog = Catalog::new();
        let names: Vec<String> = groups(&catalog)["groups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["name"].as_str().unwrap().to_owned())
            .collect();
        assert!(names.contains(&"apps".to_owned()));
        assert!(names.contains(&"berth.dev".to_owned()));
        assert!(group(&catalog, "apps").is_some());
        assert!(group(&catalog, "nope").is_none());
    }
}
