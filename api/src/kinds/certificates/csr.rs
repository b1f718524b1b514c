//! CertificateSigningRequests: upstream's validation of the request, signer,
//! usages and conditions (approval through the `approval` subresource, which
//! writes only `status.conditions`), the spec frozen after creation, and the
//! columns with the CONDITION summary (`Pending`, `Approved,Issued`, …).

use base64::Engine;
use serde_json::{json, Value};

use crate::field::FieldCause;
use crate::kinds::KindRules;
use crate::table::print::{array_at, str_at};
use crate::table::{col, human_duration, Column, AGE, NAME};

/// The rules of `certificates.k8s.io/v1` CertificateSigningRequest.
#[derive(Debug, Clone, Copy, Default)]
pub struct CertificateSigningRequest;

/// Upstream's `KeyUsage` values.
const USAGES: &[&str] = &[
    "signing",
    "digital signature",
    "content commitment",
    "key encipherment",
    "key agreement",
    "data encipherment",
    "cert sign",
    "crl sign",
    "encipher only",
    "decipher only",
    "any",
    "server auth",
    "client auth",
    "code signing",
    "email protection",
    "s/mime",
    "ipsec end system",
    "ipsec tunnel",
    "ipsec user",
    "timestamping",
    "ocsp signing",
    "microsoft sgc",
    "netscape sgc",
];

/// A byte slice as Go's `%#v` prints it, as upstream's error shows the request.
fn go_bytes(bytes: &[u8]) -> String {
    let items: Vec<String> = bytes.iter().map(|b| format!("0x{b:x}")).collect();
    format!("[]byte{{{}}}", items.join(", "))
}

/// Why the request is not a PEM-encoded CSR, as upstream's `parseCSR` says.
fn request_problem(request: &[u8]) -> Option<&'static str> {
    let text = String::from_utf8_lossy(request);
    let Some(begin) = text.find("-----BEGIN ") else {
        return Some("PEM block type must be CERTIFICATE REQUEST");
    };
    let rest = &text[begin + "-----BEGIN ".len()..];
    let label = rest.split("-----").next().unwrap_or("");
    (label != "CERTIFICATE REQUEST" && label != "NEW CERTIFICATE REQUEST")
        .then_some("PEM block type must be CERTIFICATE REQUEST")
}

fn validate_conditions(obj: &Value, causes: &mut Vec<FieldCause>) {
    let (mut approved, mut denied) = (false, false);
    let mut seen = std::collections::HashSet::new();
    for (i, c) in array_at(obj, &["status", "conditions"]).iter().enumerate() {
        let at = format!("status.conditions[{i}]");
        let kind = str_at(c, &["type"]).unwrap_or("");
        if kind.is_empty() {
            causes.push(FieldCause::required(format!("{at}.type"), ""));
        }
        match str_at(c, &["status"]).unwrap_or("") {
            "" => causes.push(FieldCause::required(format!("{at}.status"), "")),
            "True" | "False" | "Unknown" => {}
            other => causes.push(FieldCause::not_supported(
                format!("{at}.status"),
                &json!(other),
                &["False", "True", "Unknown"],
            )),
        }
        match kind {
            "Approved" => {
                approved = true;
                if denied {
                    causes.push(FieldCause::invalid(
                        format!("{at}.type"),
                        &json!(kind),
                        "Approved and Denied conditions are mutually exclusive",
                    ));
                }
            }
            "Denied" => {
                denied = true;
                if approved {
                    causes.push(FieldCause::invalid(
                        format!("{at}.type"),
                        &json!(kind),
                        "Approved and Denied conditions are mutually exclusive",
                    ));
                }
            }
            _ => {}
        }
        if !kind.is_empty() && !seen.insert(kind) {
            causes.push(FieldCause::duplicate(format!("{at}.type"), &json!(kind)));
        }
    }
}

impl KindRules for CertificateSigningRequest {
    fn validate(&self, obj: &Value) -> Vec<FieldCause> {
        let mut causes = Vec::new();
        let encoded = str_at(obj, &["spec", "request"]).unwrap_or("");
        let request = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .unwrap_or_default();
        if let Some(problem) = request_problem(&request) {
            causes.push(FieldCause {
                reason: "FieldValueInvalid",
                field: "spec.request".into(),
                message: format!("Invalid value: {}: {problem}", go_bytes(&request)),
            });
        }
        let signer = str_at(obj, &["spec", "signerName"]).unwrap_or("");
        if signer.is_empty() {
            causes.push(FieldCause::required("spec.signerName", ""));
        } else if !signer.contains('/') {
            causes.push(FieldCause::invalid(
                "spec.signerName",
                &json!(signer),
                "must be a fully qualified domain and path of the form 'example.com/signer-name'",
            ));
        }
        let usages = array_at(obj, &["spec", "usages"]);
        if usages.is_empty() {
            causes.push(FieldCause::required("spec.usages", ""));
        }
        let mut seen = std::collections::HashSet::new();
        for (i, u) in usages.iter().enumerate() {
            let usage = u.as_str().unwrap_or("");
            if !USAGES.contains(&usage) {
                causes.push(FieldCause::not_supported(
                    format!("spec.usages[{i}]"),
                    u,
                    USAGES,
                ));
            } else if !seen.insert(usage) {
                causes.push(FieldCause::duplicate(format!("spec.usages[{i}]"), u));
            }
        }
        if let Some(seconds) = obj
            .pointer("/spec/expirationSeconds")
            .and_then(Value::as_i64)
        {
            if seconds < 600 {
                causes.push(FieldCause::invalid(
                    "spec.expirationSeconds",
                    &json!(seconds),
                    "may not specify a duration less than 600 seconds (10 minutes)",
                ));
            }
        }
        validate_conditions(obj, &mut causes);
        causes
    }

