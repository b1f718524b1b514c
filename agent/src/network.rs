//! The node's part of the cluster network beyond pod sandboxes (which CNI
//! sets up): routes or a VXLAN overlay to other nodes' pods, Service
//! virtual IPs as kube-proxy's nftables mode does, and NetworkPolicy as a
//! policy plugin (Calico, Cilium) does.

pub mod network_policy;
pub mod nft;
pub mod pod_network;
pub mod service_proxy;
