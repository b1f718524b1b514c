//! Container logs as kubelet serves them: the CRI log files containerd writes
//! (`TIMESTAMP STREAM TAG CONTENT` per line) read back with `/containerLogs`'
//! options (tail, since, timestamps, limit, follow). Parsing and rendering are
//! pure; only [`open`] and the follower touch files. Nothing here knows pods.

mod follow;
mod parse;
mod render;
mod tail;

use std::path::Path;
use std::time::Duration;

use jiff::Timestamp;

pub use follow::{LogStream, StillWriting};
pub use parse::{format_timestamp, parse_line, LogEntry, LogStreamKind, ParseError};
pub use render::Renderer;
pub use tail::tail_start;

/// kubelet's `/containerLogs` options (the API's `PodLogOptions`, already
/// checked): which entries to send and how.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogOptions {
    /// Only the last this many lines (`tailLines`); all when unset.
    pub tail_lines: Option<u64>,
    /// Only entries written at or after this time (`sinceTime`, or
    /// `sinceSeconds` counted back from the request).
    pub since: Option<Timestamp>,
    /// Prefix every line with its RFC3339Nano timestamp and a space (`timestamps`).
    pub timestamps: bool,
    /// Stop after this many bytes of output (`limitBytes`).
    pub limit_bytes: Option<u64>,
    /// Keep streaming new entries once the end is reached (`follow`).
    pub follow: bool,
}

/// How often a followed log file is read again once its end is reached.
pub const FOLLOW_POLL: Duration = Duration::from_millis(200);

/// Opens the CRI log file at `path` and returns the stream of what `options`
/// select from it. `still_writing` is asked, while following, whether the
/// file can still grow; without it a followed stream ends only when dropped.
pub async fn open(
    path: &Path,
    options: LogOptions,
    still_writing: Option<StillWriting>,
) -> std::io::Result<LogStream> {
    let mut file = std::fs::File::open(path)?;
    let start = match options.tail_lines {
        Some(lines) => {
            tokio::task::spawn_blocking(move || tail_start(&mut file, lines).map(|at| (at, file)))
                .await
                .map_err(std::io::Error::other)??
        }
        None => (0, file),
    };
    let (offset, file) = start;
    let mut file = tokio::fs::File::from_std(file);
    tokio::io::AsyncSeekExt::seek(&mut file, std::io::SeekFrom::Start(offset)).await?;
    Ok(LogStream::new(
        file,
        Renderer::new(&options),
        options.follow,
        still_writing,
    ))
}
