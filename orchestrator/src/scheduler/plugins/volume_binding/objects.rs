//! The claims, volumes and StorageClasses the scheduler's watches show, kept
//! for the VolumeBinding plugin (upstream's PVC/PV/StorageClass listers).
//! Each watch's (re-)list replaces what it listed before. Pure: the watch
//! loop feeds it.

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::runtime::watcher;
use kube::Resource;

/// Objects of one kind by `namespace/name` (or `name`), with the list in progress.
#[derive(Debug)]
pub struct Listed<K> {
    objects: HashMap<String, Arc<K>>,
    relist: Option<HashMap<String, Arc<K>>>,
    listed: bool,
}

impl<K> Default for Listed<K> {
    fn default() -> Self {
        Self {
            objects: HashMap::new(),
            relist: None,
            listed: false,
        }
    }
}

/// The key objects are stored under: `namespace/name`, or `name` for cluster-scoped ones.
pub fn key_of<K: Resource>(object: &K) -> String {
    let meta = object.meta();
    match meta.namespace.as_deref() {
        Some(ns) => format!("{ns}/{}", meta.name.as_deref().unwrap_or("")),
        None => meta.name.clone().unwrap_or_default(),
    }
}

impl<K: Resource> Listed<K> {
    /// Applies one watch event; true when what is stored changed.
    pub fn apply(&mut self, event: watcher::Event<K>) -> bool {
        match event {
            watcher::Event::Init => {
                self.relist = Some(HashMap::new());
                false
            }
            watcher::Event::InitApply(mut object) => {
                object.meta_mut().managed_fields = None;
                let key = key_of(&object);
                match self.relist.as_mut() {
                    Some(relist) => relist.insert(key, Arc::new(object)),
                    None => self.objects.insert(key, Arc::new(object)),
                };
                false
            }
            watcher::Event::InitDone => {
                if let Some(relist) = self.relist.take() {
                    self.objects = relist;
                }
                self.listed = true;
                true
            }
            watcher::Event::Apply(mut object) => {
                object.meta_mut().managed_fields = None;
                self.objects.insert(key_of(&object), Arc::new(object));
                true
            }
            watcher::Event::Delete(object) => self.objects.remove(&key_of(&object)).is_some(),
        }
    }

    /// The object stored under `key`.
    pub fn get(&self, key: &str) -> Option<&Arc<K>> {
        self.objects.get(key)
    }

    /// Every stored object, in no order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<K>> + Clone {
        self.objects.values()
    }

    /// Stores `object` as if a watch had shown it (tests, assumed writes).
    pub fn insert(&mut self, object: K) {
        self.objects.insert(key_of(&object), Arc::new(object));
    }
}

/// Everything the VolumeBinding plugin reads.
#[derive(Debug, Default)]
pub struct VolumeObjects {
    /// PersistentVolumeClaims by `namespace/name`.
    pub claims: Listed<PersistentVolumeClaim>,
    /// PersistentVolumes by name.
    pub volumes: Listed<PersistentVolume>,
    /// StorageClasses by name.
    pub classes: Listed<StorageClass>,
}

impl VolumeObjects {
    /// True once each of the three watches has completed its first list.
    pub fn is_ready(&self) -> bool {
        self.claims.listed && self.volumes.listed && self.classes.listed
    }
}
