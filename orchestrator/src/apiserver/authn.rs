//! Who a request comes from (upstream's union authenticator): a client
//! certificate the TLS handshake verified against the cluster CA (CN the
//! user, O the groups), else a bearer token — the admin token, or a
//! bootstrap token (`ID.SECRET`) checked against its Secret in `kube-system`.
//! It only names the user; what the user may do is decided elsewhere.

use std::sync::Arc;

use berth_api::bootstrap_token;
use http::{header, HeaderMap};
use serde_json::Value;

use super::catalog;
use super::errors::ApiError;
use super::objects::Objects;
use super::reviews::UserInfo;

/// The group every authenticated user is in.
pub const AUTHENTICATED: &str = "system:authenticated";

/// The user a verified client certificate names, attached to each request of
/// its TLS connection.
#[derive(Debug, Clone)]
pub struct CertificateUser(pub UserInfo);

/// Authenticates requests with the credentials the server knows.
#[derive(Clone)]
pub struct Authenticator {
    admin_token: Arc<str>,
}

impl Authenticator {
    /// An authenticator that knows the admin token.
    pub fn new(admin_token: &str) -> Self {
        Self {
            admin_token: Arc::from(admin_token),
        }
    }

    /// The admin's bearer token (TokenReview knows it).
    pub fn admin_token(&self) -> &str {
        &self.admin_token
    }

    /// The user behind a request, or 401 Unauthorized.
    pub async fn authenticate(
        &self,
        objects: &Objects,
        headers: &HeaderMap,
        certificate: Option<&CertificateUser>,
    ) -> Result<UserInfo, ApiError> {
        if let Some(CertificateUser(user)) = certificate {
            return Ok(user.clone());
        }
        let Some(token) = bearer(headers) else {
            return Err(ApiError::Unauthorized);
        };
        if constant_time_eq(token.as_bytes(), self.admin_token.as_bytes()) {
            return Ok(UserInfo::admin());
        }
        let Some((id, secret)) = bootstrap_token::parse(token) else {
            return Err(ApiError::Unauthorized);
        };
        let secrets = catalog::builtin("", "v1", "secrets").expect("secrets served");
        let name = bootstrap_token::secret_name(id);
        let stored = match objects
            .get(secrets, Some(bootstrap_token::NAMESPACE), &name)
            .await
        {
            Ok(stored) => stored,
            Err(ApiError::NotFound(_)) => {
                tracing::info!(token_id = id, "bootstrap token refused: no such token");
                return Err(ApiError::Unauthorized);
            }
            Err(e) => return Err(e),
        };
        match bootstrap_token::authenticate(&stored, id, secret, jiff::Timestamp::now()) {
            Ok((username, mut groups)) => {
                groups.push(AUTHENTICATED.to_owned());
                Ok(UserInfo { username, groups })
            }
            Err(refusal) => {
                tracing::info!(token_id = id, reason = %refusal, "bootstrap token refused");
                Err(ApiError::Unauthorized)
            }
        }
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
}

/// Compares secrets in time independent of where they differ.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The user a client certificate (DER) names: its subject's common name, its
/// organizations as groups, plus `system:authenticated`; `None` without a CN.
pub fn certificate_user(der: &[u8]) -> Option<UserInfo> {
    use x509_parser::prelude::{FromDer, X509Certificate};
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let subject = cert.subject();
    let username = subject
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .filter(|cn| !cn.is_empty())?
        .to_owned();
    let mut groups: Vec<String> = subject
        .iter_organization()
        .filter_map(|o| o.as_str().ok())
        .map(str::to_owned)
        .collect();
    groups.push(AUTHENTICATED.to_owned());
    Some(UserInfo { username, groups })
}

/// Whether `user` is in `system:masters`, which RBAC never restricts.
pub fn is_superuser(user: &UserInfo) -> bool {
    user.groups.iter().any(|g| g == "system:masters")
}

/// Sets who asked on a CertificateSigningRequest being created (upstream's
/// strategy fills `spec.username`, `uid`, `groups` and `extra` from the
/// request's user, whatever the client sent).
pub fn stamp_requestor(csr: &mut Value, user: &UserInfo) {
    let Some(spec) = csr.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    spec.insert("username".into(), Value::from(user.username.clone()));
    spec.insert("groups".into(), Value::from(user.groups.clone()));
    spec.remove("uid");
    spec.remove("extra");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_user_reads_cn_and_organizations() {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "system:node:n1");
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "system:nodes");
        let cert = params.self_signed(&key).unwrap();
        let user = certificate_user(cert.der()).unwrap();
        assert_eq!(user.username, "system:node:n1");
        assert_eq!(user.groups, ["system:nodes", AUTHENTICATED]);
    }

    #[test]
    fn certificate_without_common_name_names_nobody() {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "system:masters");
        let cert = params.self_signed(&key).unwrap();
        assert!(certificate_user(cert.der()).is_none());
    }

    #[test]
    fn stamp_requestor_overrides_what_the_client_sent() {
        let mut csr = serde_json::json!({"spec": {"username": "admin", "groups": ["system:masters"], "uid": "x", "request": "r"}});
        let user = UserInfo {
            username: "system:bootstrap:abcdef".into(),
            groups: vec!["system:bootstrappers".into(), AUTHENTICATED.into()],
        };
        stamp_requestor(&mut csr, &user);
        assert_eq!(
            csr,
            serde_json::json!({"spec": {"username": "system:bootstrap:abcdef", "groups": ["system:bootstrappers", AUTHENTICATED], "request": "r"}})
        );
    }
}
