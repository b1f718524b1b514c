//! ServiceCIDRs: the ranges Service ClusterIPs come from. Upstream's
//! validation (one or two canonical CIDRs, one per family, fixed once set), the
//! `kubectl get servicecidrs` columns, and the default `kubernetes` ServiceCIDR
//! the API server keeps for its own flag-given range.

use serde_json::{json, Value};

use crate::field::FieldCause;
use crate::kinds::KindRules;
use crate::table::print::array_at;
use crate::table::{col, Column, AGE, NAME};
use crate::validation::ip::{is_valid_cidr, parse_cidr};

/// The name of the ServiceCIDR the API server keeps for its own range.
pub const DEFAULT_NAME: &str = "kubernetes";

/// The rules of `networking.k8s.io/v1` ServiceCIDR.
#[derive(Debug, Clone, Copy, Default)]
pub struct ServiceCidr;

fn cidrs(obj: &Value) -> Vec<&str> {
    array_at(obj, &["spec", "cidrs"])
        .iter()
        .map(|c| c.as_str().unwrap_or_default())
        .collect()
}

/// Go's `%#v` of a list of strings, as upstream's messages show it.
fn go_strings(values: &[&str]) -> String {
    let quoted: Vec<String> = values.iter().map(|v| format!("{v:?}")).collect();
    format!("[]string{{{}}}", quoted.join(", "))
}

/// Go's `%#v` of the spec, as upstream's messages show it.
fn go_spec(values: &[&str]) -> String {
    format!("networking.ServiceCIDRSpec{{CIDRs:{}}}", go_strings(values))
}

/// A cause whose value is shown as Go prints it (not a JSON value).
fn invalid_shown(field: &str, shown: String, detail: &str) -> FieldCause {
    FieldCause {
        reason: "FieldValueInvalid",
        field: field.into(),
        message: format!("Invalid value: {shown}: {detail}"),
    }
}

impl KindRules for ServiceCidr {
    fn validate(&self, obj: &Value) -> Vec<FieldCause> {
        let cidrs = cidrs(obj);
        match cidrs[..] {
            [] => {
                return vec![FieldCause::required(
                    "spec.cidrs",
                    "at least one CIDR required",
                )]
            }
            [_] => {}
            [first, second] => {
                // One of each family, judged on a lenient parse, before the
                // CIDRs themselves are checked.
                let dual = match (parse_cidr(first), parse_cidr(second)) {
                    (Some((a, _)), Some((b, _))) => a.is_ipv4() != b.is_ipv4(),
                    _ => false,
                };
                if !dual {
                    return vec![invalid_shown(
                        "spec.cidrs",
                        go_spec(&cidrs),
                        "may specify no more than one IP for each IP family, i.e 192.168.0.0/24 and 2001:db8::/64",
                    )];
                }
            }
            _ => {
                return vec![invalid_shown(
                    "spec.cidrs",
                    go_spec(&cidrs),
                    "may only hold up to 2 values",
                )]
            }
        }
        cidrs
            .iter()
            .enumerate()
            .flat_map(|(i, cidr)| {
                is_valid_cidr(cidr)
                    .into_iter()
                    .map(move |p| FieldCause::invalid(format!("spec.cidrs[{i}]"), &json!(cidr), p))
            })
            .collect()
    }

    fn validate_update(&self, old: &Value, new: &Value) -> Vec<FieldCause> {
        let after = cidrs(new);
        if cidrs(old) == after {
            return Vec::new();
        }
        vec![invalid_shown(
            "spec.cidrs",
            go_strings(&after),
            "field is immutable",
        )]
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            NAME,
            col(
                "CIDRs",
                "string",
                0,
                "CIDRs defines the IP blocks in CIDR notation (e.g. \"192.168.0.0/24\" or \"2001:db8::/64\") from which to assign service cluster IPs. Max of two CIDRs is allowed, one of each IP family. This field is immutable.",
            ),
            AGE,
        ]
    }

    fn cells(&self, obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        vec![
            crate::table::name_cell(obj),
            json!(cidrs(obj).join(",")),
            crate::table::age_cell(obj, now),
        ]
    }
}

