//! Serves what CustomResourceDefinitions define: every served version of a
//! stored CRD becomes a catalog entry (discovery, OpenAPI, routing), the CRD
//! gets its `NamesAccepted` and `Established` conditions and the cleanup
//! finalizer, and a deleted CRD takes its custom objects with it before it
//! goes (upstream's establishing, naming and finalizing controllers, run
//! inside the API server because they change what it serves).

use std::sync::Arc;
use std::time::Duration;

use berth_api::kinds::apiextensions::customresourcedefinition::CLEANUP_FINALIZER;
use berth_api::kinds::custom::CustomRules;
use futures::StreamExt;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::catalog::{self, Catalog, CustomNames, ResourceInfo};
use super::errors::ApiError;
use super::objects::{decode, DeleteOptions, Objects, WriteOptions};
use crate::store::EventKind;

/// How often CRDs being deleted are looked at again while their objects go.
const CLEANUP_INTERVAL: Duration = Duration::from_secs(1);

fn definitions() -> &'static ResourceInfo {
    catalog::builtin("apiextensions.k8s.io", "v1", "customresourcedefinitions")
        .expect("customresourcedefinitions served")
}

fn text<'a>(value: &'a Value, pointer: &str) -> &'a str {
    value.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

fn strings(value: &Value, pointer: &str) -> Vec<String> {
    value
        .pointer(pointer)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect()
}

/// The catalog entries of a CRD's served versions.
pub fn resources_of(crd: &Value) -> Vec<Arc<ResourceInfo>> {
    let group = text(crd, "/spec/group");
    let versions = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let storage = versions
        .iter()
        .find(|v| v.get("storage") == Some(&Value::Bool(true)))
        .map(|v| text(v, "/name").to_owned())
        .unwrap_or_default();
    let mut resources = Vec::new();
    for (i, version) in versions.iter().enumerate() {
        if version.get("served") != Some(&Value::Bool(true)) {
            continue;
        }
        let name = text(version, "/name");
        let rules = match CustomRules::for_group(
            version,
            &format!("spec.versions[{i}]"),
            group,
            &storage,
        ) {
            Ok(rules) => rules,
            Err(causes) => {
                tracing::warn!(
                    crd = text(crd, "/metadata/name"),
                    version = name,
                    ?causes,
                    "not serving a version whose schema is unusable"
                );
                continue;
            }
        };
        let names = CustomNames {
            group: group.to_owned(),
            version: name.to_owned(),
            kind: text(crd, "/spec/names/kind").to_owned(),
            plural: text(crd, "/spec/names/plural").to_owned(),
            singular: text(crd, "/spec/names/singular").to_owned(),
            namespaced: text(crd, "/spec/scope") == "Namespaced",
            short_names: strings(crd, "/spec/names/shortNames"),
            categories: strings(crd, "/spec/names/categories"),
        };
        let definition = catalog::custom_definition_name(group, name, &names.kind);
        let document = catalog::custom_document(
            &definition,
            version.pointer("/schema/openAPIV3Schema").unwrap_or(
                &json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}),
            ),
        );
        let mut resource = ResourceInfo::custom(names, Arc::new(rules), document);
        if version.pointer("/subresources/status").is_some() {
            resource = resource.status();
        }
        if version.pointer("/subresources/scale").is_some() {
            resource = resource.scale();
        }
        if crd.pointer("/metadata/deletionTimestamp").is_some() {
            resource = resource.terminating();
        }
        resources.push(Arc::new(resource));
    }
    resources
}

/// Serves every stored CRD; answers the store revision the read was at, where
/// [`run`] follows on from.
pub async fn load(objects: &Objects, catalog: &Catalog) -> Result<i64, ApiError> {
    let page = objects
        .store()
        .list(&definitions().key_prefix(), None, 0)
        .await?;
    for kv in &page.items {
        let crd = decode(kv)?;
        catalog.set_custom(text(&crd, "/metadata/name"), resources_of(&crd));
    }
    Ok(page.revision)
}

