//! Scale-up (Karpenter's provisioner): pods the scheduler found no room for
//! become NodeClaims on the pools that fit them, packed onto as few new
//! machines as hold them, after counting the capacity already on its way.

pub mod batch;
pub mod binpack;
pub mod fit;
pub mod inflight;
pub mod provisioner;
pub mod spread;
