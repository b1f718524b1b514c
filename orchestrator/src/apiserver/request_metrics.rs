//! kube-apiserver's request metrics (`apiserver_request_total`,
//! `apiserver_request_duration_seconds`, `apiserver_longrunning_requests`,
//! `apiserver_current_inflight_requests`, `apiserver_registered_watchers`),
//! with upstream's names, labels and buckets, so dashboards and alerts
//! written for kube-apiserver read berth's unchanged.
//!
//! Labels are derived once per request from the parsed [`ApiRequest`]; they
//! borrow the catalog's [`ResourceInfo`] (an `Arc` clone) instead of copying
//! its strings, so counting a request allocates nothing on the hot path
//! beyond the first request of each label set.

use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::response::Response;
use berth_observability::metrics::encoding::{EncodeLabelSet, LabelSetEncoder};
use berth_observability::metrics::{
    Counter, Family, Gauge, Histogram, MetricsRegistry, REQUEST_DURATION_BUCKETS,
};
use futures::StreamExt;
use http::{header, HeaderMap, Method};

use super::catalog::ResourceInfo;
use super::request::{ApiRequest, Verb};

/// The `component` label upstream gives the API server's own requests.
const COMPONENT: &str = "apiserver";

/// Subresources whose requests stay open (upstream's long-running check,
/// besides watches).
const LONG_RUNNING_SUBRESOURCES: [&str; 5] = ["attach", "exec", "log", "portforward", "proxy"];

/// Subresources upstream serves through a connecter, reported as `CONNECT`.
const CONNECT_SUBRESOURCES: [&str; 4] = ["attach", "exec", "portforward", "proxy"];

/// What a request is about: a served resource, or a non-resource path
/// (reported, as upstream does, in the `subresource` label).
#[derive(Clone, Debug)]
enum Target {
    Resource {
        info: Arc<ResourceInfo>,
        subresource: Option<String>,
    },
    Path(&'static str),
}

/// The labels every request metric shares (upstream's `verb`, `dry_run`,
/// `group`, `version`, `resource`, `subresource`, `scope`, `component`).
#[derive(Clone, Debug)]
pub struct RequestLabels {
    verb: &'static str,
    dry_run: &'static str,
    scope: &'static str,
    target: Target,
}

impl RequestLabels {
    /// The labels of one parsed request, as kube-apiserver's
    /// `MonitorRequest` reports them.
    pub fn of(request: &ApiRequest, method: &Method, path: &str, headers: &HeaderMap) -> Self {
        let ApiRequest::Resource(req) = request else {
            return Self {
                verb: method_name(method),
                dry_run: "",
                scope: "",
                target: Target::Path(non_resource_path(request, path)),
            };
        };
        let sub = req.subresource.as_deref();
        let scope = if req.name.is_some() || req.verb == Verb::Create {
            "resource"
        } else if req.namespace.is_some() {
            "namespace"
        } else {
            "cluster"
        };
        let verb = match req.verb {
            _ if sub.is_some_and(|s| CONNECT_SUBRESOURCES.contains(&s)) => "CONNECT",
            Verb::Get => "GET",
            Verb::List => "LIST",
            Verb::Watch => "WATCH",
            Verb::Create => "POST",
            Verb::Update => "PUT",
            Verb::Patch if is_apply(headers) => "APPLY",
            Verb::Patch => "PATCH",
            Verb::Delete => "DELETE",
            Verb::DeleteCollection => "DELETECOLLECTION",
        };
        Self {
            verb,
            dry_run: if req.query.get("dryRun") == Some("All") {
                "All"
            } else {
                ""
            },
            scope,
            target: Target::Resource {
                info: Arc::clone(&req.resource),
                subresource: req.subresource.clone(),
            },
        }
    }

    /// Whether the request stays open (watches, exec/attach/port-forward,
    /// logs, proxy): counted in `apiserver_longrunning_requests`, not timed.
    pub fn long_running(&self) -> bool {
        self.verb == "WATCH"
            || matches!(&self.target, Target::Resource { subresource: Some(s), .. }
                if LONG_RUNNING_SUBRESOURCES.contains(&s.as_str()))
    }

