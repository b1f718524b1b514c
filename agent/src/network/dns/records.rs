//! Services + EndpointSlices → the answers of the cluster zone, pure: the
//! records CoreDNS's `kubernetes` plugin serves (as the Kubernetes DNS
//! specification lays them out), looked up by name and type. No I/O here;
//! a name this module does not own is reported as such, never guessed.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::rdata::{A, AAAA, CNAME, NS, PTR, SOA, SRV};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;

/// The TTL of every record, the SOA included (the `ttl 30` of the Corefile
/// Kubernetes ships for CoreDNS).
pub const TTL: u32 = 30;

/// The label that ties an EndpointSlice to its Service.
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// One named port of a Service or an endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Port {
    name: String,
    /// `tcp`, `udp` or `sctp`, as the SRV label spells it.
    protocol: String,
    port: u16,
}

/// A ready endpoint: its address and the first label of its DNS name.
#[derive(Debug, Clone)]
struct Endpoint {
    ip: IpAddr,
    /// `spec.hostname`, or the address with dashes (`10-42-0-5`).
    hostname: String,
    ports: Vec<Port>,
}

#[derive(Debug, Clone)]
enum Kind {
    ClusterIp(Vec<IpAddr>),
    Headless,
    ExternalName(Name),
}

#[derive(Debug, Clone)]
struct ServiceEntry {
    kind: Kind,
    ports: Vec<Port>,
    endpoints: Vec<Endpoint>,
}

/// A DNS answer: the response code and the three record sections.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Answer {
    /// NOERROR or NXDOMAIN.
    pub code: ResponseCode,
    /// The answer section.
    pub answers: Vec<Record>,
    /// The authority section (the zone's SOA on negative answers).
    pub authority: Vec<Record>,
    /// The additional section (addresses of SRV targets).
    pub additionals: Vec<Record>,
}

/// Everything the cluster zone answers, indexed for lookups; rebuilt from
/// the watch caches whenever they change.
#[derive(Debug, Clone)]
pub struct ClusterRecords {
    zone: Name,
    serial: u32,
    /// Services by namespace, then name (looked up without allocating).
    services: HashMap<String, HashMap<String, ServiceEntry>>,
    reverse: HashMap<IpAddr, Name>,
}

fn protocol_label(protocol: Option<&str>) -> String {
    protocol.unwrap_or("TCP").to_ascii_lowercase()
}

/// `10.42.0.5` → `10-42-0-5`; `fd00::5` → `fd00--5`, as CoreDNS names
/// endpoints without a hostname.
fn dashed(ip: IpAddr) -> String {
    ip.to_string().replace(['.', ':'], "-")
}

/// `10-42-0-5` → 10.42.0.5 (pod records).
fn undashed(label: &str) -> Option<IpAddr> {
    if let Ok(v4) = label.replace('-', ".").parse::<Ipv4Addr>() {
        return Some(IpAddr::V4(v4));
    }
    label
        .replace('-', ":")
        .parse::<Ipv6Addr>()
        .ok()
        .map(IpAddr::V6)
}

fn name(text: &str) -> Option<Name> {
    Name::from_ascii(text).ok().map(|n| n.to_lowercase())
}

fn service_entry(service: &Service) -> Option<ServiceEntry> {
    let spec = service.spec.as_ref()?;
    let ports = spec
        .ports
        .iter()
        .flatten()
        .filter_map(|p| {
            Some(Port {
                name: p.name.clone().filter(|n| !n.is_empty())?,
                protocol: protocol_label(p.protocol.as_deref()),
                port: u16::try_from(p.port).ok()?,
            })
        })
        .collect();
    let kind = if spec.type_.as_deref() == Some("ExternalName") {
        let mut target = name(spec.external_name.as_deref()?)?;
        target.set_fqdn(true);
        Kind::ExternalName(target)
    } else {
        let mut ips: Vec<&str> = spec
            .cluster_ips
            .iter()
            .flatten()
            .map(String::as_str)
            .collect();
        if ips.is_empty() {
            ips.extend(spec.cluster_ip.as_deref());
        }
        if ips.is_empty() || ips == ["None"] {
            Kind::Headless
        } else {
            Kind::ClusterIp(ips.iter().filter_map(|ip| ip.parse().ok()).collect())
        }
    };
    Some(ServiceEntry {
        kind,
        ports,
        endpoints: Vec::new(),
    })
}

