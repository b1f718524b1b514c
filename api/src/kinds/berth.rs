//! berth's own `berth.dev` group's kinds.

pub mod nodeclaim;
pub mod nodepool;
