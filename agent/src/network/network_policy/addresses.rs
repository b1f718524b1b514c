//! IPv4 address ranges: an ipBlock's CIDR less its `except` blocks, and the
//! union of a rule's peers as sorted, disjoint ranges, the form an nft
//! interval set accepts without overlap errors. Pure arithmetic.

use std::net::Ipv4Addr;

/// An inclusive range of IPv4 addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Range {
    /// The first address.
    pub first: u32,
    /// The last address.
    pub last: u32,
}

impl Range {
    /// The range holding only `ip`.
    pub fn single(ip: Ipv4Addr) -> Self {
        let ip = u32::from(ip);
        Range {
            first: ip,
            last: ip,
        }
    }

    /// The addresses of CIDR `text` (`10.0.0.0/16`, or one address). `None`
    /// for IPv6 blocks (this table filters IPv4 only) and malformed text.
    pub fn cidr(text: &str) -> Option<Self> {
        let (address, bits) = match text.split_once('/') {
            Some((address, bits)) => (address, bits.parse::<u32>().ok()?),
            None => (text, 32),
        };
        let address = u32::from(address.parse::<Ipv4Addr>().ok()?);
        if bits > 32 {
            return None;
        }
        let host_mask = u32::MAX.checked_shr(bits).unwrap_or(0);
        Some(Range {
            first: address & !host_mask,
            last: address | host_mask,
        })
    }

    /// The nft element: `a.b.c.d` or `a.b.c.d-e.f.g.h`.
    pub fn nft(&self) -> String {
        if self.first == self.last {
            Ipv4Addr::from(self.first).to_string()
        } else {
            format!(
                "{}-{}",
                Ipv4Addr::from(self.first),
                Ipv4Addr::from(self.last)
            )
        }
    }
}

/// `block` without the addresses of `holes`, as ipBlock's `except` says.
pub fn subtract(block: Range, holes: &[Range]) -> Vec<Range> {
    let mut left = vec![block];
    for hole in holes {
        left = left
            .into_iter()
            .flat_map(|range| {
                if hole.last < range.first || hole.first > range.last {
                    return vec![range];
                }
                let mut pieces = Vec::new();
                if hole.first > range.first {
                    pieces.push(Range {
                        first: range.first,
                        last: hole.first - 1,
                    });
                }
                if hole.last < range.last {
                    pieces.push(Range {
                        first: hole.last + 1,
                        last: range.last,
                    });
                }
                pieces
            })
            .collect();
    }
    left
}

/// The union of `ranges` as sorted ranges that neither overlap nor touch.
pub fn merge(mut ranges: Vec<Range>) -> Vec<Range> {
    ranges.sort();
    let mut merged: Vec<Range> = Vec::with_capacity(ranges.len());
    for range in ranges {
        match merged.last_mut() {
            Some(last) if range.first <= last.last.saturating_add(1) => {
                last.last = last.last.max(range.last);
            }
            _ => merged.push(range),
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(first: &str, last: &str) -> Range {
        Range {
            first: first.parse::<Ipv4Addr>().unwrap().into(),
            last: last.parse::<Ipv4Addr>().unwrap().into(),
        }
    }

    #[test]
    fn cidrs_cover_their_block() {
        let cases = [
            ("10.1.0.0/16", Some(r("10.1.0.0", "10.1.255.255"))),
            ("10.1.2.3/24", Some(r("10.1.2.0", "10.1.2.255"))),
            ("10.1.2.3/32", Some(r("10.1.2.3", "10.1.2.3"))),
            ("10.1.2.3", Some(r("10.1.2.3", "10.1.2.3"))),
            ("0.0.0.0/0", Some(r("0.0.0.0", "255.255.255.255"))),
            ("fd00::/8", None),
            ("10.1.0.0/33", None),
            ("nonsense", None),
        ];
        for (text, want) in cases {
            assert_eq!(Range::cidr(text), want, "{text}");
        }
    }

    #[test]
    fn except_blocks_are_cut_out() {
        let block = r("10.0.0.0", "10.0.255.255");
        let cases: [(&str, Vec<Range>, Vec<Range>); 4] = [
            ("no holes", vec![], vec![block]),
            (
                "one hole in the middle",
                vec![r("10.0.1.0", "10.0.1.255")],
                vec![r("10.0.0.0", "10.0.0.255"), r("10.0.2.0", "10.0.255.255")],
            ),
            (
                "a hole at each end",
                vec![r("10.0.0.0", "10.0.0.255"), r("10.0.255.0", "10.0.255.255")],
                vec![r("10.0.1.0", "10.0.254.255")],
            ),
            ("everything", vec![block], vec![]),
        ];
        for (name, holes, want) in cases {
            assert_eq!(subtract(block, &holes), want, "{name}");
        }
    }

    #[test]
    fn merged_ranges_are_disjoint_and_sorted() {
        let merged = merge(vec![
            r("10.0.0.5", "10.0.0.5"),
            r("10.0.0.0", "10.0.0.3"),
            r("10.0.0.4", "10.0.0.4"),
            r("10.0.1.0", "10.0.1.255"),
            r("10.0.1.7", "10.0.1.7"),
        ]);
        assert_eq!(
            merged,
            vec![r("10.0.0.0", "10.0.0.5"), r("10.0.1.0", "10.0.1.255")]
        );
        assert_eq!(merged[0].nft(), "10.0.0.0-10.0.0.5");
        assert_eq!(r("10.0.0.9", "10.0.0.9").nft(), "10.0.0.9");
    }
}
