//! The `certificates.k8s.io` group's kinds: CertificateSigningRequest.

pub mod csr;
