//! The csrsigning controller: issues approved kubelet certificate requests
//! (client, `kubernetes.io/kube-apiserver-client-kubelet`, and serving,
//! `kubernetes.io/kubelet-serving`) with the cluster CA, for the shorter of
//! the signer's duration and the request's `expirationSeconds`, backdated five
//! minutes for clock skew. A request that fails upstream's checks gets a
//! `Failed` condition instead of a certificate; other signers are left alone.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::certificates::v1::{
    CertificateSigningRequest, CertificateSigningRequestCondition,
};
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::ResourceExt;
use rcgen::{
    CertificateSigningRequestParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SerialNumber,
};
use tokio_util::sync::CancellationToken;

use super::kubelet_csr;
use crate::controllers::ControllerError;

/// How far back certificates start, for clocks that run behind.
const BACKDATE: Duration = Duration::from_secs(5 * 60);
/// Certificates shorter than this end their lifetime after now rather than
/// after the backdated start (upstream's "short" certificates).
const SHORT: Duration = Duration::from_secs(8 * 3600);

/// The CA the signer signs with, and the longest certificate it issues
/// (kube-controller-manager's `--cluster-signing-*` flags).
#[derive(Clone)]
pub struct SigningConfig {
    /// PEM of the cluster CA certificate.
    pub ca_cert_pem: String,
    /// PEM of its key.
    pub ca_key_pem: String,
    /// The longest lifetime of an issued certificate (upstream's default: a year).
    pub duration: Duration,
}

impl std::fmt::Debug for SigningConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningConfig")
            .field("duration", &self.duration)
            .finish_non_exhaustive()
    }
}

/// Why a request was not signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The request is bad: it gets a `Failed` condition with this message.
    Invalid(String),
    /// Signing failed for a reason of ours (retried).
    Internal(String),
}

/// Whether the signer should act on `csr`: one of its signers, approved,
/// neither failed nor issued yet.
pub fn wants(csr: &CertificateSigningRequest) -> bool {
    let signer = csr.spec.signer_name.as_str();
    if signer != kubelet_csr::CLIENT_SIGNER && signer != kubelet_csr::SERVING_SIGNER {
        return false;
    }
    let Some(status) = &csr.status else {
        return false;
    };
    let has = |kind: &str| {
        status
            .conditions
            .iter()
            .flatten()
            .any(|c| c.type_ == kind && c.status == "True")
    };
    has("Approved") && !has("Failed") && status.certificate.is_none()
}

/// How long the issued certificate lives: the signer's duration, shortened
/// to `expirationSeconds` when the request asks for less.
pub fn lifetime(max: Duration, expiration_seconds: Option<i32>) -> Duration {
    match expiration_seconds {
        Some(seconds) if seconds > 0 => max.min(Duration::from_secs(seconds.unsigned_abs().into())),
        _ => max,
    }
}

fn to_offset(at: jiff::Timestamp) -> Result<time::OffsetDateTime, Refusal> {
    time::OffsetDateTime::from_unix_timestamp(at.as_second())
        .map_err(|e| Refusal::Internal(e.to_string()))
}

