//! CronJob schedules as upstream checks them: robfig/cron v3's `ParseStandard`
//! (five fields, names for months and weekdays, ranges, steps, `@hourly`-style
//! descriptors and `@every <duration>`), with its error texts, and the time
//! zones `time.LoadLocation` knows.

use crate::kinds::apps::workload::go_quote;

/// The bounds (and names) of one schedule field.
struct Bounds {
    min: u64,
    max: u64,
    names: &'static [(&'static str, u64)],
}

const SECONDS: Bounds = Bounds {
    min: 0,
    max: 59,
    names: &[],
};
const MINUTES: Bounds = Bounds {
    min: 0,
    max: 59,
    names: &[],
};
const HOURS: Bounds = Bounds {
    min: 0,
    max: 23,
    names: &[],
};
const DAYS_OF_MONTH: Bounds = Bounds {
    min: 1,
    max: 31,
    names: &[],
};
const MONTHS: Bounds = Bounds {
    min: 1,
    max: 12,
    names: &[
        ("jan", 1),
        ("feb", 2),
        ("mar", 3),
        ("apr", 4),
        ("may", 5),
        ("jun", 6),
        ("jul", 7),
        ("aug", 8),
        ("sep", 9),
        ("oct", 10),
        ("nov", 11),
        ("dec", 12),
    ],
};
const DAYS_OF_WEEK: Bounds = Bounds {
    min: 0,
    max: 6,
    names: &[
        ("sun", 0),
        ("mon", 1),
        ("tue", 2),
        ("wed", 3),
        ("thu", 4),
        ("fri", 5),
        ("sat", 6),
    ],
};

/// A parsed schedule: a bit per allowed value of each field (robfig's
/// `SpecSchedule`, seconds always 0), or a fixed interval (`@every`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schedule {
    /// Five cron fields as bit sets.
    Fields {
        /// Minutes 0–59.
        minutes: u64,
        /// Hours 0–23.
        hours: u64,
        /// Days of the month 1–31.
        days_of_month: u64,
        /// Months 1–12.
        months: u64,
        /// Days of the week 0–6 (Sunday 0).
        days_of_week: u64,
        /// Whether day-of-month or day-of-week was `*`/`?`: then both must
        /// match a day, else either may (cron's rule).
        day_star: bool,
    },
    /// `@every DURATION`, in whole seconds (at least one).
    Every(u64),
}

/// Checks a schedule as `cron.ParseStandard` does; the error is its text.
pub fn parse_standard(spec: &str) -> Result<(), String> {
    parse(spec).map(|_| ())
}

/// Parses a schedule as `cron.ParseStandard` does (a `TZ=` prefix is checked and dropped).
pub fn parse(spec: &str) -> Result<Schedule, String> {
    if spec.is_empty() {
        return Err("empty spec string".into());
    }
    let mut spec = spec;
    if spec.starts_with("TZ=") || spec.starts_with("CRON_TZ=") {
        let eq = spec.find('=').expect("checked above");
        let (location, rest) = match spec.find(' ') {
            Some(space) if space > eq => (&spec[eq + 1..space], &spec[space..]),
            _ => (&spec[eq + 1..], ""),
        };
        if let Err(e) = load_location(location) {
            return Err(format!("provided bad location {location}: {e}"));
        }
        spec = rest.trim();
    }
    if spec.starts_with('@') {
        return parse_descriptor(spec);
    }
    let fields: Vec<&str> = spec.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!(
            "expected exactly 5 fields, found {}: [{}]",
            fields.len(),
            fields.join(" ")
        ));
    }
    let all = ["0", fields[0], fields[1], fields[2], fields[3], fields[4]];
    let bounds = [
        &SECONDS,
        &MINUTES,
        &HOURS,
        &DAYS_OF_MONTH,
        &MONTHS,
        &DAYS_OF_WEEK,
    ];
    let mut bits = [0u64; 6];
    for ((field, bounds), bits) in all.iter().zip(bounds).zip(bits.iter_mut()) {
        for expr in field.split(',').filter(|e| !e.is_empty()) {
            *bits |= check_range(expr, bounds)?;
        }
    }
    Ok(schedule_of(bits))
}

/// The bit robfig/cron sets on a field written `*` or `?`.
const STAR: u64 = 1 << 63;

fn schedule_of(bits: [u64; 6]) -> Schedule {
    Schedule::Fields {
        minutes: bits[1] & !STAR,
        hours: bits[2] & !STAR,
        days_of_month: bits[3] & !STAR,
        months: bits[4] & !STAR,
        days_of_week: bits[5] & !STAR,
        day_star: bits[3] & STAR != 0 || bits[5] & STAR != 0,
    }
}

