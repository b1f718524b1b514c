//! Builds and grows berth clusters on machines: the machine backends (SSH),
//! and what runs over them. Nothing here talks to the API server's store.
#![warn(missing_docs)]

pub mod ssh;