    /// Upstream's `request_kind` of `apiserver_current_inflight_requests`.
    fn read_only(&self) -> bool {
        matches!(self.verb, "GET" | "LIST" | "WATCH" | "HEAD")
    }

    fn resource(&self) -> Option<&Arc<ResourceInfo>> {
        match &self.target {
            Target::Resource { info, .. } => Some(info),
            Target::Path(_) => None,
        }
    }

    fn key(&self) -> (&str, &str, &str, &str) {
        match &self.target {
            Target::Resource { info, subresource } => (
                &info.group,
                &info.version,
                &info.plural,
                subresource.as_deref().unwrap_or(""),
            ),
            Target::Path(path) => ("", "", "", path),
        }
    }

    fn encode_labels(
        &self,
        encoder: &mut LabelSetEncoder,
        with_dry_run: bool,
    ) -> Result<(), std::fmt::Error> {
        use berth_observability::metrics::encoding::EncodeLabel;
        let (group, version, resource, subresource) = self.key();
        ("verb", self.verb).encode(encoder.encode_label())?;
        if with_dry_run {
            ("dry_run", self.dry_run).encode(encoder.encode_label())?;
        }
        ("group", group).encode(encoder.encode_label())?;
        ("version", version).encode(encoder.encode_label())?;
        ("resource", resource).encode(encoder.encode_label())?;
        ("subresource", subresource).encode(encoder.encode_label())?;
        ("scope", self.scope).encode(encoder.encode_label())?;
        ("component", COMPONENT).encode(encoder.encode_label())
    }
}

impl PartialEq for RequestLabels {
    fn eq(&self, other: &Self) -> bool {
        (self.verb, self.dry_run, self.scope, self.key())
            == (other.verb, other.dry_run, other.scope, other.key())
    }
}

impl Eq for RequestLabels {}

impl Hash for RequestLabels {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (self.verb, self.dry_run, self.scope, self.key()).hash(state);
    }
}

impl EncodeLabelSet for RequestLabels {
    fn encode(&self, encoder: &mut LabelSetEncoder) -> Result<(), std::fmt::Error> {
        self.encode_labels(encoder, true)
    }
}

/// `apiserver_request_total`'s labels: the request's and its status code.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct CodeLabels {
    request: RequestLabels,
    code: u16,
}

impl EncodeLabelSet for CodeLabels {
    fn encode(&self, encoder: &mut LabelSetEncoder) -> Result<(), std::fmt::Error> {
        use berth_observability::metrics::encoding::EncodeLabel;
        self.request.encode_labels(encoder, true)?;
        ("code", self.code).encode(encoder.encode_label())
    }
}

/// `apiserver_longrunning_requests`' labels: the request's without `dry_run`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct LongRunningLabels(RequestLabels);

impl EncodeLabelSet for LongRunningLabels {
    fn encode(&self, encoder: &mut LabelSetEncoder) -> Result<(), std::fmt::Error> {
        self.0.encode_labels(encoder, false)
    }
}

/// `apiserver_registered_watchers`' labels: the watched kind.
#[derive(Clone, Debug)]
struct WatcherLabels(Arc<ResourceInfo>);

impl PartialEq for WatcherLabels {
    fn eq(&self, other: &Self) -> bool {
        (&self.0.group, &self.0.version, &self.0.kind)
            == (&other.0.group, &other.0.version, &other.0.kind)
    }
}

impl Eq for WatcherLabels {}

impl Hash for WatcherLabels {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (&self.0.group, &self.0.version, &self.0.kind).hash(state);
    }
}

impl EncodeLabelSet for WatcherLabels {
    fn encode(&self, encoder: &mut LabelSetEncoder) -> Result<(), std::fmt::Error> {
        use berth_observability::metrics::encoding::EncodeLabel;
        ("group", self.0.group.as_str()).encode(encoder.encode_label())?;
        ("version", self.0.version.as_str()).encode(encoder.encode_label())?;
        ("kind", self.0.kind.as_str()).encode(encoder.encode_label())
    }
}

