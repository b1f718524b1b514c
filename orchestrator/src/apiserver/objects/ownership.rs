//! Field ownership for non-apply writes: every create and update is recorded in
//! `metadata.managedFields` under its manager, as kube-apiserver's field manager
//! does, so a later server-side apply knows who owns what.

use berth_api::apply::{self, FieldSet, ManagedFields, Path, Writer};
use serde_json::Value;

use super::WriteOptions;
use crate::apiserver::catalog::ResourceInfo;

/// Fields an endpoint resets whatever the client sends (upstream's reset fields):
/// the main resource of a kind with a status subresource never takes `status`,
/// and `/status` never takes `spec`.
fn reset_fields(r: &ResourceInfo, subresource: Option<&str>) -> Option<FieldSet> {
    match subresource {
        Some("status") => Some(FieldSet::from_paths([Path::fields(["spec"])])),
        None if r.has_status => Some(FieldSet::from_paths([Path::fields(["status"])])),
        _ => None,
    }
}

/// Records a create (`old` None) or an update in the object's managedFields, as
/// kube-apiserver's field manager does for every non-apply write.
pub(super) fn record_ownership(
    r: &ResourceInfo,
    old: Option<&Value>,
    new: &mut Value,
    opts: &WriteOptions,
) {
    let Some(manager) = opts.field_manager.as_deref() else {
        return;
    };
    let schema = r.apply_schema();
    let api_version = r.api_version();
    let reset = reset_fields(r, opts.subresource.as_deref());
    let mut writer = Writer::new(manager, &api_version, jiff::Timestamp::now());
    if let Some(sub) = opts.subresource.as_deref() {
        writer = writer.with_subresource(sub);
    }
    if let Some(reset) = &reset {
        writer = writer.with_reset_fields(reset);
    }
    let managed = match old {
        None => apply::create(new, &writer, &schema),
        Some(old) => {
            let current = if opts.subresource.is_some() {
                ManagedFields::from_object(old).unwrap_or_else(|_| ManagedFields::new([]))
            } else {
                ManagedFields::for_update(old, new)
            };
            apply::update(old, new, &current, &writer, &schema)
        }
    };
    managed.write_into(new);
}
