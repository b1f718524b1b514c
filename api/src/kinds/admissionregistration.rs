//! The `admissionregistration.k8s.io` group's kinds: webhook configurations and
//! validating admission policies with their bindings. berth stores and
//! validates them; it does not call webhooks or evaluate policies.

pub mod policy;
pub mod webhook;