/// `apiserver_current_inflight_requests`' label.
#[derive(Clone, Debug, PartialEq, Eq, Hash, berth_observability::metrics::EncodeLabelSet)]
struct InflightLabels {
    request_kind: &'static str,
}

/// The API server's request metrics, registered in its endpoint's registry.
#[derive(Clone)]
pub struct RequestMetrics {
    requests: Family<CodeLabels, Counter>,
    durations: Family<RequestLabels, Histogram>,
    long_running: Family<LongRunningLabels, Gauge>,
    watchers: Family<WatcherLabels, Gauge>,
    inflight_read_only: Gauge,
    inflight_mutating: Gauge,
}

impl RequestMetrics {
    /// Registers the request metrics in `registry`.
    pub fn register(registry: &MetricsRegistry) -> Self {
        let requests = registry.register(
            "apiserver_request",
            "Counter of apiserver requests broken out for each verb, dry run value, group, version, resource, scope, component, and HTTP response code.",
            Family::default(),
        );
        let durations = registry.register(
            "apiserver_request_duration_seconds",
            "Response latency distribution in seconds for each verb, dry run value, group, version, resource, subresource, scope and component.",
            Family::<RequestLabels, Histogram>::new_with_constructor(request_histogram as fn() -> Histogram),
        );
        let long_running = registry.register(
            "apiserver_longrunning_requests",
            "Gauge of all active long-running apiserver requests broken out by verb, group, version, resource, scope and component.",
            Family::default(),
        );
        let watchers = registry.register(
            "apiserver_registered_watchers",
            "Number of currently registered watchers for a given resources.",
            Family::default(),
        );
        let inflight: Family<InflightLabels, Gauge> = registry.register(
            "apiserver_current_inflight_requests",
            "Maximal number of currently used inflight request limit of this apiserver per request kind in last second.",
            Family::default(),
        );
        let gauge = |request_kind| {
            inflight
                .get_or_create(&InflightLabels { request_kind })
                .clone()
        };
        Self {
            requests,
            durations,
            long_running,
            watchers,
            inflight_read_only: gauge("readOnly"),
            inflight_mutating: gauge("mutating"),
        }
    }

    /// Starts counting one request; [`InFlight::finish`] records its answer.
    pub fn start(&self, labels: RequestLabels) -> InFlight {
        let long_running = labels.long_running();
        let inflight = (!long_running).then(|| {
            let gauge = if labels.read_only() {
                &self.inflight_read_only
            } else {
                &self.inflight_mutating
            };
            gauge.inc();
            GaugeGuard(gauge.clone())
        });
        InFlight {
            metrics: self.clone(),
            labels,
            started: Instant::now(),
            long_running,
            _inflight: inflight,
        }
    }
}

fn request_histogram() -> Histogram {
    Histogram::new(REQUEST_DURATION_BUCKETS)
}

/// Decrements a gauge when dropped: the end of an in-flight or long-running
/// request, however it ends.
struct GaugeGuard(Gauge);

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// One request being served.
pub struct InFlight {
    metrics: RequestMetrics,
    labels: RequestLabels,
    started: Instant,
    long_running: bool,
    _inflight: Option<GaugeGuard>,
}

impl InFlight {
    /// Counts the answer; a long-running answer's body keeps it counted in
    /// `apiserver_longrunning_requests` (and, for a watch,
    /// `apiserver_registered_watchers`) until the stream ends.
    pub fn finish(self, response: Response) -> Response {
        let code = response.status().as_u16();
        let m = &self.metrics;
        m.requests
            .get_or_create(&CodeLabels {
                request: self.labels.clone(),
                code,
            })
            .inc();
        if !self.long_running {
            m.durations
                .get_or_create(&self.labels)
                .observe(self.started.elapsed().as_secs_f64());
            return response;
        }
        if !response.status().is_success() {
            return response;
        }
        let gauge = |g: &Gauge| {
            g.inc();
            GaugeGuard(g.clone())
        };
        let mut guards = vec![gauge(
            &m.long_running
                .get_or_create(&LongRunningLabels(self.labels.clone())),
        )];
        if let (true, Some(info)) = (self.labels.verb == "WATCH", self.labels.resource()) {
            guards.push(gauge(
                &m.watchers.get_or_create(&WatcherLabels(Arc::clone(info))),
            ));
        }
        response.map(|body| {
            Body::from_stream(body.into_data_stream().map(move |chunk| {
                let _open = &guards;
                chunk
            }))
        })
    }
}

