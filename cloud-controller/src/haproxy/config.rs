//! Renders `haproxy.cfg` for every Service the `haproxy` provider balances:
//! per Service port a TCP frontend bound to the Service's address and a
//! backend of `node:NodePort` servers, health-checked (on the health-check
//! NodePort's `/healthz` under `externalTrafficPolicy: Local`, connecting
//! from the client's own address there when [`Settings::transparent`]). The
//! output depends only on the input, sorted, so an unchanged set is
//! byte-equal and the provider can skip the reload.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::PathBuf;

use k8s_openapi::api::core::v1::Service;

use crate::nodes::TargetNode;
use crate::service::{health_check_node_port, key};

/// Why a Service cannot be balanced by HAProxy as written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// HAProxy balances TCP only; UDP and SCTP ports need another provider.
    #[error("port {port}/{protocol}: HAProxy balances TCP only")]
    Protocol {
        /// The Service port.
        port: i32,
        /// Its protocol.
        protocol: String,
    },
    /// The port has no NodePort (`allocateLoadBalancerNodePorts: false`, or
    /// not allocated yet), and HAProxy forwards to NodePorts.
    #[error("port {0} has no NodePort to forward to")]
    NoNodePort(i32),
    /// A port number outside 1-65535.
    #[error("port {0} is out of range")]
    OutOfRange(i32),
}

/// One Service port as HAProxy serves it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Port {
    /// The port clients connect to on the Service's address.
    pub port: u16,
    /// The NodePort every node forwards it on.
    pub node_port: u16,
}

/// Everything HAProxy needs for one Service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frontend {
    /// `namespace/name`.
    pub service: String,
    /// The address from the pool.
    pub address: IpAddr,
    /// Its ports, sorted.
    pub ports: Vec<Port>,
    /// Under `externalTrafficPolicy: Local`, the NodePort answering
    /// `/healthz` with 200 only on nodes with a local endpoint.
    pub health_check_node_port: Option<u16>,
    /// The target nodes, sorted by name.
    pub nodes: Vec<TargetNode>,
}

impl Frontend {
    /// The frontend of `service` at `address` forwarding to `nodes`.
    pub fn for_service(
        service: &Service,
        address: IpAddr,
        nodes: &[TargetNode],
    ) -> Result<Self, ConfigError> {
        let mut ports = Vec::new();
        for port in service.spec.iter().flat_map(|s| s.ports.iter().flatten()) {
            let protocol = port.protocol.as_deref().unwrap_or("TCP");
            if protocol != "TCP" {
                return Err(ConfigError::Protocol {
                    port: port.port,
                    protocol: protocol.into(),
                });
            }
            let node_port = port.node_port.ok_or(ConfigError::NoNodePort(port.port))?;
            let number = |n: i32| {
                u16::try_from(n)
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or(ConfigError::OutOfRange(n))
            };
            ports.push(Port {
                port: number(port.port)?,
                node_port: number(node_port)?,
            });
        }
        ports.sort();
        let mut nodes = nodes.to_vec();
        nodes.sort();
        Ok(Frontend {
            service: key(service),
            address,
            ports,
            health_check_node_port: health_check_node_port(service),
            nodes,
        })
    }
}

/// Settings of the whole file, from the provider's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The admin socket; with `expose-fd listeners` a reload hands the
    /// listening sockets to the new process, so no connection is refused.
    pub stats_socket: Option<PathBuf>,
    /// A UNIX socket HAProxy listens on while no Service has a frontend and
    /// there is no stats socket: HAProxy refuses a file without any
    /// listener ("will not start (no listener)"), so deleting the last
    /// Service could otherwise never be applied.
    pub idle_socket: Option<PathBuf>,
    /// Milliseconds between health checks of a server.
    pub check_interval_ms: u32,
    /// Failed checks before a server is taken out.
    pub fall: u32,
    /// Passed checks before it is put back.
    pub rise: u32,
    /// Connect to the nodes of `externalTrafficPolicy: Local` Services from
    /// the client's address (`source … usesrc clientip`), so the pods see
    /// the client as upstream's load balancers keep it. Needs the
    /// load-balancer host's TPROXY rule and route and the nodes' route to
    /// the clients through it (README, "Load balancers").
    pub transparent: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            stats_socket: None,
            idle_socket: None,
            check_interval_ms: 2000,
            fall: 2,
            rise: 2,
            transparent: false,
        }
    }
}

