//! One line of a CRI log file, parsed: `2016-10-06T00:17:09.669794202Z stdout F
//! content`. Pure functions over bytes; a line that does not parse is the
//! caller's to skip, as kubelet skips it.

use jiff::Timestamp;

/// Which output of the container an entry came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogStreamKind {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// One entry of a CRI log file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry<'a> {
    /// When the runtime wrote it.
    pub timestamp: Timestamp,
    /// Which output it came from.
    pub stream: LogStreamKind,
    /// Whether the line continues in the next entry (tag `P`): its content
    /// then carries no newline of its own.
    pub partial: bool,
    /// What the container wrote, without the line's newline.
    pub content: &'a [u8],
}

/// Why a line is not a CRI log entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// A field separator is missing.
    #[error("CRI log line has no {0} field")]
    Missing(&'static str),
    /// The timestamp is not RFC3339.
    #[error("CRI log line has an invalid timestamp {0:?}")]
    Timestamp(String),
    /// The stream is neither `stdout` nor `stderr`.
    #[error("CRI log line has an unknown stream {0:?}")]
    Stream(String),
}

/// Parses one line of a CRI log file, with or without its trailing newline.
pub fn parse_line(line: &[u8]) -> Result<LogEntry<'_>, ParseError> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let (timestamp, rest) = split_field(line).ok_or(ParseError::Missing("timestamp"))?;
    let timestamp = std::str::from_utf8(timestamp)
        .ok()
        .and_then(|t| t.parse::<Timestamp>().ok())
        .ok_or_else(|| ParseError::Timestamp(String::from_utf8_lossy(timestamp).into_owned()))?;
    let (stream, rest) = split_field(rest).ok_or(ParseError::Missing("stream"))?;
    let stream = match stream {
        b"stdout" => LogStreamKind::Stdout,
        b"stderr" => LogStreamKind::Stderr,
        other => {
            return Err(ParseError::Stream(
                String::from_utf8_lossy(other).into_owned(),
            ))
        }
    };
    // The tag may be followed by `:`-separated attributes; only `P` matters.
    // Old runtimes wrote no tag: then the rest is the content of a full line.
    let (partial, content) = match split_field(rest) {
        Some((tag, content)) if is_tag(tag) => {
            (tag.split(|b| *b == b':').next() == Some(b"P"), content)
        }
        _ if is_tag(rest) => (
            rest.split(|b| *b == b':').next() == Some(b"P"),
            &rest[rest.len()..],
        ),
        _ => (false, rest),
    };
    Ok(LogEntry {
        timestamp,
        stream,
        partial,
        content,
    })
}

/// The first space-separated field and what follows the space.
fn split_field(line: &[u8]) -> Option<(&[u8], &[u8])> {
    let at = line.iter().position(|b| *b == b' ')?;
    Some((&line[..at], &line[at + 1..]))
}

/// Whether `field` is a tag (`F`, `P`, maybe with `:`-separated attributes).
fn is_tag(field: &[u8]) -> bool {
    matches!(field.split(|b| *b == b':').next(), Some(b"F" | b"P"))
}

/// `at` as kubelet prints it before a line with `timestamps=true`: RFC3339
/// in UTC with all nine digits of the fraction, so columns line up.
pub fn format_timestamp(at: Timestamp) -> String {
    at.strftime("%Y-%m-%dT%H:%M:%S.%NZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn parses_full_and_partial_lines() {
        let cases: &[(&[u8], LogStreamKind, bool, &[u8])] = &[
            (
                b"2016-10-06T00:17:09.669794202Z stdout F hello world\n",
                LogStreamKind::Stdout,
                false,
                b"hello world",
            ),
            (
                b"2016-10-06T00:17:09.669794202Z stderr P part",
                LogStreamKind::Stderr,
                true,
                b"part",
            ),
            (
                b"2016-10-06T00:17:09.669794202Z stdout F \n",
                LogStreamKind::Stdout,
                false,
                b"",
            ),
            (
                b"2016-10-06T00:17:09.669794202Z stdout F",
                LogStreamKind::Stdout,
                false,
                b"",
            ),
            (
                b"2016-10-06T00:17:09.669794202Z stdout F  two spaces",
                LogStreamKind::Stdout,
                false,
                b" two spaces",
            ),
            (
                b"2016-10-06T00:17:09.669794202Z stdout P:x=y rest",
                LogStreamKind::Stdout,
                true,
                b"rest",
            ),
            (
                b"2016-10-06T00:17:09.669794202Z stdout untagged text",
                LogStreamKind::Stdout,
                false,
                b"untagged text",
            ),
        ];
        for (line, stream, partial, content) in cases {
            let entry = parse_line(line).unwrap();
            assert_eq!(entry.timestamp, at("2016-10-06T00:17:09.669794202Z"));
            assert_eq!(
                (entry.stream, entry.partial, entry.content),
                (*stream, *partial, *content),
                "{}",
                String::from_utf8_lossy(line)
            );
        }
    }

    #[test]
    fn accepts_offsets_and_short_fractions() {
        let entry = parse_line(b"2016-10-06T02:17:09.5+02:00 stdout F x").unwrap();
        assert_eq!(entry.timestamp, at("2016-10-06T00:17:09.5Z"));
    }

    #[test]
    fn rejects_what_is_not_an_entry() {
        assert_eq!(
            parse_line(b"garbage"),
            Err(ParseError::Missing("timestamp"))
        );
        assert!(matches!(
            parse_line(b"yesterday stdout F x"),
            Err(ParseError::Timestamp(_))
        ));
        assert_eq!(
            parse_line(b"2016-10-06T00:17:09Z"),
            Err(ParseError::Missing("timestamp"))
        );
        assert_eq!(
            parse_line(b"2016-10-06T00:17:09Z stdin F x"),
            Err(ParseError::Stream("stdin".into()))
        );
    }

    #[test]
    fn timestamps_print_all_nine_digits_in_utc() {
        assert_eq!(
            format_timestamp(at("2016-10-06T00:17:09.5Z")),
            "2016-10-06T00:17:09.500000000Z"
        );
        assert_eq!(
            format_timestamp(at("2016-10-06T02:17:09+02:00")),
            "2016-10-06T00:17:09.000000000Z"
        );
    }
}