/// Issues the certificate `csr` asks for at `now`, as PEM.
pub fn sign(
    csr: &CertificateSigningRequest,
    config: &SigningConfig,
    now: jiff::Timestamp,
) -> Result<String, Refusal> {
    let spec = &csr.spec;
    let usages = spec.usages.as_deref().unwrap_or_default();
    let facts = kubelet_csr::parse(&spec.request.0).map_err(Refusal::Invalid)?;
    let client = spec.signer_name == kubelet_csr::CLIENT_SIGNER;
    if client {
        kubelet_csr::validate_client(&facts, usages).map_err(Refusal::Invalid)?;
    } else {
        kubelet_csr::validate_serving(&facts, usages).map_err(Refusal::Invalid)?;
    }
    let pem = String::from_utf8_lossy(&spec.request.0);
    let mut request = CertificateSigningRequestParams::from_pem(&pem)
        .map_err(|e| Refusal::Invalid(format!("unable to parse the certificate request: {e}")))?;
    let params = &mut request.params;
    params.is_ca = IsCa::NoCa;
    if client {
        params.subject_alt_names.clear();
    }
    params.key_usages = usages
        .iter()
        .filter_map(|u| match u.as_str() {
            "digital signature" => Some(KeyUsagePurpose::DigitalSignature),
            "key encipherment" => Some(KeyUsagePurpose::KeyEncipherment),
            _ => None,
        })
        .collect();
    params.extended_key_usages = usages
        .iter()
        .filter_map(|u| match u.as_str() {
            "client auth" => Some(ExtendedKeyUsagePurpose::ClientAuth),
            "server auth" => Some(ExtendedKeyUsagePurpose::ServerAuth),
            _ => None,
        })
        .collect();
    let life = lifetime(config.duration, spec.expiration_seconds);
    let start = now - jiff::SignedDuration::try_from(BACKDATE).unwrap_or_default();
    let from = if life < SHORT { now } else { start };
    let end = from + jiff::SignedDuration::try_from(life).unwrap_or_default();
    params.not_before = to_offset(start)?;
    params.not_after = to_offset(end)?;
    let mut serial: [u8; 16] = rand::random();
    serial[0] &= 0x7f;
    params.serial_number = Some(SerialNumber::from_slice(&serial));
    params.use_authority_key_identifier_extension = true;
    let internal = |e: rcgen::Error| Refusal::Internal(format!("the cluster CA: {e}"));
    let key = KeyPair::from_pem(&config.ca_key_pem).map_err(internal)?;
    let issuer = Issuer::from_ca_cert_pem(&config.ca_cert_pem, key).map_err(internal)?;
    let cert = request
        .signed_by(&issuer)
        .map_err(|e| Refusal::Internal(format!("signing: {e}")))?;
    Ok(cert.pem())
}

/// The condition a refused request gets.
pub fn failed_condition(message: &str, now: jiff::Timestamp) -> CertificateSigningRequestCondition {
    super::condition("Failed", "SignerValidationFailure", message, now)
}

struct Context {
    client: kube::Client,
    config: SigningConfig,
}

async fn reconcile(
    csr: Arc<CertificateSigningRequest>,
    ctx: Arc<Context>,
) -> Result<Action, kube::Error> {
    if !wants(&csr) {
        return Ok(Action::await_change());
    }
    let name = csr.name_any();
    let now = jiff::Timestamp::now();
    let status = match sign(&csr, &ctx.config, now) {
        Ok(pem) => {
            tracing::info!(csr = %name, signer = %csr.spec.signer_name, "issued");
            serde_json::json!({"certificate": k8s_openapi::ByteString(pem.into_bytes())})
        }
        Err(Refusal::Invalid(message)) => {
            tracing::info!(csr = %name, %message, "refused");
            let mut conditions = csr
                .status
                .as_ref()
                .and_then(|s| s.conditions.clone())
                .unwrap_or_default();
            conditions.push(failed_condition(&message, now));
            serde_json::json!({"conditions": conditions})
        }
        Err(Refusal::Internal(message)) => {
            tracing::warn!(csr = %name, %message, "signing failed; retrying");
            return Ok(Action::requeue(Duration::from_secs(5)));
        }
    };
    let csrs: Api<CertificateSigningRequest> = Api::all(ctx.client.clone());
    csrs.patch_status(
        &name,
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({ "status": status })),
    )
    .await?;
    Ok(Action::await_change())
}

