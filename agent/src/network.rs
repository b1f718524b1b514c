//! The node's part of the cluster network beyond pod sandboxes (which CNI
//! sets up): Service virtual IPs, as kube-proxy's nftables mode does, the
//! cluster DNS, and the node's resolv.conf both use.

pub mod dns;
pub mod resolv_conf;
pub mod service_proxy;
