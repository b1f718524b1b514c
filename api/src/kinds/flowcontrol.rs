//! The `flowcontrol.apiserver.k8s.io` group's kinds: FlowSchema and
//! PriorityLevelConfiguration, with upstream's default objects. berth stores
//! and validates them; it does not enforce API priority and fairness.

pub mod defaults;
pub mod flowschema;
pub mod prioritylevel;