/// Follows CRD changes from `revision` until `cancel` fires: serves new and
/// changed CRDs, establishes them, and cleans up deleted ones.
pub async fn run(objects: Objects, catalog: Catalog, revision: i64, cancel: CancellationToken) {
    let prefix = definitions().key_prefix();
    let mut revision = revision;
    let mut cleanup = tokio::time::interval(CLEANUP_INTERVAL);
    // Establish what was loaded at start (conditions, finalizer).
    if let Err(e) = resync(&objects, &catalog).await {
        tracing::warn!(error = %e, "custom resource definitions");
    }
    loop {
        let mut events = match objects.store().watch(&prefix, revision).await {
            Ok(events) => events,
            Err(e) => {
                tracing::warn!(error = %e, "watching custom resource definitions");
                revision = match load(&objects, &catalog).await {
                    Ok(revision) => revision,
                    Err(_) => revision,
                };
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(CLEANUP_INTERVAL) => continue,
                }
            }
        };
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = cleanup.tick() => {
                    if let Err(e) = resync(&objects, &catalog).await {
                        tracing::warn!(error = %e, "custom resource definitions");
                    }
                }
                event = events.next() => match event {
                    Some(Ok(event)) => {
                        revision = event.kv.mod_revision;
                        let name = event.kv.key.trim_start_matches(&prefix).to_owned();
                        if event.kind == EventKind::Delete {
                            catalog.remove_custom(&name);
                            continue;
                        }
                        match decode(&event.kv) {
                            Ok(crd) => {
                                if let Err(e) = reconcile(&objects, &catalog, &crd).await {
                                    tracing::warn!(crd = %name, error = %e, "custom resource definition");
                                }
                            }
                            Err(e) => tracing::warn!(error = %e, "undecodable custom resource definition"),
                        }
                    }
                    // History compacted or the store failed: read everything again.
                    Some(Err(_)) | None => {
                        if let Ok(loaded) = load(&objects, &catalog).await {
                            revision = loaded;
                        }
                        break;
                    }
                }
            }
        }
    }
}

/// Reconciles every stored CRD (those being deleted need passes until their objects are gone).
async fn resync(objects: &Objects, catalog: &Catalog) -> Result<(), ApiError> {
    let page = objects
        .store()
        .list(&definitions().key_prefix(), None, 0)
        .await?;
    for kv in &page.items {
        let crd = decode(kv)?;
        let established = crd
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .is_some_and(|c| c.iter().any(|c| c["type"] == "Established"));
        if !established || crd.pointer("/metadata/deletionTimestamp").is_some() {
            reconcile(objects, catalog, &crd).await?;
        }
    }
    Ok(())
}

/// One step for one CRD: serve it, and establish it or clean it up.
async fn reconcile(objects: &Objects, catalog: &Catalog, crd: &Value) -> Result<(), ApiError> {
    let name = text(crd, "/metadata/name").to_owned();
    catalog.set_custom(&name, resources_of(crd));
    if crd.pointer("/metadata/deletionTimestamp").is_some() {
        return clean_up(objects, catalog, crd).await;
    }
    let desired = established(crd);
    if desired == *crd {
        return Ok(());
    }
    objects
        .update_bypassing_validation(definitions(), None, &name, |current| {
            Ok(established(current))
        })
        .await
        .map(|_| ())
}

fn condition(kind: &str, reason: &str, message: &str, since: &str) -> Value {
    json!({"type": kind, "status": "True", "lastTransitionTime": since, "reason": reason, "message": message})
}

/// `crd` with the cleanup finalizer, its names accepted and its conditions
/// saying it is served (unchanged when it already says so).
fn established(crd: &Value) -> Value {
    let mut next = crd.clone();
    let finalizers = next["metadata"]
        .as_object_mut()
        .map(|m| m.entry("finalizers").or_insert_with(|| json!([])));
    if let Some(Value::Array(finalizers)) = finalizers {
        if !finalizers.iter().any(|f| f == CLEANUP_FINALIZER) {
            finalizers.push(json!(CLEANUP_FINALIZER));
        }
    }
    let mut accepted = crd.pointer("/spec/names").cloned().unwrap_or(json!({}));
    if let Some(map) = accepted.as_object_mut() {
        map.retain(|_, v| !v.is_null());
    }
    if !next["status"].is_object() {
        next["status"] = json!({});
    }
    next["status"]["acceptedNames"] = accepted;
    let has = |kind: &str| {
        crd.pointer("/status/conditions")
            .and_then(Value::as_array)
            .is_some_and(|c| c.iter().any(|c| c["type"] == kind && c["status"] == "True"))
    };
    if !has("NamesAccepted") || !has("Established") {
        let now = jiff::Timestamp::now()
            .strftime("%Y-%m-%dT%H:%M:%SZ")
            .to_string();
        next["status"]["conditions"] = json!([
            condition("NamesAccepted", "NoConflicts", "no conflicts found", &now),
            condition(
                "Established",
                "InitialNamesAccepted",
                "the initial names have been accepted",
                &now
            ),
        ]);
    }
    next
}

/// `crd` with the `Terminating` condition upstream sets while its objects go.
fn with_terminating_condition(crd: &Value) -> Value {
    let mut next = crd.clone();
    if !next["status"].is_object() {
        next["status"] = json!({});
    }
    let now = jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let condition = condition(
        "Terminating",
        "InstanceDeletionInProgress",
        "CustomResource deletion is in progress",
        &now,
    );
    match next["status"]["conditions"].as_array_mut() {
        Some(conditions) => {
            conditions.retain(|c| c["type"] != "Terminating");
            conditions.push(condition);
        }
        None => next["status"]["conditions"] = json!([condition]),
    }
    next
}

