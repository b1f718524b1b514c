//! The string formats Kubernetes 1.33 checks in CRD schemas (its supported
//! subset of go-openapi's `strfmt` registry); other formats (`int32`,
//! `int64`, unknown ones) are accepted, as upstream does.

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
        "uuid3" | "uuid4" | "uuid5" => is_versioned_uuid(format, text),
        "hexcolor" => regex(&HEXCOLOR, r"^#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$").is_match(text),
        "rgbcolor" => regex(
            &RGBCOLOR,
            r"^rgb\(\s*\d{1,3}\s*,\s*\d{1,3}\s*,\s*\d{1,3}\s*\)$",
        )
        .is_match(text),
        "ssn" => regex(&SSN, r"^\d{3}[- ]?\d{2}[- ]?\d{4}$").is_match(text),
        "bsonobjectid" => text.len() == 24 && text.chars().all(|c| c.is_ascii_hexdigit()),
        "duration" => is_duration(text),
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
static HEXCOLOR: OnceLock<Regex> = OnceLock::new();
static RGBCOLOR: OnceLock<Regex> = OnceLock::new();
static SSN: OnceLock<Regex> = OnceLock::new();
static DURATION: OnceLock<Regex> = OnceLock::new();
static DATE_TIME: OnceLock<Regex> = OnceLock::new();

fn regex(cell: &'static OnceLock<Regex>, source: &str) -> &'static Regex {
    cell.get_or_init(|| Regex::new(source).expect("static regex"))
}

/// strfmt's check: an RFC 3339 date, `T`, then `hh:mm:ss[.frac]` and a
/// zone (`Z` or `±hh:mm`), case-insensitive.
fn is_date_time(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    let Some((date, time)) = lower.split_once('t') else {
        return false;
    };
    is_valid("date", date)
        && regex(
            &DATE_TIME,
            r"^([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]+)?(z|([+-][0-9]{2}:[0-9]{2}))$",
        )
        .is_match(time)
}

/// Like Go's `url.ParseRequestURI`: an absolute URI (`scheme:...`) or an
/// absolute path, without control characters or bad escapes.
fn is_uri(text: &str) -> bool {
    if text.chars().any(|c| c.is_control()) {
        return false;
    }
    let scheme_end = text.find(':').unwrap_or(0);
    let scheme = &text[..scheme_end];
    let has_scheme = !scheme.is_empty()
        && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !has_scheme && !text.starts_with('/') {
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

/// A UUID of the given version (`uuid3`…`uuid5`), dashes optional.
fn is_versioned_uuid(format: &str, text: &str) -> bool {
    let hex: String = text.chars().filter(|c| *c != '-').collect();
    let dashes_ok = text.len() == 32 || (text.len() == 36 && is_valid("uuid", text));
    dashes_ok
        && hex.len() == 32
        && hex.chars().all(|c| c.is_ascii_hexdigit())
        && hex[12..13] == format[4..5]
        && (format == "uuid3" || matches!(&hex[16..17], "8" | "9" | "a" | "b" | "A" | "B"))
}

/// Go's `time.ParseDuration` syntax (`1h30m`), or a number and a unit word
/// (`22 ns`, `3 days`), as strfmt accepts.
fn is_duration(text: &str) -> bool {
    text == "0"
        || regex(
            &DURATION,
            r"^[-+]?((\d+(\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h))+$|^\d+\s*(ns|nanoseconds?|us|microseconds?|ms|milliseconds?|s|seconds?|m|minutes?|h|hours?|d|days?|w|weeks?)$",
        )
        .is_match(text)
}
