//! The csrapproving controller: approves kubelet client certificate requests
//! (`kubernetes.io/kube-apiserver-client-kubelet`) whose requestor RBAC lets
//! create `certificatesigningrequests/nodeclient` (a bootstrap token asking
//! for a new node) or `…/selfnodeclient` (a node renewing its own). It never
//! denies: what it does not recognise is left for a person.

use std::sync::Arc;

use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use k8s_openapi::api::certificates::v1::{
    CertificateSigningRequest, CertificateSigningRequestCondition,
};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::ResourceExt;
use tokio_util::sync::CancellationToken;

use super::kubelet_csr;
use crate::controllers::ControllerError;

/// What a recognised request needs RBAC to allow, and the approval message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recognized {
    /// The `certificatesigningrequests` subresource the requestor must be
    /// allowed to create.
    pub subresource: &'static str,
    /// The Approved condition's message.
    pub message: &'static str,
}

/// Whether the request already carries a decision (Approved or Denied).
pub fn is_decided(csr: &CertificateSigningRequest) -> bool {
    csr.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|conditions| {
            conditions
                .iter()
                .any(|c| c.type_ == "Approved" || c.type_ == "Denied")
        })
}

/// The checks the request must pass to be auto-approved, most specific
/// first (a node renewing its own certificate, then any node client).
pub fn recognize(csr: &CertificateSigningRequest) -> Vec<Recognized> {
    let spec = &csr.spec;
    if spec.signer_name != kubelet_csr::CLIENT_SIGNER {
        return Vec::new();
    }
    let Ok(facts) = kubelet_csr::parse(&spec.request.0) else {
        return Vec::new();
    };
    if kubelet_csr::validate_client(&facts, spec.usages.as_deref().unwrap_or_default()).is_err() {
        return Vec::new();
    }
    let mut found = Vec::new();
    if spec.username.as_deref() == Some(facts.common_name.as_str()) {
        found.push(Recognized {
            subresource: "selfnodeclient",
            message: "Auto approving self kubelet client certificate after SubjectAccessReview.",
        });
    }
    found.push(Recognized {
        subresource: "nodeclient",
        message: "Auto approving kubelet client certificate after SubjectAccessReview.",
    });
    found
}

/// The SubjectAccessReview asking whether the requestor may create `subresource`.
pub fn access_review(csr: &CertificateSigningRequest, subresource: &str) -> SubjectAccessReview {
    let spec = &csr.spec;
    SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: spec.username.clone(),
            groups: spec.groups.clone(),
            uid: spec.uid.clone(),
            extra: spec.extra.clone(),
            resource_attributes: Some(ResourceAttributes {
                group: Some("certificates.k8s.io".into()),
                resource: Some("certificatesigningrequests".into()),
                verb: Some("create".into()),
                subresource: Some(subresource.into()),
                ..ResourceAttributes::default()
            }),
            ..SubjectAccessReviewSpec::default()
        },
        ..SubjectAccessReview::default()
    }
}

/// The Approved condition the controller adds.
pub fn approved_condition(
    message: &str,
    now: jiff::Timestamp,
) -> CertificateSigningRequestCondition {
    super::condition("Approved", "AutoApproved", message, now)
}

struct Context {
    client: kube::Client,
}

async fn reconcile(
    csr: Arc<CertificateSigningRequest>,
    ctx: Arc<Context>,
) -> Result<Action, kube::Error> {
    if is_decided(&csr) {
        return Ok(Action::await_change());
    }
    let reviews: Api<SubjectAccessReview> = Api::all(ctx.client.clone());
    for recognized in recognize(&csr) {
        let review = reviews
            .create(
                &PostParams::default(),
                &access_review(&csr, recognized.subresource),
            )
            .await?;
        if !review.status.is_some_and(|s| s.allowed) {
            continue;
        }
        let mut conditions = csr
            .status
            .as_ref()
            .and_then(|s| s.conditions.clone())
            .unwrap_or_default();
        conditions.push(approved_condition(
            recognized.message,
            jiff::Timestamp::now(),
        ));
        let csrs: Api<CertificateSigningRequest> = Api::all(ctx.client.clone());
        let patch = serde_json::json!({"status": {"conditions": conditions}});
        csrs.patch_subresource(
            "approval",
            &csr.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await?;
        tracing::info!(csr = %csr.name_any(), requestor = ?csr.spec.username, subresource = recognized.subresource, "approved");
        return Ok(Action::await_change());
    }
    Ok(Action::await_change())
}

/// Runs the approver until `cancel` fires.
pub async fn run(client: kube::Client, cancel: CancellationToken) -> Result<(), ControllerError> {
    let context = Arc::new(Context {
        client: client.clone(),
    });
    super::run_over_requests(client, "csrapproving", reconcile, context, cancel).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::certificates::v1::{
        CertificateSigningRequestSpec, CertificateSigningRequestStatus,
    };

    fn csr(cn: &str, username: &str, signer: &str) -> CertificateSigningRequest {
        let pem = super::super::kubelet_csr::tests::request(cn, &["system:nodes"], &[]);
        CertificateSigningRequest {
            spec: CertificateSigningRequestSpec {
                request: k8s_openapi::ByteString(pem.into_bytes()),
                signer_name: signer.into(),
                usages: Some(vec!["digital signature".into(), "client auth".into()]),
                username: Some(username.into()),
                ..CertificateSigningRequestSpec::default()
            },
            ..CertificateSigningRequest::default()
        }
    }

    #[test]
    fn recognizes_bootstrap_and_renewal_requests() {
        let subresources = |c: &CertificateSigningRequest| -> Vec<&str> {
            recognize(c).iter().map(|r| r.subresource).collect()
        };
        let signer = kubelet_csr::CLIENT_SIGNER;
        assert_eq!(
            subresources(&csr("system:node:n1", "system:bootstrap:abcdef", signer)),
            ["nodeclient"]
        );
        assert_eq!(
            subresources(&csr("system:node:n1", "system:node:n1", signer)),
            ["selfnodeclient", "nodeclient"]
        );
        assert!(subresources(&csr("system:node:n1", "x", "example.com/other")).is_empty());
        assert!(subresources(&csr("admin", "system:bootstrap:abcdef", signer)).is_empty());
    }

    #[test]
    fn decided_requests_are_left_alone() {
        let mut c = csr(
            "system:node:n1",
            "system:node:n1",
            kubelet_csr::CLIENT_SIGNER,
        );
        assert!(!is_decided(&c));
        c.status = Some(CertificateSigningRequestStatus {
            conditions: Some(vec![approved_condition("m", jiff::Timestamp::now())]),
            ..CertificateSigningRequestStatus::default()
        });
        assert!(is_decided(&c));
    }

    #[test]
    fn access_review_asks_for_the_requestor() {
        let c = csr(
            "system:node:n1",
            "system:bootstrap:abcdef",
            kubelet_csr::CLIENT_SIGNER,
        );
        let review = access_review(&c, "nodeclient");
        let attrs = review.spec.resource_attributes.unwrap();
        assert_eq!(review.spec.user.as_deref(), Some("system:bootstrap:abcdef"));
        assert_eq!(attrs.subresource.as_deref(), Some("nodeclient"));
        assert_eq!(attrs.verb.as_deref(), Some("create"));
    }
}
