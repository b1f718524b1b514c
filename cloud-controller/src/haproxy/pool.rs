//! The addresses the `haproxy` provider hands out, like MetalLB's
//! IPAddressPool: CIDRs and `first-last` ranges; a Service keeps its address
//! for as long as it exists, a requested one is honoured when it is in the
//! pool and free, otherwise the lowest free one is given. The controller
//! restores assignments from Services' status at start, so a restart moves
//! nothing.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::str::FromStr;

use k8s_openapi::api::core::v1::Service;

/// Annotation a Service requests its address with (comma-separated; this
/// slice gives one address per Service).
pub const REQUEST_ANNOTATION: &str = "berth.dev/load-balancer-ips";

/// MetalLB's annotations for the same request, honoured so manifests written
/// for MetalLB move over unchanged.
pub const METALLB_ANNOTATIONS: [&str; 2] = [
    "metallb.io/loadBalancerIPs",
    "metallb.universe.tf/loadBalancerIPs",
];

/// Why an address could not be given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    /// A pool entry that is neither a CIDR nor a `first-last` range.
    #[error("address pool entry {entry:?}: {reason}")]
    BadEntry {
        /// The entry as written.
        entry: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The Service's request cannot be parsed or names several addresses.
    #[error("requested address {request:?}: {reason}")]
    BadRequest {
        /// The request as written.
        request: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The requested address is not in the pool.
    #[error("requested address {0} is not in the pool")]
    NotInPool(IpAddr),
    /// The requested address is held by another Service.
    #[error("requested address {address} is in use by {holder}")]
    InUse {
        /// The address.
        address: IpAddr,
        /// The Service holding it, `namespace/name`.
        holder: String,
    },
    /// Every address is taken.
    #[error("no free address left")]
    Exhausted,
}

/// One contiguous run of addresses of one family, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Range {
    first: u128,
    last: u128,
    v6: bool,
}

impl FromStr for Range {
    type Err = PoolError;

    fn from_str(entry: &str) -> Result<Self, PoolError> {
        let bad = |reason: &str| PoolError::BadEntry {
            entry: entry.into(),
            reason: reason.into(),
        };
        let parse = |s: &str| s.trim().parse::<IpAddr>().map_err(|e| bad(&e.to_string()));
        let (first, last) = if let Some((address, prefix)) = entry.split_once('/') {
            let address = parse(address)?;
            let bits = if address.is_ipv6() { 128 } else { 32 };
            let prefix: u32 = prefix
                .trim()
                .parse()
                .map_err(|_| bad("the prefix length is not a number"))?;
            if prefix > bits {
                return Err(bad("the prefix length is longer than the address"));
            }
            let host_bits = bits - prefix;
            let mask = if host_bits == 128 {
                u128::MAX
            } else {
                (1u128 << host_bits) - 1
            };
            let base = to_u128(address) & !mask;
            (
                from_u128(base, address.is_ipv6()),
                from_u128(base | mask, address.is_ipv6()),
            )
        } else if let Some((first, last)) = entry.split_once('-') {
            (parse(first)?, parse(last)?)
        } else {
            return Err(bad(
                "expected a CIDR (192.0.2.0/28) or a range (192.0.2.10-192.0.2.20)",
            ));
        };
        if first.is_ipv6() != last.is_ipv6() {
            return Err(bad("the two ends are of different families"));
        }
        if to_u128(first) > to_u128(last) {
            return Err(bad("the range ends before it starts"));
        }
        Ok(Range {
            first: to_u128(first),
            last: to_u128(last),
            v6: first.is_ipv6(),
        })
    }
}

impl Range {
    fn contains(&self, address: IpAddr) -> bool {
        address.is_ipv6() == self.v6 && (self.first..=self.last).contains(&to_u128(address))
    }
}

fn to_u128(address: IpAddr) -> u128 {
    match address {
        IpAddr::V4(v4) => u32::from(v4).into(),
        IpAddr::V6(v6) => v6.into(),
    }
}

fn from_u128(value: u128, v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(value.into())
    } else {
        // Only called with values built from an IPv4 address, which fit.
        IpAddr::V4(u32::try_from(value).unwrap_or(u32::MAX).into())
    }
}

/// A named pool and who holds which of its addresses.
#[derive(Debug, Clone)]
pub struct AddressPool {
    name: String,
    ranges: Vec<Range>,
    assigned: BTreeMap<String, IpAddr>,
}