fn ready_endpoints(slice: &EndpointSlice) -> Vec<Endpoint> {
    if slice.address_type == "FQDN" {
        return Vec::new();
    }
    let ports: Vec<Port> = slice
        .ports
        .iter()
        .flatten()
        .filter_map(|p| {
            Some(Port {
                name: p.name.clone().unwrap_or_default(),
                protocol: protocol_label(p.protocol.as_deref()),
                port: u16::try_from(p.port?).ok()?,
            })
        })
        .collect();
    let mut endpoints = Vec::new();
    for endpoint in &slice.endpoints {
        let ready = endpoint
            .conditions
            .as_ref()
            .and_then(|c| c.ready)
            .unwrap_or(true);
        if !ready {
            continue;
        }
        for address in &endpoint.addresses {
            let Ok(ip) = address.parse::<IpAddr>() else {
                continue;
            };
            endpoints.push(Endpoint {
                ip,
                hostname: endpoint
                    .hostname
                    .clone()
                    .filter(|h| !h.is_empty())
                    .map(|h| h.to_ascii_lowercase())
                    .unwrap_or_else(|| dashed(ip)),
                ports: ports.clone(),
            });
        }
    }
    endpoints
}

/// The reverse-lookup name of `ip` (`5.0.42.10.in-addr.arpa.`).
fn reverse_ip(name: &Name) -> Option<IpAddr> {
    let labels: Vec<String> = name
        .iter()
        .map(|l| String::from_utf8_lossy(l).to_ascii_lowercase())
        .collect();
    match labels.as_slice() {
        [a, b, c, d, in_addr, arpa] if in_addr == "in-addr" && arpa == "arpa" => {
            format!("{d}.{c}.{b}.{a}").parse().ok().map(IpAddr::V4)
        }
        [nibbles @ .., ip6, arpa] if ip6 == "ip6" && arpa == "arpa" && nibbles.len() == 32 => {
            let mut value: u128 = 0;
            for nibble in nibbles.iter().rev() {
                value = (value << 4) | u128::from(u8::from_str_radix(nibble, 16).ok()?);
            }
            Some(IpAddr::V6(Ipv6Addr::from(value)))
        }
        _ => None,
    }
}

