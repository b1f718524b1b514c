//! The `networking.k8s.io` group's kinds: Ingress, IngressClass,
//! NetworkPolicy, ServiceCIDR and IPAddress, stored and validated as upstream
//! does (the node agent enforces network policies; ingress controllers are the
//! user's; the API server's ClusterIP allocator keeps the IPAddresses).

pub mod ingress;
pub mod ingressclass;
pub mod ipaddress;
pub mod networkpolicy;
pub mod servicecidr;
