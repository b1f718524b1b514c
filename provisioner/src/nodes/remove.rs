//! `berth cluster remove-node NAME`: takes one machine out of the cluster
//! and out of `cluster.toml`. A pool machine is cordoned and drained
//! through the Eviction API first; a master's etcd member is removed
//! through etcd's API before its services stop (so the others never wait
//! for a member that is gone). Then the machine is cleaned as `delete`
//! cleans it, the Node object deleted and the file rewritten last, so a
//! re-run after a failure finds the machine and finishes.

use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, DeleteParams};

use super::{created, read, write, NodeError};
use crate::config::edit;
use crate::config::{Cluster, Datastore, Machine, Role};
use crate::create::{self, State};
use crate::delete::teardown_script;
use crate::drain;
use crate::etcd;
use crate::remote;

/// How `remove_node` runs.
#[derive(Debug, Clone)]
pub struct RemoveOptions {
    /// The cluster's secrets and kubeconfig on this machine.
    pub state_dir: PathBuf,
    /// Limit for each SSH connection.
    pub connect_timeout: Duration,
    /// How long the drain may take (evictions refused by budgets are retried until then).
    pub timeout: Duration,
    /// Evict pods no controller manages, allow leaving one master, and go
    /// on when the machine cannot be reached to clean it.
    pub force: bool,
}

/// What `remove_node` did.
#[derive(Debug)]
pub struct Removed {
    /// Whether it was a master.
    pub master: bool,
    /// The pods evicted from it.
    pub evicted: usize,
}

/// Whether a master may go when `masters` are left after it, on `datastore`:
/// `Ok(Some(warning))` to go on but tell the user.
///
/// On etcd, as kubeadm does: two members left is allowed with a warning
/// (a quorum of 2 survives no failure), one only with `--force` (etcd
/// itself allows it, but it is a single point of failure), none never
/// (that is `berth cluster delete`). On sqlite the one master holds the
/// only copy of the data: never.
pub fn master_removal(
    datastore: Datastore,
    left: usize,
    force: bool,
) -> Result<Option<String>, String> {
    match (datastore, left, force) {
        (Datastore::Sqlite, _, _) => Err(
            "it is the only master and holds the cluster's sqlite datastore; use `berth cluster delete`"
                .to_owned(),
        ),
        (Datastore::Etcd, 0, _) => {
            Err("it is the last master; use `berth cluster delete`".to_owned())
        }
        (Datastore::Etcd, 1, false) => Err(
            "it would leave one master, a single etcd member with no fault tolerance; pass --force to do it anyway"
                .to_owned(),
        ),
        (Datastore::Etcd, 1, true) => Ok(Some(
            "one master is left: etcd has a single member and the API no fault tolerance".to_owned(),
        )),
        (Datastore::Etcd, 2, _) => Ok(Some(
            "two masters are left: etcd keeps quorum only while both run; add a master soon"
                .to_owned(),
        )),
        (Datastore::Etcd, _, _) => Ok(None),
    }
}

