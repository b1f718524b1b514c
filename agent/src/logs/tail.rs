//! Where `tailLines=N` starts reading: the offset of the Nth-last line of a
//! CRI log file, found by reading it backwards in blocks. A line is what the
//! client sees, so partial (`P`) entries count together with the full (`F`)
//! entry that ends them.

use std::io::{self, Read, Seek, SeekFrom};

use super::parse::parse_line;

/// How much of the file is read at once, going backwards.
const BLOCK: usize = 64 * 1024;
/// How much of a line is enough to read its tag.
const HEADER: usize = 128;

/// The offset where the last `lines` lines of the CRI log `file` start (0
/// when it has fewer). Only complete file lines (ending in a newline) count:
/// a trailing line still being written is read later, when it is complete.
pub fn tail_start<R: Read + Seek>(file: &mut R, lines: u64) -> io::Result<u64> {
    let len = file.seek(SeekFrom::End(0))?;
    let mut counter = Counter {
        wanted: lines,
        seen: 0,
    };
    let mut block = vec![0; BLOCK];
    // The end (just past its newline) of the earliest complete line seen so far.
    let mut line_end: Option<u64> = None;
    let mut block_end = len;
    while block_end > 0 {
        let block_start = block_end.saturating_sub(BLOCK as u64);
        let filled = usize::try_from(block_end - block_start).unwrap_or(BLOCK);
        file.seek(SeekFrom::Start(block_start))?;
        file.read_exact(&mut block[..filled])?;
        for at in (0..filled).rev().filter(|at| block[*at] == b'\n') {
            let newline_end = block_start + at as u64 + 1;
            if let Some(end) = line_end {
                // The line [newline_end, end) is complete.
                let in_block = &block[at + 1..filled];
                let wanted = HEADER.min(usize::try_from(end - newline_end).unwrap_or(HEADER));
                let header = if in_block.len() >= wanted {
                    in_block[..wanted].to_vec()
                } else {
                    read_header(file, newline_end, end)?
                };
                if counter.ends_here(&header) {
                    return Ok(end);
                }
            } else if lines == 0 {
                return Ok(newline_end);
            }
            line_end = Some(newline_end);
        }
        block_end = block_start;
    }
    if let Some(end) = line_end {
        let header = read_header(file, 0, end)?;
        if counter.ends_here(&header) {
            return Ok(end);
        }
    }
    Ok(0)
}

/// Counts lines going backwards until enough are seen.
struct Counter {
    wanted: u64,
    seen: u64,
}

impl Counter {
    /// Looks at the next file line going backwards (its first bytes); returns
    /// true when the wanted lines all follow it, so reading starts after it.
    fn ends_here(&mut self, header: &[u8]) -> bool {
        match parse_line(header) {
            // A full entry ends a line: every line after it is counted.
            Ok(entry) if !entry.partial => {
                if self.seen == self.wanted {
                    return true;
                }
                self.seen += 1;
            }
            // Partial entries at the very end make a line of their own.
            Ok(_) if self.seen == 0 => self.seen = 1,
            // Partial entries join the line their full entry ends; lines that
            // do not parse are skipped when read, so they are not counted.
            _ => {}
        }
        false
    }
}

/// Up to [`HEADER`] bytes of the line `[start, end)`.
fn read_header<R: Read + Seek>(file: &mut R, start: u64, end: u64) -> io::Result<Vec<u8>> {
    let mut header = vec![0; HEADER.min(usize::try_from(end - start).unwrap_or(HEADER))];
    file.seek(SeekFrom::Start(start))?;
    file.read_exact(&mut header)?;
    Ok(header)
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;

    const LOG: &str = "2024-01-01T00:00:01Z stdout F one\n\
                       2024-01-01T00:00:02Z stdout P tw\n\
                       2024-01-01T00:00:03Z stdout F o\n\
                       garbage\n\
                       2024-01-01T00:00:04Z stdout F three\n";

    /// What reading `log` from the tail start of `lines` gives, as content.
    fn tail(log: &str, lines: u64) -> String {
        let start = tail_start(&mut Cursor::new(log.as_bytes()), lines).unwrap();
        let mut renderer = super::super::Renderer::new(&Default::default());
        let mut out = Vec::new();
        for line in log[start as usize..].split_inclusive('\n') {
            if line.ends_with('\n') {
                renderer.line(line.as_bytes(), &mut out);
            }
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn tail_counts_joined_lines() {
        assert_eq!(tail(LOG, 0), "");
        assert_eq!(tail(LOG, 1), "three\n");
        assert_eq!(tail(LOG, 2), "two\nthree\n");
        assert_eq!(tail(LOG, 3), "one\ntwo\nthree\n");
        assert_eq!(tail(LOG, 100), "one\ntwo\nthree\n");
        assert_eq!(tail("", 5), "");
    }

    #[test]
    fn a_trailing_partial_line_counts_as_one() {
        let log =
            format!("{LOG}2024-01-01T00:00:05Z stdout P fo\n2024-01-01T00:00:05Z stdout P ur\n");
        assert_eq!(tail(&log, 1), "four");
        assert_eq!(tail(&log, 2), "three\nfour");
    }

    #[test]
    fn an_incomplete_last_line_is_left_for_later() {
        let log = format!("{LOG}2024-01-01T00:00:05Z stdout F fo");
        let start = tail_start(&mut Cursor::new(log.as_bytes()), 0).unwrap();
        assert_eq!(start as usize, LOG.len());
        assert_eq!(tail(&log, 1), "three\n");
    }

    #[test]
    fn long_files_span_many_blocks() {
        let mut log = String::new();
        for i in 0..20_000 {
            log.push_str(&format!("2024-01-01T00:00:00.{i:09}Z stdout F line {i}\n"));
        }
        assert_eq!(tail(&log, 2), "line 19998\nline 19999\n");
        let lines = tail(&log, 15_000);
        assert_eq!(lines.lines().count(), 15_000);
        assert!(lines.starts_with("line 5000\n"));
        // A line longer than a block.
        let long = "x".repeat(3 * BLOCK);
        let log = format!("{log}2024-01-01T00:00:01Z stdout F {long}\n");
        assert_eq!(tail(&log, 2), format!("line 19999\n{long}\n"));
    }
}