/// Deletes the custom objects of a CRD being deleted; once none are left,
/// releases the cleanup finalizer so the CRD goes, and stops serving it.
async fn clean_up(objects: &Objects, catalog: &Catalog, crd: &Value) -> Result<(), ApiError> {
    let name = text(crd, "/metadata/name").to_owned();
    let holds = crd
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .is_some_and(|f| f.iter().any(|f| f == CLEANUP_FINALIZER));
    if !holds {
        return Ok(());
    }
    let terminating = crd
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|c| c.iter().any(|c| c["type"] == "Terminating"));
    if !terminating {
        // Upstream's finalizer controller says so before deleting the objects.
        objects
            .update_bypassing_validation(definitions(), None, &name, |current| {
                Ok(with_terminating_condition(current))
            })
            .await?;
    }
    let resources = resources_of(crd);
    let mut remaining = 0;
    if let Some(resource) = resources.first() {
        let page = objects
            .store()
            .list(&resource.key_prefix(), None, 0)
            .await?;
        for kv in &page.items {
            let object = decode(kv)?;
            remaining += 1;
            if object.pointer("/metadata/deletionTimestamp").is_some() {
                continue;
            }
            let namespace = object
                .pointer("/metadata/namespace")
                .and_then(Value::as_str);
            let object_name = text(&object, "/metadata/name");
            match objects
                .delete(resource, namespace, object_name, &DeleteOptions::default())
                .await
            {
                Ok(_) | Err(ApiError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
    }
    if remaining > 0 {
        tracing::debug!(crd = %name, remaining, "waiting for custom objects to go");
        return Ok(());
    }
    let options = WriteOptions::default();
    objects
        .read_modify_write(definitions(), None, &name, &options, |current| {
            let mut next = current.clone();
            if let Some(Value::Array(finalizers)) = next.pointer_mut("/metadata/finalizers") {
                finalizers.retain(|f| f != CLEANUP_FINALIZER);
            }
            Ok(next)
        })
        .await?;
    catalog.remove_custom(&name);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crontab() -> Value {
        json!({
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "crontabs.stable.example.com"},
            "spec": {"group": "stable.example.com", "scope": "Namespaced",
                "names": {"plural": "crontabs", "singular": "crontab", "kind": "CronTab",
                          "shortNames": ["ct"], "listKind": "CronTabList"},
                "versions": [
                    {"name": "v1", "served": true, "storage": true,
                     "schema": {"openAPIV3Schema": {"type": "object"}},
                     "subresources": {"status": {}}},
                    {"name": "v1beta1", "served": false, "storage": false,
                     "schema": {"openAPIV3Schema": {"type": "object"}}}]}
        })
    }

    #[test]
    fn served_versions_become_catalog_entries() {
        let resources = resources_of(&crontab());
        assert_eq!(resources.len(), 1);
        let r = &resources[0];
        assert_eq!(
            (r.group.as_str(), r.version.as_str(), r.plural.as_str()),
            ("stable.example.com", "v1", "crontabs")
        );
        assert!(r.namespaced && r.has_status && !r.has_scale && !r.builtin);
        assert_eq!(r.short_names, ["ct"]);
        assert_eq!(r.schema_name(), "com.example.stable.v1.CronTab");
    }

    #[test]
    fn establishing_adds_the_finalizer_names_and_conditions_once() {
        let first = established(&crontab());
        assert_eq!(first["metadata"]["finalizers"], json!([CLEANUP_FINALIZER]));
        assert_eq!(first["status"]["acceptedNames"]["kind"], "CronTab");
        let kinds: Vec<&str> = first["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["type"].as_str().unwrap())
            .collect();
        assert_eq!(kinds, ["NamesAccepted", "Established"]);
        assert_eq!(established(&first), first, "a second pass changes nothing");
    }

    #[test]
    fn a_definition_being_deleted_is_terminating() {
        assert!(!resources_of(&crontab())[0].terminating);
        let mut deleting = established(&crontab());
        deleting["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
        assert!(resources_of(&deleting)[0].terminating);
        let marked = with_terminating_condition(&deleting);
        let marked = with_terminating_condition(&marked);
        let conditions = marked["status"]["conditions"].as_array().unwrap();
        let terminating: Vec<&Value> = conditions
            .iter()
            .filter(|c| c["type"] == "Terminating")
            .collect();
        assert_eq!(terminating.len(), 1, "{conditions:?}");
        assert_eq!(terminating[0]["reason"], "InstanceDeletionInProgress");
        assert_eq!(conditions.len(), 3, "Established and NamesAccepted stay");
    }
}
