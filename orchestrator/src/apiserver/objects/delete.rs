//! Deletion semantics: preconditions, graceful deletion of pods bound to a
//! node, finalizers (including the propagation-policy ones) and namespaces
//! that wait for their contents — or removal at once when nothing holds it.

use serde_json::{json, Value};

use super::{
    allocated_kind, encode_as, meta_mut, meta_str, stamped, target, DeleteOptions, Objects,
};
use crate::apiserver::admission;
use crate::apiserver::catalog::ResourceInfo;
use crate::apiserver::errors::ApiError;

impl Objects {
    /// Deletes an object: at once, or by marking it when finalizers or a grace period apply.
    pub async fn delete(
        &self,
        r: &ResourceInfo,
        ns: Option<&str>,
        name: &str,
        opts: &DeleteOptions,
    ) -> Result<Value, ApiError> {
        admission::check_delete(r, name)?;
        let (kv, mut obj) = self.get_kv(r, ns, name).await?;
        if let Some(uid) = &opts.precondition_uid {
            if meta_str(&obj, "uid") != Some(uid.as_str()) {
                return Err(ApiError::Conflict(
                    target(r, name),
                    format!(
                        "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                        meta_str(&obj, "uid").unwrap_or_default()
                    ),
                ));
            }
        }
        if let Some(rv) = &opts.precondition_resource_version {
            if *rv != kv.mod_revision.to_string() {
                return Err(ApiError::Conflict(
                    target(r, name),
                    format!("Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}", kv.mod_revision),
                ));
            }
        }
        let mut grace = r
            .rules
            .deletion_grace_period(&obj, opts.grace_period_seconds);
        let mut finalizers: Vec<Value> = obj
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let policy_finalizer = match opts.propagation_policy.as_deref() {
            Some("Orphan") => Some("orphan"),
            Some("Foreground") => Some("foregroundDeletion"),
            _ => None,
        };
        if let Some(f) = policy_finalizer {
            if !finalizers.iter().any(|v| v == f) {
                finalizers.push(json!(f));
            }
        }
        let held = r.rules.begin_deletion(&mut obj);
        if held {
            grace.get_or_insert(0);
        }
        let already_deleting = obj.pointer("/metadata/deletionTimestamp").is_some();
        if !finalizers.is_empty() || grace.is_some_and(|g| g > 0) || held {
            let grace = grace.unwrap_or(0);
            let meta = meta_mut(&mut obj);
            if !finalizers.is_empty() {
                meta.insert("finalizers".into(), Value::Array(finalizers));
            }
            let current_grace = meta
                .get("deletionGracePeriodSeconds")
                .and_then(Value::as_i64);
            if !already_deleting || current_grace.is_some_and(|g| grace < g) {
                let at = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(grace);
                meta.insert(
                    "deletionTimestamp".into(),
                    json!(at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()),
                );
                meta.insert("deletionGracePeriodSeconds".into(), json!(grace));
            }
            if opts.dry_run {
                return Ok(obj);
            }
            return match self
                .store
                .update(&kv.key, encode_as(r, &mut obj)?, kv.mod_revision)
                .await
            {
                Ok(kv) => Ok(stamped(obj, kv.mod_revision)),
                Err(e) => Err(self.write_error(r, name, e)),
            };
        }
        if opts.dry_run {
            return Ok(obj);
        }
        match self.store.delete(&kv.key, Some(kv.mod_revision)).await {
            Ok(deleted) => {
                self.allocator.release_for(allocated_kind(r), &obj).await;
                let mut value = obj;
                meta_mut(&mut value).insert(
                    "resourceVersion".into(),
                    json!(deleted.mod_revision.to_string()),
                );
                Ok(value)
            }
            Err(e) => Err(self.write_error(r, name, e)),
        }
    }
}