/// Removes the machine named `name` from the cluster in `file`; `report`
/// gets a line for each step and for what the drain waits on.
pub async fn remove_node(
    file: &Path,
    name: &str,
    options: &RemoveOptions,
    report: &(dyn Fn(String) + Sync),
) -> Result<Removed, NodeError> {
    let (file_name, text, cluster) = read(file)?;
    let Some((role, machine)) = edit::find(&cluster, name) else {
        let known: Vec<&str> = cluster.machines().map(|(_, m)| m.name.as_str()).collect();
        return Err(NodeError::NotInFile {
            file: file_name,
            name: name.to_owned(),
            known: known.join(", "),
        });
    };
    created(&options.state_dir)?;
    // Checked before anything changes: the file without it must be valid.
    let edited = edit::remove_machine(&file_name, &text, &cluster, name)?;
    let refused = |reason: String| NodeError::Refused {
        name: name.to_owned(),
        reason,
    };
    let master = role == Role::Master;
    let remaining: Vec<&Machine> = cluster.masters.iter().filter(|m| m.name != name).collect();
    if master {
        if let Some(warning) =
            master_removal(cluster.datastore, remaining.len(), options.force).map_err(refused)?
        {
            report(format!("warning: {warning}"));
        }
    }
    let state = State::open(&options.state_dir, &cluster)?;
    let url = create::api_url(remaining[0]);
    let api_error = |reason: String| NodeError::Api {
        url: url.clone(),
        reason,
    };
    // The drain sees each 429 itself (to retry on its own clock and say
    // what it waits on) instead of the client retrying it silently.
    let mut config = create::admin_config(&state.seed, &url)
        .await
        .map_err(api_error)?;
    config.default_retry = false;
    let client = kube::Client::try_from(config).map_err(|e| api_error(e.to_string()))?;
    let evicted = if master {
        if etcd::remove_member(&options.state_dir, &remaining, machine)
            .await
            .map_err(NodeError::Etcd)?
        {
            report(format!("etcd member {name} removed"));
        } else {
            report(format!("etcd member {name} was removed already"));
        }
        0
    } else {
        drain_node(&client, name, options, report).await?
    };
    report(format!("stopping and removing berth on {name}"));
    if let Err(reason) =
        remote::run_once(machine, options.connect_timeout, &teardown_script(machine)).await
    {
        // A dead machine is a common reason to remove one: --force goes on.
        if !options.force {
            return Err(NodeError::Machine {
                name: name.to_owned(),
                reason: format!("{reason} (--force removes it from the cluster anyway)"),
            });
        }
        report(format!(
            "warning: could not clean {name} ({reason}); removing it from the cluster anyway"
        ));
    }
    delete_node_object(&client, name, &url).await?;
    if master {
        repoint_kubeconfig(&cluster, &state, machine, &url)?;
    }
    if let Some(text) = edited {
        write(file, &text)?;
        report(format!("{name} removed from {file_name}"));
    }
    Ok(Removed { master, evicted })
}

/// Cordons and drains Node `name`: how many pods it evicted. A Node gone
/// already (a re-run after it was deleted) has nothing to drain.
async fn drain_node(
    client: &kube::Client,
    name: &str,
    options: &RemoveOptions,
    report: &(dyn Fn(String) + Sync),
) -> Result<usize, NodeError> {
    match drain::drain(client, name, options.timeout, options.force, report).await {
        Ok(drained) => {
            report(format!("node/{name} drained"));
            Ok(drained.evicted.len())
        }
        Err(drain::DrainError::Api {
            source: kube::Error::Api(status),
            ..
        }) if status.code == 404 => {
            report(format!("node/{name} is not in the API; nothing to drain"));
            Ok(0)
        }
        Err(e) => Err(e.into()),
    }
}

/// Deletes the Node object (gone already is fine).
async fn delete_node_object(client: &kube::Client, name: &str, url: &str) -> Result<(), NodeError> {
    let nodes: Api<Node> = Api::all(client.clone());
    match nodes.delete(name, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(e) => Err(NodeError::Api {
            url: url.to_owned(),
            reason: format!("deleting node/{name}: {e}"),
        }),
    }
}

/// Without `api_endpoint` the admin kubeconfig points at the first master;
/// when that was the one removed, it points at the first one left.
fn repoint_kubeconfig(
    cluster: &Cluster,
    state: &State,
    removed: &Machine,
    url: &str,
) -> Result<(), NodeError> {
    if cluster.api_endpoint.is_some() || cluster.masters[0].name != removed.name {
        return Ok(());
    }
    let path = state.dir.join("admin.kubeconfig");
    state
        .seed
        .write_admin_kubeconfig(&path, url)
        .map_err(|e| NodeError::Write {
            file: path.display().to_string(),
            reason: e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masters_go_only_while_enough_are_left() {
        let cases = [
            (Datastore::Sqlite, 0, true, Err("sqlite")),
            (Datastore::Etcd, 0, true, Err("last master")),
            (Datastore::Etcd, 1, false, Err("pass --force")),
            (Datastore::Etcd, 1, true, Ok(Some("single member"))),
            (Datastore::Etcd, 2, false, Ok(Some("two masters are left"))),
            (Datastore::Etcd, 4, false, Ok(None)),
        ];
        for (datastore, left, force, expected) in cases {
            let got = master_removal(datastore, left, force);
            match (&got, expected) {
                (Ok(None), Ok(None)) => {}
                (Ok(Some(warning)), Ok(Some(part))) | (Err(warning), Err(part)) => {
                    assert!(warning.contains(part), "{left} {force}: {warning}")
                }
                _ => panic!("{datastore:?} {left} {force}: {got:?}, wanted {expected:?}"),
            }
        }
    }
}
