//! Reads a CRI log file from an offset to its end, and with `follow` keeps
//! reading what is appended, as a stream of rendered chunks. Dropping the
//! stream (a client that went away) stops it; it spawns nothing.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::{BoxStream, Stream, StreamExt};
use tokio::io::AsyncReadExt;

use super::render::Renderer;
use super::FOLLOW_POLL;

/// Asked while following, at the end of the file, whether the file can still
/// grow (its container run is still going). Once it answers false the rest
/// of the file is read and the stream ends.
pub type StillWriting = Box<dyn FnMut() -> BoxFuture<'static, bool> + Send>;

/// How much is read from the file at once.
const READ_SIZE: usize = 64 * 1024;
/// How many empty polls pass between two [`StillWriting`] checks.
const CHECK_EVERY: u32 = 5;

/// The rendered contents of one container log, chunk by chunk: what a
/// `/containerLogs` response body carries.
pub struct LogStream {
    inner: BoxStream<'static, std::io::Result<Bytes>>,
}

impl LogStream {
    /// A stream over `file` (already at the offset to start from), rendered by `renderer`.
    pub fn new(
        file: tokio::fs::File,
        renderer: Renderer,
        follow: bool,
        still_writing: Option<StillWriting>,
    ) -> Self {
        let reader = Reader {
            file,
            buffer: vec![0; READ_SIZE],
            pending: Vec::new(),
            renderer,
            follow,
            still_writing,
            stopping: false,
            idle_polls: 0,
            failed: false,
        };
        let inner = futures::stream::unfold(reader, |mut reader| async move {
            reader.next_chunk().await.map(|chunk| (chunk, reader))
        })
        .boxed();
        Self { inner }
    }
}

impl Stream for LogStream {
    type Item = std::io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.poll_next_unpin(cx)
    }
}

struct Reader {
    file: tokio::fs::File,
    buffer: Vec<u8>,
    /// Bytes read but not yet rendered: the start of a line still being written.
    pending: Vec<u8>,
    renderer: Renderer,
    follow: bool,
    still_writing: Option<StillWriting>,
    /// Whether the file stopped growing: read to its end once more, then end.
    stopping: bool,
    idle_polls: u32,
    failed: bool,
}

impl Reader {
    /// The next non-empty rendered chunk, or `None` at the end.
    async fn next_chunk(&mut self) -> Option<std::io::Result<Bytes>> {
        loop {
            if self.failed || self.renderer.is_done() {
                return None;
            }
            let read = match self.file.read(&mut self.buffer).await {
                Ok(read) => read,
                Err(e) => {
                    self.failed = true;
                    return Some(Err(e));
                }
            };
            if read > 0 {
                self.idle_polls = 0;
                self.pending.extend_from_slice(&self.buffer[..read]);
                let out = self.render_complete_lines();
                if !out.is_empty() {
                    return Some(Ok(Bytes::from(out)));
                }
                continue;
            }
            if !self.follow || self.stopping {
                return None;
            }
            self.idle_polls += 1;
            if self.idle_polls >= CHECK_EVERY {
                self.idle_polls = 0;
                if let Some(still_writing) = &mut self.still_writing {
                    if !still_writing().await {
                        self.stopping = true;
                        continue;
                    }
                }
            }
            tokio::time::sleep(FOLLOW_POLL).await;
        }
    }

