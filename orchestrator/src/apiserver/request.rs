//! Turns an HTTP method, path and query into one typed [`ApiRequest`], in one
//! place, the way kube-apiserver's RequestInfo does; handlers only match on it.

use std::collections::HashMap;

use http::Method;

use std::sync::Arc;

use super::catalog::{Catalog, ResourceInfo};
use super::errors::ApiError;

/// What a request asks for.
#[derive(Debug, Clone)]
pub enum ApiRequest {
    /// `/version`.
    Version,
    /// `/healthz`, `/livez`, `/readyz` (and their sub-checks).
    Health,
    /// `/metrics`: the server's Prometheus metrics (a non-resource URL
    /// behind the authorizer, as upstream).
    Metrics,
    /// `/metrics/kube-state`: kube-state-metrics-style object metrics, behind
    /// the authorizer like `/metrics`.
    KubeStateMetrics,
    /// `/metrics/targets`: every component's scrape target in Prometheus'
    /// HTTP service-discovery format, behind the authorizer like `/metrics`.
    ScrapeTargets,
    /// `/api`: core API versions.
    CoreVersions,
    /// `/apis`: the group list.
    Groups,
    /// `/apis/GROUP`: one group.
    Group(String),
    /// `/api/v1` or `/apis/GROUP/VERSION`: the resources of one group version.
    GroupVersion {
        /// Group, empty for core.
        group: String,
        /// Version.
        version: String,
    },
    /// `/openapi/v2`.
    OpenApiV2,
    /// `/openapi/v3`: the index.
    OpenApiV3Index,
    /// `/openapi/v3/api/v1`, `/openapi/v3/apis/GROUP/VERSION`.
    OpenApiV3 {
        /// Group, empty for core.
        group: String,
        /// Version.
        version: String,
    },
    /// Anything on a served resource.
    Resource(ResourceRequest),
}

/// The verb of a resource request, as authorization and audit name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    /// Read one object.
    Get,
    /// Read a collection.
    List,
    /// Stream changes to a collection (or one object, by field selector).
    Watch,
    /// Create an object (or act through a subresource such as binding).
    Create,
    /// Replace an object.
    Update,
    /// Patch an object.
    Patch,
    /// Delete one object.
    Delete,
    /// Delete every object matching the options.
    DeleteCollection,
}

impl Verb {
    /// The verb as discovery and RBAC name it (`deletecollection`).
    pub fn name(self) -> &'static str {
        match self {
            Verb::Get => "get",
            Verb::List => "list",
            Verb::Watch => "watch",
            Verb::Create => "create",
            Verb::Update => "update",
            Verb::Patch => "patch",
            Verb::Delete => "delete",
            Verb::DeleteCollection => "deletecollection",
        }
    }
}

/// A request on a served resource.
#[derive(Debug, Clone)]
pub struct ResourceRequest {
    /// The resource.
    pub resource: Arc<ResourceInfo>,
    /// Namespace from the path, if any.
    pub namespace: Option<String>,
    /// Object name from the path, if any.
    pub name: Option<String>,
    /// Subresource (`status`, `scale`, …).
    pub subresource: Option<String>,
    /// The verb.
    pub verb: Verb,
    /// Query parameters.
    pub query: Query,
}

/// Query parameters, parsed leniently (unknown ones are ignored as upstream does).
#[derive(Debug, Clone, Default)]
pub struct Query(HashMap<String, String>);

impl Query {
    /// Parses a raw query string.
    pub fn parse(raw: Option<&str>) -> Self {
        let map = raw
            .map(|q| {
                url_decode_pairs(q)
                    .into_iter()
                    .collect::<HashMap<String, String>>()
            })
            .unwrap_or_default();
        Self(map)
    }

    /// A parameter's value, if present.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// Drops a parameter (e.g. paging options that do not apply to a watch's initial list).
    pub fn remove(&mut self, key: &str) {
        self.0.remove(key);
    }

    /// Adds `metadata.name=NAME` to the field selector (a watch on one object's URL).
    pub fn with_field_selector_name(mut self, name: &str) -> Self {
        let pinned = format!("metadata.name={name}");
        let selector = match self.0.get("fieldSelector").filter(|s| !s.is_empty()) {
            Some(existing) => format!("{existing},{pinned}"),
            None => pinned,
        };
        self.0.insert("fieldSelector".into(), selector);
        self
    }

    /// A boolean parameter (`true`, `1`).
    pub fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("true" | "1" | "True"))
    }

    /// A numeric parameter; a malformed value is a 400.
    pub fn number(&self, key: &str) -> Result<Option<i64>, ApiError> {
        match self.get(key) {
            None | Some("") => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| {
                ApiError::BadRequest(format!("invalid value {v:?} for query parameter {key}"))
            }),
        }
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The `key=value` pairs of a raw query, decoded, in order (names may repeat).
pub(crate) fn url_decode_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) => (percent_decode(k), percent_decode(v)),
            None => (percent_decode(pair), String::new()),
        })
        .collect()
}

