//! The node's CNI network: a `bridge` conflist over the node's podCIDR with
//! `host-local` addresses and `portmap`, written where containerd's CRI
//! plugin watches for it. Each node gets its own bridge name and address
//! store, so several nodes on one machine never hand out the same IP. The
//! bridge does not masquerade: the pod network's own table does, sparing
//! traffic between pods of different nodes.

use std::path::Path;

use serde_json::json;

use crate::runtime::RuntimeError;

/// The file name of the conflist (containerd picks the first in order).
pub const CONFLIST: &str = "10-berth.conflist";

/// A Linux interface name (at most 15 bytes) for `node`'s bridge, stable
/// across restarts: `berth` plus a hash of the node name.
pub fn bridge_name(node: &str) -> String {
    format!("berth{:08x}", crate::config::name_hash(node))
}

/// One node's pod network as CNI sees it.
#[derive(Debug, Clone, Copy)]
pub struct Network<'a> {
    /// The bridge interface's name.
    pub bridge: &'a str,
    /// The node's podCIDR.
    pub pod_cidr: &'a str,
    /// The MTU of the bridge and the pods' interfaces; the kernel's default when unset.
    pub mtu: Option<u32>,
    /// Where host-local keeps its address leases.
    pub ipam_dir: &'a Path,
}

/// The conflist for `network`.
pub fn conflist(network: &Network<'_>) -> serde_json::Value {
    let mut bridge = json!({
        "type": "bridge",
        "bridge": network.bridge,
        "isGateway": true,
        "ipMasq": false,
        "hairpinMode": true,
        "ipam": {
            "type": "host-local",
            "ranges": [[{"subnet": network.pod_cidr}]],
            "routes": [{"dst": "0.0.0.0/0"}],
            "dataDir": network.ipam_dir,
        }
    });
    if let Some(mtu) = network.mtu {
        bridge["mtu"] = json!(mtu);
    }
    json!({
        "cniVersion": "1.0.0",
        "name": "berth",
        "plugins": [
            bridge,
            {"type": "portmap", "capabilities": {"portMappings": true}}
        ]
    })
}

/// Writes the conflist into `conf_dir` (atomically, so containerd never
/// reads half a file); returns whether it changed.
pub fn write(conf_dir: &Path, network: &Network<'_>) -> Result<bool, RuntimeError> {
    let text = serde_json::to_string_pretty(&conflist(network))
        .map_err(|e| RuntimeError::Backend(format!("encoding the CNI conflist: {e}")))?;
    let path = conf_dir.join(CONFLIST);
    if std::fs::read_to_string(&path).is_ok_and(|old| old == text) {
        return Ok(false);
    }
    let io = |e: std::io::Error| RuntimeError::Backend(format!("writing {}: {e}", path.display()));
    std::fs::create_dir_all(conf_dir).map_err(io)?;
    std::fs::create_dir_all(network.ipam_dir).map_err(io)?;
    let partial = conf_dir.join(".berth.conflist.partial");
    std::fs::write(&partial, text).map_err(io)?;
    std::fs::rename(&partial, &path).map_err(io)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bridges_are_short_stable_and_distinct() {
        let a = bridge_name("node-a");
        assert_eq!(a, bridge_name("node-a"));
        assert_ne!(a, bridge_name("node-b"));
        assert!(a.len() <= 15, "{a}");
    }

    #[test]
    fn the_conflist_uses_the_pod_cidr_and_own_store() {
        let dir = tempfile::tempdir().unwrap();
        let ipam = dir.path().join("ipam");
        let network = Network {
            bridge: "berth1",
            pod_cidr: "10.42.3.0/24",
            mtu: Some(1450),
            ipam_dir: &ipam,
        };
        assert!(write(dir.path(), &network).unwrap());
        assert!(!write(dir.path(), &network).unwrap(), "unchanged");
        let text = std::fs::read_to_string(dir.path().join(CONFLIST)).unwrap();
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        let bridge = &value["plugins"][0];
        assert_eq!(bridge["bridge"], "berth1");
        assert_eq!(bridge["ipam"]["ranges"][0][0]["subnet"], "10.42.3.0/24");
        assert_eq!(bridge["ipam"]["dataDir"], ipam.to_str().unwrap());
        assert_eq!(bridge["mtu"], 1450);
        assert_eq!(bridge["ipMasq"], false, "the pod network masquerades");
        assert_eq!(value["plugins"][1]["type"], "portmap");
    }
}
