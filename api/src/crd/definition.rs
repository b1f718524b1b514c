//! The CRD object's own rules (`apiextensions/validation` upstream): names,
//! group, scope, versions and their schemas, subresources, printer columns,
//! selectable fields and conversion; plus the v1 defaults.

use serde_json::{json, Value};

mod version;

use super::path;
use crate::field::FieldCause;
use crate::validation::{is_dns1035_label, is_dns1123_subdomain};

pub(super) fn str_at<'a>(v: &'a Value, keys: &[&str]) -> &'a str {
    keys.iter()
        .try_fold(v, |v, k| v.get(k))
        .and_then(Value::as_str)
        .unwrap_or("")
}

pub(super) fn list(v: Option<&Value>) -> &[Value] {
    v.and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// Validates a new CRD (v1, defaulted): everything upstream checks except the
/// generic object-meta rules, which are the server's.
pub fn validate_crd(crd: &Value) -> Vec<FieldCause> {
    let mut errors = Vec::new();
    let name = str_at(crd, &["metadata", "name"]);
    if !name.is_empty() {
        let required = format!(
            "{}.{}",
            str_at(crd, &["spec", "names", "plural"]),
            str_at(crd, &["spec", "group"])
        );
        if name != required {
            errors.push(FieldCause::invalid(
                "metadata.name",
                &json!(name),
                "must be spec.names.plural+\".\"+spec.group",
            ));
        }
    }
    spec(crd.get("spec").unwrap_or(&Value::Null), &mut errors);
    if crd.pointer("/spec/preserveUnknownFields") == Some(&Value::Bool(true)) {
        errors.push(FieldCause::invalid(
            "spec.preserveUnknownFields",
            &Value::Bool(true),
            "cannot set to true, set x-kubernetes-preserve-unknown-fields to true in spec.versions[*].schema instead",
        ));
    }
    errors
}

/// Validates an update of a CRD: the create rules, then what may not change
/// (group and plural always; scope and kind once the CRD is established) and
/// the stored versions, which must all stay in `spec.versions`.
pub fn validate_crd_update(old: &Value, new: &Value) -> Vec<FieldCause> {
    // The name is the server's to keep; a CRD that already preserved
    // unknown fields may keep doing so.
    let kept_preserve = old.pointer("/spec/preserveUnknownFields") == Some(&Value::Bool(true));
    let mut errors: Vec<FieldCause> = validate_crd(new)
        .into_iter()
        .filter(|c| c.field != "metadata.name")
        .filter(|c| !(kept_preserve && c.field == "spec.preserveUnknownFields"))
        .collect();
    let established = list(old.pointer("/status/conditions"))
        .iter()
        .any(|c| str_at(c, &["type"]) == "Established" && str_at(c, &["status"]) == "True");
    let mut immutable = |keys: &[&str], always: bool| {
        let (before, after) = (str_at(old, keys), str_at(new, keys));
        if (always || established) && before != after {
            errors.push(FieldCause::immutable(keys.join("."), &json!(after)));
        }
    };
    immutable(&["spec", "scope"], false);
    immutable(&["spec", "names", "kind"], false);
    immutable(&["spec", "group"], true);
    immutable(&["spec", "names", "plural"], true);
    let stored = new
        .pointer("/status/storedVersions")
        .or_else(|| old.pointer("/status/storedVersions"));
    if let Some(stored) = stored {
        stored_versions(stored, list(new.pointer("/spec/versions")), &mut errors);
    }
    errors
}

fn stored_versions(stored: &Value, versions: &[Value], errors: &mut Vec<FieldCause>) {
    let at = "status.storedVersions";
    let names: Vec<&str> = list(Some(stored))
        .iter()
        .filter_map(Value::as_str)
        .collect();
    if names.is_empty() {
        errors.push(FieldCause::invalid(
            at,
            stored,
            "must have at least one stored version",
        ));
        return;
    }
    let mut remaining: Vec<(usize, &str)> = names.iter().copied().enumerate().collect();
    for v in versions {
        let name = str_at(v, &["name"]);
        let found = remaining.iter().position(|(_, n)| *n == name);
        if v.get("storage") == Some(&Value::Bool(true)) && found.is_none() {
            errors.push(FieldCause::invalid(
                at,
                stored,
                format!("must have the storage version {name}"),
            ));
        }
        if let Some(i) = found {
            remaining.remove(i);
        }
    }
    for (i, v) in remaining {
        errors.push(FieldCause::invalid(
            path::index(at, i),
            &json!(v),
            format!("missing from spec.versions; {v} was previously a storage version, and must remain in spec.versions until a storage migration ensures no data remains persisted in {v} and removes {v} from status.storedVersions"),
        ));
    }
}

fn spec(spec: &Value, errors: &mut Vec<FieldCause>) {
    let group = str_at(spec, &["group"]);
    if group.is_empty() {
        errors.push(FieldCause::required("spec.group", ""));
    } else {
        let errs = is_dns1123_subdomain(group);
        if !errs.is_empty() {
            errors.push(FieldCause::invalid(
                "spec.group",
                &json!(group),
                errs.join(","),
            ));
        } else if !group.contains('.') {
            errors.push(FieldCause::invalid(
                "spec.group",
                &json!(group),
                "should be a domain with at least one dot",
            ));
        }
    }
    enum_string(
        errors,
        "spec.scope",
        str_at(spec, &["scope"]),
        &["Cluster", "Namespaced"],
    );

    let versions = list(spec.get("versions"));
    for (i, version) in versions.iter().enumerate() {
        if version.pointer("/schema/openAPIV3Schema").is_none() {
            errors.push(FieldCause::required(
                path::child(&path::index("spec.versions", i), "schema.openAPIV3Schema"),
                "schemas are required",
            ));
        }
    }
    let mut storage = 0;
    let mut seen = Vec::new();
    let mut unique = true;
    for (i, version) in versions.iter().enumerate() {
        let at = path::index("spec.versions", i);
        let name = str_at(version, &["name"]);
        if version.get("storage") == Some(&Value::Bool(true)) {
            storage += 1;
        }
        if seen.contains(&name) {
            unique = false;
        }
        seen.push(name);
        let errs = is_dns1035_label(name);
        if !errs.is_empty() {
            errors.push(FieldCause::invalid(
                path::child(&at, "name"),
                &json!(name),
                errs.join(","),
            ));
        }
        version::version(version, &at, errors);
    }
    let versions_value = spec.get("versions").cloned().unwrap_or(json!([]));
    if !unique {
        errors.push(FieldCause::invalid(
            "spec.versions",
            &versions_value,
            "must contain unique version names",
        ));
    }
    if storage != 1 {
        errors.push(FieldCause::invalid(
            "spec.versions",
            &versions_value,
            "must have exactly one version marked as storage version",
        ));
    }
    names(spec.get("names").unwrap_or(&Value::Null), errors);
    conversion(spec.get("conversion"), errors);
}

fn enum_string(errors: &mut Vec<FieldCause>, at: &str, value: &str, accepted: &[&str]) {
    if value.is_empty() {
        errors.push(FieldCause::required(at, ""));
    } else if !accepted.contains(&value) {
        errors.push(FieldCause::not_supported(at, &json!(value), accepted));
    }
}

fn names(names: &Value, errors: &mut Vec<FieldCause>) {
    for key in ["plural", "singular", "kind", "listKind"] {
        if str_at(names, &[key]).is_empty() {
            errors.push(FieldCause::required(format!("spec.names.{key}"), ""));
        }
    }
    for key in ["plural", "singular"] {
        let value = str_at(names, &[key]);
        let errs = is_dns1035_label(value);
        if !value.is_empty() && !errs.is_empty() {
            errors.push(FieldCause::invalid(
                format!("spec.names.{key}"),
                &json!(value),
                errs.join(","),
            ));
        }
    }
    for key in ["kind", "listKind"] {
        let value = str_at(names, &[key]);
        let errs = is_dns1035_label(&value.to_lowercase());
        if !value.is_empty() && !errs.is_empty() {
            errors.push(FieldCause::invalid(
                format!("spec.names.{key}"),
                &json!(value),
                format!(
                    "may have mixed case, but should otherwise match: {}",
                    errs.join(",")
                ),
            ));
        }
    }
    let dns_labels = |errors: &mut Vec<FieldCause>, key: &str| {
        for (i, item) in list(names.get(key)).iter().enumerate() {
            let value = item.as_str().unwrap_or("");
            let errs = is_dns1035_label(value);
            if !errs.is_empty() {
                errors.push(FieldCause::invalid(
                    path::index(&format!("spec.names.{key}"), i),
                    &json!(value),
                    errs.join(","),
                ));
            }
        }
    };
    dns_labels(errors, "shortNames");
    let kind = str_at(names, &["kind"]);
    if !kind.is_empty() && kind == str_at(names, &["listKind"]) {
        errors.push(FieldCause::invalid(
            "spec.names.listKind",
            &json!(kind),
            "kind and listKind may not be the same",
        ));
    }
    dns_labels(errors, "categories");
}

fn conversion(conversion: Option<&Value>, errors: &mut Vec<FieldCause>) {
    let Some(conversion) = conversion else { return };
    let strategy = str_at(conversion, &["strategy"]);
    enum_string(
        errors,
        "spec.conversion.strategy",
        strategy,
        &["None", "Webhook"],
    );
    let webhook = conversion.get("webhook");
    if strategy == "Webhook" {
        let Some(config) = webhook.and_then(|w| w.get("clientConfig")) else {
            errors.push(FieldCause::required(
                "spec.conversion.webhookClientConfig",
                "required when strategy is set to Webhook",
            ));
            return;
        };
        if config.get("url").is_some() == config.get("service").is_some() {
            errors.push(FieldCause::required(
                "spec.conversion.webhookClientConfig",
                "exactly one of url or service is required",
            ));
        }
        let versions = list(webhook.and_then(|w| w.get("conversionReviewVersions")));
        let at = "spec.conversion.conversionReviewVersions";
        if versions.is_empty() {
            errors.push(FieldCause::required(at, ""));
            return;
        }
        let mut seen = Vec::new();
        let mut accepted = false;
        for (i, v) in versions.iter().enumerate() {
            let v = v.as_str().unwrap_or("");
            if seen.contains(&v) {
                errors.push(FieldCause::invalid(
                    path::index(at, i),
                    &json!(v),
                    "duplicate version",
                ));
                continue;
            }
            seen.push(v);
            for e in is_dns1035_label(v) {
                errors.push(FieldCause::invalid(path::index(at, i), &json!(v), e));
            }
            accepted |= v == "v1" || v == "v1beta1";
        }
        if !accepted {
            errors.push(FieldCause::invalid(
                at,
                &json!(seen),
                "must include at least one of v1, v1beta1",
            ));
        }
    } else {
        if webhook.and_then(|w| w.get("clientConfig")).is_some() {
            errors.push(FieldCause::forbidden(
                "spec.conversion.webhookClientConfig",
                "should not be set when strategy is not set to Webhook",
            ));
        }
        if !list(webhook.and_then(|w| w.get("conversionReviewVersions"))).is_empty() {
            errors.push(FieldCause::forbidden(
                "spec.conversion.conversionReviewVersions",
                "should not be set when strategy is not set to Webhook",
            ));
        }
    }
}

/// Applies upstream's v1 defaults: singular and listKind from the kind,
/// conversion strategy None, webhook service port 443, and the storage
/// version as the first stored version.
pub fn default_crd(crd: &mut Value) {
    let Some(spec) = crd.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    if let Some(names) = spec.get_mut("names").and_then(Value::as_object_mut) {
        let kind = names
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        if names
            .get("singular")
            .and_then(Value::as_str)
            .unwrap_or("")
            .is_empty()
        {
            names.insert("singular".into(), json!(kind.to_lowercase()));
        }
        if names
            .get("listKind")
            .and_then(Value::as_str)
            .unwrap_or("")
            .is_empty()
            && !kind.is_empty()
        {
            names.insert("listKind".into(), json!(format!("{kind}List")));
        }
    }
    let conversion = spec
        .entry("conversion")
        .or_insert_with(|| json!({"strategy": "None"}));
    if let Some(service) = conversion.pointer_mut("/webhook/clientConfig/service") {
        if let Some(service) = service.as_object_mut() {
            service.entry("port").or_insert(json!(443));
        }
    }
    let storage = list(spec.get("versions"))
        .iter()
        .find(|v| v.get("storage") == Some(&Value::Bool(true)))
        .map(|v| str_at(v, &["name"]).to_owned());
    let Some(storage) = storage else { return };
    let Some(obj) = crd.as_object_mut() else {
        return;
    };
    let status = obj.entry("status").or_insert_with(|| json!({}));
    if let Some(status) = status.as_object_mut() {
        let stored = status.entry("storedVersions").or_insert_with(|| json!([]));
        if stored.as_array().is_some_and(Vec::is_empty) {
            *stored = json!([storage]);
        }
    }
}

#[cfg(test)]
mod tests;