impl ClusterRecords {
    /// The records of zone `domain` (`cluster.local`) for `services` and
    /// `slices`; `serial` is the SOA serial (when the data last changed).
    pub fn build(
        domain: &str,
        serial: u32,
        services: &[Service],
        slices: &[EndpointSlice],
    ) -> Self {
        let mut zone = name(domain).unwrap_or_else(|| Name::from_ascii("cluster.local").unwrap());
        zone.set_fqdn(true);
        let mut entries: HashMap<(String, String), ServiceEntry> = HashMap::new();
        for service in services {
            let (Some(namespace), Some(svc)) = (
                service.metadata.namespace.as_ref(),
                service.metadata.name.as_ref(),
            ) else {
                continue;
            };
            if let Some(entry) = service_entry(service) {
                entries.insert((namespace.clone(), svc.clone()), entry);
            }
        }
        for slice in slices {
            let (Some(namespace), Some(service)) = (
                slice.metadata.namespace.as_ref(),
                slice
                    .metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(SERVICE_NAME_LABEL)),
            ) else {
                continue;
            };
            if let Some(entry) = entries.get_mut(&(namespace.clone(), service.clone())) {
                entry.endpoints.extend(ready_endpoints(slice));
            }
        }
        let mut reverse = HashMap::new();
        let mut keys: Vec<&(String, String)> = entries.keys().collect();
        keys.sort();
        // Endpoints first, so a Service's own address wins where both match.
        for (namespace, svc) in &keys {
            let entry = &entries[&(namespace.clone(), svc.clone())];
            for endpoint in &entry.endpoints {
                if let Some(n) = name(&format!(
                    "{}.{svc}.{namespace}.svc.{zone}",
                    endpoint.hostname
                )) {
                    reverse.entry(endpoint.ip).or_insert(n);
                }
            }
        }
        for (namespace, svc) in &keys {
            if let Kind::ClusterIp(ips) = &entries[&(namespace.clone(), svc.clone())].kind {
                for ip in ips {
                    if let Some(n) = name(&format!("{svc}.{namespace}.svc.{zone}")) {
                        reverse.insert(*ip, n);
                    }
                }
            }
        }
        let mut services: HashMap<String, HashMap<String, ServiceEntry>> = HashMap::new();
        for ((namespace, name), entry) in entries {
            services.entry(namespace).or_default().insert(name, entry);
        }
        Self {
            zone,
            serial,
            services,
            reverse,
        }
    }

    /// The zone this serves (`cluster.local.`).
    pub fn zone(&self) -> &Name {
        &self.zone
    }

    /// The zone's SOA record.
    fn soa(&self) -> Record {
        let join = |label: &str| {
            Name::from_ascii(label)
                .and_then(|n| n.append_domain(&self.zone))
                .unwrap_or_else(|_| self.zone.clone())
        };
        Record::from_rdata(
            self.zone.clone(),
            TTL,
            RData::SOA(SOA::new(
                join("ns.dns"),
                join("hostmaster"),
                self.serial,
                7200,
                1800,
                86400,
                TTL,
            )),
        )
    }

    fn negative(&self, code: ResponseCode) -> Answer {
        Answer {
            code,
            authority: vec![self.soa()],
            ..Answer::default()
        }
    }

    /// The answer for `qname`/`qtype`, or `None` when the name is not the
    /// cluster's (outside the zone, or a reverse name of an address no
    /// Service or endpoint has) and must be forwarded.
    pub fn answer(&self, qname: &Name, qtype: RecordType) -> Option<Answer> {
        let lower = qname.to_lowercase();
        // The zone is lowercase already.
        if !self.zone.zone_of_case(&lower) {
            if qtype != RecordType::PTR {
                return None;
            }
            let target = self.reverse.get(&reverse_ip(&lower)?)?;
            return Some(Answer {
                answers: vec![Record::from_rdata(
                    qname.clone(),
                    TTL,
                    RData::PTR(PTR(target.clone())),
                )],
                ..Answer::default()
            });
        }
        let relative = usize::from(lower.num_labels() - self.zone.num_labels());
        let labels: Vec<String> = lower
            .iter()
            .take(relative)
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .collect();
        let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
        let nodata = || self.negative(ResponseCode::NoError);
        let nxdomain = || self.negative(ResponseCode::NXDomain);
        let records = |rdata: Vec<RData>| Answer {
            answers: rdata
                .into_iter()
                .map(|r| Record::from_rdata(qname.clone(), TTL, r))
                .collect(),
            ..Answer::default()
        };
        let addresses = |ips: &mut dyn Iterator<Item = IpAddr>| -> Answer {
            let mut seen = HashSet::new();
            let rdata: Vec<RData> = ips
                .filter(|ip| seen.insert(*ip))
                .filter_map(|ip| address_rdata(ip, qtype))
                .collect();
            if rdata.is_empty() {
                nodata()
            } else {
                records(rdata)
            }
        };
        Some(match labels.as_slice() {
            [] => match qtype {
                RecordType::SOA => Answer {
                    answers: vec![self.soa()],
                    ..Answer::default()
                },
                RecordType::NS => records(vec![RData::NS(NS(self.soa_mname()))]),
                _ => nodata(),
            },
            ["svc"] | ["pod"] => nodata(),
            [namespace, "svc"] | [namespace, "pod"] => {
                if self.services.contains_key(*namespace) {
                    nodata()
                } else {
                    nxdomain()
                }
            }
            [ip, _namespace, "pod"] => match undashed(ip) {
                Some(ip) => addresses(&mut std::iter::once(ip)),
                None => nxdomain(),
            },
            [svc, namespace, "svc"] => {
                let Some(entry) = self.service(namespace, svc) else {
                    return Some(nxdomain());
                };
                match &entry.kind {
                    Kind::ExternalName(target) => match qtype {
                        RecordType::A | RecordType::AAAA | RecordType::CNAME | RecordType::ANY => {
                            records(vec![RData::CNAME(CNAME(target.clone()))])
                        }
                        _ => nodata(),
                    },
                    Kind::ClusterIp(ips) => addresses(&mut ips.iter().copied()),
                    Kind::Headless if entry.endpoints.is_empty() => nxdomain(),
                    Kind::Headless => addresses(&mut entry.endpoints.iter().map(|e| e.ip)),
                }
            }
            [port, protocol, svc, namespace, "svc"]
                if port.starts_with('_') && protocol.starts_with('_') =>
            {
                self.srv(qname, qtype, namespace, svc, &port[1..], &protocol[1..])
            }
            [hostname, svc, namespace, "svc"] => {
                let Some(entry) = self.service(namespace, svc) else {
                    return Some(nxdomain());
                };
                let mut ips = entry
                    .endpoints
                    .iter()
                    .filter(|e| e.hostname == *hostname)
                    .map(|e| e.ip)
                    .peekable();
                if ips.peek().is_none() {
                    nxdomain()
                } else {
                    addresses(&mut ips)
                }
            }
            _ => nxdomain(),
        })
    }

    fn soa_mname(&self) -> Name {
        Name::from_ascii("ns.dns")
            .and_then(|n| n.append_domain(&self.zone))
            .unwrap_or_else(|_| self.zone.clone())
    }

    fn service(&self, namespace: &str, name: &str) -> Option<&ServiceEntry> {
        self.services.get(namespace)?.get(name)
    }

    /// `_port._proto.NAME.NS.svc.zone`: one SRV for a Service with a
    /// ClusterIP, one per ready endpoint for a headless one.
    fn srv(
        &self,
        qname: &Name,
        qtype: RecordType,
        namespace: &str,
        svc: &str,
        port: &str,
        protocol: &str,
    ) -> Answer {
        let Some(entry) = self.service(namespace, svc) else {
            return self.negative(ResponseCode::NXDomain);
        };
        let service_name = match name(&format!("{svc}.{namespace}.svc.{}", self.zone)) {
            Some(n) => n,
            None => return self.negative(ResponseCode::NXDomain),
        };
        let matches = |p: &Port| p.name == port && p.protocol == protocol;
        // (target, port, addresses of the target)
        let mut targets: Vec<(Name, u16, Vec<IpAddr>)> = Vec::new();
        match &entry.kind {
            Kind::ClusterIp(ips) => {
                if let Some(p) = entry.ports.iter().find(|p| matches(p)) {
                    targets.push((service_name.clone(), p.port, ips.clone()));
                }
            }
            Kind::Headless => {
                for endpoint in &entry.endpoints {
                    let Some(p) = endpoint.ports.iter().find(|p| matches(p)) else {
                        continue;
                    };
                    let Ok(target) = Name::from_ascii(&endpoint.hostname)
                        .and_then(|n| n.append_domain(&service_name))
                    else {
                        continue;
                    };
                    targets.push((target, p.port, vec![endpoint.ip]));
                }
            }
            Kind::ExternalName(target) => {
                if let Some(p) = entry.ports.iter().find(|p| matches(p)) {
                    targets.push((target.clone(), p.port, Vec::new()));
                }
            }
        }
        if targets.is_empty() {
            return self.negative(ResponseCode::NXDomain);
        }
        if !matches!(qtype, RecordType::SRV | RecordType::ANY) {
            return self.negative(ResponseCode::NoError);
        }
        // CoreDNS splits a weight of 100 evenly over the records.
        let weight = u16::try_from(100 / targets.len()).unwrap_or(0);
        let mut answer = Answer::default();
        for (target, port, ips) in targets {
            answer.answers.push(Record::from_rdata(
                qname.clone(),
                TTL,
                RData::SRV(SRV::new(0, weight, port, target.clone())),
            ));
            for ip in ips {
                let rdata = match ip {
                    IpAddr::V4(v4) => RData::A(A(v4)),
                    IpAddr::V6(v6) => RData::AAAA(AAAA(v6)),
                };
                answer
                    .additionals
                    .push(Record::from_rdata(target.clone(), TTL, rdata));
            }
        }
        answer
    }
}

