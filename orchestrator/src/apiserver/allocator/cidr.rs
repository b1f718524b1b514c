//! The service range: an IPv4 CIDR with the bands random allocation uses.

use std::net::Ipv4Addr;

/// An IPv4 CIDR like `10.43.0.0/16`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    base: u32,
    prefix: u8,
}

impl std::str::FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr, prefix) = s
            .split_once('/')
            .ok_or_else(|| format!("{s:?} is not a CIDR (want A.B.C.D/N)"))?;
        let addr: Ipv4Addr = addr.parse().map_err(|e| format!("{s:?}: {e}"))?;
        let prefix: u8 = prefix.parse().map_err(|e| format!("{s:?}: {e}"))?;
        if !(8..=30).contains(&prefix) {
            return Err(format!("{s:?}: prefix length must be between 8 and 30"));
        }
        let mask = u32::MAX << (32 - prefix);
        Ok(Self {
            base: u32::from(addr) & mask,
            prefix,
        })
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", Ipv4Addr::from(self.base), self.prefix)
    }
}

impl Cidr {
    pub(super) fn size(&self) -> u32 {
        1 << (32 - self.prefix)
    }

    pub(super) fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & (u32::MAX << (32 - self.prefix)) == self.base
    }

    /// The n-th address of the range.
    pub fn nth(&self, n: u32) -> Ipv4Addr {
        Ipv4Addr::from(self.base + n)
    }

    /// The (first, last) indexes random allocation uses: the low band
    /// (upstream's static subrange of min(max(16, size/16), 256) addresses,
    /// less the `kubernetes` address) and the rest, network and broadcast
    /// addresses left out.
    pub(super) fn dynamic_bands(&self) -> ((u32, u32), (u32, u32)) {
        let usable = self.size().saturating_sub(2);
        let band = (usable / 16).clamp(16, 256).min(usable);
        ((2, band), (band + 1, usable))
    }
}
