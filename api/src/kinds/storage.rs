//! The `storage.k8s.io` group's kinds: StorageClass, CSIDriver, CSINode,
//! CSIStorageCapacity and VolumeAttachment, stored and validated as upstream does.

pub mod csidriver;
pub mod csinode;
pub mod csistoragecapacity;
pub mod storageclass;
pub mod volumeattachment;