/// The A or AAAA data for `ip` when it answers `qtype`.
fn address_rdata(ip: IpAddr, qtype: RecordType) -> Option<RData> {
    match (ip, qtype) {
        (IpAddr::V4(v4), RecordType::A | RecordType::ANY) => Some(RData::A(A(v4))),
        (IpAddr::V6(v6), RecordType::AAAA | RecordType::ANY) => Some(RData::AAAA(AAAA(v6))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn services() -> Vec<Service> {
        [
            json!({"metadata": {"name": "web", "namespace": "default"},
                   "spec": {"clusterIP": "10.43.0.20", "clusterIPs": ["10.43.0.20"],
                            "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}}),
            json!({"metadata": {"name": "db", "namespace": "default"},
                   "spec": {"clusterIP": "None", "clusterIPs": ["None"],
                            "ports": [{"name": "pg", "port": 5432, "protocol": "TCP"}]}}),
            json!({"metadata": {"name": "empty", "namespace": "default"},
                   "spec": {"clusterIP": "None"}}),
            json!({"metadata": {"name": "ext", "namespace": "other"},
                   "spec": {"type": "ExternalName", "externalName": "example.com"}}),
        ]
        .into_iter()
        .map(|v| serde_json::from_value(v).unwrap())
        .collect()
    }

    fn slices() -> Vec<EndpointSlice> {
        [
            json!({"metadata": {"name": "web-1", "namespace": "default",
                                "labels": {"kubernetes.io/service-name": "web"}},
                   "addressType": "IPv4",
                   "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
                   "endpoints": [{"addresses": ["10.42.0.5"], "conditions": {"ready": true}}]}),
            json!({"metadata": {"name": "db-1", "namespace": "default",
                                "labels": {"kubernetes.io/service-name": "db"}},
                   "addressType": "IPv4",
                   "ports": [{"name": "pg", "port": 5432, "protocol": "TCP"}],
                   "endpoints": [
                       {"addresses": ["10.42.0.7"], "hostname": "db-0", "conditions": {"ready": true}},
                       {"addresses": ["10.42.0.8"], "conditions": {"ready": true}},
                       {"addresses": ["10.42.0.9"], "conditions": {"ready": false}}]}),
        ]
        .into_iter()
        .map(|v| serde_json::from_value(v).unwrap())
        .collect()
    }

    fn records() -> ClusterRecords {
        ClusterRecords::build("cluster.local", 42, &services(), &slices())
    }

    /// The answer as text: code, then `TYPE data` per answer record.
    fn ask(name: &str, qtype: RecordType) -> Option<(ResponseCode, Vec<String>)> {
        let answer = records().answer(&Name::from_ascii(name).unwrap(), qtype)?;
        let mut lines: Vec<String> = answer
            .answers
            .iter()
            .map(|r| format!("{} {}", r.record_type(), r.data()))
            .collect();
        lines.sort();
        Some((answer.code, lines))
    }

    #[test]
    fn names_answer_as_coredns_does() {
        use RecordType::*;
        use ResponseCode::*;
        let cases: &[(&str, RecordType, ResponseCode, &[&str])] = &[
            (
                "web.default.svc.cluster.local.",
                A,
                NoError,
                &["A 10.43.0.20"],
            ),
            (
                "WEB.Default.svc.cluster.local.",
                A,
                NoError,
                &["A 10.43.0.20"],
            ),
            ("web.default.svc.cluster.local.", AAAA, NoError, &[]),
            (
                "db.default.svc.cluster.local.",
                A,
                NoError,
                &["A 10.42.0.7", "A 10.42.0.8"],
            ),
            (
                "db-0.db.default.svc.cluster.local.",
                A,
                NoError,
                &["A 10.42.0.7"],
            ),
            (
                "10-42-0-8.db.default.svc.cluster.local.",
                A,
                NoError,
                &["A 10.42.0.8"],
            ),
            ("10-42-0-9.db.default.svc.cluster.local.", A, NXDomain, &[]),
            ("empty.default.svc.cluster.local.", A, NXDomain, &[]),
            ("nope.default.svc.cluster.local.", A, NXDomain, &[]),
            ("web.nope.svc.cluster.local.", A, NXDomain, &[]),
            ("default.svc.cluster.local.", A, NoError, &[]),
            ("nope.svc.cluster.local.", A, NXDomain, &[]),
            ("svc.cluster.local.", A, NoError, &[]),
            ("x.web.default.svc.cluster.local.", A, NXDomain, &[]),
            ("a.b.c.d.e.f.cluster.local.", A, NXDomain, &[]),
            (
                "ext.other.svc.cluster.local.",
                A,
                NoError,
                &["CNAME example.com."],
            ),
            ("ext.other.svc.cluster.local.", MX, NoError, &[]),
            (
                "10-42-3-4.default.pod.cluster.local.",
                A,
                NoError,
                &["A 10.42.3.4"],
            ),
            ("not-an-ip.default.pod.cluster.local.", A, NXDomain, &[]),
            (
                "_http._tcp.web.default.svc.cluster.local.",
                SRV,
                NoError,
                &["SRV 0 100 80 web.default.svc.cluster.local."],
            ),
            (
                "_pg._tcp.db.default.svc.cluster.local.",
                SRV,
                NoError,
                &[
                    "SRV 0 50 5432 10-42-0-8.db.default.svc.cluster.local.",
                    "SRV 0 50 5432 db-0.db.default.svc.cluster.local.",
                ],
            ),
            (
                "_http._udp.web.default.svc.cluster.local.",
                SRV,
                NXDomain,
                &[],
            ),
            ("_http._tcp.web.default.svc.cluster.local.", A, NoError, &[]),
            (
                "20.0.43.10.in-addr.arpa.",
                PTR,
                NoError,
                &["PTR web.default.svc.cluster.local."],
            ),
            (
                "7.0.42.10.in-addr.arpa.",
                PTR,
                NoError,
                &["PTR db-0.db.default.svc.cluster.local."],
            ),
            (
                "5.0.42.10.in-addr.arpa.",
                PTR,
                NoError,
                &["PTR 10-42-0-5.web.default.svc.cluster.local."],
            ),
            (
                "cluster.local.",
                SOA,
                NoError,
                &["SOA ns.dns.cluster.local. hostmaster.cluster.local. 42 7200 1800 86400 30"],
            ),
        ];
        for (name, qtype, code, expected) in cases {
            let (got_code, got) = ask(name, *qtype).unwrap_or_else(|| panic!("{name} not ours"));
            assert_eq!(
                (got_code, got.as_slice()),
                (
                    *code,
                    &expected.iter().map(|s| s.to_string()).collect::<Vec<_>>()[..]
                ),
                "{name} {qtype}"
            );
        }
    }

    #[test]
    fn negative_answers_carry_the_zone_soa() {
        let answer = records()
            .answer(
                &Name::from_ascii("nope.default.svc.cluster.local.").unwrap(),
                RecordType::A,
            )
            .unwrap();
        assert_eq!(answer.code, ResponseCode::NXDomain);
        assert_eq!(answer.authority.len(), 1);
        let soa = &answer.authority[0];
        assert_eq!(soa.name().to_string(), "cluster.local.");
        assert_eq!(soa.ttl(), TTL);
        assert_eq!(
            soa.data().to_string(),
            "ns.dns.cluster.local. hostmaster.cluster.local. 42 7200 1800 86400 30"
        );
    }

    #[test]
    fn srv_targets_come_with_their_addresses() {
        let answer = records()
            .answer(
                &Name::from_ascii("_pg._tcp.db.default.svc.cluster.local.").unwrap(),
                RecordType::SRV,
            )
            .unwrap();
        let mut extra: Vec<String> = answer
            .additionals
            .iter()
            .map(|r| format!("{} {}", r.name(), r.data()))
            .collect();
        extra.sort();
        assert_eq!(
            extra,
            [
                "10-42-0-8.db.default.svc.cluster.local. 10.42.0.8",
                "db-0.db.default.svc.cluster.local. 10.42.0.7"
            ]
        );
    }

    #[test]
    fn names_outside_the_cluster_are_not_ours() {
        for (name, qtype) in [
            ("example.com.", RecordType::A),
            ("cluster.local.example.com.", RecordType::A),
            ("1.1.168.192.in-addr.arpa.", RecordType::PTR),
            ("20.0.43.10.in-addr.arpa.", RecordType::A),
        ] {
            assert!(ask(name, qtype).is_none(), "{name}");
        }
    }

    #[test]
    fn reverse_names_parse_for_both_families() {
        let v6 = Name::from_ascii(
            "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa.",
        )
        .unwrap();
        assert_eq!(reverse_ip(&v6), Some("fd00::1".parse().unwrap()));
        assert_eq!(dashed("fd00::1".parse().unwrap()), "fd00--1");
        assert_eq!(undashed("fd00--1"), Some("fd00::1".parse().unwrap()));
    }
}
