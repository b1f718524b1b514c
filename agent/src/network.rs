//! The node's part of the cluster network beyond pod sandboxes (which CNI
//! sets up): routes or a VXLAN overlay to other nodes' pods, Service
//! virtual IPs as kube-proxy's nftables mode does, the cluster DNS and the
//! node's resolv.conf it forwards to, and NetworkPolicy as a policy plugin
//! (Calico, Cilium) does.

pub mod cache;
pub mod dns;
pub mod network_policy;
pub mod nft;
pub mod pod_network;
pub mod resolv_conf;
pub mod service_proxy;