fn parse_descriptor(descriptor: &str) -> Result<Schedule, String> {
    let all = |b: &Bounds| (b.min..=b.max).fold(STAR, |acc, i| acc | 1 << i);
    let bits = match descriptor {
        "@yearly" | "@annually" => [1, 1, 1, 1 << 1, 1 << 1, all(&DAYS_OF_WEEK)],
        "@monthly" => [1, 1, 1, 1 << 1, all(&MONTHS), all(&DAYS_OF_WEEK)],
        "@weekly" => [1, 1, 1, all(&DAYS_OF_MONTH), all(&MONTHS), 1],
        "@daily" | "@midnight" => [
            1,
            1,
            1,
            all(&DAYS_OF_MONTH),
            all(&MONTHS),
            all(&DAYS_OF_WEEK),
        ],
        "@hourly" => [
            1,
            1,
            all(&HOURS),
            all(&DAYS_OF_MONTH),
            all(&MONTHS),
            all(&DAYS_OF_WEEK),
        ],
        _ => {
            return match descriptor.strip_prefix("@every ") {
                Some(duration) => parse_duration(duration)
                    .map(|nanos| Schedule::Every(((nanos / 1e9) as u64).max(1)))
                    .map_err(|e| format!("failed to parse duration {descriptor}: {e}")),
                None => Err(format!("unrecognized descriptor: {descriptor}")),
            }
        }
    };
    Ok(schedule_of(bits))
}

/// Go's `strconv.Atoi` error for `s`.
fn atoi(s: &str) -> Result<i64, String> {
    s.parse::<i64>().map_err(|e| {
        let why = match e.kind() {
            std::num::IntErrorKind::PosOverflow | std::num::IntErrorKind::NegOverflow => {
                "value out of range"
            }
            _ => "invalid syntax",
        };
        format!("strconv.Atoi: parsing {}: {why}", go_quote(s))
    })
}

fn must_parse_int(expr: &str) -> Result<u64, String> {
    let n = atoi(expr).map_err(|e| format!("failed to parse int from {expr}: {e}"))?;
    if n < 0 {
        return Err(format!("negative number ({n}) not allowed: {expr}"));
    }
    Ok(n as u64)
}

fn parse_int_or_name(expr: &str, bounds: &Bounds) -> Result<u64, String> {
    let lower = expr.to_lowercase();
    if let Some((_, n)) = bounds.names.iter().find(|(name, _)| *name == lower) {
        return Ok(*n);
    }
    must_parse_int(expr)
}

/// robfig/cron's `getRange`: `*`, `?`, `n`, `a-b`, each with an optional
/// `/step`; the bits it selects (with [`STAR`] for an unstepped `*`).
fn check_range(expr: &str, bounds: &Bounds) -> Result<u64, String> {
    let range_and_step: Vec<&str> = expr.split('/').collect();
    let low_and_high: Vec<&str> = range_and_step[0].split('-').collect();
    let single = low_and_high.len() == 1;
    let star = low_and_high[0] == "*" || low_and_high[0] == "?";
    let (start, mut end) = if star {
        (bounds.min, bounds.max)
    } else {
        let start = parse_int_or_name(low_and_high[0], bounds)?;
        let end = match low_and_high.len() {
            1 => start,
            2 => parse_int_or_name(low_and_high[1], bounds)?,
            _ => return Err(format!("too many hyphens: {expr}")),
        };
        (start, end)
    };
    let step = match range_and_step.len() {
        1 => 1,
        2 => {
            let step = must_parse_int(range_and_step[1])?;
            if single {
                end = bounds.max;
            }
            step
        }
        _ => return Err(format!("too many slashes: {expr}")),
    };
    if start < bounds.min {
        return Err(format!(
            "beginning of range ({start}) below minimum ({}): {expr}",
            bounds.min
        ));
    }
    if end > bounds.max {
        return Err(format!(
            "end of range ({end}) above maximum ({}): {expr}",
            bounds.max
        ));
    }
    if start > end {
        return Err(format!(
            "beginning of range ({start}) beyond end of range ({end}): {expr}"
        ));
    }
    if step == 0 {
        return Err(format!("step of range should be a positive number: {expr}"));
    }
    let extra = if star && step == 1 { STAR } else { 0 };
    Ok((start..=end)
        .step_by(step as usize)
        .fold(extra, |acc, i| acc | 1 << i))
}

