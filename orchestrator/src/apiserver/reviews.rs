//! The review resources, answered and never stored (upstream's
//! `pkg/registry/authorization/*` and `pkg/registry/authentication/*`): access
//! reviews and rules reviews evaluated with RBAC against the stored roles and
//! bindings, and who the caller is (SelfSubjectReview, TokenReview).
//!
//! berth knows one credential, the admin bearer token, which authenticates as
//! upstream's admin: user `kubernetes-admin` in `system:masters`. The "self"
//! reviews honour kubectl's impersonation headers (`--as`, `--as-group`).

use axum::response::Response;
use berth_api::rbac::aggregation::aggregate;
use berth_api::rbac::evaluate::{self, Policy, Request};
use http::{HeaderMap, StatusCode};
use k8s_openapi::api::authorization::v1::{NonResourceAttributes, ResourceAttributes};
use serde_json::{json, Map, Value};

use super::catalog::{self, ResourceInfo};
use super::errors::{ApiError, FieldCause};
use super::negotiate;
use super::objects::{target, Objects};
use super::request::{Query, ResourceRequest, Verb};
use super::{handlers, listing};

/// The user the admin token authenticates as.
pub const ADMIN_USER: &str = "kubernetes-admin";
/// The admin's groups, as upstream reports them.
pub const ADMIN_GROUPS: &[&str] = &["system:masters", "system:authenticated"];

/// Who a request acts as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    /// The user name.
    pub username: String,
    /// The groups the user is in.
    pub groups: Vec<String>,
}

impl UserInfo {
    /// The admin the admin token authenticates as.
    pub fn admin() -> Self {
        UserInfo {
            username: ADMIN_USER.to_owned(),
            groups: ADMIN_GROUPS.iter().map(|g| (*g).to_owned()).collect(),
        }
    }

    fn to_json(&self) -> Value {
        json!({"username": self.username, "groups": self.groups})
    }
}

/// The admin, or whom the request impersonates: `Impersonate-User` with its
/// `Impersonate-Group`s, a service account getting its groups as upstream
/// gives them, and every user but `system:anonymous` `system:authenticated`.
pub fn requesting_user(headers: &HeaderMap) -> UserInfo {
    requesting_user_as(&UserInfo::admin(), headers)
}

/// `authenticated`, or whom the request impersonates (see [`requesting_user`]).
pub fn requesting_user_as(authenticated: &UserInfo, headers: &HeaderMap) -> UserInfo {
    let Some(user) = headers
        .get("impersonate-user")
        .and_then(|v| v.to_str().ok())
    else {
        return authenticated.clone();
    };
    let mut groups: Vec<String> = headers
        .get_all("impersonate-group")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(str::to_owned)
        .collect();
    if groups.is_empty() {
        if let Some(rest) = user.strip_prefix("system:serviceaccount:") {
            if let Some((namespace, _)) = rest.split_once(':') {
                groups.push("system:serviceaccounts".to_owned());
                groups.push(format!("system:serviceaccounts:{namespace}"));
            }
        }
    }
    let authenticated = "system:authenticated";
    if user != "system:anonymous" && !groups.iter().any(|g| g == authenticated) {
        groups.push(authenticated.to_owned());
    }
    UserInfo {
        username: user.to_owned(),
        groups,
    }
}

/// Lets a request that impersonates a user (`kubectl --as`) through only
/// where RBAC allows that user, refusing it with upstream's Forbidden text
/// otherwise; requests without impersonation act as the admin.
pub async fn authorize_impersonated(
    objects: &Objects,
    req: &ResourceRequest,
    headers: &HeaderMap,
) -> Result<(), ApiError> {
    if !headers.contains_key("impersonate-user") {
        return Ok(());
    }
    authorize_user(objects, req, &requesting_user(headers)).await
}