    /// Renders the complete lines of `pending`, keeping an incomplete last one.
    fn render_complete_lines(&mut self) -> Vec<u8> {
        let Some(last) = self.pending.iter().rposition(|b| *b == b'\n') else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for line in self.pending[..=last].split_inclusive(|b| *b == b'\n') {
            if !self.renderer.line(line, &mut out) {
                break;
            }
        }
        self.pending.drain(..=last);
        out
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use super::super::{open, LogOptions};
    use super::*;

    fn entry(second: u32, tag: &str, content: &str) -> String {
        format!("2024-01-01T00:00:{second:02}Z stdout {tag} {content}\n")
    }

    /// Reads chunks until `text` has arrived, failing after a few seconds.
    async fn read_until(stream: &mut LogStream, got: &mut String, text: &str) {
        tokio::time::timeout(Duration::from_secs(5), async {
            while !got.contains(text) {
                let chunk = stream.next().await.expect("stream ended").unwrap();
                got.push_str(std::str::from_utf8(&chunk).unwrap());
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{text:?} never arrived; got {got:?}"));
    }

    #[tokio::test]
    async fn reads_to_the_end_and_stops_without_follow() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        let incomplete = "2024-01-01T00:00:03Z stdout F thr";
        write!(
            file,
            "{}{}{incomplete}",
            entry(1, "F", "one"),
            entry(2, "F", "two")
        )
        .unwrap();
        let options = LogOptions {
            tail_lines: Some(1),
            timestamps: true,
            ..LogOptions::default()
        };
        let stream = open(file.path(), options, None).await.unwrap();
        let chunks: Vec<_> = stream.collect().await;
        let text: String = chunks
            .into_iter()
            .map(|c| String::from_utf8(c.unwrap().to_vec()).unwrap())
            .collect();
        assert_eq!(text, "2024-01-01T00:00:02.000000000Z two\n");
    }

    #[tokio::test]
    async fn follow_picks_up_appended_lines_and_joins_partials() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        write!(file, "{}", entry(1, "F", "one")).unwrap();
        let options = LogOptions {
            follow: true,
            ..LogOptions::default()
        };
        let mut stream = open(file.path(), options, None).await.unwrap();
        let mut got = String::new();
        read_until(&mut stream, &mut got, "one\n").await;
        write!(
            file,
            "{}2024-01-01T00:00:03Z stdout F o",
            entry(2, "P", "tw")
        )
        .unwrap();
        file.flush().unwrap();
        read_until(&mut stream, &mut got, "tw").await;
        writeln!(file).unwrap();
        read_until(&mut stream, &mut got, "two\n").await;
        assert_eq!(got, "one\ntwo\n");
    }

    #[tokio::test]
    async fn follow_ends_once_the_file_stops_growing() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        write!(file, "{}", entry(1, "F", "one")).unwrap();
        let running = Arc::new(AtomicBool::new(true));
        let check = Arc::clone(&running);
        let still_writing: StillWriting = Box::new(move || {
            let running = check.load(Ordering::SeqCst);
            Box::pin(async move { running })
        });
        let options = LogOptions {
            follow: true,
            ..LogOptions::default()
        };
        let mut stream = open(file.path(), options, Some(still_writing))
            .await
            .unwrap();
        let mut got = String::new();
        read_until(&mut stream, &mut got, "one\n").await;
        write!(file, "{}", entry(2, "F", "last words")).unwrap();
        running.store(false, Ordering::SeqCst);
        let rest: Vec<_> = tokio::time::timeout(Duration::from_secs(5), stream.collect())
            .await
            .expect("a followed log of a finished run ends");
        for chunk in rest {
            got.push_str(std::str::from_utf8(&chunk.unwrap()).unwrap());
        }
        assert_eq!(got, "one\nlast words\n");
    }

    #[tokio::test]
    async fn limit_bytes_ends_a_followed_stream() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        write!(file, "{}{}", entry(1, "F", "one"), entry(2, "F", "two")).unwrap();
        let options = LogOptions {
            follow: true,
            limit_bytes: Some(6),
            ..LogOptions::default()
        };
        let stream = open(file.path(), options, None).await.unwrap();
        let chunks: Vec<_> = tokio::time::timeout(Duration::from_secs(5), stream.collect())
            .await
            .unwrap();
        assert_eq!(
            chunks
                .into_iter()
                .map(|c| c.unwrap())
                .collect::<Vec<_>>()
                .concat(),
            b"one\ntw"
        );
    }
}