/// HAProxy names allow letters, digits and `-_.:`; Kubernetes names are DNS
/// labels, so `namespace_name_port` cannot collide.
fn section_name(service: &str, port: u16) -> String {
    format!("{}_{port}", service.replace('/', "_"))
}

/// `address:port` as HAProxy reads it; `ipv6@` keeps the colons of an IPv6
/// address apart from the port's.
fn endpoint(address: IpAddr, port: u16) -> String {
    match address {
        IpAddr::V4(v4) => format!("{v4}:{port}"),
        IpAddr::V6(v6) => format!("ipv6@{v6}:{port}"),
    }
}

/// The `source` line making HAProxy connect from the client's address,
/// written for the family of the frontend's address (the clients').
/// `ipv6@:::0` is `::` with port 0 (any): HAProxy takes the last colon as
/// the port's.
fn transparent_source(frontend: IpAddr) -> &'static str {
    match frontend {
        IpAddr::V4(_) => "    source 0.0.0.0 usesrc clientip\n",
        IpAddr::V6(_) => "    source ipv6@:::0 usesrc clientip\n",
    }
}

/// The interval between checks of a server whose state is changing: a
/// quarter of the normal one, at least 100 ms.
fn fast_interval_ms(interval_ms: u32) -> u32 {
    (interval_ms / 4).max(100)
}

