//! Server-side `kubectl get` tables: the column type, the columns every kind
//! shares, and the helpers kinds' printers use to compute cells (in
//! [`print`]). Each kind's own columns live with its rules in `crate::kinds`.
//! Pure functions over JSON objects; the clock is passed in.

pub mod print;

use serde_json::{json, Value};

/// One table column, as `meta.k8s.io/v1` `TableColumnDefinition`.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    /// Header text (kubectl upper-cases it).
    pub name: &'static str,
    /// `string`, `integer`, `date`, …
    pub kind: &'static str,
    /// 0: always shown; 1: only with `-o wide`.
    pub priority: i32,
    /// Short description for `kubectl explain`-like tools.
    pub description: &'static str,
}

/// A column, written the way upstream's printers declare them.
pub const fn col(
    name: &'static str,
    kind: &'static str,
    priority: i32,
    description: &'static str,
) -> Column {
    Column {
        name,
        kind,
        priority,
        description,
    }
}

/// The NAME column every kind starts with.
pub const NAME: Column = col(
    "Name",
    "string",
    0,
    "Name must be unique within a namespace.",
);
/// The AGE column.
pub const AGE: Column = col("Age", "string", 0, "Time since the object was created.");

/// The NAME cell.
pub fn name_cell(obj: &Value) -> Value {
    json!(obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default())
}

/// The AGE cell.
pub fn age_cell(obj: &Value, now: jiff::Timestamp) -> Value {
    json!(print::age(obj, &["metadata", "creationTimestamp"], now))
}

/// Upstream's `duration.HumanDuration`: `45s`, `3m20s`, `25m`, `5h10m`, `3d4h`, …
pub fn human_duration(seconds: i64) -> String {
    if seconds < -1 {
        return "<invalid>".to_owned();
    }
    if seconds < 0 {
        return "0s".to_owned();
    }
    if seconds < 120 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 180 {
        return format!("{minutes}m");
    }
    let hours = minutes / 60;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let (d, h) = (hours / 24, hours % 24);
        return if h == 0 {
            format!("{d}d")
        } else {
            format!("{d}d{h}h")
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    let years = hours / 24 / 365;
    if hours < 24 * 365 * 8 {
        let d = (hours / 24) % 365;
        return if d == 0 {
            format!("{years}y")
        } else {
            format!("{years}y{d}d")
        };
    }
    format!("{years}y")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_duration_follows_upstream_buckets() {
        let cases = [
            (-5, "<invalid>"),
            (0, "0s"),
            (119, "119s"),
            (200, "3m20s"),
            (600, "10m"),
            (3 * 3600 + 600, "3h10m"),
            (30 * 3600, "30h"),
            (3 * 86400 + 4 * 3600, "3d4h"),
            (30 * 86400, "30d"),
        ];
        for (secs, want) in cases {
            assert_eq!(human_duration(secs), want, "{secs}s");
        }
    }
}