/// Parses one request. `Err(UnknownPath)` for paths that name nothing we serve.
pub fn parse(
    catalog: &Catalog,
    method: &Method,
    path: &str,
    raw_query: Option<&str>,
) -> Result<ApiRequest, ApiError> {
    let query = Query::parse(raw_query);
    let parts: Vec<String> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect();
    let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
    match parts.as_slice() {
        ["version"] => Ok(ApiRequest::Version),
        ["metrics"] => Ok(ApiRequest::Metrics),
        ["metrics", "kube-state"] => Ok(ApiRequest::KubeStateMetrics),
        ["metrics", "targets"] => Ok(ApiRequest::ScrapeTargets),
        [health, ..] if matches!(*health, "healthz" | "livez" | "readyz") => Ok(ApiRequest::Health),
        ["api"] => Ok(ApiRequest::CoreVersions),
        ["apis"] => Ok(ApiRequest::Groups),
        ["apis", group] => Ok(ApiRequest::Group((*group).to_owned())),
        ["openapi", "v2"] => Ok(ApiRequest::OpenApiV2),
        ["openapi", "v3"] => Ok(ApiRequest::OpenApiV3Index),
        ["openapi", "v3", "api", version] => Ok(ApiRequest::OpenApiV3 {
            group: String::new(),
            version: (*version).to_owned(),
        }),
        ["openapi", "v3", "apis", group, version] => Ok(ApiRequest::OpenApiV3 {
            group: (*group).to_owned(),
            version: (*version).to_owned(),
        }),
        ["api", version, rest @ ..] => {
            parse_group_version(catalog, method, "", version, rest, query)
        }
        ["apis", group, version, rest @ ..] => {
            parse_group_version(catalog, method, group, version, rest, query)
        }
        _ => Err(ApiError::UnknownPath),
    }
}