/// Lets a request for a non-resource URL (`/metrics`) through only where
/// RBAC grants the user the verb on the path, as kube-apiserver's
/// authorizer does; superusers pass without a lookup unless they
/// impersonate someone, who is then checked instead.
pub async fn authorize_non_resource(
    objects: &Objects,
    user: &UserInfo,
    headers: &HeaderMap,
    verb: &str,
    path: &str,
) -> Result<(), ApiError> {
    let impersonated;
    let user = if !headers.contains_key("impersonate-user") {
        if user.groups.iter().any(|g| g == "system:masters") {
            return Ok(());
        }
        user
    } else if user.groups.iter().any(|g| g == "system:masters") {
        impersonated = requesting_user_as(user, headers);
        &impersonated
    } else {
        return Err(ApiError::Forbidden(format!(
            "users is forbidden: User \"{}\" cannot impersonate resource \"users\" in API group \"\" at the cluster scope",
            user.username
        )));
    };
    let attributes = NonResourceAttributes {
        path: Some(path.to_owned()),
        verb: Some(verb.to_owned()),
    };
    let (allowed, _) = rbac_allows(objects, user, Request::NonResource(&attributes)).await?;
    if allowed {
        return Ok(());
    }
    Err(ApiError::Forbidden(format!(
        "forbidden: User \"{}\" cannot {verb} path \"{path}\"",
        user.username
    )))
}

/// Whether the stored RBAC policy lets `user` make `request`, and why not.
async fn rbac_allows(
    objects: &Objects,
    user: &UserInfo,
    request: Request<'_>,
) -> Result<(bool, String), ApiError> {
    let stored = StoredPolicy::load(objects).await?;
    Ok(evaluate::allows(
        &user.username,
        &user.groups,
        request,
        &stored.policy(),
    ))
}

/// Lets a request through only where RBAC allows `user`, refusing it with
/// upstream's Forbidden text otherwise.
pub async fn authorize_user(
    objects: &Objects,
    req: &ResourceRequest,
    user: &UserInfo,
) -> Result<(), ApiError> {
    let r = &*req.resource;
    let verb = verb_name(req.verb);
    let attributes = ResourceAttributes {
        namespace: req.namespace.clone(),
        verb: Some(verb.to_owned()),
        group: Some(r.group.clone()),
        version: Some(r.version.clone()),
        resource: Some(r.plural.clone()),
        subresource: req.subresource.clone(),
        name: req.name.clone(),
        ..ResourceAttributes::default()
    };
    let (allowed, reason) = rbac_allows(objects, user, Request::Resource(&attributes)).await?;
    if allowed {
        return Ok(());
    }
    Err(ApiError::Forbidden(forbidden_message(
        r,
        req,
        &user.username,
        verb,
        &reason,
    )))
}

/// The verb RBAC names a request by.
fn verb_name(verb: Verb) -> &'static str {
    verb.name()
}

/// Upstream's text for a refused request: `pods "web" is forbidden: User
/// "jane" cannot get resource "pods" in API group "" in the namespace "default"`.
fn forbidden_message(
    r: &ResourceInfo,
    req: &ResourceRequest,
    user: &str,
    verb: &str,
    reason: &str,
) -> String {
    let qualified = if r.group.is_empty() {
        r.plural.clone()
    } else {
        format!("{}.{}", r.plural, r.group)
    };
    let object = match req.name.as_deref() {
        Some(name) if !name.is_empty() => format!("{qualified} \"{name}\""),
        _ => qualified,
    };
    let resource = match req.subresource.as_deref() {
        Some(sub) => format!("{}/{sub}", r.plural),
        None => r.plural.clone(),
    };
    let scope = match req.namespace.as_deref() {
        Some(ns) if !ns.is_empty() => format!("in the namespace \"{ns}\""),
        _ => "at the cluster scope".to_owned(),
    };
    let mut message = format!(
        "{object} is forbidden: User \"{user}\" cannot {verb} resource \"{resource}\" in API group \"{}\" {scope}",
        r.group
    );
    if !reason.is_empty() {
        message.push_str(": ");
        message.push_str(reason);
    }
    message
}