/// Go's `time.ParseDuration`: the duration in nanoseconds, or its error.
pub fn parse_duration(orig: &str) -> Result<f64, String> {
    let invalid = || format!("time: invalid duration {}", go_quote(orig));
    let mut s = orig;
    let negative = s.starts_with('-');
    if let Some(rest) = s.strip_prefix(['-', '+']) {
        s = rest;
    }
    if s == "0" {
        return Ok(0.0);
    }
    if s.is_empty() {
        return Err(invalid());
    }
    let mut total: f64 = 0.0;
    while !s.is_empty() {
        let first = s.as_bytes()[0];
        if !(first == b'.' || first.is_ascii_digit()) {
            return Err(invalid());
        }
        let digits = s.bytes().take_while(u8::is_ascii_digit).count();
        let whole = &s[..digits];
        s = &s[digits..];
        let mut fraction = "";
        if let Some(rest) = s.strip_prefix('.') {
            let n = rest.bytes().take_while(u8::is_ascii_digit).count();
            fraction = &rest[..n];
            s = &rest[n..];
            if digits == 0 && n == 0 {
                return Err(invalid());
            }
        } else if digits == 0 {
            return Err(invalid());
        }
        let unit_len = s
            .char_indices()
            .find(|(_, c)| *c == '.' || c.is_ascii_digit())
            .map_or(s.len(), |(i, _)| i);
        if unit_len == 0 {
            return Err(format!("time: missing unit in duration {}", go_quote(orig)));
        }
        let unit = &s[..unit_len];
        s = &s[unit_len..];
        let nanos: f64 = match unit {
            "ns" => 1.0,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => {
                return Err(format!(
                    "time: unknown unit {} in duration {}",
                    go_quote(unit),
                    go_quote(orig)
                ))
            }
        };
        let value: f64 = format!(
            "{}.{}",
            if whole.is_empty() { "0" } else { whole },
            fraction
        )
        .trim_end_matches('.')
        .parse()
        .unwrap_or(f64::INFINITY);
        total += value * nanos;
        if total > 9.223_372_036_854_776e18 {
            return Err(invalid());
        }
    }
    Ok(if negative { -total } else { total })
}

/// Go's `time.LoadLocation` (with the IANA database): the empty name and
/// `UTC` are UTC; other names must match a zone exactly.
pub fn load_location(name: &str) -> Result<(), String> {
    if name.is_empty() || name == "UTC" || name == "Local" {
        return Ok(());
    }
    let unknown = || format!("unknown time zone {name}");
    if name.contains("..") || name.starts_with('/') || name.starts_with('\\') {
        return Err(unknown());
    }
    match jiff::tz::db().get(name) {
        Ok(tz) if tz.iana_name() == Some(name) => Ok(()),
        _ => Err(unknown()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_schedules() {
        for ok in [
            "*/5 * * * *",
            "0 0 1 jan-mar MON-fri",
            "30 2 * * 0,6",
            "@hourly",
            "@every 1h30m",
            "5/15 * ? * *",
            "0 0 1,,15 * *",
        ] {
            assert_eq!(parse_standard(ok), Ok(()), "{ok}");
        }
        let cases = [
            ("", "empty spec string"),
            ("* * *", "expected exactly 5 fields, found 3: [* * *]"),
            ("61 * * * *", "end of range (61) above maximum (59): 61"),
            ("* * 0 * *", "beginning of range (0) below minimum (1): 0"),
            ("* * * * 7", "end of range (7) above maximum (6): 7"),
            (
                "5-1 * * * *",
                "beginning of range (5) beyond end of range (1): 5-1",
            ),
            (
                "*/0 * * * *",
                "step of range should be a positive number: */0",
            ),
            ("1-2-3 * * * *", "too many hyphens: 1-2-3"),
            ("1/2/3 * * * *", "too many slashes: 1/2/3"),
            (
                "x * * * *",
                "failed to parse int from x: strconv.Atoi: parsing \"x\": invalid syntax",
            ),
            ("@often", "unrecognized descriptor: @often"),
            (
                "@every 5",
                "failed to parse duration @every 5: time: missing unit in duration \"5\"",
            ),
            (
                "@every 5y",
                "failed to parse duration @every 5y: time: unknown unit \"y\" in duration \"5y\"",
            ),
        ];
        for (spec, want) in cases {
            assert_eq!(parse_standard(spec), Err(want.to_owned()), "{spec}");
        }
    }

    #[test]
    fn durations_keep_their_sign() {
        assert_eq!(parse_duration("1h30m"), Ok(5400e9));
        assert_eq!(parse_duration("+5s"), Ok(5e9));
        assert_eq!(parse_duration("-5s"), Ok(-5e9));
        assert_eq!(parse_duration("-1.5m"), Ok(-90e9));
        assert_eq!(parse_duration("-0"), Ok(0.0));
    }

    #[test]
    fn time_zones() {
        assert_eq!(load_location("Europe/Berlin"), Ok(()));
        assert_eq!(load_location("UTC"), Ok(()));
        assert_eq!(
            load_location("Mars/Olympus"),
            Err("unknown time zone Mars/Olympus".to_owned())
        );
        assert!(load_location("europe/berlin").is_err());
    }
}
