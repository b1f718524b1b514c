//! The `apiregistration.k8s.io` group's kinds: APIService. berth lists one
//! `Local` APIService per group version it serves, as kube-aggregator does;
//! users' APIServices are stored only (nothing is proxied to them).

pub mod apiservice;
pub mod defaults;
