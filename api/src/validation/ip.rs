//! IP address and CIDR checks with upstream's wording (apimachinery's strict
//! `IsValidIP` and `IsValidCIDR`, used by IPAddress names and ServiceCIDRs):
//! a value that parses only leniently (leading zeros), an IPv4-mapped IPv6
//! address, a CIDR with host bits set, or a non-canonical spelling is refused,
//! so one address or range has exactly one spelling.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Go's lenient dotted-quad parser (`ParseIPSloppy`): leading zeros allowed
/// and read as decimal.
fn parse_ipv4_sloppy(value: &str) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut fields = value.split('.');
    for octet in &mut octets {
        let field = fields.next()?;
        if field.is_empty() || !field.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let digits = field.trim_start_matches('0');
        *octet = if digits.is_empty() {
            0
        } else if digits.len() > 3 {
            return None;
        } else {
            digits
                .parse::<u16>()
                .ok()
                .and_then(|n| u8::try_from(n).ok())?
        };
    }
    fields.next().is_none().then(|| Ipv4Addr::from(octets))
}

/// An address as Go's lenient parser reads it.
fn parse_ip_sloppy(value: &str) -> Option<IpAddr> {
    if value.contains(':') {
        value.parse::<Ipv6Addr>().ok().map(IpAddr::V6)
    } else {
        parse_ipv4_sloppy(value).map(IpAddr::V4)
    }
}

/// Whether an IPv4 address (or the IPv4 part of one) is written with a
/// leading zero in some field.
fn has_leading_zeros(value: &str) -> bool {
    !value.contains(':')
        && value
            .split('.')
            .any(|field| field.len() > 1 && field.starts_with('0'))
}

fn is_ipv4_mapped(ip: &IpAddr) -> bool {
    matches!(ip, IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some())
}

/// Upstream's strict `IsValidIP`: a valid address without leading zeros, not
/// IPv4-mapped, written canonically.
pub fn is_valid_ip(value: &str) -> Vec<String> {
    let Some(ip) = parse_ip_sloppy(value) else {
        return vec!["must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)".to_owned()];
    };
    let mut problems = Vec::new();
    if has_leading_zeros(value) {
        problems.push("must not have leading 0s".to_owned());
    }
    if is_ipv4_mapped(&ip) {
        problems.push("must not be an IPv4-mapped IPv6 address".to_owned());
    }
    if problems.is_empty() && ip.to_string() != value {
        problems.push(format!("must be in canonical form (\"{ip}\")"));
    }
    problems
}

/// A CIDR's address and prefix length as Go's lenient `ParseCIDRSloppy`
/// reads them (the address as written, host bits kept).
pub fn parse_cidr(value: &str) -> Option<(IpAddr, u8)> {
    let (addr, prefix) = value.split_once('/')?;
    if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let ip = parse_ip_sloppy(addr)?;
    let bits = if ip.is_ipv4() { 32 } else { 128 };
    let prefix = prefix.trim_start_matches('0');
    let prefix: u8 = if prefix.is_empty() {
        0
    } else {
        prefix.parse().ok()?
    };
    (prefix <= bits).then_some((ip, prefix))
}

/// The network address of `ip` under a `prefix`-bit mask.
fn network(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(u32::from(v4) & mask))
        }
        IpAddr::V6(v6) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask))
        }
    }
}

/// Upstream's strict `IsValidCIDR`: a valid subnet without leading zeros, not
/// IPv4-mapped, without bits set past the prefix, written canonically.
pub fn is_valid_cidr(value: &str) -> Vec<String> {
    let Some((ip, prefix)) = parse_cidr(value) else {
        return vec!["must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)".to_owned()];
    };
    let (addr, bits) = value.split_once('/').unwrap_or_default();
    if has_leading_zeros(addr) || (bits.len() > 1 && bits.starts_with('0')) {
        return vec!["must not have leading 0s in IP or prefix length".to_owned()];
    }
    if is_ipv4_mapped(&ip) {
        return vec!["must not have an IPv4-mapped IPv6 address".to_owned()];
    }
    let subnet = network(ip, prefix);
    if subnet != ip {
        return vec!["must not have bits set beyond the prefix length".to_owned()];
    }
    let canonical = format!("{subnet}/{prefix}");
    if canonical == value {
        Vec::new()
    } else {
        vec![format!("must be in canonical form (\"{canonical}\")")]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_must_be_strict_and_canonical() {
        let cases = [
            ("10.96.0.1", None),
            ("2001:db8::1", None),
            (
                "",
                Some("must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"),
            ),
            (
                "foo",
                Some("must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"),
            ),
            (
                "10.96.0.256",
                Some("must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"),
            ),
            (
                "10.96.0",
                Some("must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"),
            ),
            ("10.96.0.010", Some("must not have leading 0s")),
            (
                "::ffff:10.96.0.1",
                Some("must not be an IPv4-mapped IPv6 address"),
            ),
            (
                "2001:DB8::1",
                Some("must be in canonical form (\"2001:db8::1\")"),
            ),
            (
                "2001:db8:0:0::1",
                Some("must be in canonical form (\"2001:db8::1\")"),
            ),
        ];
        for (value, want) in cases {
            let got = is_valid_ip(value);
            assert_eq!(got.first().map(String::as_str), want, "{value}");
        }
    }

    #[test]
    fn cidrs_must_be_strict_subnets_in_canonical_form() {
        let cases = [
            ("10.96.0.0/12", None),
            ("2001:db8::/64", None),
            (
                "10.96.0.0",
                Some("must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"),
            ),
            (
                "10.96.0.0/33",
                Some("must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"),
            ),
            (
                "010.96.0.0/12",
                Some("must not have leading 0s in IP or prefix length"),
            ),
            (
                "10.96.0.0/012",
                Some("must not have leading 0s in IP or prefix length"),
            ),
            (
                "::ffff:10.0.0.0/104",
                Some("must not have an IPv4-mapped IPv6 address"),
            ),
            (
                "10.96.0.1/12",
                Some("must not have bits set beyond the prefix length"),
            ),
            (
                "2001:DB8::/64",
                Some("must be in canonical form (\"2001:db8::/64\")"),
            ),
        ];
        for (value, want) in cases {
            let got = is_valid_cidr(value);
            assert_eq!(got.first().map(String::as_str), want, "{value}");
        }
        assert!(parse_cidr("010.96.0.0/12").is_some(), "read leniently");
    }
}