fn method_name(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

/// A non-resource request's path with its variable parts named, so the
/// label's values stay few.
fn non_resource_path(request: &ApiRequest, path: &str) -> &'static str {
    match request {
        ApiRequest::Version => "/version",
        ApiRequest::Health if path.starts_with("/livez") => "/livez",
        ApiRequest::Health if path.starts_with("/readyz") => "/readyz",
        ApiRequest::Health => "/healthz",
        ApiRequest::Metrics => "/metrics",
        ApiRequest::KubeStateMetrics => "/metrics/kube-state",
        ApiRequest::ScrapeTargets => "/metrics/targets",
        ApiRequest::CoreVersions => "/api",
        ApiRequest::Groups => "/apis",
        ApiRequest::Group(_) => "/apis/{group}",
        ApiRequest::GroupVersion { group, .. } if group.is_empty() => "/api/{version}",
        ApiRequest::GroupVersion { .. } => "/apis/{group}/{version}",
        ApiRequest::OpenApiV2 => "/openapi/v2",
        ApiRequest::OpenApiV3Index => "/openapi/v3",
        ApiRequest::OpenApiV3 { .. } => "/openapi/v3/{path}",
        ApiRequest::Resource(_) => "",
    }
}

fn is_apply(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/apply-patch"))
}

/// Writes `labels` as `{name="value",…}` text, for tests and logs.
#[cfg(test)]
fn describe(labels: &RequestLabels) -> String {
    let (group, version, resource, subresource) = labels.key();
    format!(
        "verb={} dry_run={} group={group} version={version} resource={resource} subresource={subresource} scope={}",
        labels.verb, labels.dry_run, labels.scope
    )
}

#[cfg(test)]
mod tests {
    use super::super::catalog::Catalog;
    use super::super::request;
    use super::*;

    fn of(method: Method, path: &str, query: Option<&str>, headers: &HeaderMap) -> RequestLabels {
        let catalog = Catalog::new();
        let parsed = request::parse(&catalog, &method, path, query).expect(path);
        RequestLabels::of(&parsed, &method, path, headers)
    }

    fn labels(method: Method, path: &str, query: Option<&str>, headers: &HeaderMap) -> String {
        describe(&of(method, path, query, headers))
    }

    fn plain(method: Method, path: &str, query: Option<&str>) -> String {
        labels(method, path, query, &HeaderMap::new())
    }

    #[test]
    fn verbs_and_scopes_are_reported_as_upstream_does() {
        let cases = [
            (Method::GET, "/api/v1/namespaces/default/pods/web", None,
             "verb=GET dry_run= group= version=v1 resource=pods subresource= scope=resource"),
            (Method::GET, "/api/v1/namespaces/default/pods", None,
             "verb=LIST dry_run= group= version=v1 resource=pods subresource= scope=namespace"),
            (Method::GET, "/api/v1/pods", Some("watch=true"),
             "verb=WATCH dry_run= group= version=v1 resource=pods subresource= scope=cluster"),
            (Method::POST, "/apis/apps/v1/namespaces/default/deployments", Some("dryRun=All"),
             "verb=POST dry_run=All group=apps version=v1 resource=deployments subresource= scope=resource"),
            (Method::PUT, "/apis/apps/v1/namespaces/default/deployments/web/status", None,
             "verb=PUT dry_run= group=apps version=v1 resource=deployments subresource=status scope=resource"),
            (Method::DELETE, "/api/v1/namespaces/default/pods", None,
             "verb=DELETECOLLECTION dry_run= group= version=v1 resource=pods subresource= scope=namespace"),
            (Method::GET, "/api/v1/namespaces/default/pods/web/exec", Some("command=ls"),
             "verb=CONNECT dry_run= group= version=v1 resource=pods subresource=exec scope=resource"),
            (Method::GET, "/healthz/ping", None,
             "verb=GET dry_run= group= version= resource= subresource=/healthz scope="),
            (Method::GET, "/metrics", None,
             "verb=GET dry_run= group= version= resource= subresource=/metrics scope="),
        ];
        for (method, path, query, want) in cases {
            assert_eq!(plain(method, path, query), want, "{path}");
        }
    }

