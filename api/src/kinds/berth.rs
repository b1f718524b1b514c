//! berth's own `berth.dev` group's kinds.

pub mod nodepool;
