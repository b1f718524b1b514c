//! IPAddresses: one object per allocated Service ClusterIP, named by the
//! address itself, so an address is taken exactly when its object exists.
//! Upstream's validation (a strictly valid, canonical IP as name, a required and immutable
//! `spec.parentRef`), the `kubectl get ipaddresses` columns, and the object
//! the ClusterIP allocator writes for a Service.

use serde_json::{json, Value};

use crate::field::FieldCause;
use crate::kinds::{immutable_fields, KindRules, NameRule};
use crate::table::print::str_at;
use crate::table::{col, Column, NAME};
use crate::validation::{is_dns1123_subdomain, is_valid_path_segment_name};

/// The label naming an IPAddress's family.
pub const LABEL_IP_FAMILY: &str = "ipaddress.kubernetes.io/ip-family";
/// The label naming who manages an IPAddress.
pub const LABEL_MANAGED_BY: &str = "ipaddress.kubernetes.io/managed-by";
/// The manager of the IPAddresses of Service ClusterIPs.
pub const ALLOCATOR_MANAGER: &str = "ipallocator.k8s.io";

/// The rules of `networking.k8s.io/v1` IPAddress.
#[derive(Debug, Clone, Copy, Default)]
pub struct IpAddress;

impl KindRules for IpAddress {
    fn name_rule(&self) -> NameRule {
        NameRule::IpAddress
    }

    fn validate(&self, obj: &Value) -> Vec<FieldCause> {
        let Some(parent) = obj.pointer("/spec/parentRef") else {
            return vec![FieldCause::required("spec.parentRef", "")];
        };
        let mut causes = Vec::new();
        // The core group of Services is empty, so only a set group is checked.
        let group = str_at(parent, &["group"]).unwrap_or("");
        if !group.is_empty() {
            for problem in is_dns1123_subdomain(group) {
                causes.push(FieldCause::invalid(
                    "spec.parentRef.group",
                    &json!(group),
                    problem,
                ));
            }
        }
        for (field, required) in [("resource", true), ("name", true), ("namespace", false)] {
            let value = str_at(parent, &[field]).unwrap_or("");
            let at = format!("spec.parentRef.{field}");
            if value.is_empty() {
                if required {
                    causes.push(FieldCause::required(at, ""));
                }
                continue;
            }
            for problem in is_valid_path_segment_name(value) {
                causes.push(FieldCause::invalid(at.clone(), &json!(value), problem));
            }
        }
        causes
    }

    fn validate_update(&self, old: &Value, new: &Value) -> Vec<FieldCause> {
        immutable_fields(old, new, &["/spec/parentRef"])
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            NAME,
            col(
                "ParentRef",
                "string",
                0,
                "ParentRef references the resource that an IPAddress is attached to. An IPAddress must reference a parent object.",
            ),
        ]
    }

    fn cells(&self, obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        let parent = match obj.pointer("/spec/parentRef") {
            None => "<none>".to_owned(),
            Some(p) => {
                let resource = str_at(p, &["resource"]).unwrap_or_default();
                let mut text = match str_at(p, &["group"]).filter(|g| !g.is_empty()) {
                    Some(group) => format!("{resource}.{group}"),
                    None => resource.to_owned(),
                }
                .to_lowercase();
                if let Some(ns) = str_at(p, &["namespace"]).filter(|ns| !ns.is_empty()) {
                    text = format!("{text}/{ns}");
                }
                format!("{text}/{}", str_at(p, &["name"]).unwrap_or_default())
            }
        };
        // Upstream sends the age too, though it declares no column for it.
        vec![
            crate::table::name_cell(obj),
            json!(parent),
            crate::table::age_cell(obj, now),
        ]
    }
}

/// The IPAddress the ClusterIP allocator writes for `ip` (canonical text, of
/// `family`) held by the Service `namespace/name`; `uid` and `now` are its
/// metadata, as the API server would stamp them.
pub fn for_service(
    ip: &str,
    family: &str,
    namespace: &str,
    name: &str,
    uid: &str,
    now: &str,
) -> Value {
    json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "IPAddress",
        "metadata": {
            "name": ip,
            "uid": uid,
            "creationTimestamp": now,
            "labels": {LABEL_IP_FAMILY: family, LABEL_MANAGED_BY: ALLOCATOR_MANAGER},
        },
        "spec": {"parentRef": {"resource": "services", "namespace": namespace, "name": name}},
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::validate_metadata;

    #[test]
    fn name_is_a_canonical_ip_and_parent_ref_is_required() {
        let ok = for_service("10.96.0.10", "IPv4", "default", "web", "u", "t");
        assert!(IpAddress.validate(&ok).is_empty());
        assert!(validate_metadata(IpAddress.name_rule(), &ok).is_empty());
        let mut bad_name = ok.clone();
        bad_name["metadata"]["name"] = json!("10.96.0.010");
        assert_eq!(
            validate_metadata(IpAddress.name_rule(), &bad_name)[0].message,
            "Invalid value: \"10.96.0.010\": must not have leading 0s"
        );
        let cases = [
            (json!({"spec": {}}), "spec.parentRef", "Required value"),
            (
                json!({"spec": {"parentRef": {"name": "web"}}}),
                "spec.parentRef.resource",
                "Required value",
            ),
            (
                json!({"spec": {"parentRef": {"resource": "services"}}}),
                "spec.parentRef.name",
                "Required value",
            ),
            (
                json!({"spec": {"parentRef": {"resource": "services", "name": "a/b"}}}),
                "spec.parentRef.name",
                "Invalid value: \"a/b\": may not contain '/'",
            ),
        ];
        for (obj, field, message) in cases {
            let got = IpAddress.validate(&obj);
            assert!(
                got.iter().any(|c| c.field == field && c.message == message),
                "{field}: {got:?}"
            );
        }
    }

    #[test]
    fn parent_ref_is_immutable_and_printed_as_resource_namespace_name() {
        let old = for_service("10.96.0.10", "IPv4", "default", "web", "u", "t");
        let mut moved = old.clone();
        moved["spec"]["parentRef"]["name"] = json!("other");
        assert_eq!(
            IpAddress.validate_update(&old, &moved)[0].field,
            "spec.parentRef"
        );
        let now = jiff::Timestamp::now();
        assert_eq!(IpAddress.cells(&old, now)[1], json!("services/default/web"));
        let gateway = json!({"metadata": {"name": "10.0.0.1"},
            "spec": {"parentRef": {"group": "gateway.networking.k8s.io", "resource": "Gateways", "name": "gw"}}});
        assert_eq!(
            IpAddress.cells(&gateway, now)[1],
            json!("gateways.gateway.networking.k8s.io/gw")
        );
    }
}
