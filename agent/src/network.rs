//! The node's part of the cluster network beyond pod sandboxes (which CNI
//! sets up): Service virtual IPs, as kube-proxy's nftables mode does.

pub mod service_proxy;