    #[test]
    fn a_server_side_apply_is_reported_as_apply() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            "application/apply-patch+yaml".parse().unwrap(),
        );
        let path = "/api/v1/namespaces/default/configmaps/c";
        assert!(labels(Method::PATCH, path, None, &headers).starts_with("verb=APPLY "));
        assert!(plain(Method::PATCH, path, None).starts_with("verb=PATCH "));
    }

    #[test]
    fn only_streams_are_long_running() {
        let long = |method: Method, path: &str, query: Option<&str>| {
            of(method, path, query, &HeaderMap::new()).long_running()
        };
        assert!(long(Method::GET, "/api/v1/pods", Some("watch=1")));
        assert!(long(Method::GET, "/api/v1/namespaces/d/pods/p/log", None));
        assert!(!long(Method::GET, "/api/v1/pods", None));
        assert!(!long(Method::POST, "/api/v1/namespaces/d/pods", None));
    }

    #[tokio::test]
    async fn a_counted_request_appears_with_its_code_and_duration() {
        let registry = MetricsRegistry::default();
        let metrics = RequestMetrics::register(&registry);
        let path = "/api/v1/namespaces/default/pods";
        let labels = of(Method::GET, path, None, &HeaderMap::new());
        let inflight = metrics.start(labels);
        assert!(registry
            .encode()
            .contains("apiserver_current_inflight_requests{request_kind=\"readOnly\"} 1"));
        let response = Response::builder().status(200).body(Body::empty()).unwrap();
        inflight.finish(response);
        let text = registry.encode();
        assert!(text.contains(
            "apiserver_request_total{verb=\"LIST\",dry_run=\"\",group=\"\",version=\"v1\",resource=\"pods\",subresource=\"\",scope=\"namespace\",component=\"apiserver\",code=\"200\"} 1"
        ), "{text}");
        assert!(text.contains(
            "apiserver_request_duration_seconds_count{verb=\"LIST\",dry_run=\"\",group=\"\",version=\"v1\",resource=\"pods\",subresource=\"\",scope=\"namespace\",component=\"apiserver\"} 1"
        ), "{text}");
        assert!(
            text.contains("apiserver_current_inflight_requests{request_kind=\"readOnly\"} 0"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn a_watch_is_long_running_until_its_stream_ends() {
        let registry = MetricsRegistry::default();
        let metrics = RequestMetrics::register(&registry);
        let labels = of(
            Method::GET,
            "/api/v1/pods",
            Some("watch=true"),
            &HeaderMap::new(),
        );
        let response = Response::builder().status(200).body(Body::empty()).unwrap();
        let response = metrics.start(labels).finish(response);
        let text = registry.encode();
        assert!(text.contains("apiserver_longrunning_requests{verb=\"WATCH\",group=\"\",version=\"v1\",resource=\"pods\",subresource=\"\",scope=\"cluster\",component=\"apiserver\"} 1"), "{text}");
        assert!(
            text.contains(
                "apiserver_registered_watchers{group=\"\",version=\"v1\",kind=\"Pod\"} 1"
            ),
            "{text}"
        );
        assert!(
            !text.contains("apiserver_request_duration_seconds_count{verb=\"WATCH\""),
            "{text}"
        );
        drop(response);
        let text = registry.encode();
        assert!(text.contains("apiserver_longrunning_requests{verb=\"WATCH\",group=\"\",version=\"v1\",resource=\"pods\",subresource=\"\",scope=\"cluster\",component=\"apiserver\"} 0"), "{text}");
    }
}
