//! The filter and score plugins of the default profile, one file each, named
//! as upstream's. Each is a stateless unit struct over `CycleState` + `NodeInfo`.

pub mod allocated;
pub mod inter_pod_affinity;
pub mod node_affinity;
pub mod node_name;
pub mod node_resources_fit;
pub mod node_unschedulable;
pub mod pod_topology_spread;
pub mod taint_toleration;
pub mod volume_binding;

pub use berth_api::kinds::core::pod::tolerations::{tolerated, tolerates};