/// The whole `haproxy.cfg` for `frontends`, sorted by Service and port,
/// stamped with its version ([`super::version`]).
pub fn render(settings: &Settings, frontends: &[Frontend]) -> String {
    let mut frontends: Vec<&Frontend> = frontends.iter().collect();
    frontends.sort_by(|a, b| a.service.cmp(&b.service));
    let mut out =
        String::from("# Written by the berth cloud-controller; changes here are overwritten.\n");
    // No `maxconn`: HAProxy derives it from the file-descriptor limit it
    // runs under. A fixed 100000 needs a limit of 200032, and where the
    // hard limit is lower every reload fails ("Cannot raise FD limit")
    // while the old process keeps the old file.
    out.push_str("global\n");
    if let Some(socket) = &settings.stats_socket {
        let _ = writeln!(
            out,
            "    stats socket {} mode 600 level admin expose-fd listeners",
            socket.display()
        );
    }
    out.push_str(concat!(
        "\ndefaults\n",
        "    mode tcp\n",
        // Nodes sit on the load balancer's LAN: a connect that has not
        // completed in a second goes to a dead node. Health checks connect
        // within min(this, inter), so this also bounds how long each failed
        // check of a node that drops packets takes.
        "    timeout connect 1s\n",
        // Without it a whole check may take `inter`; with it, a check
        // connects within the second above and waits a second for the
        // answer.
        "    timeout check 1s\n",
        "    timeout client 1h\n",
        "    timeout server 1h\n",
        // Redispatch on every retry, not only the last: a connection to a
        // node that died since its last check then costs one connect
        // timeout, not four, before another node serves it.
        "    option redispatch 1\n",
        "    retries 3\n",
    ));
    if frontends.is_empty() && settings.stats_socket.is_none() {
        if let Some(idle) = &settings.idle_socket {
            let _ = write!(
                out,
                "\n# No Service has a load balancer; HAProxy needs one listener to run.\nfrontend berth_idle\n    bind unix@{}\n",
                idle.display()
            );
        }
    }
    for frontend in frontends {
        for port in &frontend.ports {
            let name = section_name(&frontend.service, port.port);
            let _ = write!(
                out,
                "\nfrontend {name}\n    bind {}\n    default_backend {name}\n\nbackend {name}\n    balance roundrobin\n",
                endpoint(frontend.address, port.port)
            );
            // After a first failed check, the next ones come every
            // `fastinter`, so a dead node is out after about one interval
            // plus `fall` quick checks rather than `fall` full intervals.
            let mut check = format!(
                "check inter {}ms fastinter {}ms fall {} rise {}",
                settings.check_interval_ms,
                fast_interval_ms(settings.check_interval_ms),
                settings.fall,
                settings.rise
            );
            if let Some(health) = frontend.health_check_node_port {
                // Local: the NodePort keeps the source it sees (no SNAT),
                // so the pod sees whatever address HAProxy connects from.
                // Cluster NodePorts SNAT anyway: those keep the LB host's.
                if settings.transparent {
                    out.push_str(transparent_source(frontend.address));
                }
                out.push_str(concat!(
                    "    option httpchk\n",
                    "    http-check send meth GET uri /healthz\n",
                    "    http-check expect status 200\n",
                ));
                let _ = write!(check, " port {health}");
            }
            for node in &frontend.nodes {
                let _ = writeln!(
                    out,
                    "    server {} {} {check}",
                    node.name,
                    endpoint(node.address, port.node_port)
                );
            }
        }
    }
    super::version::stamp(&out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{lb_service, target as node};

    fn service(name: &str, ports: &[(i32, i32)], local_health: Option<i32>) -> Service {
        let mut service = lb_service(name, ports);
        let spec = service.spec.as_mut().unwrap();
        spec.external_traffic_policy = Some(
            if local_health.is_some() {
                "Local"
            } else {
                "Cluster"
            }
            .into(),
        );
        spec.health_check_node_port = local_health;
        service
    }

    fn frontends() -> Vec<Frontend> {
        let nodes = [node("node-b", "10.0.0.2"), node("node-a", "10.0.0.1")];
        vec![
            Frontend::for_service(
                &service("web", &[(443, 30443), (80, 30080)], None),
                "192.0.2.10".parse().unwrap(),
                &nodes,
            )
            .unwrap(),
            Frontend::for_service(
                &service("api", &[(8080, 31080)], Some(32000)),
                "192.0.2.11".parse().unwrap(),
                &nodes[..1],
            )
            .unwrap(),
        ]
    }

    const EXPECTED: &str = "\
# Written by the berth cloud-controller; changes here are overwritten.
global
    stats socket /run/berth-lb/admin.sock mode 600 level admin expose-fd listeners

defaults
    mode tcp
    timeout connect 1s
    timeout check 1s
    timeout client 1h
    timeout server 1h
    option redispatch 1
    retries 3

frontend shop_api_8080
    bind 192.0.2.11:8080
    default_backend shop_api_8080

backend shop_api_8080
    balance roundrobin
    option httpchk
    http-check send meth GET uri /healthz
    http-check expect status 200
    server node-b 10.0.0.2:31080 check inter 2000ms fastinter 500ms fall 2 rise 2 port 32000

frontend shop_web_80
    bind 192.0.2.10:80
    default_backend shop_web_80

backend shop_web_80
    balance roundrobin
    server node-a 10.0.0.1:30080 check inter 2000ms fastinter 500ms fall 2 rise 2
    server node-b 10.0.0.2:30080 check inter 2000ms fastinter 500ms fall 2 rise 2

frontend shop_web_443
    bind 192.0.2.10:443
    default_backend shop_web_443

backend shop_web_443
    balance roundrobin
    server node-a 10.0.0.1:30443 check inter 2000ms fastinter 500ms fall 2 rise 2
    server node-b 10.0.0.2:30443 check inter 2000ms fastinter 500ms fall 2 rise 2
";

    fn settings() -> Settings {
        Settings {
            stats_socket: Some("/run/berth-lb/admin.sock".into()),
            ..Settings::default()
        }
    }

    #[test]
    fn renders_a_frontend_and_checked_backend_per_port() {
        assert_eq!(
            render(&settings(), &frontends()),
            super::super::version::stamp(EXPECTED)
        );
    }

    /// A fixed `maxconn` made HAProxy refuse every reload where the hard
    /// file-descriptor limit was below twice it (seen with real traffic).
    #[test]
    fn maxconn_is_left_to_the_descriptor_limit() {
        let out = render(&settings(), &frontends());
        assert!(!out.contains("maxconn"), "{out}");
    }

    #[test]
    fn output_does_not_depend_on_input_order() {
        let mut reversed = frontends();
        reversed.reverse();
        assert_eq!(
            render(&settings(), &reversed),
            render(&settings(), &frontends())
        );
    }

    #[test]
    fn transparent_connects_from_the_client_for_local_services_only() {
        let transparent = Settings {
            transparent: true,
            ..settings()
        };
        let out = render(&transparent, &frontends());
        let local = "backend shop_api_8080\n    balance roundrobin\n    source 0.0.0.0 usesrc clientip\n    option httpchk\n";
        assert!(out.contains(local), "{out}");
        assert_eq!(out.matches("usesrc").count(), 1, "Cluster backends: {out}");
        assert!(!render(&settings(), &frontends()).contains("usesrc"));
    }

    #[test]
    fn transparent_source_follows_the_clients_family() {
        let v6 = Frontend::for_service(
            &service("v6", &[(80, 30080)], Some(32000)),
            "2001:db8::10".parse().unwrap(),
            &[node("n", "fd00::1")],
        )
        .unwrap();
        let transparent = Settings {
            transparent: true,
            ..Settings::default()
        };
        let out = render(&transparent, &[v6]);
        assert!(
            out.contains("    source ipv6@:::0 usesrc clientip\n"),
            "{out}"
        );
    }

    #[test]
    fn ipv6_addresses_are_marked_for_haproxy() {
        let frontend = Frontend::for_service(
            &service("v6", &[(80, 30080)], None),
            "2001:db8::10".parse().unwrap(),
            &[node("n", "fd00::1")],
        )
        .unwrap();
        let out = render(&Settings::default(), &[frontend]);
        assert!(out.contains("    bind ipv6@2001:db8::10:80\n"), "{out}");
        assert!(
            out.contains("    server n ipv6@fd00::1:30080 check"),
            "{out}"
        );
        assert!(!out.contains("stats socket"));
    }

    #[test]
    fn refuses_ports_haproxy_cannot_serve() {
        let address = "192.0.2.1".parse().unwrap();
        let mut udp = service("dns", &[(53, 30053)], None);
        udp.spec.as_mut().unwrap().ports.as_mut().unwrap()[0].protocol = Some("UDP".into());
        assert_eq!(
            Frontend::for_service(&udp, address, &[]),
            Err(ConfigError::Protocol {
                port: 53,
                protocol: "UDP".into()
            })
        );
        let mut no_node_port = service("web", &[(80, 30080)], None);
        no_node_port.spec.as_mut().unwrap().ports.as_mut().unwrap()[0].node_port = None;
        assert_eq!(
            Frontend::for_service(&no_node_port, address, &[]),
            Err(ConfigError::NoNodePort(80))
        );
        assert_eq!(
            Frontend::for_service(&service("web", &[(70000, 30080)], None), address, &[]),
            Err(ConfigError::OutOfRange(70000))
        );
    }

    /// Debian's HAProxy (2.6) accepts what we write, transparent sources
    /// included; skipped where it is not installed (tests/run-all.sh
    /// installs it).
    #[test]
    fn haproxy_accepts_the_rendered_file() {
        let Ok(haproxy) = which("haproxy") else {
            eprintln!("haproxy not installed: skipping the syntax check");
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let mut all = frontends();
        all.push(
            Frontend::for_service(
                &service("v6", &[(80, 30080)], None),
                "2001:db8::10".parse().unwrap(),
                &[node("n", "fd00::1")],
            )
            .unwrap(),
        );
        all.push(
            Frontend::for_service(
                &service("v6-local", &[(80, 30082)], Some(32001)),
                "2001:db8::11".parse().unwrap(),
                &[node("n", "fd00::1")],
            )
            .unwrap(),
        );
        all.push(
            Frontend::for_service(
                &service("empty", &[(80, 30081)], None),
                "192.0.2.12".parse().unwrap(),
                &[],
            )
            .unwrap(),
        );
        let path = dir.path().join("haproxy.cfg");
        let transparent = Settings {
            transparent: true,
            ..settings()
        };
        let text = render(&transparent, &all);
        assert_eq!(text.matches("usesrc clientip").count(), 2, "{text}");
        let idle = Settings {
            idle_socket: Some(dir.path().join("haproxy.cfg.idle.sock")),
            ..Settings::default()
        };
        for text in [text, render(&idle, &[])] {
            std::fs::write(&path, &text).unwrap();
            let out = std::process::Command::new(&haproxy)
                .arg("-c")
                .arg("-f")
                .arg(&path)
                .output()
                .unwrap();
            let said = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(out.status.success(), "haproxy -c refused:\n{text}\n{said}");
            assert!(!said.contains("[WARNING]"), "haproxy -c warned:\n{said}");
        }
    }

    fn which(name: &str) -> Result<PathBuf, ()> {
        let path = std::env::var_os("PATH").ok_or(())?;
        std::env::split_paths(&path)
            .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
            .ok_or(())
    }

    #[test]
    fn with_no_frontend_and_no_stats_socket_an_idle_listener_keeps_haproxy_valid() {
        let settings = Settings {
            idle_socket: Some("/etc/haproxy/haproxy.cfg.idle.sock".into()),
            ..Settings::default()
        };
        let text = render(&settings, &[]);
        assert!(
            text.contains(
                "frontend berth_idle\n    bind unix@/etc/haproxy/haproxy.cfg.idle.sock\n"
            ),
            "{text}"
        );
        assert!(!render(&settings, &frontends()).contains("berth_idle"));
        let with_stats = Settings {
            stats_socket: Some("/run/admin.sock".into()),
            ..settings
        };
        assert!(!render(&with_stats, &[]).contains("berth_idle"));
    }
}