/// Runs the signer until `cancel` fires.
pub async fn run(
    client: kube::Client,
    config: SigningConfig,
    cancel: CancellationToken,
) -> Result<(), ControllerError> {
    let context = Arc::new(Context {
        client: client.clone(),
        config,
    });
    super::run_over_requests(client, "csrsigning", reconcile, context, cancel).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::certificates::v1::{
        CertificateSigningRequestSpec, CertificateSigningRequestStatus,
    };
    use x509_parser::prelude::{FromDer, X509Certificate};

    fn ca() -> SigningConfig {
        let key = KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "test-ca");
        let cert = params.self_signed(&key).unwrap();
        SigningConfig {
            ca_cert_pem: cert.pem(),
            ca_key_pem: key.serialize_pem(),
            duration: Duration::from_secs(3600),
        }
    }

    fn csr(org: &str, usages: &[&str], expiration: Option<i32>) -> CertificateSigningRequest {
        let pem = super::super::kubelet_csr::tests::request("system:node:n1", &[org], &[]);
        CertificateSigningRequest {
            spec: CertificateSigningRequestSpec {
                request: k8s_openapi::ByteString(pem.into_bytes()),
                signer_name: kubelet_csr::CLIENT_SIGNER.into(),
                usages: Some(usages.iter().map(|u| (*u).to_owned()).collect()),
                expiration_seconds: expiration,
                ..CertificateSigningRequestSpec::default()
            },
            ..CertificateSigningRequest::default()
        }
    }

    #[test]
    fn lifetime_is_the_shorter_of_signer_and_request() {
        let hour = Duration::from_secs(3600);
        for (asked, want) in [
            (None, 3600),
            (Some(600), 600),
            (Some(7200), 3600),
            (Some(0), 3600),
        ] {
            assert_eq!(
                lifetime(hour, asked),
                Duration::from_secs(want),
                "{asked:?}"
            );
        }
    }

    #[test]
    fn signs_a_node_client_certificate() {
        let config = ca();
        let now = jiff::Timestamp::now();
        let pem = sign(
            &csr(
                "system:nodes",
                &["digital signature", "client auth"],
                Some(900),
            ),
            &config,
            now,
        )
        .unwrap();
        let (_, block) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).unwrap();
        let (_, cert) = X509Certificate::from_der(&block.contents).unwrap();
        let cn = cert
            .subject()
            .iter_common_name()
            .next()
            .unwrap()
            .as_str()
            .unwrap();
        assert_eq!(cn, "system:node:n1");
        let o = cert
            .subject()
            .iter_organization()
            .next()
            .unwrap()
            .as_str()
            .unwrap();
        assert_eq!(o, "system:nodes");
        let life = cert.validity().not_after.timestamp() - now.as_second();
        assert!((899..=900).contains(&life), "{life}");
        let start = now.as_second() - cert.validity().not_before.timestamp();
        assert!(
            (299..=300).contains(&start),
            "backdated five minutes: {start}"
        );
        assert!(
            cert.extended_key_usage()
                .unwrap()
                .unwrap()
                .value
                .client_auth
        );
        let issuer = cert
            .issuer()
            .iter_common_name()
            .next()
            .unwrap()
            .as_str()
            .unwrap();
        assert_eq!(issuer, "test-ca");
    }

    #[test]
    fn long_certificates_last_their_duration_from_the_backdated_start() {
        let mut config = ca();
        config.duration = Duration::from_secs(24 * 3600);
        let c = csr("system:nodes", &["digital signature", "client auth"], None);
        let pem = sign(&c, &config, jiff::Timestamp::now()).unwrap();
        let (_, block) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).unwrap();
        let (_, cert) = X509Certificate::from_der(&block.contents).unwrap();
        let validity = cert.validity();
        assert_eq!(
            validity.not_after.timestamp() - validity.not_before.timestamp(),
            24 * 3600
        );
    }

    #[test]
    fn bad_requests_are_refused_as_invalid() {
        let config = ca();
        let got = sign(
            &csr(
                "system:masters",
                &["digital signature", "client auth"],
                None,
            ),
            &config,
            jiff::Timestamp::now(),
        );
        assert_eq!(
            got,
            Err(Refusal::Invalid(
                "subject organization is not system:nodes".into()
            ))
        );
    }

    #[test]
    fn only_approved_unissued_requests_are_wanted() {
        let mut c = csr("system:nodes", &["digital signature", "client auth"], None);
        assert!(!wants(&c));
        let approved = CertificateSigningRequestCondition {
            type_: "Approved".into(),
            status: "True".into(),
            ..CertificateSigningRequestCondition::default()
        };
        c.status = Some(CertificateSigningRequestStatus {
            conditions: Some(vec![approved.clone()]),
            certificate: None,
        });
        assert!(wants(&c));
        c.status = Some(CertificateSigningRequestStatus {
            conditions: Some(vec![
                approved.clone(),
                failed_condition("x", jiff::Timestamp::now()),
            ]),
            certificate: None,
        });
        assert!(!wants(&c));
        c.status = Some(CertificateSigningRequestStatus {
            conditions: Some(vec![approved]),
            certificate: Some(k8s_openapi::ByteString(b"pem".to_vec())),
        });
        assert!(!wants(&c));
    }
}
