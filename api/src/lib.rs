//! Pure data and functions behind berth's Kubernetes-compatible API: label and
//! field selectors, name and quantity validation, patch logic, our own kinds and
//! the server-side table columns. Nothing in this crate performs I/O, so every
//! rule here can be tested with tables of cases.
#![warn(missing_docs)]

pub mod apply;
pub mod bootstrap_token;
pub mod crd;
pub mod field;
pub mod kinds;
pub mod nodeclaim;
pub mod nodepool;
pub mod openapi;
pub mod patch;
pub mod pod_security;
pub mod protobuf;
pub mod quantity;
pub mod rbac;
pub mod resource;
mod schema;
pub mod selector;
pub mod streaming;
pub mod strict;
pub mod table;
pub mod validation;
