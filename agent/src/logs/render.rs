//! Turns CRI log entries into what a client of `/containerLogs` reads: the
//! content alone, partial entries joined into one line, optionally prefixed
//! with timestamps, filtered by time and cut at a byte limit. Pure: bytes in,
//! bytes out.

use jiff::Timestamp;

use super::parse::{format_timestamp, parse_line};
use super::LogOptions;

/// The per-request state of rendering one log: what has been written so far
/// decides where lines start and when the byte limit is reached.
#[derive(Debug, Clone)]
pub struct Renderer {
    since: Option<Timestamp>,
    timestamps: bool,
    /// Bytes still allowed; `None` without a limit.
    remaining: Option<u64>,
    /// Whether the next entry starts a line (the last one written was full).
    at_line_start: bool,
}

impl Renderer {
    /// A renderer for `options` (its tail and follow are the reader's business).
    pub fn new(options: &LogOptions) -> Self {
        Self {
            since: options.since,
            timestamps: options.timestamps,
            remaining: options.limit_bytes,
            at_line_start: true,
        }
    }

    /// Whether the byte limit has been reached: nothing more will be written.
    pub fn is_done(&self) -> bool {
        self.remaining == Some(0)
    }

    /// Appends to `out` what the CRI log line `line` contributes. Lines that
    /// do not parse are skipped, as kubelet skips them. Returns whether more
    /// may follow (false once the byte limit is reached).
    pub fn line(&mut self, line: &[u8], out: &mut Vec<u8>) -> bool {
        if self.is_done() {
            return false;
        }
        let entry = match parse_line(line) {
            Ok(entry) => entry,
            Err(e) => {
                tracing::debug!(error = %e, "skipping a log line that does not parse");
                return true;
            }
        };
        let starts_line = std::mem::replace(&mut self.at_line_start, !entry.partial);
        if self.since.is_some_and(|since| entry.timestamp < since) {
            return true;
        }
        let mut piece = Vec::with_capacity(entry.content.len() + 32);
        if self.timestamps && starts_line {
            piece.extend_from_slice(format_timestamp(entry.timestamp).as_bytes());
            piece.push(b' ');
        }
        piece.extend_from_slice(entry.content);
        if !entry.partial {
            piece.push(b'\n');
        }
        if let Some(remaining) = &mut self.remaining {
            let take = piece
                .len()
                .min(usize::try_from(*remaining).unwrap_or(usize::MAX));
            piece.truncate(take);
            *remaining -= take as u64;
        }
        out.extend_from_slice(&piece);
        !self.is_done()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &[&str] = &[
        "2024-01-01T00:00:01.000000001Z stdout F one",
        "2024-01-01T00:00:02Z stderr P tw",
        "2024-01-01T00:00:03Z stderr F o",
        "not a log line",
        "2024-01-01T00:00:04.5Z stdout F three",
    ];

    fn render(options: LogOptions) -> String {
        let mut renderer = Renderer::new(&options);
        let mut out = Vec::new();
        for line in LOG {
            if !renderer.line(line.as_bytes(), &mut out) {
                break;
            }
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn renders_content_with_partial_lines_joined() {
        assert_eq!(render(LogOptions::default()), "one\ntwo\nthree\n");
    }

    #[test]
    fn timestamps_prefix_each_line_once() {
        let options = LogOptions {
            timestamps: true,
            ..LogOptions::default()
        };
        assert_eq!(
            render(options),
            "2024-01-01T00:00:01.000000001Z one\n\
             2024-01-01T00:00:02.000000000Z two\n\
             2024-01-01T00:00:04.500000000Z three\n"
        );
    }

    #[test]
    fn since_keeps_entries_at_or_after_it() {
        let since = |at: &str| LogOptions {
            since: Some(at.parse().unwrap()),
            ..LogOptions::default()
        };
        assert_eq!(render(since("2024-01-01T00:00:03Z")), "o\nthree\n");
        assert_eq!(render(since("2024-01-01T00:00:04Z")), "three\n");
        assert_eq!(render(since("2025-01-01T00:00:00Z")), "");
    }

    #[test]
    fn limit_bytes_cuts_the_output() {
        let limit = |bytes| LogOptions {
            limit_bytes: Some(bytes),
            ..LogOptions::default()
        };
        assert_eq!(render(limit(0)), "");
        assert_eq!(render(limit(2)), "on");
        assert_eq!(render(limit(4)), "one\n");
        assert_eq!(render(limit(6)), "one\ntw");
        assert_eq!(render(limit(1000)), "one\ntwo\nthree\n");
    }

    #[test]
    fn renderer_reports_when_the_limit_is_reached() {
        let mut renderer = Renderer::new(&LogOptions {
            limit_bytes: Some(4),
            ..LogOptions::default()
        });
        let mut out = Vec::new();
        assert!(!renderer.line(LOG[0].as_bytes(), &mut out));
        assert!(renderer.is_done());
        assert!(!renderer.line(LOG[4].as_bytes(), &mut out));
        assert_eq!(out, b"one\n");
    }
}
