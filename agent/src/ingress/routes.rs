//! The routing table of the ingress proxy: which upstream address serves a
//! request, from its host and path, built from the Ingresses this node
//! serves and the Services and EndpointSlices behind them. Pure: plain data
//! in, a table out, so every rule of the Ingress spec is a table test.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{Ingress, IngressBackend};

use super::by_name;
use crate::network::service_proxy::endpoints::slices_by_service;

/// A Service port behind one or more Ingress paths, with its ready endpoints
/// (picked round-robin, shared by every path that names the same port).
#[derive(Debug, Default)]
pub struct Backend {
    /// `namespace/service:port`, for logs.
    pub name: String,
    /// Ready endpoint addresses with the resolved target port, sorted.
    pub endpoints: Vec<SocketAddr>,
    next: AtomicUsize,
}

impl Backend {
    /// The next endpoint, round-robin; `None` when none is ready.
    pub fn pick(&self) -> Option<SocketAddr> {
        if self.endpoints.is_empty() {
            return None;
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.endpoints.len();
        Some(self.endpoints[i])
    }
}

/// What the table says about a request.
#[derive(Debug, Clone)]
pub enum Route {
    /// Forward to this backend.
    Backend(Arc<Backend>),
    /// No rule and no default backend matches: 404.
    NotFound,
}

#[derive(Debug)]
struct PathRoute {
    path: String,
    exact: bool,
    backend: Arc<Backend>,
}

/// The rules of one host (or of every host, for rules without one).
#[derive(Debug, Default)]
struct HostRoutes {
    /// Longest path first; exact before prefix at equal length.
    paths: Vec<PathRoute>,
    /// The `defaultBackend` of the oldest Ingress with rules for this host.
    default_backend: Option<Arc<Backend>>,
}

/// Every route of the node's ingress proxy.
#[derive(Debug, Default)]
pub struct Table {
    exact: HashMap<String, HostRoutes>,
    /// Keyed by what follows `*.`.
    wildcard: HashMap<String, HostRoutes>,
    any_host: HostRoutes,
    default_backend: Option<Arc<Backend>>,
}

impl Table {
    /// Builds the table from the Ingresses this node serves (already
    /// filtered by class) and every Service and EndpointSlice. On conflicts
    /// (same host, path and type) the oldest Ingress wins, as upstream
    /// controllers do.
    pub fn build(ingresses: &[Ingress], services: &[Service], slices: &[EndpointSlice]) -> Self {
        let mut ingresses: Vec<&Ingress> = ingresses.iter().collect();
        ingresses.sort_by_key(|i| {
            (
                i.metadata.creation_timestamp.as_ref().map(|t| t.0),
                i.metadata.namespace.clone(),
                i.metadata.name.clone(),
            )
        });
        let mut resolver = Resolver::new(services, slices);
        let mut table = Table::default();
        for ingress in ingresses {
            let namespace = ingress.metadata.namespace.as_deref().unwrap_or("default");
            let Some(spec) = &ingress.spec else { continue };
            let default_backend = spec
                .default_backend
                .as_ref()
                .map(|b| resolver.backend(namespace, b));
            if table.default_backend.is_none() {
                table.default_backend = default_backend.clone();
            }
            for rule in spec.rules.iter().flatten() {
                let routes = match rule.host.as_deref().map(normalise_host) {
                    None => &mut table.any_host,
                    Some(host) => match host.strip_prefix("*.") {
                        Some(suffix) => table.wildcard.entry(suffix.to_owned()).or_default(),
                        None => table.exact.entry(host).or_default(),
                    },
                };
                if routes.default_backend.is_none() {
                    routes.default_backend = default_backend.clone();
                }
                for path in rule.http.iter().flat_map(|h| &h.paths) {
                    let exact = path.path_type == "Exact";
                    let route_path = path.path.clone().unwrap_or_else(|| "/".to_owned());
                    if routes
                        .paths
                        .iter()
                        .any(|p| p.path == route_path && p.exact == exact)
                    {
                        continue;
                    }
                    routes.paths.push(PathRoute {
                        path: route_path,
                        exact,
                        backend: resolver.backend(namespace, &path.backend),
                    });
                }
            }
        }
        let order = |routes: &mut HostRoutes| {
            routes
                .paths
                .sort_by(|a, b| b.path.len().cmp(&a.path.len()).then(b.exact.cmp(&a.exact)));
        };
        table.exact.values_mut().for_each(order);
        table.wildcard.values_mut().for_each(order);
        order(&mut table.any_host);
        table
    }