impl AddressPool {
    /// A pool of `entries` (CIDRs or `first-last` ranges), nothing assigned.
    pub fn new(name: &str, entries: &[&str]) -> Result<Self, PoolError> {
        let ranges = entries
            .iter()
            .map(|e| e.parse())
            .collect::<Result<_, _>>()?;
        Ok(AddressPool {
            name: name.into(),
            ranges,
            assigned: BTreeMap::new(),
        })
    }

    /// The pool's name, for errors and logs.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether `address` is one of the pool's.
    pub fn contains(&self, address: IpAddr) -> bool {
        self.ranges.iter().any(|r| r.contains(address))
    }

    /// The address `service` (a `namespace/name` key) holds, if any.
    pub fn assigned(&self, service: &str) -> Option<IpAddr> {
        self.assigned.get(service).copied()
    }

    /// Gives `service` an address: the one it holds when it asks for no
    /// other, else `requested` when in the pool and free, else the lowest
    /// free one. Asking again with the same arguments returns the same one.
    pub fn assign(
        &mut self,
        service: &str,
        requested: Option<IpAddr>,
    ) -> Result<IpAddr, PoolError> {
        let held = self.assigned(service);
        let address = match requested {
            Some(address) if held == Some(address) => address,
            Some(address) => {
                if !self.contains(address) {
                    return Err(PoolError::NotInPool(address));
                }
                if let Some(holder) = self.holder(address) {
                    return Err(PoolError::InUse {
                        address,
                        holder: holder.into(),
                    });
                }
                address
            }
            None => match held {
                Some(address) => address,
                None => self.lowest_free().ok_or(PoolError::Exhausted)?,
            },
        };
        self.assigned.insert(service.into(), address);
        Ok(address)
    }

    /// Records that `service` already holds `address` (read back from its
    /// status at start-up); false when that is not possible (outside the
    /// pool, or another Service restored it first).
    pub fn restore(&mut self, service: &str, address: IpAddr) -> bool {
        let free = self.holder(address).is_none_or(|holder| holder == service);
        if !self.contains(address) || !free {
            return false;
        }
        self.assigned.insert(service.into(), address);
        true
    }

    /// Frees the address of `service` (its load balancer is gone).
    pub fn release(&mut self, service: &str) -> Option<IpAddr> {
        self.assigned.remove(service)
    }

    fn holder(&self, address: IpAddr) -> Option<&str> {
        self.assigned
            .iter()
            .find(|(_, a)| **a == address)
            .map(|(s, _)| s.as_str())
    }

    fn lowest_free(&self) -> Option<IpAddr> {
        let taken: std::collections::BTreeSet<IpAddr> = self.assigned.values().copied().collect();
        self.ranges.iter().find_map(|range| {
            // Walking is bounded by the assigned count: at most that many
            // candidates of a range can be taken before a free one shows up.
            (range.first..=range.last)
                .map(|v| from_u128(v, range.v6))
                .take(taken.len() + 1)
                .find(|a| !taken.contains(a))
        })
    }
}

