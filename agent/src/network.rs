//! The node's part of the cluster network beyond pod sandboxes (which CNI
//! sets up): Service virtual IPs, as kube-proxy's nftables mode does, and
//! NetworkPolicy, as a policy plugin (Calico, Cilium) does.

pub mod network_policy;
pub mod nft;
pub mod service_proxy;
