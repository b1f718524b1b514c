//! The string formats upstream checks in CRD schemas (a subset of go-openapi's
//! `strfmt` registry); unknown formats are accepted, as upstream does.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::OnceLock;

use base64::Engine;
use regex::Regex;

/// Whether `text` is a valid `format`; formats we do not know always pass.
pub(super) fn is_valid(format: &str, text: &str) -> bool {
    match format {
        "date" => jiff::civil::Date::strptime("%Y-%m-%d", text).is_ok(),
        "date-time" | "datetime" => is_date_time(text),
        "uri" => is_uri(text),
        "email" => regex(&EMAIL, r"^[^\s@<>()\[\]\\,;:]+@[^\s@<>()\[\]\\,;:]+$").is_match(text),
        "hostname" => is_hostname(text),
        "ipv4" => text.parse::<Ipv4Addr>().is_ok(),
        "ipv6" => text.contains(':') && text.parse::<Ipv6Addr>().is_ok(),
        "cidr" => is_cidr(text),
        "uuid" => regex(
            &UUID,
            r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$",
        )
        .is_match(text),
        "byte" => base64::engine::general_purpose::STANDARD
            .decode(text)
            .is_ok(),
        "mac" => regex(
            &MAC,
            r"^([0-9A-Fa-f]{2}[:-]){5}([0-9A-Fa-f]{2})$|^([0-9A-Fa-f]{4}\.){2}[0-9A-Fa-f]{4}$",
        )
        .is_match(text),
        _ => true,
    }
}

static EMAIL: OnceLock<Regex> = OnceLock::new();
static UUID: OnceLock<Regex> = OnceLock::new();
static MAC: OnceLock<Regex> = OnceLock::new();

fn regex(cell: &'static OnceLock<Regex>, source: &str) -> &'static Regex {
    cell.get_or_init(|| Regex::new(source).expect("static regex"))
}

/// RFC 3339 with or without fractional seconds; like strfmt, a zone-less
/// local time is also accepted.
fn is_date_time(text: &str) -> bool {
    text.parse::<jiff::Timestamp>().is_ok()
        || (text.contains('T') && text.parse::<jiff::civil::DateTime>().is_ok())
}

/// Go's `url.Parse` rejects little: control characters and bad escapes.
fn is_uri(text: &str) -> bool {
    if text.chars().any(|c| c.is_control()) {
        return false;
    }
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let ok = i + 2 < bytes.len()
                && bytes[i + 1].is_ascii_hexdigit()
                && bytes[i + 2].is_ascii_hexdigit();
            if !ok {
                return false;
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    true
}

/// Dot-separated labels of letters, digits and inner hyphens, each at most
/// 63 characters, 255 in all.
fn is_hostname(text: &str) -> bool {
    let label_ok = |label: &str| {
        let n = label.chars().count();
        (1..=63).contains(&n)
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(|c| c.is_alphanumeric() || c == '-')
    };
    !text.is_empty() && text.len() <= 255 && text.split('.').all(label_ok)
}

fn is_cidr(text: &str) -> bool {
    let Some((ip, bits)) = text.split_once('/') else {
        return false;
    };
    let Ok(bits) = bits.parse::<u8>() else {
        return false;
    };
    match ip.parse::<IpAddr>() {
        Ok(IpAddr::V4(_)) => bits <= 32,
        Ok(IpAddr::V6(_)) => bits <= 128,
        Err(_) => false,
    }
}