    /// The route of a request for `host` (a Host header, port allowed) and
    /// `path`: the rules of the exact host, else of a matching `*.` wildcard
    /// (one label), else the rules without host; within them the longest
    /// matching path (exact before prefix); else that host's default
    /// backend, else the cluster-wide one.
    pub fn route(&self, host: &str, path: &str) -> Route {
        let host = normalised(strip_port(host));
        let wildcard = || {
            let (first, rest) = host.split_once('.')?;
            (!first.is_empty()).then(|| self.wildcard.get(rest))?
        };
        let routes = self
            .exact
            .get(host.as_ref())
            .or_else(wildcard)
            .unwrap_or(&self.any_host);
        routes
            .paths
            .iter()
            .find(|p| path_matches(&p.path, p.exact, path))
            .map(|p| &p.backend)
            .or(routes.default_backend.as_ref())
            .or(self.default_backend.as_ref())
            .map_or(Route::NotFound, |b| Route::Backend(Arc::clone(b)))
    }
}

/// Whether request path `path` matches an Ingress path: `Exact` is string
/// equality; `Prefix` (and `ImplementationSpecific`, treated as it) matches
/// whole `/`-separated elements, ignoring a trailing slash, so `/foo`
/// matches `/foo` and `/foo/bar` but not `/foobar`.
pub fn path_matches(rule: &str, exact: bool, path: &str) -> bool {
    if exact {
        return rule == path;
    }
    let rule = rule.trim_end_matches('/');
    if rule.is_empty() {
        return true;
    }
    match path.strip_prefix(rule) {
        Some(rest) => rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

/// A host without its port (`[::1]:80` keeps its brackets off).
fn strip_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.chars().all(|c| c.is_ascii_digit()) => name,
        _ => host,
    }
}

/// Hosts compare case-insensitively and without a trailing dot.
pub(crate) fn normalise_host(host: &str) -> String {
    normalised(host).into_owned()
}

/// [`normalise_host`] without a copy when `host` is already normal, as
/// nearly every request's is.
fn normalised(host: &str) -> std::borrow::Cow<'_, str> {
    let host = host.trim_end_matches('.');
    if host.bytes().any(|b| b.is_ascii_uppercase()) {
        std::borrow::Cow::Owned(host.to_ascii_lowercase())
    } else {
        std::borrow::Cow::Borrowed(host)
    }
}

/// Resolves Ingress backends to shared [`Backend`]s.
struct Resolver<'a> {
    services: HashMap<(&'a str, &'a str), &'a Service>,
    slices: BTreeMap<(&'a str, &'a str), Vec<&'a EndpointSlice>>,
    built: BTreeMap<String, Arc<Backend>>,
}

impl<'a> Resolver<'a> {
    fn new(services: &'a [Service], slices: &'a [EndpointSlice]) -> Self {
        let services = by_name(services);
        Self {
            services,
            slices: slices_by_service(slices),
            built: BTreeMap::new(),
        }
    }

    /// The backend of `backend` in `namespace`: no endpoints when the
    /// Service, its port or ready endpoints are missing, or when it is a
    /// resource backend (which this controller does not support).
    fn backend(&mut self, namespace: &str, backend: &IngressBackend) -> Arc<Backend> {
        let Some(service) = &backend.service else {
            let name = backend
                .resource
                .as_ref()
                .map(|r| format!("{namespace}/{}:{}", r.kind, r.name))
                .unwrap_or_default();
            return Arc::new(Backend {
                name,
                ..Backend::default()
            });
        };
        let port = service.port.as_ref();
        let port_text = port
            .and_then(|p| p.name.clone().or(p.number.map(|n| n.to_string())))
            .unwrap_or_default();
        let name = format!("{namespace}/{}:{port_text}", service.name);
        if let Some(built) = self.built.get(&name) {
            return Arc::clone(built);
        }
        let endpoints = self.endpoints(namespace, &service.name, port);
        let built = Arc::new(Backend {
            name: name.clone(),
            endpoints,
            next: AtomicUsize::new(0),
        });
        self.built.insert(name, Arc::clone(&built));
        built
    }