fn parse_group_version(
    catalog: &Catalog,
    method: &Method,
    group: &str,
    version: &str,
    rest: &[&str],
    query: Query,
) -> Result<ApiRequest, ApiError> {
    if rest.is_empty() {
        if !catalog
            .resources()
            .iter()
            .any(|r| r.group == group && r.version == version)
        {
            return Err(ApiError::UnknownPath);
        }
        return Ok(ApiRequest::GroupVersion {
            group: group.to_owned(),
            version: version.to_owned(),
        });
    }
    let (legacy_watch, mut rest) = match rest {
        ["watch", tail @ ..] => (true, tail),
        _ => (false, rest),
    };
    let mut namespace = None;
    if let ["namespaces", ns, tail @ ..] = rest {
        if !tail.is_empty() && !matches!(tail[0], "status" | "finalize") {
            namespace = Some((*ns).to_owned());
            rest = tail;
        }
    }
    let (plural, name, subresource) = match rest {
        [plural] => (*plural, None, None),
        [plural, name] => (*plural, Some((*name).to_owned()), None),
        [plural, name, sub] => (*plural, Some((*name).to_owned()), Some((*sub).to_owned())),
        // `nodes/NAME/proxy/PATH`: the path on the node travels in the URI.
        [plural, name, "proxy", _, ..] => (*plural, Some((*name).to_owned()), Some("proxy".into())),
        _ => return Err(ApiError::UnknownPath),
    };
    let resource = catalog
        .find(group, version, plural)
        .ok_or(ApiError::UnknownPath)?;
    if namespace.is_some() && !resource.namespaced {
        return Err(ApiError::UnknownPath);
    }
    if let Some(sub) = &subresource {
        let served = match sub.as_str() {
            "status" => resource.has_status,
            "scale" => resource.has_scale,
            other => {
                resource.status_like_part(other).is_some()
                    || resource.action_subresources().contains(&other)
                    || resource.streaming_subresources().contains(&other)
            }
        };
        if !served {
            return Err(ApiError::UnknownPath);
        }
    }
    let verb = match (method, name.is_some()) {
        (m, _) if legacy_watch && m == Method::GET => Verb::Watch,
        (m, true) if m == Method::GET => {
            if query.flag("watch") {
                Verb::Watch
            } else {
                Verb::Get
            }
        }
        (m, false) if m == Method::GET => {
            if query.flag("watch") {
                Verb::Watch
            } else {
                Verb::List
            }
        }
        (m, false) if m == Method::POST => Verb::Create,
        (m, true) if m == Method::POST && subresource.is_some() => Verb::Create,
        (m, true) if m == Method::PUT => Verb::Update,
        (m, true) if m == Method::PATCH => Verb::Patch,
        (m, true) if m == Method::DELETE => Verb::Delete,
        (m, false) if m == Method::DELETE => Verb::DeleteCollection,
        (m, _) => {
            return Err(ApiError::MethodNotAllowed(format!(
                "the server does not allow this method on the requested resource ({m} {plural})"
            )))
        }
    };
    // The resource itself serves only the verbs discovery lists for it (upstream
    // has no handler for the rest: no deletecollection of namespaces, no reads
    // of bindings); subresources carry their own verbs.
    if subresource.is_none() && !resource.serves(verb.name()) {
        return Err(ApiError::MethodNotAllowed(
            "the server does not allow this method on the requested resource".into(),
        ));
    }
    Ok(ApiRequest::Resource(ResourceRequest {
        resource,
        namespace,
        name,
        subresource,
        verb,
        query,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resource(method: Method, path: &str, query: Option<&str>) -> ResourceRequest {
        match parse(&Catalog::new(), &method, path, query).unwrap() {
            ApiRequest::Resource(r) => r,
            other => panic!("{path}: {other:?}"),
        }
    }

    #[test]
    fn metrics_paths_name_the_registry_they_serve() {
        let parsed = |path: &str| parse(&Catalog::new(), &Method::GET, path, None);
        assert!(matches!(parsed("/metrics"), Ok(ApiRequest::Metrics)));
        assert!(matches!(
            parsed("/metrics/kube-state"),
            Ok(ApiRequest::KubeStateMetrics)
        ));
        assert!(matches!(
            parsed("/metrics/targets"),
            Ok(ApiRequest::ScrapeTargets)
        ));
        assert!(matches!(
            parsed("/metrics/other"),
            Err(ApiError::UnknownPath)
        ));
    }

    #[test]
    fn node_proxy_paths_keep_their_tail_in_the_uri() {
        let r = resource(Method::GET, "/api/v1/nodes/n1/proxy/stats/summary", None);
        assert_eq!(r.resource.plural, "nodes");
        assert_eq!(r.name.as_deref(), Some("n1"));
        assert_eq!(r.subresource.as_deref(), Some("proxy"));
        assert!(matches!(
            parse(
                &Catalog::new(),
                &Method::GET,
                "/api/v1/namespaces/default/pods/web/proxy/x",
                None
            ),
            Err(ApiError::UnknownPath)
        ));
    }

    #[test]
    fn verbs_a_resource_does_not_list_are_refused() {
        let refused = |method: Method, path: &str| {
            matches!(
                parse(&Catalog::new(), &method, path, None),
                Err(ApiError::MethodNotAllowed(_))
            )
        };
        assert!(refused(Method::DELETE, "/api/v1/namespaces"));
        assert!(refused(Method::GET, "/api/v1/namespaces/default/bindings"));
        assert!(refused(
            Method::GET,
            "/api/v1/namespaces/default/bindings/web"
        ));
        assert!(!refused(
            Method::POST,
            "/api/v1/namespaces/default/bindings"
        ));
        assert!(!refused(Method::DELETE, "/api/v1/namespaces/default/pods"));
        assert!(!refused(
            Method::POST,
            "/api/v1/namespaces/default/pods/web/binding"
        ));
    }

    #[test]
    fn paths_map_to_resources_namespaces_and_verbs() {
        let r = resource(
            Method::GET,
            "/apis/apps/v1/namespaces/default/deployments/web",
            None,
        );
        assert_eq!(
            (
                r.resource.plural.as_str(),
                r.namespace.as_deref(),
                r.name.as_deref(),
                r.verb
            ),
            ("deployments", Some("default"), Some("web"), Verb::Get)
        );

        let r = resource(
            Method::GET,
            "/api/v1/pods",
            Some("watch=1&labelSelector=app%3Dweb"),
        );
        assert_eq!(
            (r.resource.plural.as_str(), r.namespace, r.verb),
            ("pods", None, Verb::Watch)
        );
        assert_eq!(r.query.get("labelSelector"), Some("app=web"));

        let r = resource(Method::GET, "/api/v1/namespaces/kube-system", None);
        assert_eq!(
            (r.resource.plural.as_str(), r.name.as_deref(), r.namespace),
            ("namespaces", Some("kube-system"), None)
        );

        let r = resource(Method::PUT, "/api/v1/namespaces/foo/status", None);
        assert_eq!(
            (
                r.resource.plural.as_str(),
                r.name.as_deref(),
                r.subresource.as_deref()
            ),
            ("namespaces", Some("foo"), Some("status"))
        );

        let r = resource(
            Method::PATCH,
            "/apis/apps/v1/namespaces/a/deployments/web/scale",
            None,
        );
        assert_eq!(
            (r.subresource.as_deref(), r.verb),
            (Some("scale"), Verb::Patch)
        );

        let r = resource(Method::DELETE, "/api/v1/namespaces/a/configmaps", None);
        assert_eq!(r.verb, Verb::DeleteCollection);
    }

    #[test]
    fn unknown_paths_and_subresources_are_not_found() {
        for path in [
            "/apis/apps/v1/widgets",
            "/api/v1/namespaces/a/configmaps/x/scale",
            "/api/v2/pods",
            "/nothing",
        ] {
            assert!(
                matches!(
                    parse(&Catalog::new(), &Method::GET, path, None),
                    Err(ApiError::UnknownPath)
                ),
                "{path}"
            );
        }
    }
}
