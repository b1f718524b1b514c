//! Serves `/openapi/v3`: the index and one document per group version, built
//! once per process from the catalogue's schemas.

use std::sync::{Arc, Mutex};

use berth_api::openapi::{self, ResourceSpec};
use bytes::Bytes;

use super::catalog::Catalog;

struct Documents {
    index: Bytes,
    v2: Bytes,
    v2_protobuf: Bytes,
    by_path: Vec<(String, Bytes)>,
}

fn path_of(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

fn build(catalog: &Catalog) -> Documents {
    let resources = catalog.resources();
    let specs: Vec<ResourceSpec<'_>> = resources
        .iter()
        .map(|r| ResourceSpec {
            group: &r.group,
            version: &r.version,
            kind: &r.kind,
            plural: &r.plural,
            namespaced: r.namespaced,
            has_status: r.has_status,
            has_scale: r.has_scale,
            definition: r.schema_name(),
            schema: (*r.json_schema()).clone(),
        })
        .collect();
    let groups = catalog.groups();
    let mut group_versions = vec![("", "v1")];
    for group in &groups {
        for version in &group.versions {
            group_versions.push((group.name.as_str(), version.as_str()));
        }
    }
    let mut by_path = Vec::new();
    let mut hashes = Vec::new();
    let mut v3_documents = Vec::new();
    for (group, version) in group_versions {
        let document = openapi::group_version_document(group, version, &specs);
        v3_documents.push(document.clone());
        let bytes = serde_json::to_vec(&document).expect("documents serialize");
        let path = path_of(group, version);
        hashes.push((path.clone(), openapi::content_hash(&bytes)));
        by_path.push((path, Bytes::from(bytes)));
    }
    let index = serde_json::to_vec(&openapi::index(&hashes)).expect("index serializes");
    let swagger = openapi::swagger_v2(&v3_documents);
    let v2_protobuf = Bytes::from(openapi::swagger_v2_protobuf(&swagger));
    let v2 = serde_json::to_vec(&swagger).expect("v2 serializes");
    Documents {
        index: Bytes::from(index),
        v2: Bytes::from(v2),
        v2_protobuf,
        by_path,
    }
}

/// The documents of one server, rebuilt when its catalog's custom resources
/// come or go (until then every request shares one build).
pub struct OpenApi {
    catalog: Catalog,
    cached: Mutex<Option<(u64, Arc<Documents>)>>,
}

impl OpenApi {
    /// Serves the documents of `catalog`.
    pub fn new(catalog: Catalog) -> Self {
        Self {
            catalog,
            cached: Mutex::new(None),
        }
    }

    fn documents(&self) -> Arc<Documents> {
        let revision = self.catalog.revision();
        let mut cached = self.cached.lock().expect("openapi cache poisoned");
        if let Some((built_at, documents)) = cached.as_ref() {
            if *built_at == revision {
                return Arc::clone(documents);
            }
        }
        let documents = Arc::new(build(&self.catalog));
        *cached = Some((revision, Arc::clone(&documents)));
        documents
    }

    /// The `/openapi/v3` index.
    pub fn index(&self) -> Bytes {
        self.documents().index.clone()
    }

    /// The Swagger 2.0 document (JSON).
    pub fn v2(&self) -> Bytes {
        self.documents().v2.clone()
    }

    /// The Swagger 2.0 document in gnostic protobuf (what kubectl 1.27/1.28 read).
    pub fn v2_protobuf(&self) -> Bytes {
        self.documents().v2_protobuf.clone()
    }

    /// The document of one group version, if served.
    pub fn document(&self, group: &str, version: &str) -> Option<Bytes> {
        let path = path_of(group, version);
        self.documents()
            .by_path
            .iter()
            .find(|(p, _)| *p == path)
            .map(|(_, b)| b.clone())
    }
}
