//! What the NodePool end-to-end tests read back through kubectl: a pool's
//! NodeClaims and Nodes, the cluster's Events, and a short form of
//! `wait_for`. Read-only helpers: they never change the cluster.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::Value;

use super::{wait_for, Kubectl, Server};

/// `wait(what, seconds, check)`: waits for `check` on `server`, printing its
/// log if it never holds, as every pool test does many times.
pub fn waiter(server: &Server) -> impl Fn(&str, u64, &mut dyn FnMut() -> bool) + '_ {
    move |what, secs, check| {
        wait_for(what, Duration::from_secs(secs), server, &mut [], || {
            check().then_some(())
        })
    }
}

/// The label selector of the objects `pool` owns.
pub fn pool_selector(pool: &str) -> String {
    format!("berth.dev/pool={pool}")
}

/// `name → field` of the objects `args` lists (field empty when unset).
pub fn name_to(k: &Kubectl, args: &[&str], field: &str) -> BTreeMap<String, String> {
    k.jsonpath(
        args,
        &format!("{{range .items[*]}}{{.metadata.name}} {{{field}}}{{\"\\n\"}}{{end}}"),
    )
    .lines()
    .map(|l| {
        let (name, value) = l.split_once(' ').unwrap_or((l, ""));
        (name.to_owned(), value.to_owned())
    })
    .collect()
}

/// `name field` of the Nodes of `pool`, by name (`name` alone when unset).
pub fn pool_node_field(k: &Kubectl, pool: &str, field: &str) -> Vec<String> {
    let selector = pool_selector(pool);
    name_to(k, &["get", "nodes", "-l", &selector], field)
        .into_iter()
        .map(|(name, value)| format!("{name} {value}").trim_end().to_owned())
        .collect()
}

/// `name True|False` (Ready) of the Nodes of `pool`, by name.
pub fn pool_nodes(k: &Kubectl, pool: &str) -> Vec<String> {
    pool_node_field(k, pool, r#".status.conditions[?(@.type=="Ready")].status"#)
}

/// Whether `pool` has exactly `count` Nodes and all are Ready.
pub fn all_ready(k: &Kubectl, pool: &str, count: usize) -> bool {
    let nodes = pool_nodes(k, pool);
    nodes.len() == count && nodes.iter().all(|n| n.ends_with(" True"))
}

/// The NodeClaims of `pool` (terminating ones too) as JSON objects.
pub fn claims(k: &Kubectl, pool: &str) -> Vec<Value> {
    let selector = pool_selector(pool);
    let out = k.ok(&["get", "nodeclaims", "-l", &selector, "-o", "json"]);
    let list: Value = serde_json::from_str(&out).expect("nodeclaim list JSON");
    list["items"].as_array().cloned().unwrap_or_default()
}

/// An object's `metadata.name`.
pub fn name(object: &Value) -> String {
    object["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Whether an object is terminating.
pub fn deleting(object: &Value) -> bool {
    !object["metadata"]["deletionTimestamp"].is_null()
}

/// Whether an object's condition `type_` is True.
pub fn condition(object: &Value, type_: &str) -> bool {
    object["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == type_ && c["status"] == "True")
}

/// Names of the live (not terminating) NodeClaims of `pool`.
pub fn live_claims(k: &Kubectl, pool: &str) -> Vec<String> {
    claims(k, pool)
        .iter()
        .filter(|c| !deleting(c))
        .map(name)
        .collect()
}

/// Names of the live claims of `pool` whose node is Ready.
pub fn ready_claims(k: &Kubectl, pool: &str) -> BTreeSet<String> {
    claims(k, pool)
        .iter()
        .filter(|c| !deleting(c) && condition(c, "Ready"))
        .map(name)
        .collect()
}

/// Every Event in the cluster as a `reason: message` line.
pub fn events(k: &Kubectl) -> String {
    k.jsonpath(
        &["get", "events", "-A"],
        r#"{range .items[*]}{.reason}: {.message}{"\n"}{end}"#,
    )
}
