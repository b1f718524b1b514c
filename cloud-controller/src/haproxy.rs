//! The `haproxy` provider for bare metal: addresses from a pool like
//! MetalLB's IPAddressPool, and an `haproxy.cfg` with one TCP frontend per
//! Service port. This slice holds the pure parts (allocation and rendering);
//! writing the file and reloading HAProxy on its host come next.

pub mod config;
pub mod pool;
