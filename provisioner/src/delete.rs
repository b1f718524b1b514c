//! `berth cluster delete`: stops every service berth started on the
//! cluster's machines and removes each machine's `data_dir` (binary, state,
//! logs, certificates), then the cluster's state on this machine. Machines
//! that are already clean are fine; a re-run after a failure finishes.

use std::path::Path;
use std::time::Duration;

use crate::config::{Cluster, Machine};
use crate::create::CreateError;
use crate::layout::Layout;
use crate::remote;
use crate::service;
use crate::ssh::{self, shell_quote, Summary};

/// The services berth may run on a machine, stopped in this order.
const SERVICES: [&str; 3] = ["agent", "server", "etcd"];

/// The script that removes everything berth put on a machine. Processes
/// are found by their command line naming the data directory, leaving out
/// the script's own process group (its command line names it too).
pub fn teardown_script(machine: &Machine) -> String {
    teardown_at(&Layout::new(&machine.data_dir))
}

/// [`teardown_script`] for the berth folder `layout` (a NodePool host).
pub fn teardown_at(layout: &Layout) -> String {
    let mut script = String::from("set -e\n");
    for name in SERVICES {
        script.push_str(&service::stop(layout, name));
    }
    let root = shell_quote(&layout.root().display().to_string());
    // What the agent leaves once stopped (as k3s-killall does): container
    // shims and their containers, containerd, mounts, and the node's
    // network plumbing (tables, bridge, VXLAN device, routes of its own).
    script.push_str(&format!(
        "own=$(ps -o pgid= -p $$ | tr -d ' ')\n\
         others() {{ for pid in $(pgrep -f \"$1\" || true); do [ \"$(ps -o pgid= -p \"$pid\" | tr -d ' ')\" = \"$own\" ] || echo \"$pid\"; done; }}\n\
         for shim in $(others \"containerd-shim.*\"{root}); do pkill -KILL -P \"$shim\" || true; kill -KILL \"$shim\" || true; done\n\
         for pid in $(others {root}); do kill -KILL \"$pid\" || true; done\n\
         grep -F {root} /proc/self/mounts | cut -d' ' -f2 | sort -r | while read -r point; do umount -l \"$point\" || true; done\n\
         if command -v nft >/dev/null; then for table in $(nft list tables ip | awk '$3 ~ /^berth_/ {{print $3}}'); do nft delete table ip \"$table\"; done; fi\n\
         for link in $(ip -o link show | awk -F': ' '$2 ~ /^(berth|bvx)/ {{sub(/@.*/, \"\", $2); print $2}}'); do ip link delete \"$link\" || true; done\n\
         ip route flush proto 190 || true\n\
         rm -rf {root}\n"
    ));
    script
}

/// Tears down every machine of `cluster`, then removes `state_dir`.
pub async fn delete(
    cluster: &Cluster,
    state_dir: &Path,
    timeout: Duration,
) -> Result<Summary, CreateError> {
    let machines: Vec<&Machine> = cluster.machines().map(|(_, machine)| machine).collect();
    let summary = ssh::for_each(
        &machines,
        |machine| machine.name.clone(),
        |&machine, progress| async move {
            progress.step("stopping and removing");
            remote::run_once(machine, timeout, &teardown_script(machine))
                .await
                .map(|_| ())
        },
    )
    .await;
    if !summary.all_done() {
        return Err(CreateError::Machines {
            step: "deleting",
            failed: summary.failures().count(),
            total: machines.len(),
            summary,
        });
    }
    if state_dir.exists() {
        std::fs::remove_dir_all(state_dir).map_err(|e| CreateError::State {
            dir: state_dir.to_owned(),
            reason: e.to_string(),
        })?;
    }
    Ok(summary)
}
