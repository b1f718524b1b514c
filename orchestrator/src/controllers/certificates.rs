//! The certificates controllers of kube-controller-manager that node joining
//! needs: csrapproving (auto-approves kubelet client requests RBAC allows)
//! and csrsigning (issues approved kubelet requests with the cluster CA).

pub mod approver;
pub mod kubelet_csr;
pub mod signer;
