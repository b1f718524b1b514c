//! The node's part of the cluster network beyond pod sandboxes (which CNI
//! sets up): routes or a VXLAN overlay to other nodes' pods, and Service
//! virtual IPs, as kube-proxy's nftables mode does.

pub mod nft;
pub mod pod_network;
pub mod service_proxy;
