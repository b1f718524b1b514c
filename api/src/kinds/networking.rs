//! The `networking.k8s.io` group's kinds: Ingress, IngressClass and
//! NetworkPolicy, stored and validated as upstream does (the node agent
//! enforces network policies; ingress controllers are the user's).

pub mod ingress;
pub mod ingressclass;
pub mod networkpolicy;
