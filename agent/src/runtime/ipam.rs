//! Pod addresses from a node's range (`10.42.3.0/24`), as CNI's host-local
//! plugin hands them out: the network address and the gateway (`.1`) are
//! never given to a pod, nor the IPv4 broadcast address. Pure; no I/O.

use std::collections::BTreeSet;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// An address range `ADDRESS/PREFIX`, IPv4 or IPv6.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (address, prefix) = text
            .split_once('/')
            .ok_or_else(|| "expected ADDRESS/PREFIX".to_owned())?;
        let address: IpAddr = address
            .parse()
            .map_err(|_| format!("{address:?} is not an IP address"))?;
        let bits = if address.is_ipv4() { 32 } else { 128 };
        let prefix: u8 = prefix
            .parse()
            .ok()
            .filter(|p| *p <= bits)
            .ok_or_else(|| format!("prefix {prefix:?} is not a number from 0 to {bits}"))?;
        let mask = mask(bits, prefix);
        let network = from_bits(address.is_ipv4(), to_bits(address) & mask);
        Ok(Self { network, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

fn to_bits(address: IpAddr) -> u128 {
    match address {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

fn from_bits(ipv4: bool, bits: u128) -> IpAddr {
    if ipv4 {
        IpAddr::V4((bits as u32).into())
    } else {
        IpAddr::V6(bits.into())
    }
}

fn mask(bits: u8, prefix: u8) -> u128 {
    let host_bits = u32::from(bits - prefix);
    let all = if bits == 32 {
        u128::from(u32::MAX)
    } else {
        u128::MAX
    };
    all & !(1u128.checked_shl(host_bits).map_or(u128::MAX, |v| v - 1))
}

impl Cidr {
    fn bits(&self) -> u8 {
        if self.network.is_ipv4() {
            32
        } else {
            128
        }
    }

    /// How many addresses the range holds (saturating for huge IPv6 ranges).
    fn size(&self) -> u128 {
        1u128
            .checked_shl(u32::from(self.bits() - self.prefix))
            .unwrap_or(u128::MAX)
    }

    /// The range's first address (`10.42.3.0` of `10.42.3.0/24`).
    pub fn network(&self) -> IpAddr {
        self.network
    }

    /// The prefix length (`24` of `10.42.3.0/24`).
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// Whether `address` lies in the range.
    pub fn contains(&self, address: IpAddr) -> bool {
        address.is_ipv4() == self.network.is_ipv4()
            && to_bits(address) & mask(self.bits(), self.prefix) == to_bits(self.network)
    }

    /// The first address a pod may get, free in `used`, or `None` when the
    /// range is full.
    pub fn first_free(&self, used: &BTreeSet<IpAddr>) -> Option<IpAddr> {
        let size = self.size();
        // Network address and gateway are skipped; IPv4 also keeps its broadcast address.
        let last = if self.network.is_ipv4() {
            size.checked_sub(2)?
        } else {
            size - 1
        };
        let base = to_bits(self.network);
        (2..=last)
            .map(|offset| from_bits(self.network.is_ipv4(), base + offset))
            .find(|address| !used.contains(address))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn parses_and_normalises_ranges() {
        let cidr: Cidr = "10.42.3.7/24".parse().unwrap();
        assert_eq!(cidr.to_string(), "10.42.3.0/24");
        assert!(cidr.contains(ip("10.42.3.200")));
        assert!(!cidr.contains(ip("10.42.4.1")));
        assert!(!cidr.contains(ip("fd00::1")));
        let v6: Cidr = "fd00:42::/64".parse().unwrap();
        assert!(v6.contains(ip("fd00:42::5")));
        for bad in ["10.42.0.0", "10.42.0.0/33", "nonsense/24", "10.42.0.0/x"] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn allocation_skips_network_gateway_broadcast_and_used() {
        let cidr: Cidr = "10.42.3.0/24".parse().unwrap();
        let mut used = BTreeSet::new();
        assert_eq!(cidr.first_free(&used), Some(ip("10.42.3.2")));
        used.insert(ip("10.42.3.2"));
        assert_eq!(cidr.first_free(&used), Some(ip("10.42.3.3")));
        let small: Cidr = "10.0.0.0/30".parse().unwrap();
        assert_eq!(small.first_free(&BTreeSet::new()), Some(ip("10.0.0.2")));
        assert_eq!(small.first_free(&BTreeSet::from([ip("10.0.0.2")])), None);
        let v6: Cidr = "fd00::/120".parse().unwrap();
        assert_eq!(v6.first_free(&BTreeSet::new()), Some(ip("fd00::2")));
        let single: Cidr = "10.0.0.1/32".parse().unwrap();
        assert_eq!(single.first_free(&BTreeSet::new()), None);
    }
}