    fn validate_update(&self, old: &Value, new: &Value) -> Vec<FieldCause> {
        let kept = |kind: &str| {
            array_at(new, &["status", "conditions"])
                .iter()
                .any(|c| str_at(c, &["type"]) == Some(kind))
        };
        array_at(old, &["status", "conditions"])
            .iter()
            .filter_map(|c| str_at(c, &["type"]))
            .filter(|kind| matches!(*kind, "Approved" | "Denied" | "Failed") && !kept(kind))
            .map(|kind| {
                FieldCause::forbidden(
                    "status.conditions",
                    format!("updates may not remove a condition of type \"{kind}\""),
                )
            })
            .collect()
    }

    /// The spec is fixed at creation: updates of the main resource keep it.
    fn prepare_for_update(&self, old: &Value, new: &mut Value) {
        if let (Some(spec), Some(map)) = (old.get("spec"), new.as_object_mut()) {
            map.insert("spec".into(), spec.clone());
        }
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            NAME,
            AGE,
            col(
                "SignerName",
                "string",
                0,
                "Only signers that are approved will be used to issue certificates.",
            ),
            col(
                "Requestor",
                "string",
                0,
                "Name of the user who requested the CSR.",
            ),
            col(
                "RequestedDuration",
                "string",
                0,
                "The requested duration of the issued certificate.",
            ),
            col("Condition", "string", 0, "The current state of the CSR."),
        ]
    }

    fn cells(&self, obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        let duration = obj
            .pointer("/spec/expirationSeconds")
            .and_then(Value::as_i64)
            .map_or_else(|| "<none>".to_owned(), human_duration);
        vec![
            crate::table::name_cell(obj),
            crate::table::age_cell(obj, now),
            json!(str_at(obj, &["spec", "signerName"]).unwrap_or("<none>")),
            json!(str_at(obj, &["spec", "username"]).unwrap_or_default()),
            json!(duration),
            json!(condition_summary(obj)),
        ]
    }
}

/// Upstream's CONDITION cell: Denied, else Approved, else Pending; then
/// `,Failed` and `,Issued` when they apply.
pub fn condition_summary(obj: &Value) -> String {
    let has = |kind: &str| {
        array_at(obj, &["status", "conditions"])
            .iter()
            .any(|c| str_at(c, &["type"]) == Some(kind))
    };
    let mut summary = if has("Denied") {
        "Denied".to_owned()
    } else if has("Approved") {
        "Approved".to_owned()
    } else {
        "Pending".to_owned()
    };
    if has("Failed") {
        summary.push_str(",Failed");
    }
    if !str_at(obj, &["status", "certificate"])
        .unwrap_or("")
        .is_empty()
    {
        summary.push_str(",Issued");
    }
    summary
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csr() -> Value {
        let pem = "-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n";
        json!({"metadata": {"name": "john"}, "spec": {
            "request": base64::engine::general_purpose::STANDARD.encode(pem),
            "signerName": "kubernetes.io/kube-apiserver-client", "expirationSeconds": 86400,
            "usages": ["client auth"]}})
    }

    #[test]
    fn requests_signers_and_usages_follow_upstream() {
        assert!(CertificateSigningRequest.validate(&csr()).is_empty());
        let mut bad = csr();
        bad["spec"]["request"] = json!(base64::engine::general_purpose::STANDARD.encode("hi"));
        bad["spec"]["usages"] = json!([]);
        bad["spec"].as_object_mut().unwrap().remove("signerName");
        let got: Vec<String> = CertificateSigningRequest
            .validate(&bad)
            .into_iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect();
        assert_eq!(got, [
            "spec.request: Invalid value: []byte{0x68, 0x69}: PEM block type must be CERTIFICATE REQUEST",
            "spec.signerName: Required value",
            "spec.usages: Required value",
        ]);
    }

    #[test]
    fn conditions_are_exclusive_and_summarised() {
        let mut obj = csr();
        obj["status"] = json!({"conditions": [{"type": "Approved", "status": "True"}, {"type": "Denied", "status": "True"}]});
        let got = CertificateSigningRequest.validate(&obj);
        assert_eq!(got[0].field, "status.conditions[1].type");
        assert_eq!(
            got[0].message,
            "Invalid value: \"Denied\": Approved and Denied conditions are mutually exclusive"
        );
        let cases = [
            (json!({}), "Pending"),
            (
                json!({"conditions": [{"type": "Approved"}], "certificate": "Zm9v"}),
                "Approved,Issued",
            ),
            (
                json!({"conditions": [{"type": "Denied"}, {"type": "Failed"}]}),
                "Denied,Failed",
            ),
        ];
        for (status, want) in cases {
            let mut obj = csr();
            obj["status"] = status;
            assert_eq!(condition_summary(&obj), want);
        }
        let mut approved = csr();
        approved["status"] = json!({"conditions": [{"type": "Approved", "status": "True"}]});
        let got = CertificateSigningRequest.validate_update(&approved, &csr());
        assert_eq!(
            got[0].message,
            "Forbidden: updates may not remove a condition of type \"Approved\""
        );
    }
}