/// Answers a request on a resource that is not stored: only `create`, whose
/// answer is the posted object with its status computed.
pub async fn handle(
    objects: &Objects,
    admin_token: &str,
    authenticated: &UserInfo,
    req: ResourceRequest,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, ApiError> {
    let r = &*req.resource;
    if req.verb != Verb::Create || req.subresource.is_some() || !r.serves("create") {
        return Err(ApiError::MethodNotAllowed(
            "the server does not allow this method on the requested resource".into(),
        ));
    }
    let mut review = negotiate::decode_body(headers, body)?;
    berth_api::kinds::drop_nulls(&mut review);
    let validation = handlers::field_validation(&req.query)?;
    let warnings = handlers::check_fields(r, &mut review, validation)?;
    r.typecheck(&review).map_err(|e| {
        ApiError::BadRequest(format!(
            "{kind} in version \"{version}\" cannot be handled as a {kind}: {e}",
            kind = r.kind,
            version = r.version
        ))
    })?;
    let spec = review.get("spec").cloned().unwrap_or_else(|| json!({}));
    let status = match r.kind.as_str() {
        "SelfSubjectReview" => {
            json!({"userInfo": requesting_user_as(authenticated, headers).to_json()})
        }
        "TokenReview" => token_review(&spec, admin_token)?,
        "SelfSubjectRulesReview" => {
            let user = requesting_user_as(authenticated, headers);
            rules_review(objects, &user, &spec).await?
        }
        _ => {
            let user =
                access_review_subject(r, req.namespace.as_deref(), &spec, headers, authenticated)?;
            access_review(objects, &user, &spec).await?
        }
    };
    let mut answer = Map::new();
    answer.insert("kind".into(), json!(r.kind));
    answer.insert("apiVersion".into(), json!(r.api_version()));
    let mut metadata = review.get("metadata").cloned().unwrap_or_else(|| json!({}));
    metadata["creationTimestamp"] = Value::Null;
    answer.insert("metadata".into(), metadata);
    if r.kind != "SelfSubjectReview" {
        answer.insert("spec".into(), spec);
    }
    answer.insert("status".into(), status);
    let answer = Value::Object(answer);
    let response = negotiate::respond(StatusCode::CREATED, negotiate::rendering(headers), &answer);
    Ok(handlers::with_warnings(response, &warnings))
}

/// The user an access review asks about, after upstream's checks of its spec.
fn access_review_subject(
    r: &ResourceInfo,
    path_namespace: Option<&str>,
    spec: &Value,
    headers: &HeaderMap,
    authenticated: &UserInfo,
) -> Result<UserInfo, ApiError> {
    let resource = spec.get("resourceAttributes");
    let non_resource = spec.get("nonResourceAttributes");
    let mut causes = Vec::new();
    match (resource, non_resource) {
        (None, None) => causes.push(FieldCause::required(
            "spec.resourceAttributes",
            "exactly one of nonResourceAttributes or resourceAttributes must be specified",
        )),
        (Some(_), Some(non_resource)) => causes.push(FieldCause::invalid(
            "spec.nonResourceAttributes",
            non_resource,
            "cannot be specified in combination with resourceAttributes",
        )),
        _ => {}
    }
    let local = r.namespaced;
    if local && non_resource.is_some() {
        causes.push(FieldCause::invalid(
            "spec.nonResourceAttributes",
            non_resource.unwrap_or(&Value::Null),
            "disallowed on this kind of request",
        ));
    }
    let is_self = r.kind == "SelfSubjectAccessReview";
    let user = if is_self {
        requesting_user_as(authenticated, headers)
    } else {
        let username = spec.get("user").and_then(Value::as_str).unwrap_or_default();
        let groups: Vec<String> = spec
            .get("groups")
            .and_then(Value::as_array)
            .map(|g| {
                g.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        if username.is_empty() && groups.is_empty() {
            causes.push(FieldCause::invalid(
                "spec.user",
                &json!(username),
                "at least one of user or group must be specified",
            ));
        }
        UserInfo {
            username: username.to_owned(),
            groups,
        }
    };
    if !causes.is_empty() {
        return Err(ApiError::Invalid(target(r, ""), causes));
    }
    if local {
        let namespace = path_namespace.unwrap_or_default();
        let asked = resource
            .and_then(|a| a.get("namespace"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        if asked != namespace {
            return Err(ApiError::BadRequest(format!(
                "spec.resourceAttributes.namespace must match namespace: {namespace}"
            )));
        }
    }
    Ok(user)
}

/// The stored roles and bindings, aggregated ClusterRoles with their
/// aggregated rules (whether or not the controller caught up yet).
struct StoredPolicy {
    roles: Vec<Value>,
    cluster_roles: Vec<Value>,
    role_bindings: Vec<Value>,
    cluster_role_bindings: Vec<Value>,
}

impl StoredPolicy {
    async fn load(objects: &Objects) -> Result<Self, ApiError> {
        let list = |plural: &'static str| async move {
            let r = catalog::builtin(berth_api::rbac::GROUP, "v1", plural).expect("RBAC served");
            listing::list(objects.store().as_ref(), r, None, &Query::default())
                .await
                .map(|result| result.items)
        };
        let mut cluster_roles = list("clusterroles").await?;
        let aggregated: Vec<Option<Vec<Value>>> = cluster_roles
            .iter()
            .map(|role| aggregate(role, &cluster_roles))
            .collect();
        for (role, rules) in cluster_roles.iter_mut().zip(aggregated) {
            if let Some(rules) = rules {
                role["rules"] = Value::Array(rules);
            }
        }
        Ok(StoredPolicy {
            roles: list("roles").await?,
            cluster_roles,
            role_bindings: list("rolebindings").await?,
            cluster_role_bindings: list("clusterrolebindings").await?,
        })
    }

    fn policy(&self) -> Policy<'_> {
        Policy {
            roles: &self.roles,
            cluster_roles: &self.cluster_roles,
            role_bindings: &self.role_bindings,
            cluster_role_bindings: &self.cluster_role_bindings,
        }
    }
}

/// An access review's status: allowed, and upstream's reason.
async fn access_review(
    objects: &Objects,
    user: &UserInfo,
    spec: &Value,
) -> Result<Value, ApiError> {
    let stored = StoredPolicy::load(objects).await?;
    let bad = |e: serde_json::Error| ApiError::BadRequest(e.to_string());
    let (allowed, reason) = match spec.get("resourceAttributes") {
        Some(attributes) => {
            let attributes: ResourceAttributes =
                serde_json::from_value(attributes.clone()).map_err(bad)?;
            evaluate::allows(
                &user.username,
                &user.groups,
                Request::Resource(&attributes),
                &stored.policy(),
            )
        }
        None => {
            let attributes: NonResourceAttributes = serde_json::from_value(
                spec.get("nonResourceAttributes")
                    .cloned()
                    .unwrap_or_default(),
            )
            .map_err(bad)?;
            evaluate::allows(
                &user.username,
                &user.groups,
                Request::NonResource(&attributes),
                &stored.policy(),
            )
        }
    };
    let mut status = json!({"allowed": allowed});
    if !reason.is_empty() {
        status["reason"] = json!(reason);
    }
    Ok(status)
}

/// A rules review's status: what the user may do in `spec.namespace`.
async fn rules_review(objects: &Objects, user: &UserInfo, spec: &Value) -> Result<Value, ApiError> {
    let namespace = rules_namespace(spec)?;
    let stored = StoredPolicy::load(objects).await?;
    let review = evaluate::rules_for(
        &user.username,
        &user.groups,
        Some(namespace),
        &stored.policy(),
    );
    let mut status = json!({
        "resourceRules": to_json(&review.resource_rules)?,
        "nonResourceRules": to_json(&review.non_resource_rules)?,
        "incomplete": review.evaluation_error.is_some(),
    });
    if let Some(error) = review.evaluation_error {
        status["evaluationError"] = json!(error);
    }
    Ok(status)
}

/// The namespace a rules review asks about; upstream requires one.
fn rules_namespace(spec: &Value) -> Result<&str, ApiError> {
    spec.get("namespace")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::BadRequest("no namespace on request".into()))
}

fn to_json(value: &impl serde::Serialize) -> Result<Value, ApiError> {
    serde_json::to_value(value).map_err(|e| ApiError::Internal(e.to_string()))
}

/// A token review's status: the admin token is the admin; no other token
/// authenticates.
fn token_review(spec: &Value, admin_token: &str) -> Result<Value, ApiError> {
    let token = spec
        .get("token")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if token.is_empty() {
        return Err(ApiError::BadRequest(
            "token is required for TokenReview in authentication".into(),
        ));
    }
    if super::authn::constant_time_eq(token.as_bytes(), admin_token.as_bytes()) {
        let mut status = json!({"authenticated": true, "user": UserInfo::admin().to_json()});
        if let Some(audiences) = spec
            .get("audiences")
            .filter(|a| a.as_array().is_some_and(|a| !a.is_empty()))
        {
            status["audiences"] = audiences.clone();
        }
        return Ok(status);
    }
    Ok(json!({"authenticated": false, "user": {}}))
}

#[cfg(test)]
mod tests;