/// The address `service` asks for: our annotation, else MetalLB's, else the
/// deprecated `spec.loadBalancerIP`; None when it asks for none.
pub fn requested_address(service: &Service) -> Result<Option<IpAddr>, PoolError> {
    let annotations = service.metadata.annotations.as_ref();
    let annotated = std::iter::once(REQUEST_ANNOTATION)
        .chain(METALLB_ANNOTATIONS)
        .find_map(|key| annotations.and_then(|a| a.get(key)));
    let spec_ip = service
        .spec
        .as_ref()
        .and_then(|s| s.load_balancer_ip.as_ref());
    let Some(request) = annotated.or(spec_ip).filter(|r| !r.trim().is_empty()) else {
        return Ok(None);
    };
    let bad = |reason: &str| PoolError::BadRequest {
        request: request.clone(),
        reason: reason.into(),
    };
    let mut addresses = request.split(',').map(str::trim);
    let first = addresses.next().unwrap_or_default();
    if addresses.next().is_some() {
        return Err(bad("only one address per Service is supported"));
    }
    first
        .parse()
        .map(Some)
        .map_err(|e: std::net::AddrParseError| bad(&e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn entries_parse_as_cidrs_and_ranges() {
        let pool = AddressPool::new(
            "p",
            &[
                "192.0.2.0/30",
                "198.51.100.10-198.51.100.12",
                "2001:db8::/126",
            ],
        )
        .unwrap();
        for (address, want) in [
            ("192.0.2.0", true),
            ("192.0.2.3", true),
            ("192.0.2.4", false),
            ("198.51.100.9", false),
            ("198.51.100.12", true),
            ("2001:db8::3", true),
            ("2001:db8::4", false),
            ("::ffff:192.0.2.1", false),
        ] {
            assert_eq!(pool.contains(ip(address)), want, "{address}");
        }
        assert!(AddressPool::new("p", &["10.0.0.0/0"])
            .unwrap()
            .contains(ip("255.1.2.3")));
        for bad in [
            "10.0.0.0",
            "10.0.0.0/33",
            "10.0.0.9-10.0.0.1",
            "10.0.0.1-2001:db8::1",
            "x/8",
            "10.0.0.0/x",
        ] {
            assert!(
                matches!(
                    AddressPool::new("p", &[bad]),
                    Err(PoolError::BadEntry { .. })
                ),
                "{bad} should be refused"
            );
        }
    }

    #[test]
    fn assignments_are_stable_lowest_free_and_reused_after_release() {
        let mut pool = AddressPool::new("p", &["192.0.2.10-192.0.2.11", "192.0.2.20/32"]).unwrap();
        assert_eq!(pool.assign("a/web", None), Ok(ip("192.0.2.10")));
        assert_eq!(pool.assign("b/web", None), Ok(ip("192.0.2.11")));
        assert_eq!(
            pool.assign("a/web", None),
            Ok(ip("192.0.2.10")),
            "same again"
        );
        assert_eq!(
            pool.assign("c/web", None),
            Ok(ip("192.0.2.20")),
            "next range"
        );
        assert_eq!(pool.assign("d/web", None), Err(PoolError::Exhausted));
        assert_eq!(pool.release("b/web"), Some(ip("192.0.2.11")));
        assert_eq!(pool.assign("d/web", None), Ok(ip("192.0.2.11")));
    }

    #[test]
    fn requested_addresses_are_honoured_when_in_the_pool_and_free() {
        let mut pool = AddressPool::new("p", &["192.0.2.0/29"]).unwrap();
        assert_eq!(
            pool.assign("a/web", Some(ip("192.0.2.5"))),
            Ok(ip("192.0.2.5"))
        );
        assert_eq!(
            pool.assign("b/web", Some(ip("192.0.2.5"))),
            Err(PoolError::InUse {
                address: ip("192.0.2.5"),
                holder: "a/web".into()
            })
        );
        assert_eq!(
            pool.assign("b/web", Some(ip("10.9.9.9"))),
            Err(PoolError::NotInPool(ip("10.9.9.9")))
        );
        assert_eq!(
            pool.assign("a/web", Some(ip("192.0.2.6"))),
            Ok(ip("192.0.2.6")),
            "moves on request"
        );
        assert_eq!(
            pool.assign("b/web", Some(ip("192.0.2.5"))),
            Ok(ip("192.0.2.5")),
            "the old one is free"
        );
    }

    #[test]
    fn restore_keeps_addresses_across_restarts() {
        let mut pool = AddressPool::new("p", &["192.0.2.0/30"]).unwrap();
        assert!(pool.restore("a/web", ip("192.0.2.0")));
        assert!(!pool.restore("b/web", ip("192.0.2.0")), "taken");
        assert!(!pool.restore("b/web", ip("10.0.0.1")), "outside the pool");
        assert_eq!(pool.assign("b/web", None), Ok(ip("192.0.2.1")));
        assert_eq!(pool.assign("a/web", None), Ok(ip("192.0.2.0")));
        assert_eq!(pool.name(), "p");
    }

    #[test]
    fn requests_come_from_annotations_then_the_spec() {
        let mut svc = Service::default();
        assert_eq!(requested_address(&svc), Ok(None));
        svc.spec.get_or_insert_default().load_balancer_ip = Some("192.0.2.7".into());
        assert_eq!(requested_address(&svc), Ok(Some(ip("192.0.2.7"))));
        svc.metadata.annotations =
            Some([(METALLB_ANNOTATIONS[0].into(), "192.0.2.8".into())].into());
        assert_eq!(requested_address(&svc), Ok(Some(ip("192.0.2.8"))));
        svc.metadata
            .annotations
            .as_mut()
            .unwrap()
            .insert(REQUEST_ANNOTATION.into(), " 192.0.2.9 ".into());
        assert_eq!(requested_address(&svc), Ok(Some(ip("192.0.2.9"))));
        svc.metadata
            .annotations
            .as_mut()
            .unwrap()
            .insert(REQUEST_ANNOTATION.into(), "192.0.2.9,2001:db8::1".into());
        assert!(matches!(
            requested_address(&svc),
            Err(PoolError::BadRequest { .. })
        ));
        svc.metadata
            .annotations
            .as_mut()
            .unwrap()
            .insert(REQUEST_ANNOTATION.into(), "nope".into());
        assert!(matches!(
            requested_address(&svc),
            Err(PoolError::BadRequest { .. })
        ));
    }
}