    fn endpoints(
        &self,
        namespace: &str,
        service: &str,
        port: Option<&k8s_openapi::api::networking::v1::ServiceBackendPort>,
    ) -> Vec<SocketAddr> {
        let Some(svc) = self.services.get(&(namespace, service)) else {
            return Vec::new();
        };
        let spec = svc.spec.as_ref();
        if spec.and_then(|s| s.type_.as_deref()) == Some("ExternalName") {
            return Vec::new();
        }
        let Some(service_port) = spec.and_then(|s| s.ports.as_ref()).and_then(|ports| {
            ports.iter().find(|p| match port {
                Some(want) => match (&want.name, want.number) {
                    (Some(name), _) if !name.is_empty() => p.name.as_deref() == Some(name),
                    (_, Some(number)) => p.port == number,
                    _ => false,
                },
                None => true,
            })
        }) else {
            return Vec::new();
        };
        let port_name = service_port.name.as_deref().unwrap_or("");
        let mut endpoints = Vec::new();
        for slice in self.slices.get(&(namespace, service)).into_iter().flatten() {
            let Some(target) = slice
                .ports
                .iter()
                .flatten()
                .find(|p| p.name.as_deref().unwrap_or("") == port_name)
                .and_then(|p| p.port)
            else {
                continue;
            };
            let Ok(target) = u16::try_from(target) else {
                continue;
            };
            for endpoint in &slice.endpoints {
                let ready = endpoint
                    .conditions
                    .as_ref()
                    .and_then(|c| c.ready)
                    .unwrap_or(true);
                if !ready {
                    continue;
                }
                endpoints.extend(
                    endpoint
                        .addresses
                        .iter()
                        .filter_map(|a| a.parse::<IpAddr>().ok())
                        .map(|ip| SocketAddr::new(ip, target)),
                );
            }
        }
        endpoints.sort();
        endpoints.dedup();
        endpoints
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn prefix_paths_match_whole_elements() {
        let cases = [
            ("/", false, "/anything", true),
            ("/foo", false, "/foo", true),
            ("/foo", false, "/foo/", true),
            ("/foo", false, "/foo/bar", true),
            ("/foo", false, "/foobar", false),
            ("/foo/", false, "/foo", true),
            ("/foo/", false, "/foo/bar", true),
            ("/aaa/bbb", false, "/aaa/bbbxyz", false),
            ("/foo", true, "/foo", true),
            ("/foo", true, "/foo/", false),
            ("/foo", true, "/FOO", false),
            ("/foo/", true, "/foo", false),
        ];
        for (rule, exact, path, want) in cases {
            assert_eq!(
                path_matches(rule, exact, path),
                want,
                "{rule} {exact} {path}"
            );
        }
    }

    fn ingress(name: &str, age: i64, spec: serde_json::Value) -> Ingress {
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "ns",
                "creationTimestamp": format!("2026-01-01T00:00:{age:02}Z")},
            "spec": spec,
        }))
        .unwrap()
    }

    fn service(name: &str, port: i32, port_name: &str) -> Service {
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "ns"},
            "spec": {"ports": [{"name": port_name, "port": port}]},
        }))
        .unwrap()
    }

    fn slice(service: &str, port_name: &str, port: i32, ips: &[(&str, bool)]) -> EndpointSlice {
        serde_json::from_value(json!({
            "metadata": {"name": format!("{service}-x"), "namespace": "ns",
                "labels": {"kubernetes.io/service-name": service}},
            "addressType": "IPv4",
            "ports": [{"name": port_name, "port": port}],
            "endpoints": ips.iter().map(|(ip, ready)| json!({
                "addresses": [ip], "conditions": {"ready": ready}})).collect::<Vec<_>>(),
        }))
        .unwrap()
    }

    fn path(path: &str, kind: &str, service: &str, port: serde_json::Value) -> serde_json::Value {
        json!({"path": path, "pathType": kind,
            "backend": {"service": {"name": service, "port": port}}})
    }

    fn routed(table: &Table, host: &str, path: &str) -> String {
        match table.route(host, path) {
            Route::Backend(b) => match b.pick() {
                Some(addr) => addr.to_string(),
                None => format!("503 {}", b.name),
            },
            Route::NotFound => "404".to_owned(),
        }
    }

    #[test]
    fn hosts_paths_and_default_backends_route_as_the_spec_says() {
        let services = [
            service("a", 80, "http"),
            service("b", 8080, ""),
            service("def", 80, ""),
            service("empty", 80, ""),
        ];
        let slices = [
            slice(
                "a",
                "http",
                8000,
                &[("10.0.0.1", true), ("10.0.0.9", false)],
            ),
            slice("b", "", 9000, &[("10.0.0.2", true)]),
            slice("def", "", 7000, &[("10.0.0.3", true)]),
            slice("empty", "", 7000, &[("10.0.0.4", false)]),
        ];
        let ingresses = [
            ingress(
                "first",
                1,
                json!({"rules": [
                    {"host": "Foo.Example.com", "http": {"paths": [
                        path("/", "Prefix", "a", json!({"name": "http"})),
                        path("/b", "Prefix", "b", json!({"number": 8080})),
                        path("/exact", "Exact", "b", json!({"number": 8080})),
                        path("/exact", "Prefix", "a", json!({"number": 80})),
                        path("/none", "Prefix", "empty", json!({"number": 80})),
                        path("/nosvc", "Prefix", "missing", json!({"number": 80})),
                        path("/noport", "Prefix", "a", json!({"number": 81})),
                    ]}},
                    {"host": "*.wild.com", "http": {"paths": [
                        path("/", "Prefix", "b", json!({"number": 8080})),
                    ]}},
                    {"http": {"paths": [
                        path("/any", "ImplementationSpecific", "b", json!({"number": 8080})),
                    ]}},
                ]}),
            ),
            ingress(
                "second",
                2,
                json!({
                "defaultBackend": {"service": {"name": "def", "port": {"number": 80}}},
                "rules": [
                    // Older "first" already has this host and path: ignored.
                    {"host": "foo.example.com", "http": {"paths": [
                        path("/b", "Prefix", "def", json!({"number": 80})),
                    ]}},
                    {"host": "only.example.com", "http": {"paths": [
                        path("/x", "Exact", "a", json!({"name": "http"})),
                    ]}},
                ]}),
            ),
        ];
        let table = Table::build(&ingresses, &services, &slices);
        let cases = [
            ("foo.example.com", "/", "10.0.0.1:8000"),
            ("FOO.example.com:8080", "/zzz", "10.0.0.1:8000"),
            ("foo.example.com.", "/b", "10.0.0.2:9000"),
            ("foo.example.com", "/b/c", "10.0.0.2:9000"),
            ("foo.example.com", "/bc", "10.0.0.1:8000"),
            ("foo.example.com", "/exact", "10.0.0.2:9000"),
            ("foo.example.com", "/exact/more", "10.0.0.1:8000"),
            ("foo.example.com", "/none", "503 ns/empty:80"),
            ("foo.example.com", "/nosvc/x", "503 ns/missing:80"),
            ("foo.example.com", "/noport", "503 ns/a:81"),
            ("x.wild.com", "/", "10.0.0.2:9000"),
            ("y.x.wild.com", "/any", "10.0.0.2:9000"),
            ("wild.com", "/", "10.0.0.3:7000"),
            ("other.com", "/any/thing", "10.0.0.2:9000"),
            ("other.com", "/", "10.0.0.3:7000"),
            // A host with rules but no matching path: its Ingress's default backend.
            ("only.example.com", "/x", "10.0.0.1:8000"),
            ("only.example.com", "/x/y", "10.0.0.3:7000"),
        ];
        for (host, path, want) in cases {
            assert_eq!(routed(&table, host, path), want, "{host} {path}");
        }
        let no_default = Table::build(&ingresses[..1], &services, &slices);
        assert_eq!(routed(&no_default, "other.com", "/"), "404");
        assert_eq!(routed(&no_default, "x.wild.com", "/"), "10.0.0.2:9000");
        assert_eq!(routed(&Table::default(), "a", "/"), "404");
    }

    #[test]
    fn endpoints_are_picked_round_robin() {
        let services = [service("a", 80, "")];
        let slices = [slice(
            "a",
            "",
            80,
            &[("10.0.0.2", true), ("10.0.0.1", true)],
        )];
        let ingresses = [ingress(
            "i",
            1,
            json!({"rules": [{"http": {"paths": [
            path("/", "Prefix", "a", json!({"number": 80}))]}}]}),
        )];
        let table = Table::build(&ingresses, &services, &slices);
        let picks: Vec<String> = (0..4).map(|_| routed(&table, "h", "/")).collect();
        assert_eq!(
            picks,
            ["10.0.0.1:80", "10.0.0.2:80", "10.0.0.1:80", "10.0.0.2:80"]
        );
    }
}
