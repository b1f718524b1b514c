//! IP address and CIDR checks with upstream's wording: Go's `netip.ParseAddr`
//! errors for IPAddress names and apimachinery's `IsValidCIDR` for
//! ServiceCIDRs. Both insist on the canonical form, so one address or range
//! has exactly one spelling.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The family of an IP address, as upstream's `IPFamily` names it.
pub fn family(ip: &IpAddr) -> &'static str {
    match ip {
        IpAddr::V4(_) => "IPv4",
        IpAddr::V6(_) => "IPv6",
    }
}

/// Go's `parseAddrError` text.
fn parse_error(input: &str, message: &str, at: Option<&str>) -> String {
    match at {
        Some(at) => format!("ParseAddr({input:?}): {message} (at {at:?})"),
        None => format!("ParseAddr({input:?}): {message}"),
    }
}

/// Go's dotted-quad parser: no leading zeros, four fields of at most 255.
fn parse_ipv4(input: &str) -> Result<Ipv4Addr, String> {
    let bytes = input.as_bytes();
    let mut fields = [0u8; 4];
    let (mut value, mut position, mut digits) = (0u32, 0usize, 0usize);
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'0'..=b'9' => {
                if digits == 1 && value == 0 {
                    return Err(parse_error(
                        input,
                        "IPv4 field has octet with leading zero",
                        None,
                    ));
                }
                value = value * 10 + u32::from(b - b'0');
                digits += 1;
                if value > 255 {
                    return Err(parse_error(input, "IPv4 field has value >255", None));
                }
            }
            b'.' => {
                if i == 0 || i == bytes.len() - 1 || bytes[i - 1] == b'.' {
                    return Err(parse_error(
                        input,
                        "IPv4 field must have at least one digit",
                        Some(&input[i..]),
                    ));
                }
                if position == 3 {
                    return Err(parse_error(input, "IPv4 address too long", None));
                }
                fields[position] = value as u8;
                position += 1;
                value = 0;
                digits = 0;
            }
            _ => {
                return Err(parse_error(
                    input,
                    "unexpected character",
                    Some(&input[i..]),
                ))
            }
        }
    }
    if position < 3 {
        return Err(parse_error(input, "IPv4 address too short", None));
    }
    fields[3] = value as u8;
    Ok(Ipv4Addr::from(fields))
}

/// An IP address as Go's `netip.ParseAddr` reads it, or its error text.
pub fn parse_addr(input: &str) -> Result<IpAddr, String> {
    match input.bytes().find(|b| matches!(b, b'.' | b':' | b'%')) {
        Some(b'.') => parse_ipv4(input).map(IpAddr::V4),
        Some(b':') => input
            .parse::<Ipv6Addr>()
            .map(IpAddr::V6)
            .map_err(|_| parse_error(input, "unable to parse IPv6 address", None)),
        Some(_) => Err(parse_error(input, "missing IPv6 address", None)),
        None => Err(parse_error(input, "unable to parse IP", None)),
    }
}

/// Upstream's IPAddress name rule: a valid IP address in canonical form.
pub fn is_canonical_ip(name: &str) -> Vec<String> {
    match parse_addr(name) {
        Err(e) => vec![e],
        Ok(ip) if ip.to_string() != name => {
            vec!["must be a canonical format IP address".to_owned()]
        }
        Ok(_) => Vec::new(),
    }
}

/// A CIDR's network address and prefix length, when it parses.
pub fn parse_cidr(value: &str) -> Option<(IpAddr, u8)> {
    let (addr, prefix) = value.split_once('/')?;
    if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_digit()) || prefix.len() > 3 {
        return None;
    }
    let prefix: u8 = prefix.parse().ok()?;
    let ip = match addr.parse::<IpAddr>().ok()? {
        IpAddr::V4(_) => IpAddr::V4(parse_ipv4(addr).ok()?),
        v6 => v6,
    };
    let bits = if ip.is_ipv4() { 32 } else { 128 };
    (prefix <= bits).then_some((ip, prefix))
}

/// The canonical spelling of a CIDR: its network address (host bits cleared)
/// and prefix length.
fn canonical_cidr(ip: IpAddr, prefix: u8) -> String {
    let network = match ip {
        IpAddr::V4(v4) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(u32::from(v4) & mask))
        }
        IpAddr::V6(v6) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask))
        }
    };
    format!("{network}/{prefix}")
}

/// Upstream's `IsValidCIDR`: a CIDR that parses, written canonically.
pub fn is_valid_cidr(value: &str) -> Vec<String> {
    match parse_cidr(value) {
        None => {
            vec!["must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)".to_owned()]
        }
        Some((ip, prefix)) => {
            let canonical = canonical_cidr(ip, prefix);
            if canonical == value {
                Vec::new()
            } else {
                vec![format!("must be in canonical form ({canonical:?})")]
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_names_follow_go_netip() {
        let cases = [
            ("10.96.0.1", None),
            ("2001:db8::1", None),
            ("", Some("ParseAddr(\"\"): unable to parse IP")),
            ("foo", Some("ParseAddr(\"foo\"): unable to parse IP")),
            (
                "10.96.0.01",
                Some("ParseAddr(\"10.96.0.01\"): IPv4 field has octet with leading zero"),
            ),
            (
                "10.96.0.256",
                Some("ParseAddr(\"10.96.0.256\"): IPv4 field has value >255"),
            ),
            (
                "10.96.0",
                Some("ParseAddr(\"10.96.0\"): IPv4 address too short"),
            ),
            (
                "10..0.1",
                Some(
                    "ParseAddr(\"10..0.1\"): IPv4 field must have at least one digit (at \".0.1\")",
                ),
            ),
            (
                "10.96.0.x",
                Some("ParseAddr(\"10.96.0.x\"): unexpected character (at \"x\")"),
            ),
            ("2001:DB8::1", Some("must be a canonical format IP address")),
            (
                "2001:db8:0:0::1",
                Some("must be a canonical format IP address"),
            ),
        ];
        for (name, want) in cases {
            let got = is_canonical_ip(name);
            assert_eq!(got.first().map(String::as_str), want, "{name}");
        }
    }

    #[test]
    fn cidrs_must_parse_and_be_canonical() {
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
                Some("must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"),
            ),
            (
                "10.96.0.1/12",
                Some("must be in canonical form (\"10.96.0.0/12\")"),
            ),
            (
                "2001:DB8::/64",
                Some("must be in canonical form (\"2001:db8::/64\")"),
            ),
        ];
        for (cidr, want) in cases {
            let got = is_valid_cidr(cidr);
            assert_eq!(got.first().map(String::as_str), want, "{cidr}");
        }
    }
}
