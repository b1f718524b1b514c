//! Role-based access control, the pure part: the default roles and bindings
//! an API server creates ([`bootstrap`]), ClusterRole aggregation
//! ([`aggregation`]), answering "may this user do that" and "what may this
//! user do" from roles and bindings ([`evaluate`]), and create/update
//! validation of the four RBAC kinds ([`validation`]). Objects are plain
//! `serde_json::Value`s as stored, so the API server can call these on what it
//! reads without converting.

pub mod aggregation;
pub mod bootstrap;