/// The default ServiceCIDR for the server's own ranges, with the `Ready`
/// condition upstream's default-ServiceCIDR controller writes (`now` is its
/// transition time).
pub fn default_service_cidr(ranges: &[String], now: &str) -> Value {
    json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "ServiceCIDR",
        "metadata": {"name": DEFAULT_NAME},
        "spec": {"cidrs": ranges},
        "status": {"conditions": [{
            "type": "Ready",
            "status": "True",
            "reason": "",
            "message": "Kubernetes default Service CIDR is ready",
            "lastTransitionTime": now,
        }]},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cidr(cidrs: &[&str]) -> Value {
        json!({"metadata": {"name": "extra"}, "spec": {"cidrs": cidrs}})
    }

    #[test]
    fn one_or_two_canonical_cidrs_of_different_families() {
        for ok in [&["10.96.0.0/12"][..], &["10.96.0.0/12", "2001:db8::/64"]] {
            assert!(ServiceCidr.validate(&cidr(ok)).is_empty(), "{ok:?}");
        }
        let cases: [(&[&str], &str, &str); 5] = [
            (&[], "spec.cidrs", "Required value: at least one CIDR required"),
            (
                &["10.0.0.0/24", "10.1.0.0/24"],
                "spec.cidrs",
                "Invalid value: networking.ServiceCIDRSpec{CIDRs:[]string{\"10.0.0.0/24\", \"10.1.0.0/24\"}}: may specify no more than one IP for each IP family, i.e 192.168.0.0/24 and 2001:db8::/64",
            ),
            (
                &["10.0.0.0/24", "2001:db8::/64", "10.1.0.0/24"],
                "spec.cidrs",
                "Invalid value: networking.ServiceCIDRSpec{CIDRs:[]string{\"10.0.0.0/24\", \"2001:db8::/64\", \"10.1.0.0/24\"}}: may only hold up to 2 values",
            ),
            (
                &["bad", "2001:db8::/64"],
                "spec.cidrs",
                "Invalid value: networking.ServiceCIDRSpec{CIDRs:[]string{\"bad\", \"2001:db8::/64\"}}: may specify no more than one IP for each IP family, i.e 192.168.0.0/24 and 2001:db8::/64",
            ),
            (
                &["bad"],
                "spec.cidrs[0]",
                "Invalid value: \"bad\": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)",
            ),
        ];
        for (cidrs, field, message) in cases {
            let got = ServiceCidr.validate(&cidr(cidrs));
            assert!(
                got.iter().any(|c| c.field == field && c.message == message),
                "{cidrs:?}: {got:?}"
            );
        }
    }

    #[test]
    fn cidrs_are_immutable() {
        let old = cidr(&["10.96.0.0/12"]);
        assert!(ServiceCidr.validate_update(&old, &old.clone()).is_empty());
        let cases: [(&[&str], &str); 2] = [
            (
                &["10.97.0.0/16"],
                "Invalid value: []string{\"10.97.0.0/16\"}: field is immutable",
            ),
            (
                &["10.96.0.0/12", "2001:db8::/64"],
                "Invalid value: []string{\"10.96.0.0/12\", \"2001:db8::/64\"}: field is immutable",
            ),
        ];
        for (new, message) in cases {
            let got = ServiceCidr.validate_update(&old, &cidr(new));
            assert_eq!(got.len(), 1, "{got:?}");
            assert_eq!(
                (got[0].field.as_str(), got[0].message.as_str()),
                ("spec.cidrs", message)
            );
        }
    }

    #[test]
    fn default_is_ready_and_printed_with_its_cidrs() {
        let obj = default_service_cidr(&["10.43.0.0/16".to_owned()], "2026-01-01T00:00:00Z");
        assert!(ServiceCidr.validate(&obj).is_empty());
        assert_eq!(obj["metadata"]["name"], "kubernetes");
        assert_eq!(obj["status"]["conditions"][0]["type"], "Ready");
        let cells = ServiceCidr.cells(&obj, jiff::Timestamp::now());
        assert_eq!(cells[1], json!("10.43.0.0/16"));
    }
}
