//! The `events.k8s.io` group's kinds: Event, the same stored objects as core
//! Events seen through upstream's newer field names.

pub mod event;
